"""The one search function the CLI and the web share: query string → ranked section hits.

`SearchIndex` keeps a Whoosh index open and follows the store's CURRENT pointer, so a long-lived
process (the web server) picks up a new generation after a reindex without a restart, while
every single search runs against one consistent generation.
"""

from __future__ import annotations

import functools
import itertools
import os
import pickle
import re
import struct
import threading
import time
import zlib
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field, fields, replace
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, Self, TypeVar, cast

import numpy as np
import zstandard
from whoosh import index as whoosh_index
from whoosh import query as wq
from whoosh.index import EmptyIndexError, Index
from whoosh.reading import TermNotFound
from whoosh.scoring import BM25F
from whoosh.searching import Searcher

from .analysis.sudachi import NAME_FIELDS, synonym_word_term
from .codec.store import (
    Checksum,
    DamagedIndexError,
    IndexMissingError,
    IndexStore,
    Manifest,
    file_problems,
)
from .query.parse import (
    HighlightSpec,
    ParsedQuery,
    QueryError,
    QueryOptions,
    QueryTooExpensive,
    parse_query,
    query_units,
    relaxed_query,
)
from .query.synonyms import UserSynonyms, default_synonyms_path
from .ranking.rerank import RERANK_DEPTH, Reranker, SectionTable, shipped
from .ranking.scoring import SEGMENT_TABLES, Deadline, Ranking, top_documents
from .snippets import Snippet, make_snippet, mark_whole

if TYPE_CHECKING:
    from .browse import Alternative

DEFAULT_LIMIT = 10
# Seconds a search may spend ranking before it answers "too expensive" (QueryTooExpensive): an
# ordinary search takes milliseconds, and a thread tied up for long keeps others waiting.
DEFAULT_TIME_BUDGET = 5.0
MAX_LIMIT = 1000
SORTS = ("relevance", "newest", "oldest")
_FACET_FIELDS = ("category", "source")
_FACETS = (*_FACET_FIELDS, "month")
# How often opening the live generation is tried when reindexes delete it meanwhile.
_OPEN_ATTEMPTS = 3
# A query of words whose strict reading (every word) finds fewer articles than this is followed by
# its best-match reading: the sections that match only some of its words, ranked below.
RELAX_BELOW_ARTICLES = 3
# A best-match ranking (a question, or a query's relaxed reading) matches every section that shares
# any of its words: thousands on livedoor for a question. Where the whole ranking is counted (grouped
# pages, facets) it is cut to the sections of its best this many articles, what is worth showing,
# so the article count, the facets and the pages are all of the same results.
BEST_MATCH_ARTICLES = 100
# Model names a Latin word finds (iphone → iphone4s, iphone5), the most frequent first; and how
# many of the terms it starts are looked at to find them (a two-letter prefix starts thousands).
MAX_MODEL_NAMES = 16
MODEL_PREFIX_SCAN = 2000
# What a generation's lexicon answered is kept for the searches after it, up to this many answers.
LEXICON_ANSWERS_KEPT = 10_000
# The people and places facets list this many names each, those the most matching articles name.
NAME_FACETS = 10


class GenerationTable(Protocol):
    """What `Generation.table` keeps: a table built once per generation from one of its readers."""

    @classmethod
    def build(cls, reader: Any) -> Self: ...


T = TypeVar("T", bound=GenerationTable)
# What `SearchIndex.warm` searches for: any word runs every step a search takes.
WARM_UP_QUERY = "日本"


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

    def as_json(self) -> dict:
        """The hit as the JSON API and `midashi search --json` show it."""
        return {
            "section_id": self.section_id,
            "article_id": self.article_id,
            "section_number": self.section_number,
            "title": self.title.text(),
            "title_html": self.title.html(),
            "heading": self.heading.text(),
            "heading_html": self.heading.html(),
            "snippet": self.snippet.text(),
            "snippet_html": self.snippet.html(),
            "date": self.date.isoformat() if self.date else None,
            "source": self.source,
            "category": self.category,
            "url": self.url,
            "score": round(self.score, 4),
            "rank": self.rank,
        }


@dataclass(frozen=True)
class Filters:
    """Restrictions on which sections may match: exact category/source, an inclusive date range,
    a person or a place the section names (as the people and places facets list them)."""

    category: str = ""
    source: str = ""
    date_from: date | None = None
    date_to: date | None = None
    person: str = ""
    place: str = ""

    @classmethod
    def parse(
        cls,
        category: str = "",
        source: str = "",
        date_from: str = "",
        date_to: str = "",
        person: str = "",
        place: str = "",
    ) -> Filters:
        """Filters from request strings; dates are YYYY-MM-DD, YYYY-MM or YYYY (QueryError if not)."""
        start = _parse_day(date_from, end=False)
        end = _parse_day(date_to, end=True)
        if start and end and start > end:
            raise QueryError("the start date is after the end date", "開始日が終了日より後になっています。")
        return cls(category.strip(), source.strip(), start, end, person.strip(), place.strip())

    def __bool__(self) -> bool:
        return bool(self.category or self.source or self.date_from or self.date_to or self.person or self.place)

    @property
    def names(self) -> dict[str, str]:
        """The name fields this filter restricts (`people`, `places`) and the name each must have."""
        wanted = dict(zip(NAME_FIELDS, (self.person, self.place)))
        return {field_name: name for field_name, name in wanted.items() if name}


def _parse_day(text: str, end: bool) -> date | None:
    """A day from `YYYY-MM-DD`, `YYYY-MM` or `YYYY`; a partial date means its first (or last) day."""
    text = (text or "").strip()
    if not text:
        return None
    parts = text.split("-")
    try:
        numbers = [int(part) for part in parts]
        if len(numbers) == 3:
            return date(*numbers)
        if len(numbers) == 2:
            first = date(numbers[0], numbers[1], 1)
            return _month_end(first) if end else first
        if len(numbers) == 1:
            return date(numbers[0], 12, 31) if end else date(numbers[0], 1, 1)
    except ValueError:
        pass
    raise QueryError(
        f"not a date: {text!r} (use YYYY-MM-DD, YYYY-MM or YYYY)",
        f"日付として読めません: {text}（2012-05-31、2012-05、2012 のように書いてください）。",
    )


def _month_end(day: date) -> date:
    return (day.replace(day=28) + timedelta(days=4)).replace(day=1) - timedelta(days=1)


@dataclass(frozen=True)
class FacetCount:
    """One facet value and how many matching articles have it."""

    value: str
    count: int

    def as_json(self) -> dict:
        return {"value": self.value, "count": self.count}


@dataclass(frozen=True)
class Facets:
    """Counts of matching articles (not just the page's; an article counts once per value):
    categories, sources, years, months; and the people and places most of them name (`NameTable`)."""

    category: list[FacetCount]
    source: list[FacetCount]
    year: list[FacetCount]  # "2012", newest first
    month: list[FacetCount]  # "2012-05", newest first
    people: list[FacetCount] = field(default_factory=list)  # the most articles first, at most NAME_FACETS
    places: list[FacetCount] = field(default_factory=list)

    def as_json(self) -> dict:
        return {kind.name: [count.as_json() for count in getattr(self, kind.name)] for kind in fields(self)}


@dataclass(frozen=True)
class MonthCount:
    """One month of the timeline: how many matching articles are dated in it (an article once,
    however many of its sections match)."""

    month: str  # "2012-05"
    articles: int

    def as_json(self) -> dict:
        return {"month": self.month, "articles": self.articles}


@dataclass(frozen=True)
class ArticleGroup:
    """One article in grouped results: its best-ranked section and its other matching sections."""

    best: Hit
    others: list[Hit]

    def as_json(self) -> dict:
        """The article as the JSON API and `midashi search --json` show it: its best section's hit,
        and where else in it the query matched."""
        return {
            **self.best.as_json(),
            "other_sections": [
                {"section_id": o.section_id, "section_number": o.section_number, "heading": o.heading.text()}
                for o in self.others
            ],
        }


