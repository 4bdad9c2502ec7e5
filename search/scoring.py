"""Ranking with whole posting lists at a time (numpy) instead of one posting at a time.

Whoosh scores a query one posting at a time in Python, about 4 µs a posting, and its collector then
walks every match: most of a search's time for a question or a common word, growing with the
corpus. `top_documents` lets Whoosh build its matcher tree for the query as usual and evaluates
that same tree over arrays:
- a term's postings are read as whole arrays (the array posting format, `postings.py`) and scored
  as Whoosh's BM25F `bm25()` scores them, operation for operation;
- unions, intersections, exclusions and boosts combine arrays node by node, in the tree's own
  order, so every score is bit for bit Whoosh's (a + 0 is a), and so is the ranking (the livedoor
  tests compare with the straightforward path);
- a phrase is checked for positions only where all its words occur, all candidates at once (a
  handful one by one), and scored as Whoosh scores it (the sum of its words' scores);
- any other matcher is walked as Whoosh would walk it;
- what does not change between searches is kept for the next: each term's matcher per searcher
  (`_Term`), decoded posting lists per process (`postings.DECODED_LISTS`).

This reads Whoosh 2.7's matcher trees and length columns directly: whoosh-reloaded is pinned, and
the tests would show a change.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from whoosh import query as wq
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

from .coverage import COVERAGE_WEIGHT, LOOSE_CREDIT, CoverageMatcher
from .postings import DECODED_LISTS, ArrayPostings, PostingArrays, length_codes

# Whoosh stores each document's field length as one byte; a document with no such field reads 1.
_LENGTH_OF_BYTE = np.array([1] + [byte_to_length(code) for code in range(1, 256)], dtype=np.float64)
_LENGTH_NORMS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # segment reader → {(field, …): norms}


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
    """The best `limit` documents (all if None) and how many match; `allowed` are the (sorted)
    docnums a filter lets through: only those are scored."""
    context = searcher.context()  # as Whoosh's collector passes it: the same matcher tree
    query = _for_arrays(query)
    id_parts, score_parts = [np.zeros(0, dtype=np.int64)], [np.zeros(0)]
    for segment, offset in searcher.leaf_searchers():  # offsets are the running doc counts
        evaluation = _Evaluation(segment.reader())
        within = None
        if allowed is not None:
            inside = allowed[(allowed >= offset) & (allowed < offset + evaluation.size)] - offset
            within = _Within(inside, evaluation.size)
        ids, scores = evaluation.evaluate(query.matcher(segment, context), within).as_sparse()
        id_parts.append(ids + offset)
        score_parts.append(scores)
    matched, scores = np.concatenate(id_parts), np.concatenate(score_parts)
    best = np.arange(len(matched))
    if limit is not None and limit < len(matched):
        cutoff = -np.partition(-scores, limit - 1)[limit - 1]
        best = np.flatnonzero(scores >= cutoff)  # every tie at the cutoff, for the docnum order
    best = best[np.lexsort((matched[best], -scores[best]))][:limit]
    return Ranking(len(matched), matched[best], scores[best], matched)


class ArrayScored(wq.Query):
    """A query for Whoosh's collector (facets, date order) whose matches and scores come from the
    arrays: the collector still walks every match, but nothing is scored a posting at a time."""

    def __init__(self, query: wq.Query):
        self.query = _for_arrays(query)

    def matcher(self, searcher: Searcher, context=None) -> Matcher:
        ids, scores = _Evaluation(searcher.reader()).matches(self.query.matcher(searcher, context))
        return _ScoredDocs(ids.tolist(), scores.tolist()) if len(ids) else NullMatcher()


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
            found = _Term(self.fieldname, word).matcher(searcher, context)
            if isinstance(found, NullMatcherClass):  # not in this segment: Whoosh's shortcut
                return NullMatcher()
            words.append(found)
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


class _Term(wq.Term):
    """A term as `top_documents` runs it: its matcher built once per searcher and copied after.

    Whoosh builds a term's matcher from scratch each time (the field's bytes, the term index, a
    scorer's statistics), and a question names a hundred terms. What it builds depends only on
    the searcher, which outlives many searches. The matchers are kept on the searcher itself:
    their scorers refer to it, so they go when it goes."""

    def matcher(self, searcher: Searcher, context=None) -> Matcher:
        weighting = context.weighting if context is not None else searcher.weighting
        era, built = getattr(searcher, _MATCHERS_ATTRIBUTE, (None, {}))
        if era != _matchers_era or len(built) >= CACHED_MATCHERS:
            built = {}
            setattr(searcher, _MATCHERS_ATTRIBUTE, (_matchers_era, built))
        key = (self.fieldname, self.text, weighting)
        original = built.get(key)
        if original is None:
            original = built[key] = wq.Term(self.fieldname, self.text).matcher(searcher, context)
        found = original.copy()  # fresh: a matcher walked by Whoosh moves on
        return found if self.boost == 1.0 else WrappingMatcher(found, boost=self.boost)


CACHED_MATCHERS = 2_000  # per segment searcher, about 2 KB each: the terms of the last few dozen questions
_MATCHERS_ATTRIBUTE = "_midashi_term_matchers"  # on a segment searcher: (era, {(field, text, weighting): matcher})
_matchers_era = 0


def forget_between_searches() -> None:
    """Drop what searches keep for the searches after them (decoded lists, term matchers), so a
    benchmark's warm-up pass does not leave the timed pass every query's terms ready."""
    global _matchers_era
    DECODED_LISTS.clear()
    _matchers_era += 1


def _for_arrays(query: wq.Query) -> wq.Query:
    """The query with the terms and phrases `top_documents` runs its own way."""

    def replaced(node: wq.Query) -> wq.Query:
        if type(node) is wq.Phrase and node.slop == 1:
            return _Phrase(node.fieldname, node.words, slop=1, boost=node.boost, char_ranges=node.char_ranges)
        if type(node) is wq.Term and not node.minquality:
            return _Term(node.fieldname, node.text, boost=node.boost)
        return node

    return query.accept(replaced)


class _Within:
    """The docnums of a segment an evaluation is restricted to: sorted, and as a mask."""

    def __init__(self, ids: np.ndarray, size: int):
        self.ids = ids
        self.mask = np.zeros(size, dtype=bool)
        self.mask[ids] = True


class _Evaluation:
    """One segment's matcher tree as arrays, node by node: each node's `_Matches`, restricted to
    a set of docnums when given one (only those are scored)."""

    def __init__(self, reader: IndexReader):
        self.reader = reader
        self.size = reader.doc_count_all()
        self.terms: dict[tuple[str, bytes], _Matches] = {}  # a word read once: phrases repeat words
        self.listed: dict[int, np.ndarray] = {}  # a filter's docnums as a mask, by id of its set

    def matches(self, matcher: Matcher) -> tuple[np.ndarray, np.ndarray]:
        """Every matching docnum, ascending, and its score."""
        return self.evaluate(matcher).as_sparse()

    def evaluate(self, matcher: Matcher, within: _Within | None = None) -> _Matches:
        kind = type(matcher)
        if kind is UnionMatcher:  # a + b where both match, else the one that does
            return _union(self.evaluate(matcher.a, within), self.evaluate(matcher.b, within), self.size)
        if kind is IntersectionMatcher:  # the rarer side first, the other only where it matched
            if _estimate(matcher.b) < _estimate(matcher.a):
                b = self.evaluate(matcher.b, within)
                return _intersection(self.evaluate(matcher.a, self._where(b)), b)
            a = self.evaluate(matcher.a, within)
            return _intersection(a, self.evaluate(matcher.b, self._where(a)))
        if kind is AndNotMatcher:
            found = self.evaluate(matcher.a, within)
            return found.kept(~self.evaluate(matcher.b, self._where(found)).contains(found, self.size))
        if kind is WrappingMatcher:  # a boost
            return self.evaluate(matcher.child, within).scaled(matcher.boost)
        if kind is FilterMatcher:  # a segment's deleted documents, usually
            found = self.evaluate(matcher.child, within)
            listed = found.at(self._listed(matcher._ids))
            return found.kept(~listed if matcher._exclude else listed).scaled(matcher.boost)
        if kind is CoverageMatcher:
            return self._coverage(matcher, within)
        if kind is _PhraseWords:
            found = self._phrase(matcher, within)
            if found is not None:
                return found
        if isinstance(matcher, NullMatcherClass):
            return _NO_MATCHES
        found = self._leaf(matcher, within)  # already restricted
        return found if found is not None else _walked(matcher).restricted(within)

    def _where(self, found: _Matches) -> _Within:
        return _Within(found.as_sparse()[0], self.size)

    def _listed(self, ids) -> np.ndarray:
        """Every term of a segment shares one set of deleted docnums: one mask for them all."""
        if id(ids) not in self.listed:
            mask = np.zeros(self.size, dtype=bool)
            mask[np.fromiter(ids, dtype=np.int64)] = True
            self.listed[id(ids)] = mask
        return self.listed[id(ids)]

    def _phrase(self, phrase: _PhraseWords, within: _Within | None) -> _Matches | None:
        """Whoosh's phrase: its words' intersection (scored as the sum of the words, in its tree of
        intersections), kept where the words stand one after another, scaled by the boost.
        Positions are read only where all the words occur."""
        leaves = [word.child if type(word) is FilterMatcher else word for word in phrase.words]
        if not all(_readable(leaf) and leaf.has_array_positions() for leaf in leaves):
            return None  # walked as Whoosh's own phrase matcher instead
        words = [self.evaluate(word) for word in phrase.words]  # each read once a search, as its own clause
        candidates, scores = _in_binary_tree(_intersection, words).restricted(within).as_sparse()
        in_sequence = _in_sequence([leaf.with_positions() for leaf in leaves], candidates)
        # Whoosh's SpanNear2 matcher is a wrapper too: the boost multiplies the words' sum.
        return _Matches(scores[in_sequence] * phrase.boost, ids=candidates[in_sequence])

    def _coverage(self, matcher: CoverageMatcher, within: _Within | None) -> _Matches:
        """`CoverageMatcher.score` over arrays: the same additions and products in the same order
        (adding nothing where a clause does not match, as the matcher skips it)."""
        words = [
            (self.evaluate(exact, within).as_sparse(), self.evaluate(loose, within).as_sparse())
            for exact, loose in matcher.words
        ]
        together = [self.evaluate(m, within).as_sparse() for m in matcher.together]
        parts = [part for pair in words for part in pair] + together
        if sum(len(part_ids) for part_ids, _ in parts) < self.size // DENSE_SHARE:
            ids = np.unique(np.concatenate([part_ids for part_ids, _ in parts]))
            at = lambda part_ids: np.searchsorted(ids, part_ids)  # noqa: E731 (positions among the matches)
        else:  # most of the segment: every document has its place
            ids = None
            at = lambda part_ids: part_ids  # noqa: E731
        size = len(ids) if ids is not None else self.size
        total, covered = np.zeros(size), np.zeros(size)
        for ((exact_ids, exact_scores), (loose_ids, loose_scores)), idf in zip(words, matcher.idfs):
            exact_at, loose_at = at(exact_ids), at(loose_ids)
            total[exact_at] += exact_scores
            total[loose_at] += loose_scores
            credit = np.zeros(size)
            credit[loose_at] = LOOSE_CREDIT
            credit[exact_at] = 1.0
            covered += idf * credit
        for part_ids, part_scores in together:
            total[at(part_ids)] += part_scores
        scores = total * (1.0 + COVERAGE_WEIGHT * (covered / matcher.total_idf))
        if ids is not None:
            return _Matches(scores, ids=ids)
        matched = np.zeros(self.size, dtype=bool)
        for part_ids, _ in parts:
            matched[part_ids] = True
        return _Matches(scores, mask=matched)

    def _leaf(self, matcher: Matcher, within: _Within | None) -> _Matches | None:
        """A term's postings and BM25F scores (read once, unless restricted); None if this is not
        a BM25F leaf."""
        if not _readable(matcher):
            return None
        term = matcher.term()  # the same term has the same postings and the same scorer
        if term in self.terms:
            return self.terms[term].restricted(within)
        if within is not None:
            return _read_leaf(matcher, self.reader, within)
        self.terms[term] = _read_leaf(matcher, self.reader)
        return self.terms[term]


# A node matching fewer than 1/DENSE_SHARE of a segment's documents keeps its docnums as a sorted
# array; a bigger one a mask over the segment, which is quicker to combine than sorted arrays.
DENSE_SHARE = 32


@dataclass
class _Matches:
    """A node's matches in one segment: sorted docnums (`ids`) and their scores, or a mask over the
    segment (`mask`) and a score for every document, 0 where it does not match. The arrays are
    never changed in place: a term's are shared by every node that names it."""

    scores: np.ndarray
    ids: np.ndarray | None = None
    mask: np.ndarray | None = None

    def is_empty(self) -> bool:
        return self.ids is not None and not len(self.ids)  # (a mask is kept for many matches)

    def as_sparse(self) -> tuple[np.ndarray, np.ndarray]:
        if self.ids is not None:
            return self.ids, self.scores
        ids = np.flatnonzero(self.mask)
        return ids, self.scores[ids]

    def as_dense(self, size: int) -> _Matches:
        if self.mask is not None:
            return self
        mask, scores = np.zeros(size, dtype=bool), np.zeros(size)
        mask[self.ids] = True
        scores[self.ids] = self.scores
        return _Matches(scores, mask=mask)

    def at(self, flags: np.ndarray) -> np.ndarray:
        """Per-document `flags` of the segment, read where these matches are (in their form)."""
        return flags[self.ids] if self.ids is not None else flags

    def contains(self, other: _Matches, size: int) -> np.ndarray:
        """Which of `other`'s matches are ours too, in `other`'s form."""
        if self.ids is not None and other.ids is not None:
            return np.isin(other.ids, self.ids, assume_unique=True)
        return other.at(self.as_dense(size).mask)

    def kept(self, keep: np.ndarray) -> _Matches:
        """Only the matches `keep` flags (in this form)."""
        if self.ids is not None:
            return _Matches(self.scores[keep], ids=self.ids[keep])
        mask = self.mask & keep
        return _Matches(np.where(mask, self.scores, 0.0), mask=mask)

    def restricted(self, within: _Within | None) -> _Matches:
        """Only the matches among `within`'s docnums (all of them when None)."""
        return self if within is None else self.kept(self.at(within.mask))

    def scaled(self, boost: float) -> _Matches:
        return _Matches(self.scores * boost, ids=self.ids, mask=self.mask)


