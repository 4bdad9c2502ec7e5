"""Stored fields compressed with Zstandard and a dictionary trained on the segment's own sections.

Whoosh compresses each document's stored fields (a pickled dict: the section's body, title, ids,
date, URL …) with zlib on its own. A section is about 1 KB of Japanese, too little for zlib to find
repeats in: the stored fields came out at 0.95× the raw text, the largest part of the index. A
dictionary trained on the segment's first sections gives Zstandard the field names, the source and
category names and the common words to refer back to, so each section still decompresses on its
own (about 3 µs: a hit reads only its own bytes) in about half the space.

The column is laid out as

    magic, dictionary size, the dictionary (empty when the segment is too small to train one),
    then Whoosh's VarBytes column of the compressed values

and a column without the magic is Whoosh's zlib column of an earlier version, read as before.
"""

from __future__ import annotations

import struct
import threading

import zstandard
from whoosh.codec.whoosh3 import W3Codec, W3PerDocReader, W3PerDocWriter
from whoosh.columns import (
    Column,
    ColumnReader,
    ColumnWriter,
    CompressedBytesColumn,
    PickleColumn,
    VarBytesColumn,
)

from .mapped import open_in_place

_MAGIC = b"MZS1"  # cannot begin a zlib stream, whose first byte's low four bits are 8
_DICTIONARY_SIZE = struct.Struct("<I")
# Half the 1x perf corpus's sections with a trained dictionary, compressed at level 3 / 4 / 5 / 6:
# 10.19 / 9.71 / 9.43 / 9.38 MB in 0.17 / 0.34 / 0.41 / 0.62-0.67 s. Past 5, little space for much time.
_LEVEL = 5
DICTIONARY_BYTES = 256_000
TRAIN_ON_BYTES = 8_000_000  # values buffered before the dictionary is trained (about 6,000 sections)
_FEWEST_SAMPLES = 64  # below this, training fails
# Below this many bytes of values, no dictionary: trained on few values, it comes out as big as they
# are and costs more than it saves (sections of the 1x perf corpus, stored with and without one:
# 150 sections, 184 KB against 124; 300, 302 against 247; 450, 342 against 373; 600, 391 against
# 495). A small reindex writes segments that small.
_FEWEST_BYTES = 2 * DICTIONARY_BYTES
# The COVER trainer's segment and d-mer sizes. Left to itself, zstd tries some forty pairs and
# keeps the best: 1.5 s of CPU per segment written, the same for a small reindex as for a big
# one. Its choice on livedoor and JaQuAD sections is d 8 (k 537); with these two fixed it trains
# in 0.35 s, and the stored fields came out 0.3-0.7 % smaller on three samples of the 1x perf
# corpus (the whole 1x index the same size, +0.04 %).
_COVER_K, _COVER_D = 256, 8


class ZstdStoredColumn(Column):
    """Byte values compressed one by one with Zstandard and a dictionary trained on the first."""

    def writer(self, dbfile) -> ColumnWriter:
        return _Writer(dbfile)

    def reader(self, dbfile, basepos: int, length: int, doccount: int) -> ColumnReader:
        if length < len(_MAGIC) or dbfile.get(basepos, len(_MAGIC)) != _MAGIC:
            return CompressedBytesColumn().reader(dbfile, basepos, length, doccount)
        header_end = basepos + len(_MAGIC) + _DICTIONARY_SIZE.size
        (dictionary_size,) = _DICTIONARY_SIZE.unpack(dbfile.get(basepos + len(_MAGIC), _DICTIONARY_SIZE.size))
        dictionary = bytes(dbfile.get(header_end, dictionary_size))
        values_start = header_end + dictionary_size
        values = VarBytesColumn().reader(dbfile, values_start, length - (values_start - basepos), doccount)
        return _Reader(values, dictionary)


class _Writer(ColumnWriter):
    """Holds the first values until there are enough to train the dictionary on, then streams."""

    def __init__(self, dbfile):
        self._dbfile = dbfile
        self._buffered: list[tuple[int, bytes]] = []
        self._buffered_bytes = 0
        self._values: ColumnWriter | None = None
        self._compress = None

    def add(self, docnum: int, value: bytes) -> None:
        if self._values is None:
            self._buffered.append((docnum, value))
            self._buffered_bytes += len(value)
            if self._buffered_bytes >= TRAIN_ON_BYTES:
                self._start()
            return
        self._values.add(docnum, self._compress(value))

    def finish(self, doccount: int) -> None:
        if self._values is None:
            self._start()
        assert self._values is not None  # `_start` made it
        self._values.finish(doccount)

    def _start(self) -> None:
        """Train the dictionary on the buffered values, write it, then the buffered values."""
        # (typed as zstandard's stubs ask: its list parameter is invariant)
        samples: list[bytes | bytearray | memoryview] = [value for _docnum, value in self._buffered if value]
        dictionary = b""  # none when there is too little or too uniform text to learn from
        if len(samples) >= _FEWEST_SAMPLES and self._buffered_bytes >= _FEWEST_BYTES:
            try:
                trained = zstandard.train_dictionary(DICTIONARY_BYTES, samples, k=_COVER_K, d=_COVER_D, level=_LEVEL)
                dictionary = trained.as_bytes()
            except zstandard.ZstdError:
                pass
        self._dbfile.write(_MAGIC + _DICTIONARY_SIZE.pack(len(dictionary)) + dictionary)
        self._compress = _compressor(dictionary).compress
        self._values = VarBytesColumn().writer(self._dbfile)
        for docnum, value in self._buffered:
            self._values.add(docnum, self._compress(value))
        self._buffered.clear()


class _Reader(ColumnReader):
    def __init__(self, values: ColumnReader, dictionary: bytes):
        self._values = values
        self._dictionary = dictionary
        self._per_thread = threading.local()  # a decompressor is not thread-safe

    def __len__(self) -> int:
        return len(self._values)

    def __getitem__(self, docnum: int) -> bytes:
        value = self._values[docnum]
        return self._decompressor().decompress(value) if value else value

    def __iter__(self):
        decompress = self._decompressor().decompress
        for value in self._values:
            yield decompress(value) if value else value

    def _decompressor(self) -> zstandard.ZstdDecompressor:
        decompressor = getattr(self._per_thread, "decompressor", None)
        if decompressor is None:
            dictionary = zstandard.ZstdCompressionDict(self._dictionary) if self._dictionary else None
            decompressor = self._per_thread.decompressor = zstandard.ZstdDecompressor(dict_data=dictionary)
        return decompressor


def _compressor(dictionary: bytes) -> zstandard.ZstdCompressor:
    trained = zstandard.ZstdCompressionDict(dictionary) if dictionary else None
    return zstandard.ZstdCompressor(level=_LEVEL, dict_data=trained, write_checksum=False)


STORED_COLUMN = PickleColumn(ZstdStoredColumn())


class StoredPerDocWriter(W3PerDocWriter):
    """W3's per-document writer, its stored fields in `STORED_COLUMN`."""

    def _create_column(self, fieldname: str, column: Column) -> None:
        super()._create_column(fieldname, STORED_COLUMN if fieldname == "_stored" else column)


class StoredPerDocReader(W3PerDocReader):
    """W3's per-document reader, its stored fields read through `STORED_COLUMN`, its column files
    read in place."""

    def _get_column_file(self, fieldname: str):
        filename = W3Codec.column_filename(self._segment, fieldname)
        return open_in_place(self._storage, filename), 0, self._storage.file_length(filename)

    def stored_fields(self, docnum: int) -> dict:
        return self._cached_reader("_stored", STORED_COLUMN)[docnum] or {}
