"""`midashi serve`'s memory after many varied requests, against its memory budget.

    python bench/serve_memory.py --index /tmp/livedoor-index [--queries 5000] [--clients 4]
    python bench/serve_memory.py --build /tmp/livedoor-index      # index livedoor + corpus/ first
    python bench/serve_memory.py --index DIR --source /work/main   # the same load on another tree

A server's caches (decoded posting lists, scored terms, term infos, analyses) fill as distinct
queries come in, and each of its threads has a searcher of its own, so memory that one query
stream never shows grows under many different ones. This starts `midashi serve` on a free
loopback port, has N client threads send requests drawn from the mixed query set
(`perf_queries.py`, many seeds: thousands of distinct queries) as the search page, the JSON API,
article pages (HTML and JSON) and suggestions, with random sorts, pages, page sizes, category
filters and date ranges, and prints the server's RSS and PSS (from /proc) at each checkpoint.
Exit code 1 on any error, or when the last RSS is over the budget.
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from pathlib import Path

from http_load import (
    HOST,
    OPENER,
    REQUEST_TIMEOUT,
    add_query_set_arguments,
    free_port,
    launch,
    stop_server,
)
from perf_queries import livedoor_titles, mixed_queries

ROOT = Path(__file__).resolve().parent.parent
CATEGORIES = (
    "dokujo-tsushin",
    "it-life-hack",
    "kaden-channel",
    "livedoor-homme",
    "movie-enter",
    "peachy",
    "smax",
    "sports-watch",
    "topic-news",
)
QUERY_SEEDS = 100  # mixed_queries() per seed: about 60 queries each, most of them distinct
DEFAULT_BUDGET_MB = 512
CHECKPOINTS = (1000, 5000)


def varied_queries() -> list[tuple[str, str]]:
    """Thousands of (kind, query) pairs: the benchmark query set under many seeds."""
    titles = livedoor_titles(ARGS.livedoor)
    pairs = {pair for seed in range(QUERY_SEEDS) for pair in mixed_queries(titles, ARGS.jaquad, seed)}
    return sorted(pairs)


def request_url(base: str, rng: random.Random, queries: list[tuple[str, str]], article_ids: list[str]) -> str:
    """One request of the mix: a search (page or API, with a random sort, page, size, filters),
    an article (page or API) seen in an earlier answer, or a suggestion."""
    kind = rng.random()
    if kind < 0.15 and article_ids:
        article = urllib.parse.quote(rng.choice(article_ids), safe="/")
        prefix = "/api/articles/" if rng.random() < 0.5 else "/articles/"
        query = rng.choice(queries)[1] if rng.random() < 0.5 else ""
        return f"{base}{prefix}{article}" + (f"?{urllib.parse.urlencode({'q': query})}" if query else "")
    query = rng.choice(queries)[1]
    if kind < 0.25:
        return f"{base}/api/suggest?{urllib.parse.urlencode({'q': query[: rng.randint(1, 4)]})}"
    params = {"q": query}
    if rng.random() < 0.4:
        params["sort"] = rng.choice(("newest", "oldest"))
    if rng.random() < 0.3:
        params["page"] = str(rng.randint(2, 6))
    if rng.random() < 0.2:
        params["per_page"] = str(rng.choice((20, 50)))
    if rng.random() < 0.25:
        params["category"] = rng.choice(CATEGORIES)
    if rng.random() < 0.15:
        year = rng.choice((2010, 2011, 2012))
        params["from"], params["to"] = f"{year}-{rng.randint(1, 6):02d}", f"{year}-{rng.randint(7, 12):02d}"
    path = "/api/search" if rng.random() < 0.6 else "/"
    return f"{base}{path}?{urllib.parse.urlencode(params)}"


def fetch(url: str) -> tuple[int, bytes]:
    """The status and body; 4xx answers (a page past the last) count as answers, not errors."""
    try:
        with OPENER.open(url, timeout=REQUEST_TIMEOUT) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        if error.code >= 500:
            raise
        return error.code, b""


def memory_mb(pid: int) -> tuple[float, float, float]:
    """The process's RSS, PSS and anonymous (its own, not file-backed) memory in MB, from
    smaps_rollup; all 0 when it is gone."""
    values = {}
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            name, _, rest = line.partition(":")
            if name in ("Rss", "Pss", "Anonymous"):
                values[name] = int(rest.split()[0]) / 1024
    except OSError:
        return 0.0, 0.0, 0.0
    return values.get("Rss", 0.0), values.get("Pss", 0.0), values.get("Anonymous", 0.0)


def start_server(source: Path, index: Path, port: int, budget_mb: int | None, log: Path) -> subprocess.Popen:
    """`midashi serve` of the code in `source`, returned once `/healthz` answers."""
    command = [
        sys.executable,
        "-c",
        "from search.cli import main; main()",
        "serve",
        "--index",
        str(index),
        "--host",
        HOST,
        "--port",
        str(port),
    ]
    if budget_mb is not None:
        command += ["--memory-budget", str(budget_mb)]
    environment = {**_environment(), "PYTHONPATH": str(source)}
    return launch(command, port, log, "serve_memory", env=environment, cwd=source)


def _environment() -> dict[str, str]:
    import os

    return {name: value for name, value in os.environ.items() if not name.startswith("MALLOC_")}


def accepts_budget(source: Path) -> bool:
    """Whether the `serve` of `source` has --memory-budget (the code before it had none)."""
    help_text = subprocess.run(
        [sys.executable, "-c", "from search.cli import main; main()", "serve", "--help"],
        capture_output=True,
        text=True,
        cwd=source,
        env={**_environment(), "PYTHONPATH": str(source)},
    ).stdout
    return "--memory-budget" in help_text


def run(base: str, pid: int, queries: list[tuple[str, str]], total: int, clients: int) -> int:
    """Send `total` requests from `clients` threads; print memory at each checkpoint. Errors."""
    lock = threading.Lock()
    state = {"sent": 0, "done": 0, "errors": 0, "first_error": ""}
    article_ids: list[str] = []
    checkpoints = sorted({point for point in CHECKPOINTS if point < total} | {total})
    started = time.perf_counter()

    def client(number: int) -> None:
        rng = random.Random(number)
        while True:
            with lock:
                if state["sent"] >= total:
                    return
                state["sent"] += 1
            url = request_url(base, rng, queries, article_ids)
            error = ""
            try:
                status, body = fetch(url)
                if status == 200 and "/api/search" in url:
                    found = [hit["article_id"] for hit in json.loads(body)["hits"]]
                    with lock:
                        article_ids.extend(found[:3])
            except Exception as exception:  # any failure is a counted error, not a crash
                error = f"{type(exception).__name__}: {exception} ({url})"
            with lock:
                state["done"] += 1
                if error:
                    state["errors"] += 1
                    state["first_error"] = state["first_error"] or error
                if state["done"] in checkpoints:
                    rss, pss, anonymous = memory_mb(pid)
                    print(
                        f"{state['done']:>6} requests  RSS {rss:7.1f} MB  PSS {pss:7.1f} MB  anon {anonymous:7.1f} MB  "
                        f"({time.perf_counter() - started:.0f} s, {state['errors']} errors)",
                        flush=True,
                    )

    threads = [threading.Thread(target=client, args=(n,)) for n in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if state["errors"]:
        print(f"{state['errors']} errors; first: {state['first_error']}", file=sys.stderr)
    return state["errors"]


def build(index: Path) -> None:
    """Index livedoor and corpus/ into `index` (as the README's flow does)."""
    subprocess.run(
        [
            sys.executable,
            "-c",
            "from search.cli import main; main()",
            "reindex",
            "--index",
            str(index),
            "--corpus",
            str(ARGS.livedoor),
            "--corpus",
            str(ROOT / "corpus"),
        ],
        check=True,
        cwd=ROOT,
        env={**_environment(), "PYTHONPATH": str(ROOT)},
    )


def main(argv: list[str] | None = None) -> int:
    global ARGS
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--index", type=Path, help="index folder to serve")
    parser.add_argument("--build", type=Path, help="index livedoor + corpus/ into this folder first, then serve it")
    parser.add_argument(
        "--source", type=Path, default=ROOT, help="the code tree whose `serve` runs (default: this one)"
    )
    parser.add_argument("--queries", type=int, default=5000, help="requests in all")
    parser.add_argument("--clients", type=int, default=4, help="concurrent client threads")
    parser.add_argument(
        "--budget", type=int, default=DEFAULT_BUDGET_MB, help="memory budget in MB (given to serve if it takes one)"
    )
    add_query_set_arguments(parser, livedoor_also="and --build")
    ARGS = parser.parse_args(argv)
    if (ARGS.index is None) == (ARGS.build is None):
        parser.error("give --index DIR or --build DIR")
    if ARGS.queries < 1 or ARGS.clients < 1:
        parser.error("--queries and --clients must be positive")
    index = ARGS.index or ARGS.build
    if ARGS.build:
        build(index)

    queries = varied_queries()
    budget = ARGS.budget if accepts_budget(ARGS.source) else None
    port = free_port()
    with tempfile.TemporaryDirectory() as scratch:
        server = start_server(ARGS.source, index, port, budget, Path(scratch) / "server.log")
        try:
            rss, pss, anonymous = memory_mb(server.pid)
            print(
                f"serve of {ARGS.source} ({'--memory-budget ' + str(budget) if budget else 'no --memory-budget'}), "
                f"{len(queries)} distinct queries, {ARGS.clients} clients"
            )
            print(
                "".join(
                    line
                    for line in Path(scratch, "server.log").read_text().splitlines(True)
                    if line.startswith("Memory budget")
                ),
                end="",
            )
            print(f"{0:>6} requests  RSS {rss:7.1f} MB  PSS {pss:7.1f} MB  anon {anonymous:7.1f} MB")
            errors = run(f"http://{HOST}:{port}", server.pid, queries, ARGS.queries, ARGS.clients)
            rss, _, _ = memory_mb(server.pid)
            if server.poll() is not None:
                sys.exit(f"serve_memory: the server exited ({server.returncode}) during the load")
        finally:
            stop_server(server)
    verdict = "within" if rss <= ARGS.budget else "OVER"
    print(f"RSS {rss:.0f} MB after {ARGS.queries} requests: {verdict} the {ARGS.budget} MB budget")
    return 1 if errors or rss > ARGS.budget else 0


ARGS: argparse.Namespace


if __name__ == "__main__":
    sys.exit(main())