@dataclass(frozen=True)
class Relaxation:
    """A query of words found fewer than RELAX_BELOW_ARTICLES articles with every word: the
    sections that match only some of them (`partial`, if any) follow those that have them all."""

    strict_total: int  # sections with every word (ranked first)
    strict_articles: int  # their articles
    partial: int  # sections with only some of the words, listed after them
    # When no section has every word: the query's words (as typed) that no section has, if any
    # (`absent`), else those that no section has together with all the others (each of the
    # others together finds something).
    missing: list[str]
    absent: bool

    def as_json(self) -> dict:
        return {
            "missing": self.missing,
            "absent": self.absent,
            "strict_total": self.strict_total,
            "strict_articles": self.strict_articles,
            "partial": self.partial,
        }


@dataclass(frozen=True)
class SearchResults:
    query: str
    total: int
    hits: list[Hit]
    elapsed_ms: float
    natural_language: bool
    generation: str
    facets: Facets | None = None
    groups: list[ArticleGroup] = field(default_factory=list)
    articles: int | None = None  # distinct matching articles, counted when grouping
    relaxed: Relaxation | None = None  # every word together found too few articles (see Relaxation)
    sort: str = "relevance"  # one of SORTS
    # Matching articles per month, oldest first, every month from the first to the last (see
    # `FacetTable.timeline`); counted with the facets, None when they are not.
    timeline: list[MonthCount] | None = None

    @property
    def few(self) -> bool:
        """Nothing found, or too little with every word: when other spellings are worth offering."""
        return not self.total or self.relaxed is not None

    def as_json(self, alternatives: Iterable[Alternative] = ()) -> dict:
        """The results as the JSON API and `midashi search --json` show them (`SearchResults` in
        web/openapi.py), with `alternatives` offered for them (`Browser.alternatives`). Grouped,
        a hit is an article's best section with its `other_sections`; listed by section, a hit
        is one section (and `articles` is null). `facets` and `timeline` are null unless they
        were counted."""
        return {
            "query": self.query,
            "total": self.total,
            "articles": self.articles,
            "sort": self.sort,
            "elapsed_ms": round(self.elapsed_ms, 2),
            "hits": [group.as_json() for group in self.groups] if self.groups else [hit.as_json() for hit in self.hits],
            "facets": self.facets.as_json() if self.facets is not None else None,
            "timeline": [month.as_json() for month in self.timeline] if self.timeline is not None else None,
            "relaxed": self.relaxed.as_json() if self.relaxed else None,
            "alternatives": [alternative.as_json() for alternative in alternatives],
        }


@dataclass(frozen=True)
class Scope:
    """Which sections a search may find: the filters asked for, the sections a negated word
    leaves out (sorted docnums, None if nothing is negated), and the docnums both let through
    (None: every one)."""

    filters: Filters | None
    excluded: np.ndarray | None
    allowed: np.ndarray | None


@dataclass(frozen=True)
class RankedSections:
    """What ranking a query found (`SearchIndex.rank`): the ranking (the best first, or by
    date), what relaxing the query added to it, and the facet counts and timeline over all of
    its matches."""

    ranking: Ranking
    relaxation: Relaxation | None = None
    facets: Facets | None = None
    timeline: list[MonthCount] | None = None
    loose: ParsedQuery | None = None  # the best-match reading whose matches follow the strict ones

    def highlight(self, parsed: ParsedQuery) -> HighlightSpec:
        """What the hits of `parsed` mark: with a best-match reading after it, that reading's
        marks too (a compound's words alone, where a section lacks the compound)."""
        return parsed.highlight if self.loose is None else parsed.highlight | self.loose.highlight


_NO_RANKING = Ranking(0, np.zeros(0, dtype=np.int64), np.zeros(0), np.zeros(0, dtype=np.int64))


@dataclass(frozen=True)
class Page:
    """The part of a ranking one page shows (`SearchIndex.page`): each entry's rank and its
    sections' positions in the ranking, best first (one section, or an article's matching
    sections), and how many articles the whole ranking has when grouped by article."""

    entries: list[tuple[int, list[int]]]
    articles: int | None = None


class Generation:
    """One generation of the index, opened: its Whoosh index and the tables searches build from it
    (facets, article map, titles), each built once, from this generation's segments only.

    Nothing here reads CURRENT again, so a search that holds a `Generation` sees one index from
    start to end; when no searcher holds it any more, it goes, its tables with it."""

    def __init__(self, name: str, index: Index, checksums: dict[str, Checksum]):
        self.name = name
        self.index = index
        self.checksums = checksums  # its files' sizes and digests, as its manifest recorded them
        self._lock = threading.Lock()
        self._tables: dict[type, object] = {}

    def table(self, kind: type[T], reader) -> T:
        """`kind.build(reader)`, `reader` one of this generation's, built on first use (once,
        whatever the threads). The reader of a searcher already open: this generation's folder
        may have been deleted since (two reindexes later), its open files still read."""
        with self._lock:
            built = self._tables.get(kind)
            if built is None:
                built = self._tables[kind] = kind.build(reader)
            return cast(T, built)  # what is kept under `kind` is a `kind`


@dataclass(frozen=True)
class GenerationView:
    """What one search works with: a generation and a searcher of that same generation."""

    generation: Generation
    searcher: Searcher

    @property
    def name(self) -> str:
        return self.generation.name

    def table(self, kind: type[T]) -> T:
        """This generation's `kind` table (FacetTable, ArticleMap, ...)."""
        return self.generation.table(kind, self.searcher.reader())


