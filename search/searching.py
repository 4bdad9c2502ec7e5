"""The one search function the CLI and the web share: query string → ranked section hits.

`SearchIndex` keeps a Whoosh index open and follows the store's CURRENT pointer, so a long-lived
process (the web server) picks up a new generation after a reindex without a restart, while
every single search runs against one consistent generation.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from whoosh import index as whoosh_index
from whoosh.index import Index
from whoosh.scoring import BM25F

from .query import ParsedQuery, parse_query
from .snippets import Snippet, make_snippet, mark_whole
from .store import IndexStore

DEFAULT_LIMIT = 10
MAX_LIMIT = 1000


@dataclass(frozen=True)
class Hit:
    """One ranked section, with what a result list shows about it."""

    section_id: str
    article_id: str
    section_number: int
    title: Snippet
    heading: Snippet
    snippet: Snippet
    date: datetime | None
    source: str
    category: str
    url: str
    score: float
    rank: int


@dataclass(frozen=True)
class SearchResults:
    query: str
    total: int
    hits: list[Hit]
    elapsed_ms: float
    natural_language: bool
    generation: str


class SearchIndex:
    """A searchable index root; cheap to keep for the life of a process."""

    def __init__(self, root: Path | str):
        self.store = IndexStore(root)
        self._lock = threading.Lock()
        self._opened: tuple[str, Index] | None = None

    def open(self) -> tuple[str, Index]:
        """The live generation's name and Whoosh index (IndexMissingError if none was built)."""
        folder = self.store.current()
        with self._lock:
            if self._opened is None or self._opened[0] != folder.name:
                self._opened = (folder.name, whoosh_index.open_dir(str(folder)))
            return self._opened

    def search(
        self,
        query: str,
        limit: int = DEFAULT_LIMIT,
        offset: int = 0,
        snippets: bool = True,
    ) -> SearchResults:
        """Rank sections for `query`; `offset` skips that many hits (for pages)."""
        started = time.perf_counter()
        limit = max(1, min(limit, MAX_LIMIT))
        generation, index = self.open()
        parsed = parse_query(query, index.schema)
        with index.searcher(weighting=BM25F()) as searcher:
            results = searcher.search(parsed.query, limit=offset + limit)
            total = len(results)
            hits = [
                _hit(result, parsed, offset + rank, snippets)
                for rank, result in enumerate(results[offset:offset + limit], start=1)
            ]
        elapsed = (time.perf_counter() - started) * 1000
        return SearchResults(parsed.text, total, hits, elapsed, parsed.natural_language, generation)


def _hit(result, parsed: ParsedQuery, rank: int, with_snippet: bool) -> Hit:
    fields = result.fields()
    terms = parsed.highlight_terms()
    body = fields.get("body", "")
    return Hit(
        section_id=fields["section_id"],
        article_id=fields["article_id"],
        section_number=fields.get("section_number", 0),
        title=mark_whole(fields.get("title", ""), terms),
        heading=mark_whole(fields.get("heading", ""), terms),
        snippet=make_snippet(body, terms) if with_snippet else Snippet(()),
        date=fields.get("date"),
        source=fields.get("source", ""),
        category=fields.get("category", ""),
        url=fields.get("url", ""),
        score=result.score,
        rank=rank,
    )
