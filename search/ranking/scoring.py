"""Ranking with whole posting lists at a time (numpy), over the whole index at once.

Whoosh scores a query one posting at a time in Python, about 4 µs a posting, and before it
scores anything it builds a tree of matchers for the query in every segment: for a question, a
hundred term matchers and thirty OR trees per segment, which cost more than the scoring itself.
`top_documents` builds none of that. It reads the query itself, node by node, over the index's
segments as one range of docnums:
- a term: its postings in every segment as arrays (the array posting format, `postings.py`),
  deleted documents dropped, scored as Whoosh's BM25F scores them (`bm25.py`: its `bm25()`,
  operation for operation, with the global idf and average length Whoosh's scorer takes from the
  top searcher);
- OR adds up its children where they match; AND intersects them (the rarest first, the others
  only where it matched); ANDNOT and NOT exclude; a boost multiplies;
- a phrase: its words' intersection, kept where the words stand one after another (positions are
  read only there) and scored as Whoosh scores it, the sum of its words' scores;
- a question (`Coverage`): its clauses' sum scaled by how much of the question a section covers;
- a date range (a numeric range): the terms of its tiers, their postings united, each match
  scored the range's boost as Whoosh's constant-score range is (Whoosh's own matcher walks an OR
  of some thousand terms: seconds for half a year of livedoor);
- any other query runs as Whoosh's own matcher in each segment, walked.

A search has a time budget: the evaluation looks at the clock between nodes, segments and runs
of walked matches (a cheap check), and gives up with `QueryTooExpensive` once it is spent, so an
expensive query answers "too expensive" instead of tying up a thread for tens of seconds.

Each score is Whoosh's, up to the order in which a document's clause scores are added (the last
bit of a float); a test on livedoor compares every ranking with Whoosh's own path
(`tests/whoosh_oracle.py`). What a search reads is kept for the searches after it, in
caches every thread shares, each within its share of the process's memory budget (`memory.py`):
decoded posting lists (`postings.DECODED_LISTS`), each searcher's scored terms and idfs, and the
per-segment tables (deletions, length norms).

This reads Whoosh 2.7's readers and length columns directly: whoosh-reloaded is pinned, and the
tests would show a change.
"""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass

import numpy as np
from whoosh import query as wq
from whoosh.matching import Matcher
from whoosh.reading import IndexReader
from whoosh.scoring import BM25F
from whoosh.searching import Searcher
from whoosh.util.numeric import byte_to_length

from .. import memory
from ..codec.postings import (
    ArrayCodec,
    ArrayPostings,
    PostingArrays,
    length_codes,
)
from ..codec.whoosh_internals import (
    compiled_range,
    field_b,
    per_document_reader,
    range_terms,
    term_info,
    terms_reader,
)
from ..query.coverage import COVERAGE_FIELD, CREDITS, EXACT, LOOSE, UNMATCHED, Coverage, coverage_scores
from ..query.parse import QueryTooExpensive
from . import bm25

# Whoosh stores each document's field length as one byte; a document with no such field reads 1.
LENGTH_OF_BYTE = np.array([1] + [byte_to_length(code) for code in range(1, 256)], dtype=np.float64)


@dataclass
class Ranking:
    """What `searcher.search(query, limit=…, filter=…)` gives as its length and `top_n`."""

    total: int
    docnums: np.ndarray  # the best, score down, then docnum up as Whoosh's heap keeps ties
    scores: np.ndarray  # theirs
    matched: np.ndarray  # every matching docnum, for facet counts


class Deadline:
    """When a search must give up: `budget` seconds (None: never) after it was made."""

    def __init__(self, budget: float | None):
        self.budget = budget
        self.at = None if budget is None else time.monotonic() + budget

    def check(self) -> None:
        """QueryTooExpensive once the budget is spent (a budget of 0 at the first check)."""
        if self.at is not None and time.monotonic() >= self.at:
            assert self.budget is not None  # (`at` is set from it)
            raise QueryTooExpensive(self.budget)


NO_DEADLINE = Deadline(None)  # never gives up; shared, as a Deadline is never changed once made


