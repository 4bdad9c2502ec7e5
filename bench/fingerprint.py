"""A fingerprint of everything a reindex writes: to show a refactoring left the index as it was.

    python bench/fingerprint.py tests/fixtures/news              # the fixture corpus
    python bench/fingerprint.py tests/fixtures/news --generated  # plus tests/fork_corpus.py's articles
    python bench/fingerprint.py --livedoor 152                   # 152 livedoor articles (../shared)

The corpus folders (and, with `--livedoor N`, N articles of the livedoor tarball) are reindexed
with `search.indexing.reindex` into a fresh index under a temporary folder (`--work`), in one
process (`--workers 0`, the default): one segment, documents numbered in reading order, the same
bytes on every run. The index is then read back through Whoosh's public reader API only
(`open_dir`, `all_terms`, `postings`, `term_info`, `stored_fields`, `doc_field_length`,
`column_reader`), never through our codec's modules, so the tool keeps working while they move.

It prints, after a line naming the input (a digest over every corpus file's path and bytes: a
different fingerprint from different input is no regression), one line per schema field:
- `terms`, `postings`: how many;
- `postings_sha256`: every (term, section, weight, positions or frequency), terms in byte order,
  postings in section-id order;
- `terminfo_sha256`: every term's statistics (document frequency, total weight, shortest and
  longest length, highest weight);
- `stored_sha256`: the field's stored value of each section; `lengths_sha256`: its length in each
  section (scorable fields); `column_sha256`: its column value (sortable fields);
then `docs` (sections, segments, and a digest of the section ids in docnum order: a change
there alone means the same content with its documents numbered or segmented otherwise), `stored` (each section's stored
fields as canonical JSON, keys sorted, sections in id order) and `total` over all lines above.

Postings name sections by their stored section id, not their docnum, so the same content
written in another segment layout (`--workers 2`, the parallel path) fingerprints the same
except for the `docs` line. `-` stands for "the field has none of these".

`--livedoor N` takes the tarball's article members (`text/<category>/<category>-<n>.txt`) sorted
by name, then one of each category in turn (the first of each category in category order, then
the second of each, ...) until N are taken, and extracts them in the tarball's own layout, which
`midashi reindex` reads as livedoor articles with the same ids as from the tarball.
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import json
import re
import sys
import tarfile
import tempfile
import time
from collections import defaultdict
from collections.abc import Iterable, Iterator
from datetime import date, datetime
from pathlib import Path

PROJECT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT))  # fingerprint the checkout this script is in, not an installed copy

from whoosh import index as whoosh_index  # noqa: E402

from search.indexing import reindex  # noqa: E402

LIVEDOOR_TARBALL = PROJECT.parent / "shared" / "data" / "ldcc-20140209.tar.gz"
_LIVEDOOR_ARTICLE = re.compile(r"^text/([^/]+)/[^/]+-\d+\.txt$")
ABSENT = "-"


def index_store(root: Path):
    """The index folder's `IndexStore`, wherever the store module lives now."""
    try:
        from search.codec.store import IndexStore  # type: ignore[import-not-found]
    except ImportError:
        from search.store import IndexStore
    return IndexStore(root)


# --- input -------------------------------------------------------------------------------------


def extract_livedoor(tarball: Path, count: int, target: Path) -> Path:
    """`count` articles of the livedoor tarball under `target` (text/<category>/...), taken in
    turn from each category, each category's members in name order; `target`."""
    with tarfile.open(tarball) as archive:
        by_category: dict[str, list[tarfile.TarInfo]] = defaultdict(list)
        for member in sorted(archive.getmembers(), key=lambda member: member.name):
            article = _LIVEDOOR_ARTICLE.match(member.name)
            if member.isfile() and article is not None:
                by_category[article.group(1)].append(member)
        in_turn = (
            member
            for row in itertools.zip_longest(*(by_category[name] for name in sorted(by_category)))
            for member in row
            if member is not None
        )
        chosen = list(itertools.islice(in_turn, count))
        if len(chosen) < count:
            raise SystemExit(f"fingerprint: the tarball holds only {len(chosen)} articles, not {count}")
        archive.extractall(target, members=chosen, filter="data")
    return target


