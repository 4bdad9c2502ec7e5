"""Best-match ranking for questions and pasted sentences: how much of the question a section covers.

BM25 scores each word on its own and adds the scores up, so a section that names a question's
subject many times (an article's subject is named in most of its sections) can outrank the
section that holds the rest of the question. The section that answers a question mostly says what
the question asks in the same words, so a best-match query scores

    (the sum of its word and phrase clauses) × (1 + COVERAGE_WEIGHT × coverage)

where coverage is the share of the question's words a section matches, each word weighted by its
idf: a word matched as itself counts fully, a word matched only in a looser form (a sub-unit, a
synonym, its bigrams) counts LOOSE_CREDIT. It is Lucene's classic coordination factor, weighted by
how much each word says.

`Coverage` is a Whoosh query, so Whoosh's own collector can walk its matcher (`CoverageMatcher`);
`scoring.py` computes the same scores over arrays (up to the order in which a section's clause
scores are added). The coverage maths is here once, for both: `CREDITS` (a word's share of its idf
by how it matched) and `coverage_scores` (the formula above, for one section or arrays of them).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from whoosh import query as wq
from whoosh.matching import Matcher, NullMatcher, ReadTooFar

COVERAGE_WEIGHT = 2.0
LOOSE_CREDIT = 0.5
COVERAGE_FIELD = "body"  # whose idf weighs each word

# How a section matches one of the question's words, and the share of the word's idf that earns
# in its coverage (`CREDITS[EXACT]`): a word matched both ways counts as matched as itself.
UNMATCHED, LOOSE, EXACT = 0, 1, 2
CREDITS = (0.0, LOOSE_CREDIT, 1.0)


def coverage_scores(total, covered, total_idf: float):
    """The score of a section (or of each section, as arrays) from `total`, the sum of its clause
    scores, and `covered`, the sum over the question's words of idf × CREDITS[how it matched]:
    `total × (1 + COVERAGE_WEIGHT × covered / total_idf)`, the operations in this order."""
    return total * (1.0 + COVERAGE_WEIGHT * (covered / total_idf))


@dataclass(frozen=True)
class Word:
    """One word of a question: the clause matching it as itself and, if any, in looser forms."""

    text: str
    exact: wq.Query
    loose: wq.Query | None = None


class Coverage(wq.Query):
    """The best-match query of a question: its words and phrases of its words standing together,
    scored as the module docstring says."""

    def __init__(self, words: Sequence[Word], together: Sequence[wq.Query] = ()):
        self.words = list(words)
        self.together = list(together)
        self.boost = 1.0

    def __repr__(self) -> str:
        return f"Coverage({self.words!r}, together={self.together!r})"

    def __eq__(self, other) -> bool:
        return type(other) is Coverage and (self.words, self.together) == (other.words, other.together)

    def __hash__(self) -> int:
        return hash((tuple(self.words), tuple(self.together)))

    def is_leaf(self) -> bool:
        return False

    def children(self) -> list[wq.Query]:
        loose = [word.loose for word in self.words if word.loose is not None]
        return [*(word.exact for word in self.words), *loose, *self.together]

    def apply(self, fn: Callable[[wq.Query], wq.Query]) -> Coverage:
        words = [Word(w.text, fn(w.exact), fn(w.loose) if w.loose is not None else None) for w in self.words]
        return Coverage(words, [fn(q) for q in self.together])

    def matcher(self, searcher, context=None) -> Matcher:
        words = [
            (w.exact.matcher(searcher, context), w.loose.matcher(searcher, context) if w.loose else NullMatcher())
            for w in self.words
        ]
        together = [q.matcher(searcher, context) for q in self.together]
        idfs = [searcher.idf(COVERAGE_FIELD, w.text) for w in self.words]
        return CoverageMatcher(words, idfs, together)


class CoverageMatcher(Matcher):
    """Whoosh's walk over a `Coverage` query: the union of its clauses, scored as coverage says."""

    def __init__(self, words: list[tuple[Matcher, Matcher]], idfs: list[float], together: list[Matcher]):
        self.words = words
        self.idfs = idfs
        self.total_idf = sum(idfs)
        self.together = together
        self.parts = [m for pair in words for m in pair] + together
        self.current: int | None = None

    def __repr__(self) -> str:
        return f"CoverageMatcher({self.words!r}, {self.together!r})"

    def copy(self) -> CoverageMatcher:
        words = [(exact.copy(), loose.copy()) for exact, loose in self.words]
        return CoverageMatcher(words, self.idfs, [m.copy() for m in self.together])

    def children(self) -> list[Matcher]:
        return list(self.parts)

    def depth(self) -> int:
        return 1 + max(m.depth() for m in self.parts)

    def is_active(self) -> bool:
        return any(m.is_active() for m in self.parts)

    def id(self) -> int:
        if self.current is None:
            self.current = min(m.id() for m in self.parts if m.is_active())
        return self.current

    def next(self) -> None:
        if not self.is_active():
            raise ReadTooFar
        current = self.id()
        self.current = None
        for m in self.parts:
            if m.is_active() and m.id() == current:
                m.next()

    def skip_to(self, id: int) -> None:
        if not self.is_active():
            raise ReadTooFar
        self.current = None
        for m in self.parts:
            if m.is_active():
                m.skip_to(id)

    def replace(self, minquality=0) -> Matcher:
        return self if self.is_active() else NullMatcher()  # scores are not a sum: nothing to prune

    def supports_block_quality(self) -> bool:
        return False

    def weight(self) -> float:
        return self.score()

    def score(self) -> float:
        current = self.id()

        def here(m: Matcher) -> bool:
            return m.is_active() and m.id() == current

        total, covered = 0.0, 0.0
        for (exact, loose), idf in zip(self.words, self.idfs):
            exact_here, loose_here = here(exact), here(loose)
            if exact_here:
                total += exact.score()
            if loose_here:
                total += loose.score()
            covered += idf * CREDITS[EXACT if exact_here else LOOSE if loose_here else UNMATCHED]
        for m in self.together:
            if here(m):
                total += m.score()
        return coverage_scores(total, covered, self.total_idf)
