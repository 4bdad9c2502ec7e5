"""`midashi check`: read all of an index and say what is damaged, in the spirit of Lucene's CheckIndex.

Opening a generation for search verifies its files against the checksums its manifest recorded
(`store.file_problems`). A check goes further and reads everything the way a search would:
CURRENT, the manifest, every file's checksum, the table of contents, then each segment on its
own (so one bad segment does not hide another): every term's postings, every live section's
stored fields, lengths and columns. Last, it compares what the segments hold with what the
manifest says was indexed (sections, articles). Each problem is one line; a clean index has none.

A check reads bytes that may be anything, so any error while reading a part is that part's
damage (`except Exception`), reported and passed over, never the end of the check.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from whoosh import index as whoosh_index
from whoosh.reading import SegmentReader

from .postings import ArrayPostings
from .store import (
    DamagedIndexError,
    IndexStore,
    Manifest,
    file_problems,
    repair_command,
)
from .whoosh_internals import index_segments, postings_reader, terms_reader

PROBLEMS_PER_SEGMENT = 10  # a segment with more damaged terms or sections is reported in so many lines
MISSING_SHOWN = 5  # article ids named when the manifest and the segments disagree


@dataclass
class CheckReport:
    """What `check_index` found: the problems (one line each) and what it read."""

    root: Path
    generation: str = ""
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # not damage, but worth saying (no checksums yet)
    files: int = 0
    bytes: int = 0
    segments: int = 0
    terms: int = 0
    postings: int = 0
    sections: int = 0
    articles: int = 0
    elapsed_seconds: float = 0.0

    @property
    def damaged(self) -> bool:
        return bool(self.problems)

    @property
    def repair(self) -> str:
        return f"run {repair_command(self.root)} to rebuild it from the corpus"


def check_index(root: Path | str) -> CheckReport:
    """Read every part of the live generation of the index at `root` (IndexMissingError if none)."""
    started = time.perf_counter()
    store = IndexStore(root)
    report = CheckReport(store.root)
    try:
        folder = store.current()
    except DamagedIndexError as damage:
        report.problems.append(damage.problem)
        return _finished(report, started)
    report.generation = folder.name
    try:
        manifest: Manifest | None = Manifest.load(folder)
    except DamagedIndexError as damage:
        report.problems.append(damage.problem)
        manifest = None
    if manifest is not None:
        if manifest.checksums:
            report.problems.extend(file_problems(folder, manifest.checksums, content=True))
            report.files = len(manifest.checksums)
            report.bytes = sum(size for size, _ in manifest.checksums.values())
        else:
            report.notes.append(
                f"{folder.name} records no checksums (written by an earlier version); the next reindex rebuilds it"
            )
    try:
        index = whoosh_index.open_dir(str(folder))
        segments = index_segments(index)
    except Exception as error:
        report.problems.append(f"{folder.name}: its table of contents cannot be read ({_describe(error)})")
        return _finished(report, started)
    article_ids: set[str] = set()
    for segment in segments:
        report.segments += 1
        report.problems.extend(_check_segment(index, segment, folder, report, article_ids))
    if manifest is not None:
        report.problems.extend(_compare_counts(folder, manifest, report, article_ids))
    report.articles = len(article_ids)
    return _finished(report, started)


def _finished(report: CheckReport, started: float) -> CheckReport:
    report.elapsed_seconds = time.perf_counter() - started
    return report


def _check_segment(index, segment, folder: Path, report: CheckReport, article_ids: set[str]) -> Iterator[str]:
    """The problems of one segment: it opens, its postings decode into its documents, its live
    sections' stored fields, lengths and columns read."""
    name = f"{folder.name}/{segment.make_filename('.seg')}"
    try:
        reader = SegmentReader(index.storage, index.schema, segment)
    except Exception as error:
        yield f"{name} cannot be opened ({_describe(error)})"
        return
    try:
        size = reader.doc_count_all()
        found = 0
        for problem in _check_postings(reader, size, report, article_ids):
            found += 1
            if found <= PROBLEMS_PER_SEGMENT:
                yield f"{name}: {problem}"
        for problem in _check_documents(reader, size, report):
            found += 1
            if found <= PROBLEMS_PER_SEGMENT:
                yield f"{name}: {problem}"
        if found > PROBLEMS_PER_SEGMENT:
            yield f"{name}: … and {found - PROBLEMS_PER_SEGMENT:,} more problems"
    except Exception as error:
        yield f"{name} cannot be read ({_describe(error)})"
    finally:
        try:
            reader.close()
        except Exception:
            pass


