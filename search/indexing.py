"""`reindex`: bring an index in line with a corpus, touching only what changed.

A corpus file whose size, times and inode are those the live generation's manifest recorded is
skipped unread, its articles kept (as git and rsync trust a file's stat). Every other file's
articles are streamed from the readers and each one's content hash is compared with the manifest
(a JSON Lines line whose digest the manifest holds is not even parsed).
Only added and changed articles are analysed and written, removed ones are deleted, and the result
is published as a new generation in one atomic step. Reading never deletes: an article is removed
only when its file was read to its end without a fault and no longer holds it. A file (or folder)
read only in part, a damaged archive say, keeps every article the live generation had from it that
it did not yield this time, as it was (the manifest records each file's article ids). Any failure,
a stop asked for (`StopRequest`: Ctrl-C, SIGTERM) included, discards the half-built generation and
leaves the live one untouched.
"""

from __future__ import annotations

import functools
import os
import signal
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from whoosh import index as whoosh_index

from .analysis.sudachi import analyzer_version
from .codec.parallel import ParallelWriter, default_workers
from .codec.schema import build_schema, section_documents
from .codec.store import (
    INDEX_FORMAT,
    DamagedIndexError,
    FileSignature,
    IndexMissingError,
    IndexStore,
    Manifest,
)
from .sources.readers import (
    CorpusFile,
    IncompleteSource,
    KnownArticle,
    SuspectEnd,
    Unreadable,
    corpus_files,
    read_file,
)

# A file modified this close to the reindex's start may change again within the same timestamp
# tick, unseen by its signature ("racily clean" in git's words): such a file is read next time too.
RACY_SECONDS = 2
# The signature recorded for a file that must be read again next time (racily new, or read only in
# part): no file's stat matches it, but its article ids are remembered, to keep if it fails again.
UNTRUSTED_SIGNATURE: FileSignature = (-1, -1, -1, -1, -1)


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
    damage: str = ""  # what was damaged in the live generation, which this reindex rebuilt in full

    @property
    def changed(self) -> bool:
        return self.generation is not None


ProgressCallback = Callable[[int], None]


