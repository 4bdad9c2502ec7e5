"""The second stage of relevance ranking: a learned model reorders the first stage's best sections.

The first stage (`scoring.top_documents` over the query `query/parse.py` builds) combines its signals
with weights set by hand, and no one setting suits every kind of query: an article bonus helps a
pasted headline and hurts a question. So the first stage's top RERANK_DEPTH sections are scored
again by a LightGBM LambdaMART model (`models/ranker.txt`, rebuilt by `bench/train_ranker.py`)
from a few dozen features each (`FEATURES_AND_DIRECTIONS`), computed over those candidates only:
- the first stage's score (as a share of the best) and rank, and what its looser matches added;
- BM25 of the query's own words in each text field, the share of its words and of its idf a
  section covers, its neighbouring word pairs standing together in the body, and the idf share
  of its words found within a short stretch of the body (`DENSEST_SPANS`);
- the section: its length, its number, whether it is the lead (section 1);
- its article, among the candidates: the best section's score and the sum of the others', how
  many of its sections match, the lead section's score, BM25 and coverage (a news story's
  subject is in its lead);
- the query: a question or sentence or not, how many words and characters, quotes.
The query features let the model lean on the article for headlines and keywords and not for
questions. Scores are shares of the query's best candidate, so a model trained on one corpus
reads another's alike; and it is monotone in what a section matches (more never ranks lower).

Sections a relaxed (best-match) reading added stay below the strict matches, and the sections
beyond the depth stay below the reordered ones, in their order. The hits carry the model's
scores from then on (on its own scale). Everything is deterministic: the features are computed
in a fixed order, the model predicts on one thread, ties keep the first stage's order.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path

import numpy as np
from whoosh.searching import Searcher

from ..analysis.sudachi import terms
from ..codec.postings import length_codes
from ..codec.schema import TEXT_FIELDS
from ..codec.whoosh_internals import (
    fixed_column_values,
    numeric_type_code,
    per_document_reader,
)
from ..query.parse import ParsedQuery, is_question_word
from .scoring import (
    LENGTH_OF_BYTE,
    NO_DEADLINE,
    Deadline,
    Evaluation,
    Ranking,
    candidate_positions,
    placed_in_sequence,
)

# How many of the first stage's sections the model reorders: deep enough that an article's
# sections and a headline's target are among them (R@100 of the first stage), shallow enough
# that the features cost a few milliseconds.
RERANK_DEPTH = 100
# The query words features are computed for (a pasted paragraph has more; the rest count in the
# first stage's score).
MAX_FEATURE_WORDS = 16
# Two words this many positions apart or closer (either order) stand near each other.
NEAR_WINDOW = 4
# The spans (in body positions) over which the densest stretch of the query's words is measured:
# about a clause, and about a sentence or two. The sentence that answers a question tends to
# hold most of its words close together.
DENSEST_SPANS = (10, 40)
MODEL_PATH = Path(__file__).resolve().parent / "models" / "ranker.txt"

# Each feature, and how the model may use it: +1 the score never falls as it grows, -1 never
# rises, 0 free. A section that matches more of the query, or better, never ranks lower for it:
# the model learns how much each signal counts, not that one hurts (a title match, which the
# news training sets cannot show, since their index holds no titles, still counts).
FEATURES_AND_DIRECTIONS = (
    # the first stage: its score as a share of the best candidate's, its rank, the looser
    # matches' part of it (sub-units, synonyms, bigrams, phrases, coverage), a relaxed match
    ("score_share", 1),
    ("rank", -1),
    ("looser", 0),
    ("relaxed", 0),
    # the query's own words: BM25 per field and in all, as shares of the best candidate's sum
    ("title_bm25", 1),
    ("heading_bm25", 1),
    ("body_bm25", 1),
    ("bm25", 1),
    # the share of the query's words in each field, of its idf and words anywhere, all of them,
    # its neighbouring pairs standing together in the body, and near each other (NEAR_WINDOW)
    ("title_words", 1),
    ("heading_words", 1),
    ("body_words", 1),
    ("idf_covered", 1),
    ("words_covered", 1),
    ("all_words", 1),
    ("pairs_in_body", 1),
    ("pairs_near_in_body", 1),
    # the idf share of the query's words found together within DENSEST_SPANS body positions
    *((f"idf_within_{span}", 1) for span in DENSEST_SPANS),
    # the idf share the section's own text (heading, body) covers, without the title its article's
    # sections share; the idf of the rarest word it lacks, against the query's rarest
    ("text_idf_covered", 1),
    ("missing_idf", -1),
    # the section: its body's length (terms, and against the average), its heading's, its number,
    # the lead or not, how many sections its article has
    ("body_length", 0),
    ("relative_length", 0),
    ("heading_length", 0),
    ("section_number", 0),
    ("is_lead", 0),
    ("article_sections", 0),
    # its article among the candidates: the best section's score and the sum of the others' (shares
    # of the best candidate's), how many match, the lead's score, BM25 and coverage, this section's
    # share of its article's best, whether it is the best, the article's rank
    ("article_best", 0),
    ("article_others", 0),
    ("article_matches", 0),
    ("lead_score", 0),
    ("lead_bm25", 0),
    ("lead_idf_covered", 0),
    ("share_of_article_best", 0),
    ("is_article_best", 0),
    ("article_rank", 0),
    # the query: a question or sentence, its words, characters and quoted parts, its strict matches
    ("question", 0),
    ("query_words", 0),
    ("query_chars", 0),
    ("quotes", 0),
    ("strict_matches", 0),
)
FEATURES = tuple(name for name, _ in FEATURES_AND_DIRECTIONS)
MONOTONE = tuple(direction for _, direction in FEATURES_AND_DIRECTIONS)


@dataclass
class SectionTable:
    """Per docnum of one generation: section number, body and heading lengths, and how many
    sections its article has (from `ArticleMap`-like article ids), built once per generation."""

    numbers: np.ndarray
    body_lengths: np.ndarray
    heading_lengths: np.ndarray
    articles: np.ndarray  # docnum → article number
    article_sizes: np.ndarray  # article number → its sections

    @classmethod
    def build(cls, reader) -> SectionTable:
        from ..searching import ArticleMap  # (searching imports this module)

        numbers, body, heading = [], [], []
        for leaf, _ in reader.leaf_readers():
            count = leaf.doc_count_all()
            numbers.append(_section_numbers(leaf, count))
            body.append(LENGTH_OF_BYTE[length_codes(per_document_reader(leaf), "body")])
            heading.append(LENGTH_OF_BYTE[length_codes(per_document_reader(leaf), "heading")])
        articles = ArticleMap.build(reader).numbers
        sizes = np.bincount(articles[articles >= 0]) if len(articles) else np.zeros(0, dtype=np.int64)
        empty = np.zeros(0)
        return cls(
            np.concatenate(numbers) if numbers else np.zeros(0, dtype=np.int64),
            np.concatenate(body) if body else empty,
            np.concatenate(heading) if heading else empty,
            articles,
            sizes,
        )


def _section_numbers(leaf, count: int) -> np.ndarray:
    """Each document's section number in one segment, from its column read whole: Whoosh reads
    a column one value at a time (seconds for a big segment)."""
    if not leaf.has_column("section_number"):
        return np.zeros(count, dtype=np.int64)
    column = leaf.column_reader("section_number", translate=False)
    # Whoosh's NumericColumn: fixed-size big-endian "sortable" integers, a default past its end.
    raw = fixed_column_values(column, count, numeric_type_code(column))
    if raw is None:  # another column type: one value at a time
        raw = np.array([column[docnum] for docnum in range(count)], dtype=np.int64)
    field = leaf.schema["section_number"]
    values, where = np.unique(raw, return_inverse=True)  # a few dozen numbers: translated one by one
    return np.array([int(field.from_column_value(int(value)) or 0) for value in values], dtype=np.int64)[where]


def _tied_positions(scores: np.ndarray) -> np.ndarray:
    """Each candidate's place in the first stage's order (best first), equal scores next to each
    other sharing the place of the first of them."""
    if not len(scores):
        return np.zeros(0, dtype=np.int64)
    starts = np.r_[True, scores[1:] != scores[:-1]]
    return np.maximum.accumulate(np.where(starts, np.arange(len(scores)), 0))


class Reranker:
    """Reorders a ranking's top sections with a model; `features` is what it scores them by."""

    def __init__(self, path: Path = MODEL_PATH):
        self.path = path
        self._booster = None
        self._lock = threading.Lock()
        self._predicting = threading.Lock()

    def booster(self):
        """The model, read on first use (lightgbm is imported then, not at start-up)."""
        with self._lock:
            if self._booster is None:
                import lightgbm

                booster = lightgbm.Booster(model_file=str(self.path))
                if booster.feature_name() != list(FEATURES):
                    raise RuntimeError(
                        f"{self.path} scores other features than rerank.FEATURES: rebuild it with bench/train_ranker.py"
                    )
                self._booster = booster
            return self._booster

    def scores(self, features: np.ndarray) -> np.ndarray:
        """The model's score of each row, on one thread; one prediction at a time: setting up a
        prediction writes to the shared booster (LightGBM issue 6142), and a web server's threads
        share this model."""
        booster = self.booster()
        with self._predicting:
            return booster.predict(features, num_threads=1)

    def reranked(
        self,
        searcher: Searcher,
        parsed: ParsedQuery,
        ranking: Ranking,
        strict: int,
        table: SectionTable,
        deadline: Deadline,
    ) -> Ranking:
        """`ranking` with its first RERANK_DEPTH sections reordered by the model. Its first `strict`
        sections are strict matches: they stay above the others (relaxed matches) whatever the
        model says."""
        depth = min(RERANK_DEPTH, len(ranking.docnums))
        if depth < 2:
            return ranking
        head = ranking.docnums[:depth]
        features = section_features(searcher, parsed, head, ranking.scores[:depth], strict, table, deadline)
        predicted = self.decide(head, features)
        tier = (np.arange(depth) >= strict).astype(np.int64)
        # Equal predictions in the order of their articles (ids sorted) and sections: an order
        # that does not depend on how the index was split into segments, as docnums do.
        order = np.lexsort((table.numbers[head], table.articles[head], -predicted, tier))
        scores = np.array(predicted[order], dtype=np.float64)  # (the model's own scale)
        # Relaxed matches below every strict one, whatever the model thinks of them.
        if 0 < strict < depth:
            gap = scores[:strict].min() - scores[strict:].max()
            if gap <= 0:
                scores[strict:] += gap - 1.0
        rest = ranking.scores[depth:]
        if len(rest):  # below the reordered ones, in their order
            top = rest[0] if rest[0] > 0 else 1.0
            rest = scores.min() - 1.0 + np.clip(rest / top, 0.0, 1.0) * 0.5
        return Ranking(
            ranking.total,
            np.concatenate([head[order], ranking.docnums[depth:]]),
            np.concatenate([scores, rest]),
            ranking.matched,
        )

    def decide(self, docnums: np.ndarray, features: np.ndarray) -> np.ndarray:
        """The model's score of each candidate (a training run records the features here)."""
        return self.scores(features)


