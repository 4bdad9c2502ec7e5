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

This module is the one registry of those caches: each joins it with `register` (its module does
it when imported), says which `KINDS` of memory it holds, and `forget` empties them, all or some
kinds. Two kinds of cache serve them all: `RecentEntries` (least recently used first out, by
bytes) and `SmallEntries` (counted, all dropped when full).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterable
from typing import NamedTuple, Protocol

# What a cache's entries come from, for `forget`: what a query's terms brought in (posting
# lists, term infos, scores, idfs); analyses of texts and Sudachi's dictionary entries; tables
# per index segment (deletions, length norms, article ids).
QUERY, TEXT, SEGMENT = "query", "text", "segment"
KINDS = (QUERY, TEXT, SEGMENT)
DEFAULT_CACHE_BUDGET_MB = 512  # for a process that sets none (the CLI's searches, a reindex)
# Each cache's part of the total.
SHARES = {
    "decoded posting lists": 0.30,
    "scored terms": 0.17,
    "segment tables": 0.08,
    "term infos": 0.04,
    "idfs": 0.03,
    "analyses": 0.23,
    "dictionary entries": 0.15,  # what Sudachi says of each word (analysis/sudachi.py)
}


class Cache(Protocol):
    """What a cache offers the registry."""

    def resize(self, budget_bytes: int) -> None:
        """Given its bytes, drop what is over."""

    @property
    def used_bytes(self) -> int:
        """The bytes it holds now."""

    def clear(self) -> None:
        """Drop everything."""


class CacheFunctions:
    """A cache kept in its module's own structures (per-thread analyses, Sudachi's entries),
    registered by the three functions that size, measure and empty it."""

    def __init__(self, resize: Callable[[int], None], used: Callable[[], int], clear: Callable[[], None]):
        self.resize = resize
        self._used = used
        self.clear = clear

    @property
    def used_bytes(self) -> int:
        return self._used()


class _Registered(NamedTuple):
    cache: Cache
    kind: str


_caches: dict[str, _Registered] = {}
_budget_bytes = DEFAULT_CACHE_BUDGET_MB << 20


def register(name: str, cache: Cache, kind: str) -> None:
    """A cache of `SHARES` holding memory of `kind` joins the budget, sized at once."""
    if kind not in KINDS:
        raise ValueError(f"unknown kind of cache memory {kind!r}")
    _caches[name] = _Registered(cache, kind)
    cache.resize(cache_limit(name))


def forget(kinds: Iterable[str] = KINDS) -> None:
    """Empty every cache holding memory of `kinds` (by default all): a benchmark's timed pass
    then finds nothing its warm-up left, and a test starts from nothing."""
    wanted = set(kinds)
    for registered in _caches.values():
        if registered.kind in wanted:
            registered.cache.clear()


def set_cache_budget(total_bytes: int) -> None:
    """Give the caches `total_bytes` in all: each gets its share and drops what is over."""
    global _budget_bytes
    _budget_bytes = total_bytes
    for name, registered in _caches.items():
        registered.cache.resize(cache_limit(name))


def cache_budget() -> int:
    """What the caches may hold in all, in bytes."""
    return _budget_bytes


def cache_limit(name: str) -> int:
    """The bytes one cache may hold, across every thread."""
    return int(_budget_bytes * SHARES[name])


def cache_bytes() -> dict[str, int]:
    """What each cache holds now, in bytes (estimated from entries and characters where its
    values are Python objects rather than arrays)."""
    return {name: registered.cache.used_bytes for name, registered in _caches.items()}


class RecentEntries:
    """Entries used recently (decoded posting lists, scored terms, per-segment tables), the least
    recently used dropped first past a byte budget; each entry's size is given when it is put.
    Shared by every thread.

    Values are best kept as arrays or plain tuples of arrays: Python's garbage collector stops
    watching those, where each object of a class is watched for life, and a full collection of a
    search process holding 300,000 such objects took a quarter of a second.
    """

    def __init__(self, budget_bytes: int = 0):
        self.budget_bytes = budget_bytes
        self.used_bytes = 0
        self._lists: OrderedDict[Hashable, tuple[object, int]] = OrderedDict()  # (list, its bytes)
        self._lock = threading.Lock()

    def resize(self, budget_bytes: int) -> None:
        """A new budget (`memory.set_cache_budget`): the least recently used go until it holds."""
        with self._lock:
            self.budget_bytes = budget_bytes
            self._drop_over_budget()

    def _drop_over_budget(self) -> None:
        while self.used_bytes > self.budget_bytes:
            _, (_, dropped_size) = self._lists.popitem(last=False)
            self.used_bytes -= dropped_size

    def get(self, key: Hashable):
        with self._lock:
            found = self._lists.get(key)
            if found is None:
                return None
            self._lists.move_to_end(key)
            return found[0]

    def put(self, key: Hashable, value, size: int) -> None:
        if size > self.budget_bytes:
            return
        with self._lock:
            if key in self._lists:
                return
            # Room first, then the entry: `used_bytes` is read without the lock (the memory
            # accountant), so it never shows more than the budget, even for a moment.
            while self._lists and self.used_bytes + size > self.budget_bytes:
                _, (_, dropped_size) = self._lists.popitem(last=False)
                self.used_bytes -= dropped_size
            self._lists[key] = (value, size)
            self.used_bytes += size

    def clear(self) -> None:
        with self._lock:
            self._lists.clear()
            self.used_bytes = 0


class SmallEntries(dict):
    """Small entries (a term's info, an idf), up to as many as a byte budget allows at
    `ENTRY_BYTES` each, all dropped when full (cheaper than ordering each use, for values that
    cost one lookup to make again). Shared by every thread: a dict's single operations are atomic."""

    limit = 0

    def resize(self, budget_bytes: int) -> None:
        self.limit = budget_bytes // ENTRY_BYTES
        if len(self) > self.limit:
            self.clear()

    def keep(self, key: Hashable, value) -> None:
        if len(self) >= self.limit:
            self.clear()
        if self.limit:
            self[key] = value

    @property
    def used_bytes(self) -> int:
        return len(self) * ENTRY_BYTES


# An entry of `SmallEntries`, key and value, as counted against the budget (265 bytes measured for
# a term info's).
ENTRY_BYTES = 300