_NO_MATCHES = _Matches(np.zeros(0), ids=np.zeros(0, dtype=np.int64))


def _union(a: _Matches, b: _Matches, size: int) -> _Matches:
    """a + b where both match, else the one that does (0 + b is b: every sum is Whoosh's)."""
    if a.is_empty():  # most often a word's form that is not in the index
        return b
    if b.is_empty():
        return a
    if a.ids is not None and b.ids is not None and len(a.ids) + len(b.ids) < size // DENSE_SHARE:
        ids = np.union1d(a.ids, b.ids)
        scores = np.zeros(len(ids))
        scores[np.searchsorted(ids, a.ids)] = a.scores
        scores[np.searchsorted(ids, b.ids)] += b.scores
        return _Matches(scores, ids=ids)
    if a.mask is None:
        a, b = b, a  # a + b is b + a in floating point too
    a = a.as_dense(size)
    if b.mask is not None:
        return _Matches(a.scores + b.scores, mask=a.mask | b.mask)
    scores, mask = a.scores.copy(), a.mask.copy()
    scores[b.ids] += b.scores
    mask[b.ids] = True
    return _Matches(scores, mask=mask)


def _intersection(a: _Matches, b: _Matches) -> _Matches:
    """a + b where both match."""
    if a.ids is None and b.ids is None:
        mask = a.mask & b.mask
        return _Matches(np.where(mask, a.scores + b.scores, 0.0), mask=mask)
    if a.ids is None:
        a, b = b, a
    if b.ids is None:
        keep = b.mask[a.ids]
        ids = a.ids[keep]
        return _Matches(a.scores[keep] + b.scores[ids], ids=ids)
    ids, in_a, in_b = np.intersect1d(a.ids, b.ids, assume_unique=True, return_indices=True)
    return _Matches(a.scores[in_a] + b.scores[in_b], ids=ids)