_SHIPPED: Reranker | None = None
_SHIPPED_LOCK = threading.Lock()


def shipped() -> Reranker:
    """The model in the package, one per process."""
    global _SHIPPED
    with _SHIPPED_LOCK:
        if _SHIPPED is None:
            _SHIPPED = Reranker()
        return _SHIPPED


def query_words(parsed: ParsedQuery) -> list[str]:
    """The query's own words, as the index holds them (question words dropped), each once."""
    found = list(dict.fromkeys(term.text for term in terms(parsed.text.replace('"', " "))))
    words = [word for word in found if not is_question_word(word)] or found
    return words[:MAX_FEATURE_WORDS]


def section_features(
    searcher: Searcher,
    parsed: ParsedQuery,
    docnums: np.ndarray,
    scores: np.ndarray,
    strict: int,
    table: SectionTable,
    deadline: Deadline = NO_DEADLINE,
) -> np.ndarray:
    """One row of `FEATURES` per candidate (`docnums` in first-stage order, `scores` theirs)."""
    count = len(docnums)
    evaluation = Evaluation(searcher, deadline)
    candidates = _Candidates(evaluation, docnums)
    words = query_words(parsed)
    idfs = np.array([evaluation.idf("body", evaluation.term_bytes("body", word)) for word in words])
    bm25 = {field: np.zeros(count) for field in TEXT_FIELDS}
    words_in = {field: np.zeros(count) for field in TEXT_FIELDS}
    covered, words_covered = np.zeros(count), np.zeros(count)
    text_covered, missing = np.zeros(count), np.zeros(count)
    for word, idf in zip(words, idfs):
        anywhere, in_text = np.zeros(count, dtype=bool), np.zeros(count, dtype=bool)
        for field in TEXT_FIELDS:
            values, hit = candidates.term(field, word)
            bm25[field] += values
            words_in[field] += hit
            anywhere |= hit
            if field != "title":
                in_text |= hit
        covered += idf * anywhere
        words_covered += anywhere
        text_covered += idf * in_text
        missing = np.maximum(missing, np.where(anywhere, 0.0, idf))
    pairs, near = np.zeros(count), np.zeros(count)
    for first, second in pairwise(words):
        pairs += candidates.in_sequence("body", first, second)
        near += candidates.near("body", first, second)
    densest = candidates.densest("body", words, idfs, DENSEST_SPANS)
    word_count = max(len(words), 1)
    total_idf = float(idfs.sum()) or 1.0
    bm25_sum = bm25["title"] + bm25["heading"] + bm25["body"]
    best = scores.max() if count and scores.max() > 0 else 1.0
    best_bm25 = bm25_sum.max() if count and bm25_sum.max() > 0 else 1.0
    coverage = covered / total_idf

    numbers = table.numbers[docnums].astype(np.float64)
    lead = numbers == 1
    articles = table.articles[docnums]
    # Per article among the candidates: its best score, their sum and count, its lead's.
    _, article_of = np.unique(articles, return_inverse=True)
    groups = int(article_of.max()) + 1
    article_best = np.zeros(groups)
    np.maximum.at(article_best, article_of, scores)
    article_sum = np.bincount(article_of, weights=scores, minlength=groups)
    article_count = np.bincount(article_of, minlength=groups)
    lead_score = np.bincount(article_of, weights=np.where(lead, scores, 0.0), minlength=groups)
    lead_bm25 = np.bincount(article_of, weights=np.where(lead, bm25_sum, 0.0), minlength=groups)
    lead_covered = np.bincount(article_of, weights=np.where(lead, coverage, 0.0), minlength=groups)
    # Where each candidate stands in the first stage, sections of equal score together (how
    # Whoosh breaks their tie, by docnum, depends on how the index was split into segments:
    # one process or several workers must rank alike). An article's rank: its best section's.
    positions = _tied_positions(scores)
    first_seen = np.full(groups, count)
    np.minimum.at(first_seen, article_of, positions)
    article_rank = np.searchsorted(np.sort(first_seen), first_seen)
    sizes = table.article_sizes[np.maximum(articles, 0)] if len(table.article_sizes) else np.ones(count)
    average_length = evaluation.searcher.avg_field_length("body") or 1.0

    columns = {
        "score_share": scores / best,
        "rank": np.log1p(positions),
        "looser": (scores - bm25_sum) / best,
        "relaxed": positions >= strict,
        "title_bm25": bm25["title"] / best_bm25,
        "heading_bm25": bm25["heading"] / best_bm25,
        "body_bm25": bm25["body"] / best_bm25,
        "bm25": bm25_sum / best_bm25,
        "title_words": words_in["title"] / word_count,
        "heading_words": words_in["heading"] / word_count,
        "body_words": words_in["body"] / word_count,
        "idf_covered": coverage,
        "words_covered": words_covered / word_count,
        "all_words": words_covered == len(words),
        "pairs_in_body": pairs / max(len(words) - 1, 1),
        "pairs_near_in_body": near / max(len(words) - 1, 1),
        **{f"idf_within_{span}": found / total_idf for span, found in densest.items()},
        "text_idf_covered": text_covered / total_idf,
        "missing_idf": missing / (idfs.max() if len(words) else 1.0),
        "body_length": table.body_lengths[docnums],
        "relative_length": table.body_lengths[docnums] / average_length,
        "heading_length": table.heading_lengths[docnums],
        "section_number": numbers,
        "is_lead": lead,
        "article_sections": np.where(articles >= 0, sizes, 1),
        "article_best": article_best[article_of] / best,
        "article_others": (article_sum[article_of] - scores) / best,
        "article_matches": article_count[article_of],
        "lead_score": lead_score[article_of] / best,
        "lead_bm25": lead_bm25[article_of] / best_bm25,
        "lead_idf_covered": lead_covered[article_of],
        "share_of_article_best": scores / np.maximum(article_best[article_of], 1e-12),
        "is_article_best": first_seen[article_of] == positions,
        "article_rank": np.log1p(article_rank[article_of]),
        "question": parsed.natural_language,
        "query_words": len(words),
        "query_chars": len(parsed.text),
        "quotes": parsed.text.count('"') // 2,
        "strict_matches": np.log1p(min(strict, count)),
    }
    rows = np.empty((count, len(FEATURES)))
    for number, name in enumerate(FEATURES):
        rows[:, number] = columns[name]  # (a query's features are one number for every row)
    return rows


