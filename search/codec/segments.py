"""Writing index segments: Whoosh's SegmentWriter with its postings pooled as arrays.

Whoosh's writer hands every posting to a pool as a tuple, pickles the tuples into sorted runs on
disk, merges the runs back a posting at a time, and writes each posting with a call of its own:
on a reindex, more time than Sudachi takes to analyse the text. `ArrayPool` appends each
posting to flat arrays instead and sorts them by term once (numpy), so `ArraySegmentWriter`
writes batches of whole posting lists (`ArrayFieldWriter.add_batches`). When the pool holds
`SPILL_POSTINGS` postings it writes them, sorted, as a run to a temporary file, and the runs are
merged term by term when the segment is written: memory stays bounded, and one worker still
writes one segment, however big.

Everything else is Whoosh's: documents, stored fields, lengths and columns go through its
per-document writer as before, and merges of small segments read their postings into the pool.
"""

from __future__ import annotations

import heapq
import itertools
import struct
from array import array
from collections.abc import Iterator

import numpy as np
from whoosh.formats import Existence
from whoosh.writing import MERGE_SMALL, SegmentWriter

from ..analysis.sudachi import SudachiTokenizer, analyse_ahead
from .postings import ArrayCodec, ArrayPositions, TermBatch, TermCounts

CACHED_ITEMS = 10_000  # values of plain fields (article ids, section numbers, dates, sources) kept indexed
SPILL_POSTINGS = 8_000_000  # about 200 MB of arrays (and each term's entry) before a run is written
BATCH_POSTINGS = 1_000_000  # postings a batch of terms holds, at most (unless one term has more)
_BATCH_HEADER = struct.Struct("<HIIII")  # field number, terms, postings, values, bytes of the terms


class _FieldPool:
    """One field's postings in the order they came: one entry per posting in flat arrays."""

    def __init__(self, fieldname: str, field_format):
        self.fieldname = fieldname
        self.positions = isinstance(field_format, ArrayPositions)
        self.plain = isinstance(field_format, Existence)  # no values at all
        # How `add_terms` stores a count, in a TermCounts field (a positions field keeps positions).
        self.encode = field_format.encode if isinstance(field_format, TermCounts) else None
        # Term → its number, in order of arrival. Terms from our tokenizers are kept as text, and
        # encoded once each when written (not once per posting); other fields' as Whoosh's bytes.
        self.text_keys = self.positions or self.encode is not None
        self.numbers: dict[str | bytes, int] = {}
        self.term_of = array("I")
        self.ids = array("I")
        self.weights = array("f")
        self.counts = array("I")
        self.values = array("I") if self.positions else bytearray()

    def add_terms(self, docnum: int, found: dict[str, list[int]], boost: float) -> int:
        """Add a document's terms and their positions, straight from a tokenizer; their total
        frequency. A positions field keeps the positions, a `TermCounts` field their number, as
        the formats would encode them: Whoosh's items would cost a tuple, an encoded value and
        three generator steps a term."""
        numbers, term_of, ids, weights = self.numbers, self.term_of.append, self.ids.append, self.weights.append
        counts, values, positions, encode = self.counts.append, self.values.extend, self.positions, self.encode
        length = 0
        for text, found_positions in found.items():
            number = numbers.get(text)
            if number is None:
                number = numbers[text] = len(numbers)
            term_of(number)
            ids(docnum)
            frequency = len(found_positions)
            weights(frequency * boost)
            if positions:
                counts(frequency)
                values(found_positions)
            else:
                assert encode is not None  # add_terms is only for positions and TermCounts fields
                value = encode(frequency)
                counts(len(value))
                values(value)
            length += frequency
        return length

    def add(self, docnum: int, items) -> int:
        """Add a document's (term, frequency, weight, value) items; their total frequency."""
        numbers, term_of, ids, weights = self.numbers, self.term_of.append, self.ids.append, self.weights.append
        counts, positions, plain, text_keys = self.counts.append, self.positions, self.plain, self.text_keys
        # positions arrive as their uint32 bytes (for an array("I")), other values as bytes (a bytearray)
        add_values = self.values.frombytes if isinstance(self.values, array) else self.values.extend
        length = 0
        for btext, frequency, weight, vbytes in items:
            key = btext.decode("utf-8") if text_keys else btext
            number = numbers.get(key)
            if number is None:
                number = numbers[key] = len(numbers)
            term_of(number)
            ids(docnum)
            weights(weight)
            length += frequency
            if plain:
                continue
            if positions:
                counts(len(vbytes) >> 2)
                add_values(vbytes)
            else:
                vbytes = vbytes or b""  # a merge passes on W3's None for "no value"
                counts(len(vbytes))
                add_values(vbytes)
        return length

    def batches(self) -> Iterator[TermBatch]:
        """The terms in order with their postings (in docnum order, as they came), in batches."""
        keys = sorted(self.numbers)  # text sorts by code point, as its UTF-8 bytes do
        rank = np.empty(len(keys), dtype=np.int64)
        rank[[self.numbers[key] for key in keys]] = np.arange(len(keys))
        texts = [key.encode("utf-8") if isinstance(key, str) else key for key in keys]  # str iff text_keys
        ranks = rank[np.frombuffer(self.term_of, dtype=np.uint32)]
        order = np.argsort(ranks, kind="stable")
        bounds = np.concatenate(([0], np.cumsum(np.bincount(ranks, minlength=len(texts)))))
        whole = TermBatch(
            self.fieldname,
            texts,
            bounds,
            np.frombuffer(self.ids, dtype=np.uint32)[order],
            np.frombuffer(self.weights, dtype=np.float32)[order],
        )
        if not self.plain:
            counts = np.frombuffer(self.counts, dtype=np.uint32)
            values = np.frombuffer(self.values, dtype=np.uint32 if self.positions else np.uint8)
            whole.values = values[_gather(counts, order)]
            whole.counts = counts[order]
            whole.value_bounds = np.concatenate(([0], np.cumsum(whole.counts, dtype=np.int64)))[bounds]
        yield from _split(whole)


