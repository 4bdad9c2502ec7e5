"""`/api/search` latency through HTTP, under concurrent load, on the production server.

    python bench/http_load.py --index /tmp/perf-index [--clients 4] [--seconds 60] [--port 0]
        [--reindex-loop CORPUS_A CORPUS_B]

In-process timings miss what a user waits for: JSON encoding, the WSGI server's thread pool and
requests queueing behind each other. So this starts `midashi serve`, has N client threads cycle
through the mixed query set (`perf_queries.py`) for a fixed time, and prints throughput and
p50/p95/p99 per query kind. `/healthz` under the same load is the baseline: it is what the server
and HTTP alone cost, so search/healthz p95 shows what searching adds. Exit code 1 on any error.

With `--reindex-loop A B` (each a comma-separated list of corpus paths), another process runs
`midashi reindex` on the served index for the whole search load, alternating corpora A and B, so
that generations are swapped under the clients' feet; the clients then also sort by date, filter
by date and category, open articles and ask for suggestions, and the report says how many swaps
happened. Every request must still succeed (issue 26: a request sees one generation throughout).
"""

from __future__ import annotations

import argparse
import json
import math
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from perf_queries import livedoor_titles, mixed_queries

ROOT = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"
BASELINE_SECONDS = 5.0
STARTUP_SECONDS = 60.0
REQUEST_TIMEOUT = 30.0
# No proxy: an http_proxy in the environment must not see (or slow down) loopback requests.
OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


@dataclass
class Results:
    """Latencies (ms) of successful requests and error counts, by kind; shared by client threads."""

    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    errors: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    first_errors: dict[str, str] = field(default_factory=dict)  # kind → its first error
    seconds: float = 0.0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, kind: str, milliseconds: float, error: str) -> None:
        with self.lock:
            if error:
                self.errors[kind] += 1
                self.first_errors.setdefault(kind, error)
            else:
                self.latencies[kind].append(milliseconds)


def free_port() -> int:
    """A port nothing listens on now (the OS's pick), for the server to bind."""
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return probe.getsockname()[1]


def get(url: str) -> None:
    """GET `url` and read the whole body; raises unless the answer is 200."""
    with OPENER.open(url, timeout=REQUEST_TIMEOUT) as response:
        response.read()
        if response.status != 200:
            raise RuntimeError(f"HTTP {response.status}")


def midashi_command() -> str:
    """The project's `midashi` command, beside this Python or on the PATH."""
    midashi = Path(sys.executable).with_name("midashi")
    command = str(midashi) if midashi.exists() else shutil.which("midashi")
    if command is None:
        sys.exit("http_load: no `midashi` command: activate the project's venv first")
    return command


def start_server(index: Path, port: int, log: Path) -> subprocess.Popen:
    """`midashi serve` in the background, returned once `/healthz` answers."""
    command = [midashi_command(), "serve", "--index", str(index), "--host", HOST, "--port", str(port)]
    return launch(command, port, log, "http_load")


def launch(
    command: list[str], port: int, log: Path, name: str, env: dict[str, str] | None = None, cwd: Path | None = None
) -> subprocess.Popen:
    """Start a server `command` (its output into `log`) and return it once `/healthz` answers on
    `port`; exit with the log when it dies or stays silent (`name` says which bench it was)."""
    with log.open("wb") as output:
        server = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT, env=env, cwd=cwd)
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        if server.poll() is not None:
            sys.exit(f"{name}: the server exited ({server.returncode}):\n{log.read_text(errors='replace')}")
        try:
            get(f"http://{HOST}:{port}/healthz")
            return server
        except OSError:
            time.sleep(0.2)
    stop_server(server)
    sys.exit(f"{name}: /healthz did not answer within {STARTUP_SECONDS:.0f} s")


def stop_server(server: subprocess.Popen) -> None:
    """Stop the server politely, then firmly: a benchmark must not leave it running."""
    server.terminate()
    try:
        server.wait(timeout=10)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait()


@dataclass
class ReindexLoop:
    """`midashi reindex` of the served index in a loop, alternating two corpora: every run that
    publishes a new generation is a swap the clients must not notice."""

    index: Path
    corpora: tuple[list[str], list[str]]
    runs: int = 0
    swaps: int = 0
    failures: list[str] = field(default_factory=list)
    generations: list[str] = field(default_factory=list)

    def run_until(self, deadline: float) -> None:
        """Reindex, A then B then A…, until `deadline` (the run under way is let finish)."""
        command = midashi_command()
        while time.monotonic() < deadline:
            corpus = self.corpora[self.runs % 2]
            before = current_generation(self.index)
            arguments = [argument for path in corpus for argument in ("--corpus", path)]
            done = subprocess.run(
                [command, "reindex", *arguments, "--index", str(self.index)], capture_output=True, text=True
            )
            self.runs += 1
            after = current_generation(self.index)
            if done.returncode:
                self.failures.append((done.stderr.strip().splitlines() or [f"exit {done.returncode}"])[-1])
            elif after != before:
                self.swaps += 1
                self.generations.append(after)

    def summary(self) -> str:
        span = f" ({self.generations[0]} … {self.generations[-1]})" if self.generations else ""
        failed = f", {len(self.failures)} failed (first: {self.failures[0]})" if self.failures else ""
        return f"reindex loop: {self.runs} reindexes, {self.swaps} generation swaps{span}{failed}"