class _Candidates:
    """The candidates' docnums by segment, and a term's matches among them only: each candidate
    is looked up in the term's (decoded, shared) posting arrays, never the other way round, so a
    common word costs as little as a rare one."""

    def __init__(self, evaluation: Evaluation, docnums: np.ndarray):
        self.evaluation = evaluation
        self.count = len(docnums)
        order = np.argsort(docnums, kind="stable")
        ids = docnums[order]
        self.order, self.ids = order, ids
        # (segment, where its candidates start among `ids`, their rows, their local docnums)
        self.segments = []
        for segment in evaluation.segments:
            first, end = np.searchsorted(ids, (segment.offset, segment.offset + segment.size))
            if first < end:
                self.segments.append((segment, first, order[first:end], ids[first:end] - segment.offset))
        self._found: dict[tuple[str, str], list] = {}  # (field, word) → `_lookup`'s answer
        self._placed: dict[tuple[str, str], tuple[np.ndarray, np.ndarray]] = {}  # (field, word) → `_positions`'

    def _lookup(self, field: str, word: str) -> list[tuple]:
        """Per segment where the term occurs: (segment, its postings, the candidates that have it:
        their rows, local docnums (ascending), rows in the postings and places among `ids`)."""
        key = (field, word)
        if key in self._found:
            return self._found[key]
        evaluation = self.evaluation
        btext = evaluation.term_bytes(field, word)
        found = []
        if btext is not None:
            by_segment = dict(evaluation.term_postings(field, btext))
            for segment, first, rows, local in self.segments:
                postings = by_segment.get(segment)
                if postings is None:
                    continue
                posting_ids = postings.arrays.ids
                at = np.minimum(np.searchsorted(posting_ids, local), len(posting_ids) - 1)
                has = posting_ids[at] == local
                if has.any():
                    found.append((segment, postings, rows[has], local[has], at[has], first + np.flatnonzero(has)))
        self._found[key] = found
        return found

    def _among(self, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """For each candidate (sorted, as `self.ids`): where it stands in the sorted `ids`, and
        whether it is there at all."""
        if not len(ids):
            return np.zeros(self.count, dtype=np.int64), np.zeros(self.count, dtype=bool)
        at = np.minimum(np.searchsorted(ids, self.ids), len(ids) - 1)
        return at, ids[at] == self.ids

    def term(self, field: str, word: str) -> tuple[np.ndarray, np.ndarray]:
        """The term's BM25F score at each candidate (as the first stage scores it; 0 where it is
        absent) and where it occurs."""
        values, hit = np.zeros(self.count), np.zeros(self.count, dtype=bool)
        scored = self.evaluation.remembered((field, word))  # the first stage scored it whole
        if scored is not None:
            at, has = self._among(scored.sparse_ids)
            values[self.order[has]] = scored.scores[at[has]]
            hit[self.order[has]] = True
            return values, hit
        found = self._lookup(field, word)
        if found:
            btext = self.evaluation.term_bytes(field, word)
            assert btext is not None  # (found: the field has the word as a term)
            scores_of = self.evaluation.scorer(field, btext)
            for segment, postings, rows, local, at, _ in found:
                weights = postings.arrays.weights
                values[rows] = scores_of(segment, local, None if weights is None else weights[at])
                hit[rows] = True
        return values, hit

    def in_sequence(self, field: str, first: str, second: str) -> np.ndarray:
        """1.0 at each candidate where `second` stands right after `first` in `field`."""
        result = np.zeros(self.count)
        phrase = self.evaluation.remembered((field, (first, second)))  # the first stage found it whole
        if phrase is not None:
            result[self.order[self._among(phrase.sparse_ids)[1]]] = 1.0
            return result
        # The positions `near` reads too, each word's read once: the one phrase check over them.
        found = placed_in_sequence([self._positions(field, first), self._positions(field, second)], len(self.ids))
        result[self.order[found]] = 1.0
        return result

    def near(self, field: str, first: str, second: str) -> np.ndarray:
        """1.0 at each candidate where the two words stand NEAR_WINDOW positions apart or closer,
        in either order."""
        result = np.zeros(self.count)
        (owners, positions), (other_owners, other_positions) = (
            self._positions(field, first),
            self._positions(field, second),
        )
        if not len(owners) or not len(other_owners):
            return result
        # Candidate × stride + position (shifted by the window): ascending, and a window around a
        # position never reaches into another candidate's.
        stride = int(max(positions.max(), other_positions.max())) + 2 * NEAR_WINDOW + 1
        keys = owners * stride + positions + NEAR_WINDOW
        other_keys = other_owners * stride + other_positions + NEAR_WINDOW
        close = np.searchsorted(other_keys, keys + NEAR_WINDOW, side="right") > np.searchsorted(
            other_keys, keys - NEAR_WINDOW
        )
        near = np.zeros(self.count, dtype=bool)
        near[owners[close]] = True
        result[self.order[near]] = 1.0
        return result

    def densest(self, field: str, words: list[str], idfs: np.ndarray, spans: tuple[int, ...]) -> dict[int, np.ndarray]:
        """For each of `spans`, at each candidate: the largest idf sum of distinct `words` that
        occur within that many consecutive positions of `field`. The densest stretch starts at
        some occurrence, so only stretches starting at one are tried: for each, which words have
        a position inside it."""
        found = {span: np.zeros(self.count) for span in spans}
        placed = [(*self._positions(field, word), float(idf)) for word, idf in zip(words, idfs)]
        present = [(owners, positions, idf) for owners, positions, idf in placed if len(owners)]
        if not present:
            return found
        # Candidate × stride + position: ascending, and a stretch never reaches the next candidate.
        stride = max(int(positions.max()) for _, positions, _ in present) + max(spans) + 1
        keyed = [(owners * stride + positions, idf) for owners, positions, idf in present]
        starts = np.sort(np.concatenate([keys for keys, _ in keyed]))  # (sorted: quicker to look up)
        owners = starts // stride
        sums = {span: np.zeros(len(starts)) for span in spans}
        for keys, idf in keyed:
            inside_from = np.searchsorted(keys, starts)
            for span in spans:
                sums[span] += idf * (np.searchsorted(keys, starts + span) > inside_from)
        for span in spans:
            best = np.zeros(len(self.ids))
            np.maximum.at(best, owners, sums[span])
            found[span][self.order] = best
        return found

    def _positions(self, field: str, word: str) -> tuple[np.ndarray, np.ndarray]:
        """Every position of the word in each candidate that has it: the candidate's place among
        `ids` and the position, ascending (none where its positions are not arrays)."""
        key = (field, word)
        if key not in self._placed:
            owners, positions = [np.zeros(0, dtype=np.int64)], [np.zeros(0, dtype=np.int64)]
            for _, postings, _, local, _, places in self._lookup(field, word):
                if postings.has_array_positions():
                    owned, found = candidate_positions(postings.with_positions(), local)
                    owners.append(places[owned])
                    positions.append(found)
            self._placed[key] = (np.concatenate(owners), np.concatenate(positions))
        return self._placed[key]
