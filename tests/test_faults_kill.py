"""Fault suite (issue 26): a reindex killed outright, or stopped by SIGTERM, at several phases.

Each test starts `midashi reindex --workers 2` as a user would, waits (polling /proc and the index
folder, with bounded timeouts) until the reindex reaches a phase, and kills the parent or a
worker there. Afterwards no process of that reindex may remain, the previous generation must
still be live with the same results, and the next reindex must succeed (taking over the dead
one's lock with a message) and see the whole corpus. Runs on the fixture corpus multiplied into
a few hundred articles the test writes, so it needs nothing from ../shared.
"""

from __future__ import annotations

import multiprocessing
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from search import cli
from search.codec.store import BUILDING_SUFFIX, LOCK_FILE, IndexBusyError, IndexStore
from search.indexing import ReindexStopped, StopRequest, reindex
from search.searching import SearchIndex
from tests.conftest import PROJECT

FIXTURE_NEWS = PROJECT / "tests" / "fixtures" / "news"
FIXTURE_ARTICLES = len(list(FIXTURE_NEWS.rglob("*.txt")))  # 10
COPIES = 50  # of each fixture article: 500 new articles, a second or so of analysis
POLL_SECONDS = 0.002
PHASE_TIMEOUT = 60.0  # generous bounds: a busy CI machine is slow, a quiet one never waits this long
GONE_TIMEOUT = 5.0  # the workers must be gone this soon after their parent
FIXTURE_TERM = "エヌビディア"  # in one fixture article, and in every copy of it
COPY_TERM = "複製"  # only in the copies


def _write_copies(corpus: Path, copies: int) -> None:
    """Copies of the fixture articles, each a different article (URL, title and a line of its own)."""
    for source in sorted(FIXTURE_NEWS.rglob("*.txt")):
        lines = source.read_text(encoding="utf-8").splitlines()
        folder = corpus / source.parent.name
        folder.mkdir(parents=True, exist_ok=True)
        for copy in range(copies):
            # Its own line first: at the end it would follow tech-0004's author profile, and go with it.
            text = [
                f"{lines[0]}-{copy}",
                lines[1],
                f"{lines[2]} 第{copy}報",
                f"この記事は試験のために複製された{copy}番目の版である。",
                "",
                *lines[3:],
            ]
            (folder / f"{source.stem}-copy{copy:03d}.txt").write_text("\n".join(text) + "\n", encoding="utf-8")


def _hits(root: Path, query: str) -> list[str]:
    return [hit.section_id for hit in SearchIndex(root).search(query, limit=1000).hits]


@dataclass
class Index:
    """An index of the fixture corpus (the live generation), and the corpus grown by many copies."""

    root: Path
    corpus: Path
    generation: str
    before: dict[str, list[str]] = field(default_factory=dict)

    def assert_unchanged(self) -> None:
        assert IndexStore(self.root).current_name() == self.generation
        assert {query: _hits(self.root, query) for query in self.before} == self.before

    def assert_complete(self) -> None:
        """Every article of the grown corpus is searchable."""
        assert len(_hits(self.root, COPY_TERM)) == FIXTURE_ARTICLES * COPIES
        assert len(_hits(self.root, FIXTURE_TERM)) == len(self.before[FIXTURE_TERM]) * (COPIES + 1)


@pytest.fixture
def index(tmp_path) -> Index:
    corpus = tmp_path / "corpus"
    shutil.copytree(FIXTURE_NEWS, corpus, ignore=shutil.ignore_patterns("*.md"))
    root = tmp_path / "index"
    generation = reindex([corpus], root, workers=0).generation
    live = Index(root, corpus, generation)
    live.before = {query: _hits(root, query) for query in (FIXTURE_TERM, "半導体", "サッカー", "為替介入")}
    assert all(live.before.values())  # each query finds something to compare
    _write_copies(corpus, COPIES)
    return live


# --- processes -------------------------------------------------------------------------------