class SearchIndex:
    """A searchable index root; cheap to keep for the life of a process."""

    def __init__(
        self,
        root: Path | str,
        options: QueryOptions = QueryOptions(),
        synonyms_path: Path | str | None = None,
        time_budget: float | None = DEFAULT_TIME_BUDGET,
    ):
        """`time_budget` bounds each search's ranking in seconds (None: unbounded). Whoosh's own
        way of searching (its matchers and collectors) is the tests' oracle, not an option here:
        `tests/whoosh_oracle.py`."""
        self.store = IndexStore(root)
        self.options = options
        self.time_budget = time_budget
        self.user_synonyms = UserSynonyms(synonyms_path or default_synonyms_path())
        self._lock = threading.Lock()
        self._local = threading.local()  # this thread's open searcher: Whoosh searchers are not thread-safe
        self._live: Generation | None = None
        # Set by `warm` (a server): a new generation is made ready (opened, these tables built) in
        # a thread of its own while searches keep the live one, and goes live only when ready.
        self._warm_tables: tuple[type, ...] = ()
        self._warming: threading.Thread | None = None
        self._warm_failed = ""  # the generation whose making ready failed: searches open it themselves
        # What reorders the first stage's best sections (`rerank.py`); a training run puts one
        # that records the features here.
        self.reranker: Reranker | None = shipped() if options.rerank else None

    def open(self) -> tuple[str, Index]:
        """The live generation's name and Whoosh index (see `generation`)."""
        generation = self.generation()
        return generation.name, generation.index

    def generation(self) -> Generation:
        """The live generation: IndexMissingError if none was built, DamagedIndexError if its
        files are not those its reindex wrote.

        The one place that reads CURRENT for a search: everything a search uses comes from the
        `Generation` it got here, so a swap in the middle of a search changes nothing for it.
        A generation is read through (every byte against its checksum) once in this process,
        before any search uses it: a server keeps searching the previous one meanwhile. After
        that each call compares the files' sizes only (a few stat calls), so a file cut short
        under a running server is refused before a search reads past its end.

        Once `warm` has run (a server), a new generation is made ready in the background, its
        tables built, and the live one is returned until then (`_warms`): the first search on
        the new one builds nothing (issue 29: 0.5-1.6 s on livedoor after each swap)."""
        for attempt in range(_OPEN_ATTEMPTS):
            folder = self.store.current()
            with self._lock:
                live = self._live
            if live is not None and live.name == folder.name:
                problem = next(iter(file_problems(folder, live.checksums, content=False)), None)
                if problem is None:
                    return live
                if Manifest.load_checksums(folder) == live.checksums:
                    raise DamagedIndexError(self.store.root, problem)
                # Another generation under the same name (its folder deleted, the number reused
                # by the next reindex): opened below like any new one.
            elif live is not None and self._warms(folder.name):
                return live
            try:
                opened = self._opened(folder)
            except DamagedIndexError:
                # Two reindexes in a row can delete the folder CURRENT named a moment ago.
                if attempt + 1 < _OPEN_ATTEMPTS and self.store.current_name() != folder.name:
                    continue
                raise
            with self._lock:
                if self._live is None or (self._live.name, self._live.checksums) != (opened.name, opened.checksums):
                    self._live = opened
                return self._live
        raise AssertionError("unreachable")

    def _opened(self, folder: Path) -> Generation:
        """The generation in `folder`, read through against its checksums and opened."""
        checksums = self.store.verify(folder)  # outside the lock: other threads search meanwhile
        with _read_as_damage(self.store, folder):
            index = whoosh_index.open_dir(str(folder))
        return Generation(folder.name, index, checksums)

    def _warms(self, name: str) -> bool:
        """Whether generation `name` is being made ready in the background (started here if no
        generation is), so a search keeps the live one; False without `warm`, and for a
        generation whose making ready failed (a search opens it itself and meets the error)."""
        with self._lock:
            if not self._warm_tables or self._warm_failed == name:
                return False
            if self._warming is None:  # one at a time; a newer one after it, on the next search
                self._warming = threading.Thread(
                    target=self._make_ready, args=(name,), name=f"midashi-warm-{name}", daemon=True
                )
                self._warming.start()
            return True

    def _make_ready(self, name: str) -> None:
        """Open generation `name`, build its `_warm_tables` with a searcher of its own, then make it
        live. Any error is left for a search to meet: it then opens the generation itself."""
        try:
            ready = self._opened(self.store.root / name)
            searcher = ready.index.searcher(weighting=BM25F())
            try:
                for kind in self._warm_tables:
                    ready.table(kind, searcher.reader())
            finally:
                searcher.close()
            with self._lock:
                self._live = ready
        except Exception:  # whatever it is, the search that opens the generation reports it
            with self._lock:
                self._warm_failed = name
        finally:
            with self._lock:
                self._warming = None

    def wait_until_ready(self) -> None:
        """Wait for the generation being made ready, if one is (tests; a search never waits)."""
        with self._lock:
            warming = self._warming
        if warming is not None:
            warming.join()

    @contextmanager
    def view(self) -> Iterator[GenerationView]:
        """The live generation and a searcher of it, for one search from start to end.

        Normally this thread's searcher, kept open between searches: opening one (every segment
        file opened and mapped) costs more than a typical search. A new generation gets a new
        searcher and the old one is closed, which lets the old generation and its tables go.
        """
        cached: GenerationView | None = getattr(self._local, "view", None)
        if cached is None or cached.generation is not self.generation():
            self._local.view = None
            if cached is not None:
                cached.searcher.close()
            cached = self._local.view = GenerationView(*self._new_searcher())
        with _read_as_damage(self.store, self.store.root / cached.name):
            yield cached

    def warm(self, *more_tables: type) -> None:
        """Build now what the first search would otherwise build on its way (the live generation's
        tables, `SEARCH_TABLES` and `more_tables`; Sudachi's dictionary; the ranker's model), by
        running one: a server calls this before it takes requests, so its first search is as
        fast as the later ones (issue 29: 1.6 s for the first on livedoor, 20-40 ms after).
        From then on each new generation gets the same tables before it goes live (`generation`)."""
        self._warm_tables = (*SEARCH_TABLES, *more_tables)
        with self.view() as view:
            for kind in (*SEARCH_TABLES, *more_tables):
                view.table(kind)
        if self.reranker is not None:
            self.reranker.booster()
        try:
            self.search(WARM_UP_QUERY, facets=True, group=True)
        except QueryTooExpensive:  # a slow machine: the tables are built, which is the point
            pass

    @contextmanager
    def read_errors_as_damage(self) -> Iterator[None]:
        """Raise, in place of an error a damaged live generation caused, that damage (one line and
        its repair): for the callers with no error page to ask `damage_behind` later (the CLI, the
        server's warm-up). A query's own errors go on as they are."""
        try:
            yield
        except (QueryError, DamagedIndexError):
            raise
        except READ_ERRORS as error:
            damage = self.damage_behind(error)
            if damage is None:
                raise
            raise damage from None

    def damage_behind(self, error: BaseException) -> DamagedIndexError | None:
        """The damage of the live generation an unexpected error came from, if it is damaged
        (read through against its checksums); None when it is intact (the error is a bug)."""
        if isinstance(error, DamagedIndexError):
            return error
        if not isinstance(error, READ_ERRORS):
            return None
        try:
            folder = self.store.current()
        except (DamagedIndexError, IndexMissingError):
            return None
        return _damage_behind(self.store, folder, error)

    def _new_searcher(self) -> tuple[Generation, Searcher]:
        """The live generation and a new searcher of it (its segment files opened)."""
        for attempt in range(_OPEN_ATTEMPTS):
            generation = self.generation()
            try:
                return generation, generation.index.searcher(weighting=BM25F())
            except (OSError, EmptyIndexError):
                # Reindexes since `generation()` may have deleted the folder (while the next one
                # was made ready: it is waited for).
                if attempt + 1 == _OPEN_ATTEMPTS or self.store.current_name() == generation.name:
                    raise
                self.wait_until_ready()
        raise AssertionError("unreachable")

    @contextmanager
    def searcher(self) -> Iterator[tuple[str, Searcher]]:
        """The live generation's name and a searcher of it (see `view`)."""
        with self.view() as view:
            yield view.name, view.searcher

    def parse(self, query: str) -> ParsedQuery:
        """The query as this index runs it (options, the user's synonyms and the index's lexicon)."""
        with self.view() as view:
            return parse_query(query, view.searcher.schema, self.options, self.user_synonyms, self._lexicon(view))

    def highlight(self, query: str) -> HighlightSpec:
        """What a page showing `query`'s matches marks (an article page, other sections): its own
        marks and, for a query with a best-match reading, that reading's (a compound's words
        alone, where a section lacks the compound: `HighlightSpec.for_section`)."""
        with self.view() as view:
            schema, lexicon = view.searcher.schema, self._lexicon(view)
            parsed = parse_query(query, schema, self.options, self.user_synonyms, lexicon)
            loose = relaxed_query(parsed, schema, self.options, self.user_synonyms, lexicon)
        return parsed.highlight if loose is None else parsed.highlight | loose.highlight

    @staticmethod
    def _lexicon(view: GenerationView) -> IndexLexicon:
        return IndexLexicon(view.searcher, view.table(LexiconMemory))

    def search(
        self,
        query: str,
        limit: int = DEFAULT_LIMIT,
        offset: int = 0,
        snippets: bool = True,
        *,
        filters: Filters | None = None,
        sort: str = "relevance",
        facets: bool = False,
        group: bool = False,
        marks: bool = True,
        relax: bool = True,
    ) -> SearchResults:
        """Rank sections for `query`; `offset` skips that many hits (for pages).

        A query of words that finds fewer than RELAX_BELOW_ARTICLES articles with every word is
        followed by the sections that match some of them, best match first (`relaxed` says so;
        relevance order only, and not with `relax` False).

        Without `marks`, titles and headings come back with nothing marked and no snippets (for
        callers that read only ids and scores).

        With `group`, `limit` and `offset` count articles instead: each article appears once, at
        the rank of its best section, with its other matching sections in `groups`.
        With `facets`, the articles of every matching section are counted by category, source
        and month too (and the timeline's months). A best-match ranking (a question, or the
        relaxed reading after a query) is cut to its best BEST_MATCH_ARTICLES articles when it is
        ranked whole (grouped, or with facets), so the total, the article count, the facets, the
        timeline and the pages are of the same results.

        Three steps, each on the one generation `view` holds: `rank` (every match, ordered),
        `page` (the part shown, by section or by article), `present` (hits with their snippets).
        """
        started = time.perf_counter()
        limit = max(1, min(limit, MAX_LIMIT))
        offset = max(0, offset)
        if sort not in SORTS:
            raise QueryError(
                f"unknown sort order {sort!r}: use one of {', '.join(SORTS)}",
                f"並べ替えの指定が正しくありません: {sort}（{'、'.join(SORTS)} のどれかです）。",
            )
        with self.view() as view:
            parsed = parse_query(query, view.searcher.schema, self.options, self.user_synonyms, self._lexicon(view))
            wanted = None if group or facets else offset + limit  # grouping and counting rank every match
            ranked = self.rank(view, parsed, wanted, filters=filters, sort=sort, facets=facets, relax=relax)
            page = self.page(view, ranked.ranking, offset, limit, group)
            spec = ranked.highlight(parsed) if marks else None
            shown = self.present(view, ranked.ranking, page, spec, snippets and marks)
            return SearchResults(
                parsed.text,
                ranked.ranking.total,
                [article.best for article in shown],
                (time.perf_counter() - started) * 1000,
                parsed.natural_language,
                view.name,
                facets=ranked.facets,
                groups=shown if group else [],
                articles=page.articles,
                relaxed=ranked.relaxation,
                sort=sort,
                timeline=ranked.timeline,
            )

    def rank(
        self,
        view: GenerationView,
        parsed: ParsedQuery,
        wanted: int | None,
        *,
        filters: Filters | None = None,
        sort: str = "relevance",
        facets: bool = False,
        relax: bool = True,
    ) -> RankedSections:
        """Every section `parsed` matches within `filters`, the best `wanted` of them in `sort`
        order (all if None), what relaxing the query added, and the facet counts and timeline of
        them all."""
        searcher = view.searcher
        size = searcher.doc_count_all()
        if not size:  # no articles yet: nothing to rank (an idf would be log 0)
            if not facets:
                return RankedSections(_NO_RANKING)
            return RankedSections(_NO_RANKING, None, Facets([], [], [], []), [])
        excluded = self._excluded_sections(view, parsed.excluded)
        scope = Scope(filters, excluded, _without(self._allowed(view, filters), excluded, size))
        deadline = Deadline(self.time_budget)  # one for all the rankings of this search
        relaxation, loose = None, None
        if sort != "relevance" and not (parsed.natural_language and wanted is None):
            ranking = self._by_date(view, parsed.query, wanted, scope, sort == "newest", deadline)
        else:
            rank = self._ranker(view, scope, deadline)
            # The reranker reorders the first stage's RERANK_DEPTH best: those are asked for.
            first_wanted = wanted if wanted is None or self.reranker is None else max(wanted, RERANK_DEPTH)
            ranking = rank(parsed.query, first_wanted)
            # Only a relaxable query has a best-match reading to follow it: counting the
            # articles of anything else (a question, whose reading is best match already)
            # reads stored fields for nothing.
            if (
                relax
                and self.options.relax
                and parsed.relaxable
                and _too_few_articles(searcher, ranking.matched)
                and not self._enough_without_filters(view, parsed, scope, deadline)
            ):
                ranking, relaxation, loose = self._relaxed(
                    searcher, parsed, self._lexicon(view), ranking, first_wanted, rank
                )
            if self.reranker is not None:  # (relaxed matches, after the strict ones, stay after them)
                strict = len(ranking.docnums) if relaxation is None else relaxation.strict_total
                ranking = self.reranker.reranked(searcher, parsed, ranking, strict, view.table(SectionTable), deadline)
            if wanted is None and (parsed.natural_language or (relaxation is not None and relaxation.partial)):
                ranking = best_articles(ranking, view.table(ArticleMap).numbers, BEST_MATCH_ARTICLES)
                if relaxation is not None:  # the partial matches listed are those of the best articles
                    relaxation = replace(relaxation, partial=ranking.total - relaxation.strict_total)
            if sort != "relevance":  # a question by date: its results worth showing, newest or oldest first
                ordered = view.table(FacetTable).by_date(ranking.docnums, sort == "newest")
                ranking = Ranking(ranking.total, ordered, np.zeros(len(ordered)), ranking.matched)
        if not facets:
            return RankedSections(ranking, relaxation, loose=loose)
        counts = self._facet_counts(view, parsed.query, scope, ranking, relaxation)
        timeline = view.table(FacetTable).timeline(ranking.matched, view.table(ArticleMap).numbers)
        return RankedSections(ranking, relaxation, counts, timeline, loose)

    @staticmethod
    def _enough_without_filters(view: GenerationView, parsed: ParsedQuery, scope: Scope, deadline: Deadline) -> bool:
        """Whether the words alone find enough articles that a filter only narrows them: then a
        filtered search stays strict. A facet chip is counted among the strict matches, and its
        click must list those, not relax into articles with some of the words (a chip of 1
        article led to 47)."""
        if not scope.filters:
            return False
        size = view.searcher.doc_count_all()
        unfiltered = _without(None, scope.excluded, size)
        matched = top_documents(view.searcher, parsed.query, 1, unfiltered, budget=deadline).matched
        return not _too_few_articles(view.searcher, matched)

    @staticmethod
    def _allowed(view: GenerationView, filters: Filters | None) -> np.ndarray | None:
        """The docnums `filters` let through, sorted (None: every one): the columns' filters
        (`FacetTable.allowed`) and the names' (`NameTable.allowed`) together."""
        allowed = view.table(FacetTable).allowed(filters)
        if filters is None or not filters.names:
            return allowed
        named = view.table(NameTable).allowed(filters.names)
        return named if allowed is None else np.intersect1d(allowed, named, assume_unique=True)

    def _ranker(
        self, view: GenerationView, scope: Scope, deadline: Deadline
    ) -> Callable[[wq.Query, int | None], Ranking]:
        """How the relevance order ranks a query (the query, its relaxed reading, each of its
        words alone): the arrays' evaluation, within `scope`, by `deadline`."""
        return lambda query, limit: top_documents(view.searcher, query, limit, scope.allowed, budget=deadline)

    def _by_date(
        self, view: GenerationView, query: wq.Query, wanted: int | None, scope: Scope, newest: bool, deadline: Deadline
    ) -> Ranking:
        """Every match of `query` within `scope` (the arrays' evaluation), newest or oldest first
        by the date column (`FacetTable.by_date`); a date order has no scores (all 0)."""
        matched = top_documents(view.searcher, query, 1, scope.allowed, budget=deadline).matched
        docnums = view.table(FacetTable).by_date(matched, newest)[:wanted]
        return Ranking(len(matched), docnums, np.zeros(len(docnums)), matched)

    def _facet_counts(
        self, view: GenerationView, query: wq.Query, scope: Scope, ranking: Ranking, relaxation: Relaxation | None
    ) -> Facets:
        """The facet counts of the articles of every section of `ranking` (the relaxed ones too),
        with the people and places they name."""
        articles = view.table(ArticleMap).numbers
        counted = view.table(FacetTable).facets(ranking.matched, articles)
        return replace(counted, **view.table(NameTable).facets(ranking.matched, articles))

    def page(self, view: GenerationView, ranking: Ranking, offset: int, limit: int, group: bool) -> Page:
        """The part of `ranking` one page shows: hits `offset`.. `offset + limit`, or with `group`
        the articles at those ranks (by their best section), each with its matching sections."""
        if not group:
            return Page(
                [(position + 1, [position]) for position in range(offset, min(offset + limit, len(ranking.docnums)))]
            )
        articles, sections = view.table(ArticleMap).group(ranking.docnums, offset, limit)
        return Page(list(zip(itertools.count(offset + 1), sections)), articles)

    @staticmethod
    def present(
        view: GenerationView, ranking: Ranking, page: Page, spec: HighlightSpec | None, snippets: bool
    ) -> list[ArticleGroup]:
        """The page's hits, what `spec` matched marked in titles and headings; a snippet for each
        entry's first (best) section when `snippets`. A hit of the flat list is a group of one."""
        shown = []
        for rank, positions in page.entries:
            best, *others = (
                _hit(view.searcher, int(ranking.docnums[p]), float(ranking.scores[p]), spec, rank, snippets and i == 0)
                for i, p in enumerate(positions)
            )
            shown.append(ArticleGroup(best, others))
        return shown

    def _excluded_sections(self, view: GenerationView, negated: wq.Query | None) -> np.ndarray | None:
        """Every section (sorted docnums) of the articles in which some section matches what the
        query negates, None when it negates nothing: a negated word leaves out whole articles.

        The arrays' way: the negated part's matches, their article numbers (`ArticleMap`), and the
        sections with those numbers, each step one array operation."""
        if negated is None:
            return None
        searcher = view.searcher
        numbers = view.table(ArticleMap).numbers  # built once per generation, before the time budget starts
        matched = top_documents(searcher, negated, 1, budget=self.time_budget).matched
        if not len(matched):
            return np.zeros(0, dtype=np.int64)
        left_out = np.zeros(int(numbers.max()) + 2, dtype=bool)  # by article number; the last: none (-1)
        left_out[numbers[matched]] = True
        left_out[-1] = False
        return np.flatnonzero(left_out[numbers])

    def _relaxed(
        self,
        searcher: Searcher,
        parsed: ParsedQuery,
        lexicon: IndexLexicon,
        strict: Ranking,
        wanted: int | None,
        rank: Callable[[wq.Query, int | None], Ranking],
    ) -> tuple[Ranking, Relaxation | None, ParsedQuery | None]:
        """The strict ranking followed by the best-match reading's other sections, scored below
        the least of the strict ones (its order kept), what to tell the user, and that reading;
        the strict ranking alone when the query has no best-match reading. `rank` ranks a query."""
        loose = relaxed_query(parsed, searcher.schema, self.options, self.user_synonyms, lexicon)
        if loose is None:
            return strict, None, None
        more = rank(loose.query, None if wanted is None else wanted + strict.total)
        extra = ~np.isin(more.docnums, strict.matched)
        docnums, scores = more.docnums[extra], more.scores[extra]
        added = np.setdiff1d(more.matched, strict.matched, assume_unique=True)
        strict_articles = len({searcher.stored_fields(int(d))["article_id"] for d in strict.matched})
        missing, absent = _missing_words(parsed, rank) if not strict.total else ([], False)
        if not len(added):
            return strict, Relaxation(strict.total, strict_articles, 0, missing, absent), None
        if len(strict.scores) and len(scores) and scores[0] >= strict.scores[-1]:
            scores = scores * (strict.scores[-1] / scores[0] * RELAXED_BELOW)
        ranking = Ranking(
            strict.total + len(added),
            np.concatenate([strict.docnums, docnums])[:wanted],
            np.concatenate([strict.scores, scores])[:wanted],
            np.union1d(strict.matched, added),
        )
        return ranking, Relaxation(strict.total, strict_articles, len(added), missing, absent), loose