class ReindexStopped(BaseException):
    """The reindex stopped where it was asked to (`StopRequest`), its half-built generation
    discarded. A BaseException, like the KeyboardInterrupt it stands for: no handler of errors
    may take it for one."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


class StopRequest:
    """A signal turned into a request the reindex honours at its next safe point: between two
    articles, or while it waits on its workers (a second or less apart).

    A signal handler that raises instead lands wherever the main thread happens to be, inside
    multiprocessing's own bookkeeping too: a SIGTERM that struck while a queue's finalizer was
    half made left it to print a traceback at exit. Once the new generation's segments are being
    merged and committed nothing checks any more: the reindex finishes, whole, and `signum` tells
    the caller what arrived meanwhile.
    """

    def __init__(self) -> None:
        self.signum: int | None = None

    def ask(self, signum: int) -> None:
        """Ask for a stop (safe in a signal handler: it only records which signal came)."""
        if self.signum is None:
            self.signum = signum

    def check(self) -> None:
        """Raise ReindexStopped if a stop was asked for."""
        if self.signum is not None:
            raise ReindexStopped(self.signum)


def reindex(
    corpus: Iterable[Path | str],
    index_root: Path | str,
    full: bool = False,
    progress: ProgressCallback | None = None,
    workers: int | None = None,
    notify: Callable[[str], None] | None = None,
    writing: Callable[[], None] | None = None,
    stop: StopRequest | None = None,
) -> ReindexReport:
    """Update (or, with `full`, rebuild) the index at `index_root` from the corpus paths.

    `progress` is called with the number of articles read so far, once per article. `workers`
    is the number of processes that analyse a big change (default: one per core; 0: none).
    `notify` is told, in a sentence, what a person should know on the way (a dead reindex's lock
    taken over). `writing` is called once every article is read, when what is left is writing the
    new generation (its segments merged and committed: seconds, on a big corpus). `stop` is
    checked between articles and while waiting on the workers.
    """
    stop = stop or StopRequest()
    started = time.perf_counter()
    started_ns = time.time_ns()
    store = IndexStore(index_root)
    corpus_paths = [str(path) for path in corpus]
    report = ReindexReport()
    with store.writer_lock(notify):
        previous = None if full else _live_manifest(store, report)
        build = _GenerationBuilder(store, previous, default_workers() if workers is None else workers, stop)
        try:
            seen: set[str] = set()
            articles_read = 0
            incomplete: list[IncompleteSource] = []  # folders that could not be listed, missing roots
            files_read: set[str] = set()
            for file in corpus_files(corpus_paths):
                stop.check()
                if isinstance(file, IncompleteSource):
                    incomplete.append(file)
                    continue
                if isinstance(file, Unreadable):
                    report.skipped.append(file)
                    continue
                if _file_key(file) in files_read:  # a corpus given twice, or a folder and one inside it
                    report.skipped.append(Unreadable(str(file.path), "read already, under another --corpus path"))
                    continue  # recorded again, its articles (duplicates now) would be no file's
                files_read.add(_file_key(file))
                signature = _signature(file, started_ns)
                kept = build.kept_articles(file, signature, seen)
                if kept is not None:
                    seen.update(kept)
                    build.keep(file, signature, kept, report)
                    articles_read += len(kept)
                    if progress:
                        progress(articles_read)
                    continue
                put: list[str] = []
                faults: list[Unreadable] = []
                lost_a_duplicate = False
                suspect: SuspectEnd | None = None
                for item in read_file(file, build.known_digests):
                    stop.check()
                    if isinstance(item, SuspectEnd):
                        suspect = item
                    elif isinstance(item, Unreadable):
                        faults.append(item)
                    elif item.id in seen:
                        report.skipped.append(Unreadable(item.path, f"duplicate article id {item.id!r}"))
                        lost_a_duplicate = True
                    else:
                        seen.add(item.id)
                        put.append(item.id)
                        if isinstance(item, KnownArticle):
                            build.keep_article(item.id, report)
                        else:
                            build.put(item, report)
                    articles_read += 1
                    if progress:
                        progress(articles_read)
                if suspect is not None and not faults and build.would_lose(file, seen):
                    faults.append(suspect)  # maybe cut short, and what it lacks would be removed
                if faults:  # read only in part: what it no longer yields may be what could not be read
                    kept = build.keep_unread(_file_key(file), seen, report)
                    put.extend(kept or [])
                    kept_count = None if kept is None else len(kept)
                    report.skipped.extend(_with_what_was_kept(faults, str(file.path), kept_count))
                    signature = UNTRUSTED_SIGNATURE
                if lost_a_duplicate:  # read again next time: the article it lost may be its own by then
                    signature = UNTRUSTED_SIGNATURE
                build.record_file(file, signature, put)
            for source in incomplete:
                kept = build.keep_unread(source.source, seen, report, under=True)
                kept_count = None if kept is None else len(kept)
                report.skipped.extend(_with_what_was_kept([source], source.path, kept_count))
            build.remove_missing(seen, report)
            # A source read in part says so first: the summary lists only the first skipped items.
            report.skipped.sort(key=lambda item: not isinstance(item, IncompleteSource))
            if writing and build.writer is not None:
                writing()
            report.generation = build.finish(corpus_paths)
        except BaseException:
            build.abandon()
            raise
    report.elapsed_seconds = time.perf_counter() - started
    return report


def _with_what_was_kept(faults: list[Unreadable], path: str, kept: int | None) -> list[Unreadable]:
    """The faults of a source read in part, each source-level one saying what became of the rest
    (`kept`: how many articles were kept; None: those of the live index that no file claims)."""
    if kept is None:
        outcome = "the articles of the last index that no file claims are kept as they were"
    elif kept:
        outcome = (
            f"its other {kept:,} articles are kept as they were" if kept > 1 else "its other article is kept as it was"
        )
    else:
        outcome = "what could not be read is not indexed"
    noted = [
        IncompleteSource(fault.path, f"{fault.reason}; {outcome}", source=fault.source)
        if isinstance(fault, IncompleteSource)
        else fault
        for fault in faults
    ]
    if kept and not any(isinstance(fault, IncompleteSource) for fault in faults):
        summary = f"not read in full ({len(faults):,} bad parts, listed below); {outcome}"
        noted.insert(0, IncompleteSource(path, summary, source=path))
    return noted


def _signature(file: CorpusFile, started_ns: int) -> FileSignature | None:
    """The file's stat identity, or None when it cannot be trusted (racily new, or unstattable)."""
    try:
        stat = file.path.stat()
    except OSError:
        return None  # reading it will say what is wrong
    if max(stat.st_mtime_ns, stat.st_ctime_ns) > started_ns - RACY_SECONDS * 1_000_000_000:
        return None
    return (stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns, stat.st_ino, stat.st_dev)