def _stat(pid: int) -> list[str] | None:
    """/proc/PID/stat's fields after the command name (state first), or None if it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text[text.rindex(")") + 2 :].split()


def _children(pid: int) -> set[int]:
    found: set[int] = set()
    for task in Path(f"/proc/{pid}/task").glob("*/children"):
        try:
            found.update(int(child) for child in task.read_text().split())
        except OSError:
            pass
    return found


def _cpu_ticks(pid: int) -> int:
    fields = _stat(pid)
    return int(fields[11]) + int(fields[12]) if fields else 0  # utime + stime


@dataclass(frozen=True)
class Process:
    pid: int
    started: str  # start time in ticks since boot: a pid reused later is another process

    def alive(self) -> bool:
        fields = _stat(self.pid)
        return fields is not None and fields[19] == self.started and fields[0] != "Z"


def _process(pid: int) -> Process | None:
    fields = _stat(pid)
    return Process(pid, fields[19]) if fields else None


@dataclass
class Run:
    """One `midashi reindex` run: its parent, every worker seen, its exit code and messages."""

    parent: subprocess.Popen
    root: Path
    workers: dict[int, Process] = field(default_factory=dict)
    struck: bool = False
    output: str = ""
    errors: str = ""

    def look(self) -> set[int]:
        """The workers now running (and remember every one seen)."""
        current = _children(self.parent.pid)
        for pid in current - self.workers.keys():
            if (process := _process(pid)) is not None:
                self.workers[pid] = process
        return current


def _midashi_command(*args: str) -> list[str]:
    return [sys.executable, "-c", "from search.cli import main; main()", *args]


def _environment() -> dict[str, str]:
    environment = dict(os.environ)
    environment["PYTHONPATH"] = os.pathsep.join(filter(None, [str(PROJECT), environment.get("PYTHONPATH")]))
    return environment


def run_reindex(live: Index, strike_when: Callable[[Run], Callable[[], None] | None], tmp: Path) -> Run:
    """Start a reindex and poll it; when `strike_when` returns an action, do it at once, then wait
    for the reindex to end and for all its processes to be gone."""
    out, err = tmp / "reindex.out", tmp / "reindex.err"
    with open(out, "w") as stdout, open(err, "w") as stderr:
        parent = subprocess.Popen(
            _midashi_command("reindex", "--corpus", str(live.corpus), "--index", str(live.root), "--workers", "2"),
            stdout=stdout,
            stderr=stderr,
            env=_environment(),
            start_new_session=True,
        )
    run = Run(parent, live.root)
    try:
        deadline = time.monotonic() + PHASE_TIMEOUT
        while parent.poll() is None and time.monotonic() < deadline:
            run.look()
            action = strike_when(run)
            if action is not None:
                action()
                run.struck = True
                break
            time.sleep(POLL_SECONDS)
        parent.wait(timeout=PHASE_TIMEOUT)
        deadline = time.monotonic() + GONE_TIMEOUT
        while any(worker.alive() for worker in run.workers.values()) and time.monotonic() < deadline:
            time.sleep(0.02)
        left = [worker.pid for worker in run.workers.values() if worker.alive()]
        assert not left, f"workers {left} outlived their reindex by {GONE_TIMEOUT} s"
    finally:
        if parent.poll() is None:
            parent.kill()
            parent.wait()
        for worker in run.workers.values():
            if worker.alive():
                os.kill(worker.pid, signal.SIGKILL)
    run.output, run.errors = out.read_text(), err.read_text()
    return run


def reindex_again(live: Index) -> subprocess.CompletedProcess:
    """The next reindex, as an operator runs it after the failure: it must just work."""
    result = subprocess.run(
        _midashi_command("reindex", "--corpus", str(live.corpus), "--index", str(live.root), "--workers", "2"),
        capture_output=True,
        text=True,
        env=_environment(),
        timeout=PHASE_TIMEOUT * 2,
    )
    assert result.returncode == 0, result.stderr
    assert "another reindex" not in result.stderr
    assert f"added     {FIXTURE_ARTICLES * COPIES:>8} articles" in result.stdout
    assert not list(live.root.glob("*" + BUILDING_SUFFIX))  # the dead run's half-built generation is gone
    live.assert_complete()
    return result


def _analysing(run: Run) -> bool:
    """Workers are running and the next generation is being built: the parent reads and sends."""
    return len(run.workers) >= 2 and bool(list(run.root.glob("gen-*" + BUILDING_SUFFIX)))


def _signal_parent(run: Run, signum: int) -> Callable[[], None]:
    return lambda: os.kill(run.parent.pid, signum)


@pytest.mark.slow
def test_kill_9_of_the_parent_while_analysing(index, tmp_path):
    run = run_reindex(index, lambda run: _signal_parent(run, signal.SIGKILL) if _analysing(run) else None, tmp_path)
    assert run.struck and run.parent.returncode == -signal.SIGKILL
    assert len(run.workers) == 2  # ... and run_reindex saw both die with it
    index.assert_unchanged()
    assert (index.root / LOCK_FILE).read_text() == f"pid {run.parent.pid}"  # it never got to clear it
    again = reindex_again(index)
    assert f"midashi: the previous reindex (pid {run.parent.pid}) died; taking over its lock" in again.stderr


@pytest.mark.slow
def test_kill_9_of_a_worker_mid_batch(index, tmp_path):
    def busy_worker(run: Run) -> Callable[[], None] | None:
        for pid in run.look():
            if _cpu_ticks(pid) >= 5:  # some 50 ms into its batches: past start-up, analysing
                return lambda: os.kill(pid, signal.SIGKILL)
        return None

    run = run_reindex(index, busy_worker, tmp_path)
    assert run.struck and run.parent.returncode == 1, run.errors
    [message] = run.errors.splitlines()
    assert message.startswith("midashi: reindex failed, the previous index is still in use. an index worker died")
    assert "exit code -9" in message
    index.assert_unchanged()
    assert not list(index.root.glob("*" + BUILDING_SUFFIX))  # the parent discarded its own
    assert (index.root / LOCK_FILE).read_text() == ""  # and let go of the lock
    assert "taking over" not in reindex_again(index).stderr


@pytest.mark.slow
def test_kill_9_of_the_parent_while_committing(index, tmp_path):
    """The workers have handed their segments over and exited; the parent writes the table of
    contents, the manifest and CURRENT. Killed there, either generation may be live, whole."""
    backup = tmp_path / "index-before"
    shutil.copytree(index.root, backup)
    for _ in range(3):  # the phase lasts tens of milliseconds on a quiet machine: retry if missed
        run = run_reindex(
            index, lambda run: _signal_parent(run, signal.SIGKILL) if run.workers and not run.look() else None, tmp_path
        )
        if run.parent.returncode == -signal.SIGKILL:
            break
        assert run.parent.returncode == 0, run.errors  # it finished first: put the old index back
        shutil.rmtree(index.root)
        shutil.copytree(backup, index.root)
    else:
        pytest.fail("the commit phase was never caught in three tries")
    assert run.struck and len(run.workers) == 2
    if IndexStore(index.root).current_name() == index.generation:
        index.assert_unchanged()
    else:  # CURRENT was replaced before the kill: the new generation is complete
        index.assert_complete()
    reindex_again(index)


@pytest.mark.slow
def test_sigterm_to_the_parent_stops_the_reindex_cleanly(index, tmp_path):
    run = run_reindex(index, lambda run: _signal_parent(run, signal.SIGTERM) if _analysing(run) else None, tmp_path)
    assert run.struck and run.parent.returncode == 128 + signal.SIGTERM
    assert run.errors.splitlines() == ["midashi: reindex stopped (SIGTERM); the previous index is still in use."]
    index.assert_unchanged()
    assert not list(index.root.glob("*" + BUILDING_SUFFIX))
    assert (index.root / LOCK_FILE).read_text() == ""
    assert "taking over" not in reindex_again(index).stderr


@pytest.mark.slow
def test_ctrl_c_to_the_parent_stops_the_reindex_cleanly(index, tmp_path):
    run = run_reindex(index, lambda run: _signal_parent(run, signal.SIGINT) if _analysing(run) else None, tmp_path)
    assert run.struck and run.parent.returncode == 130
    assert run.errors.splitlines() == ["", "midashi: reindex interrupted; the previous index is still in use."]
    index.assert_unchanged()
    assert not list(index.root.glob("*" + BUILDING_SUFFIX))
    assert (index.root / LOCK_FILE).read_text() == ""
    assert "taking over" not in reindex_again(index).stderr


def test_a_stop_signal_is_recorded_not_raised_where_it_lands():
    """Raised from the handler, SIGTERM once struck inside multiprocessing's bookkeeping (a queue's
    finalizer half made), which then printed a traceback at exit: the handler only records it,
    for the reindex to act on between articles. A second signal acts at once, up to the exit."""
    stop = StopRequest()
    before = signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)
    try:
        with cli._stopping_on_signals(stop, "the previous index is still in use"):
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(0.01)  # Python runs the handler at the next bytecode: no exception here
            assert stop.signum == signal.SIGTERM
            assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL
            at_once = signal.getsignal(signal.SIGINT)
            assert callable(at_once) and at_once.__name__ == "at_once"
            with pytest.raises(ReindexStopped):
                stop.check()
        assert signal.getsignal(signal.SIGINT) is at_once  # the unwinding is no time to raise
    finally:
        signal.signal(signal.SIGTERM, before[0])
        signal.signal(signal.SIGINT, before[1])
    with cli._stopping_on_signals(StopRequest(), "no index was written"):
        pass
    assert (signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)) == before  # no stop: put back
    # Started ignoring Ctrl-C (a script's background job): it stays ignored, SIGTERM still stops.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        with cli._stopping_on_signals(StopRequest(), "no index was written"):
            assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
            assert signal.getsignal(signal.SIGTERM) not in (before[0], signal.SIG_IGN)
    finally:
        signal.signal(signal.SIGINT, before[1])


# A reindex stopped at its 300th article whose cleanup a KeyboardInterrupt cuts short (where a
# second Ctrl-C landed, as py-spy showed): its workers are never stopped, batches are still queued.
_CLEANUP_CUT_SHORT = """
import signal, sys
from search import indexing