def best_articles(ranking: Ranking, articles: np.ndarray, limit: int) -> Ranking:
    """`ranking` cut to the sections of its best `limit` articles (by their best section), in its
    order; `articles` maps a docnum to its article's number (`ArticleMap.numbers`)."""
    numbers = articles[ranking.docnums]
    found, first = np.unique(numbers, return_index=True)
    if len(found) <= limit:
        return ranking
    keep = np.isin(numbers, found[np.argsort(first)][:limit])
    docnums = ranking.docnums[keep]
    return Ranking(len(docnums), docnums, ranking.scores[keep], np.sort(docnums))


def _without(allowed: np.ndarray | None, excluded: np.ndarray | None, size: int) -> np.ndarray | None:
    """The docnums `allowed` lets through (all `size` of them if None) but for `excluded`."""
    if excluded is None:
        return allowed
    keep = np.ones(size, dtype=bool) if allowed is None else np.zeros(size, dtype=bool)
    if allowed is not None:
        keep[allowed] = True
    keep[excluded] = False
    return np.flatnonzero(keep)


# A relaxed match's score is at most this share of the least strict match's (see `_relaxed`).
RELAXED_BELOW = 0.99


def _too_few_articles(searcher: Searcher, matched: np.ndarray) -> bool:
    """Whether the sections in `matched` belong to fewer than RELAX_BELOW_ARTICLES articles: read
    one section at a time until that many are seen (a handful, mostly), not the article map."""
    if len(matched) < RELAX_BELOW_ARTICLES:
        return True
    seen: set[str] = set()
    for docnum in matched.tolist():
        seen.add(searcher.stored_fields(docnum)["article_id"])
        if len(seen) >= RELAX_BELOW_ARTICLES:
            return False
    return True


