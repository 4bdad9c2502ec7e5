"""Ranking quality on every kind of query at once: one command, one table.

    python bench/relevance.py                        # every set: default, plain BM25F, the bm25s peer
    python bench/relevance.py --ablations            # plus each feature switched off in turn
    python bench/relevance.py --sets keywords --sample 5   # one set, every 5th query
    python bench/relevance.py --train                # the training parts instead, to tune on

The sets (the dev ones by default; `--train` scores the training parts instead):
- `jaquad`: JaQuAD questions → their Wikipedia section (`../shared/data/jaquad`: queries.tsv and
  qrels.txt, or train-queries.tsv and train-qrels.txt), section-level;
- `headlines`: livedoor headline → its article, built at run time by
  `../shared/tools/ldcc_titles.py --part measure` (`--part train`) into `--work` (never into the
  repository: the articles may not be redistributed); the index holds every article without
  its title. Only even-numbered articles: the odd ones are held out for acceptance;
- `keywords`: 2–3 nouns drawn from each of those headlines (`keyword_set.py` says exactly how),
  the target being the headline's article.

Headline and keyword qrels name articles while Midashi ranks sections, so a ranking is scored
at article level: its sections become their articles in rank order, each article once, where
its best section is (`trec_eval.articles_in_order`), before MRR@10, R@1 and R@10. JaQuAD is
scored on sections as ranked. A query that finds nothing (or cannot be searched) counts as a
miss and in the zero-result rate.

The configurations: the default, the default without its learned ranker (the first stage alone,
`search/ranking/rerank.py`), plain BM25F (every query an OR of its terms), with `--ablations` each
feature of `ABLATIONS` switched off, and a naive peer: bm25s over the same
sections and the same Sudachi terms (`peers.py`).

Each set's corpus is reindexed into `--work` (incremental: a rerun reuses it). Midashi's
configurations search through `search.batch.rank_each`, the code path of
`midashi search --queries … --run …`, at most 100 sections a query. All figures of a set come
from the same run on the same machine: the configurations take turns, twenty queries at a
time, so the machine's ups and downs fall on all of them, each in a process of its own, so each
pays for its own reading and analysing. The runs are kept in `--out` as TREC files.
"""

from __future__ import annotations

import argparse
import dataclasses
import filecmp
import multiprocessing
import re
import shutil
import statistics
import subprocess
import sys
import traceback
from collections.abc import Callable
from pathlib import Path

from keyword_set import keyword_set
from peers import Bm25Peer, analysed_sections
from trec_eval import articles_in_order, evaluate, read_qrels

from search.batch import Ranked, rank_each, read_queries
from search.indexing import reindex
from search.query.parse import PLAIN_BM25F, QueryOptions
from search.searching import SearchIndex

PROJECT = Path(__file__).resolve().parent.parent
SHARED = PROJECT.parent / "shared"
JAQUAD = SHARED / "data" / "jaquad"
HEADLINE_TOOL = SHARED / "tools" / "ldcc_titles.py"
SET_NAMES = ("jaquad", "headlines", "keywords")
DEFAULT = QueryOptions()
WITHOUT_RANKER = "without learned ranker"
ABLATIONS = {
    "without sub-units (mode A)": dataclasses.replace(DEFAULT, subwords=False),
    "without synonyms": dataclasses.replace(DEFAULT, synonyms=False),
    "without fallback bigrams": dataclasses.replace(DEFAULT, fallback=False),
    "without compound proximity": dataclasses.replace(DEFAULT, proximity=False),
    "without neighbouring-word phrases": dataclasses.replace(DEFAULT, neighbours=False),
    "without coverage (scores summed)": dataclasses.replace(DEFAULT, coverage=False),
    "keeping question words": dataclasses.replace(DEFAULT, drop_question_words=False),
}
PEER = "bm25s peer (naive BM25)"
LIMIT = 100  # sections asked for per query: enough for ten articles after merging sections
# Queries a configuration ranks in a turn: enough that waking its process up (a cold processor
# cache, a sleeping core) is not in every query's time, few enough that the machine's ups and
# downs still fall on every configuration alike.
TURN_QUERIES = 20

Configuration = QueryOptions | str  # Midashi's options, or PEER


@dataclasses.dataclass
class QuerySet:
    """Queries with their qrels over one corpus, and how to score them."""

    name: str
    queries: list[tuple[str, str]]
    relevant: dict[str, set[str]]
    corpus: Path
    index: Path
    article_level: bool  # qrels name articles: score a ranking's articles, each at its best section


def jaquad_set(data: Path, work: Path, train: bool) -> QuerySet:
    prefix = "train-" if train else ""
    if not (data / "corpus.jsonl").exists():
        sys.exit(f"relevance: {data}/corpus.jsonl not found (the JaQuAD set lives in ../shared/data/jaquad)")
    return QuerySet(
        f"JaQuAD {'train' if train else 'dev'}",
        read_queries(data / f"{prefix}queries.tsv"),
        read_qrels(data / f"{prefix}qrels.txt"),
        data / "corpus.jsonl",
        work / "jaquad-index",
        article_level=False,
    )


