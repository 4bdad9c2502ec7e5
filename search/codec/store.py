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
import re
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import xxhash

CURRENT_FILE = "CURRENT"
LOCK_FILE = ".reindex.lock"
MANIFEST_FILE = "midashi-manifest.json"
GENERATION_PREFIX = "gen-"
BUILDING_SUFFIX = ".building"
# The on-disk layout this code writes (2: postings as arrays, `postings.py`; 3: safe ids and bounded
# sections, as `readers.py` now parses them, and checksums in the manifest; 4: livedoor articles
# without their trailing bare link lists, author profiles and product boxes; 5: the people, places
# and reading fields; 6: the `synonym_words` field, `schema.py`; commits between had 5 with only
# one of the two). A generation in another layout is rebuilt in full
# by the next reindex rather than extended: a JSON Lines line whose bytes did not change would
# otherwise keep the parse an older reader gave it, and its segments would lack the new fields.
INDEX_FORMAT = 6


class IndexMissingError(RuntimeError):
    """There is no built index at this path yet."""


class IndexBusyError(RuntimeError):
    """Another reindex holds the writer lock of this index."""


class DamagedIndexError(RuntimeError):
    """A file of the live generation is missing, cut short, altered or unreadable.

    The message is one line for a person: which file, what is wrong with it, and the command that
    repairs it (a reindex rebuilds the generation from the corpus)."""

    def __init__(self, root: Path, problem: str):
        self.root = Path(root)
        self.problem = problem
        super().__init__(f"the index at {root} is damaged: {problem}; {repair_command(root)} repairs it")


def repair_command(root: Path | str) -> str:
    return f"`midashi reindex --full --index {root}`"


# A file's identity for skipping it unread: size, modification and change times, inode, device.
FileSignature = tuple[int, int, int, int, int]
# A generation file's recorded size and content digest ("xxh3_128:<hex>").
Checksum = tuple[int, str]
DIGEST = "xxh3_128"
_READ_CHUNK = 1 << 20
# The manifest starts with its own digest, over the bytes that follow it: `{"checksum":"…",` then
# the rest of the object. Still one JSON object, and an edit, a cut or a flipped byte shows.
_MANIFEST_HEAD = re.compile(rb'\{"checksum":"([0-9a-z_]+:[0-9a-f]+)",')


def file_checksum(path: Path) -> Checksum:
    """The size and content digest of a file, read in 1 MB pieces.

    xxHash's XXH3 (128 bits): it guards against damage, not forgery, and reads the livedoor index
    (47.7 MB, in the page cache) in 12 ms, where BLAKE2b takes 83 ms and reading alone 8 ms."""
    digest = xxhash.xxh3_128()
    size = 0
    with open(path, "rb") as handle:
        while chunk := handle.read(_READ_CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return size, f"{DIGEST}:{digest.hexdigest()}"


def generation_files(folder: Path) -> list[Path]:
    """The Whoosh files of a generation (its segments and table of contents): what a checksum covers."""
    return sorted(
        path
        for path in folder.iterdir()
        if path.is_file()
        and path.name != MANIFEST_FILE
        and not path.name.endswith((".lock", ".tmp"))
        and path.name != "MAIN_WRITELOCK"
    )


@dataclass
class Manifest:
    """What a generation holds: each article's content hash and section count, each corpus file's
    signature and article ids (so an untouched file is skipped unread), when it was built, in
    which on-disk format and with which analyzer (`analysis.sudachi.analyzer_version`)."""

    articles: dict[str, tuple[str, int]] = field(default_factory=dict)
    built_at: str = ""
    corpus: list[str] = field(default_factory=list)
    files: dict[str, tuple[FileSignature, list[str]]] = field(default_factory=dict)
    format: int = INDEX_FORMAT
    analyzer: str = ""
    # Each Whoosh file of the generation: size and digest, recorded when it is published. Empty in
    # a manifest written before checksums (nothing to verify; the next reindex rebuilds it).
    checksums: dict[str, Checksum] = field(default_factory=dict)

    def save(self, folder: Path) -> None:
        """Write the manifest atomically: a no-change reindex rewrites the live one in place."""
        data = {
            "format": self.format,
            "analyzer": self.analyzer,
            "built_at": self.built_at,
            "corpus": self.corpus,
            "checksums": self.checksums,
            "articles": self.articles,
            "files": self.files,
        }
        body = json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        checksum = f"{DIGEST}:{xxhash.xxh3_128_hexdigest(body)}"
        path = folder / MANIFEST_FILE
        temporary = path.with_suffix(".tmp")
        try:
            with open(temporary, "wb") as handle:
                handle.write(b'{"checksum":"' + checksum.encode() + b'",' + body[1:])
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temporary, path)
        except BaseException:  # a full disk: the live generation keeps no half-written file beside it
            temporary.unlink(missing_ok=True)
            raise

    @classmethod
    def load(cls, folder: Path) -> Manifest:
        """The manifest of a generation; DamagedIndexError when it is missing, unreadable or altered."""
        raw = _read_manifest(folder)
        try:
            data = json.loads(raw)
            articles = {key: (value[0], value[1]) for key, value in data["articles"].items()}
            files = {key: (tuple(value[0]), value[1]) for key, value in data.get("files", {}).items()}
            return cls(
                articles,
                data.get("built_at", ""),
                data.get("corpus", []),
                files,
                data.get("format", 1),
                data.get("analyzer", ""),
                _checksums(data.get("checksums", {})),
            )
        except (ValueError, KeyError, TypeError, IndexError, AttributeError):
            raise _unreadable_manifest(folder) from None

    @staticmethod
    def load_checksums(folder: Path) -> dict[str, Checksum]:
        """Only the checksums of a generation's manifest (DamagedIndexError as `load`): what opening
        a generation needs. They come before the articles, which are most of it and are not parsed:
        the livedoor manifest (0.8 MB) is hashed and its checksums read in 3 ms, where parsing all of
        it takes 10-18 ms, and it grows with the corpus."""
        raw = _read_manifest(folder)
        start = raw.find(b',"checksums":')
        try:
            if start < 0:
                json.loads(raw)  # an earlier manifest, without checksums: it must still parse
                return {}
            text = raw[start + len(b',"checksums":') :].decode("utf-8")
            return _checksums(json.JSONDecoder().raw_decode(text)[0])
        except (ValueError, TypeError, IndexError, AttributeError):
            raise _unreadable_manifest(folder) from None