def corpus_digest(paths: Iterable[Path]) -> tuple[int, str]:
    """How many files the corpus paths hold and a sha256 over each one's relative path and bytes."""
    digest = hashlib.sha256()
    files = 0
    for number, root in enumerate(paths):
        found = sorted(root.rglob("*")) if root.is_dir() else [root]
        for path in found:
            if path.is_file():
                name = path.relative_to(root) if root.is_dir() else Path(path.name)
                digest.update(f"{number}\0{name.as_posix()}\0".encode())
                digest.update(hashlib.sha256(path.read_bytes()).digest())
                files += 1
    return files, digest.hexdigest()


# --- reading the index back ----------------------------------------------------------------------


def canonical(value) -> object:
    """A stored or column value as JSON can carry it, the same on every run."""
    if isinstance(value, bytes):
        return {"bytes": value.hex()}
    if isinstance(value, datetime | date):
        return {"datetime": value.isoformat()}
    if isinstance(value, float):
        return {"float": value.hex()}  # every bit of it
    if isinstance(value, list | tuple):
        return [canonical(item) for item in value]
    if isinstance(value, dict):
        return {str(key): canonical(item) for key, item in value.items()}
    if value is None or isinstance(value, str | int | bool):
        return value
    return {type(value).__name__: repr(value)}