def _route(field) -> str:
    """How a field's values reach the pool: "terms" straight from its tokenizer's positions,
    "plain" as Whoosh's items kept per value, "items" as Whoosh's items."""
    if isinstance(field.format, Existence):
        return "plain"
    if isinstance(field.format, (ArrayPositions, TermCounts)) and hasattr(field.analyzer, "term_positions"):
        return "terms"
    return "items"


def _gather(counts: np.ndarray, order: np.ndarray) -> np.ndarray:
    """Indexes into a flat value array that put each posting's values in `order`."""
    starts = np.concatenate(([0], np.cumsum(counts, dtype=np.int64)[:-1]))
    taken = counts[order].astype(np.int64)
    placed = np.cumsum(taken) - taken
    return np.repeat(starts[order] - placed, taken) + np.arange(int(taken.sum()))


def _split(batch: TermBatch) -> Iterator[TermBatch]:
    """`batch` as batches of about BATCH_POSTINGS postings, cut between terms."""
    cuts = np.searchsorted(batch.bounds, np.arange(BATCH_POSTINGS, int(batch.bounds[-1]), BATCH_POSTINGS))
    edges = sorted({0, *cuts.tolist(), len(batch.texts)})
    for first, last in itertools.pairwise(edges):
        low, high = int(batch.bounds[first]), int(batch.bounds[last])
        part = TermBatch(
            batch.fieldname,
            batch.texts[first:last],
            batch.bounds[first : last + 1] - low,
            batch.ids[low:high],
            batch.weights[low:high],
        )
        if batch.counts is not None:
            assert batch.values is not None and batch.value_bounds is not None  # set with the counts
            value_low, value_high = int(batch.value_bounds[first]), int(batch.value_bounds[last])
            part.counts = batch.counts[low:high]
            part.values = batch.values[value_low:value_high]
            part.value_bounds = batch.value_bounds[first : last + 1] - value_low
        yield part


