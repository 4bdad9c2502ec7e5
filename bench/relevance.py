"""Ranking quality on a question → section set, default settings against a plain-BM25F baseline.

    python bench/relevance.py                      # JaQuAD: default vs plain BM25F, all questions
    python bench/relevance.py --ablations          # plus each feature switched off (on a sample)

The set is reindexed into a scratch index (incremental: a rerun reuses it), every configuration
runs through `search.batch.rank_each`, the code path of `midashi search --queries … --run …`,
and is scored by `trec_eval.py`. All figures come from the same run on the same machine: the
configurations take turns, twenty queries at a time, so the machine's ups and downs fall on all
of them, each in a process of its own, so each pays for its own reading and analysing.
"""

from __future__ import annotations

import argparse
import dataclasses
import multiprocessing
import statistics
import sys
import traceback
from pathlib import Path

from trec_eval import evaluate, read_qrels, read_run

from search.batch import Ranked, rank_each, read_queries
from search.indexing import reindex
from search.query import PLAIN_BM25F, QueryOptions
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
    (`TURN_QUERIES`), each in a process of its own: none finds a question analysed or a posting list
    decoded by another (in one process, whichever went second would)."""
    searchers = [_Searcher(index_root, options, out / "no-user-synonyms.txt") for options in configurations]
    runs: list[list[Ranked]] = [[] for _ in configurations]
    try:
        for start in range(0, len(queries), TURN_QUERIES):
            for run, searcher in zip(runs, searchers):
                run += searcher.rank(queries[start:start + TURN_QUERIES])
    finally:
        for searcher in searchers:
            searcher.close()
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


# Queries a configuration ranks in a turn: enough that waking its process up (a cold processor
# cache, a sleeping core) is not in every query's time, few enough that the machine's ups and
# downs still fall on every configuration alike.
TURN_QUERIES = 20


class _Searcher:
    """A process that ranks queries with one configuration (`rank_each`, limit 100).
    Forked from a parent that never searches: it starts with nothing decoded."""

    def __init__(self, index_root: Path, options: QueryOptions, synonyms_path: Path):
        self.connection, theirs = multiprocessing.Pipe()
        self.process = multiprocessing.get_context("fork").Process(
            target=_rank_asked, args=(theirs, index_root, options, synonyms_path), daemon=True
        )
        self.process.start()

    def rank(self, queries: list[tuple[str, str]]) -> list[Ranked]:
        self.connection.send(queries)
        try:
            answer = self.connection.recv()
        except EOFError:
            sys.exit(f"relevance: a search process died (exit code {self.process.exitcode})")
        if isinstance(answer, str):
            sys.exit(f"relevance: a search process failed:\n{answer}")
        return answer

    def close(self) -> None:
        try:
            self.connection.send(None)
        except OSError:  # it died (and `rank` said so): nothing to stop
            pass
        self.process.join()


def _rank_asked(connection, index_root: Path, options: QueryOptions, synonyms_path: Path) -> None:
    """Rank each list of queries `connection` brings until it brings None; send back their `Ranked`."""
    try:
        index = SearchIndex(index_root, options=options, synonyms_path=synonyms_path)
        while (queries := connection.recv()) is not None:
            connection.send(list(rank_each(index, queries, limit=100)))
    except Exception:
        connection.send(traceback.format_exc())


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