def _missing_words(parsed: ParsedQuery, rank: Callable[[wq.Query, int | None], Ranking]) -> tuple[list[str], bool]:
    """The query's words (as typed) that no section has, and True; else those that no section has
    together with all the other words (each of the others together finds something), and False."""
    units = query_units(parsed)
    found = [rank(unit, 1).matched for _, unit in units]
    absent = [text for (text, _), matched in zip(units, found) if not len(matched)]
    if absent:
        return absent, True
    apart = []
    for number, (text, _) in enumerate(units):
        others = [matched for other, matched in enumerate(found) if other != number]
        if others and len(functools.reduce(np.intersect1d, others)):
            apart.append(text)
    return apart, False


class LexiconMemory:
    """What one generation's lexicon answered (model names, synonym group words), kept for the
    searches after: a table of one generation."""

    def __init__(self):
        self.lock = threading.Lock()
        self.answers: dict[tuple, list[str]] = {}

    @classmethod
    def build(cls, reader) -> LexiconMemory:
        return cls()


class IndexLexicon:
    """The `query.Lexicon` of the index being searched, through one searcher."""

    def __init__(self, searcher: Searcher, memory: LexiconMemory):
        self.searcher = searcher
        self.memory = memory

    def _remembered(self, key: tuple, find) -> list[str]:
        with self.memory.lock:
            known = self.memory.answers.get(key)
        if known is None:
            known = find()
            with self.memory.lock:
                if len(self.memory.answers) >= LEXICON_ANSWERS_KEPT:  # a server's queries never end
                    self.memory.answers.clear()
                self.memory.answers[key] = known
        return known

    def model_names(self, word: str) -> list[str]:
        return self._remembered(("models", word), lambda: self._model_names(word))

    def _model_names(self, word: str) -> list[str]:
        reader = self.searcher.reader()
        model = re.compile(re.escape(word) + r"\d[a-z0-9-]*")
        names = [
            name
            for term in itertools.islice(reader.expand_prefix("body", word), MODEL_PREFIX_SCAN)
            for name in (term.decode("utf-8") if isinstance(term, bytes) else term,)
            if model.fullmatch(name)
        ]
        names.sort(key=lambda name: (-reader.doc_frequency("body", name), name))
        return names[:MAX_MODEL_NAMES]

    def has_reading(self, reading: str) -> bool:
        """Whether a word of the index reads `reading` (none does in an index built before the
        reading field)."""
        reader = self.searcher.reader()
        return "reading" in reader.schema and bool(reader.doc_frequency("reading", reading))

    def variants(self, group: int, besides: str = "") -> list[str]:
        return self._remembered(("variants", group, besides), lambda: self._variants(group, besides))

    def _variants(self, group: int, besides: str) -> list[str]:
        """The words of `group` other than `besides` (the word the query has already) that the
        index holds, those in the most sections first. An index written before the
        `synonym_words` field has none to offer (its next reindex rebuilds it: INDEX_FORMAT)."""
        reader = self.searcher.reader()
        if "synonym_words" not in reader.schema:
            return []
        prefix = synonym_word_term(group, "")
        counts: dict[str, int] = {}
        for term in reader.expand_prefix("synonym_words", prefix):
            text = term.decode("utf-8") if isinstance(term, bytes) else term
            if text[len(prefix) :] != besides:
                counts[text[len(prefix) :]] = reader.doc_frequency("synonym_words", text)
        return sorted(counts, key=lambda word: (-counts[word], word))


