"""Ranking with whole posting lists at a time (numpy) instead of one posting at a time.

Whoosh scores a query one posting at a time in Python, about 4 µs a posting, and its collector then
walks every match: most of a search's time for a question or a common word, growing with the
corpus. `top_documents` lets Whoosh build its matcher tree for the query as usual and evaluates
that same tree over arrays:
- a term's postings are read a block at a time and scored as Whoosh's BM25F `bm25()` scores them,
  operation for operation;
- unions, intersections, exclusions and boosts combine arrays node by node, in the tree's own
  order, so every score is bit for bit Whoosh's (a + 0 is a), and so is the ranking (the livedoor
  tests compare with the straightforward path);
- a phrase is checked for positions only where all its words occur, and scored as Whoosh scores
  it (the sum of its words' scores);
- any other matcher is walked as Whoosh would walk it.

This reads Whoosh 2.7's matcher trees, posting blocks and length columns directly: whoosh-reloaded
is pinned, and the tests would show a change.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass

import numpy as np
from whoosh import query as wq
from whoosh.codec.whoosh3 import LENGTHS_COLUMN, W3LeafMatcher, _lenfield
from whoosh.matching import (
    AndNotMatcher,
    FilterMatcher,
    IntersectionMatcher,
    ListMatcher,
    Matcher,
    NullMatcher,
    NullMatcherClass,
    UnionMatcher,
    WrappingMatcher,
)
from whoosh.reading import IndexReader
from whoosh.scoring import BM25FScorer
from whoosh.searching import Searcher
from whoosh.util.numeric import byte_to_length

# Whoosh stores each document's field length as one byte; a document with no such field reads 1.
_LENGTH_OF_BYTE = np.array([1] + [byte_to_length(code) for code in range(1, 256)], dtype=np.float64)
_FIELD_LENGTHS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # segment reader → {field: lengths}


@dataclass
class Ranking:
    """What `searcher.search(query, limit=…, filter=…)` gives as its length and `top_n`."""

    total: int
    docnums: np.ndarray  # the best, score down, then docnum up as Whoosh's heap keeps ties
    scores: np.ndarray  # theirs
    matched: np.ndarray  # every matching docnum, for facet counts


def top_documents(
    searcher: Searcher, query: wq.Query, limit: int | None, allowed: np.ndarray | None = None
) -> Ranking:
    """The best `limit` documents (all if None) and how many match; `allowed` are the docnums a
    filter lets through."""
    context = searcher.context()  # as Whoosh's collector passes it: the same matcher tree
    query = _fast_phrases(query)
    parts = []
    for segment, _offset in searcher.leaf_searchers():  # offsets are the running doc counts
        matched, scores = _Evaluation(segment.reader()).dense(query.matcher(segment, context))
        parts.append(np.where(matched, scores, np.nan))
    scores = np.concatenate(parts) if parts else np.zeros(0)
    matched = np.flatnonzero(~np.isnan(scores))
    if allowed is not None:
        matched = matched[np.isin(matched, allowed)]
    best = matched
    if limit is not None and limit < len(matched):
        cutoff = -np.partition(-scores[matched], limit - 1)[limit - 1]
        best = matched[scores[matched] >= cutoff]  # every tie at the cutoff, for the docnum order
    best = best[np.lexsort((best, -scores[best]))][:limit]
    return Ranking(len(matched), best, scores[best], matched)


class ArrayScored(wq.Query):
    """A query for Whoosh's collector (facets, date order) whose matches and scores come from the
    arrays: the collector still walks every match, but nothing is scored a posting at a time."""

    def __init__(self, query: wq.Query):
        self.query = _fast_phrases(query)

    def matcher(self, searcher: Searcher, context=None) -> Matcher:
        matched, scores = _Evaluation(searcher.reader()).dense(self.query.matcher(searcher, context))
        ids = np.flatnonzero(matched)
        return _ScoredDocs(ids.tolist(), scores[ids].tolist()) if len(ids) else NullMatcher()


class _ScoredDocs(ListMatcher):
    """Docnums with their finished scores."""

    def __init__(self, ids: list[int], scores: list[float]):
        super().__init__(ids, weights=scores)
        self._best = max(scores)

    def max_quality(self) -> float:  # ListMatcher takes max() of every score each time it is asked
        return self._best


class _Phrase(wq.Phrase):
    """A phrase as `top_documents` runs it: its matcher names the words' matchers and leaves
    intersecting them and checking positions to the arrays. (Whoosh's own phrase matcher
    intersects its words when it is built, a posting at a time.)"""

    def matcher(self, searcher: Searcher, context=None) -> Matcher:
        field = searcher.schema[self.fieldname] if self.fieldname in searcher.schema else None
        if field is None or not field.format or not field.format.supports("positions"):
            return wq.Phrase.matcher(self, searcher, context)  # Whoosh's answer, or its error
        words = []
        for word in self.words:
            try:
                text = field.to_bytes(word)
            except ValueError:
                return NullMatcher()
            if (self.fieldname, text) not in searcher.reader():
                return NullMatcher()
            words.append(wq.Term(self.fieldname, text).matcher(searcher, context))
        unboosted = wq.Phrase(self.fieldname, self.words, slop=self.slop, char_ranges=self.char_ranges)
        phrase = _PhraseWords(words, lambda: unboosted.matcher(searcher, context))
        # Wrapped as Whoosh wraps its own: Whoosh orders an OR's clauses by their sizes, and ties
        # by the matchers' classes, so the classes must be Whoosh's for the sums to add alike.
        return phrase if self.boost == 1.0 else WrappingMatcher(phrase, boost=self.boost)


class _PhraseWords(WrappingMatcher):
    """The words of a phrase, for `_Evaluation`; in place of Whoosh's SpanNear2 matcher, which is
    a WrappingMatcher too. Anything else that asks it for matches gets that matcher, built then."""

    def __init__(self, words: list[Matcher], build):
        self.words = words
        self.boost = 1.0
        self._build = build
        self._child: Matcher | None = None

    @property
    def child(self) -> Matcher:
        if self._child is None:
            self._child = self._build()
        return self._child


def _fast_phrases(query: wq.Query) -> wq.Query:
    return query.accept(
        lambda node: _Phrase(node.fieldname, node.words, slop=1, boost=node.boost, char_ranges=node.char_ranges)
        if type(node) is wq.Phrase and node.slop == 1
        else node
    )


@dataclass
class _Postings:
    """One term's postings in one segment, scored as its Whoosh scorer scores them."""

    ids: np.ndarray
    scores: np.ndarray
    values: list[bytes]  # encoded positions, where the field has them


