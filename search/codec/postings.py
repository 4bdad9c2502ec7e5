"""The on-disk posting format: Whoosh's W3 codec with each term's postings stored as whole arrays.

Whoosh 2.7 stores a posting list in blocks of 128, each block a pickled tuple in which every
posting's positions are pickled once more. At a million sections a question spends most of its
time unpickling those blocks (profile in `bench/perf`'s notes), and the pickles take about 20
bytes a posting. `ArrayCodec` keeps everything else of W3 (term index, length columns, segment
files, merging; stored fields as `stored.py` compresses them) and writes one record per term:

    header: count, first docnum, the four arrays' types, flags, size of the first part
    part 1: docnum gaps, weights, positions per posting   (compressed when that pays)
    part 2: every posting's positions, one after another   (compressed when that pays)

each array in the narrowest unsigned type that holds it, so `np.frombuffer` reads it in one go and
a search that needs no positions never decompresses them. `ArrayPositions` keeps a posting's
positions as raw uint32 (Whoosh pickles them), so the writer joins them without decoding.

Parts are compressed with Zstandard (level 1): on the long lists of common words, the ones a
question reads cold, it decompresses four to six times as fast as zlib, and part 1 comes out
smaller (part 1 of `年` with 106,000 postings: 33 KB in 0.12 ms, against zlib's 83 KB in
0.76 ms). Parts an earlier version compressed with zlib say so in their flags and still read.

Segments written by the W3 codec (indexes built before this format) still read as before; their
codec is pickled in each segment. Whoosh itself reads ours through `ArrayPostings`, a ListMatcher,
while `scoring.py` takes the arrays directly.
"""

from __future__ import annotations

import struct
import threading
import zlib
from array import array
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cached_property
from itertools import chain, pairwise

import numpy as np
import zstandard
from whoosh.codec.whoosh3 import (
    LENGTHS_COLUMN,
    W3Codec,
    W3FieldWriter,
    W3PerDocReader,
    W3PostingsWriter,
    W3TermInfo,
    W3TermsReader,
)
from whoosh.filedb.filetables import OrderedHashWriter
from whoosh.filedb.structfile import StructFile
from whoosh.formats import Frequency, Positions
from whoosh.matching import ListMatcher, NullMatcher, ReadTooFar
from whoosh.reading import TermNotFound
from whoosh.system import pack_uint, pack_ushort
from whoosh.util.numeric import byte_to_length

from .. import memory
from .mapped import open_in_place
from .stored import StoredPerDocReader, StoredPerDocWriter
from .whoosh_internals import fixed_column_values, length_column

_HEADER = struct.Struct("<II4sBI")  # count, first docnum, types of gaps/weights/counts/positions, flags, part-1 size
_PART1_ZIPPED, _PART2_ZIPPED = 1, 2  # zlib, as earlier versions wrote
_PART1_ZSTD, _PART2_ZSTD = 4, 8
_ABSENT = b"-"  # an array that is not stored: no gaps (one posting), weights all 1.0, no values
_BYTES = b"c"  # values of another format: raw bytes, their sizes in the counts array
_ZIP_FROM_BYTES = 64  # smaller parts are stored as they are: a frame's header costs more than it saves
_ZSTD_LEVEL = 1
_zstd = threading.local()  # a compressor and a decompressor per thread (neither is thread-safe)


class ArrayPositions(Positions):
    """Positions, each posting's stored as a raw uint32 array rather than a pickled list."""

    def word_values(self, value, analyzer, **kwargs):
        """Whoosh's (term, frequency, weight, encoded positions) of each term; from our
        tokenizers' `term_positions` without a Whoosh token per term, when they have it."""
        if not hasattr(analyzer, "term_positions"):
            yield from super().word_values(value, analyzer, **kwargs)
            return
        boost = self.field_boost
        for text, positions in analyzer.term_positions(value).items():
            yield text, len(positions), len(positions) * boost, self.encode(positions)

    def encode(self, poslist) -> bytes:
        return array("I", poslist).tobytes()

    def decode_positions(self, valuestring: bytes) -> list[int]:
        return np.frombuffer(valuestring, dtype=np.uint32).tolist()

    def decode_frequency(self, valuestring: bytes) -> int:
        return len(valuestring) // 4

    def decode_weight(self, valuestring: bytes) -> float:
        return self.decode_frequency(valuestring) * self.field_boost