def top_documents(
    searcher: Searcher,
    query: wq.Query,
    limit: int | None,
    allowed: np.ndarray | None = None,
    budget: float | Deadline | None = None,
) -> Ranking:
    """The best `limit` documents (all if None) and how many match; `allowed` are the (sorted)
    docnums a filter lets through: only those are scored. QueryTooExpensive after `budget` s
    (a `Deadline`: one several rankings of a search share)."""
    evaluation = Evaluation(searcher, budget if isinstance(budget, Deadline) else Deadline(budget))
    within = None if allowed is None else _Within(allowed, evaluation.size)
    matched, scores = evaluation.evaluate(query, within).as_sparse()
    best = np.arange(len(matched))
    if limit is not None and limit < len(matched):
        best = np.flatnonzero(scores >= _kth_largest(scores, limit))  # every tie too, for the docnum order
    best = best[np.lexsort((matched[best], -scores[best]))][:limit]
    return Ranking(len(matched), matched[best], scores[best], matched)


# `_kth_largest` first takes the k-th largest of a sample of about this many times k values.
KTH_SAMPLE = 32


def _kth_largest(values: np.ndarray, k: int) -> float:
    """The k-th largest of `values` (at least k of them). `np.partition` over the scores of half a
    million matches takes milliseconds, and far longer when many of them are equal (numpy's
    selection slows down on repeats), so a long array is first cut down to the values at or above
    the k-th largest of a strided sample, which the k-th largest of the whole is never below."""
    if len(values) > 4 * KTH_SAMPLE * k:
        sample = values[:: len(values) // (KTH_SAMPLE * k)]
        values = values[values >= np.partition(sample, len(sample) - k)[len(sample) - k]]
    return -np.partition(-values, k - 1)[k - 1]


# Each searcher keeps the scores and idfs of the terms it read, for the searches after it: the
# same words come back query after query, and a searcher (one per thread) outlives many searches.
# They depend on the searcher's generation (its idfs and average lengths), so they are kept under
# its memory's number, in caches every searcher of the process shares within one budget: entries
# of a closed searcher age out. The per-segment tables depend on the segment alone, and every
# thread's reader of a segment shares them. All three are sized by `memory.py`.
class _ScoredTerms(memory.RecentEntries):
    """Scored terms, kept under their searcher memory's number: forgetting them forgets every
    searcher's memory too (its number and average lengths are of an earlier era then)."""

    def clear(self) -> None:
        global _memory_era
        super().clear()
        _memory_era += 1


SCORED_TERMS = _ScoredTerms()  # (memory, field, text or words) → (ids, scores)
IDFS = memory.SmallEntries()  # (memory, field, term) → idf
SEGMENT_TABLES = memory.RecentEntries()  # (segment, deletions, what) → (array or None,)
memory.register("scored terms", SCORED_TERMS, memory.QUERY)
memory.register("idfs", IDFS, memory.QUERY)
memory.register("segment tables", SEGMENT_TABLES, memory.SEGMENT)
_MEMORY_ATTRIBUTE = "_midashi_memory"  # on a searcher: its _SearcherMemory
_memory_era = 0  # a memory from an earlier era is forgotten (`memory.forget`)
_memory_numbers = itertools.count()  # never reused, unlike id(): a key never means another searcher


@dataclass
class _SearcherMemory:
    """What a searcher keeps for the searches after it, and the number its entries in the shared
    caches are kept under."""

    era: int
    number: int
    average_lengths: dict[str, float]  # per field: Whoosh adds up every segment's each time


def _memory(searcher: Searcher) -> _SearcherMemory:
    kept = getattr(searcher, _MEMORY_ATTRIBUTE, None)
    if kept is None or kept.era != _memory_era:
        kept = _SearcherMemory(_memory_era, next(_memory_numbers), {})
        setattr(searcher, _MEMORY_ATTRIBUTE, kept)
    return kept


class _Within:
    """The docnums an evaluation is restricted to: sorted, and as a mask over the index."""

    def __init__(self, ids: np.ndarray, size: int):
        self.ids = ids
        self.mask = np.zeros(size, dtype=bool)
        self.mask[ids] = True


@dataclass(eq=False)  # one per segment of a search: compared (and hashed) by identity
class _Segment:
    """One segment of the index being searched: its reader, its sub-searcher and where its
    docnums start among the whole index's."""

    reader: IndexReader
    searcher: Searcher
    offset: int
    size: int

    @property
    def kept(self) -> np.ndarray | None:
        """Per docnum: not deleted; None when nothing is."""
        key = self._table_key("kept")
        found = SEGMENT_TABLES.get(key)
        if found is None:
            deleted = self.reader.deleted_docs_set if self.reader.has_deletions() else ()
            kept = None
            if deleted:
                kept = np.ones(self.size, dtype=bool)
                kept[np.fromiter(deleted, dtype=np.int64)] = False
            found = (kept,)
            SEGMENT_TABLES.put(key, found, 0 if kept is None else kept.nbytes)
        return found[0]

    def length_norms(self, fieldname: str, B: float, K1: float, avgfl: float) -> np.ndarray:
        """Every document's BM25 length norm (`bm25.length_norms`), of each document's length as
        Whoosh's `doc_field_length` reads them one by one."""
        key = self._table_key(fieldname, B, K1, avgfl)
        found = SEGMENT_TABLES.get(key)
        if found is None:
            fl = LENGTH_OF_BYTE[length_codes(per_document_reader(self.reader), fieldname)]
            found = (bm25.length_norms(fl, B, K1, avgfl),)
            SEGMENT_TABLES.put(key, found, found[0].nbytes)
        return found[0]

    def _table_key(self, *what) -> tuple:
        """What every search of this segment reads whole is computed once: a segment is written
        once under a random id, and its deletions only grow, so its id and how many documents it
        still holds name one state of it, whichever thread's reader reads it."""
        segment = self.reader.segment()
        return (segment.segment_id() if segment is not None else None, self.reader.doc_count(), *what)


class Evaluation:
    """One search's evaluation of a query over the whole index: each node's `_Matches`,
    restricted to a set of docnums when given one (only those are scored)."""

    def __init__(self, searcher: Searcher, deadline: Deadline = NO_DEADLINE):
        self.searcher = searcher
        self.deadline = deadline
        self.schema = searcher.schema
        self.size = searcher.doc_count_all()
        self.segments = [
            _Segment(sub.reader(), sub, offset, sub.doc_count_all()) for sub, offset in searcher.leaf_searchers()
        ]
        self.context = searcher.context()
        weighting = searcher.weighting
        # Anything but BM25F, or a segment in an older posting format, is walked as Whoosh walks it.
        self.arrays = type(weighting) is BM25F and all(
            isinstance(segment.reader.codec(), ArrayCodec) for segment in self.segments
        )
        self.weighting = weighting
        self.memory = _memory(searcher)
        self.read: dict[tuple[str, bytes], list[tuple[_Segment, ArrayPostings]]] = {}  # this search's

    def evaluate(self, node: wq.Query, within: _Within | None = None) -> _Matches:
        self.deadline.check()
        if not self.arrays:
            return self._walked(node, within)
        kind = type(node)
        if kind is wq.Term:
            return self._term(node.fieldname, node.text, within).scaled(node.boost)
        if kind in (wq.Or, wq.DefaultOr) and not node.minmatch and not node.scale:
            return _sum([self.evaluate(child, within) for child in node.subqueries], self.size).scaled(node.boost)
        if kind is wq.And:
            return self._intersection(list(node.subqueries), within).scaled(node.boost)
        if kind is wq.AndNot:
            found = self.evaluate(node.a, within)
            return found.kept(~self.evaluate(node.b, self._where(found)).contains(found, self.size))
        if kind is wq.Not:  # Whoosh's InverseMatcher: every other document, scored 1
            everything = self._everything(within)
            return everything.kept(~self.evaluate(node.query, within).contains(everything, self.size))
        if kind is wq.Phrase and node.slop == 1 and self._positioned(node.fieldname):
            return self._phrase(node, within)
        if kind is Coverage:
            return self._coverage(node, within)
        if kind in (wq.NumericRange, wq.DateRange) and node.constantscore:
            return self._numeric_range(node, within)
        return self._walked(node, within)

    def _where(self, found: _Matches) -> _Within:
        return _Within(found.as_sparse()[0], self.size)

    def _everything(self, within: _Within | None) -> _Matches:
        """Every document that is not deleted (within `within`), scored 1 as Whoosh's NOT does."""
        mask = np.ones(self.size, dtype=bool) if within is None else within.mask.copy()
        for segment in self.segments:
            if segment.kept is not None:
                mask[segment.offset : segment.offset + segment.size] &= segment.kept
        return _Matches(mask.astype(np.float64), mask=mask)

    def _walked(self, node: wq.Query, within: _Within | None) -> _Matches:
        """`node` as Whoosh's own matchers find and score it, segment by segment."""
        ids, scores = [np.zeros(0, dtype=np.int64)], [np.zeros(0)]
        for segment in self.segments:
            self.deadline.check()
            found = _walked(node.matcher(segment.searcher, self.context), self.deadline)
            ids.append(found.sparse_ids + segment.offset)
            scores.append(found.scores)
        return _Matches(np.concatenate(scores), ids=np.concatenate(ids)).restricted(within)

    def _numeric_range(self, node: wq.NumericRange, within: _Within | None) -> _Matches:
        """Every document with a term among those the range's tiers cover (`date:[2012-01 TO
        2012-06]`), scored `node.boost` as Whoosh's ConstantScoreQuery scores each."""
        compiled = compiled_range(node, self.searcher.reader())  # Term, TermRange or an OR of them
        if isinstance(compiled, wq.ConstantScoreQuery):
            compiled = compiled.child
        leaves = compiled.subqueries if isinstance(compiled, wq.Or) else [compiled]
        ids = [np.zeros(0, dtype=np.int64)]
        for leaf in leaves:
            if isinstance(leaf, wq.Term):
                btexts = [leaf.text]
            elif isinstance(leaf, wq.TermRange):
                btexts = range_terms(leaf, self.searcher.reader())
            else:  # NullQuery: nothing in range
                continue
            for btext in btexts:
                self.deadline.check()
                for segment, postings in self.term_postings(node.fieldname, btext):
                    local = postings.arrays.ids
                    if segment.kept is not None:
                        local = local[segment.kept[local]]
                    ids.append(local + segment.offset)
        found = np.unique(np.concatenate(ids))
        return _Matches(np.full(len(found), float(node.boost)), ids=found).restricted(within)

    def _positioned(self, fieldname: str) -> bool:
        """Whether a phrase in this field can be checked over position arrays (else Whoosh walks
        it, or raises its own error for a field without positions)."""
        if fieldname not in self.schema:
            return False
        field = self.schema[fieldname]
        return bool(field.format) and field.format.supports("positions")

    def _term(self, fieldname: str, text, within: _Within | None = None) -> _Matches:
        """A term's BM25F scores wherever it occurs, kept for later searches when read whole (a
        term read for a few documents only, the other side of a rare one, is read for those)."""
        key = (fieldname, text)
        found = self.remembered(key)
        if found is None:
            found = self._read_term(fieldname, text, within)
            if within is not None:
                return found
            self._remember(key, found)
        return found.restricted(within)

    def remembered(self, key: tuple) -> _Matches | None:
        """A term's or phrase's matches as an earlier search of this searcher read them."""
        kept = SCORED_TERMS.get((self.memory.number, key))
        return None if kept is None else _Matches(kept[1], ids=kept[0])

    def _remember(self, key: tuple, found: _Matches) -> None:
        """Keep `found` (sparse, as every term and phrase is) for later searches, as a plain
        tuple of arrays (see `memory.RecentEntries`)."""
        ids = found.sparse_ids
        SCORED_TERMS.put((self.memory.number, key), (ids, found.scores), ids.nbytes + found.scores.nbytes)

    def _read_term(self, fieldname: str, text, within: _Within | None) -> _Matches:
        btext = self.term_bytes(fieldname, text)
        if btext is None:
            return _NO_MATCHES
        found = self.term_postings(fieldname, btext)
        if not found:
            return _NO_MATCHES
        scores_of = self.scorer(fieldname, btext)
        ids, scores = [], []
        for segment, postings in found:
            self.deadline.check()
            arrays = postings.arrays
            local, tf = arrays.ids, arrays.weights
            keep = segment.kept[local] if segment.kept is not None else None
            if within is not None:
                inside = within.mask[segment.offset : segment.offset + segment.size][local]
                keep = inside if keep is None else keep & inside
            if keep is not None:
                local, tf = local[keep], (None if tf is None else tf[keep])
            ids.append(local + segment.offset)
            scores.append(scores_of(segment, local, tf))
        return _Matches(np.concatenate(scores), ids=np.concatenate(ids))

    def term_bytes(self, fieldname: str, text) -> bytes | None:
        """The term as the index holds it; None for a field or text the schema has no term for."""
        if fieldname not in self.schema:
            return None
        try:
            return self.schema[fieldname].to_bytes(text)
        except ValueError:
            return None

    def term_postings(self, fieldname: str, btext: bytes) -> list[tuple[_Segment, ArrayPostings]]:
        """A term's postings in each segment that has it, deleted documents included (`_Segment.kept`
        drops them); looked up once a search (a phrase's words are clauses of their own too).
        Straight from each segment's term index, which remembers the terms it looked up."""
        key = (fieldname, btext)
        if key not in self.read:
            format_ = self.schema[fieldname].format
            self.read[key] = [
                (segment, terms_reader(segment.reader).matcher(fieldname, btext, format_))
                for segment in self.segments
                if term_info(terms_reader(segment.reader), fieldname, btext) is not None
            ]
        return self.read[key]

    def scorer(self, fieldname: str, btext: bytes):
        """A term's scores from its postings in a segment, as the weighting's scorer gives them."""
        if not self.schema[fieldname].scorable:  # Whoosh's WeightScorer: the weight itself
            return lambda segment, ids, tf: np.ones(len(ids)) if tf is None else tf
        idf = self.idf(fieldname, btext)
        averages = self.memory.average_lengths
        if fieldname not in averages:
            averages[fieldname] = self.searcher.avg_field_length(fieldname) or 1
        avgfl = averages[fieldname]
        B = field_b(self.weighting, fieldname)
        K1 = self.weighting.K1

        def scores(segment: _Segment, ids: np.ndarray, tf: np.ndarray | None) -> np.ndarray:
            norms = segment.length_norms(fieldname, B, K1, avgfl)[ids]
            return bm25.term_scores(idf, tf if tf is not None else 1.0, norms, K1)

        return scores

    def idf(self, fieldname: str, btext: bytes | None) -> float:
        """Whoosh's idf of a term over the whole index (`bm25.idf`), kept for later searches."""
        key = (self.memory.number, fieldname, btext)
        idf = IDFS.get(key)
        if idf is None:
            idf = bm25.idf(self.size, self._document_frequency(fieldname, btext))
            IDFS.keep(key, idf)
        return idf

    def _document_frequency(self, fieldname: str, btext: bytes | None) -> int:
        """How many documents hold a term, deleted ones counted as Whoosh counts them, from the
        infos each segment's term index remembers: Whoosh's own `doc_frequency` asks every
        segment's reader through two layers of checks (a millisecond for a strict query's terms)."""
        infos = (
            []
            if btext is None
            else [term_info(terms_reader(segment.reader), fieldname, btext) for segment in self.segments]
        )
        return sum(info.doc_frequency() for info in infos if info is not None)

    def _intersection(self, nodes: list[wq.Query], within: _Within | None) -> _Matches:
        """Where every node matches, the sum of their scores: the rarest node first, each next one
        evaluated only where the ones before it matched."""
        nodes = sorted(nodes, key=self.estimate)
        found = self.evaluate(nodes[0], within)
        for node in nodes[1:]:
            if found.is_empty():
                break
            found = _intersection(found, self.evaluate(node, self._where(found)))
        return found

    def estimate(self, node: wq.Query) -> int:
        """How many documents a node may match, from its terms' document frequencies (nothing
        decoded)."""
        kind = type(node)
        if kind is wq.Term:
            if node.fieldname not in self.schema:
                return 0
            return self._document_frequency(node.fieldname, self.schema[node.fieldname].to_bytes(node.text))
        if kind in (wq.Or, wq.DefaultOr):
            return sum(self.estimate(child) for child in node.subqueries)
        if kind is wq.And:
            return min(self.estimate(child) for child in node.subqueries)
        if kind is wq.Phrase:
            return min(self.estimate(wq.Term(node.fieldname, word)) for word in node.words)
        if kind is wq.AndNot:
            return self.estimate(node.a)
        return self.size

    def _phrase(self, phrase: wq.Phrase, within: _Within | None) -> _Matches:
        """Whoosh's phrase, scaled by its boost; kept for later searches as terms are."""
        key = (phrase.fieldname, tuple(phrase.words))
        found = self.remembered(key)
        if found is None:
            found = self._read_phrase(phrase.fieldname, phrase.words, within)
            if within is not None:
                return found.scaled(phrase.boost)
            self._remember(key, found)
        # Whoosh's SpanNear2 matcher is a wrapper too: the boost multiplies the words' sum.
        return found.restricted(within).scaled(phrase.boost)

    def _read_phrase(self, fieldname: str, words: list[str], within: _Within | None) -> _Matches:
        """The words' intersection (scored as the sum of the words, as Whoosh scores a phrase),
        kept where the words stand one after another: positions are read only there."""
        candidates = self._term(fieldname, words[0])
        for word in words[1:]:
            if candidates.is_empty():  # no section has the words so far: the rest need not be read
                return _NO_MATCHES
            candidates = _intersection(candidates, self._term(fieldname, word))
        candidate_ids, scores = candidates.restricted(within).as_sparse()
        if not len(candidate_ids):  # (the words' postings need not even be looked up)
            return _NO_MATCHES
        ordered = np.zeros(len(candidate_ids), dtype=bool)
        postings = []
        for word in words:
            btext = self.term_bytes(fieldname, word)
            assert btext is not None  # every word is a term of the field: it has candidates
            postings.append(dict(self.term_postings(fieldname, btext)))
        for segment in self.segments:
            first, end = np.searchsorted(candidate_ids, (segment.offset, segment.offset + segment.size))
            if first == end:
                continue
            self.deadline.check()
            lists = [found[segment] for found in postings]  # every word is there: it has candidates
            positions = [found.with_positions() for found in lists]  # (any format with positions)
            ordered[first:end] = in_sequence(positions, candidate_ids[first:end] - segment.offset)
        return _Matches(scores[ordered], ids=candidate_ids[ordered])

    def _coverage(self, query: Coverage, within: _Within | None) -> _Matches:
        """`CoverageMatcher.score` over arrays: the clauses' sum, scaled by the idf-weighted share of
        the question's words a document matches (a word matched only loosely counts in part), as
        `coverage.coverage_scores` computes it.

        Each clause's pieces are added where they match, and no clause becomes an array over the
        whole index: at a million sections a question's common words match a good part of it, and
        a whole-index array per clause would cost more than all the matches themselves."""
        words = [(self._pieces(word.exact, within), self._pieces(word.loose, within)) for word in query.words]
        pieces = [piece for exact, loose in words for piece in exact + loose]
        pieces += [piece for node in query.together for piece in self._pieces(node, within)]
        if not pieces:
            return _NO_MATCHES
        if sum(len(piece_ids) for piece_ids, _ in pieces) < self.size // DENSE_SHARE:
            ids = np.unique(np.concatenate([piece_ids for piece_ids, _ in pieces]))
            at = lambda piece_ids: np.searchsorted(ids, piece_ids)  # noqa: E731 (positions among the matches)
        else:  # most of the index: every document has its place
            ids = None
            at = lambda piece_ids: piece_ids  # noqa: E731
        size = len(ids) if ids is not None else self.size
        total, covered = np.zeros(size), np.zeros(size)
        for piece_ids, piece_scores in pieces:
            total[at(piece_ids)] += piece_scores  # (a piece's docnums are distinct)
        credit = np.zeros(size, dtype=np.uint8)  # a word's: EXACT where matched as itself, else LOOSE
        idfs = [self.idf(COVERAGE_FIELD, self.term_bytes(COVERAGE_FIELD, word.text)) for word in query.words]
        for (exact, loose), idf in zip(words, idfs):
            self.deadline.check()
            if not exact and not loose:
                continue
            for piece_ids, _ in loose:
                credit[at(piece_ids)] = LOOSE
            for piece_ids, _ in exact:
                credit[at(piece_ids)] = EXACT
            matched = np.concatenate([at(piece_ids) for piece_ids, _ in exact + loose])  # repeats: see below
            # With repeated indexes, `+=` adds once per document (numpy buffers it), which is the
            # word's one credit there.
            covered[matched] += idf * _CREDITS[credit[matched]]
            credit[matched] = UNMATCHED  # for the next word
        scores = coverage_scores(total, covered, sum(idfs))
        if ids is not None:
            return _Matches(scores, ids=ids)
        mask = np.zeros(self.size, dtype=bool)
        for piece_ids, _ in pieces:
            mask[piece_ids] = True
        return _Matches(scores, mask=mask)

    def _pieces(self, node: wq.Query | None, within: _Within | None) -> list[tuple[np.ndarray, np.ndarray]]:
        """A clause's matches as the pieces its score is the sum of: an OR's children each on its
        own, boosted as the OR is; anything else whole. Docnums sorted, scores beside them."""
        if node is None:
            return []
        if type(node) in (wq.Or, wq.DefaultOr) and not node.minmatch and not node.scale:
            pieces = [piece for child in node.subqueries for piece in self._pieces(child, within)]
            return pieces if node.boost == 1.0 else [(ids, scores * node.boost) for ids, scores in pieces]
        found = self.evaluate(node, within)
        return [] if found.is_empty() else [found.as_sparse()]


_CREDITS = np.array(CREDITS)  # a word's share of its idf, by how it matched


# A node matching fewer than 1/DENSE_SHARE of the index's documents keeps its docnums as a sorted
# array; a bigger one a mask over the index, which is quicker to combine than sorted arrays.
DENSE_SHARE = 32


@dataclass
class _Matches:
    """A node's matches: sorted docnums (`ids`) and their scores, or a mask over the index
    (`mask`) and a score for every document, 0 where it does not match. The arrays are never
    changed in place: a term's are shared by every node that names it."""

    scores: np.ndarray
    ids: np.ndarray | None = None
    mask: np.ndarray | None = None

    @property
    def sparse_ids(self) -> np.ndarray:
        """`ids`, of matches known to be kept as docnums (a term's, a phrase's, a walked node's)."""
        assert self.ids is not None
        return self.ids

    @property
    def dense_mask(self) -> np.ndarray:
        """`mask`, of matches known to be kept as a mask (those without `ids`)."""
        assert self.mask is not None
        return self.mask

    def is_empty(self) -> bool:
        return self.ids is not None and not len(self.ids)  # (a mask is kept for many matches)

    def as_sparse(self) -> tuple[np.ndarray, np.ndarray]:
        if self.ids is not None:
            return self.ids, self.scores
        ids = np.flatnonzero(self.dense_mask)
        return ids, self.scores[ids]

    def as_dense(self, size: int) -> _Matches:
        if self.mask is not None:
            return self
        mask, scores = np.zeros(size, dtype=bool), np.zeros(size)
        mask[self.ids] = True
        scores[self.ids] = self.scores
        return _Matches(scores, mask=mask)

    def at(self, flags: np.ndarray) -> np.ndarray:
        """Per-document `flags` of the index, read where these matches are (in their form)."""
        return flags[self.ids] if self.ids is not None else flags

    def contains(self, other: _Matches, size: int) -> np.ndarray:
        """Which of `other`'s matches are ours too, in `other`'s form."""
        if self.ids is not None and other.ids is not None:
            return np.isin(other.ids, self.ids, assume_unique=True)
        return other.at(self.as_dense(size).dense_mask)

    def kept(self, keep: np.ndarray) -> _Matches:
        """Only the matches `keep` flags (in this form)."""
        if self.ids is not None:
            return _Matches(self.scores[keep], ids=self.ids[keep])
        mask = self.dense_mask & keep
        return _Matches(np.where(mask, self.scores, 0.0), mask=mask)

    def restricted(self, within: _Within | None) -> _Matches:
        """Only the matches among `within`'s docnums (all of them when None)."""
        return self if within is None else self.kept(self.at(within.mask))

    def scaled(self, boost: float) -> _Matches:
        return self if boost == 1.0 else _Matches(self.scores * boost, ids=self.ids, mask=self.mask)


_NO_MATCHES = _Matches(np.zeros(0), ids=np.zeros(0, dtype=np.int64))


def _sum(parts: list[_Matches], size: int) -> _Matches:
    """Every document some part matches, with the sum of the parts' scores there (an OR)."""
    parts = [part for part in parts if not part.is_empty()]
    if len(parts) <= 1:
        return parts[0] if parts else _NO_MATCHES
    all_sparse = all(part.ids is not None for part in parts)
    if all_sparse and sum(len(part.sparse_ids) for part in parts) < size // DENSE_SHARE:
        ids = np.unique(np.concatenate([part.sparse_ids for part in parts]))
        scores = np.zeros(len(ids))
        for part in parts:
            scores[np.searchsorted(ids, part.sparse_ids)] += part.scores
        return _Matches(scores, ids=ids)
    scores, mask = np.zeros(size), np.zeros(size, dtype=bool)
    for part in parts:
        if part.ids is not None:
            scores[part.ids] += part.scores
            mask[part.ids] = True
        else:
            scores += part.scores
            mask |= part.dense_mask
    return _Matches(scores, mask=mask)


def _intersection(a: _Matches, b: _Matches) -> _Matches:
    """a + b where both match."""
    if a.ids is None and b.ids is None:
        mask = a.dense_mask & b.dense_mask
        return _Matches(np.where(mask, a.scores + b.scores, 0.0), mask=mask)
    if a.ids is None:
        a, b = b, a
    if b.ids is None:
        keep = b.dense_mask[a.sparse_ids]
        ids = a.sparse_ids[keep]
        return _Matches(a.scores[keep] + b.scores[ids], ids=ids)
    if len(a.sparse_ids) > len(b.ids):
        a, b = b, a  # look the fewer up among the more (a + b is b + a in floating point too)
    a_ids, b_ids = a.sparse_ids, b.sparse_ids
    if not len(a_ids):
        return _NO_MATCHES
    at = np.searchsorted(b_ids, a_ids)
    at[at == len(b_ids)] = 0
    found = b_ids[at] == a_ids
    return _Matches(a.scores[found] + b.scores[at[found]], ids=a_ids[found])


# A walked matcher looks at the clock once per this many matches.
WALKED_BETWEEN_CHECKS = 1024


def _walked(matcher: Matcher, deadline: Deadline = NO_DEADLINE) -> _Matches:
    """Any other matcher, walked one match at a time as Whoosh's collector would."""
    ids: list[int] = []
    scores: list[float] = []
    while matcher.is_active():
        if len(ids) % WALKED_BETWEEN_CHECKS == 0:
            deadline.check()
        ids.append(matcher.id())
        scores.append(matcher.score())
        matcher.next()
    return _Matches(np.array(scores, dtype=np.float64), ids=np.array(ids, dtype=np.int64))


def in_sequence(words: list[PostingArrays], candidates: np.ndarray) -> np.ndarray:
    """For each candidate docnum (one that every word's postings hold): does some position of the
    first word have the second word right after it, the third after that, and so on?

    The one phrase check over position arrays: the first stage's phrases (`_read_phrase`, every
    positions format through `ArrayPostings.with_positions`) and, through `placed_in_sequence`,
    the reranker's word pairs (`rerank._Candidates.in_sequence`). Whoosh's SpanNear2 (slop 1,
    ordered) decides the same; two strategies, the same answer: array operations, or one
    candidate at a time when there are few."""
    if len(candidates) <= FEW_CANDIDATES:
        return _in_sequence_each(words, candidates)
    return placed_in_sequence([candidate_positions(word, candidates) for word in words], len(candidates))


def placed_in_sequence(placed: list[tuple[np.ndarray, np.ndarray]], count: int) -> np.ndarray:
    """`in_sequence` for words whose positions are read already: per word, (candidate number,
    position) pairs ascending (`candidate_positions`); a word may be absent from some of the
    `count` candidates. The reranker's pairs come here with the positions it keeps."""
    found = np.zeros(count, dtype=bool)
    if not placed or any(not len(owners) for owners, _ in placed):
        return found
    # Per word: (candidate number, position - the word's place in the phrase), ascending.
    shifted = [(owners, positions - place) for place, (owners, positions) in enumerate(placed)]
    lowest = min(int(moved.min()) for _, moved in shifted)
    stride = max(int(moved.max()) for _, moved in shifted) - lowest + 1
    # Candidate number × stride + where the phrase would start: ascending, as owners and each
    # posting's positions are. The rarest word's starts, kept where every other word has one too.
    keyed = sorted((owners * stride + (moved - lowest) for owners, moved in shifted), key=len)
    starts = keyed[0]
    for keys in keyed[1:]:
        if not len(starts):
            break
        at = np.minimum(np.searchsorted(keys, starts), len(keys) - 1)
        starts = starts[keys[at] == starts]
    found[starts // stride] = True
    return found


def candidate_positions(word: PostingArrays, candidates: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Every position of the word in each candidate (each one of its docnums): the candidate's
    number and the position, candidate by candidate, positions ascending."""
    begins, ends = _position_bounds(word, candidates)
    counts = ends - begins
    owners = np.repeat(np.arange(len(candidates)), counts)
    firsts = np.repeat(np.cumsum(counts) - counts, counts)  # where each posting's run begins
    assert word.positions is not None  # (read `with_positions`)
    positions = word.positions[np.repeat(begins, counts) + np.arange(counts.sum()) - firsts]
    return owners, positions.astype(np.int64)


def _position_bounds(word: PostingArrays, candidates: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Where each candidate's positions begin and end in `word.positions` (every candidate is one
    of the word's docnums)."""
    rows = np.searchsorted(word.ids, candidates)
    assert word.starts is not None  # (a field with positions has their counts)
    return word.starts[rows], word.starts[rows + 1]


# Up to this many candidates, checking each in Python is quicker than the array operations (each
# costs a few microseconds however small its arrays): most phrases have a handful.
FEW_CANDIDATES = 24


def _in_sequence_each(words: list[PostingArrays], candidates: np.ndarray) -> np.ndarray:
    """`in_sequence`, one candidate at a time."""
    bounds = []  # per word: its positions, and where each candidate's begin and end
    for word in words:
        begins, ends = _position_bounds(word, candidates)
        assert word.positions is not None  # (read `with_positions`)
        bounds.append((word.positions, begins.tolist(), ends.tolist()))
    found = np.zeros(len(candidates), dtype=bool)
    for number in range(len(candidates)):
        starts: set[int] | None = None
        for place, (positions, begins, ends) in enumerate(bounds):
            shifted = {position - place for position in positions[begins[number] : ends[number]].tolist()}
            starts = shifted if starts is None else starts & shifted
            if not starts:
                break
        found[number] = bool(starts)
    return found