def _in_binary_tree(combine: Callable[[_Matches, _Matches], _Matches], parts: list[_Matches]) -> _Matches:
    """`parts` combined as Whoosh's `make_binary_tree` combines its matchers (so the sums add alike)."""
    if len(parts) == 1:
        return parts[0]
    half = len(parts) // 2
    return combine(_in_binary_tree(combine, parts[:half]), _in_binary_tree(combine, parts[half:]))


def _readable(matcher: Matcher) -> bool:
    """A term's postings in the array format, scored by BM25F: `_read_leaf` reads them as arrays.
    (Segments of indexes built before that format are walked as Whoosh walks them.)"""
    return type(matcher) is ArrayPostings and isinstance(matcher._scorer, BM25FScorer) and matcher.term() is not None


def _read_leaf(matcher: ArrayPostings, reader: IndexReader, within: _Within | None = None) -> _Matches:
    arrays = matcher.arrays
    ids, tf = arrays.ids, arrays.weights
    if within is not None:
        keep = within.mask[ids]
        ids, tf = ids[keep], (None if tf is None else tf[keep])
    tf = tf if tf is not None else 1.0
    scorer = matcher._scorer
    norms = _length_norms(reader, matcher.term()[0], scorer.B, scorer.K1, scorer.avgfl)[ids]
    # whoosh.scoring.bm25, operation for operation, so the floats are the same.
    return _Matches(scorer.idf * ((tf * (scorer.K1 + 1)) / (tf + norms)), ids=ids)


