"""Reindex and query speed as the corpus grows, against the floor of bare Sudachi tokenization.

    python bench/perf.py                          # 1x, 4x, 16x and 1,000,000 sections
    python bench/perf.py --sizes 1x,4x            # a quicker run
    python bench/perf.py --sizes 1x --before      # also the "before" of the speed-ups, same run
    python bench/perf.py --search-only --before   # queries only, on the indexes a full run left

1x is the livedoor tarball plus the JaQuAD corpus, as the readers section them. Bigger sizes
are SYNTHETIC: copies of 1x with distinct ids and each section's sentences shuffled, so
documents differ while vocabulary and lengths stay real. For each size, in one run:

- bare Sudachi (mode C, normalized form, part-of-speech filter) over the same texts on one core,
  the floor for our analysis, and `midashi reindex` (a subprocess, default settings) beside it;
  bare is timed before and right after the reindex and the two averaged, as a shared machine's
  speed drifts over minutes (both times go to stderr);
- index size against the raw UTF-8 text, peak memory of the reindex (PSS of all its processes);
- a no-change reindex and a reindex after changing 1 % of the articles;
- query latency over the mixed set of `perf_queries.py`, search alone and with snippets.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from perf_queries import mixed_queries

from search import memory
from search.analysis.sudachi import _thread_tokenizer
from search.codec.store import IndexStore
from search.searching import SearchIndex
from search.sources.readers import Article, read_corpus

PROJECT = Path(__file__).resolve().parent.parent
SHARED = PROJECT.parent / "shared" / "data"
MIDASHI = Path(sys.executable).parent / "midashi"
CHANGED_SHARE = 0.01
_SENTENCE = re.compile(r"(?<=[。！？])")


@dataclass
class Row:
    size: str
    sections: int = 0
    raw_mb: float = 0.0
    bare_s: float = 0.0
    build_s: float = 0.0
    index_mb: float = 0.0
    peak_memory_mb: float = 0.0
    nochange_s: float = 0.0
    change_s: float = 0.0
    latencies: dict[str, list[float]] = field(default_factory=dict)


# --- the scaled corpora ------------------------------------------------------------------------


def base_articles() -> list[Article]:
    paths = [SHARED / "ldcc-20140209.tar.gz", SHARED / "jaquad" / "corpus.jsonl"]
    for path in paths:
        if not path.exists():
            sys.exit(f"perf: {path} not found (the data sets live in ../shared/data)")
    return [item for item in read_corpus(paths) if isinstance(item, Article)]


def article_record(article: Article, copy: int, rng: random.Random, changed: bool = False) -> dict:
    """`article` as a JSONL record; copies after the first get a new id and shuffled sentences."""
    sections = []
    for section in article.sections:
        text = section.text
        if copy:
            sentences = [s for s in _SENTENCE.split(text) if s]
            rng.shuffle(sentences)
            text = "".join(sentences)
        sections.append({"heading": section.heading, "text": text})
    if changed:
        sections[-1]["text"] += "\n（この記事は更新されました。）"
    return {
        "id": article.id if not copy else f"{article.id}~{copy}",
        "title": article.title,
        "date": article.date.isoformat() if article.date else None,
        "source": article.source,
        "category": article.category,
        "url": article.url,
        "sections": sections,
    }


def write_corpus(
    articles: list[Article], target_sections: int, path: Path, changed: set[str] = frozenset()
) -> tuple[int, int]:
    """Write copies of `articles` until `target_sections`; (sections, raw UTF-8 bytes of the text)."""
    sections = raw = 0
    with open(path, "w", encoding="utf-8") as out:
        copy = 0
        while sections < target_sections:
            for article in articles:
                if sections >= target_sections:
                    break
                record = article_record(article, copy, random.Random(f"{article.id}/{copy}"))
                if record["id"] in changed:
                    record = article_record(article, copy, random.Random(f"{article.id}/{copy}"), changed=True)
                out.write(json.dumps(record, ensure_ascii=False) + "\n")
                sections += len(record["sections"])
                raw += sum(len((s["heading"] + s["text"]).encode("utf-8")) for s in record["sections"])
                raw += len(record["title"].encode("utf-8"))
            copy += 1
    return sections, raw


def section_texts(path: Path):
    """The texts an index analyses per section: title, heading, body."""
    with open(path, encoding="utf-8") as lines:
        for line in lines:
            record = json.loads(line)
            for section in record["sections"]:
                yield record["title"]
                yield section["heading"]
                yield section["text"]


# --- measurements ------------------------------------------------------------------------------


def bare_sudachi_seconds(path: Path) -> float:
    """Sudachi alone on one core: tokenize, normalized form, content-word filter."""
    tokenizer, is_content = _thread_tokenizer()
    elapsed = 0.0
    for text in section_texts(path):
        if not text:
            continue
        started = time.perf_counter()
        for morpheme in tokenizer.tokenize(text):
            if is_content(morpheme):
                morpheme.normalized_form()
        elapsed += time.perf_counter() - started
    return elapsed


def tree_pss_mb(root_pid: int) -> float:
    """Memory of a process and all its descendants: the sum of their proportional set sizes.

    PSS, not RSS: forked index workers share the parent's pages and every process maps the same
    Sudachi dictionary, and summing RSS would count those pages once per process.
    """
    parents: dict[int, int] = {}
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                with open(f"/proc/{entry.name}/stat") as stat:
                    parents[int(entry.name)] = int(stat.read().rsplit(")", 1)[1].split()[1])
            except OSError:
                continue
    total, frontier = 0, [root_pid]
    while frontier:
        pid = frontier.pop()
        total += _pss_kb(pid)
        frontier += [child for child, parent in parents.items() if parent == pid]
    return total / 1e3


def _pss_kb(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/smaps_rollup") as rollup:
            return next((int(line.split()[1]) for line in rollup if line.startswith("Pss:")), 0)
    except OSError:
        return 0  # the process ended between the listing and the read


def run_reindex(corpus: Path, index: Path, *extra: str) -> tuple[float, float]:
    """(seconds, peak memory (PSS) MB of the whole process tree) of one `midashi reindex`."""
    started = time.perf_counter()
    process = subprocess.Popen(
        [str(MIDASHI), "reindex", "--corpus", str(corpus), "--index", str(index), *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    peak = 0.0
    sampler_done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not sampler_done.wait(0.25):
            peak = max(peak, tree_pss_mb(process.pid))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    output, _ = process.communicate()
    elapsed = time.perf_counter() - started
    sampler_done.set()
    sampler.join()
    if process.returncode != 0:
        sys.exit(f"perf: reindex failed:\n{output}")
    return elapsed, peak


def query_latencies(index: Path, queries: list[tuple[str, str]], out, straightforward: bool) -> dict[str, list[float]]:
    """ms per query, search alone and with snippets; hits go to `out`.

    A warm-up pass opens the index and fills the page cache. Then each kind of search is a pass
    of its own over the queries, each starting with nothing decoded: a query finds ready only what
    the queries before it in the same pass left, as on a server, and never its own earlier run."""
    search = whoosh_searched(index) if straightforward else SearchIndex(index)
    for _, query in queries:
        search.search(query, limit=10, snippets=False)
    found: dict[str, list[float]] = {"search": [], "search+snippets": []}
    hits = []
    for label, snippets in (("search", False), ("search+snippets", True)):
        memory.forget([memory.QUERY])  # what the queries brought in; tables and analyses stay warm
        for _, query in queries:
            started = time.perf_counter()
            results = search.search(query, limit=10, snippets=snippets)
            found[label].append((time.perf_counter() - started) * 1000)
            hits.append(results.total)
    for number, (kind, query) in enumerate(queries):
        alone, with_snippets = found["search"][number], found["search+snippets"][number]
        out.write(
            f"{index.name}{' (before)' if straightforward else ''}\t{kind}\t{hits[number]}"
            f"\t{alone:.1f}\t{with_snippets:.1f}\t{query}\n"
        )
    return found


def whoosh_searched(index: Path) -> SearchIndex:
    """The index searched the straightforward way, as Whoosh does by default (its matchers and
    collectors, a searcher per search): the tests' oracle, `tests/whoosh_oracle.py`."""
    if str(PROJECT) not in sys.path:  # run as `python bench/perf.py`, tests/ is not importable
        sys.path.insert(0, str(PROJECT))
    from tests.whoosh_oracle import WhooshOracle

    return WhooshOracle(index, exact=False)


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


