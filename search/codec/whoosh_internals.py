"""Every private Whoosh name Midashi relies on, listed in one place.

whoosh-reloaded is pinned (2.7.5), but its private names are not a promise: a release may rename
any of them. So each one is used only inside `search/codec/`, and each is listed in
`PRIVATE_NAMES` with the reason. `tests/test_codec.py` checks every entry against the installed
Whoosh and fails by name when one is gone, and fails when code outside `search/codec/` reaches
into a Whoosh object's private names.

Code outside the codec reads Whoosh's insides only through the functions below.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from whoosh.codec.whoosh3 import _lenfield

__all__ = [
    "PRIVATE_NAMES",
    "PrivateName",
    "compiled_range",
    "field_b",
    "fixed_column_values",
    "index_segments",
    "length_column",
    "mapped_bytes",
    "numeric_type_code",
    "per_document_reader",
    "postings_reader",
    "range_terms",
    "term_info",
    "terms_reader",
]


@dataclass(frozen=True)
class PrivateName:
    """`owner.name`: `owner` a Whoosh class (`module.Class`) or module; `why` says what for."""

    owner: str
    name: str
    why: str


PRIVATE_NAMES: tuple[PrivateName, ...] = (
    # Reading an index (scoring, the reranker, `midashi check`): straight to the term index and
    # columns, not through Whoosh's per-posting and per-document layers.
    PrivateName("whoosh.index.FileIndex", "_segments", "check: each segment of a generation, one by one"),
    PrivateName("whoosh.reading.SegmentReader", "_terms", "scoring, check: a segment's term index"),
    PrivateName("whoosh.reading.SegmentReader", "_perdoc", "scoring, rerank: a segment's length columns"),
    PrivateName("whoosh.codec.whoosh3.W3TermsReader", "_codec", "check: the codec that reads a posting list"),
    PrivateName("whoosh.codec.whoosh3.W3TermsReader", "_postfile", "check: the postings file"),
    PrivateName("whoosh.codec.whoosh3.W3TermsReader", "_fieldmap", "postings: field names to term-key prefixes"),
    PrivateName("whoosh.codec.whoosh3.W3PerDocReader", "_cached_reader", "postings: a length column, read whole"),
    PrivateName("whoosh.codec.whoosh3.W3PerDocReader", "_get_column_file", "stored: the stored fields' column"),
    PrivateName("whoosh.codec.whoosh3.W3PerDocReader", "_segment", "stored: the segment being read"),
    PrivateName("whoosh.codec.whoosh3.W3PerDocReader", "_storage", "stored: the segment's storage"),
    PrivateName("whoosh.codec.whoosh3", "_lenfield", "postings: the name of a field's length column"),
    PrivateName("whoosh.columns.FixedBytesColumn.Reader", "_dbfile", "a fixed-size column's bytes, read whole"),
    PrivateName("whoosh.columns.FixedBytesColumn.Reader", "_basepos", "where a fixed-size column starts"),
    PrivateName("whoosh.columns.FixedBytesColumn.Reader", "_count", "how many values a column holds"),
    PrivateName("whoosh.columns.FixedBytesColumn.Reader", "_fixedlen", "a fixed-size column's value size"),
    PrivateName("whoosh.columns.FixedBytesColumn.Reader", "_default", "a column's value past its end"),
    PrivateName("whoosh.columns.NumericColumn.Reader", "_typecode", "a numeric column's struct type code"),
    PrivateName("whoosh.query.ranges.NumericRange", "_compile_query", "scoring: a date range's terms"),
    PrivateName("whoosh.query.ranges.TermRange", "_btexts", "scoring: the terms a range covers"),
    PrivateName("whoosh.scoring.BM25F", "_field_B", "scoring: a field's own B"),
    PrivateName("whoosh.filedb.compound.CompoundStorage", "_source", "mapped: the segment file's memory map"),
    PrivateName("whoosh.filedb.compound.CompoundStorage", "_file", "mapped: the segment file"),
    PrivateName("whoosh.filedb.structfile.BufferFile", "_buf", "mapped: a file read in place"),
    PrivateName("whoosh.filedb.structfile.StructFile", "_name", "mapped, postings: a file's name"),
    # Writing an index: the array posting format, written a posting list at a time.
    PrivateName("whoosh.codec.whoosh3.W3FieldWriter", "_create_file", "postings: files that count their bytes"),
    PrivateName("whoosh.codec.whoosh3.W3FieldWriter", "_tindex", "postings: the term index being written"),
    PrivateName("whoosh.codec.whoosh3.W3FieldWriter", "_postfile", "postings: the postings file being written"),
    PrivateName("whoosh.codec.whoosh3.W3FieldWriter", "_fieldid", "postings: the field's term-key prefix"),
    PrivateName("whoosh.codec.whoosh3.W3PostingsWriter", "_postfile", "postings: set without W3's constructor"),
    PrivateName("whoosh.codec.whoosh3.W3PostingsWriter", "_format", "postings: the field's format"),
    PrivateName("whoosh.codec.whoosh3.W3PostingsWriter", "_terminfo", "postings: the term's statistics"),
    PrivateName("whoosh.codec.whoosh3.W3PostingsWriter", "_ids", "postings: the list being collected"),
    PrivateName("whoosh.codec.whoosh3.W3PostingsWriter", "_weights", "postings: the list being collected"),
    PrivateName("whoosh.codec.whoosh3.W3PostingsWriter", "_values", "postings: the list being collected"),
    PrivateName("whoosh.filedb.filetables.HashWriter", "_write_hashes", "postings: the hash tables in one write"),
    PrivateName("whoosh.filedb.filetables", "_lengths", "postings: a hash entry's head, copied as a dtype"),
    PrivateName("whoosh.filedb.filetables", "_pointer", "postings: a hash slot, copied as a dtype"),
    PrivateName("whoosh.matching.mcore.ListMatcher", "_all_weights", "postings: ListMatcher's one weight for all"),
    PrivateName("whoosh.matching.mcore.ListMatcher", "_i", "postings: the matcher's place in its list"),
    PrivateName("whoosh.matching.mcore.ListMatcher", "_ids", "postings: the list a matcher walks"),
    PrivateName("whoosh.matching.mcore.ListMatcher", "_weights", "postings: the list's weights"),
    PrivateName("whoosh.matching.mcore.ListMatcher", "_values", "postings: the list's values"),
    PrivateName("whoosh.matching.mcore.ListMatcher", "_format", "postings: the field's format"),
    PrivateName("whoosh.matching.mcore.ListMatcher", "_scorer", "postings: the term's scorer"),
    PrivateName("whoosh.matching.mcore.ListMatcher", "_term", "postings: the term matched"),
    PrivateName("whoosh.matching.mcore.ListMatcher", "_terminfo", "postings: the term's statistics"),
    PrivateName("whoosh.columns.ColumnWriter", "_dbfile", "stored: the column file being written"),
    PrivateName("whoosh.codec.whoosh3.W3PerDocWriter", "_create_column", "stored: Zstandard stored fields"),
    PrivateName("whoosh.writing.SegmentWriter", "_added", "segments, parallel: whether it holds documents"),
    PrivateName("whoosh.writing.SegmentWriter", "_tempstorage", "segments: where its pool's runs go"),
    PrivateName("whoosh.writing.SegmentWriter", "_check_state", "segments: Whoosh's own writer checks"),
    PrivateName("whoosh.writing.SegmentWriter", "_check_fields", "segments: Whoosh's own field checks"),
    PrivateName("whoosh.writing.SegmentWriter", "_flush_segment", "segments: postings written as arrays"),
    PrivateName("whoosh.writing.SegmentWriter", "_merge_segments", "parallel: commit with workers' segments"),
    PrivateName("whoosh.writing.SegmentWriter", "_finalize_segment", "parallel: a worker's segment"),
    PrivateName("whoosh.writing.SegmentWriter", "_close_segment", "parallel: an empty writer's files"),
    PrivateName("whoosh.writing.SegmentWriter", "_commit_toc", "parallel: one table of contents for all"),
    PrivateName("whoosh.writing.SegmentWriter", "_finish", "parallel: the lock and temporary files"),
)


def index_segments(index) -> list:
    """The segments of a Whoosh `FileIndex`, from its table of contents."""
    return index._segments()


def terms_reader(segment_reader):
    """A segment reader's term index (an `ArrayTermsReader` for Midashi's codec)."""
    return segment_reader._terms


def per_document_reader(segment_reader):
    """A segment reader's per-document reader: its columns, lengths and stored fields."""
    return segment_reader._perdoc


