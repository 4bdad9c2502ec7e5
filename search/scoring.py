"""Best-match scoring a posting list at a time (numpy) instead of a posting at a time.

A question's best-match OR has dozens of leaves: each word in five fields, plus phrases. Whoosh
scores such an OR one posting at a time in Python, about 4 µs a posting, and then its collector
walks every match: most of a question's time, growing with the corpus. `BestMatch` is the same
flat OR scored the same way:
- each term's postings are read a block at a time and scored by BM25F as arrays;
- a phrase is the documents where all its words occur (array intersection), positions decoded
  only there, scored as Whoosh scores a phrase (the sum of its words' scores);
- leaves are summed in the query's order, so every score comes out bit for bit as Whoosh's own
  (the livedoor tests compare rankings and scores with the straightforward path);
- `ranked` takes the top of the array instead of Whoosh's collector.

This reads Whoosh 2.7's posting blocks and length columns directly; whoosh-reloaded is pinned.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass

import numpy as np
from whoosh import query as wq
from whoosh.codec.whoosh3 import LENGTHS_COLUMN, W3LeafMatcher, _lenfield
from whoosh.matching import ListMatcher, Matcher, NullMatcher
from whoosh.reading import SegmentReader
from whoosh.scoring import BM25F, BM25FScorer
from whoosh.searching import Searcher
from whoosh.util.numeric import byte_to_length

# Whoosh stores each document's field length as one byte; a document with no such field reads 1.
_LENGTH_OF_BYTE = np.array([1] + [byte_to_length(code) for code in range(1, 256)], dtype=np.float64)
_FIELD_LENGTHS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # segment reader → {field: lengths}


class BestMatch(wq.Or):
    """An OR scored as the sum of its matching leaves, like Whoosh's preloaded OR, in arrays."""

    matcher_type = wq.Or.ARRAY_MATCHER  # what Whoosh's own matcher for this OR is (`whoosh_or`)

    def whoosh_or(self) -> wq.Or:
        """The same OR for Whoosh's own matcher: the straightforward path, and every fallback."""
        query = wq.Or(self.subqueries, boost=self.boost)
        query.matcher_type = wq.Or.ARRAY_MATCHER
        return query

    def matcher(self, searcher: Searcher, context=None) -> Matcher:
        weighting = searcher.weighting if context is None else context.weighting
        if not isinstance(weighting, BM25F) or not isinstance(searcher.reader(), SegmentReader):
            return self.whoosh_or().matcher(searcher, context)
        scores = self.segment_scores(searcher, weighting, context)
        matched = np.flatnonzero(scores > 0)
        if not len(matched):
            return NullMatcher()
        return _ScoredDocs(matched.tolist(), scores[matched].tolist())

    def segment_scores(self, searcher: Searcher, weighting: BM25F, context=None) -> np.ndarray:
        """Every document's score in one segment's searcher (0 where nothing matched)."""
        reader = searcher.reader()
        scores = np.zeros(reader.doc_count_all())
        terms: dict[tuple[str, str], _Postings | None] = {}  # a word's postings, read once
        for leaf in self.subqueries:
            found = _leaf_scores(leaf, searcher, weighting, terms)
            ids, leaf_scores = found if found is not None else _matcher_scores(leaf.matcher(searcher, context))
            scores[ids] += leaf_scores * self.boost
        if reader.deleted_docs_set:  # postings were read unfiltered
            scores[list(reader.deleted_docs_set)] = 0
        return scores

    def ranked(self, searcher: Searcher, limit: int | None, allowed: np.ndarray | None = None) -> tuple[int, list[tuple[float, int]]]:
        """(how many documents match, the best `limit` (score, docnum) pairs, or all if None).

        What `searcher.search(self, limit, filter=…).top_n` gives, in the same order (score down,
        then docnum up), without Whoosh's collector walking every match one at a time: a long
        question matches most of a big corpus. `allowed` are the docnums a filter lets through.
        """
        scores = np.concatenate([self.segment_scores(leaf, searcher.weighting) for leaf, _ in searcher.leaf_searchers()])
        matched = np.flatnonzero(scores > 0)
        if allowed is not None:
            matched = matched[np.isin(matched, allowed)]
        total = len(matched)
        if limit is not None and limit < total:
            cutoff = -np.partition(-scores[matched], limit - 1)[limit - 1]
            matched = matched[scores[matched] >= cutoff]  # every tie at the cutoff, for the docnum order
        best = matched[np.lexsort((matched, -scores[matched]))][:limit]
        return total, [(float(scores[docnum]), int(docnum)) for docnum in best]


class _ScoredDocs(ListMatcher):
    """Docnums with their finished scores, for Whoosh's collector."""

    def __init__(self, ids: list[int], scores: list[float]):
        super().__init__(ids, weights=scores)
        self._best = max(scores)

    def max_quality(self) -> float:
        # The collector asks again and again; ListMatcher would take max() of every score each time.
        return self._best


@dataclass
class _Postings:
    """One term's postings in one segment, scored as Whoosh's BM25F scorer scores them."""

    ids: np.ndarray
    scores: np.ndarray
    values: list[bytes]  # encoded positions, where the field has them

    def at(self, ids: np.ndarray) -> np.ndarray:
        """Row of each of `ids` (all present) in this term's arrays."""
        return np.searchsorted(self.ids, ids)


_NO_POSTINGS = _Postings(np.zeros(0, dtype=np.int64), np.zeros(0), [])
_NOTHING = (_NO_POSTINGS.ids, _NO_POSTINGS.scores)


