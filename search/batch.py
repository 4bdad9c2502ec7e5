"""Batch search: a `qid<TAB>query` file in, a TREC run out (`midashi search --queries … --run …`).

The relevance benchmark calls this same function, so what it measures is what users run.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from .query import QueryError
from .searching import SearchIndex

RUN_TAG = "midashi"


class BatchFormatError(ValueError):
    """A line of the queries file is not `qid<TAB>query`."""


@dataclass
class BatchReport:
    queries: int = 0
    unsearchable: list[tuple[str, str]] = field(default_factory=list)  # (qid, reason)
    latencies_ms: list[float] = field(default_factory=list)
    elapsed_seconds: float = 0.0


def read_queries(path: Path) -> list[tuple[str, str]]:
    pairs = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        qid, tab, text = line.partition("\t")
        if not tab:
            raise BatchFormatError(f"{path}:{number}: expected `qid<TAB>query`")
        pairs.append((qid.strip(), text))
    return pairs


def run_queries(
    index: SearchIndex,
    queries: list[tuple[str, str]],
    run_path: Path,
    limit: int = 100,
    search: Callable | None = None,
) -> BatchReport:
    """Search every query (without snippets) and write the ranked section ids as a TREC run."""
    search = search or index.search
    index.open()  # fail once, up front, when there is no index
    report = BatchReport()
    started = time.perf_counter()
    with open(run_path, "w", encoding="utf-8") as run:
        for qid, text in queries:
            report.queries += 1
            began = time.perf_counter()
            try:
                results = search(text, limit=limit, snippets=False)
            except QueryError as error:
                report.unsearchable.append((qid, str(error)))
                continue
            report.latencies_ms.append((time.perf_counter() - began) * 1000)
            for hit in results.hits:
                run.write(f"{qid} Q0 {hit.section_id} {hit.rank} {hit.score:.4f} {RUN_TAG}\n")
    report.elapsed_seconds = time.perf_counter() - started
    return report