def headline_set(work: Path, part: str, tarball: Path | None) -> QuerySet:
    """The livedoor headline → article set of `part`, built now by the shared tool, and its corpus
    (the same for both parts) copied to where the index is made from only when it changed."""
    if not HEADLINE_TOOL.exists():
        sys.exit(f"relevance: {HEADLINE_TOOL} not found (the headline set is built from ../shared)")
    folder = work / f"headlines-{part}"
    command = [sys.executable, str(HEADLINE_TOOL), str(folder), "--part", part]
    if tarball:
        command += ["--tarball", str(tarball)]
    built = subprocess.run(command, capture_output=True, text=True)
    if built.returncode:
        sys.exit(f"relevance: building the headline set failed:\n{built.stderr.strip()}")
    corpus = work / "livedoor" / "corpus.jsonl"
    corpus.parent.mkdir(parents=True, exist_ok=True)
    if not corpus.exists() or not filecmp.cmp(folder / "corpus.jsonl", corpus, shallow=False):
        shutil.copyfile(folder / "corpus.jsonl", corpus)
    queries = read_queries(folder / "queries.tsv")
    held_out = [qid for qid, _ in queries if int(re.sub(r"\D", "", qid) or 1) % 2]
    if held_out:
        sys.exit(f"relevance: {len(held_out)} headlines of odd-numbered (held-out) articles, e.g. {held_out[0]}")
    return QuerySet(
        f"headlines {part}",
        queries,
        read_qrels(folder / "qrels.txt"),
        corpus,
        work / "livedoor-index",
        article_level=True,
    )


def keyword_query_set(headlines: QuerySet, part: str) -> QuerySet:
    queries, relevant = keyword_set(headlines.queries, headlines.relevant)
    return dataclasses.replace(headlines, name=f"keywords {part}", queries=queries, relevant=relevant)


def measure(query_set: QuerySet, configurations: dict[str, Configuration], work: Path, out: Path) -> list[dict]:
    """Each configuration's scores and latencies over the set, the configurations taking turns
    (`TURN_QUERIES`), each in a process of its own: none finds a query analysed or a posting list
    decoded by another (in one process, whichever went second would)."""
    searchers = [_Searcher(_starter(options, query_set, work, out)) for options in configurations.values()]
    runs: list[list[Ranked]] = [[] for _ in configurations]
    queries = query_set.queries
    try:
        for start in range(0, len(queries), TURN_QUERIES):
            for run, searcher in zip(runs, searchers):
                run += searcher.rank(queries[start : start + TURN_QUERIES])
    finally:
        for searcher in searchers:
            searcher.close()
    measured = []
    for name, run in zip(configurations, runs):
        slug = re.sub(r"[^a-z0-9]+", "-", f"{query_set.name} {name}".lower()).strip("-")
        (out / f"{slug}.trec").write_text(
            "".join(line + "\n" for ranked in run for line in ranked.lines), encoding="utf-8"
        )
        ranked_ids = {ranked.qid: [line.split()[2] for line in ranked.lines] for ranked in run}
        if query_set.article_level:
            ranked_ids = {qid: articles_in_order(sections) for qid, sections in ranked_ids.items()}
        scores = evaluate({qid: query_set.relevant[qid] for qid, _ in queries if qid in query_set.relevant}, ranked_ids)
        scores["zero"] = sum(not ranked.lines for ranked in run) / max(len(run), 1)
        scores["unsearchable"] = sum(bool(ranked.error) for ranked in run)
        latencies = sorted(ranked.latency_ms for ranked in run if not ranked.error) or [0.0]
        scores["p50 ms"] = statistics.median(latencies)
        scores["p95 ms"] = latencies[int(0.95 * (len(latencies) - 1))]
        measured.append(scores)
    return measured


Ranker = Callable[[list[tuple[str, str]]], list[Ranked]]


def _starter(configuration: Configuration, query_set: QuerySet, work: Path, out: Path) -> Callable[[], Ranker]:
    """What a search process runs first (after the fork): open its index, or build its peer."""
    if configuration == PEER:
        return lambda: Bm25Peer(query_set.corpus, work).rank

    def open_index() -> Ranker:
        index = SearchIndex(query_set.index, options=configuration, synonyms_path=out / "no-user-synonyms.txt")
        return lambda queries: list(rank_each(index, queries, limit=LIMIT))

    return open_index