class TermCounts(Frequency):
    """Whoosh's Frequency format, fed from our tokenizers' `term_positions` when they have it."""

    def word_values(self, value, analyzer, **kwargs):
        if not hasattr(analyzer, "term_positions"):
            yield from super().word_values(value, analyzer, **kwargs)
            return
        boost = self.field_boost
        for text, positions in analyzer.term_positions(value).items():
            yield text, len(positions), len(positions) * boost, self.encode(len(positions))

    def encode(self, frequency: int) -> bytes:
        """A posting's value: the term's frequency, as Whoosh's Frequency writes it."""
        return pack_uint(frequency)


class ArrayCodec(W3Codec):
    """W3, with postings (not term vectors, which are keyed by bytes) as `TermBatch.records` lays them out."""

    def field_writer(self, storage, segment):
        return ArrayFieldWriter(self, storage, segment)

    def per_document_writer(self, storage, segment):
        return StoredPerDocWriter(self, storage, segment)

    def per_document_reader(self, storage, segment):
        return StoredPerDocReader(storage, segment)

    def postings_writer(self, dbfile, byteids=False):
        if byteids:
            return super().postings_writer(dbfile, byteids=True)
        return ArrayPostingsWriter(dbfile)

    def terms_reader(self, storage, segment):
        """`W3Codec.terms_reader`, of our class, its files read in place."""
        name = segment.make_filename(self.TERMS_EXT)
        postings = open_in_place(storage, segment.make_filename(self.POSTS_EXT))
        return ArrayTermsReader(self, open_in_place(storage, name), storage.file_length(name), postings, name)

    def postings_reader(self, dbfile, terminfo, format_, term=None, scorer=None):
        offset, _length = terminfo.extent()
        return ArrayPostings(dbfile, offset, format_, terminfo, term=term, scorer=scorer)


class ArrayTermsReader(W3TermsReader):
    """W3's term index, remembering the terms it was asked about. Whoosh looks a query's term up
    three times (is it there, its scorer's statistics, its postings), each a hash and a read of
    the on-disk table, and a question asks for a hundred terms: a third of its time at 170,000
    sections. The index is write-once, so what a term's info is never changes: `TERM_INFOS` keeps
    them for every reader of the process (every thread's searcher), keyed by the terms file's name."""

    def __init__(self, codec, dbfile, length: int, postings, name: str):
        super().__init__(codec, dbfile, length, postings)
        self._name = name

    def _info(self, fieldname: str, tbytes: bytes) -> W3TermInfo | None:
        key = (self._name, fieldname, tbytes)
        try:
            return TERM_INFOS[key]
        except KeyError:
            pass
        if fieldname not in self._fieldmap:  # no term of the field in this segment (JaQuAD has no headings)
            return None
        try:
            info = super().term_info(fieldname, tbytes)
        except TermNotFound:
            info = None
        TERM_INFOS.keep(key, info)
        return info

    def __contains__(self, term) -> bool:
        return self._info(*term) is not None

    def term_info(self, fieldname: str, tbytes: bytes) -> W3TermInfo:
        info = self._info(fieldname, tbytes)
        if info is None:
            raise TermNotFound(f"No term {fieldname}:{tbytes!r}")
        return info

    def frequency(self, fieldname: str, tbytes: bytes) -> float:
        return self._present(fieldname, tbytes).weight()

    def doc_frequency(self, fieldname: str, tbytes: bytes) -> int:
        return self._present(fieldname, tbytes).doc_frequency()

    def _present(self, fieldname: str, tbytes: bytes) -> W3TermInfo:
        """The info of a term, or KeyError as W3's raises (which Whoosh's reader turns into 0)."""
        info = self._info(fieldname, tbytes)
        if info is None:
            raise KeyError((fieldname, tbytes))
        return info