def _file_key(file: CorpusFile) -> str:
    return os.path.abspath(file.path)


def _live_manifest(store: IndexStore, report: ReindexReport) -> Manifest | None:
    """The live generation's manifest, to build the next one on; None to rebuild in full.

    Its files are verified first (every byte, against their checksums): segments the next
    generation links must be those that were written. A damaged generation is rebuilt in full,
    and the report says why."""
    try:
        folder = store.current()
        manifest = Manifest.load(folder)  # checked against its own digest as it is read
        store.verify(folder, checksums=manifest.checksums)
    except IndexMissingError:
        return None  # no index yet
    except DamagedIndexError as damage:
        report.damage = damage.problem
        return None
    if manifest.format != INDEX_FORMAT or manifest.analyzer != analyzer_version() or not manifest.checksums:
        return None  # an older layout, terms from another dictionary, or no checksums yet: rebuild too
    return manifest


class _GenerationBuilder:
    """Writes the next generation lazily: nothing is created until the first real change."""

    def __init__(self, store: IndexStore, previous: Manifest | None, workers: int, stop: StopRequest):
        self.store = store
        self.previous = previous
        self.workers = workers
        self.stop = stop
        self.articles: dict[str, tuple[str, int]] = {}
        self.files: dict[str, tuple[FileSignature, list[str]]] = {}
        self.folder: Path | None = None
        self.writer: ParallelWriter | None = None
        self.unrecorded: list[str] = []  # sources read in part that the manifest has no record of

    def _open(self) -> ParallelWriter:
        if self.writer is None:
            self.folder = self.store.new_generation()
            if self.previous is not None:
                self.store.link_segments(self.store.current(), self.folder)
            else:
                whoosh_index.create_in(str(self.folder), build_schema())
            self.writer = ParallelWriter(self.folder, self.workers, self.stop.check)
        return self.writer

    def kept_articles(self, file: CorpusFile, signature: FileSignature | None, seen: set[str]) -> list[str] | None:
        """The article ids of a file the live generation indexed exactly as it is now, else None."""
        if signature is None or self.previous is None:
            return None
        known = self.previous.files.get(_file_key(file))
        if known is None or known[0] != signature:
            return None
        ids = known[1]
        if not ids:  # nothing to carry over: reading it again costs little, and an index written
            return None  # before `files_read` recorded a file given twice with no articles
        if any(i in seen or i not in self.previous.articles for i in ids):
            return None  # an earlier file now claims one of its ids: read it to report the duplicate
        return ids

    @functools.cached_property
    def known_digests(self) -> dict[str, str]:
        """The live generation's articles by content digest, for readers to skip unchanged lines."""
        if self.previous is None:
            return {}
        return {digest: article_id for article_id, (digest, _) in self.previous.articles.items()}

    def keep(self, file: CorpusFile, signature: FileSignature | None, ids: list[str], report: ReindexReport) -> None:
        for article_id in ids:
            self.keep_article(article_id, report)
        self.record_file(file, signature, ids)

    def keep_article(self, article_id: str, report: ReindexReport) -> None:
        """Carry an article the live generation indexed as it is over to the next one."""
        assert self.previous is not None  # only what a live generation holds can be kept
        self.articles[article_id] = self.previous.articles[article_id]
        report.unchanged.add(self.articles[article_id][1])

    def record_file(self, file: CorpusFile, signature: FileSignature | None, ids: list[str]) -> None:
        """Remember the file's article ids; a signature of None (racily new) is never matched."""
        self.files[_file_key(file)] = (signature or UNTRUSTED_SIGNATURE, ids)

    def would_lose(self, file: CorpusFile, seen: set[str]) -> bool:
        """Whether the live generation has an article from `file` that nothing read so far yields."""
        if self.previous is None:
            return False
        known = self.previous.files.get(_file_key(file))
        return known is not None and any(article_id not in seen for article_id in known[1])

    def keep_unread(self, source: str, seen: set[str], report: ReindexReport, under: bool = False) -> list[str] | None:
        """Keep the articles the live generation had from `source` (with `under`, from any file in
        that folder) that were not read this time: its reading failed part of the way.

        When the manifest knows no file there (an index written before it recorded every file), no
        article of the live generation that no file claims is removed by this reindex (None).
        """
        if self.previous is None:
            return []
        source = os.path.abspath(source)
        prefix = source.rstrip(os.sep) + os.sep
        keys = [key for key in self.previous.files if key == source or (under and key.startswith(prefix))]
        if not keys and self.previous.articles:
            self.unrecorded.append(source)
            return None
        kept: list[str] = []
        for key in keys:
            ids = [i for i in self.previous.files[key][1] if i not in seen and i in self.previous.articles]
            for article_id in ids:
                seen.add(article_id)
                self.keep_article(article_id, report)
            kept.extend(ids)
            if key not in self.files:  # a file of a folder that could not be listed
                self.files[key] = (UNTRUSTED_SIGNATURE, ids)
        return kept

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
        """Delete the live generation's articles that no file read in full holds any more."""
        if self.previous is None:
            return
        if self.unrecorded:  # they may have held any article no file record claims: keep those
            claimed = {i for _, ids in self.previous.files.values() for i in ids}
            unclaimed = sorted(self.previous.articles.keys() - claimed - seen)
            for article_id in unclaimed:
                seen.add(article_id)
                self.keep_article(article_id, report)
            for source in self.unrecorded:  # and they are theirs from now on, should they fail again
                ids = self.files.get(source, (UNTRUSTED_SIGNATURE, []))[1]
                self.files[source] = (UNTRUSTED_SIGNATURE, [*ids, *unclaimed])
        for article_id, (_, sections) in self.previous.articles.items():
            if article_id not in seen:
                self._open().delete_by_term("article_id", article_id)
                report.removed.add(sections)

    def finish(self, corpus: list[str]) -> str | None:
        if self.writer is None:
            if self.previous is not None:
                if self.files != self.previous.files:  # same articles; files touched or newly signed
                    self.previous.files = self.files
                    self.previous.save(self.store.current())
                return None  # nothing changed: the live generation stays as it is
            self._open()  # an empty corpus still gets an (empty) index to search
        assert self.writer is not None and self.folder is not None
        self.writer.commit()
        self.writer = None
        built_at = datetime.now(UTC).isoformat(timespec="seconds")
        manifest = Manifest(self.articles, built_at, corpus, self.files, analyzer=analyzer_version())
        return self.store.publish(self.folder, manifest, self.previous).name

    def abandon(self) -> None:
        if self.writer is not None:
            try:
                self.writer.cancel()
            except Exception:  # the writer may be the thing that failed; the folder goes anyway
                pass
        if self.folder is not None:
            self.store.discard(self.folder)
