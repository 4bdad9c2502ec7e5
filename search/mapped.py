"""Segment files read where the index's memory map has them, not copied.

Whoosh opens each part of a compound segment file as a `BufferFile` over the mapped bytes, and
also keeps a `BytesIO` of them for sequential reads: a copy, in the process's own memory, of
every terms, postings and column file a reader opens. At a million sections, a process that had
opened a searcher and run one search held 664 MB of its own memory, 93 MB without the copies (and
a server has a searcher per thread); making them read the whole index off the disk first, 1.8 s
when it was not cached yet. `open_in_place` gives the same file without the copy.
"""

from __future__ import annotations

from whoosh.filedb.compound import CompoundStorage
from whoosh.filedb.filestore import OverlayStorage
from whoosh.filedb.structfile import BufferFile, StructFile


def open_in_place(storage, name: str) -> StructFile:
    """`storage.open_file(name)`, read in place when the file is part of a memory-mapped segment."""
    if isinstance(storage, OverlayStorage):  # a segment reader's: its compound file, then the folder
        storage = storage.a if storage.a.file_exists(name) else storage.b
    if isinstance(storage, CompoundStorage) and getattr(storage, "_source", None) is not None:
        offset, length = storage.range(name)
        return _InPlaceFile(memoryview(storage._source)[offset:offset + length], name)
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
            found = bytes(self._buf[scan:min(end, scan + 256)]).find(b"\n")
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
        data = bytes(self._buf[self._position:end])
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
