"""The array posting format holds exactly what Whoosh's own W3 format holds, and Whoosh reads it."""

from __future__ import annotations

import io
import uuid
import zlib
from array import array
from itertools import islice, pairwise

import numpy as np
import pytest
from whoosh import index as whoosh_index
from whoosh.codec import whoosh3
from whoosh.codec.whoosh3 import W3Codec
from whoosh.formats import Existence
from whoosh.qparser import QueryParser

from search import memory
from search.codec import postings, stored
from search.codec.mapped import _BufferReader
from search.codec.postings import (
    DECODED_LISTS,
    ArrayCodec,
    ArrayPositions,
    ArrayPostings,
    TermBatch,
    TermCounts,
)
from search.codec.schema import build_schema, section_documents
from search.codec.segments import ArraySegmentWriter
from search.sources.articles import Article
from search.sources.readers import read_corpus
from tests.conftest import CORPUS

LIVEDOOR_ARTICLES = 250


@pytest.fixture(scope="module", params=["generated", pytest.param("livedoor", marks=pytest.mark.livedoor)])
def documents(request) -> list[dict]:
    """The sample article and the generated corpus (tests/fork_corpus.py: everywhere) or 250
    livedoor articles (where ../shared has them), as section documents."""
    if request.param == "generated":
        articles = read_corpus([CORPUS, request.getfixturevalue("generated_news")])
    else:
        articles = islice(read_corpus([CORPUS, request.getfixturevalue("livedoor_tarball")]), LIVEDOOR_ARTICLES + 1)
    return [document for article in articles if isinstance(article, Article) for document in section_documents(article)]