def _read_manifest(folder: Path) -> bytes:
    """The bytes of a generation's manifest, checked against the digest they start with."""
    name = f"{folder.name}/{MANIFEST_FILE}"
    try:
        raw = (folder / MANIFEST_FILE).read_bytes()
    except FileNotFoundError:
        raise DamagedIndexError(folder.parent, f"{name} is missing") from None
    except OSError as error:
        raise DamagedIndexError(folder.parent, f"{name} cannot be read ({error.strerror})") from None
    head = _MANIFEST_HEAD.match(raw)
    if head is not None:
        algorithm, _, expected = head.group(1).decode().partition(":")
        if algorithm != DIGEST or xxhash.xxh3_128_hexdigest(b"{" + raw[head.end() :]) != expected:
            raise DamagedIndexError(folder.parent, f"{name} does not match its checksum")
    elif raw.startswith(b'{"checksum"'):
        raise _unreadable_manifest(folder)
    return raw


def _checksums(recorded: dict) -> dict[str, Checksum]:
    return {name: (int(size), str(digest)) for name, (size, digest) in recorded.items()}


def _unreadable_manifest(folder: Path) -> DamagedIndexError:
    return DamagedIndexError(folder.parent, f"{folder.name}/{MANIFEST_FILE} is not a readable manifest")