def _estimate(matcher: Matcher) -> int:
    """How many documents a matcher may match, from its leaves' posting counts."""
    kind = type(matcher)
    if kind is UnionMatcher:
        return _estimate(matcher.a) + _estimate(matcher.b)
    if kind is IntersectionMatcher:
        return min(_estimate(matcher.a), _estimate(matcher.b))
    if kind in (WrappingMatcher, FilterMatcher):
        return _estimate(matcher.child)
    if kind is AndNotMatcher:
        return _estimate(matcher.a)
    if kind is _PhraseWords:
        return min(_estimate(word) for word in matcher.words)
    if isinstance(matcher, NullMatcherClass):
        return 0
    return matcher.posting_count() if _readable(matcher) else 1 << 62


def _walked(matcher: Matcher) -> _Matches:
    """Any other matcher, walked one match at a time as Whoosh's collector would."""
    ids: list[int] = []
    scores: list[float] = []
    while matcher.is_active():
        ids.append(matcher.id())
        scores.append(matcher.score())
        matcher.next()
    return _Matches(np.array(scores, dtype=np.float64), ids=np.array(ids, dtype=np.int64))


def _in_sequence(words: list[PostingArrays], candidates: np.ndarray) -> np.ndarray:
    """For each candidate docnum (one that every word's postings hold): does some position of the
    first word have the second word right after it, the third after that, and so on?"""
    if len(candidates) <= FEW_CANDIDATES:
        return _in_sequence_each(words, candidates)
    placed = []  # per word: (candidate number, position - the word's place in the phrase), ascending
    for place, word in enumerate(words):
        begins, ends = _position_bounds(word, candidates)
        counts = ends - begins
        owners = np.repeat(np.arange(len(candidates)), counts)
        firsts = np.repeat(np.cumsum(counts) - counts, counts)  # where each posting's run begins
        positions = word.positions[np.repeat(begins, counts) + np.arange(counts.sum()) - firsts]
        placed.append((owners, positions.astype(np.int64) - place))
    lowest = min(int(shifted.min()) for _, shifted in placed)
    stride = max(int(shifted.max()) for _, shifted in placed) - lowest + 1
    # Candidate number × stride + where the phrase would start: ascending, as owners and each
    # posting's positions are. The rarest word's starts, kept where every other word has one too.
    keyed = sorted((owners * stride + (shifted - lowest) for owners, shifted in placed), key=len)
    starts = keyed[0]
    for keys in keyed[1:]:
        if not len(starts):
            break
        at = np.minimum(np.searchsorted(keys, starts), len(keys) - 1)
        starts = starts[keys[at] == starts]
    found = np.zeros(len(candidates), dtype=bool)
    found[starts // stride] = True
    return found


def _position_bounds(word: PostingArrays, candidates: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Where each candidate's positions begin and end in `word.positions` (every candidate is one
    of the word's docnums)."""
    rows = np.searchsorted(word.ids, candidates)
    return word.starts[rows], word.starts[rows + 1]


# Up to this many candidates, checking each in Python is quicker than the array operations (each
# costs a few microseconds however small its arrays): most phrases have a handful.
FEW_CANDIDATES = 24


def _in_sequence_each(words: list[PostingArrays], candidates: np.ndarray) -> np.ndarray:
    """`_in_sequence`, one candidate at a time."""
    bounds = []  # per word: its positions, and where each candidate's begin and end
    for word in words:
        begins, ends = _position_bounds(word, candidates)
        bounds.append((word.positions, begins.tolist(), ends.tolist()))
    found = np.zeros(len(candidates), dtype=bool)
    for number in range(len(candidates)):
        starts: set[int] | None = None
        for place, (positions, begins, ends) in enumerate(bounds):
            shifted = {position - place for position in positions[begins[number]:ends[number]].tolist()}
            starts = shifted if starts is None else starts & shifted
            if not starts:
                break
        found[number] = bool(starts)
    return found


def _length_norms(reader: IndexReader, fieldname: str, B: float, K1: float, avgfl: float) -> np.ndarray:
    """Every document's BM25 length normalisation in a field, `K1 * ((1 - B) + B * fl / avgfl)`
    as `whoosh.scoring.bm25` computes it, of each document's length as Whoosh's
    `doc_field_length` reads them one by one: computed once per segment, field and statistics."""
    cached = _LENGTH_NORMS.setdefault(reader, {})
    key = (fieldname, B, K1, avgfl)
    if key not in cached:
        fl = _LENGTH_OF_BYTE[length_codes(reader._perdoc, fieldname)]
        cached[key] = K1 * ((1 - B) + B * fl / avgfl)
    return cached[key]
