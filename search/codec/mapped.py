"""Segment files read where the index's memory map has them, not copied.

Whoosh opens each part of a compound segment file as a `BufferFile` over the mapped bytes, and
also keeps a `BytesIO` of them for sequential reads: a copy, in the process's own memory, of
every terms, postings and column file a reader opens. At a million sections, a process that had
opened a searcher and run one search held 664 MB of its own memory, 93 MB without the copies (and
a server has a searcher per thread); making them read the whole index off the disk first, 1.8 s
when it was not cached yet. `open_in_place` gives the same file without the copy.

Whoosh also maps a compound segment file anew for each reader that opens it, and a server has a
searcher per thread: 8 maps of each file, each counted in the process's RSS again (livedoor's
41 MB index showed as 275 MB of RSS after a thousand searches). `SharedMapStorage` maps each file
once per process, whichever reader opens it; the map goes with the last reader that holds it.
"""

from __future__ import annotations

import mmap
import os
import threading
import weakref

from whoosh.codec.base import Segment
from whoosh.codec.whoosh3 import W3Segment
from whoosh.filedb.compound import CompoundStorage
from whoosh.filedb.filestore import OverlayStorage
from whoosh.filedb.structfile import BufferFile, StructFile

from .whoosh_internals import mapped_bytes


def open_in_place(storage, name: str) -> StructFile:
    """`storage.open_file(name)`, read in place when the file is part of a memory-mapped segment."""
    if isinstance(storage, OverlayStorage):  # a segment reader's: its compound file, then the folder
        storage = storage.a if storage.a.file_exists(name) else storage.b
    source = mapped_bytes(storage) if isinstance(storage, CompoundStorage) else None
    if source is not None:
        offset, length = storage.range(name)
        return _InPlaceFile(source[offset : offset + length], name)
    return storage.open_file(name)


class _InPlaceFile(BufferFile):
    """A `BufferFile` whose sequential reads go to its buffer too."""

    def __init__(self, buf: memoryview, name: str):
        self._buf = buf
        self._name = name
        self.file = _BufferReader(buf)
        self.onclose = None
        self.is_real = False
        self.is_closed = False


class _BufferReader:
    """`read`, `readline`, `seek` and `tell` over a buffer, as `BytesIO` has them, without copying it."""

    def __init__(self, buf: memoryview):
        self._buf = buf
        self._position = 0

    def read(self, size: int = -1) -> bytes:
        return self._take(self._end(size))

    def readline(self, size: int = -1) -> bytes:
        """Up to and including the next newline (pickle asks for it, and for old protocols uses it)."""
        end, scan = self._end(size), self._position
        while scan < end:
            found = bytes(self._buf[scan : min(end, scan + 256)]).find(b"\n")
            if found >= 0:
                end = scan + found + 1
                break
            scan += 256
        return self._take(end)

    def _end(self, size: int | None) -> int:
        """Where a read of `size` bytes (all when negative or None) from here ends."""
        return len(self._buf) if size is None or size < 0 else min(len(self._buf), self._position + size)

    def _take(self, end: int) -> bytes:
        """The bytes from here to `end`, moving past them."""
        data = bytes(self._buf[self._position : end])
        self._position = max(self._position, end)
        return data

    def seek(self, offset: int, whence: int = 0) -> int:
        base = (0, self._position, len(self._buf))[whence]
        self._position = max(0, base + offset)
        return self._position

    def tell(self) -> int:
        return self._position

    def close(self) -> None:
        self._buf = memoryview(b"")


_maps: weakref.WeakValueDictionary = weakref.WeakValueDictionary()  # file identity → its map
_maps_lock = threading.Lock()


class SharedMapStorage(CompoundStorage):
    """A compound segment file over the process's one map of it (segment files are written once,
    so a file's device, inode, size and time always mean the same bytes)."""

    is_closed: bool  # set by CompoundStorage

    def __init__(self, dbfile):
        super().__init__(dbfile, use_mmap=False)  # reads the file's directory, maps nothing
        status = os.fstat(dbfile.fileno())
        key = (status.st_dev, status.st_ino, status.st_size, status.st_mtime_ns)
        with _maps_lock:
            source = _maps.get(key)
            if source is None:
                source = _maps[key] = mmap.mmap(dbfile.fileno(), 0, access=mmap.ACCESS_READ)
        self._source = source
        self._file.close()
        self._file = None

    def close(self) -> None:
        """Let go of the map (other readers may still read it): it is unmapped with its last holder."""
        if self.is_closed:
            raise Exception("Already closed")  # as CompoundStorage says it
        self.is_closed = True
        self._source = None


def _open_compound_file(segment: Segment, storage) -> CompoundStorage:
    """`Segment.open_compound_file`, over the process's shared map when the file can be mapped."""
    dbfile = storage.open_file(segment.make_filename(segment.COMPOUND_EXT))
    if storage.supports_mmap and hasattr(dbfile, "fileno"):
        try:
            return SharedMapStorage(dbfile)
        except (OSError, ValueError):  # no mapping possible (ENOMEM, an empty file): Whoosh's own way
            dbfile.seek(0)
    return CompoundStorage(dbfile, use_mmap=storage.supports_mmap)


Segment.open_compound_file = _open_compound_file
W3Segment.open_compound_file = _open_compound_file
