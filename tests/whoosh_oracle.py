"""Whoosh's own way of searching: the oracle the engine's rankings are compared with.

`WhooshOracle` is a `SearchIndex` whose rank step asks Whoosh instead of the arrays
(`search/ranking/scoring.py`): a new searcher per search, Whoosh's matchers scoring one posting
at a time (block skipping on), its filter queries for the filters, its sorted collector for date
order and its facet collector for the counts, and a negated word's articles found through the
stored article ids. Paging, grouping and the hits are the engine's own (`SearchIndex.page`,
`present`), so two searches differ only where the ranking does.

It is the "before" of the engine's speed-ups too (`bench/perf.py --before`, with `exact=False`:
Whoosh as it searches by default).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import datetime
from pathlib import Path

import numpy as np
from whoosh import collectors, columns, sorting
from whoosh import query as wq
from whoosh.searching import Results, Searcher

from search.analysis.sudachi import NAME_FIELDS
from search.query.parse import QueryOptions
from search.ranking.scoring import Deadline, Ranking
from search.searching import (
    _FACET_FIELDS,
    _FACETS,
    DEFAULT_TIME_BUDGET,
    NAME_FACETS,
    FacetCount,
    Facets,
    Filters,
    GenerationView,
    Relaxation,
    Scope,
    SearchIndex,
    _facets,
    _month,
    _read_as_damage,
)


class WhooshOracle(SearchIndex):
    """A SearchIndex that ranks, orders by date and counts facets as Whoosh does.

    Whoosh's top-N collector replaces its matcher as it goes and can then miss a section of the
    top N and count fewer matches than there are (see `keep_every_matcher`); `exact` (the
    default) turns that off, for the tests that compare rankings. Without it, this searches as
    Whoosh does by default."""

    def __init__(
        self,
        root: Path | str,
        options: QueryOptions = QueryOptions(),
        synonyms_path: Path | str | None = None,
        exact: bool = True,
        time_budget: float | None = DEFAULT_TIME_BUDGET,
    ):
        super().__init__(root, options, synonyms_path, time_budget=time_budget)
        self.exact = exact

    @contextmanager
    def view(self) -> Iterator[GenerationView]:
        """A new searcher for every search (every segment file opened), as Whoosh's users do."""
        generation, searcher = self._new_searcher()
        with _read_as_damage(self.store, self.store.root / generation.name), searcher:
            yield GenerationView(generation, searcher)

    def _excluded_sections(self, view: GenerationView, negated: wq.Query | None) -> np.ndarray | None:
        """Every section of the articles a negated part matches, from Whoosh's matchers, the
        stored article ids and their postings (the engine uses its article map)."""
        if negated is None:
            return None
        searcher = view.searcher
        ids = {searcher.stored_fields(docnum)["article_id"] for docnum in searcher.docs_for_query(negated)}
        sections = {docnum for article in ids for docnum in searcher.docs_for_query(wq.Term("article_id", article))}
        return np.array(sorted(sections), dtype=np.int64)

    def _ranker(
        self, view: GenerationView, scope: Scope, deadline: Deadline
    ) -> Callable[[wq.Query, int | None], Ranking]:
        def rank(query: wq.Query, limit: int | None) -> Ranking:
            return whoosh_ranking(view.searcher, self._collect(view.searcher, query, limit, scope), scope.allowed)

        return rank

    def _by_date(
        self, view: GenerationView, query: wq.Query, wanted: int | None, scope: Scope, newest: bool, deadline: Deadline
    ) -> Ranking:
        """Whoosh's sorted collector over its own matchers, by the date column (`DateOrder`)."""
        results = self._collect(view.searcher, query, wanted, scope, sortedby=DateOrder("date", reverse=newest))
        ranking = whoosh_ranking(view.searcher, results, scope.allowed)
        return Ranking(ranking.total, ranking.docnums, np.zeros(len(ranking.docnums)), ranking.matched)

    def _facet_counts(
        self, view: GenerationView, query: wq.Query, scope: Scope, ranking: Ranking, relaxation: Relaxation | None
    ) -> Facets:
        """Whoosh's facet collector over every match of `query`, its sections per value, counted
        in distinct stored article ids; with relaxed matches added (two queries' matches, which no
        one collector sees) or a best-match ranking cut to its best articles (BEST_MATCH_ARTICLES),
        the engine's count."""
        if relaxation is not None and relaxation.partial:
            return super()._facet_counts(view, query, scope, ranking, relaxation)
        results = self._collect(view.searcher, query, None, scope, groupedby=facet_requests())
        if len(ranking.matched) < len(whoosh_ranking(view.searcher, results, scope.allowed).matched):
            return super()._facet_counts(view, query, scope, ranking, relaxation)
        reader = view.searcher.reader()

        def articles(docnums) -> int:
            return len({view.searcher.stored_fields(d)["article_id"] for d in docnums if not reader.is_deleted(d)})

        counts = []
        for name in _FACETS:
            groups = {value: articles(docnums) for value, docnums in results.groups(name).items()}
            counts.append({value: count for value, count in groups.items() if count})
        counted = _facets(*counts)
        return replace(
            counted, **{name: _name_counts(view.searcher, name, results.groups(name)) for name in NAME_FIELDS}
        )

    def _collect(self, searcher: Searcher, query: wq.Query, limit: int | None, scope: Scope, **options) -> Results:
        """Whoosh's collector over its own matchers, within `scope` (its filter query and mask)."""
        masked = set(scope.excluded.tolist()) if scope.excluded is not None else set()
        collector = searcher.collector(
            limit=limit,
            filter=filter_query(scope.filters, searcher),
            mask=masked or None,
            optimize=True,
            **options,
        )
        if self.exact:
            keep_every_matcher(collector)
        searcher.search_with_collector(query, collector)
        return collector.results()