class ArrayFieldWriter(W3FieldWriter):
    """W3's field writer, told each posting's field length from whole length columns: Whoosh
    reads a length column one document at a time for every posting it writes (seek, read,
    decode), which was the largest single cost of a reindex's final write. `add_batches` writes
    whole posting lists instead of one posting at a time."""

    def __init__(self, *args):
        super().__init__(*args)
        self._tindex.__class__ = _TermIndexWriter  # made (its header written) by W3's constructor

    def _create_file(self, ext: str) -> StructFile:
        """The terms and postings files, telling their position without asking the OS: Whoosh
        asks three times per term written (an lseek each), a few per cent of a reindex."""
        file = super()._create_file(ext)
        file.file = _PositionCountingFile(file.file)
        return file

    def add_postings(self, schema, lengths, items):
        super().add_postings(schema, _ColumnLengths(lengths) if lengths else None, items)

    def add_batches(self, schema, perdoc: W3PerDocReader, batches: Iterator[TermBatch]) -> None:
        """Write batches of whole posting lists, in field and term order, with W3's statistics:
        each batch's records in one write, its term infos in one array and its terms into the
        term index at once (`_TermIndexWriter`), where W3 makes an object and three writes a term."""
        fieldname: str | None = None
        codes: np.ndarray  # each document's length byte in `fieldname`, set with it
        for batch in batches:
            if batch.fieldname != fieldname:
                if fieldname is not None:
                    self.finish_field()
                fieldname, codes = batch.fieldname, length_codes(perdoc, batch.fieldname)
                self.start_field(fieldname, schema[fieldname])
            records, infos = batch.records(), batch.term_infos(codes)
            sizes = np.fromiter(map(len, records), dtype=np.int64, count=len(records))
            infos["offset"] = self._postfile.tell() + np.cumsum(sizes) - sizes
            infos["length"] = sizes
            self._postfile.write(b"".join(records))
            prefix = pack_ushort(self._fieldid)
            self._tindex.add_sorted([prefix + text for text in batch.texts], infos.tobytes(), _TERM_INFO.itemsize)
        if fieldname is not None:
            self.finish_field()


# `W3TermInfo.to_bytes` of a term whose postings are not inlined, as one row of an array:
# flags, total weight, document frequency, shortest and longest length (as length bytes), highest
# weight, first and last docnum, then the record's place in the postings file.
_TERM_INFO = np.dtype(
    [
        ("flags", "u1"),
        ("weight", ">f4"),
        ("df", ">u4"),
        ("minlength", "u1"),
        ("maxlength", "u1"),
        ("maxweight", ">f4"),
        ("minid", ">u4"),
        ("maxid", ">u4"),
        ("offset", ">i8"),
        ("length", ">i4"),
    ]
)
_ENTRY_HEAD = np.dtype(">i4")  # a hash file entry's key and value sizes (`filetables._lengths`)
_POINTER = np.dtype([("hash", ">u4"), ("position", ">i8")])  # a hash table slot (`filetables._pointer`)


class _TermIndexWriter(OrderedHashWriter):
    """W3's term index (an ordered hash file), written a batch of terms at a time: the same file,
    without W3's two writes and a tuple per term and a write per hash slot."""

    lastkey: bytes  # (set by OrderedHashWriter's constructor)

    def add_sorted(self, keys: list[bytes], values: bytes, value_size: int) -> None:
        """`add` of each key, in increasing order, with its `value_size` bytes of `values`."""
        if not keys:
            return
        if keys[0] <= self.lastkey or any(earlier >= later for earlier, later in pairwise(keys)):
            raise ValueError(f"keys must increase: {self.lastkey!r}..{keys[0]!r}")
        key_sizes = np.fromiter(map(len, keys), dtype=np.int64, count=len(keys))
        head = 2 * _ENTRY_HEAD.itemsize
        entry_sizes = head + key_sizes + value_size
        positions = (self.dbfile.tell() + np.cumsum(entry_sizes) - entry_sizes).tolist()
        head_array = np.empty((len(keys), 2), dtype=_ENTRY_HEAD)
        head_array[:, 0], head_array[:, 1] = key_sizes, value_size
        heads = head_array.tobytes()
        self.dbfile.write(
            b"".join(
                [
                    part
                    for number, key in enumerate(keys)
                    for part in (
                        heads[head * number : head * (number + 1)],
                        key,
                        values[value_size * number : value_size * (number + 1)],
                    )
                ]
            )
        )
        buckets, hashed_key = self.buckets, self.hashfn
        for key, position in zip(keys, positions):
            hashed = hashed_key(key)
            buckets[hashed & 255].append((hashed, position))
        try:
            more = array(self.index.typecode, positions)
        except OverflowError:
            self.index.extend(positions)  # Whoosh widens the array's type
        else:
            self.index.array.extend(more)
        self.lastkey = keys[-1]

    def _write_hashes(self) -> None:
        """`HashWriter._write_hashes`: each bucket's table (twice as many slots as keys, linear
        probing from the hash's slot, (0, 0) empty) in one write."""
        for entries in self.buckets:
            slots = 2 * len(entries)
            self.directory.append((self.dbfile.tell(), slots))
            hashes, positions = [0] * slots, [0] * slots
            for hashed, position in entries:
                slot = (hashed >> 8) % slots
                while positions[slot]:  # no entry is at position 0 (the file's header is)
                    slot = (slot + 1) % slots
                hashes[slot], positions[slot] = hashed, position
            table = np.empty(slots, dtype=_POINTER)
            table["hash"], table["position"] = hashes, positions
            self.dbfile.write(table.tobytes())


