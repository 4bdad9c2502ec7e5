"""Score a TREC run against TREC qrels: MRR@10, Recall@1 and Recall@10.

    python bench/trec_eval.py ../shared/data/jaquad/qrels.txt /tmp/run.trec

Every query in the qrels counts: one the run has no answer for scores 0 (a search engine that
skips hard questions must not look better for it).

    python bench/trec_eval.py --articles QRELS RUN   # article-level qrels, a run of sections

`--articles` scores a run of sections (`<article>#<n>`) against article-level qrels: each
article counts once, at the rank of its best section (`articles_in_order`), so an article's
second section neither pushes the next article down nor counts as a second hit.
"""

from __future__ import annotations

import argparse
from collections import defaultdict
from pathlib import Path


def read_qrels(path: Path) -> dict[str, set[str]]:
    """`qid 0 docid relevance` lines → the relevant doc ids of each query."""
    relevant: dict[str, set[str]] = defaultdict(set)
    for line in path.read_text(encoding="utf-8").splitlines():
        parts = line.split()
        if len(parts) >= 4 and int(parts[3]) > 0:
            relevant[parts[0]].add(parts[2])
    return relevant


def read_run(path: Path) -> dict[str, list[str]]:
    """`qid Q0 docid rank score tag` lines → each query's doc ids in rank order."""
    ranked: dict[str, list[tuple[int, str]]] = defaultdict(list)
    for line in path.read_text(encoding="utf-8").splitlines():
        parts = line.split()
        if len(parts) >= 6:
            ranked[parts[0]].append((int(parts[3]), parts[2]))
    return {qid: [doc for _, doc in sorted(docs)] for qid, docs in ranked.items()}


def article_of(section_id: str) -> str:
    """The article a section id (`<article>#<n>`) belongs to; an id without `#` is its own."""
    article, separator, _ = section_id.rpartition("#")
    return article if separator else section_id


def articles_in_order(sections: list[str]) -> list[str]:
    """A ranked list of sections as a ranked list of articles: each article where its best
    (first) section is, its later sections dropped."""
    return list(dict.fromkeys(article_of(section) for section in sections))


def evaluate(relevant: dict[str, set[str]], run: dict[str, list[str]], depth: int = 10) -> dict[str, float]:
    reciprocal_ranks, recall_at_1, recall_at_depth = [], [], []
    for qid, answers in relevant.items():
        ranked = run.get(qid, [])[:depth]
        first = next((rank for rank, doc in enumerate(ranked, start=1) if doc in answers), None)
        reciprocal_ranks.append(1 / first if first else 0.0)
        recall_at_1.append(len(answers & set(ranked[:1])) / len(answers))
        recall_at_depth.append(len(answers & set(ranked)) / len(answers))
    count = max(len(relevant), 1)
    return {
        "queries": len(relevant),
        f"MRR@{depth}": sum(reciprocal_ranks) / count,
        "R@1": sum(recall_at_1) / count,
        f"R@{depth}": sum(recall_at_depth) / count,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("qrels", type=Path)
    parser.add_argument("run", type=Path)
    parser.add_argument("--depth", type=int, default=10)
    parser.add_argument(
        "--articles", action="store_true", help="article-level qrels: rank each article at its best section"
    )
    args = parser.parse_args()
    run = read_run(args.run)
    if args.articles:
        run = {qid: articles_in_order(sections) for qid, sections in run.items()}
    scores = evaluate(read_qrels(args.qrels), run, args.depth)
    print("  ".join(f"{k} {v:.3f}" if isinstance(v, float) else f"{k} {v}" for k, v in scores.items()))


if __name__ == "__main__":
    main()
