"""A Whoosh writer that analyses and writes large batches in worker processes, one segment each.

Analysis (Sudachi) and Whoosh's posting code are pure CPU work under one GIL, so a big reindex
uses one core unless it runs in several processes. Whoosh's own `MpWriter` does this, but its
workers share one temporary folder (the first to finish deletes the others' spilled runs), a
crashed worker's documents silently go missing, and cancelling leaves the workers running. This
writer keeps Whoosh's segment format and commit protocol and fixes those three things:

- the parent `SegmentWriter` keeps deletions, small changes and the merge policy;
- once a change is big enough to pay for process start-up, documents go to worker processes in
  batches, and each worker writes its own segment with a private temporary folder;
- a worker that fails makes the commit fail (the generation is then abandoned, nothing is lost),
  and `cancel()` stops the workers;
- a worker dies with its parent (killed outright or not), so none is left running, holding
  memory, after a reindex is gone; and none holds the writer lock (`store.writer_lock`).
"""

from __future__ import annotations

import ctypes
import gc
import multiprocessing
import os
import queue
import signal
import sys
import traceback
from collections.abc import Callable
from multiprocessing.process import BaseProcess
from pathlib import Path

from whoosh import index as whoosh_index

from .segments import ArraySegmentWriter, merge_small_live

# Below this many new sections the parent writes them itself. Forking a worker and opening the
# Sudachi dictionary (memory-mapped) take some 50 ms, about what 50 sections take to analyse, so
# a hundred are already worth sending: the workers analyse while the parent is still reading and
# comparing the rest of the corpus. Small batches keep every worker busy while a small change
# trickles in (a 1 % change of the 1x perf corpus: 0.78-0.86 s → 0.53-0.70 s with 100 and 50, not
# 200 and 200), and cost nothing in a big one.
PARALLEL_MIN_DOCUMENTS = 100
BATCH_DOCUMENTS = 50
QUEUED_BATCHES = 8  # per worker: the parent may read ahead that far
RESULT_POLL_SECONDS = 1.0
PARENT_POLL_SECONDS = 0.5  # how soon a worker waiting for a batch notices its parent is gone
STOP_SECONDS = 5.0  # a worker asked to stop gets this long before it is killed
# Sections this process analyses between two checks for a stop (Ctrl-C, SIGTERM): one article can
# have thousands (a section is at most 1,200 characters, a few milliseconds each).
STOP_CHECK_DOCUMENTS = 25
WORKER_SIGNALS = {signal.SIGINT, signal.SIGTERM}  # blocked until a new worker has its own handlers