class ArrayPool:
    """Whoosh's posting pool interface (`add`, `cleanup`) over `_FieldPool`s, with sorted runs
    spilled to files in the writer's temporary storage."""

    def __init__(self, schema, tempstorage, spill_postings: int = SPILL_POSTINGS):
        self.schema = schema
        self.names = sorted(schema.names())
        self.tempstorage = tempstorage
        self.spill_postings = spill_postings
        self.fields: dict[str, _FieldPool] = {}
        self._items: dict[tuple[str, object], list] = {}  # Whoosh's items of a value of a plain field
        self._routes: dict[str, str] = {}  # per field, how `add_value` indexes it (`_route`)
        self.size = 0
        self.runs: list[str] = []

    def add(self, item: tuple[str, bytes, int, float, bytes | None]) -> None:
        """One posting, as Whoosh's merges add them."""
        fieldname, btext, docnum, weight, vbytes = item
        self.add_field(fieldname, docnum, [(btext, 0, weight, vbytes)])

    def add_field(self, fieldname: str, docnum: int, items) -> int:
        """A document's postings in one field: Whoosh's (term, frequency, weight, value) items of
        it; their total frequency (the field's length in the document)."""
        pool = self._field_pool(fieldname)
        before = len(pool.ids)
        return self._added(pool.add(docnum, items), len(pool.ids) - before)

    def add_value(self, fieldname: str, docnum: int, value) -> int:
        """A document's value in a field: straight from its tokenizer's `term_positions` when the
        field keeps array positions or term counts, else as Whoosh's items (kept for the next
        section with the same value, in plain fields); the field's length."""
        field = self.schema[fieldname]
        route = self._routes.get(fieldname)
        if route is None:
            route = self._routes[fieldname] = _route(field)
        if route == "plain":  # an id, a number, a date: the same for many sections
            key = (fieldname, value)
            items = self._items.get(key)
            if items is None:
                if len(self._items) >= CACHED_ITEMS:
                    self._items.clear()
                items = self._items[key] = list(field.index(value))
            return self.add_field(fieldname, docnum, items)
        if route == "items":
            return self.add_field(fieldname, docnum, field.index(value))
        pool = self._field_pool(fieldname)
        found = field.analyzer.term_positions(value)
        return self._added(pool.add_terms(docnum, found, field.format.field_boost), len(found))

    def _field_pool(self, fieldname: str) -> _FieldPool:
        pool = self.fields.get(fieldname)
        if pool is None:
            pool = self.fields[fieldname] = _FieldPool(fieldname, self.schema[fieldname].format)
        return pool

    def _added(self, length: int, postings: int) -> int:
        """Count a document's new postings in a field, spilling a run when the pool is full; the
        field's length, passed on."""
        self.size += postings
        if self.size >= self.spill_postings:
            self._spill()
        return length

    def batches(self) -> Iterator[TermBatch]:
        """Every term's postings in field and term order, the runs merged in."""
        if not self.runs:
            return self._pooled()
        sources = [self._read_run(name) for name in self.runs] + [self._pooled()]
        return _merged(sources)

    def cleanup(self) -> None:
        for name in self.runs:
            if self.tempstorage.file_exists(name):
                self.tempstorage.delete_file(name)
        self.runs = []

    def _pooled(self) -> Iterator[TermBatch]:
        fields, self.fields, self.size = self.fields, {}, 0
        for fieldname in sorted(fields):
            yield from fields.pop(fieldname).batches()

    def _spill(self) -> None:
        name = f"run-{len(self.runs)}.arrays"
        with self.tempstorage.create_file(name) as run:
            for batch in self._pooled():
                texts = b"".join(struct.pack("<H", len(text)) + text for text in batch.texts)
                values = batch.values.tobytes() if batch.values is not None else b""
                run.write(
                    _BATCH_HEADER.pack(
                        self.names.index(batch.fieldname), len(batch.texts), len(batch.ids), len(values), len(texts)
                    )
                )
                run.write(texts)
                for part in (batch.bounds.astype(np.int64), batch.ids, batch.weights):
                    run.write(part.tobytes())
                if batch.counts is not None:
                    assert batch.value_bounds is not None  # set with the counts
                    run.write(batch.counts.tobytes())
                    run.write(batch.value_bounds.astype(np.int64).tobytes())
                    run.write(values)
        self.runs.append(name)

    def _read_run(self, name: str) -> Iterator[TermBatch]:
        with self.tempstorage.open_file(name) as run:
            while header := run.read(_BATCH_HEADER.size):
                field_number, terms, postings, values_size, texts_size = _BATCH_HEADER.unpack(header)
                fieldname = self.names[field_number]
                texts_blob, texts, at = run.read(texts_size), [], 0
                for _ in range(terms):
                    (size,) = struct.unpack_from("<H", texts_blob, at)
                    texts.append(texts_blob[at + 2 : at + 2 + size])
                    at += 2 + size
                batch = TermBatch(
                    fieldname,
                    texts,
                    _read(run, np.int64, terms + 1),
                    _read(run, np.uint32, postings),
                    _read(run, np.float32, postings),
                )
                field_format = self.schema[fieldname].format
                if not isinstance(field_format, Existence):
                    batch.counts = _read(run, np.uint32, postings)
                    batch.value_bounds = _read(run, np.int64, terms + 1)
                    dtype = np.uint32 if isinstance(field_format, ArrayPositions) else np.uint8
                    batch.values = np.frombuffer(run.read(values_size), dtype=dtype)
                yield batch


def _read(run, dtype, count: int) -> np.ndarray:
    return np.frombuffer(run.read(np.dtype(dtype).itemsize * count), dtype=dtype)


def _merged(sources: list[Iterator[TermBatch]]) -> Iterator[TermBatch]:
    """Sorted batch streams whose docnums follow one another (earlier streams first) as one: a
    term in several streams gets their postings joined in stream order."""

    def terms(number: int, source: Iterator[TermBatch]):
        for batch in source:
            for term, text in enumerate(batch.texts):
                yield batch.fieldname, text, number, batch, term

    merged = heapq.merge(*(terms(number, source) for number, source in enumerate(sources)), key=lambda e: e[:3])
    pending: list[tuple[str, bytes, list[tuple[TermBatch, int]]]] = []
    size = 0
    for fieldname, text, _, batch, term in merged:
        if pending and (pending[-1][0], pending[-1][1]) == (fieldname, text):
            pending[-1][2].append((batch, term))
        else:
            if pending and (pending[-1][0] != fieldname or size >= BATCH_POSTINGS):
                yield _joined(pending)
                pending, size = [], 0
            pending.append((fieldname, text, [(batch, term)]))
        size += int(batch.bounds[term + 1] - batch.bounds[term])
    if pending:
        yield _joined(pending)