# --- the run -----------------------------------------------------------------------------------


def parse_size(text: str, base_sections: int) -> int:
    text = text.strip().lower()
    if text.endswith("x"):
        return int(text[:-1]) * base_sections
    return int(float(text.replace("m", "e6").replace("k", "e3")))


def measure(
    size: str, articles: list[Article], base_sections: int, queries, work: Path, log, before: bool
) -> list[Row]:
    """The row of one size; with `before`, a second row built and searched the straightforward way
    (one process: --workers 0; a new Whoosh searcher per search, block skipping, recount)."""
    target = parse_size(size, base_sections)
    corpus = work / f"corpus-{size}.jsonl"
    sections, raw = write_corpus(articles, target, corpus)
    print(f"[{size}] {sections:,} sections written to {corpus}; bare Sudachi ...", file=sys.stderr, flush=True)
    bare = bare_before = bare_sudachi_seconds(corpus)
    rows = []
    for label, extra in ((size, ()),) + (((f"{size} before", ("--workers", "0")),) if before else ()):
        row = Row(label, sections, raw / 1e6)
        index = work / f"index-{label.replace(' ', '-').replace('=', '')}"
        shutil.rmtree(index, ignore_errors=True)
        print(f"[{label}] reindex ...", file=sys.stderr, flush=True)
        row.build_s, row.peak_memory_mb = run_reindex(corpus, index, *extra)
        if not rows:
            bare_after = bare_sudachi_seconds(corpus)
            print(
                f"[{size}] bare Sudachi {bare_before:.1f} s before the reindex, {bare_after:.1f} s after",
                file=sys.stderr,
                flush=True,
            )
            bare = (bare_before + bare_after) / 2
        row.bare_s = bare
        row.index_mb = IndexStore(index).size_on_disk() / 1e6
        row.nochange_s, _ = run_reindex(corpus, index, *extra)
        with open(corpus, encoding="utf-8") as lines:
            ids = [json.loads(line)["id"] for line in lines]
        changed = set(random.Random(size).sample(ids, max(1, int(len(ids) * CHANGED_SHARE))))
        changed_corpus = work / f"corpus-{size}-changed.jsonl"
        write_corpus(articles, target, changed_corpus, changed)
        row.change_s, _ = run_reindex(changed_corpus, index, *extra)
        changed_corpus.unlink()
        print(f"[{label}] queries ...", file=sys.stderr, flush=True)
        row.latencies = query_latencies(index, queries, log, straightforward=bool(extra))
        rows.append(row)
    return rows