class _PositionCountingFile:
    """A file being written from start to end, its position counted from what is written."""

    def __init__(self, file):
        self._file = file
        self._position = file.tell()

    def write(self, data) -> int:
        written = self._file.write(data)
        self._position += written
        return written

    def tell(self) -> int:
        return self._position

    def seek(self, offset: int, whence: int = 0) -> int:
        self._position = self._file.seek(offset, whence)
        return self._position

    def __getattr__(self, name: str):
        return getattr(self._file, name)


class _ColumnLengths:
    """`doc_field_length` as a W3 per-document reader answers it, from each field's whole column."""

    def __init__(self, perdoc: W3PerDocReader):
        self.perdoc = perdoc
        self.columns: dict[str, list[int]] = {}

    def doc_field_length(self, docnum: int, fieldname: str, default: int = 0) -> int:
        column = self.columns.get(fieldname)
        if column is None:
            column = self.columns[fieldname] = _LENGTHS[length_codes(self.perdoc, fieldname)].tolist()
        return column[docnum] if docnum < len(column) else default


def length_codes(perdoc: W3PerDocReader, fieldname: str) -> np.ndarray:
    """Every document's field length as Whoosh stores it, one byte each (0: none), in one read."""
    codes = np.zeros(perdoc.doc_count_all(), dtype=np.uint8)
    column = length_column(perdoc, fieldname, LENGTHS_COLUMN)
    if column is None:
        return codes
    values = fixed_column_values(column, len(codes), np.uint8, fill=0)
    assert values is not None, "a length column is a fixed-size column"
    return values


_LENGTHS = np.array([byte_to_length(code) for code in range(256)], dtype=np.int64)


class ArrayPostingsWriter(W3PostingsWriter):
    """Collects a term's postings, then writes them as one record (see the module docstring)."""

    def __init__(self, postfile):
        self._postfile = postfile
        self._terminfo = None

    def start_postings(self, format_, terminfo) -> None:
        if self._terminfo is not None:
            raise RuntimeError("start_postings called inside a term")
        self._format = format_
        self._terminfo = terminfo
        self._ids = array("I")
        self._weights = array("f")  # float32, as W3 stores weights
        self._values: list[bytes] = []
        self._lengths = array("I")

    def add_posting(self, id_: int, weight: float, vbytes: bytes, length: int | None = None) -> None:
        self._ids.append(id_)
        self._weights.append(weight)
        self._values.append(vbytes or b"")  # a merge passes on W3's None for "no value"
        if length:
            self._lengths.append(length)

    def finish_postings(self):
        terminfo = self._terminfo
        terminfo.add_block(self)  # the whole list as one block: df, total weight, lengths, ids
        offset = self._postfile.tell()
        self._postfile.write(TermBatch.of_one_term(self._ids, self._weights, self._values, self._format).records()[0])
        terminfo.set_extent(offset, self._postfile.tell() - offset)
        self._terminfo = None
        return terminfo

    # What `W3TermInfo.add_block` asks of a block.
    def __len__(self) -> int:
        return len(self._ids)

    def min_id(self) -> int:
        return self._ids[0]

    def max_id(self) -> int:
        return self._ids[-1]

    def min_length(self) -> int | None:
        return min(self._lengths) if self._lengths else None

    def max_length(self) -> int:
        return max(self._lengths) if self._lengths else 0

    def max_weight(self) -> float:
        return max(self._weights)


_NO_LENGTH = 256  # above every length byte: the shortest of a term none of whose documents has a length