def line(record) -> bytes:
    return json.dumps(canonical(record), ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode() + b"\n"


def sha256_of(records: Iterable) -> str:
    digest = hashlib.sha256()
    for record in records:
        digest.update(line(record))
    return digest.hexdigest()


def posting_values(matcher, format_) -> Iterator[tuple[int, float, object]]:
    """Each (docnum, weight, positions or frequency or None) of a term's postings."""
    kind = "positions" if format_.supports("positions") else "frequency" if format_.supports("frequency") else None
    while matcher.is_active():
        yield matcher.id(), matcher.weight(), matcher.value_as(kind) if kind else None
        matcher.next()


def fingerprint(index_root: Path) -> list[str]:
    """The fingerprint lines of the live generation of the index at `index_root`."""
    folder = index_store(index_root).current()
    ix = whoosh_index.open_dir(str(folder))
    lines: list[str] = []
    with ix.reader() as reader:
        docnums = list(reader.all_doc_ids())  # live sections, in docnum order
        stored = {docnum: reader.stored_fields(docnum) for docnum in docnums}
        section_of = {docnum: fields["section_id"] for docnum, fields in stored.items()}
        if len(set(section_of.values())) != len(section_of):
            raise SystemExit("fingerprint: two sections share a section id: postings cannot be named by it")
        in_id_order = sorted(docnums, key=section_of.__getitem__)
        terms_by_field: dict[str, list[bytes]] = defaultdict(list)
        for fieldname, term in reader.all_terms():
            terms_by_field[fieldname].append(term)
        for fieldname in sorted(ix.schema.names()):
            field = ix.schema[fieldname]
            terms = sorted(terms_by_field.get(fieldname, []))
            postings = 0
            posting_digest, info_digest = hashlib.sha256(), hashlib.sha256()
            for term in terms:
                found = sorted(
                    (section_of[docnum], weight, value)
                    for docnum, weight, value in posting_values(reader.postings(fieldname, term), field.format)
                )
                postings += len(found)
                for section, weight, value in found:
                    posting_digest.update(line([term, section, weight, value]))
                info = reader.term_info(fieldname, term)
                info_digest.update(
                    line(
                        [
                            term,
                            info.doc_frequency(),
                            info.weight(),
                            info.min_length(),
                            info.max_length(),
                            info.max_weight(),
                        ]
                    )
                )
            has_terms = bool(terms)
            stored_hash = (
                sha256_of(
                    [section_of[docnum], stored[docnum][fieldname]]
                    for docnum in in_id_order
                    if fieldname in stored[docnum]
                )
                if field.stored
                else ABSENT
            )
            lengths_hash = (
                sha256_of([section_of[docnum], reader.doc_field_length(docnum, fieldname)] for docnum in in_id_order)
                if field.scorable
                else ABSENT
            )
            column_hash = ABSENT
            if reader.has_column(fieldname):
                column = reader.column_reader(fieldname)
                column_hash = sha256_of([section_of[docnum], column[docnum]] for docnum in in_id_order)
            lines.append(
                f"field={fieldname} terms={len(terms)} postings={postings}"
                f" postings_sha256={posting_digest.hexdigest() if has_terms else ABSENT}"
                f" terminfo_sha256={info_digest.hexdigest() if has_terms else ABSENT}"
                f" stored_sha256={stored_hash} lengths_sha256={lengths_hash} column_sha256={column_hash}"
            )
        order = sha256_of(section_of[docnum] for docnum in docnums)
        lines.append(
            f"docs={len(docnums)} deleted={reader.doc_count_all() - len(docnums)}"
            f" segments={len(reader.leaf_readers())} docorder_sha256={order}"
        )
        lines.append(
            f"stored sections={len(docnums)} stored_sha256={sha256_of(stored[docnum] for docnum in in_id_order)}"
        )
    total = hashlib.sha256("\n".join(lines).encode()).hexdigest()
    return [*lines, f"total_sha256={total}"]


def fingerprint_corpus(corpus: list[Path], work: Path, workers: int = 0) -> list[str]:
    """Reindex `corpus` into a fresh index under `work` and fingerprint it, after an input line."""
    files, digest = corpus_digest(corpus)
    index_root = Path(tempfile.mkdtemp(prefix="index-", dir=work))
    report = reindex(corpus, index_root, full=True, workers=workers)
    if report.skipped:
        print(f"fingerprint: {len(report.skipped)} corpus files or articles were skipped", file=sys.stderr)
    return [f"input files={files} corpus_sha256={digest}", *fingerprint(index_root)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("corpus", nargs="*", type=Path, help="corpus folders or files, as `midashi reindex` reads")
    parser.add_argument("--livedoor", type=int, metavar="N", help="add N articles of the livedoor tarball")
    parser.add_argument("--tarball", type=Path, default=LIVEDOOR_TARBALL, help="the livedoor tarball")
    parser.add_argument(
        "--generated",
        action="store_true",
        help="add tests/fork_corpus.py's generated articles (the fork tests' corpus)",
    )
    parser.add_argument(
        "--workers", type=int, default=0, help="index worker processes (default 0: one process, one segment)"
    )
    parser.add_argument(
        "--work", type=Path, help="folder for the extracted articles and the index (default: a temporary one)"
    )
    args = parser.parse_args(argv)
    if not args.corpus and not args.livedoor and not args.generated:
        parser.error("name a corpus folder, --livedoor N or --generated")
    for path in args.corpus:
        if not path.exists():
            parser.error(f"no such corpus file or folder: {path}")
    if args.livedoor is not None and args.livedoor < 1:
        parser.error("--livedoor takes a number of articles, 1 or more")
    if args.livedoor and not args.tarball.is_file():
        parser.error(f"the livedoor tarball is not at {args.tarball}")
    if args.work:
        args.work.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="fingerprint-", dir=args.work) as work:
        corpus = [path.resolve() for path in args.corpus]
        if args.generated:
            from tests.fork_corpus import write_generated_news

            corpus.append(write_generated_news(Path(work) / "generated-news"))
        if args.livedoor:
            corpus.append(extract_livedoor(args.tarball, args.livedoor, Path(work) / "livedoor"))
        for text in fingerprint_corpus(corpus, Path(work), args.workers):
            print(text)
    print(f"fingerprint: {time.perf_counter() - started:.1f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