def _name_counts(searcher: Searcher, field_name: str, sections: dict[str, list[int]]) -> list[FacetCount]:
    """The names the most articles name in a matching section (Whoosh's overlapping facet lists
    the sections of each name; their stored article ids count the articles), as `NameTable` does."""
    articles = {
        name: {searcher.stored_fields(docnum)["article_id"] for docnum in docnums} for name, docnums in sections.items()
    }
    # A name that is a person the article names in full counts as that person only.
    articles = {name: ids - named_in_full(searcher, field_name, name) for name, ids in articles.items() if name}
    counts = sorted((-len(ids), name) for name, ids in articles.items() if ids and name is not None)  # None: no name
    return [FacetCount(name, -count) for count, name in counts[:NAME_FACETS]]


def whoosh_ranking(searcher: Searcher, results: Results, allowed: np.ndarray | None) -> Ranking:
    """Whoosh's results as a `Ranking`. Its collector recounts every match without the filter and
    with deleted sections: those are taken out here."""
    reader = searcher.reader()
    matched = np.array(sorted(d for d in results.docs() if not reader.is_deleted(d)), dtype=np.int64)
    if allowed is not None:
        matched = np.intersect1d(matched, allowed)
    return Ranking(
        len(results),
        np.array([docnum for _, docnum in results.top_n], dtype=np.int64),
        np.array([score for score, _ in results.top_n], dtype=np.float64),
        matched,
    )


def named_in_full(searcher: Searcher, field_name: str, name: str) -> set[str]:
    """The article ids whose live sections name a person in full that `name` of `field_name`
    stands for: a person whose name starts with it and is longer (長谷部誠 for 長谷部, and for
    地名 香川 香川真司)."""
    reader = searcher.reader()
    if "people" not in reader.schema:
        return set()
    longer = [term for term in reader.expand_prefix("people", name) if len(term) > len(name.encode())]
    return {
        searcher.stored_fields(docnum)["article_id"]
        for term in longer
        for docnum in reader.postings("people", term).all_ids()
        if not reader.is_deleted(docnum)
    }