HEADER = (
    f"{'size':<16}{'sections':>10}{'raw MB':>8}{'bare s':>8}{'build s':>9}{'ratio':>7}{'sect/s':>8}"
    f"{'µs/sect':>8}{'idx MB':>8}{'x raw':>6}{'PSS MB':>8}{'same s':>8}{'1% s':>7}{'1%/full':>8}"
    f"{'search p50/p95/p99 ms':>24}{'+snippets p50/p95/p99 ms':>27}"
)


def print_row(r: Row) -> None:
    lat = {k: "/".join(f"{percentile(v, p):.0f}" for p in (0.5, 0.95, 0.99)) for k, v in r.latencies.items()}
    print(
        f"{r.size:<16}{r.sections:>10,}{r.raw_mb:>8.1f}{r.bare_s:>8.1f}{r.build_s:>9.1f}{r.build_s / r.bare_s:>7.2f}"
        f"{r.sections / r.build_s:>8.0f}{1e6 * r.build_s / r.sections:>8.0f}"
        f"{r.index_mb:>8.1f}{r.index_mb / r.raw_mb:>6.2f}"
        f"{r.peak_memory_mb:>8.0f}{r.nochange_s:>8.1f}{r.change_s:>7.1f}{r.change_s / r.build_s:>8.1%}"
        f"{lat['search']:>24}{lat['search+snippets']:>27}",
        flush=True,
    )