def _check_postings(reader, size: int, report: CheckReport, article_ids: set[str]) -> Iterator[str]:
    """Every term's postings: decodable, as many as its term info says, ascending, inside the
    segment. The term index is walked in order (its every entry read), not looked up term by term."""
    live = np.array([not reader.is_deleted(docnum) for docnum in range(size)], dtype=bool)
    terms = terms_reader(reader)  # the segment's term index: its items are (field, term) and term info
    for (fieldname, text), info in terms.items():
        report.terms += 1
        shown = f"term {fieldname}:{text[:40]!r}"
        try:
            postings = postings_reader(terms, info, reader.schema[fieldname].format)
            if isinstance(postings, ArrayPostings):
                arrays = postings.read_from_disk()
                ids = arrays.ids
                if arrays.positions is not None:
                    assert arrays.starts is not None  # read with the positions
                    if arrays.starts[-1] != len(arrays.positions):
                        yield f"{shown}: its positions do not match its postings"
            else:  # a list an earlier format wrote: Whoosh's own matcher
                ids = np.fromiter(postings.all_ids(), dtype=np.int64)
        except Exception as error:
            yield f"{shown}: its postings cannot be read ({_describe(error)})"
            continue
        report.postings += len(ids)
        if len(ids) != info.doc_frequency():
            yield f"{shown}: {len(ids):,} postings, its term info says {info.doc_frequency():,}"
        elif len(ids) and (ids[0] < 0 or ids[-1] >= size or np.any(np.diff(ids) <= 0)):
            yield f"{shown}: its postings point outside the segment or out of order"
        elif fieldname == "article_id" and live[ids].any():
            article_ids.add(text.decode("utf-8", "replace"))


def _check_documents(reader, size: int, report: CheckReport) -> Iterator[str]:
    """Every live section's stored fields, field lengths and column values."""
    schema = reader.schema
    scorable = [name for name, field_ in schema.items() if field_.scorable]
    columns = [name for name, field_ in schema.items() if field_.column_type and reader.has_column(name)]
    for name in columns:
        try:
            values = list(reader.column_reader(name, translate=False))
        except Exception as error:
            yield f"column {name}: cannot be read ({_describe(error)})"
            continue
        if len(values) != size:
            yield f"column {name}: {len(values):,} values for {size:,} sections"
    for docnum in range(size):
        if reader.is_deleted(docnum):
            continue
        try:
            stored = reader.stored_fields(docnum)
            for name in scorable:
                reader.doc_field_length(docnum, name)
        except Exception as error:
            yield f"section {docnum}: cannot be read ({_describe(error)})"
            continue
        if not isinstance(stored, dict) or not stored.get("section_id") or not stored.get("article_id"):
            yield f"section {docnum}: its stored fields lack its ids"
            continue
        report.sections += 1


def _compare_counts(folder: Path, manifest: Manifest, report: CheckReport, article_ids: set[str]) -> Iterator[str]:
    """What the segments hold against what the manifest says the reindex put in them."""
    expected = sum(sections for _, sections in manifest.articles.values())
    if report.sections != expected:
        yield f"{folder.name} holds {report.sections:,} readable sections, its manifest {expected:,}"
    missing = sorted(set(manifest.articles) - article_ids)
    if missing:
        shown = ", ".join(missing[:MISSING_SHOWN]) + (" …" if len(missing) > MISSING_SHOWN else "")
        yield f"{len(missing):,} articles of the manifest are not in the segments ({shown})"
    extra = sorted(article_ids - set(manifest.articles))
    if extra:
        shown = ", ".join(extra[:MISSING_SHOWN]) + (" …" if len(extra) > MISSING_SHOWN else "")
        yield f"{len(extra):,} articles in the segments are not in the manifest ({shown})"


def _describe(error: BaseException) -> str:
    """An error's kind and first line, for a person reading the report."""
    kind = type(error)
    name = kind.__name__ if kind.__module__ == "builtins" else f"{kind.__module__.lstrip('_')}.{kind.__name__}"
    text = str(error).splitlines()[0][:120] if str(error) else ""
    return f"{name}: {text}" if text else name
