"""One memory budget for everything a process keeps between searches, across all its threads.

A server keeps what its searches read for the searches after them: decoded posting lists, each
term's scores, per-segment tables (deletions, length norms), term infos and idfs, the Sudachi
analyses of recent texts and what Sudachi says of each dictionary word. Each of its threads has
a searcher and an analysis cache of its own, so limits set per cache and per thread add up to
several times what anyone meant: `serve` grew from
63 MB to 1.4 GB over a thousand varied requests. `set_cache_budget` gives the caches one total;
this module splits it among them, and each cache keeps its share across every thread (the caches
are shared by all threads, or, for the analyses, counted together). `cache_bytes` reports what
each holds now. `web.server` works the caches' total out of the server's whole budget.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

DEFAULT_CACHE_BUDGET_MB = 512  # for a process that sets none (the CLI's searches, a reindex)
# Each cache's part of the total.
SHARES = {
    "decoded posting lists": 0.30,
    "scored terms": 0.17,
    "segment tables": 0.08,
    "term infos": 0.04,
    "idfs": 0.03,
    "analyses": 0.23,
    "dictionary entries": 0.15,  # what Sudachi says of each word (analysis.py)
}


class _Cache(NamedTuple):
    resize: Callable[[int], None]  # given its bytes, the cache drops what is over
    used: Callable[[], int]  # the bytes it holds now


_caches: dict[str, _Cache] = {}
_budget_bytes = DEFAULT_CACHE_BUDGET_MB << 20


def register(name: str, resize: Callable[[int], None], used: Callable[[], int]) -> None:
    """A cache of `SHARES` joins the budget (its module does it when imported), sized at once."""
    _caches[name] = _Cache(resize, used)
    resize(cache_limit(name))


def set_cache_budget(total_bytes: int) -> None:
    """Give the caches `total_bytes` in all: each gets its share and drops what is over."""
    global _budget_bytes
    _budget_bytes = total_bytes
    for name, cache in _caches.items():
        cache.resize(cache_limit(name))


def cache_budget() -> int:
    """What the caches may hold in all, in bytes."""
    return _budget_bytes


def cache_limit(name: str) -> int:
    """The bytes one cache may hold, across every thread."""
    return int(_budget_bytes * SHARES[name])


def cache_bytes() -> dict[str, int]:
    """What each cache holds now, in bytes (estimated from entries and characters where its
    values are Python objects rather than arrays)."""
    return {name: cache.used() for name, cache in _caches.items()}
