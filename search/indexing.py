"""`reindex`: bring an index in line with a corpus, touching only what changed.

Articles are streamed from the readers; each one's content hash is compared with the manifest of
the live generation. Only added and changed articles are analysed and written, removed ones are
deleted, and the result is published as a new generation in one atomic step. Any failure,
Ctrl-C included, discards the half-built generation and leaves the live one untouched.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from whoosh import index as whoosh_index

from .parallel import ParallelWriter, default_workers
from .readers import Unreadable, read_corpus
from .schema import build_schema, section_documents
from .store import IndexMissingError, IndexStore, Manifest

WRITER_MEMORY_MB = 256


@dataclass
class Counts:
    articles: int = 0
    sections: int = 0

    def add(self, sections: int) -> None:
        self.articles += 1
        self.sections += sections


@dataclass
class ReindexReport:
    """What a reindex did, for the summary line and for tests."""

    added: Counts = field(default_factory=Counts)
    updated: Counts = field(default_factory=Counts)
    removed: Counts = field(default_factory=Counts)
    unchanged: Counts = field(default_factory=Counts)
    skipped: list[Unreadable] = field(default_factory=list)
    elapsed_seconds: float = 0.0
    generation: str | None = None  # None when nothing changed and no generation was written

    @property
    def changed(self) -> bool:
        return self.generation is not None


ProgressCallback = Callable[[int], None]


def reindex(
    corpus: Iterable[Path | str],
    index_root: Path | str,
    full: bool = False,
    progress: ProgressCallback | None = None,
    workers: int | None = None,
) -> ReindexReport:
    """Update (or, with `full`, rebuild) the index at `index_root` from the corpus paths.

    `progress` is called with the number of articles read so far, once per article. `workers`
    is the number of processes that analyse a big change (default: one per core; 0: none).
    """
    started = time.perf_counter()
    store = IndexStore(index_root)
    corpus = [str(path) for path in corpus]
    report = ReindexReport()
    with store.writer_lock():
        previous = None if full else _live_manifest(store)
        build = _GenerationBuilder(store, previous, default_workers() if workers is None else workers)
        try:
            seen: set[str] = set()
            for number, item in enumerate(read_corpus(corpus), start=1):
                if isinstance(item, Unreadable):
                    report.skipped.append(item)
                elif item.id in seen:
                    report.skipped.append(Unreadable(item.path, f"duplicate article id {item.id!r}"))
                else:
                    seen.add(item.id)
                    build.put(item, report)
                if progress:
                    progress(number)
            build.remove_missing(seen, report)
            report.generation = build.finish(corpus)
        except BaseException:
            build.abandon()
            raise
    report.elapsed_seconds = time.perf_counter() - started
    return report


def _live_manifest(store: IndexStore) -> Manifest | None:
    try:
        return store.manifest()
    except (IndexMissingError, FileNotFoundError, ValueError, KeyError):
        return None  # no index yet, or one we cannot trust: rebuild from scratch


class _GenerationBuilder:
    """Writes the next generation lazily: nothing is created until the first real change."""

    def __init__(self, store: IndexStore, previous: Manifest | None, workers: int):
        self.store = store
        self.previous = previous
        self.workers = workers
        self.articles: dict[str, tuple[str, int]] = {}
        self.folder: Path | None = None
        self.writer: ParallelWriter | None = None

    def _open(self) -> ParallelWriter:
        if self.writer is None:
            self.folder = self.store.new_generation()
            if self.previous is not None:
                self.store.link_segments(self.store.current(), self.folder)
            else:
                whoosh_index.create_in(str(self.folder), build_schema())
            self.writer = ParallelWriter(self.folder, self.workers, WRITER_MEMORY_MB)
        return self.writer

    def put(self, article, report: ReindexReport) -> None:
        digest = article.content_hash()
        sections = len(article.sections)
        self.articles[article.id] = (digest, sections)
        known = self.previous.articles.get(article.id) if self.previous else None
        if known is not None and known[0] == digest:
            report.unchanged.add(sections)
            return
        writer = self._open()
        if known is not None:
            writer.delete_by_term("article_id", article.id)
            report.updated.add(sections)
        else:
            report.added.add(sections)
        for document in section_documents(article):
            writer.add_document(**document)

    def remove_missing(self, seen: set[str], report: ReindexReport) -> None:
        if self.previous is None:
            return
        for article_id, (_, sections) in self.previous.articles.items():
            if article_id not in seen:
                self._open().delete_by_term("article_id", article_id)
                report.removed.add(sections)

    def finish(self, corpus: list[str]) -> str | None:
        if self.writer is None:
            if self.previous is not None:
                return None  # nothing changed: the live generation stays as it is
            self._open()  # an empty corpus still gets an (empty) index to search
        assert self.writer is not None and self.folder is not None
        self.writer.commit()
        self.writer = None
        built_at = datetime.now(timezone.utc).isoformat(timespec="seconds")
        Manifest(self.articles, built_at, corpus).save(self.folder)
        return self.store.publish(self.folder).name

    def abandon(self) -> None:
        if self.writer is not None:
            try:
                self.writer.cancel()
            except Exception:  # the writer may be the thing that failed; the folder goes anyway
                pass
        if self.folder is not None:
            self.store.discard(self.folder)
