"""Batch search: a `qid<TAB>query` file in, a TREC run out (`midashi search --queries … --run …`).

The relevance benchmark searches through the same `rank_each`, so what it measures is what users run.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from .query.parse import QueryError
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
    """The `qid<TAB>query` lines of a file, as trec_eval reads its ids: one word each. Lines end
    at a newline only (a query may hold U+2028, which `str.splitlines` would break it at), and
    a byte-order mark an editor wrote is no part of the first id."""
    pairs = []
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as error:
        raise BatchFormatError(f"{path}: not UTF-8 text (byte {error.start:,})") from None
    except OSError as error:
        raise BatchFormatError(f"{path}: cannot be read ({error.strerror or error})") from None
    for number, line in enumerate(text.split("\n"), start=1):
        line = line.removesuffix("\r")
        if not line.strip():
            continue
        qid, tab, text = line.partition("\t")
        if not tab:
            raise BatchFormatError(f"{path}:{number}: expected `qid<TAB>query`")
        qid = qid.strip()
        if not qid or len(qid.split()) > 1:
            raise BatchFormatError(
                f"{path}:{number}: the query id {qid!r} is {'empty' if not qid else 'more than one word'}"
                " (a run's ids are one word each, as in its qrels)"
            )
        pairs.append((qid, text))
    return pairs


@dataclass(frozen=True)
class Ranked:
    """One query's ranking as TREC run lines, how long its search took, or why it could not run."""

    qid: str
    lines: list[str]
    latency_ms: float = 0.0
    error: str = ""


def rank_each(index: SearchIndex, queries: list[tuple[str, str]], limit: int = 100) -> Iterator[Ranked]:
    """Search each query (ids and scores only: no snippets, nothing marked), one at a time: a
    benchmark can take turns between indexes, query by query."""
    index.open()  # fail once, up front, when there is no index
    for qid, text in queries:
        began = time.perf_counter()
        try:
            results = index.search(text, limit=limit, marks=False)
        except QueryError as error:
            yield Ranked(qid, [], error=str(error))
            continue
        latency_ms = (time.perf_counter() - began) * 1000
        yield Ranked(
            qid, [f"{qid} Q0 {hit.section_id} {hit.rank} {hit.score:.4f} {RUN_TAG}" for hit in results.hits], latency_ms
        )


def run_queries(index: SearchIndex, queries: list[tuple[str, str]], run_path: Path, limit: int = 100) -> BatchReport:
    """Search every query (ids and scores only) and write the ranked section ids as a TREC run."""
    report = BatchReport()
    started = time.perf_counter()
    with open(run_path, "w", encoding="utf-8") as run:
        for ranked in rank_each(index, queries, limit):
            report.queries += 1
            if ranked.error:
                report.unsearchable.append((ranked.qid, ranked.error))
                continue
            report.latencies_ms.append(ranked.latency_ms)
            run.writelines(line + "\n" for line in ranked.lines)
    report.elapsed_seconds = time.perf_counter() - started
    return report