def default_workers() -> int:
    """Worker processes for a big reindex: one per usable core, none on a single core."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return cores if cores > 1 else 0


class WorkerFailed(RuntimeError):
    """A worker process could not index its documents; the whole reindex is abandoned."""


class ParallelWriter:
    """The writer of one generation folder: `add_document`, `delete_by_term`, `commit`, `cancel`."""

    def __init__(self, folder: Path, workers: int, check_stop: Callable[[], None] = lambda: None):
        """`check_stop` raises when the caller wants the writing stopped; it is called while we
        wait on the workers, and last before the segments are merged (from there on we finish)."""
        self.folder = folder
        self.workers = workers
        self.check_stop = check_stop
        self.writer = ArraySegmentWriter(whoosh_index.open_dir(str(folder)))
        self.pending: list[dict] = []
        self.processes: list[BaseProcess] = []
        self.context = multiprocessing.get_context("fork")
        self.jobs: multiprocessing.Queue | None = None  # made with the workers: small changes need none
        self.results: multiprocessing.Queue | None = None

    def delete_by_term(self, fieldname: str, text: str) -> None:
        self.writer.delete_by_term(fieldname, text)

    def add_document(self, **document) -> None:
        self.pending.append(document)
        if len(self.pending) % STOP_CHECK_DOCUMENTS == 0:
            self.check_stop()  # (one article can be thousands of sections)
        if self.processes:
            if len(self.pending) >= BATCH_DOCUMENTS:
                self._send_pending()
        elif not self.workers:
            if len(self.pending) >= BATCH_DOCUMENTS:
                self._write_pending()
        elif len(self.pending) >= PARALLEL_MIN_DOCUMENTS:
            self._start_workers()
            self._send_pending(spread=True)

    def commit(self) -> None:
        """Publish every added document in this folder's index; raise if any of them failed."""
        segments = []
        if self.processes:
            self._send_pending(spread=True)
            for _ in self.processes:
                self._put(None)  # with a timeout: a killed worker may hold the queue's read lock
            segments = self._collect_segments()
        else:
            self._write_pending()
        self.check_stop()
        writer = self.writer
        # SegmentWriter.commit, with the workers' segments added to the table of contents.
        final = writer._merge_segments(merge_small_live, None, None)
        if writer._added:
            final.append(writer._finalize_segment())
        else:
            writer._close_segment()
        writer._commit_toc(final + segments)
        writer._finish()

    def cancel(self) -> None:
        for process in self.processes:
            process.terminate()
        for process in self.processes:
            process.join(STOP_SECONDS)
            if process.exitcode is None:
                process.kill()
                process.join()
        self.processes = []
        if not self.writer.is_closed:
            self.writer.cancel()

    def _start_workers(self) -> None:
        self.jobs = self.context.Queue(maxsize=QUEUED_BATCHES * self.workers)
        # Our exit never waits to hand batches over: a worker reads them all (and its `None`)
        # before it reports, which we wait for; a reindex that stops has no use for the rest.
        self.jobs.cancel_join_thread()
        self.results = self.context.Queue()
        # A worker inherits our signal handlers (the CLI's only record a stop, which a worker
        # never checks), and `cancel()` may signal it before it has set its own: it starts with
        # those signals blocked, sets its handlers, then takes them. We get any that came
        # meanwhile when we unblock them.
        blocked = signal.pthread_sigmask(signal.SIG_BLOCK, WORKER_SIGNALS)
        try:
            for number in range(self.workers):
                process = self.context.Process(
                    target=_work,
                    args=(str(self.folder), number, self.jobs, self.results, os.getpid(), blocked),
                    name=f"midashi-index-worker-{number}",
                    daemon=True,
                )
                process.start()
                self.processes.append(process)
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, blocked)

    def _write_pending(self) -> None:
        """Write the pending documents in this process (no workers, or too few documents for them),
        a few at a time between checks for a stop: a big article's sections take seconds."""
        for start in range(0, len(self.pending), STOP_CHECK_DOCUMENTS):
            self.check_stop()
            self.writer.add_documents(self.pending[start : start + STOP_CHECK_DOCUMENTS])
        self.pending = []

    def _send_pending(self, spread: bool = False) -> None:
        """Queue the pending documents in batches; `spread` them over every worker when they
        start (so all of them start at once) and at the end (so they finish together): a small
        change is one or two batches, which one worker would otherwise analyse alone."""
        size = BATCH_DOCUMENTS
        if spread:
            size = max(1, min(size, -(-len(self.pending) // len(self.processes))))
        for start in range(0, len(self.pending), size):
            self._put(self.pending[start : start + size])
        self.pending = []

    def _put(self, batch: list[dict] | None) -> None:
        """Queue a batch, noticing a dead worker instead of waiting forever for room."""
        assert self.jobs is not None  # the workers (and their queues) have started
        while True:
            try:
                self.jobs.put(batch, timeout=RESULT_POLL_SECONDS)
                return
            except queue.Full:
                self.check_stop()
                if any(process.exitcode is not None for process in self.processes):
                    self._raise_failure()  # a worker only stops early when it failed

    def _raise_failure(self) -> None:
        """A worker's own error when it sent one; else, when one was killed or crashed, its exit
        code (another worker's finished segment may be waiting in the results: under load a
        killed worker read as one that "stopped early")."""
        assert self.results is not None  # the workers (and their queues) have started
        try:
            status, payload = self.results.get(timeout=RESULT_POLL_SECONDS)
        except queue.Empty:
            status, payload = "ok", None
        if status != "ok":
            raise WorkerFailed(payload)
        if any(process.exitcode not in (None, 0) for process in self.processes) or payload is None:
            codes = ", ".join(f"{p.name} exit code {p.exitcode}" for p in self.processes)
            raise WorkerFailed(f"an index worker died ({codes})")
        raise WorkerFailed("an index worker stopped early")

    def _collect_segments(self) -> list:
        assert self.results is not None  # the workers (and their queues) have started
        segments: list = []  # Whoosh's Segments, None from a worker that wrote none
        while len(segments) < len(self.processes):
            try:
                status, payload = self.results.get(timeout=RESULT_POLL_SECONDS)
            except queue.Empty:
                self.check_stop()
                if any(process.exitcode not in (None, 0) for process in self.processes):
                    self._raise_failure()  # killed outright: it could not report
                continue
            if status != "ok":
                raise WorkerFailed(payload)
            segments.append(payload)
        for process in self.processes:
            process.join()
        self.processes = []
        return [segment for segment in segments if segment is not None]


# A worker allocates a few thousand short-lived tuples per section (terms, offsets, postings) and
# keeps few: the collector's default (a pass every 700 allocations) spent some 4 % of its time.
WORKER_GC_THRESHOLD = 50_000


def _work(folder: str, number: int, jobs, results, parent: int, signal_mask: set) -> None:
    """A worker: index every batch it takes off `jobs` into one new segment, then report it."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle (it cancels us)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # `cancel()` stops us; the parent's handler is not ours
    signal.pthread_sigmask(signal.SIG_SETMASK, signal_mask)
    _die_with_parent(parent)
    gc.set_threshold(WORKER_GC_THRESHOLD, *gc.get_threshold()[1:])
    try:
        ix = whoosh_index.open_dir(folder)
        writer = ArraySegmentWriter(ix, temporary=f"{ix.indexname}.worker-{number}.tmp", _lk=False)
        while (batch := _next_batch(jobs, parent)) is not None:
            writer.add_documents(batch)
        if writer._added:
            segment = writer._finalize_segment()
        else:  # every batch went to the other workers
            segment = None
            writer._close_segment()
        writer._finish()
        results.put(("ok", segment))
    except OSError as error:  # the disk, not a bug: one line says which
        results.put(
            ("error", f"index worker {number} could not write {error.filename or folder} ({error.strerror or error})")
        )
    except BaseException:
        results.put(("error", f"index worker {number} failed:\n{traceback.format_exc()}"))


PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>


def _die_with_parent(parent: int) -> None:
    """Have the kernel kill this worker when its parent dies (Linux), and stop now if it already
    has: it may have died between our fork and the request, which then never fires."""
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None).prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)  # libc's, in our process
    if os.getppid() != parent:
        os._exit(1)


def _next_batch(jobs, parent: int) -> list[dict] | None:
    """The next batch, or None at the end; exits if the parent died meanwhile (where the kernel
    cannot tell us, and as a second line where it can): nobody would collect our segment."""
    while True:
        try:
            return jobs.get(timeout=PARENT_POLL_SECONDS)
        except queue.Empty:
            if os.getppid() != parent:
                os._exit(1)
