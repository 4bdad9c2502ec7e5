"""Running the web app on waitress, a production WSGI server (not Flask's development server)."""

from __future__ import annotations

import ctypes
import ctypes.util
import ipaddress
import resource
import time
from pathlib import Path

from waitress import serve as waitress_serve

from search.analysis.sudachi import dictionary_bytes
from search.codec.store import IndexStore
from search.memory import set_cache_budget

from . import browser, create_app

THREADS = 8
DEFAULT_MEMORY_BUDGET_MB = 512
# What each thread needs besides the caches: its searcher and readers, a search's arrays, a page's
# rendering (livedoor, bench/serve_memory.py: about 100 MB for 8 threads over what the process
# held when it started).
WORKING_MB_PER_THREAD = 16
# The caches' least part of the budget, however little the rest leaves them.
MIN_CACHE_SHARE = 0.1
# glibc gives each thread that meets a busy heap an arena of its own (up to 8 per core), and memory
# freed in one is never handed to another: 8 threads of searches left RSS well above what they
# held. Two arenas for the whole server, and arrays of 1 MB and more mapped on their own (returned
# to the system when freed, where glibc would otherwise raise that threshold as big arrays come
# and go, and keep them in the arenas).
MALLOC_ARENAS = 2
MALLOC_MMAP_THRESHOLD = 1 << 20
_M_MMAP_THRESHOLD, _M_ARENA_MAX = -3, -8  # mallopt's parameters, from glibc's malloc.h


def serve(
    index_root: str, host: str = "127.0.0.1", port: int = 8000, memory_budget_mb: int = DEFAULT_MEMORY_BUDGET_MB
) -> None:
    """Serve the search page and API for the index at `index_root` until interrupted, in about
    `memory_budget_mb` of memory in all (see `cache_budget`)."""
    _tune_malloc()
    caches, others = cache_budget(memory_budget_mb << 20, index_root)
    set_cache_budget(caches)
    app = create_app(index_root)
    if is_loopback_name(host.strip("[]")):  # (told to listen beyond this machine, it answers every name)
        app.wsgi_app = LoopbackNamesOnly(app.wsgi_app)  # type: ignore[method-assign]
    warm_up(app)
    address = f"[{host}]" if ":" in host and not host.startswith("[") else host  # (an IPv6 address)
    print(f"Midashi: serving {index_root} on http://{address}:{port}/", flush=True)
    rest = ", ".join(f"{name} {size >> 20} MB" for name, size in others.items())
    print(f"Memory budget {memory_budget_mb} MB: {caches >> 20} MB for caches; the rest for {rest}.", flush=True)
    if caches <= MIN_CACHE_SHARE * (memory_budget_mb << 20):
        print(
            f"Memory budget {memory_budget_mb} MB is less than the server needs without caches: "
            "give a larger --memory-budget.",
            flush=True,
        )
    waitress_serve(app, host=host, port=port, threads=THREADS, ident="midashi")


class LoopbackNamesOnly:
    """WSGI middleware for a server bound to a loopback address: it answers only requests whose
    Host names this machine (localhost, a loopback address), so a web page whose name an
    attacker points at 127.0.0.1 (DNS rebinding) cannot read the index through a reader's
    browser. Any other Host gets a plain 400 (Flask's TRUSTED_HOSTS fails before its error page
    can be drawn, and its page needs a trusted host)."""

    def __init__(self, app):
        self.app = app

    def __call__(self, environ, start_response):
        host = environ.get("HTTP_HOST", "")
        if not host or is_loopback_name(_host_name(host)):  # (no Host: an HTTP/1.0 client, no browser)
            return self.app(environ, start_response)
        body = b"400 Bad Request: this server answers to localhost and loopback addresses only\n"
        start_response(
            "400 Bad Request", [("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", str(len(body)))]
        )
        return [body]


def is_loopback_name(name: str) -> bool:
    """localhost, or a loopback address (127.0.0.0/8, ::1)."""
    if name.lower().removesuffix(".") == "localhost":  # (one dot: the root's; localhost.. is no name)
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def _host_name(host: str) -> str:
    """The name of a Host header, without its port and an IPv6 address's brackets."""
    if host.startswith("["):
        return host[1:].partition("]")[0]
    name, colon, port = host.rpartition(":")
    return name if colon and port.isdigit() else host


def warm_up(app) -> None:
    """Build what searches need before the first request (else the first search builds it:
    1.6 s on livedoor, where later searches take 20-40 ms)."""
    started = time.perf_counter()
    with app.app_context(), browser().index.read_errors_as_damage():  # damage met on the way: one line
        browser().warm()
    print(f"Midashi: ready in {time.perf_counter() - started:.1f} s (tables built, models loaded)", flush=True)


def cache_budget(total_bytes: int, index_root: str | Path) -> tuple[int, dict[str, int]]:
    """What the caches may hold out of the server's `total_bytes`, and what the rest is for: what
    the process holds now (the interpreter and its libraries), Sudachi's dictionary and the index
    (both memory-mapped, and read into memory as searches use them: the RSS counts them), and each
    thread's working memory. At least `MIN_CACHE_SHARE` of the total."""
    parts = {
        "the process at start": _rss_bytes(),
        "Sudachi's dictionary": dictionary_bytes(),
        "the index": IndexStore(index_root).size_on_disk(),
        f"{THREADS} threads' work": THREADS * (WORKING_MB_PER_THREAD << 20),
    }
    return max(total_bytes - sum(parts.values()), int(total_bytes * MIN_CACHE_SHARE)), parts


def _rss_bytes() -> int:
    """This process's resident memory now."""
    try:
        return int(Path("/proc/self/statm").read_text().split()[1]) * resource.getpagesize()
    except (OSError, IndexError, ValueError):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # its peak, on systems without /proc


def _tune_malloc() -> None:
    """Set glibc's allocator for a long-lived threaded server (nothing where libc is not glibc)."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return
    mallopt(_M_ARENA_MAX, MALLOC_ARENAS)
    mallopt(_M_MMAP_THRESHOLD, MALLOC_MMAP_THRESHOLD)