def filter_query(filters: Filters | None, searcher: Searcher) -> wq.Query | None:
    """`filters` as a Whoosh filter query, None when nothing is restricted (the engine reads the
    same from its columns: `FacetTable.allowed`, and a person's short form as `NameTable` does)."""
    if not filters:
        return None
    parts: list[wq.Query] = []
    if filters.category:
        parts.append(wq.Term("category", filters.category))
    if filters.source:
        parts.append(wq.Term("source", filters.source))
    for field_name, name in filters.names.items():
        parts.append(wq.Term(field_name, name))
        if in_full := named_in_full(searcher, field_name, name):
            parts.append(wq.Not(wq.Or([wq.Term("article_id", article) for article in sorted(in_full)])))
    if filters.date_from or filters.date_to:
        start = datetime.combine(filters.date_from, datetime.min.time()) if filters.date_from else None
        end = datetime.combine(filters.date_to, datetime.max.time()) if filters.date_to else None
        parts.append(wq.DateRange("date", start, end))
    return wq.And(parts)


def keep_every_matcher(collector: collectors.Collector) -> None:
    """Keep every matcher to the end, so the total counts every match and the top N is right.

    Whoosh's top-N collector, even unoptimised, replaces the matcher every 10 matches with one
    that drops the clauses that can no longer reach the top N, and then counts fewer matches than
    there are (125 of 131 for 「W杯 日本代表」 on livedoor, 25,332 of 167,733 for 日本 at 1M
    sections: its dropped clauses were the words inside compounds), and can miss a section that
    belongs in the top N (「日本」 on JaQuAD: jaquad-00095#14, 7th by its own scores, is not in
    Whoosh's top 10; it is without the replacement)."""
    while collector is not None:
        if isinstance(collector, collectors.ScoredCollector):
            collector.replace = 0
        collector = getattr(collector, "child", None)


class MonthFacet(sorting.FieldFacet):
    """Counts per "YYYY-MM" of a DATETIME column (Whoosh's own facet fails on undated documents)."""

    def categorizer(self, global_searcher):
        return MonthCategorizer(global_searcher, self.fieldname)


class DateCategorizer(sorting.Categorizer):
    """A DATETIME column's values, segment by segment (`segment_column`)."""

    def __init__(self, global_searcher, fieldname: str, reverse: bool = False):
        self.fieldname = fieldname
        self.field = global_searcher.schema[fieldname]
        self.column_type = self.field.column_type
        self.reverse = reverse
        self.missing = self.column_type.default_value()
        self.values = None  # the segment's column, set as the collector reaches each segment

    def set_searcher(self, segment_searcher, docoffset):
        self.values = segment_column(segment_searcher, self.fieldname, self.column_type)


class MonthCategorizer(DateCategorizer):
    def key_for(self, matcher, segment_docnum):
        return self.values.sort_key(segment_docnum)

    def key_to_name(self, key) -> str | None:
        return _month(self.field, key)


class DateOrder(sorting.FieldFacet):
    """Date order with undated documents last either way (Whoosh's own puts them first reversed),
    equal dates by docnum (the sorted collector sorts its (key, docnum) pairs)."""

    def categorizer(self, global_searcher):
        return DateOrderCategorizer(global_searcher, self.fieldname, self.reverse)


class DateOrderCategorizer(DateCategorizer):
    def key_for(self, matcher, segment_docnum):
        value = self.values[segment_docnum]
        return (value == self.missing, -value if self.reverse else value)


def segment_column(segment_searcher, fieldname: str, column_type):
    """A segment's column values, unreversed (the categorizers reverse themselves), and "no value"
    for every document of a segment without the column (Whoosh's stand-in is reversed with it)."""
    reader = segment_searcher.reader()
    if reader.has_column(fieldname):
        return reader.column_reader(fieldname, translate=False)
    return columns.EmptyColumnReader(column_type.default_value(), reader.doc_count_all())


def facet_requests() -> dict[str, sorting.FacetType]:
    requests: dict[str, sorting.FacetType] = {
        name: sorting.FieldFacet(name, maptype=sorting.UnorderedList) for name in _FACET_FIELDS
    }
    requests["month"] = MonthFacet("date", maptype=sorting.UnorderedList)
    for name in NAME_FIELDS:  # a section names several: each name's sections, listed
        requests[name] = sorting.FieldFacet(name, allow_overlap=True, maptype=sorting.UnorderedList)
    return requests
