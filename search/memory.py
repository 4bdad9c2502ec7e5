"""One memory budget for everything a process keeps between searches, across all its threads.

A server keeps what its searches read for the searches after them: decoded posting lists, each
term's scores, per-segment tables (deletions, length norms), term infos and idfs, and the Sudachi
analyses of recent texts. Each of its threads has a searcher and an analysis cache of its own, so
limits set per cache and per thread add up to several times what anyone meant: `serve` grew from
55 MB to 1.4 GB over a thousand varied queries. `set_memory_budget` gives the process one total;
this module splits it among the caches, and each cache keeps its share across every thread (the
caches are shared by all threads, or, for the analyses, counted together). `cache_bytes` reports
what each holds now.

30% of the budget goes to the caches. The rest is for what no cache holds, measured on livedoor
(`bench/serve_memory.py`): Sudachi's dictionary as its memory map reads it (190 MB of RSS on its
own), the index's map, the interpreter and its libraries, each generation's tables, each thread's
searcher and the arrays a search makes while it runs, and what the allocator holds on to.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

DEFAULT_BUDGET_MB = 512
CACHES_SHARE = 0.3
# Each cache's part of the caches' 30%.
SHARES = {
    "decoded posting lists": 0.35,
    "scored terms": 0.20,
    "segment tables": 0.10,
    "term infos": 0.04,
    "idfs": 0.03,
    "analyses": 0.28,
}


class _Cache(NamedTuple):
    resize: Callable[[int], None]  # given its bytes, the cache drops what is over
    used: Callable[[], int]  # the bytes it holds now


_caches: dict[str, _Cache] = {}
_budget_bytes = DEFAULT_BUDGET_MB << 20


def register(name: str, resize: Callable[[int], None], used: Callable[[], int]) -> None:
    """A cache of `SHARES` joins the budget (its module does it when imported), sized at once."""
    _caches[name] = _Cache(resize, used)
    resize(cache_limit(name))


def set_memory_budget(total_bytes: int) -> None:
    """Give the process `total_bytes` in all: each cache gets its share and drops what is over."""
    global _budget_bytes
    _budget_bytes = total_bytes
    for name, cache in _caches.items():
        cache.resize(cache_limit(name))


def memory_budget() -> int:
    """The process's budget in bytes."""
    return _budget_bytes


def cache_limit(name: str) -> int:
    """The bytes one cache may hold, across every thread."""
    return int(_budget_bytes * CACHES_SHARE * SHARES[name])


def caches_limit() -> int:
    """What the caches may hold in all."""
    return int(_budget_bytes * CACHES_SHARE)


def cache_bytes() -> dict[str, int]:
    """What each cache holds now, in bytes (estimated from entries and characters where its
    values are Python objects rather than arrays)."""
    return {name: cache.used() for name, cache in _caches.items()}