class _Evaluation:
    """One segment's matcher tree as arrays: (matched, score) of every document, node by node."""

    def __init__(self, reader: IndexReader):
        self.reader = reader
        self.size = reader.doc_count_all()
        self.terms: dict[tuple[str, bytes], _Postings] = {}  # a word read once: phrases repeat words
        self.listed: dict[int, np.ndarray] = {}  # a filter's docnums as a mask, by id of its set

    def dense(self, matcher: Matcher) -> tuple[np.ndarray, np.ndarray]:
        kind = type(matcher)
        if kind is UnionMatcher:  # a + b where both match, else the one that does
            matched, scores = self.dense(matcher.a)
            b_matched, b_scores = self.dense(matcher.b)
            return matched | b_matched, scores + b_scores
        if kind is IntersectionMatcher:
            return _both(self.dense(matcher.a), self.dense(matcher.b))
        if kind is AndNotMatcher:
            matched, scores = self.dense(matcher.a)
            matched &= ~self.dense(matcher.b)[0]
            return matched, np.where(matched, scores, 0.0)
        if kind is WrappingMatcher:  # a boost
            matched, scores = self.dense(matcher.child)
            return matched, scores * matcher.boost
        if kind is FilterMatcher:  # a segment's deleted documents, usually
            matched, scores = self.dense(matcher.child)
            listed = self._listed(matcher._ids)
            matched &= ~listed if matcher._exclude else listed
            return matched, np.where(matched, scores * matcher.boost, 0.0)
        if kind is _PhraseWords:
            found = self._phrase(matcher)
            if found is not None:
                return found
        if isinstance(matcher, NullMatcherClass):
            return np.zeros(self.size, dtype=bool), np.zeros(self.size)
        return self._scatter(self._leaf(matcher) or _walked(matcher))

    def _listed(self, ids) -> np.ndarray:
        """Every term of a segment shares one set of deleted docnums: one mask for them all."""
        if id(ids) not in self.listed:
            mask = np.zeros(self.size, dtype=bool)
            mask[np.fromiter(ids, dtype=np.int64)] = True
            self.listed[id(ids)] = mask
        return self.listed[id(ids)]

    def _scatter(self, postings: _Postings) -> tuple[np.ndarray, np.ndarray]:
        matched, scores = np.zeros(self.size, dtype=bool), np.zeros(self.size)
        matched[postings.ids] = True
        scores[postings.ids] = postings.scores
        return matched, scores

    def _phrase(self, phrase: _PhraseWords) -> tuple[np.ndarray, np.ndarray] | None:
        """Whoosh's phrase: its words' intersection (scored as the sum of the words, in its tree of
        intersections), kept where the words stand one after another, scaled by the boost.
        Positions are decoded only where all the words occur."""
        leaves = [word.child if type(word) is FilterMatcher else word for word in phrase.words]
        if not all(_readable(leaf) for leaf in leaves):
            return None  # walked as Whoosh's own phrase matcher instead
        words = [self._leaf(leaf) for leaf in leaves]
        matched, scores = self._intersection(phrase.words)
        candidates = np.flatnonzero(matched)
        rows = [np.searchsorted(word.ids, candidates) for word in words]
        decode = self.reader.schema[leaves[0].term()[0]].format.decoder("positions")
        for i, docnum in enumerate(candidates):
            if not _in_sequence([decode(word.values[row[i]]) for word, row in zip(words, rows)]):
                matched[docnum] = False
        return matched, np.where(matched, scores * phrase.boost, 0.0)  # SpanNear2 is a wrapper too

    def _intersection(self, matchers: list[Matcher]) -> tuple[np.ndarray, np.ndarray]:
        """The words of a phrase as Whoosh intersects them: `make_binary_tree`'s shape."""
        if len(matchers) == 1:
            return self.dense(matchers[0])
        half = len(matchers) // 2
        return _both(self._intersection(matchers[:half]), self._intersection(matchers[half:]))

    def _leaf(self, matcher: Matcher) -> _Postings | None:
        """A term's postings and BM25F scores, read once; None if this is not a BM25F leaf."""
        if not _readable(matcher):
            return None
        term = matcher.term()  # the same term has the same postings and the same scorer
        if term not in self.terms:
            self.terms[term] = _read_leaf(matcher, self.reader)
        return self.terms[term]


