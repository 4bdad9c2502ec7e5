"""The on-disk index folder: generations, the CURRENT pointer, the writer lock, the manifest.

A reindex never writes into the index searches are using. It builds generation `gen-N+1` beside
`gen-N` (hard-linking the unchanged Whoosh segments, which are write-once) and then replaces the
one-line `CURRENT` file atomically. Readers that opened `gen-N` keep their files; the generation
before the previous one is deleted.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

CURRENT_FILE = "CURRENT"
LOCK_FILE = ".reindex.lock"
MANIFEST_FILE = "midashi-manifest.json"
GENERATION_PREFIX = "gen-"
BUILDING_SUFFIX = ".building"
# The on-disk layout this code writes (2: postings as arrays, `postings.py`). A generation in another
# layout is rebuilt in full by the next reindex rather than extended.
INDEX_FORMAT = 2


class IndexMissingError(RuntimeError):
    """There is no built index at this path yet."""


class IndexBusyError(RuntimeError):
    """Another reindex holds the writer lock of this index."""


# A file's identity for skipping it unread: size, modification and change times, inode, device.
FileSignature = tuple[int, int, int, int, int]


@dataclass
class Manifest:
    """What a generation holds: each article's content hash and section count, each corpus file's
    signature and article ids (so an untouched file is skipped unread), when it was built, in
    which on-disk format and with which analyzer (`analysis.analyzer_version`)."""

    articles: dict[str, tuple[str, int]] = field(default_factory=dict)
    built_at: str = ""
    corpus: list[str] = field(default_factory=list)
    files: dict[str, tuple[FileSignature, list[str]]] = field(default_factory=dict)
    format: int = INDEX_FORMAT
    analyzer: str = ""

    def save(self, folder: Path) -> None:
        """Write the manifest atomically: a no-change reindex rewrites the live one in place."""
        data = {
            "format": self.format,
            "analyzer": self.analyzer,
            "built_at": self.built_at,
            "corpus": self.corpus,
            "articles": self.articles,
            "files": self.files,
        }
        path = folder / MANIFEST_FILE
        temporary = path.with_suffix(".tmp")
        with open(temporary, "w", encoding="utf-8") as handle:
            json.dump(data, handle, ensure_ascii=False, separators=(",", ":"))
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)

    @classmethod
    def load(cls, folder: Path) -> Manifest:
        with open(folder / MANIFEST_FILE, encoding="utf-8") as handle:
            data = json.load(handle)
        articles = {key: (value[0], value[1]) for key, value in data["articles"].items()}
        files = {key: (tuple(value[0]), value[1]) for key, value in data.get("files", {}).items()}
        return cls(articles, data.get("built_at", ""), data.get("corpus", []), files, data.get("format", 1),
                   data.get("analyzer", ""))


class IndexStore:
    """One index root folder and its generations."""

    def __init__(self, root: Path | str):
        self.root = Path(root)

    def current_name(self) -> str | None:
        try:
            name = (self.root / CURRENT_FILE).read_text(encoding="utf-8").strip()
        except FileNotFoundError:
            return None
        return name or None

    def current(self) -> Path:
        """The live generation's folder, or IndexMissingError with what to do about it."""
        name = self.current_name()
        if name is None or not (self.root / name).is_dir():
            raise IndexMissingError(
                f"no index at {self.root} yet: run `midashi reindex --index {self.root}` first"
            )
        return self.root / name

    def manifest(self) -> Manifest:
        return Manifest.load(self.current())

    def new_generation(self) -> Path:
        """A fresh, empty folder for the next generation (named `gen-N.building` until published)."""
        self.root.mkdir(parents=True, exist_ok=True)
        numbers = [
            int(p.name[len(GENERATION_PREFIX):].split(".")[0])
            for p in self.root.glob(GENERATION_PREFIX + "*")
            if p.name[len(GENERATION_PREFIX):].split(".")[0].isdigit()
        ]
        folder = self.root / f"{GENERATION_PREFIX}{max(numbers, default=0) + 1:06d}{BUILDING_SUFFIX}"
        folder.mkdir()
        return folder

    @staticmethod
    def link_segments(source: Path, target: Path) -> None:
        """Hard-link (or copy, across file systems) a generation's Whoosh files into `target`."""
        for path in source.iterdir():
            if path.is_file() and path.name != MANIFEST_FILE and not path.name.endswith(".lock"):
                try:
                    os.link(path, target / path.name)
                except OSError:
                    shutil.copy2(path, target / path.name)

    def publish(self, building: Path) -> Path:
        """Make `building` the live generation with one atomic rename of CURRENT."""
        final = building.with_name(building.name.removesuffix(BUILDING_SUFFIX))
        building.rename(final)
        previous = self.current_name()
        pointer = self.root / (CURRENT_FILE + ".tmp")
        with open(pointer, "w", encoding="utf-8") as handle:
            handle.write(final.name + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(pointer, self.root / CURRENT_FILE)
        self._remove_old_generations(keep={final.name, previous})
        return final

    def discard(self, building: Path) -> None:
        shutil.rmtree(building, ignore_errors=True)

    def _remove_old_generations(self, keep: set[str | None]) -> None:
        for path in self.root.glob(GENERATION_PREFIX + "*"):
            if path.is_dir() and path.name not in keep:
                shutil.rmtree(path, ignore_errors=True)

    @contextmanager
    def writer_lock(self, notify: Callable[[str], None] | None = None) -> Iterator[None]:
        """Hold the one-writer lock for the duration; IndexBusyError if another reindex has it.

        The lock is this process's alone: a child it forks (an index worker) closes its copy at
        once (`_forget_locks_in_child`), so a worker left running can never keep it. The file
        holds the owner's pid while it is held; a pid still there when we get the lock belongs to
        a reindex that died (it would have cleared it), and `notify` is told we take over.
        """
        self.root.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(self.root / LOCK_FILE, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            try:
                fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as error:
                if error.errno not in (errno.EAGAIN, errno.EACCES):
                    raise
                raise IndexBusyError(self._busy_message(_read_owner(descriptor))) from None
            _HELD_LOCKS.add(descriptor)
            try:
                previous = _read_owner(descriptor)
                if previous and previous != os.getpid() and notify is not None:
                    notify(f"the previous reindex (pid {previous}) died; taking over its lock")
                os.ftruncate(descriptor, 0)
                os.pwrite(descriptor, f"pid {os.getpid()}".encode(), 0)
                # Leftovers of a reindex that was killed outright are safe to drop now.
                for stale in self.root.glob(GENERATION_PREFIX + "*" + BUILDING_SUFFIX):
                    shutil.rmtree(stale, ignore_errors=True)
                yield
            finally:
                os.ftruncate(descriptor, 0)
                _HELD_LOCKS.discard(descriptor)
                fcntl.flock(descriptor, fcntl.LOCK_UN)
        finally:
            os.close(descriptor)

    def _busy_message(self, owner: int | None) -> str:
        """Who holds the lock, in words; with the pids to stop when its owner is gone."""
        if owner is None or _is_alive(owner):
            holder = f"pid {owner}" if owner else "another process"
            return f"another reindex ({holder}) is writing {self.root}; wait for it to finish"
        holders = _processes_holding(self.root / LOCK_FILE)
        if not holders:  # a process we cannot see (another container, say) holds it
            return f"another reindex is writing {self.root}; wait for it to finish"
        pids = " ".join(str(pid) for pid in holders)
        return (
            f"the previous reindex (pid {owner}) died, but processes it started still hold the lock"
            f" of {self.root}: stop them (`kill {pids}`) and run the reindex again"
        )

    def size_on_disk(self) -> int:
        return sum(p.stat().st_size for p in self.current().iterdir() if p.is_file())


# Writer-lock descriptors this process holds. A flock belongs to the open file description, which
# fork() shares with the child: a forked index worker holding a copy would keep the lock after its
# parent died. The child swaps each copy for /dev/null (closing it; the parent's lock stays, as a
# flock is only released when every descriptor of it is closed, or by an explicit LOCK_UN, which
# the child never makes) so the number stays valid for any code in the child that closes it.
_HELD_LOCKS: set[int] = set()


def _forget_locks_in_child() -> None:
    if not _HELD_LOCKS:
        return
    null = os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)
    for descriptor in _HELD_LOCKS:
        os.dup2(null, descriptor, inheritable=False)
    os.close(null)
    _HELD_LOCKS.clear()


os.register_at_fork(after_in_child=_forget_locks_in_child)


def _read_owner(descriptor: int) -> int | None:
    """The pid the lock file names (`pid N`), or None when it is empty or unreadable."""
    text = os.pread(descriptor, 64, 0).decode("ascii", "replace").strip()
    number = text.removeprefix("pid ").strip()
    return int(number) if number.isdigit() else None


def _is_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process
    return True


def _processes_holding(path: Path) -> list[int]:
    """The pids (in /proc, so Linux only) with a descriptor open on `path`, other than ours."""
    try:
        target = path.stat()
    except OSError:
        return []
    holders = []
    for fd_folder in Path("/proc").glob("[0-9]*/fd"):
        try:
            pid = int(fd_folder.parent.name)
            if pid == os.getpid():
                continue
            for entry in fd_folder.iterdir():
                opened = entry.stat()
                if (opened.st_ino, opened.st_dev) == (target.st_ino, target.st_dev):
                    holders.append(pid)
                    break
        except (OSError, ValueError):
            continue  # gone meanwhile, or not ours to look at
    return sorted(holders)