SEARCH_HEADER = f"{'size':<16}{'sections':>10}{'search p50/p95/p99 ms':>24}{'+snippets p50/p95/p99 ms':>27}"


def print_search_row(r: Row) -> None:
    lat = {k: "/".join(f"{percentile(v, p):.0f}" for p in (0.5, 0.95, 0.99)) for k, v in r.latencies.items()}
    print(f"{r.size:<16}{r.sections:>10,}{lat['search']:>24}{lat['search+snippets']:>27}", flush=True)


def measure_search(size: str, queries, work: Path, log, before: bool) -> list[Row]:
    """Query latency alone, on the index a full run built for `size`; with `before`, the same index
    searched the straightforward way too."""
    index = work / f"index-{size}"
    if not (index / "CURRENT").exists():
        sys.exit(f"perf: {index} not found: run without --search-only first")
    rows = []
    for label, straightforward in ((size, False),) + (((f"{size} before", True),) if before else ()):
        print(f"[{label}] queries ...", file=sys.stderr, flush=True)
        row = Row(label, SearchIndex(index).open()[1].doc_count())
        row.latencies = query_latencies(index, queries, log, straightforward)
        rows.append(row)
    return rows


def print_growth(rows: list[Row]) -> None:
    main = [r for r in rows if not r.size.endswith("before")]
    if len(main) > 1:
        first, last = main[0], main[-1]
        p95 = percentile(last.latencies["search+snippets"], 0.95) / percentile(first.latencies["search+snippets"], 0.95)
        build = ""
        if first.build_s:
            build = f"build time per section x{(last.build_s / last.sections) / (first.build_s / first.sections):.2f}, "
        print(
            f"\ngrowth {first.size} -> {last.size} ({last.sections / first.sections:.0f}x sections): "
            f"{build}search+snippets p95 x{p95:.2f}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--sizes", default="1x,4x,16x,1M", help="comma-separated: Nx (copies of 1x) or a section count (1M)"
    )
    parser.add_argument(
        "--work", type=Path, default=Path("/tmp/midashi-perf"), help="scratch folder for corpora and indexes"
    )
    parser.add_argument(
        "--before", action="store_true", help="also build and search the first size the straightforward way"
    )
    parser.add_argument(
        "--search-only",
        action="store_true",
        help="only query latency, on the indexes a previous run left in --work (after search changes)",
    )
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    articles = base_articles()
    base_sections = sum(len(a.sections) for a in articles)
    queries = mixed_queries([a.title for a in articles if a.category], SHARED / "jaquad" / "queries.tsv")
    print(
        f"1x = livedoor + JaQuAD: {len(articles):,} articles, {base_sections:,} sections; "
        f"bigger sizes are SYNTHETIC (copies with shuffled sentences). {len(queries)} mixed queries; "
        f"{os.cpu_count()} cores.",
        flush=True,
    )
    header = SEARCH_HEADER if args.search_only else HEADER
    print(f"\n{header}\n{'-' * len(header)}", flush=True)
    rows: list[Row] = []
    with open(args.work / "queries.tsv", "w", encoding="utf-8") as log:
        log.write("index\tkind\thits\tsearch ms\tsearch+snippets ms\tquery\n")
        for size in args.sizes.split(","):
            before = args.before and size == args.sizes.split(",")[0]
            if args.search_only:
                measured = measure_search(size, queries, args.work, log, before)
            else:
                measured = measure(size, articles, base_sections, queries, args.work, log, before)
            log.flush()
            for row in measured:  # as soon as measured: a long run stopped later keeps its rows
                (print_search_row if args.search_only else print_row)(row)
            rows += measured
    print_growth(rows)
    print(f"\nper-query hits and times: {args.work / 'queries.tsv'}")


if __name__ == "__main__":
    main()