@dataclass
class TermBatch:
    """Consecutive terms of one field with their whole posting lists, one after another in flat
    arrays: term i's postings are [bounds[i], bounds[i + 1]), its values (positions, or bytes of
    another format, `counts` per posting) [value_bounds[i], value_bounds[i + 1])."""

    fieldname: str
    texts: list[bytes]
    bounds: np.ndarray  # int64, len(texts) + 1
    ids: np.ndarray  # uint32, ascending within each term
    weights: np.ndarray  # float32
    counts: np.ndarray | None = None  # uint32
    values: np.ndarray | None = None  # uint32 positions, or uint8 bytes
    value_bounds: np.ndarray | None = None

    @classmethod
    def of_one_term(cls, ids: array, weights: array, values: list[bytes], format_) -> TermBatch:
        """One term's postings as Whoosh hands them to a postings writer (`ArrayPostingsWriter`:
        docnums, float32 weights, one value each as `format_` encodes it), as a batch of one."""
        blob = b"".join(values)
        counts: np.ndarray | None
        stored: np.ndarray | None
        if isinstance(format_, ArrayPositions):  # counts of positions, and the positions (uint32)
            counts = np.fromiter((len(value) >> 2 for value in values), dtype=np.uint32, count=len(values))
            stored = np.frombuffer(blob, dtype=np.uint32)  # as `ArrayPositions.encode` wrote them
        elif blob:  # any other format's values: their sizes, and their bytes
            counts = np.fromiter(map(len, values), dtype=np.uint32, count=len(values))
            stored = np.frombuffer(blob, dtype=np.uint8)
        else:  # no values at all (Existence)
            counts = stored = None
        return cls(
            "",
            [b""],
            np.array([0, len(ids)], dtype=np.int64),
            np.array(ids, dtype=np.uint32),
            np.array(weights, dtype=np.float32),
            counts,
            stored,
            None if stored is None else np.array([0, len(stored)], dtype=np.int64),
        )

    def records(self) -> list[bytes]:
        """Each term's record, laid out as the module docstring says: the one encoder of the
        format, whether a whole batch comes from the pool (`add_batches`) or one term from
        Whoosh's writer (`of_one_term`). Every per-term decision (each array's type) is taken for
        the whole batch at once:
        - gaps, and counts and positions, in the narrowest unsigned type that holds the term's
          largest (uint8, uint16 or uint32);
        - weights absent when all are 1.0; else as whole numbers (in the narrowest type) when all
          are whole and not negative (counts × a whole boost); else as float32;
        - another format's values as their bytes, their sizes as the counts."""
        starts, ends = self.bounds[:-1], self.bounds[1:]
        ids = self.ids.astype(np.int64)
        gaps = np.diff(ids, append=ids[-1:])
        gaps[ends - 1] = 0  # not a gap: from one term's last posting to the next term's first
        weights = self.weights.astype(np.float64)
        ones = np.add.reduceat(weights != 1.0, starts) == 0
        not_whole = ~np.isfinite(weights) | (weights < 0) | (weights != np.floor(weights))
        whole = np.add.reduceat(not_whole, starts) == 0
        gap_part = _Narrowed(gaps, np.maximum.reduceat(gaps, starts))
        weight_part = _Narrowed(weights.astype(np.int64), np.maximum.reduceat(weights, starts).astype(np.int64))
        floats = self.weights.astype("<f4").tobytes()
        if self.counts is not None:
            all_values, value_bounds = self.values, self.value_bounds
            assert all_values is not None and value_bounds is not None  # counts always come with their values
            count_part = _Narrowed(self.counts, np.maximum.reduceat(self.counts, starts))
            value_starts = value_bounds[:-1]
            if all_values.dtype == np.uint8:
                value_part = None
                blob = all_values.tobytes()
            else:
                value_part = _Narrowed(all_values, np.maximum.reduceat(all_values, value_starts))
            value_limits = value_bounds.tolist()
        # Per-term values as lists: reading numpy scalars one at a time costs more than this.
        first_ids = ids[starts].tolist()
        records = []
        ones, whole = ones.tolist(), whole.tolist()
        for term, (start, end) in enumerate(zip(starts.tolist(), ends.tolist())):
            parts: list[tuple[bytes, bytes] | None] = [gap_part.part(term, start, end - 1) if end - start > 1 else None]
            if ones[term]:
                parts.append(None)
            elif whole[term]:
                parts.append(weight_part.part(term, start, end))
            else:
                parts.append((b"f", floats[4 * start : 4 * end]))
            if self.counts is None:  # no counts and no values: four type codes all the same
                parts.append(None)
                value_type, values = _ABSENT, b""
            else:
                parts.append(count_part.part(term, start, end))
                low, high = value_limits[term], value_limits[term + 1]
                if value_part is None:
                    value_type, values = _BYTES, blob[low:high]
                else:
                    value_type, values = value_part.part(term, low, high)
            records.append(_packed(end - start, first_ids[term], parts, value_type, values))
        return records

    def term_infos(self, length_codes: np.ndarray) -> np.ndarray:
        """Each term's `_TERM_INFO` row but for its record's place, W3's statistics of the whole
        batch at once. `length_codes`: each document's field length as a length byte."""
        starts, ends = self.bounds[:-1], self.bounds[1:]
        ids = self.ids.astype(np.int64)
        weights = self.weights.astype(np.float64)
        infos = np.zeros(len(self.texts), dtype=_TERM_INFO)
        infos["weight"] = np.add.reduceat(weights, starts)
        infos["df"] = ends - starts
        # Length bytes grow with the lengths they stand for, so a term's shortest and longest
        # lengths are its smallest and largest bytes; 0 stands for no length (W3's None).
        codes = length_codes[ids].astype(np.int16)
        shortest = np.minimum.reduceat(np.where(codes > 0, codes, _NO_LENGTH), starts)
        infos["minlength"] = np.where(shortest == _NO_LENGTH, 0, shortest)
        infos["maxlength"] = np.maximum.reduceat(codes, starts)
        infos["maxweight"] = np.maximum.reduceat(weights, starts)
        infos["minid"], infos["maxid"] = ids[starts], ids[ends - 1]
        return infos


