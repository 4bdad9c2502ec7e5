"""A naive peer for the relevance table: plain BM25 (bm25s) over the same sections as the index.

What any team would build first: each section (the article's title, the section's heading and
its text, as Midashi indexes them) becomes the list of its index terms (`search.analysis.sudachi.terms`:
Sudachi mode C normalized forms of content words, the product's own analyzer), and bm25s scores
them with its default parameters (Lucene's BM25, k1 = 1.5, b = 0.75). A query is an OR of its
terms; sections scoring 0 are not results. Ties go to the section read first, so runs repeat.

The analysed corpus is kept beside the indexes (a digest of the corpus file and of the
analyzer names it), so a rerun only builds bm25s's matrix (seconds).
"""

from __future__ import annotations

import hashlib
import pickle
import time
from pathlib import Path

import bm25s
import numpy as np

from search.analysis.sudachi import analyzer_version, terms
from search.batch import RUN_TAG, Ranked
from search.sources.articles import Article
from search.sources.readers import read_corpus

PEER_TAG = "bm25s"
_FORMAT = "peer-terms-1"


def section_texts(corpus: Path) -> tuple[list[str], list[str]]:
    """Every section of the corpus as (section ids, texts), in reading order: what Midashi indexes."""
    ids, texts = [], []
    for article in read_corpus([corpus]):
        if not isinstance(article, Article):
            continue  # an unreadable line: the index skips it too
        for number, section in enumerate(article.sections, start=1):
            ids.append(article.section_id(number))
            texts.append("\n".join(part for part in (article.title, section.heading, section.text) if part))
    return ids, texts


def query_terms(text: str) -> list[str]:
    return [term.text for term in terms(text)]


def analysed_sections(corpus: Path, cache_folder: Path) -> tuple[list[str], list[list[str]]]:
    """(section ids, each section's terms), from the cache when the corpus and analyzer are unchanged."""
    digest = hashlib.blake2b(digest_size=12)
    digest.update(f"{_FORMAT}\n{analyzer_version()}\n".encode())
    for file in sorted(corpus.rglob("*")) if corpus.is_dir() else [corpus]:
        if file.is_file():
            digest.update(file.relative_to(corpus).as_posix().encode() if corpus.is_dir() else b"")
            with open(file, "rb") as handle:
                while block := handle.read(1 << 20):
                    digest.update(block)
    cached = cache_folder / f"bm25s-terms-{corpus.stem}-{digest.hexdigest()}.pickle"
    if cached.exists():
        with open(cached, "rb") as handle:
            return pickle.load(handle)
    ids, texts = section_texts(corpus)
    analysed = (ids, [query_terms(text) for text in texts])
    cache_folder.mkdir(parents=True, exist_ok=True)
    partial = cached.with_suffix(".partial")
    with open(partial, "wb") as handle:
        pickle.dump(analysed, handle, protocol=pickle.HIGHEST_PROTOCOL)
    partial.replace(cached)
    return analysed


class Bm25Peer:
    """bm25s over a corpus's sections; `rank` answers like `search.batch.rank_each`."""

    def __init__(self, corpus: Path, cache_folder: Path):
        self.section_ids, section_terms = analysed_sections(corpus, cache_folder)
        self.retriever = bm25s.BM25()
        self.retriever.index(section_terms, show_progress=False)
        self.vocabulary = self.retriever.vocab_dict

    def search(self, text: str, limit: int = 100) -> list[tuple[str, float]]:
        """The best `limit` sections for `text` as (section id, score), best first."""
        known = [term for term in query_terms(text) if term in self.vocabulary]
        if not known:
            return []
        scores = self.retriever.get_scores(known)
        matching = np.flatnonzero(scores > 0)
        best = matching[np.argsort(-scores[matching], kind="stable")][:limit]
        return [(self.section_ids[i], float(scores[i])) for i in best]

    def rank(self, queries: list[tuple[str, str]], limit: int = 100) -> list[Ranked]:
        ranked = []
        for qid, text in queries:
            began = time.perf_counter()
            hits = self.search(text, limit)
            latency_ms = (time.perf_counter() - began) * 1000
            lines = [
                f"{qid} Q0 {section} {rank} {score:.4f} {RUN_TAG}-{PEER_TAG}"
                for rank, (section, score) in enumerate(hits, 1)
            ]
            ranked.append(Ranked(qid, lines, latency_ms))
        return ranked