def current_generation(index: Path) -> str:
    """The generation CURRENT names now ("" before the first)."""
    try:
        return (index / "CURRENT").read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        return ""


def with_browsing(base: str, queries: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """Each query's search followed by the other requests of a run with swaps, reading every table
    a search or page uses: date order, date and category filters, an article, suggestions."""
    found = json.loads(_read(f"{base}/api/search?{urllib.parse.urlencode({'q': '日本', 'per_page': 50})}"))
    hits = found["hits"]
    categories = [facet["value"] for facet in found["facets"]["category"]] or [""]
    requests: list[tuple[str, str]] = []
    for number, (kind, query) in enumerate(queries):
        requests.append((kind, f"{base}/api/search?{urllib.parse.urlencode({'q': query})}"))
        sort = ("newest", "oldest")[number % 2]
        requests.append(("sorted", f"{base}/api/search?{urllib.parse.urlencode({'q': query, 'sort': sort})}"))
        filters = {"q": query, "from": "2011-01", "to": "2012-06", "category": categories[number % len(categories)]}
        requests.append(("filtered", f"{base}/api/search?{urllib.parse.urlencode(filters)}"))
        requests.append(("suggest", f"{base}/api/suggest?{urllib.parse.urlencode({'q': query[:2]})}"))
        if hits:
            article_id = urllib.parse.quote(hits[number % len(hits)]["article_id"])
            requests.append(("article", f"{base}/api/articles/{article_id}?{urllib.parse.urlencode({'q': query})}"))
    return requests


def _read(url: str) -> bytes:
    with OPENER.open(url, timeout=REQUEST_TIMEOUT) as response:
        return response.read()


def corpus_list(text: str) -> list[str]:
    """argparse type: comma-separated corpus paths, each of which must exist."""
    paths = [part for part in text.split(",") if part]
    missing = [path for path in paths if not Path(path).exists()]
    if not paths or missing:
        raise argparse.ArgumentTypeError(f"no such corpus: {', '.join(missing) or repr(text)}")
    return [str(Path(path).resolve()) for path in paths]


def run_load(requests: Sequence[tuple[str, str]], clients: int, seconds: float) -> Results:
    """`clients` threads each cycle through (kind, url) pairs, starting at its own offset, until
    `seconds` have passed; every request is timed."""
    results = Results()
    deadline = time.monotonic() + seconds

    def client(number: int) -> None:
        position = number * len(requests) // clients
        while time.monotonic() < deadline:
            kind, url = requests[position % len(requests)]
            position += 1
            started = time.perf_counter()
            try:
                get(url)
                error = ""
            except Exception as exception:  # any failure is a counted error, not a crash
                error = f"{type(exception).__name__}: {exception}"
            results.record(kind, (time.perf_counter() - started) * 1000, error)

    threads = [threading.Thread(target=client, args=(n,)) for n in range(clients)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    results.seconds = time.perf_counter() - started
    return results


def exception_lines(log: Path) -> dict[str, int]:
    """The server log's exceptions (the last line of each traceback), counted."""
    counts: dict[str, int] = defaultdict(int)
    lines = log.read_text(encoding="utf-8", errors="replace").splitlines()
    for line, following in zip(lines, [*lines[1:], ""]):
        if re.match(r"[A-Za-z_.]+(Error|Exception)\b", line) and not following.startswith(" "):
            counts[line[:200]] += 1
    return dict(counts)


def percentile(sorted_values: list[float], fraction: float) -> float:
    """Nearest-rank percentile of an ascending list."""
    if not sorted_values:
        return float("nan")
    rank = max(1, math.ceil(fraction * len(sorted_values)))
    return sorted_values[rank - 1]


def table(rows: list[tuple[str, list[float], int, float]]) -> str:
    """(label, latencies, errors, seconds) rows → a fixed-width text table."""
    lines = [f"{'kind':<10} {'requests':>9} {'errors':>7} {'req/s':>8} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8}"]
    for label, latencies, errors, seconds in rows:
        ordered = sorted(latencies)
        lines.append(
            f"{label:<10} {len(ordered):>9} {errors:>7} {len(ordered) / seconds:>8.1f}"
            + "".join(f" {percentile(ordered, p):>8.1f}" for p in (0.50, 0.95, 0.99))
        )
    return "\n".join(lines)


def report(search: Results, baseline: Results, kinds: list[str]) -> str:
    """The one table: all searches, each kind, then the /healthz baseline and the p95 ratio."""
    everything = [ms for kind in kinds for ms in search.latencies[kind]]
    rows = [("all", everything, sum(search.errors.values()), search.seconds)]
    rows += [(kind, search.latencies[kind], search.errors[kind], search.seconds) for kind in kinds]
    rows.append(("healthz", baseline.latencies["healthz"], baseline.errors["healthz"], baseline.seconds))
    ratio = percentile(sorted(everything), 0.95) / percentile(sorted(baseline.latencies["healthz"]), 0.95)
    return f"{table(rows)}\n\nsearch p95 / healthz p95 = {ratio:.1f}x"


def existing_file(path: str) -> Path:
    """argparse type: a path that must be an existing file, with a clear message when it is not."""
    if not Path(path).is_file():
        raise argparse.ArgumentTypeError(f"{path} not found (see bench/http_load.py --help)")
    return Path(path)


def add_query_set_arguments(parser: argparse.ArgumentParser, livedoor_also: str = "") -> None:
    """`--livedoor` and `--jaquad`: where the mixed query set comes from (../shared by default)."""
    parser.add_argument(
        "--livedoor",
        type=existing_file,
        default=str(ROOT.parent / "shared/data/ldcc-20140209.tar.gz"),
        help=f"livedoor news corpus tarball (titles for the query set{', ' + livedoor_also if livedoor_also else ''})",
    )
    parser.add_argument(
        "--jaquad",
        type=existing_file,
        default=str(ROOT.parent / "shared/data/jaquad/queries.tsv"),
        help="JaQuAD queries.tsv (questions for the query set)",
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--index", type=Path, required=True, help="index folder to serve")
    parser.add_argument("--clients", type=int, default=4, help="concurrent client threads")
    parser.add_argument("--seconds", type=float, default=60.0, help="duration of the search load")
    parser.add_argument("--port", type=int, default=0, help="server port (0: a free one)")
    add_query_set_arguments(parser)
    parser.add_argument(
        "--reindex-loop",
        type=corpus_list,
        nargs=2,
        metavar=("CORPUS_A", "CORPUS_B"),
        help="reindex the index in another process during the load, alternating these "
        "corpora (each comma-separated paths)",
    )
    parser.add_argument("--server-log", type=Path, help="keep the server's output in this file")
    args = parser.parse_args(argv)
    if args.clients < 1 or args.seconds <= 0:
        parser.error("--clients and --seconds must be positive")

    queries = mixed_queries(livedoor_titles(args.livedoor), args.jaquad)
    kinds = list(dict.fromkeys(kind for kind, _ in queries))
    port = args.port or free_port()
    base = f"http://{HOST}:{port}"
    search_requests = [(kind, f"{base}/api/search?{urllib.parse.urlencode({'q': q})}") for kind, q in queries]

    loop = ReindexLoop(args.index, tuple(args.reindex_loop)) if args.reindex_loop else None
    with tempfile.TemporaryDirectory() as scratch:
        server = start_server(args.index, port, Path(scratch) / "server.log")
        try:
            if loop:
                search_requests = with_browsing(base, queries)
                kinds += ["sorted", "filtered", "suggest", "article"]
                reindexing = threading.Thread(target=loop.run_until, args=(time.monotonic() + args.seconds,))
                reindexing.start()
            search = run_load(search_requests, args.clients, args.seconds)
            if loop:
                reindexing.join()
            baseline = run_load([("healthz", f"{base}/healthz")], args.clients, BASELINE_SECONDS)
        finally:
            stop_server(server)
        server_errors = exception_lines(Path(scratch) / "server.log")
        if args.server_log:
            shutil.copyfile(Path(scratch) / "server.log", args.server_log)

    print(
        f"{len(search_requests)} requests ({', '.join(kinds)}), {args.clients} clients, "
        f"{search.seconds:.0f} s search load + {baseline.seconds:.0f} s /healthz baseline\n"
    )
    print(report(search, baseline, kinds))
    if loop:
        print(loop.summary())
    errors = sum(search.errors.values()) + sum(baseline.errors.values()) + (len(loop.failures) if loop else 0)
    if errors:
        print(f"\n{errors} errors; the first of each kind:", file=sys.stderr)
        for kind, error in {**search.first_errors, **baseline.first_errors}.items():
            print(f"  {kind}: {error}", file=sys.stderr)
        for failure in loop.failures[:1] if loop else []:
            print(f"  reindex: {failure}", file=sys.stderr)
    for line, count in server_errors.items():
        print(f"server log: {count} x {line}", file=sys.stderr)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