class _Narrowed:
    """A batch's unsigned integers cast once to each type some term needs (the narrowest that
    holds its largest), so each term's part is a slice of bytes."""

    def __init__(self, values: np.ndarray, maxima: np.ndarray):
        self.values = values
        self.codes = np.where(maxima < 1 << 8, 0, np.where(maxima < 1 << 16, 1, 2)).tolist()
        self.cast: dict[int, bytes] = {}

    def part(self, term: int, start: int, end: int) -> tuple[bytes, bytes]:
        code = self.codes[term]
        if code not in self.cast:
            self.cast[code] = self.values.astype(_dtype("BHI"[code])).tobytes()
        width = 1 << code
        return b"BHI"[code : code + 1], self.cast[code][width * start : width * end]


def _packed(count: int, first: int, parts: list[tuple[bytes, bytes] | None], value_type: bytes, blob: bytes) -> bytes:
    """The record: header, part 1 (gaps, weights, counts: each (type code, bytes) or absent), part 2."""
    types = b"".join(_ABSENT if part is None else part[0] for part in parts) + value_type
    part1, zipped1 = _maybe_compressed(b"".join(part[1] for part in parts if part is not None))
    part2, zipped2 = _maybe_compressed(blob)
    flags = (_PART1_ZSTD if zipped1 else 0) | (_PART2_ZSTD if zipped2 else 0)
    return _HEADER.pack(count, first, types, flags, len(part1)) + part1 + part2


def _dtype(type_code: str) -> np.dtype:
    return np.dtype("<" + type_code)  # stored little-endian whatever the machine (array codes)


def _maybe_compressed(part: bytes) -> tuple[bytes, bool]:
    if len(part) < _ZIP_FROM_BYTES:
        return part, False
    if not hasattr(_zstd, "compressor"):
        _zstd.compressor = zstandard.ZstdCompressor(level=_ZSTD_LEVEL)
    compressed = _zstd.compressor.compress(part)
    return (compressed, True) if len(compressed) < len(part) else (part, False)


def _decompressed(part: bytes, flags: int, zlib_flag: int, zstd_flag: int) -> bytes:
    """A part as it was before `_maybe_compressed` (or an earlier version's zlib)."""
    if flags & zstd_flag:
        if not hasattr(_zstd, "decompressor"):
            _zstd.decompressor = zstandard.ZstdDecompressor()
        return _zstd.decompressor.decompress(part)
    return zlib.decompress(part) if flags & zlib_flag else part