# What reading a damaged Whoosh file raises: a pickle, struct, Zstandard, zlib or numpy decoding error, a
# short read, the file missing, or Whoosh finding no table of contents (its own IndexError).
READ_ERRORS = (
    pickle.UnpicklingError,
    struct.error,
    zstandard.ZstdError,
    zlib.error,
    OSError,
    EOFError,
    ValueError,
    IndexError,
    KeyError,
    TypeError,
    AttributeError,
    MemoryError,
    OverflowError,
    whoosh_index.IndexError,
    TermNotFound,  # a term the term index lists and its postings file lacks
)


@contextmanager
def _read_as_damage(store: IndexStore, folder: Path) -> Iterator[None]:
    """Turn an error from reading `folder`'s files into the DamagedIndexError behind it.

    Errors that a damaged file can cause are checked against the checksums: when a file does not
    match, the error is that damage (one line naming the file); when every file matches, the
    error is not damage, and goes on as it is. A query's own errors are never damage."""
    try:
        yield
    except (QueryError, DamagedIndexError):
        raise
    except READ_ERRORS as error:
        damage = _damage_behind(store, folder, error)
        if damage is not None:
            raise damage from error
        raise


def _damage_behind(store: IndexStore, folder: Path, error: BaseException) -> DamagedIndexError | None:
    """The damage of `folder` a read error came from: a file that does not match its checksum; or,
    in a generation written before checksums, the error itself (nothing tells damage from a bug
    there, and its next reindex rebuilds it in full anyway). None when every file matches, and for
    an error about a file of another folder (a batch run's output, say)."""
    named = error.filename if isinstance(error, OSError) else None
    if named is not None and not Path(os.path.abspath(os.fsdecode(named))).is_relative_to(os.path.abspath(folder)):
        return None
    try:
        checksums = store.verify(folder)
    except DamagedIndexError as damage:
        return damage
    if checksums:
        return None
    return DamagedIndexError(
        store.root,
        f"{folder.name} could not be read ({type(error).__name__}), and it was written before"
        " checksums, which would say which file is damaged",
    )


class FacetTable:
    """Each document's category, source and month as a code, so the facet counts of any set of
    matches are bincounts, not a walk over them with Whoosh's collector."""

    def __init__(self, names: dict[str, list[str | None]], codes: dict[str, np.ndarray], dates: np.ndarray, date_field):
        self.names = names
        self.codes = codes  # docnum → index into names, -1 for none
        self.dates = dates  # docnum → the date column's value (the column's "no value" for none)
        self.date_field = date_field  # the schema's DATETIME field, for its column values
        # "month" codes one per distinct date; the timeline counts by month: the months the
        # index has, oldest first, and docnum → index into them (-1 for no date).
        self.months, self.month_codes = _by_month(names["month"], codes["month"])

    @classmethod
    def build(cls, reader) -> FacetTable:
        size = reader.doc_count_all()
        names: dict[str, list[str | None]] = {}
        codes: dict[str, np.ndarray] = {}
        for name in _FACET_FIELDS:
            names[name], codes[name] = _term_codes(reader, name)
        dates = _date_column(reader, size)
        values, codes["month"] = np.unique(dates, return_inverse=True)
        names["month"] = [_month(reader.schema["date"], int(value)) for value in values]
        return cls(names, codes, dates, reader.schema["date"])

    def allowed(self, filters: Filters | None) -> np.ndarray | None:
        """The docnums `filters` let through, sorted (None when nothing is restricted): what
        Whoosh's filter query finds (`filter_query` in tests/whoosh_oracle.py), from the columns
        here instead of a walk over a date range's terms (seconds for a year of livedoor)."""
        if not filters:
            return None
        keep = np.ones(len(self.dates), dtype=bool)
        for name, value in (("category", filters.category), ("source", filters.source)):
            if value:
                names = self.names[name]
                keep &= self.codes[name] == (names.index(value) if value in names else -2)
        if filters.date_from or filters.date_to:
            keep &= self.dates != self.date_field.column_type.default_value()
            if filters.date_from:
                keep &= self.dates >= self._date_value(datetime.combine(filters.date_from, datetime.min.time()))
            if filters.date_to:
                keep &= self.dates <= self._date_value(datetime.combine(filters.date_to, datetime.max.time()))
        return np.flatnonzero(keep)

    def by_date(self, docnums: np.ndarray, newest: bool) -> np.ndarray:
        """`docnums` newest (or oldest) first, the undated last either way, equal dates by docnum."""
        dates = self.dates[docnums]
        undated = dates == self.date_field.column_type.default_value()
        later_first = np.iinfo(np.uint64).max - dates if newest else dates
        return docnums[np.lexsort((docnums, later_first, undated))]

    def _date_value(self, when: datetime) -> np.uint64:
        return np.uint64(self.date_field.to_column_value(when))

    def facets(self, matched: np.ndarray, articles: np.ndarray) -> Facets:
        """The facets of the sections `matched` (docnums), counted in articles: `articles` maps
        a docnum to its article's number (`ArticleMap.numbers`)."""
        return _facets(*(self._counts(name, matched, articles) for name in _FACETS))

    def timeline(self, matched: np.ndarray, articles: np.ndarray) -> list[MonthCount]:
        """The articles of the sections `matched` per month, `articles` mapping docnums to article
        numbers (`ArticleMap.numbers`), counted as the facets are (`article_counts`). Oldest first,
        every month from the first to the last, those without a match as 0; undated articles are
        left out."""
        counts = article_counts(matched, self.month_codes[matched], articles, len(self.months))
        found = np.flatnonzero(counts)
        if not len(found):
            return []
        by_month = {_year_month(self.months[code]): int(counts[code]) for code in found.tolist()}
        return [
            MonthCount(f"{year:04d}-{month:02d}", by_month.get((year, month), 0))
            for year, month in _months_between(min(by_month), max(by_month))
        ]

    def _counts(self, name: str, matched: np.ndarray, articles: np.ndarray) -> dict[str | None, int]:
        names = self.names[name]
        counts: dict[str | None, int] = {}
        for code, count in enumerate(article_counts(matched, self.codes[name][matched], articles, len(names))):
            if count:
                counts[names[code]] = counts.get(names[code], 0) + int(count)
        return counts