def _joined(terms: list[tuple[str, bytes, list[tuple[TermBatch, int]]]]) -> TermBatch:
    """One batch of the given terms of one field, each term's postings from its batches in order."""
    ids: list[np.ndarray] = []
    weights: list[np.ndarray] = []
    counts: list[np.ndarray] = []
    values: list[np.ndarray] = []
    sizes: list[int] = []
    value_sizes = [0]
    for _, _, places in terms:
        total = value_total = 0
        for batch, term in places:
            low, high = int(batch.bounds[term]), int(batch.bounds[term + 1])
            ids.append(batch.ids[low:high])
            weights.append(batch.weights[low:high])
            if batch.counts is not None:
                assert batch.values is not None and batch.value_bounds is not None  # set with the counts
                value_low, value_high = int(batch.value_bounds[term]), int(batch.value_bounds[term + 1])
                counts.append(batch.counts[low:high])
                values.append(batch.values[value_low:value_high])
                value_total += value_high - value_low
            total += high - low
        sizes.append(total)
        value_sizes.append(value_total)
    joined = TermBatch(
        terms[0][0],
        [text for _, text, _ in terms],
        np.concatenate(([0], np.cumsum(sizes))),
        np.concatenate(ids),
        np.concatenate(weights),
    )
    if counts:
        joined.counts = np.concatenate(counts)
        joined.values = np.concatenate(values)
        joined.value_bounds = np.cumsum(value_sizes)
    return joined


def merge_small_live(writer: SegmentWriter, segments: list) -> list:
    """Whoosh's MERGE_SMALL policy over the segments that still hold a live document.

    Whoosh sizes a segment by every document it ever held, deleted ones too, so a segment an
    update has emptied (a worker's share of a changed feed) stayed on disk, and in every search,
    until a full rebuild. Leaving it out of the table of contents deletes its files.
    """
    return MERGE_SMALL(writer, [segment for segment in segments if segment.doc_count() > 0])


class ArraySegmentWriter(SegmentWriter):
    """Whoosh's SegmentWriter with an `ArrayPool` and whole posting lists written at once."""

    def __init__(self, ix, temporary: str | None = None, spill_postings: int = SPILL_POSTINGS, **kwargs):
        """`temporary` names a temporary folder of this writer's own (Whoosh's default is shared
        by every writer of the index)."""
        kwargs.setdefault("codec", ArrayCodec())
        super().__init__(ix, **kwargs)
        if temporary is not None:
            self._tempstorage = ix.storage.temp_storage(temporary)
        self.pool = ArrayPool(self.schema, self._tempstorage, spill_postings)
        # The fields whose texts Sudachi analyses (`add_documents` analyses them first).
        self.sudachi_fields = [
            name
            for name, field in self.schema.items()
            if isinstance(getattr(field, "analyzer", None), SudachiTokenizer)
        ]

    def add_document(self, **fields) -> None:
        """Whoosh's `SegmentWriter.add_document` for a schema like ours (no boosts, term vectors
        or spelling words), each field's postings handed to the pool in one call."""
        self._check_state()
        self._check_fields(self.schema, fields)
        perdoc, docnum = self.perdocwriter, self.docnum
        perdoc.start_doc(docnum)
        try:
            for fieldname in sorted(fields):
                value = fields[fieldname]
                if value is None:
                    continue
                field = self.schema[fieldname]
                length = self.pool.add_value(fieldname, docnum, value) if field.indexed else 0
                perdoc.add_field(fieldname, field, value if field.stored else None, length if field.scorable else 0)
                if field.column_type:
                    perdoc.add_column_value(fieldname, field.column_type, field.to_column_value(value))
        except Exception:
            perdoc.cancel_doc()
            raise
        perdoc.finish_doc()
        self._added = True
        self.docnum += 1

    def add_documents(self, documents: list[dict]) -> None:
        """Add a batch of documents, every text their Sudachi-analysed fields hold analysed first."""
        analyse_ahead(
            document[name] for document in documents for name in self.sudachi_fields if document.get(name) is not None
        )
        for document in documents:
            self.add_document(**document)

    def _flush_segment(self) -> None:
        self.perdocwriter.close()
        lengths = self.per_document_reader()
        try:
            self.fieldwriter.add_batches(self.schema, lengths, self.pool.batches())
        finally:
            lengths.close()
        self.fieldwriter.close()