class _Searcher:
    """A process that ranks queries with one configuration. Forked from a parent that never
    searches: it starts with nothing decoded."""

    def __init__(self, start: Callable[[], Ranker]):
        self.connection, theirs = multiprocessing.Pipe()
        self.process = multiprocessing.get_context("fork").Process(
            target=_rank_asked, args=(theirs, start), daemon=True
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


def _rank_asked(connection, start: Callable[[], Ranker]) -> None:
    """Rank each list of queries `connection` brings until it brings None; send back their `Ranked`."""
    try:
        rank = start()
        while (queries := connection.recv()) is not None:
            connection.send(rank(queries))
    except Exception:
        connection.send(traceback.format_exc())


def _in_a_child(function: Callable[[], object]) -> None:
    """Run `function` in a forked process and wait: analysing a corpus in the parent would leave
    Sudachi's caches warm in every search process forked after it."""
    process = multiprocessing.get_context("fork").Process(target=function)
    process.start()
    process.join()
    if process.exitcode:
        sys.exit(f"relevance: preparing the peer failed (exit code {process.exitcode})")


def build_index(corpus: Path, index: Path) -> None:
    """Bring `index` in line with `corpus` in this one process. Worker processes take batches
    as they free up, so their builds number the sections differently each time, and sections
    of equal score then come in another order: the runs here, and the model train_ranker
    learns from them, would change from one build to the next."""
    built = reindex([corpus], index, workers=0)
    print(f"index {index}: {'rebuilt' if built.changed else 'up to date'} ({built.elapsed_seconds:.0f} s)", flush=True)


def build_sets(args: argparse.Namespace) -> list[QuerySet]:
    part = "train" if args.train else "measure"
    sets = []
    if "jaquad" in args.sets:
        sets.append(jaquad_set(args.jaquad, args.work, args.train))
    if "headlines" in args.sets or "keywords" in args.sets:
        headlines = headline_set(args.work, part, args.tarball)
        if "headlines" in args.sets:
            sets.append(headlines)
        if "keywords" in args.sets:
            sets.append(keyword_query_set(headlines, part))
    for query_set in sets:
        query_set.queries = query_set.queries[:: args.sample]
    return sets


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sets", default=",".join(SET_NAMES), help=f"comma-separated, of {', '.join(SET_NAMES)}")
    parser.add_argument("--train", action="store_true", help="score the training parts (to tune on), not the dev ones")
    parser.add_argument("--sample", type=int, default=1, help="every Nth query of each set, for a quick run")
    parser.add_argument("--ablations", action="store_true", help="also switch each feature off in turn")
    parser.add_argument("--no-peer", action="store_true", help="leave the bm25s peer out")
    parser.add_argument("--jaquad", type=Path, default=JAQUAD, help="folder with corpus.jsonl, queries.tsv, qrels.txt")
    parser.add_argument("--tarball", type=Path, help="the livedoor tarball (default: the headline tool's)")
    parser.add_argument("--work", type=Path, default=Path("/tmp/midashi-relevance"), help="generated sets and indexes")
    parser.add_argument("--out", type=Path, default=PROJECT / "bench" / "out", help="the runs, as TREC files")
    args = parser.parse_args()
    args.sets = [name.strip() for name in args.sets.split(",") if name.strip()]
    unknown = [name for name in args.sets if name not in SET_NAMES]
    if unknown or not args.sets:
        parser.error(f"--sets takes {', '.join(SET_NAMES)}, not {', '.join(unknown) or 'nothing'}")
    if args.sample < 1:
        parser.error("--sample must be 1 or more")
    args.work.mkdir(parents=True, exist_ok=True)
    args.out.mkdir(parents=True, exist_ok=True)

    sets = build_sets(args)
    for corpus, index in dict.fromkeys((query_set.corpus, query_set.index) for query_set in sets):
        build_index(corpus, index)
        if not args.no_peer:
            _in_a_child(lambda corpus=corpus: analysed_sections(corpus, args.work))
    configurations: dict[str, Configuration] = {
        "default": DEFAULT,
        WITHOUT_RANKER: dataclasses.replace(DEFAULT, rerank=False),
        "plain BM25F (OR)": PLAIN_BM25F,
    }
    if args.ablations:
        configurations |= ABLATIONS
    if not args.no_peer:
        configurations[PEER] = PEER

    sample = f", every {args.sample}th query" if args.sample > 1 else ""
    print(f"\nMRR@10, R@1, R@10 over the top 10; zero = share of queries with no result{sample}")
    header = (
        f"{'set':<18} {'configuration':<36} {'queries':>7} {'MRR@10':>7} {'R@1':>6} {'R@10':>6}"
        f" {'zero':>6} {'p50 ms':>7} {'p95 ms':>7}"
    )
    print(header)
    print("-" * len(header))
    unsearchable = []
    for query_set in sets:
        for name, s in zip(configurations, measure(query_set, configurations, args.work, args.out)):
            print(
                f"{query_set.name:<18} {name:<36} {s['queries']:>7}"
                f" {s['MRR@10']:>7.3f} {s['R@1']:>6.3f} {s['R@10']:>6.3f}"
                f" {s['zero']:>6.1%} {s['p50 ms']:>7.1f} {s['p95 ms']:>7.1f}",
                flush=True,
            )
            if s["unsearchable"]:
                unsearchable.append(f"{query_set.name}, {name}: {s['unsearchable']} queries could not be searched")
    print("headlines and keywords: article-level (each article once, at its best section); JaQuAD: sections")
    for line in unsearchable:
        print(line)


if __name__ == "__main__":
    main()