def term_info(terms, fieldname: str, btext: bytes):
    """A term's statistics in one segment's term index (Midashi's `ArrayTermsReader`, which
    remembers each it looked up), or None when the segment lacks it."""
    return terms._info(fieldname, btext)


def postings_reader(terms, info, field_format):
    """A term's posting list, as the term index's codec reads it from its postings file."""
    return terms._codec.postings_reader(terms._postfile, info, field_format)


def compiled_range(query, reader):
    """The terms query a numeric or date range stands for: a Term, a TermRange or an OR of them."""
    return query._compile_query(reader)


def range_terms(query, reader) -> list[bytes]:
    """The index terms a `TermRange` covers."""
    return list(query._btexts(reader))


def field_b(weighting, fieldname: str) -> float:
    """BM25F's length normalisation B for a field (its own, or the weighting's default)."""
    return weighting._field_B.get(fieldname, weighting.B)


def mapped_bytes(storage) -> memoryview | None:
    """The memory-mapped bytes of a compound segment file, None when it is not mapped."""
    source = getattr(storage, "_source", None)
    return None if source is None else memoryview(source)


def fixed_column_values(column_reader, count: int, dtype, fill=None) -> np.ndarray | None:
    """Every value of a fixed-size column reader (`FixedBytesColumn` or `NumericColumn`), read in
    one go: Whoosh reads a column one value at a time. `dtype` is one stored value's; documents
    past the column's end get `fill`, or the column's default. None for another kind of column."""
    try:
        stored_count = column_reader._count
        stored = column_reader._dbfile.get(column_reader._basepos, stored_count * column_reader._fixedlen)
        default = column_reader._default if fill is None else fill
    except AttributeError:
        return None
    values = np.full(count, default, dtype=np.result_type(dtype))
    values[:stored_count] = np.frombuffer(stored, dtype=dtype)
    return values


def numeric_type_code(column_reader) -> str:
    """A numeric column reader's struct type code (`i`, `Q`, ...), as numpy reads it big-endian."""
    return ">" + column_reader._typecode


def length_column(perdoc, fieldname: str, column_type):
    """A field's length column in one segment (one byte a document), None when it has none."""
    return perdoc._cached_reader(_lenfield(fieldname), column_type)