def _index(folder, documents: list[dict], codec, segments: int = 1):
    """The same documents, written by `codec` in `segments` commits."""
    ix = whoosh_index.create_in(str(folder), build_schema())
    size = -(-len(documents) // segments)
    for start in range(0, len(documents), size):
        writer = ix.writer(codec=codec, merge=False)
        for document in documents[start : start + size]:
            writer.add_document(**document)
        writer.commit(merge=False)
    return ix


def _every_posting(ix) -> list[tuple]:
    with ix.reader() as reader:
        return list(reader.iter_postings())


def _every_term_statistic(ix) -> dict:
    with ix.reader() as reader:
        return {term: _statistics(reader.term_info(*term)) for term in reader.all_terms()}


def _statistics(info) -> tuple:
    return (
        info.doc_frequency(),
        info.weight(),
        info.min_length(),
        info.max_length(),
        info.max_weight(),
        info.min_id(),
        info.max_id(),
    )


@pytest.fixture(scope="module")
def w3_and_arrays(documents, tmp_path_factory):
    w3 = _index(tmp_path_factory.mktemp("w3"), documents, W3Codec())
    arrays = _index(tmp_path_factory.mktemp("arrays"), documents, ArrayCodec())
    return w3, arrays


def test_every_posting_reads_back_as_whoosh_wrote_it(w3_and_arrays):
    w3, arrays = w3_and_arrays
    expected, actual = _every_posting(w3), _every_posting(arrays)
    assert len(actual) > 20_000
    assert actual == expected  # (field, term, docnum, weight, positions or value) for every posting
    with arrays.reader() as reader:  # a long list: compressed (Zstandard)
        assert reader.postings("body", "日本")._flags & postings._PART1_ZSTD


def test_every_term_keeps_whooshs_statistics(w3_and_arrays):
    w3, arrays = w3_and_arrays
    assert _every_term_statistic(arrays) == _every_term_statistic(w3)


@pytest.mark.parametrize("spilled_runs", [0, 3])
def test_the_array_pool_writes_what_whooshs_pool_writes(documents, w3_and_arrays, tmp_path, spilled_runs):
    # A quarter of the postings a run: the pool spills sorted runs and merges them term by term.
    w3, _ = w3_and_arrays
    spill_postings = len(_every_posting(w3)) // (spilled_runs + 1) if spilled_runs else 10**9
    ix = whoosh_index.create_in(str(tmp_path), build_schema())
    writer = ArraySegmentWriter(ix, spill_postings=spill_postings)
    for document in documents:
        writer.add_document(**document)
    runs = writer.pool.runs[:]
    writer.commit(merge=False)
    assert len(runs) >= spilled_runs and bool(runs) == bool(spilled_runs)
    assert _every_posting(ix) == _every_posting(w3)
    assert _every_term_statistic(ix) == _every_term_statistic(w3)
    with ix.reader() as ours, w3.reader() as theirs:
        assert list(ours.all_stored_fields()) == list(theirs.all_stored_fields())
        for fieldname in ("title", "heading", "body", "parts", "synonyms", "fallback"):
            assert ours.field_length(fieldname) == theirs.field_length(fieldname)
            assert [ours.doc_field_length(d, fieldname) for d in range(ours.doc_count_all())] == [
                theirs.doc_field_length(d, fieldname) for d in range(theirs.doc_count_all())
            ]
    assert not list(tmp_path.glob("*.tmp"))  # the spilled runs are gone


def test_whole_batches_write_the_term_index_and_postings_a_term_at_a_time_writes(documents, w3_and_arrays, tmp_path):
    # The pool writes each batch of terms at once (records, term infos, hash entries, hash
    # tables); Whoosh's writer hands our codec one term at a time. Same bytes either way.
    _, one_at_a_time = w3_and_arrays
    ix = whoosh_index.create_in(str(tmp_path), build_schema())
    writer = ArraySegmentWriter(ix)
    for document in documents:
        writer.add_document(**document)
    writer.commit(merge=False)
    batched, expected = _term_files(ix), _term_files(one_at_a_time)
    assert len(batched["trm"]) > 1 << 16  # terms past 64 KB: the key positions' array is widened
    assert batched == expected


def _term_files(ix) -> dict[str, bytes]:
    """The bytes of the one segment's term index and postings files."""
    [segment] = ix._segments()
    files = segment.open_compound_file(ix.storage) if segment.is_compound() else ix.storage
    return {
        name.rsplit(".", 1)[1]: files.open_file(name).read() for name in files.list() if name.endswith((".trm", ".pst"))
    }


def test_merged_segments_hold_the_same_postings(documents, w3_and_arrays, tmp_path):
    w3, _ = w3_and_arrays
    ix = _index(tmp_path, documents, ArrayCodec(), segments=3)
    assert len(ix._segments()) == 3
    ix.writer(codec=ArrayCodec()).commit(optimize=True)  # Whoosh's merge reads our postings back
    [segment] = ix._segments()
    assert type(segment.codec()) is ArrayCodec
    assert _every_posting(ix) == _every_posting(w3)


class _Written:
    """Records one after another, as a postings file `ArrayPostings` reads (`get`), under a name
    of its own (`DECODED_LISTS` keeps what it decodes by file name and offset)."""

    def __init__(self, records: list[bytes]):
        self._name = f"records-{uuid.uuid4()}.pst"
        self.data = b"".join(records)
        self.extents = []
        offset = 0
        for record in records:
            self.extents.append((offset, len(record)))
            offset += len(record)

    def get(self, offset: int, size: int) -> bytes:
        return self.data[offset : offset + size]


class _Extent:
    def __init__(self, offset: int, length: int):
        self.offset, self.length = offset, length

    def extent(self) -> tuple[int, int]:
        return self.offset, self.length


# Terms at the edges of each choice the encoder makes: one posting (no gaps), gaps, counts and
# positions past uint8 and uint16, weights all 1.0, whole, fractional; long enough to be compressed.
POSTINGS = {
    "one posting": ([7], [1.0], [[0]]),
    "gaps past uint8": ([0, 300, 301], [2.0, 1.0, 3.0], [[1, 2], [5], [0, 9, 12]]),
    "positions past uint16": ([3, 70_000], [1.0, 1.0], [[65_536], [4_000_000_000]]),
    "fractional weights": ([1, 2, 5], [0.5, 1.5, 2.0], [[3], [1, 4], [2]]),
    "long and compressible": (
        list(range(0, 3000, 3)),
        [float(1 + n % 4) for n in range(1000)],
        [list(range(n % 4 + 1)) for n in range(1000)],
    ),
}


@pytest.mark.parametrize(
    "format_", [ArrayPositions(), TermCounts(), Existence()], ids=["positions", "counts", "existence"]
)
def test_the_one_encoder_writes_what_the_decoder_reads_back(format_):
    # Both writers (the pool's batches and Whoosh's term-at-a-time writer) go through
    # `TermBatch.records`; what it writes, `ArrayPostings` reads back as it was handed over.
    terms = list(POSTINGS.values())
    values = [
        [
            format_.encode(positions)
            if isinstance(format_, ArrayPositions)
            else format_.encode(len(positions))
            if isinstance(format_, TermCounts)
            else b""
            for positions in each
        ]
        for _, _, each in terms
    ]
    one_at_a_time = [
        TermBatch.of_one_term(array("I", ids), array("f", weights), encoded, format_).records()[0]
        for (ids, weights, _), encoded in zip(terms, values)
    ]
    file = _Written(one_at_a_time)
    for (ids, weights, positions), encoded, extent in zip(terms, values, file.extents):
        read = ArrayPostings(file, extent[0], format_, _Extent(*extent))
        arrays = read.read_from_disk()
        assert arrays.ids.tolist() == ids
        assert (arrays.weights.tolist() if arrays.weights is not None else [1.0] * len(ids)) == weights
        items = list(ArrayPostings(file, extent[0], format_, _Extent(*extent)).all_items())
        assert [id_ for id_, _ in items] == ids
        if isinstance(format_, Existence):
            assert arrays.starts is None
            continue
        assert [value for _, value in items] == encoded
        if isinstance(format_, ArrayPositions):
            assert read.has_array_positions()
            starts = arrays.starts.tolist()
            assert [arrays.positions[a:b].tolist() for a, b in pairwise(starts)] == positions
    assert ArrayPostings(file, file.extents[-1][0], format_, _Extent(*file.extents[-1]))._flags & postings._PART1_ZSTD
    # A batch of all the terms at once writes the same bytes as each term on its own.
    batch = _batch_of(format_, terms, values)
    assert batch.records() == one_at_a_time


def _batch_of(format_, terms, values) -> TermBatch:
    """The terms as the pool hands them over: one batch, flat arrays."""
    sizes = [len(ids) for ids, _, _ in terms]
    flat = [value for each in values for value in each]
    if isinstance(format_, ArrayPositions):
        counts = np.array([len(value) >> 2 for value in flat], dtype=np.uint32)
        stored = np.frombuffer(b"".join(flat), dtype=np.uint32)
        value_sizes = [sum(len(value) >> 2 for value in each) for each in values]
    elif isinstance(format_, TermCounts):
        counts = np.array([len(value) for value in flat], dtype=np.uint32)
        stored = np.frombuffer(b"".join(flat), dtype=np.uint8)
        value_sizes = [sum(map(len, each)) for each in values]
    else:
        counts = stored = value_sizes = None
    return TermBatch(
        "body",
        [name.encode() for name in POSTINGS],
        np.concatenate(([0], np.cumsum(sizes))),
        np.array([id_ for ids, _, _ in terms for id_ in ids], dtype=np.uint32),
        np.array([weight for _, weights, _ in terms for weight in weights], dtype=np.float32),
        counts,
        stored,
        None if value_sizes is None else np.concatenate(([0], np.cumsum(value_sizes))),
    )


def test_lists_an_earlier_version_compressed_with_zlib_still_read(documents, w3_and_arrays, tmp_path, monkeypatch):
    # Indexes written before Zstandard hold zlib'd parts, flagged as such: they must read the same.
    w3, _ = w3_and_arrays
    with monkeypatch.context() as earlier:
        earlier.setattr(
            postings,
            "_maybe_compressed",
            lambda part: (zlib.compress(part, 1), True) if len(part) >= 64 else (part, False),
        )
        earlier.setattr(postings, "_PART1_ZSTD", postings._PART1_ZIPPED)
        earlier.setattr(postings, "_PART2_ZSTD", postings._PART2_ZIPPED)
        ix = _index(tmp_path, documents, ArrayCodec())
    DECODED_LISTS.clear()
    with ix.reader() as reader:
        common = reader.postings("body", "日本")
        assert common._flags == postings._PART1_ZIPPED | postings._PART2_ZIPPED
    assert _every_posting(ix) == _every_posting(w3)


def _stored_bytes(ix) -> int:
    """Bytes of the stored-fields column, over every segment."""
    with ix.reader() as reader:
        return sum(
            segment._perdoc._storage.file_length(W3Codec.column_filename(segment._segment, "_stored"))
            for segment, _ in reader.leaf_readers()
        )


def test_stored_fields_read_back_in_about_half_the_space_zlib_gave_them(documents, w3_and_arrays):
    w3, arrays = w3_and_arrays
    with arrays.reader() as ours, w3.reader() as theirs:
        assert list(ours.all_stored_fields()) == list(theirs.all_stored_fields())
        assert ours.stored_fields(len(documents) - 1)["body"] == documents[-1]["body"]
    # Whoosh's zlib, section by section, hardly shrinks 1 KB of Japanese; a trained dictionary does
    # (where there are enough sections to train one: livedoor's, not the generated corpus's).
    if _stored_bytes(w3) > stored._FEWEST_BYTES:
        assert _stored_bytes(arrays) < 0.6 * _stored_bytes(w3)


def test_a_segment_too_small_to_train_a_dictionary_on_still_reads(documents, tmp_path):
    few = documents[:3]
    ix = _index(tmp_path, few, ArrayCodec())
    with ix.reader() as reader:
        assert [reader.stored_fields(d)["section_id"] for d in range(3)] == [d["section_id"] for d in few]
        assert reader.stored_fields(2)["body"] == few[2]["body"]


def test_stored_fields_an_earlier_version_compressed_with_zlib_still_read(
    documents, w3_and_arrays, tmp_path, monkeypatch
):
    w3, _ = w3_and_arrays
    with monkeypatch.context() as earlier:
        earlier.setattr(stored, "STORED_COLUMN", whoosh3.STORED_COLUMN)
        ix = _index(tmp_path, documents, ArrayCodec())
    with ix.reader() as reader, w3.reader() as theirs:
        assert _stored_bytes(ix) == _stored_bytes(w3)  # written as Whoosh writes them
        assert list(reader.all_stored_fields()) == list(theirs.all_stored_fields())


@pytest.mark.parametrize(
    "text",
    ["日本", "日本 発表", '"輸出 規制"', "スマートフォン OR アプリ", "日本 発表 NOT 無料", "映画 OR 公開 OR 監督"],
)
def test_whoosh_searches_the_arrays_as_it_searches_its_own_format(w3_and_arrays, text):
    # Whoosh walks, skips (intersections, block quality) and reads positions (phrases) itself.
    w3, arrays = w3_and_arrays
    results = []
    for ix in (w3, arrays):
        query = QueryParser("body", ix.schema).parse(text)
        with ix.searcher() as searcher:
            assert isinstance(searcher.reader().postings("body", "日本"), ArrayPostings) == (ix is arrays)
            hits = searcher.search(query, limit=10)
            results.append(([(hit.docnum, hit.score) for hit in hits], len(list(query.docs(searcher)))))
    assert results[1] == results[0]
    assert results[0][1] > 0


def test_decoded_lists_keep_the_most_recently_used_within_their_budget():
    lists = memory.RecentEntries(budget_bytes=100)
    lists.put(("a.pst", 0, "arrays"), "first", 40)
    lists.put(("a.pst", 9, "arrays"), "second", 40)
    assert lists.get(("a.pst", 0, "arrays")) == "first"  # now the most recently used
    lists.put(("b.pst", 0, "arrays"), "third", 40)  # over budget: the least recently used goes
    assert lists.get(("a.pst", 9, "arrays")) is None
    assert lists.get(("a.pst", 0, "arrays")) == "first" and lists.get(("b.pst", 0, "arrays")) == "third"
    assert lists.used_bytes == 80
    lists.put(("c.pst", 0, "arrays"), "huge", 101)  # bigger than the whole budget: not kept
    assert lists.get(("c.pst", 0, "arrays")) is None and lists.used_bytes == 80


def test_a_shared_decoded_list_reads_the_same_as_a_fresh_one(w3_and_arrays):
    _, arrays = w3_and_arrays
    DECODED_LISTS.clear()
    with arrays.searcher() as searcher:
        fresh = searcher.reader().postings("body", "日本").with_positions()
        shared = searcher.reader().postings("body", "日本").with_positions()  # from DECODED_LISTS
    assert DECODED_LISTS.used_bytes > 0
    assert shared.ids is fresh.ids and shared.positions is fresh.positions
    assert list(fresh.ids) == sorted(set(fresh.ids)) and len(fresh.positions) == fresh.starts[-1]


def test_a_reader_reads_its_segment_files_in_place(w3_and_arrays):
    # Whoosh would keep a copy of each file it opens (a BytesIO): at a million sections, 664 MB of
    # memory against 93 MB in a process that had opened a searcher and searched once.
    _, arrays = w3_and_arrays
    with arrays.reader() as reader:
        for segment, _ in reader.leaf_readers():
            assert segment.stored_fields(0)  # opens the stored-fields column
            files = [segment._terms._dbfile, segment._terms._postfile]
            files += [colfile for colfile, _, _ in segment._perdoc._colfiles.values()]
            assert len(files) > 2 and not any(isinstance(file.file, io.BytesIO) for file in files)


@pytest.mark.parametrize(
    "calls",
    [
        [("readline",), ("read", 1), ("readline",), ("readline",), ("readline", 3), ("readline",), ("tell",)],
        [("seek", -2, 2), ("read", -1), ("read", 5), ("seek", 1), ("readline",), ("seek", 3, 1), ("read",), ("tell",)],
    ],
)
def test_a_file_read_in_place_reads_as_bytesio_does(calls):
    data = b"ab\ncd\n\nefgh" + b"x" * 600 + b"\nend"
    in_place, copied = _BufferReader(memoryview(data)), io.BytesIO(data)
    for name, *arguments in calls:
        assert getattr(in_place, name)(*arguments) == getattr(copied, name)(*arguments), (name, arguments)