def cut_short(self):
    raise KeyboardInterrupt

indexing._GenerationBuilder.abandon = cut_short
stop = indexing.StopRequest()
try:
    indexing.reindex([sys.argv[1]], sys.argv[2], workers=2, stop=stop,
                     progress=lambda read: stop.ask(signal.SIGINT) if read == 300 else None)
except KeyboardInterrupt:
    print("cut short", flush=True)
sys.exit(130)
"""


@pytest.mark.slow
def test_a_reindex_whose_cleanup_was_cut_short_still_exits(index):
    """The exit waited forever for the jobs queue's feeder, blocked on a pipe no worker read any
    more (multiprocessing joins it after it has ended the workers): it never waits now."""
    result = subprocess.run(
        [sys.executable, "-c", _CLEANUP_CUT_SHORT, str(index.corpus), str(index.root)],
        capture_output=True,
        text=True,
        env=_environment(),
        timeout=PHASE_TIMEOUT,
    )
    assert (result.returncode, result.stdout) == (130, "cut short\n"), result.stderr


@pytest.mark.slow
def test_a_second_ctrl_c_ends_the_reindex_at_once(index, tmp_path):
    """Two Ctrl-C back to back: the second one, raised where the first one's cleanup was, skipped
    stopping the workers, and the exit then waited forever on their queue (7 runs in 20)."""

    def twice(run: Run) -> None:
        os.kill(run.parent.pid, signal.SIGINT)
        os.kill(run.parent.pid, signal.SIGINT)

    for _ in range(3):
        run = run_reindex(index, lambda run: (lambda: twice(run)) if _analysing(run) else None, tmp_path)
        assert run.struck and run.parent.returncode == 130, run.errors  # (run_reindex waits PHASE_TIMEOUT)
        assert "Traceback" not in run.errors and "aborted" not in run.errors
        assert run.errors.splitlines()[-1] in (
            "midashi: reindex stopped at once; the previous index is still in use.",
            "midashi: reindex interrupted; the previous index is still in use.",
        )
        index.assert_unchanged()
    reindex_again(index)


# --- the lock itself -------------------------------------------------------------------------


def _wait_for(started, release) -> None:
    started.set()
    release.wait(30)


def test_a_forked_child_neither_holds_nor_releases_the_writer_lock(tmp_path):
    store = IndexStore(tmp_path / "index")
    context = multiprocessing.get_context("fork")
    started, release = context.Event(), context.Event()
    with store.writer_lock():
        child = context.Process(target=_wait_for, args=(started, release))
        child.start()
        try:
            assert started.wait(30)
            lock = os.stat(tmp_path / "index" / LOCK_FILE)
            opened = [os.stat(entry) for entry in Path(f"/proc/{child.pid}/fd").iterdir() if entry.exists()]
            assert all((st.st_ino, st.st_dev) != (lock.st_ino, lock.st_dev) for st in opened)
            # the child closed its copy: the lock is still ours
            with pytest.raises(IndexBusyError, match=f"pid {os.getpid()}"), store.writer_lock():
                pass
        except BaseException:
            release.set()
            child.join()
            raise
    try:
        with store.writer_lock():  # released while the child still runs: it held no copy
            assert child.is_alive()
    finally:
        release.set()
        child.join(30)


def test_a_lock_kept_by_processes_of_a_dead_reindex_names_them(tmp_path):
    """What an index locked by an older version's orphaned workers says (they kept its lock)."""
    root = tmp_path / "index"
    root.mkdir()
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (root / LOCK_FILE).write_text(f"pid {dead.pid}")
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import fcntl, sys; f = open(sys.argv[1]); fcntl.flock(f, fcntl.LOCK_EX); "
            "print('held', flush=True); sys.stdin.read()",
            str(root / LOCK_FILE),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline() == "held\n"
        with pytest.raises(IndexBusyError) as refused:
            reindex([FIXTURE_NEWS], root, workers=0)
        assert str(refused.value) == (
            f"the previous reindex (pid {dead.pid}) died, but processes it started still hold the lock of {root}:"
            f" stop them (`kill {holder.pid}`) and run the reindex again"
        )
    finally:
        holder.stdin.close()
        holder.wait(30)
    notes: list[str] = []
    report = reindex([FIXTURE_NEWS], root, workers=0, notify=notes.append)  # free once they are gone
    assert report.added.articles == FIXTURE_ARTICLES
    assert notes == [f"the previous reindex (pid {dead.pid}) died; taking over its lock"]