@dataclass
class PostingArrays:
    """A term's postings in one segment: docnums, weights, and where the field has them, each
    posting's positions (`positions[starts[i]:starts[i + 1]]`)."""

    ids: np.ndarray  # int64, ascending
    weights: np.ndarray | None  # float64; None when every weight is 1.0
    starts: np.ndarray | None
    positions: np.ndarray | None = None  # unsigned, as stored; only `with_positions` reads them


# Both in the process's one cache registry (`memory.py`). Decoding a list (unzip, gaps summed,
# types widened) is most of reading a term, and the same terms come back query after query: the
# words of a day's news, the common words of every question. `DECODED_LISTS` is shared by every
# searcher of the process, keyed by a segment file's name, the list's offset in it and "arrays"
# or "positions": segments are written once under a random name, so a name and an offset always
# mean the same bytes, whichever searcher or generation reads them.
DECODED_LISTS = memory.RecentEntries()
TERM_INFOS = memory.SmallEntries()  # (terms file, field, term) → its info, or None when it is not there
memory.register("decoded posting lists", DECODED_LISTS, memory.QUERY)
memory.register("term infos", TERM_INFOS, memory.QUERY)


class ArrayPostings(ListMatcher):
    """A term's postings as Whoosh matchers read them: the arrays, decoded on first use (the
    positions only when asked for)."""

    def __init__(self, postfile, offset: int, format_, terminfo, term=None, scorer=None, position: int = 0):
        self._postfile = postfile
        self._offset = offset
        self._format = format_
        self._terminfo = terminfo
        self._term = term
        self._scorer = scorer
        self._i = position
        self._all_weights = None
        self._count, self._first, self._types, self._flags, self._part1_size = _HEADER.unpack(
            postfile.get(offset, _HEADER.size)
        )

    @cached_property
    def arrays(self) -> PostingArrays:
        """Docnums and weights; positions (`with_positions`) are a second, separate read."""
        key = (self._postfile._name, self._offset, "arrays")
        kept = DECODED_LISTS.get(key)
        if kept is not None:
            return PostingArrays(*kept)
        arrays = self._decoded_arrays()
        kept = (arrays.ids, arrays.weights, arrays.starts)  # a plain tuple: see `memory.RecentEntries`
        DECODED_LISTS.put(key, kept, sum(part.nbytes for part in kept if part is not None))
        return arrays

    def _decoded_arrays(self) -> PostingArrays:
        gap_type, weight_type, count_type, _ = (chr(code) for code in self._types)
        part1 = self._postfile.get(self._offset + _HEADER.size, self._part1_size)
        read = _Reader(_decompressed(part1, self._flags, _PART1_ZIPPED, _PART1_ZSTD))
        ids = np.empty(self._count, dtype=np.int64)
        ids[0] = self._first
        if self._count > 1:
            gaps = read.array(gap_type, self._count - 1)
            assert gaps is not None  # stored for every list of more than one posting
            np.cumsum(gaps, out=ids[1:])
            ids[1:] += self._first
        weights = read.array(weight_type, self._count)
        counts = read.array(count_type, self._count)
        starts = None if counts is None else np.concatenate(([0], np.cumsum(counts, dtype=np.int64)))
        return PostingArrays(ids, None if weights is None else weights.astype(np.float64), starts)

    def read_from_disk(self) -> PostingArrays:
        """The arrays and positions decoded from the file now, not from `DECODED_LISTS`: what
        `midashi check` must see is what is on disk, not what an earlier search decoded."""
        arrays = self._decoded_arrays()
        positions = self._values_array() if self.has_array_positions() else None
        return PostingArrays(arrays.ids, arrays.weights, arrays.starts, positions)

    def has_array_positions(self) -> bool:
        """Whether `with_positions` can read this term's positions (its field's format is ArrayPositions)."""
        return self._types[3:] not in (_ABSENT, _BYTES)

    def with_positions(self) -> PostingArrays:
        """The arrays with every posting's positions (the field's format must have positions):
        as stored when they are arrays (`has_array_positions`), else decoded by the field's format
        posting by posting (a schema with another positions format, Whoosh's own say), so that a
        phrase is checked by `scoring.in_sequence` whatever the format."""
        return self._positioned

    @cached_property
    def _positioned(self) -> PostingArrays:
        if not self.has_array_positions():
            return self._positions_by_format()
        key = (self._postfile._name, self._offset, "positions")
        positions = DECODED_LISTS.get(key)
        if positions is None:
            positions = self._values_array()  # as stored (uint8 to uint32): read, not converted
            DECODED_LISTS.put(key, positions, positions.nbytes)
        arrays = self.arrays  # shared by every reader of the list: a new record, not changed in place
        return PostingArrays(arrays.ids, arrays.weights, arrays.starts, positions)

    def _positions_by_format(self) -> PostingArrays:
        """`with_positions` of a field whose format is not ArrayPositions: each posting's value
        decoded by the format (not kept in `DECODED_LISTS`: no schema of ours has such a field)."""
        if self._values is None:
            raise ValueError(f"{self._format!r} stores no positions")
        decoded = [self._format.decode_positions(value) for value in self._values]
        counts = np.fromiter(map(len, decoded), dtype=np.int64, count=len(decoded))
        positions = np.fromiter(chain.from_iterable(decoded), dtype=np.uint32, count=int(counts.sum()))
        arrays = self.arrays
        return PostingArrays(arrays.ids, arrays.weights, np.concatenate(([0], np.cumsum(counts))), positions)

    def _values_array(self) -> np.ndarray:
        value_type = chr(self._types[3])
        start = self._offset + _HEADER.size + self._part1_size
        size = self._terminfo_extent_end() - start
        part2 = _decompressed(self._postfile.get(start, size), self._flags, _PART2_ZIPPED, _PART2_ZSTD)
        return np.frombuffer(part2, dtype=np.uint8 if value_type == _BYTES.decode() else _dtype(value_type))

    def _terminfo_extent_end(self) -> int:
        offset, length = self._terminfo.extent()
        return offset + (length[0] if isinstance(length, tuple) else length)  # W3 unpacks it as a tuple

    # What Whoosh asks of a matcher, when it walks these postings itself.
    def id(self) -> int:
        return int(self.arrays.ids[self._i])

    def weight(self) -> float:
        weights = self.arrays.weights
        return 1.0 if weights is None else float(weights[self._i])

    def all_ids(self):
        return iter(self.arrays.ids.tolist())

    @cached_property
    def _values(self) -> list[bytes] | None:
        """Each posting's value as its format encodes it."""
        starts = self.arrays.starts
        if starts is None:
            return None
        if chr(self._types[3]) == _BYTES.decode():
            blob = self._values_array().tobytes()
        else:  # positions, re-encoded as ArrayPositions encodes them
            blob = self._values_array().astype(np.uint32).tobytes()
            starts = starts * 4
        bounds = starts.tolist()
        return [blob[begin:end] for begin, end in pairwise(bounds)]

    def value(self) -> bytes | None:
        return self._values[self._i] if self._values is not None else None  # None as W3 gives it

    def all_items(self):
        values = self._values
        return zip(self.arrays.ids.tolist(), values if values is not None else [None] * self._count)

    def is_active(self) -> bool:
        return self._i < self._count

    def posting_count(self) -> int:
        """How many postings the list holds, from its header: nothing is decoded."""
        return self._count

    def skip_to(self, id: int) -> None:
        if not self.is_active():
            raise ReadTooFar
        self._i = max(self._i, int(np.searchsorted(self.arrays.ids, id)))

    def skip_to_quality(self, minquality: float) -> int:
        if self.block_quality() <= minquality:  # the whole list is one block
            self._i = self._count
            return 1
        return 0

    def block_max_weight(self) -> float:
        return self._terminfo.max_weight()  # ListMatcher takes max() of every weight each time

    def replace(self, minquality=0):
        if not self.is_active() or (minquality and self.max_quality() < minquality):
            return NullMatcher()
        return self

    def copy(self) -> ArrayPostings:
        """A twin at the same place, sharing what is decoded (never changed in place)."""
        twin = ArrayPostings.__new__(ArrayPostings)
        twin.__dict__.update(self.__dict__)
        return twin


class _Reader:
    """Consecutive arrays of known types and lengths out of one buffer."""

    def __init__(self, buffer: bytes):
        self.buffer = buffer
        self.at = 0

    def array(self, type_code: str, length: int) -> np.ndarray | None:
        if type_code == _ABSENT.decode():
            return None
        values = np.frombuffer(self.buffer, dtype=_dtype(type_code), count=length, offset=self.at)
        self.at += values.nbytes
        return values