def _leaf_scores(
    leaf: wq.Query, searcher: Searcher, weighting: BM25F, terms: dict
) -> tuple[np.ndarray, np.ndarray] | None:
    """A term's or a phrase's (docnums, scores), as its Whoosh matcher would score them; None if
    this leaf needs Whoosh's matcher. `terms` keeps the postings read so far."""
    if isinstance(leaf, wq.Term):
        postings = _term_postings(searcher, weighting, leaf.fieldname, leaf.text, terms)
        if postings is None:
            return None
        scores = postings.scores
    elif isinstance(leaf, wq.Phrase) and leaf.slop == 1:
        found = _phrase_postings(searcher, weighting, leaf.fieldname, leaf.words, terms)
        if found is None:
            return None
        postings, scores = found, found.scores * 1.0  # SpanNear2's wrapping matcher (boost 1.0)
    else:
        return None
    if leaf.boost != 1.0:
        scores = scores * leaf.boost
    return postings.ids, scores


def _term_postings(searcher: Searcher, weighting: BM25F, fieldname: str, word: str, terms: dict) -> _Postings | None:
    if (fieldname, word) not in terms:
        terms[fieldname, word] = _read_term(searcher, weighting, fieldname, word)
    return terms[fieldname, word]


def _read_term(searcher: Searcher, weighting: BM25F, fieldname: str, word: str) -> _Postings | None:
    schema, reader = searcher.schema, searcher.reader()
    if fieldname not in schema:
        return _NO_POSTINGS
    try:
        text = schema[fieldname].to_bytes(word)
    except ValueError:
        return _NO_POSTINGS
    if (fieldname, text) not in reader:
        return _NO_POSTINGS
    scorer = weighting.scorer(searcher, fieldname, text)
    if not isinstance(scorer, BM25FScorer):
        return None
    # Unfiltered: a segment's deleted documents are cleared once for the whole OR.
    matcher = reader._terms.matcher(fieldname, text, schema[fieldname].format)
    ids, tf, values = _posting_arrays(matcher, schema[fieldname].format.supports("positions"))
    fl = _field_lengths(reader, fieldname)[ids]
    idf, B, K1, avgfl = scorer.idf, scorer.B, scorer.K1, scorer.avgfl
    # whoosh.scoring.bm25, operation for operation, so the floats are the same.
    scores = idf * ((tf * (K1 + 1)) / (tf + K1 * ((1 - B) + B * fl / avgfl)))
    return _Postings(ids, scores, values)


def _phrase_postings(
    searcher: Searcher, weighting: BM25F, fieldname: str, words: list[str], terms: dict
) -> _Postings | None:
    """Where `words` stand one after another, scored as Whoosh's Phrase (SpanNear2, slop 1): the
    sum of the words' scores. Positions are decoded only where all the words occur."""
    field = searcher.schema[fieldname] if fieldname in searcher.schema else None
    if field is None or not field.format or not field.format.supports("positions"):
        return None  # Whoosh's matcher says what is wrong
    each = [_term_postings(searcher, weighting, fieldname, word, terms) for word in words]
    if any(postings is None for postings in each):
        return None
    # Where every word occurs: a docnum mask per word (numpy's intersect1d sorts, this is linear).
    ids = min((postings.ids for postings in each), key=len)
    for postings in each:
        present = np.zeros(searcher.reader().doc_count_all(), dtype=bool)
        present[postings.ids] = True
        ids = ids[present[ids]]
    rows = [postings.at(ids) for postings in each]
    decode = field.format.decoder("positions")
    together = np.array(
        [_in_sequence([decode(p.values[r[i]]) for p, r in zip(each, rows)]) for i in range(len(ids))], dtype=bool
    )
    scores = _tree_sum([p.scores[r[together]] for p, r in zip(each, rows)])
    return _Postings(ids[together], scores, [])


def _in_sequence(positions: list[list[int]]) -> bool:
    """Some position of the first word is followed directly by the second, the third, ..."""
    starts = set(positions[0])
    for offset, later in enumerate(positions[1:], start=1):
        starts.intersection_update(position - offset for position in later)
        if not starts:
            return False
    return True


def _tree_sum(parts: list[np.ndarray]) -> np.ndarray:
    """Sum in the shape of Whoosh's `make_binary_tree` of intersections, so floats add in its order."""
    if len(parts) == 1:
        return parts[0]
    half = len(parts) // 2
    return _tree_sum(parts[:half]) + _tree_sum(parts[half:])


def _posting_arrays(matcher: Matcher, positions: bool) -> tuple[np.ndarray, np.ndarray, list[bytes]]:
    """All (docnums, weights, encoded positions if wanted) of a term's postings, a block at a time
    where Whoosh stores blocks."""
    if not isinstance(matcher, W3LeafMatcher):  # few postings, kept inline in the term info
        ids, weights, values = [], [], []
        while matcher.is_active():
            ids.append(matcher.id())
            weights.append(matcher.weight())
            if positions:
                values.append(matcher.value())
            matcher.next()
        return np.array(ids, dtype=np.int64), np.array(weights, dtype=np.float64), values
    id_blocks: list[np.ndarray] = []
    weight_blocks: list[np.ndarray] = []
    values = []
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
        return _NO_POSTINGS.ids, _NO_POSTINGS.scores, values
    return np.concatenate(id_blocks), np.concatenate(weight_blocks), values


def _matcher_scores(matcher: Matcher) -> tuple[np.ndarray, np.ndarray]:
    """Any other leaf: Whoosh's matcher, one posting at a time."""
    ids: list[int] = []
    scores: list[float] = []
    while matcher.is_active():
        ids.append(matcher.id())
        scores.append(matcher.score())
        matcher.next()
    return np.array(ids, dtype=np.int64), np.array(scores, dtype=np.float64)


def _field_lengths(reader: SegmentReader, fieldname: str) -> np.ndarray:
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