def article_counts(docnums: np.ndarray, codes: np.ndarray, articles: np.ndarray, size: int) -> np.ndarray:
    """How many distinct articles have each value, by value code (an array of `size` counts).

    `docnums` and `codes` are pairs: section `docnums[i]` has the value `codes[i]` (-1: none), so a
    section may have many values (repeat its docnum) or one (`codes = table[docnums]`); `articles`
    maps a docnum to its article's number (`ArticleMap.numbers`). An article counts once per value
    however many of its sections have it. Array operations only: one key per (value, article)
    pair, one of each key, a bincount of their values."""
    keep = codes >= 0
    numbers = articles[docnums[keep]].astype(np.int64) + 1  # -1 (no article) → 0: counted as one
    if not len(numbers):
        return np.zeros(size, dtype=np.int64)
    # Sorted, then one of each run (np.unique's hashing path took 9 ms for 日本's names on livedoor).
    keys = np.sort(codes[keep].astype(np.int64) * (int(numbers.max()) + 1) + numbers)
    keys = keys[np.concatenate(([True], keys[1:] != keys[:-1]))]
    return np.bincount(keys // (int(numbers.max()) + 1), minlength=size)


def _term_codes(reader, fieldname: str) -> tuple[list[str | None], np.ndarray]:
    """An ID field's values, and each document's index into them (-1 for none)."""
    names: list[str | None] = []
    codes = np.full(reader.doc_count_all(), -1, dtype=np.int64)
    for number, term in enumerate(reader.lexicon(fieldname)):
        names.append(term.decode("utf-8"))
        codes[np.fromiter(reader.postings(fieldname, term).all_ids(), dtype=np.int64)] = number
    return names, codes


def _date_column(reader, size: int) -> np.ndarray:
    """Every document's stored date column value, segment by segment: a segment without dates has
    no column at all, and Whoosh's multi-segment column reader then skips its documents."""
    missing = reader.schema["date"].column_type.default_value()
    values = np.full(size, missing, dtype=np.uint64)  # "Q"
    for leaf, offset in reader.leaf_readers():
        if leaf.has_column("date"):
            count = leaf.doc_count_all()
            values[offset : offset + count] = np.fromiter(
                leaf.column_reader("date", translate=False), dtype=np.uint64, count=count
            )
    return values


def _by_month(names: list[str | None], codes: np.ndarray) -> tuple[list[str], np.ndarray]:
    """The distinct months of `names` ("YYYY-MM" or None), oldest first, and `codes` (indexes
    into `names`, -1 for none) as indexes into those months instead (-1 for none)."""
    months = sorted({name for name in names if name})
    position = {month: number for number, month in enumerate(months)}
    recode = np.array([position.get(name, -1) if name else -1 for name in names] + [-1], dtype=np.int64)
    return months, recode[codes]  # a code of -1 reads the last entry: -1


def _year_month(month: str) -> tuple[int, int]:
    year, number = month.split("-")
    return int(year), int(number)


def _months_between(first: tuple[int, int], last: tuple[int, int]) -> list[tuple[int, int]]:
    """Every (year, month) from `first` to `last`, both included."""
    year, month = first
    months = []
    while (year, month) <= last:
        months.append((year, month))
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return months


def _month(field, stored: int) -> str | None:
    """ "YYYY-MM" of a DATETIME column value, None for the column's "no value" sentinel."""
    try:
        when = field.from_column_value(stored)
    except (OverflowError, ValueError):
        return None
    return f"{when:%Y-%m}" if when else None


class ArticleMap:
    """Which article each document belongs to, as a compact array (article_id is not a column)."""

    def __init__(self, numbers: np.ndarray):
        self.numbers = numbers  # docnum → article number

    @classmethod
    def build(cls, reader) -> ArticleMap:
        """From each segment's article ids, kept between generations: an incremental reindex
        keeps most segments (write-once, under random names), and reading the ids of livedoor's
        7,367 articles takes a second or more, at every swap. A document an update deleted may
        keep its old article: it never matches, so it is never grouped."""
        # An index of no articles reads as one EmptyReader, which has no segment.
        leaves = [(leaf, offset) for leaf, offset in reader.leaf_readers() if leaf.segment() is not None]
        segments = [_segment_articles(leaf) for leaf, _ in leaves]
        if not segments:
            return cls(np.zeros(0, dtype=np.int64))
        # One number per article id over all segments (an article's sections share a segment,
        # but nothing depends on it).
        _, numbers = np.unique(np.array([name for names, _ in segments for name in names]), return_inverse=True)
        parts, first = [], 0
        for names, codes in segments:
            mapped = np.append(numbers[first : first + len(names)], -1)  # a code of -1 (no article) stays -1
            parts.append(mapped[codes])
            first += len(names)
        return cls(np.concatenate(parts))

    def group(self, ranked: np.ndarray, offset: int, limit: int) -> tuple[int, list[list[int]]]:
        """Ranked docnums → (how many articles, and for the articles at ranks offset..offset+limit
        by their best section, the positions in `ranked` of their sections, best first)."""
        articles = self.numbers[ranked]
        found, first = np.unique(articles, return_index=True)
        page = found[np.argsort(first)][offset : offset + limit]
        sections: dict[int, list[int]] = {article: [] for article in page.tolist()}
        wanted = np.flatnonzero(np.isin(articles, page))
        for position, article in zip(wanted.tolist(), articles[wanted].tolist()):
            sections[article].append(position)
        return len(found), list(sections.values())


class NameTable:
    """Which people and places each document names (`people`, `places`), as arrays, so the
    names of any set of matches are counted per article with a few array operations: per name
    field, the names and, CSR-style, each document's slice of name codes (a section can name
    several). An index built before these fields has none: its facets are empty, and a filter
    by a name lets nothing through."""

    def __init__(
        self,
        names: dict[str, np.ndarray],
        starts: dict[str, np.ndarray],
        codes: dict[str, np.ndarray],
        articles: np.ndarray,
    ):
        self.names = names  # field → its names, sorted (an array of str)
        self.starts = starts  # field → docnum → where its codes start in `codes` (one more at the end)
        self.codes = codes  # field → every document's name codes, one document after another
        self.articles = articles  # docnum → article number (`ArticleMap.numbers`; -1: deleted)
        person_keys = self._pairs("people")  # (every field's names are checked against the people)
        self.shortened = {field_name: self._shortened_pairs(field_name, person_keys) for field_name in NAME_FIELDS}

    @classmethod
    def build(cls, reader) -> NameTable:
        """From each segment's names (`_segment_names`, kept between generations as article ids
        are), one numbering of the names over all segments."""
        leaves = [(leaf, offset) for leaf, offset in reader.leaf_readers() if leaf.segment() is not None]
        size = reader.doc_count_all()
        names, starts, codes = {}, {}, {}
        for field_name in NAME_FIELDS:
            segments = [_segment_names(leaf, field_name) for leaf, _ in leaves]
            every = [name for names_of, _, _ in segments for name in names_of]
            names[field_name], numbers = np.unique(np.array(every, dtype=str), return_inverse=True)
            counts = np.zeros(size, dtype=np.int64)  # names per document
            parts, first = [], 0
            for (names_of, segment_starts, segment_codes), (_, offset) in zip(segments, leaves):
                documents = len(segment_starts) - 1
                counts[offset : offset + documents] = np.diff(segment_starts)
                parts.append(numbers[first : first + len(names_of)][segment_codes])
                first += len(names_of)
            starts[field_name] = np.concatenate(([0], np.cumsum(counts)))
            codes[field_name] = np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)
        # The article numbers again (cheap: their segments' ids are kept), as a table is built alone;
        # a deleted section (an article's old version) names nobody for it.
        articles = ArticleMap.build(reader).numbers.copy()
        for leaf, offset in leaves:
            if leaf.has_deletions():
                articles[offset + np.fromiter(leaf.deleted_docs_set, dtype=np.int64)] = -1
        return cls(names, starts, codes, articles)

    def _codes_of(self, field_name: str, docnums: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The name codes of `docnums` one document after another, and how many each has."""
        starts = self.starts[field_name]
        firsts, counts = starts[docnums], starts[docnums + 1] - starts[docnums]
        if not counts.sum():
            return np.zeros(0, dtype=np.int64), counts
        placed = np.cumsum(counts) - counts  # where each document's codes go in the result
        return self.codes[field_name][np.repeat(firsts - placed, counts) + np.arange(int(counts.sum()))], counts

    def facets(self, matched: np.ndarray, articles: np.ndarray) -> dict[str, list[FacetCount]]:
        """`people` and `places`: the NAME_FACETS names the most articles among `matched` name in
        a matching section, each article counted once per name (`articles`: docnum → article
        number, as `ArticleMap` numbers them; -1 for none)."""
        found: dict[str, list[FacetCount]] = {}
        for field_name in NAME_FIELDS:
            names = self.names[field_name]
            codes, counts = self._codes_of(field_name, matched)
            if not len(codes):
                found[field_name] = []
                continue
            docnums = np.repeat(matched, counts)
            shown = ~self._shortened_in(field_name, docnums, codes)
            docnums, codes = docnums[shown], codes[shown]
            per_name = article_counts(docnums, codes, articles, len(names))
            named = np.flatnonzero(per_name)  # in name order: `names` is sorted
            top = named[np.argsort(-per_name[named], kind="stable")[:NAME_FACETS]]  # ties by name
            found[field_name] = [FacetCount(str(names[code]), int(per_name[code])) for code in top]
        return found

    def _pairs(self, field_name: str) -> np.ndarray:
        """Every (article, name) key of `field_name` once, sorted; no deleted section's, nor any of
        a section of no article."""
        starts = self.starts[field_name]
        docnums = np.repeat(np.arange(len(starts) - 1), np.diff(starts))
        keys = np.unique(self._keys(field_name, docnums, self.codes[field_name]))
        return keys[keys >= max(len(self.names[field_name]), 1)]

    def _shortened_pairs(self, field_name: str, person_keys: np.ndarray) -> np.ndarray:
        """(article, name) keys, sorted, where the name is a person's the article also names in
        full: a person's short form (長谷部 beside 長谷部誠, 澤 beside 澤穂希), or a place that starts
        a person's name (地名 香川 beside 香川真司). There it is that person, so it is
        counted and filtered as the person alone. People's names are sorted, so those starting
        with a name lie between two `searchsorted` places. `person_keys`: the people's `_pairs`."""
        people, names = self.names["people"], self.names[field_name]
        keys = person_keys if field_name == "people" else self._pairs(field_name)
        owners, codes = np.divmod(keys, max(len(names), 1))
        first = np.searchsorted(people, names, side="right")  # longer names only: 竹島 is 人名 or 地名
        until = np.searchsorted(people, np.char.add(names, "\U0010ffff"))
        owners *= max(len(people), 1)
        named_in_full = np.searchsorted(person_keys, owners + until[codes]) > np.searchsorted(
            person_keys, owners + first[codes]
        )
        return keys[named_in_full]

    def _keys(self, field_name: str, docnums: np.ndarray, codes: np.ndarray) -> np.ndarray:
        """One (article, name) key per pair: article-major (a document of no article, -1, is 0)."""
        return (self.articles[docnums].astype(np.int64) + 1) * max(len(self.names[field_name]), 1) + codes

    def _shortened_in(self, field_name: str, docnums: np.ndarray, codes: np.ndarray) -> np.ndarray:
        """Which (docnum, name code) pairs are a person their article names in full."""
        shortened = self.shortened[field_name]
        if not len(shortened):
            return np.zeros(len(docnums), dtype=bool)
        keys = self._keys(field_name, docnums, codes)
        return shortened[np.minimum(np.searchsorted(shortened, keys), len(shortened) - 1)] == keys

    def allowed(self, wanted: dict[str, str]) -> np.ndarray:
        """The docnums, sorted, that name every name `wanted` (field → name), where it is not a
        person the article names in full (`_shortened_pairs`, as the facets count it)."""
        allowed: np.ndarray | None = None
        for field_name, name in wanted.items():
            names = self.names[field_name]
            code = int(np.searchsorted(names, name))
            if code == len(names) or names[code] != name:
                return np.zeros(0, dtype=np.int64)
            places = np.flatnonzero(self.codes[field_name] == code)
            having = np.searchsorted(self.starts[field_name], places, side="right") - 1  # ascending
            having = having[np.concatenate(([True], having[1:] != having[:-1]))] if len(having) else having
            having = having[~self._shortened_in(field_name, having, np.full(len(having), code))]
            allowed = having if allowed is None else np.intersect1d(allowed, having, assume_unique=True)
        return allowed if allowed is not None else np.zeros(0, dtype=np.int64)


def _segment_names(leaf, field_name: str) -> tuple[list[str], np.ndarray, np.ndarray]:
    """A segment's names in `field_name` (none before the field existed) and, CSR-style, each of
    its documents' indexes into them: where each document's codes start (one more at the end)
    and the codes. Kept with the other per-segment tables (`scoring.SEGMENT_TABLES`)."""
    key = ("names", field_name, leaf.segment().segment_id())
    found = SEGMENT_TABLES.get(key)
    if found is not None:
        return found
    size = leaf.doc_count_all()
    names: list[str] = []
    documents, codes = [], []
    if field_name in leaf.schema:
        for number, term in enumerate(leaf.lexicon(field_name)):
            names.append(term.decode("utf-8"))
            having = np.fromiter(leaf.postings(field_name, term).all_ids(), dtype=np.int64)
            documents.append(having)
            codes.append(np.full(len(having), number, dtype=np.int64))
    every_document = np.concatenate(documents) if documents else np.zeros(0, dtype=np.int64)
    every_code = np.concatenate(codes) if codes else np.zeros(0, dtype=np.int64)
    order = np.argsort(every_document, kind="stable")
    starts = np.concatenate(([0], np.cumsum(np.bincount(every_document, minlength=size))))
    found = (names, starts, every_code[order])
    SEGMENT_TABLES.put(key, found, starts.nbytes + found[2].nbytes + sum(_NAME_BYTES + len(name) for name in names))
    return found


def _segment_articles(leaf) -> tuple[list[str | None], np.ndarray]:
    """A segment's article ids and each of its documents' index into them, kept with the other
    per-segment tables (`scoring.SEGMENT_TABLES`), by segment id: segments are write-once."""
    key = ("articles", leaf.segment().segment_id())
    found = SEGMENT_TABLES.get(key)
    if found is None:
        names, codes = _term_codes(leaf, "article_id")
        found = (names, codes)
        SEGMENT_TABLES.put(key, found, codes.nbytes + sum(_NAME_BYTES + len(name or "") for name in names))
    return found


_NAME_BYTES = 80  # a kept article id's cost besides its characters (a str object and a list slot)


def _facets(category: Mapping, source: Mapping, month: Mapping) -> Facets:
    """Facets from counts per value; the year counts are summed from the month counts."""
    months = {value: count for value, count in month.items() if value}
    years: dict[str, int] = {}
    for value, count in months.items():
        years[value[:4]] = years.get(value[:4], 0) + count
    return Facets(
        category=_by_count(category), source=_by_count(source), year=_newest_first(years), month=_newest_first(months)
    )


def _by_count(counts: Mapping) -> list[FacetCount]:
    return sorted(
        (FacetCount(str(value), count) for value, count in counts.items() if value),
        key=lambda facet: (-facet.count, facet.value),
    )


def _newest_first(counts: Mapping[str, int]) -> list[FacetCount]:
    return [FacetCount(value, counts[value]) for value in sorted(counts, reverse=True)]


def _hit(searcher, docnum: int, score: float, spec: HighlightSpec | None, rank: int, with_snippet: bool) -> Hit:
    """A hit, what `spec` matched marked in its title and heading (nothing without a spec), as
    this section matched it (`HighlightSpec.for_section`)."""
    fields = searcher.stored_fields(docnum)
    if spec is not None:
        texts = (fields.get("title", ""), fields.get("heading", ""), fields.get("body", ""))
        # Without a snippet, a hit is one of an article's other sections: only its heading shows.
        spec = spec.for_section(*texts, shown=texts if with_snippet else texts[1:2])
    title = mark_whole(fields.get("title", ""), spec)
    heading = mark_whole(fields.get("heading", ""), spec)
    snippet = Snippet(())
    if with_snippet:
        assert spec is not None  # snippets are asked for only with marks (`search`)
        snippet = make_snippet(fields.get("body", ""), spec)
    return Hit(
        section_id=fields["section_id"],
        article_id=fields["article_id"],
        section_number=fields.get("section_number", 0),
        title=title,
        heading=heading,
        snippet=snippet,
        score=score,
        rank=rank,
        **article_fields(fields),
    )


def article_fields(stored: dict) -> dict:
    """The article-level stored fields every section carries (for hits and article views)."""
    return {
        "date": stored.get("date"),
        "source": stored.get("source", ""),
        "category": stored.get("category", ""),
        "url": stored.get("url", ""),
    }


# The tables of a generation every search uses (`SearchIndex.warm` builds them before the first).
SEARCH_TABLES = (ArticleMap, FacetTable, NameTable, SectionTable, LexiconMemory)
