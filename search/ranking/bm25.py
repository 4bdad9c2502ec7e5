"""BM25F as Whoosh computes it: the one copy of the formula in our code.

Whoosh's `BM25F` weighting stays the weighting object a searcher is opened with (its B, K1 and
per-field B); these are its formulas, written once for the array evaluation (`scoring.py`, and
through it the reranker's BM25 features) to apply to whole arrays. Each is Whoosh's operation
for operation, in the same order, so the floats are the same bits as `whoosh.scoring.bm25` and
`WeightingModel.idf` give; change nothing here without `tests/test_fork_ranking.py`.
"""

from __future__ import annotations

from math import log

import numpy as np


def idf(doc_count: int, doc_frequency: int) -> float:
    """A term's idf over the whole index (`WeightingModel.idf`: log(N / (df + 1)) + 1), with N
    every document, deleted ones too, as Whoosh counts them."""
    return log(doc_count / (doc_frequency + 1)) + 1


def length_norms(lengths: np.ndarray, B: float, K1: float, avgfl: float) -> np.ndarray:
    """`K1 * ((1 - B) + B * fl / avgfl)` of each document's field length: the part of `bm25` that
    depends on the document alone, computed once per segment and field (`scoring._Segment`)."""
    return K1 * ((1 - B) + B * lengths / avgfl)


def term_scores(idf: float, tf: np.ndarray | float, norms: np.ndarray, K1: float) -> np.ndarray:
    """`whoosh.scoring.bm25(idf, tf, fl, avgfl, B, K1)` of each posting, its documents' `norms`
    from `length_norms`."""
    return idf * ((tf * (K1 + 1)) / (tf + norms))