def _both(a: tuple[np.ndarray, np.ndarray], b: tuple[np.ndarray, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """An intersection: where both match, a + b."""
    matched = a[0] & b[0]
    return matched, np.where(matched, a[1] + b[1], 0.0)


def _readable(matcher: Matcher) -> bool:
    """A term's postings scored by BM25F, which `_read_leaf` can read as arrays."""
    if type(matcher) not in (W3LeafMatcher, ListMatcher):
        return False
    return isinstance(_scorer(matcher), BM25FScorer) and matcher.term() is not None


def _scorer(matcher: W3LeafMatcher | ListMatcher):
    return matcher.scorer if type(matcher) is W3LeafMatcher else matcher._scorer


def _read_leaf(matcher: W3LeafMatcher | ListMatcher, reader: IndexReader) -> _Postings:
    fieldname = matcher.term()[0]
    scorer = _scorer(matcher)
    positions = reader.schema[fieldname].format.supports("positions")
    # From the first posting: building an intersection may already have moved it. Docs it skipped
    # cannot match there, and every other node takes a leaf as a whole list.
    matcher.reset()
    if type(matcher) is W3LeafMatcher:
        ids, tf, values = _block_arrays(matcher, positions)
    else:  # a few postings kept inline in the term info
        ids, tf, values = _walk(matcher, matcher.weight, positions)
    fl = _field_lengths(reader, fieldname)[ids]
    idf, B, K1, avgfl = scorer.idf, scorer.B, scorer.K1, scorer.avgfl
    # whoosh.scoring.bm25, operation for operation, so the floats are the same.
    return _Postings(ids, idf * ((tf * (K1 + 1)) / (tf + K1 * ((1 - B) + B * fl / avgfl))), values)


def _block_arrays(matcher: W3LeafMatcher, positions: bool) -> tuple[np.ndarray, np.ndarray, list[bytes]]:
    """All (docnums, weights, encoded positions if wanted) of a term, a stored block at a time."""
    id_blocks: list[np.ndarray] = []
    weight_blocks: list[np.ndarray] = []
    values: list[bytes] = []
    while not matcher._atend:
        matcher._read_data()
        block_ids, block_weights, block_values = matcher._data
        id_blocks.append(np.cumsum(np.asarray(block_ids, dtype=np.int64)))  # stored as deltas from 0
        if block_weights is None or isinstance(block_weights, float):  # all 1.0, or all the same
            weight_blocks.append(np.full(len(block_ids), 1.0 if block_weights is None else block_weights))
        else:
            weight_blocks.append(np.asarray(block_weights, dtype=np.float64))
        if positions:
            values.extend(block_values)
        matcher._next_block()
    if not id_blocks:
        return np.zeros(0, dtype=np.int64), np.zeros(0), values
    return np.concatenate(id_blocks), np.concatenate(weight_blocks), values


def _walked(matcher: Matcher) -> _Postings:
    """Any other matcher, walked one match at a time as Whoosh's collector would."""
    ids, scores, _ = _walk(matcher, matcher.score, False)
    return _Postings(ids, scores, [])


def _walk(matcher: Matcher, value, positions: bool) -> tuple[np.ndarray, np.ndarray, list[bytes]]:
    ids: list[int] = []
    values: list[float] = []
    encoded: list[bytes] = []
    while matcher.is_active():
        ids.append(matcher.id())
        values.append(value())
        if positions:
            encoded.append(matcher.value())
        matcher.next()
    return np.array(ids, dtype=np.int64), np.array(values, dtype=np.float64), encoded


def _in_sequence(positions: list[list[int]]) -> bool:
    """Some position of the first word is followed directly by the second, the third, ..."""
    starts = set(positions[0])
    for offset, later in enumerate(positions[1:], start=1):
        starts.intersection_update(position - offset for position in later)
        if not starts:
            return False
    return True


def _field_lengths(reader: IndexReader, fieldname: str) -> np.ndarray:
    """Every document's length in a field, as Whoosh's `doc_field_length` reads them one by one."""
    cached = _FIELD_LENGTHS.setdefault(reader, {})
    if fieldname not in cached:
        codes = np.zeros(reader.doc_count_all(), dtype=np.uint8)
        column = reader._perdoc._cached_reader(_lenfield(fieldname), LENGTHS_COLUMN)
        if column is not None:
            stored = column._dbfile.get(column._basepos, column._count)
            codes[: column._count] = np.frombuffer(stored, dtype=np.uint8)
        cached[fieldname] = _LENGTH_OF_BYTE[codes]
    return cached[fieldname]
