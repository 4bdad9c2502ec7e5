"""Running the web app on waitress, a production WSGI server (not Flask's development server)."""

from __future__ import annotations

import ctypes
import ctypes.util

from waitress import serve as waitress_serve

from search.memory import DEFAULT_BUDGET_MB, set_memory_budget

from . import create_app

THREADS = 8
# glibc gives each thread that meets a busy heap an arena of its own (up to 8 per core), and memory
# freed in one is never handed to another: 8 threads of searches left RSS well above what they
# held. Two arenas for the whole server, and arrays of 1 MB and more mapped on their own (returned
# to the system when freed, where glibc would otherwise raise that threshold as big arrays come
# and go, and keep them in the arenas).
MALLOC_ARENAS = 2
MALLOC_MMAP_THRESHOLD = 1 << 20
_M_MMAP_THRESHOLD, _M_ARENA_MAX = -3, -8  # mallopt's parameters, from glibc's malloc.h


def serve(index_root: str, host: str = "127.0.0.1", port: int = 8000, memory_budget_mb: int = DEFAULT_BUDGET_MB) -> None:
    """Serve the search page and API for the index at `index_root` until interrupted, its caches
    within `memory_budget_mb` in all (see `search.memory`)."""
    _tune_malloc()
    set_memory_budget(memory_budget_mb << 20)
    app = create_app(index_root)
    print(f"Midashi: serving {index_root} on http://{host}:{port}/ (memory budget {memory_budget_mb} MB)", flush=True)
    waitress_serve(app, host=host, port=port, threads=THREADS, ident="midashi")


def _tune_malloc() -> None:
    """Set glibc's allocator for a long-lived threaded server (nothing where libc is not glibc)."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return
    mallopt(_M_ARENA_MAX, MALLOC_ARENAS)
    mallopt(_M_MMAP_THRESHOLD, MALLOC_MMAP_THRESHOLD)