class IndexStore:
    """One index root folder and its generations."""

    def __init__(self, root: Path | str):
        self.root = Path(root)

    def current_name(self) -> str | None:
        """What CURRENT says, as written (None when there is no CURRENT): not necessarily a name."""
        try:
            raw = (self.root / CURRENT_FILE).read_bytes()
        except (FileNotFoundError, NotADirectoryError):
            return None
        except OSError as error:
            raise DamagedIndexError(self.root, f"{CURRENT_FILE} cannot be read ({error.strerror})") from None
        return raw.decode("utf-8", "replace").strip() or None

    def current(self) -> Path:
        """The live generation's folder: IndexMissingError when none was ever built, and
        DamagedIndexError when CURRENT is missing, holds something else than a generation's name,
        or names a folder that is not there."""
        name = self.current_name()
        if name is None:
            if not self.generations():
                raise IndexMissingError(f"no index at {self.root} yet: run `midashi reindex --index {self.root}` first")
            raise DamagedIndexError(self.root, f"{CURRENT_FILE} is missing or empty")
        if not _GENERATION_NAME.fullmatch(name):
            raise DamagedIndexError(self.root, f"{CURRENT_FILE} does not hold a generation name")
        if not (self.root / name).is_dir():
            raise DamagedIndexError(self.root, f"{CURRENT_FILE} names {name}, which is missing")
        return self.root / name

    def generations(self) -> list[Path]:
        """The published generation folders (not those still being built)."""
        return [
            path
            for path in self.root.glob(GENERATION_PREFIX + "*")
            if path.is_dir() and _GENERATION_NAME.fullmatch(path.name)
        ]

    def manifest(self) -> Manifest:
        return Manifest.load(self.current())

    def verify(
        self, folder: Path, content: bool = True, checksums: dict[str, Checksum] | None = None
    ) -> dict[str, Checksum]:
        """Check a generation against its manifest: the manifest against its own digest, every
        file it recorded there with its size and, with `content`, its digest, and no other file.
        DamagedIndexError naming the first damaged file; the recorded checksums when all is well.
        `checksums` are those of a manifest the caller has loaded already (not read again)."""
        if checksums is None:
            checksums = Manifest.load_checksums(folder)
        for problem in file_problems(folder, checksums, content):
            raise DamagedIndexError(self.root, problem)
        return checksums

    def new_generation(self) -> Path:
        """A fresh, empty folder for the next generation (named `gen-N.building` until published).

        N is past the one CURRENT names too, even when that folder was deleted: a server that
        had it open must not take the next generation for it."""
        self.root.mkdir(parents=True, exist_ok=True)
        names = [p.name for p in self.root.glob(GENERATION_PREFIX + "*")] + [self._live_name() or ""]
        numbers = [
            int(name[len(GENERATION_PREFIX) :].split(".")[0])
            for name in names
            if name.startswith(GENERATION_PREFIX) and name[len(GENERATION_PREFIX) :].split(".")[0].isdigit()
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

    def publish(self, building: Path, manifest: Manifest, base: Manifest | None = None) -> Path:
        """Record the checksum of every file of `building` in its manifest, save it, and make it
        the live generation with one atomic rename of CURRENT.

        A file hard-linked from the live generation (same inode) keeps the checksum `base`, that
        generation's verified manifest, recorded for it: only new segments are read."""
        live = self._live_folder() if base is not None else None
        checksums: dict[str, Checksum] = {}
        for path in generation_files(building):
            known = base.checksums.get(path.name) if base is not None and live is not None else None
            if (
                known is not None
                and live is not None
                and _same_file(path, live / path.name)
                and path.stat().st_size == known[0]
            ):
                checksums[path.name] = known
            else:
                checksums[path.name] = file_checksum(path)
        manifest.checksums = checksums
        manifest.save(building)
        final = building.with_name(building.name.removesuffix(BUILDING_SUFFIX))
        building.rename(final)
        previous = self._live_name()
        pointer = self.root / (CURRENT_FILE + ".tmp")
        with open(pointer, "w", encoding="utf-8") as handle:
            handle.write(final.name + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        current = self.root / CURRENT_FILE
        if current.is_dir() and not current.is_symlink():  # damage no rename can replace
            shutil.rmtree(current)
        os.replace(pointer, current)
        self._remove_old_generations(keep={final.name, previous})
        return final

    def _live_name(self) -> str | None:
        """What CURRENT names, or None when it cannot be read (a rebuild replaces it)."""
        try:
            return self.current_name()
        except DamagedIndexError:
            return None

    def _live_folder(self) -> Path | None:
        try:
            return self.current()
        except (IndexMissingError, DamagedIndexError):
            return None

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


_GENERATION_NAME = re.compile(re.escape(GENERATION_PREFIX) + r"[0-9]+")


def file_problems(folder: Path, checksums: dict[str, Checksum], content: bool = True) -> Iterator[str]:
    """Each way the files of `folder` differ from the `checksums` its manifest recorded, one line each."""
    if not checksums:
        return  # written before checksums: nothing recorded to compare with
    for name, (size, digest) in checksums.items():
        path = folder / name
        shown = f"{folder.name}/{name}"
        try:
            actual = path.stat().st_size
        except FileNotFoundError:
            yield f"{shown} is missing"
            continue
        except OSError as error:
            yield f"{shown} cannot be read ({error.strerror})"
            continue
        if actual != size:
            yield f"{shown} holds {actual:,} bytes, {size:,} were written"
        elif content:
            try:
                if file_checksum(path)[1] != digest:
                    yield f"{shown} does not match its checksum"
            except OSError as error:
                yield f"{shown} cannot be read ({error.strerror})"
    for path in generation_files(folder):
        if path.name not in checksums:
            yield f"{folder.name}/{path.name} was not written by a reindex"


def _same_file(one: Path, other: Path) -> bool:
    try:
        a, b = one.stat(), other.stat()
    except OSError:
        return False
    return (a.st_ino, a.st_dev) == (b.st_ino, b.st_dev)


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
