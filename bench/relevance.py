"""Ranking quality on a question → section set, default settings against a plain-BM25F baseline.

    python bench/relevance.py                      # JaQuAD: default vs plain BM25F, all questions
    python bench/relevance.py --ablations          # plus each feature switched off (on a sample)

The set is reindexed into a scratch index (incremental: a rerun reuses it), every configuration
runs through `search.batch.rank_each`, the code path of `midashi search --queries … --run …`,
and is scored by `trec_eval.py`. All figures come from the same run on the same machine: the
configurations take turns query by query, so the machine's ups and downs fall on all of them.
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import sys
from pathlib import Path

from trec_eval import evaluate, read_qrels, read_run

from search.batch import Ranked, rank_each, read_queries
from search.indexing import reindex
from search.query import PLAIN_BM25F, QueryOptions
from search.scoring import forget_between_searches
from search.searching import SearchIndex

PROJECT = Path(__file__).resolve().parent.parent
DEFAULT_DATA = PROJECT.parent / "shared" / "data" / "jaquad"
DEFAULT = QueryOptions()
ABLATIONS = {
    "without sub-units (mode A)": dataclasses.replace(DEFAULT, subwords=False),
    "without synonyms": dataclasses.replace(DEFAULT, synonyms=False),
    "without fallback bigrams": dataclasses.replace(DEFAULT, fallback=False),
    "without compound proximity": dataclasses.replace(DEFAULT, proximity=False),
    "without neighbouring-word phrases": dataclasses.replace(DEFAULT, neighbours=False),
    "without coverage (scores summed)": dataclasses.replace(DEFAULT, coverage=False),
    "keeping question words": dataclasses.replace(DEFAULT, drop_question_words=False),
}


def measure(index_root: Path, configurations: list[QueryOptions], queries, relevant, out: Path) -> list[dict]:
    """Each configuration's scores and latencies over `queries`, the configurations taking turns
    query by query. All start from the same state, a new searcher each and nothing decoded; the
    decoded lists are then shared, which favours the plain baseline (its lists are a subset of the
    default's), never the default."""
    forget_between_searches()
    indexes = [SearchIndex(index_root, options=options, synonyms_path=out / "no-user-synonyms.txt") for options in configurations]
    runs: list[list[Ranked]] = [[] for _ in configurations]
    for turn in zip(*(rank_each(index, queries, limit=100) for index in indexes)):
        for run, ranked in zip(runs, turn):
            run.append(ranked)
    measured = []
    for run in runs:
        run_path = out / "run.trec"
        run_path.write_text("".join(line + "\n" for ranked in run for line in ranked.lines), encoding="utf-8")
        scores = evaluate({qid: relevant[qid] for qid, _ in queries if qid in relevant}, read_run(run_path))
        latencies = sorted(ranked.latency_ms for ranked in run if not ranked.error)
        scores["p50 ms"] = statistics.median(latencies)
        scores["p95 ms"] = latencies[int(0.95 * (len(latencies) - 1))]
        measured.append(scores)
    return measured


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="folder with corpus.jsonl, queries.tsv, qrels.txt")
    parser.add_argument("--index", type=Path, default=Path("/tmp/midashi-relevance-index"))
    parser.add_argument("--out", type=Path, default=PROJECT / "bench" / "out")
    parser.add_argument("--ablations", action="store_true", help="also switch each feature off")
    parser.add_argument("--sample", type=int, default=3, help="ablations use every Nth question")
    args = parser.parse_args()
    if not (args.data / "corpus.jsonl").exists():
        sys.exit(f"relevance: {args.data}/corpus.jsonl not found (the JaQuAD set lives in ../shared/data/jaquad)")
    args.out.mkdir(parents=True, exist_ok=True)
    built = reindex([args.data / "corpus.jsonl"], args.index)
    print(f"index {args.index}: {'rebuilt' if built.changed else 'up to date'} ({built.elapsed_seconds:.0f} s)")
    queries = read_queries(args.data / "queries.tsv")
    relevant = read_qrels(args.data / "qrels.txt")

    groups = [(queries, {"default": DEFAULT, "plain BM25F baseline (OR)": PLAIN_BM25F})]
    if args.ablations:
        sample = queries[:: args.sample]
        ablations = {f"{name}, sample 1/{args.sample}": options for name, options in ABLATIONS.items()}
        groups.append((sample, {f"default, sample 1/{args.sample}": DEFAULT, **ablations}))
    header = f"{'configuration':<44} {'queries':>7} {'MRR@10':>7} {'R@1':>6} {'R@10':>6} {'p50 ms':>7} {'p95 ms':>7}"
    print(header)
    print("-" * len(header))
    for subset, configurations in groups:
        measured = measure(args.index, list(configurations.values()), subset, relevant, args.out)
        for name, s in zip(configurations, measured):
            print(f"{name:<44} {len(subset):>7} {s['MRR@10']:>7.3f} {s['R@1']:>6.3f} {s['R@10']:>6.3f} {s['p50 ms']:>7.1f} {s['p95 ms']:>7.1f}", flush=True)


if __name__ == "__main__":
    main()
