"""Corpus readers: files, folders and tarballs in, `Article`s out.

Three formats are recognised, per file:
- the project's text/Markdown article format (title line, metadata lines, `## ` headed sections);
- the livedoor news corpus layout (URL, ISO date, title, body), detected from its first lines;
- JSON Lines, one article per line (`.jsonl`).

Nothing here raises for a bad file: it is yielded as `Unreadable(path, reason)` so a reindex can
report it and go on. A file that could not be read to its end (a damaged or truncated archive, an
I/O error) also yields an `IncompleteSource`, so that a reindex keeps what it held before: reading
never deletes. Symbolic links are followed only to where a corpus root given to the reader lies,
and a tarball's links and members named outside it are not followed at all.
"""

from __future__ import annotations

import functools
import hashlib
import io
import json
import lzma
import os
import re
import sys
import tarfile
import zlib
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path, PurePosixPath
from typing import Literal, cast, overload

from .articles import (
    MAX_SECTION_CHARS,
    Article,
    Section,
    bounded_line,
    bounded_sections,
    heading_of_line,
    safe_article_id,
    sections_from_paragraphs,
)

ARTICLE_SUFFIXES = {".txt", ".md", ".markdown"}
JSONL_SUFFIXES = {".jsonl", ".ndjson"}
# A corpus's own papers, also with a short tag (README.ja.md, LICENSE-CC.txt), but not an article
# whose name merely starts so (license-plate.txt, changes-2012.txt).
NOT_ARTICLES = re.compile(r"^(readme|license|licence|changes|copying)([._-][a-z]{1,3})?(\.[a-z]+)?$", re.IGNORECASE)
LIVEDOOR_ROOT = "text"
LIVEDOOR_SOURCE = "livedoor ニュース"

_URL = re.compile(r"^https?://\S+$")
_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2})?([+-]\d{2}:?\d{2}|Z)?$")
_METADATA_KEYS = {
    "出典": "source",
    "原題": "original_title",
    "日付": "date",
    "URL": "url",
    "カテゴリ": "category",
    "カテゴリー": "category",
}
_METADATA_PAIR = re.compile(r"(?P<key>出典|原題|日付|URL|カテゴリー|カテゴリ)\s*[:：]\s*(?P<value>\S*)")
_LINK_BLOCK_START = re.compile(r"^\s*[【■]?\s*関連(記事|情報|リンク)\s*】?\s*$")
# An author's profile heading (◆作家プロフィール◆, ●菜波プロフィール, ■著者プロフィール, 【筆者紹介】).
_PROFILE_START = re.compile(r"^\s*[【■◆●◎□]?\s*\S{0,8}?(プロフィール|筆者紹介|著者紹介)\s*[】■◆]?\s*[:：]?\s*$")
# What follows a profile heading to the article's end is its profile only when it is this short;
# more is body text that goes on after a heading that merely mentions a profile.
PROFILE_MAX_LINES = 12
PROFILE_MAX_CHARS = 800
# A trailing line of a bare link list: one ・ then a link title (not ・・・, an ellipsis), short.
_BARE_LINK = re.compile(r"^・(?!・)\S.{0,99}$")
# A short line that announces such a list (■デジ通の記事をもっと見る, 【MOVIE ENTER おすすめ記事】,
# ■メッシ、インタビュー事件はこちらでも詳しく紹介, ■Androidに関連した記事を読む).
_LINK_LIST_HEADER = re.compile(
    r"^.{0,40}(記事を(もっと)?(みる|見る|読む)|関連した記事|おすすめ.{0,6}(記事|ニュース|特集|コンテンツ)"
    r"|関連(記事|ニュース|サイト|URL|特集|情報|リンク)|参考リンク|バックナンバー|こちら|コチラ).{0,8}$"
)
# A shop's product box that ends many articles: its title, maker, 販売元：Amazon.co.jp, クチコミを見る.
_PRODUCT_BOX_END = "クチコミを見る"
PRODUCT_BOX_MAX_LINES = 6
_SENTENCE_ENDINGS = ("。", "！", "？", "!", "?", "、", "」", "）", ")")
_PLAIN_HEADING_MAX = 50
# The largest article file, tarball member or JSON Lines line read (a JSON Lines file as a whole has
# no limit: it is read a line at a time). A bigger one is reported and skipped, not loaded.
MAX_ARTICLE_BYTES = 32 * 1024 * 1024
# What reading a file, an archive or a compressed stream can raise part of the way through.
READ_ERRORS = (OSError, EOFError, tarfile.TarError, zlib.error, lzma.LZMAError, ValueError)


@dataclass(frozen=True)
class Unreadable:
    """A file (or JSONL line) that could not be turned into an article, and why."""

    path: str
    reason: str


@dataclass(frozen=True)
class IncompleteSource(Unreadable):
    """A corpus file or folder read only in part (damaged or truncated archive, I/O error).

    `source` is the file or folder whose articles the live index keeps as they were: an unread
    part of a source is never taken for articles that were removed from it.
    """

    source: str = ""


@dataclass(frozen=True)
class SuspectEnd(IncompleteSource):
    """An archive read whole that may still have been cut short: it ends in more zeros than tar
    pads with by default, as a file cut short and zero-filled does, and as an archive written
    with a big record (`tar -b 64`) does too. Nothing is lost by reading it; it counts as read in
    part only where it no longer yields an article the live index has from it (`reindex`)."""


@dataclass(frozen=True)
class KnownArticle:
    """A JSON Lines article whose line, byte for byte, the live index already holds: not parsed.

    Reading is most of an update's cost on a big feed with a few changed lines, and most of
    reading is decoding and parsing lines that have not changed.
    """

    id: str
    path: str


ReadResult = Article | Unreadable


class UndecodableError(ValueError):
    """The bytes are in none of the encodings Japanese news is written in."""


# --- encodings -------------------------------------------------------------------------------


def decode_japanese(data: bytes) -> str:
    """Decode UTF-8 (with or without BOM), UTF-16 with BOM, Shift_JIS/CP932 or EUC-JP.

    CP932 and EUC-JP byte ranges overlap, so when both decode we keep the one whose text looks
    more like Japanese (kana share), which is what a wrong guess destroys first.
    """
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return data.decode("utf-16")
    if b"\x00" in data:
        raise UndecodableError("binary file (contains NUL bytes)")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        pass
    candidates = []
    for encoding in ("cp932", "euc_jp"):
        try:
            candidates.append(data.decode(encoding))
        except UnicodeDecodeError:
            continue
    if not candidates:
        raise UndecodableError("not UTF-8, Shift_JIS/CP932 or EUC-JP text")
    return max(candidates, key=_japanese_score)


def _japanese_score(text: str) -> float:
    kana = sum(1 for ch in text if "\u3040" <= ch <= "\u30ff")
    halfwidth_kana = sum(1 for ch in text if "\uff61" <= ch <= "\uff9f")
    return (kana - 2 * halfwidth_kana) / max(len(text), 1)


# --- walking a corpus ------------------------------------------------------------------------


@dataclass(frozen=True)
class CorpusFile:
    """One file a corpus path names (a tarball is one file), and its path under the corpus folder."""

    path: Path
    relative: str  # what article ids are made from


def read_corpus(paths: Iterable[Path | str]) -> Iterator[ReadResult]:
    """Every article (or unreadable file) under the given files, folders and tarballs, in order."""
    for file in corpus_files(paths):
        if isinstance(file, Unreadable):
            yield file
        else:
            yield from read_file(file)


NOT_A_REGULAR_FILE = "not a regular file (a pipe, socket or device): not read"


def corpus_files(paths: Iterable[Path | str]) -> Iterator[CorpusFile | Unreadable]:
    """The article files under the given files, folders and tarballs, in reading order.

    The paths given are the corpus roots: a symbolic link inside them is followed only when its
    target lies inside one of them (a folder link that leads back up is a loop, not followed);
    any other is reported and not read. A folder that cannot be listed is an `IncompleteSource`.
    """
    given = [Path(path) for path in paths]
    roots = [Path(os.path.realpath(path)) for path in given]
    for path, root in zip(given, roots):
        if not path.exists():
            yield IncompleteSource(str(path), "no such file or folder", source=os.path.abspath(path))
        elif path.is_dir():
            yield from _walk(path, PurePosixPath(), roots, (root,))
        elif not path.is_file():  # reading a pipe with no writer would wait forever
            yield IncompleteSource(str(path), NOT_A_REGULAR_FILE, source=os.path.abspath(path))
        else:
            yield CorpusFile(path, path.name)


def _walk(
    folder: Path, relative: PurePosixPath, roots: list[Path], ancestors: tuple[Path, ...]
) -> Iterator[CorpusFile | Unreadable]:
    """A folder's article files depth first, each folder's entries in name order (as sorted paths)."""
    try:
        with os.scandir(folder) as listing:
            entries = sorted(listing, key=lambda entry: entry.name)
    except OSError as error:
        yield IncompleteSource(
            str(folder), f"cannot list the folder: {error.strerror or error}", source=os.path.abspath(folder)
        )
        return
    for entry in entries:
        name = relative / entry.name
        if entry.name.startswith("."):
            continue
        try:
            is_link = entry.is_symlink()
            is_folder = entry.is_dir()
            is_file = not is_folder and entry.is_file()
        except OSError as error:
            yield Unreadable(entry.path, f"cannot read: {error.strerror or error}")
            continue
        wanted = is_folder or _is_article_file(name.as_posix()) or _is_tarball(PurePosixPath(entry.name))
        if wanted and _SURROGATE.search(entry.name):  # no id, report or manifest can carry it
            yield Unreadable(shown_path(entry.path), "its name is not UTF-8 text: rename it to have it read")
            continue
        if wanted and not (is_folder or is_file or is_link):
            yield IncompleteSource(entry.path, NOT_A_REGULAR_FILE, source=os.path.abspath(entry.path))
            continue
        if not wanted:
            continue
        target = Path(os.path.realpath(entry.path)) if is_link else None
        if target is not None and not any(target.is_relative_to(root) for root in roots):
            yield Unreadable(entry.path, f"symlink to outside the corpus: {target}")
        elif target is not None and not (is_folder or is_file):
            yield Unreadable(entry.path, f"symlink to nothing readable: {target}")
        elif is_folder:
            resolved = target or Path(os.path.realpath(entry.path))
            if resolved in ancestors:
                yield Unreadable(entry.path, f"symlink loop: leads back to {resolved}")
            else:
                yield from _walk(Path(entry.path), name, roots, (*ancestors, resolved))
        else:
            yield CorpusFile(Path(entry.path), name.as_posix())


@overload
def read_file(file: CorpusFile, known: None = None) -> Iterator[ReadResult]: ...
@overload
def read_file(file: CorpusFile, known: Mapping[str, str]) -> Iterator[ReadResult | KnownArticle]: ...
def read_file(
    file: CorpusFile, known: Mapping[str, str] | None = None
) -> Iterator[ReadResult | KnownArticle | IncompleteSource]:
    """The articles of one corpus file; a tarball's members, a JSON Lines file's lines.

    `known` maps `line_digest`s to article ids: a JSON Lines line with one of them comes out as
    a `KnownArticle` without being decoded or parsed.
    """
    if _is_tarball(file.path):
        yield from _read_tarball(file.path, known or {})
    else:
        yield from _read_file(file.path, file.relative, known or {})


def _is_tarball(path: Path | PurePosixPath) -> bool:
    return path.name.endswith((".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tar.xz"))


def _is_article_file(name: str) -> bool:
    pure = PurePosixPath(name)
    suffix = pure.suffix.lower()
    return (
        suffix in ARTICLE_SUFFIXES | JSONL_SUFFIXES
        and not NOT_ARTICLES.match(pure.name)
        and not any(part.startswith(".") for part in pure.parts)
    )


def _is_jsonl(name: str) -> bool:
    return PurePosixPath(name).suffix.lower() in JSONL_SUFFIXES


def shown_path(path: str) -> str:
    """A path as it can be printed: bytes of a name in no encoding (which Python carries as lone
    surrogates) shown as `\\xff` escapes."""
    return os.fsencode(path).decode("utf-8", "backslashreplace")


def describe_read_error(error: BaseException) -> str:
    """What went wrong while reading, for a person: truncated, corrupt, or the system's reason."""
    if isinstance(error, EOFError):
        return "the file ends early (truncated)"
    if isinstance(error, zlib.error | lzma.LZMAError) or "CRC" in str(error) or "zlib" in str(error):
        return f"compressed data is corrupt ({error})"
    if isinstance(error, tarfile.TarError):
        return f"a member header is corrupt ({error})"
    if isinstance(error, UnicodeError):
        return "a name in it is not valid text"
    if isinstance(error, OSError):
        return f"read error ({error.strerror or error})"
    return str(error)


def _read_file(
    path: Path, relative: str, known: Mapping[str, str]
) -> Iterator[ReadResult | KnownArticle | IncompleteSource]:
    """One file on disk. A JSON Lines file is streamed line by line: a feed can be gigabytes."""
    try:
        with open(path, "rb") as handle:
            if not _is_jsonl(relative):
                yield from _read_bytes_safely(relative, str(path), lambda: _read_bounded(handle))
            elif handle.read(2) in (b"\xff\xfe", b"\xfe\xff"):  # UTF-16 has no byte lines to stream
                handle.seek(0)
                yield from _read_bytes_safely(relative, str(path), lambda: _read_bounded(handle))
            else:
                handle.seek(0)
                yield from _read_jsonl_lines(handle, str(path), known)
    except READ_ERRORS as error:
        yield IncompleteSource(str(path), f"cannot read: {describe_read_error(error)}", source=os.path.abspath(path))


class TooLargeError(ValueError):
    """A file (or line) over MAX_ARTICLE_BYTES: not loaded."""


def _read_bounded(handle) -> bytes:
    """A handle's bytes, or TooLargeError past MAX_ARTICLE_BYTES (without reading all of them)."""
    data = handle.read(MAX_ARTICLE_BYTES + 1)
    if len(data) > MAX_ARTICLE_BYTES:
        raise TooLargeError(f"larger than {MAX_ARTICLE_BYTES // (1024 * 1024)} MB: not an article")
    return data


def _bounded_lines(handle) -> Iterator[bytes | None]:
    """A binary handle's lines without their line end; None for a line over MAX_ARTICLE_BYTES
    (skipped a megabyte at a time, never held whole)."""
    while raw := handle.readline(MAX_ARTICLE_BYTES + 1):
        if len(raw) > MAX_ARTICLE_BYTES and not raw.endswith(b"\n"):
            while (rest := handle.readline(1 << 20)) and not rest.endswith(b"\n"):
                pass
            yield None
        else:
            yield raw.rstrip(b"\r\n")


def _read_jsonl_lines(handle, shown_path: str, known: Mapping[str, str]) -> Iterator[ReadResult | KnownArticle]:
    """Each byte line of a JSON Lines file: known (by digest), else decoded on its own and parsed."""
    for number, raw in enumerate(_bounded_lines(handle), start=1):
        where = f"{shown_path}:{number}"
        if raw is None:
            yield Unreadable(where, f"line larger than {MAX_ARTICLE_BYTES // (1024 * 1024)} MB: not an article")
            continue
        digest = line_digest(raw)
        if digest in known:
            yield KnownArticle(known[digest], where)
            continue
        try:
            line = decode_japanese(raw)
        except (UndecodableError, UnicodeDecodeError) as error:
            yield Unreadable(where, str(error))
            continue
        if line.strip():
            yield _parse_jsonl_line(line, where, digest)


def _read_tarball(path: Path, known: Mapping[str, str]) -> Iterator[ReadResult | KnownArticle | IncompleteSource]:
    """A tarball's article members in name order, each read on its own.

    The whole archive is listed first (which decompresses all of it) and its end checked (a
    compressed archive's checksum covers every byte). Damage part of the way through (a corrupt
    header or compressed block, a truncated file) ends with an `IncompleteSource`: the members
    before it are read, except the last one, whose data ran into the damage. A checksum that fails
    with no other sign says some bytes are wrong, not which: then no member is read. Links and
    members named outside the archive (absolute, `..`) are reported and not read.
    """
    damaged = functools.partial(IncompleteSource, str(path), source=os.path.abspath(path))
    try:
        archive = tarfile.open(path)  # noqa: SIM115 - closed by the `with` below; only opening is caught here
    except READ_ERRORS as error:
        yield damaged(f"not a readable tar archive: {_unopenable_archive(path, error)}")
        return
    with archive:
        members, damage = _tar_members(archive)
        if damage is None and not _ends_as_an_archive(archive):
            damage = "a member header is corrupt or the file ends early"
        if damage is not None:
            damage = f"archive damaged after {len(members):,} of its members ({damage})"
            members = members[:-1]  # its data ran into the damage
        else:
            checksum, tail, zeros = _tail_damage(archive)
            if checksum is not None:
                yield damaged(f"archive damaged ({checksum}): none of its {len(members):,} members is read")
                return
            if tail is not None:  # every member listed ended before the zeros: all are whole
                damage = f"archive damaged after {len(members):,} of its members ({tail})"
            elif zeros > DEFAULT_TAR_END_ZEROS:
                yield SuspectEnd(
                    str(path),
                    f"archive maybe damaged after {len(members):,} of its members ({zeros:,} bytes of zeros"
                    " after its last member, more than tar pads with by default: cut short and zero-filled?)",
                    source=os.path.abspath(path),
                )
        readable = []
        for member in members:
            outside = member.name.startswith("/") or ".." in PurePosixPath(member.name).parts
            if not _is_article_file(PurePosixPath(member.name).name if outside else member.name):
                continue
            where = f"{path}:{member.name}"
            if outside:
                yield Unreadable(where, "member named outside the archive: not read")
            elif member.issym() or member.islnk():
                yield Unreadable(where, f"link inside the archive (to {member.linkname}): not followed")
            elif member.isfile() and member.size > MAX_ARTICLE_BYTES and not _is_jsonl(member.name):
                yield Unreadable(where, f"larger than {MAX_ARTICLE_BYTES // (1024 * 1024)} MB: not an article")
            elif member.isfile():
                readable.append(member)
        failed: tuple[tarfile.TarInfo, str] | None = None  # the first member whose data could not be read
        unread = 0
        # A name listed twice (`tar -r` appends a new version) is its last copy, as tar extracts it.
        latest = {member.name: member for member in readable}
        for member in sorted(latest.values(), key=lambda m: m.name):
            if failed is not None and member.offset >= failed[0].offset:
                unread += 1  # past the damage in the stream: it would fail too, slowly
                continue
            try:
                yield from _read_member(archive, member, f"{path}:{member.name}", known)
            except READ_ERRORS as error:
                failed = (member, describe_read_error(error))
                unread += 1
        if failed is not None:
            damage = f"archive damaged at its member {failed[0].name} ({failed[1]}): {unread:,} members not read"
        if damage is not None:
            yield damaged(damage)


_COMPRESSIONS: tuple[tuple[bytes, Literal["r:gz", "r:bz2", "r:xz"], str], ...] = (
    (b"\x1f\x8b", "r:gz", "gzip"),
    (b"BZh", "r:bz2", "bzip2"),
    (b"\xfd7zXZ\x00", "r:xz", "xz"),
)


def _unopenable_archive(path: Path, error: BaseException) -> str:
    """Why `tarfile` could not open an archive, in one line: its own message lists each
    compression it tried, one line each, in its own words."""
    if not isinstance(error, tarfile.ReadError):
        return describe_read_error(error)
    try:
        with open(path, "rb") as handle:
            head = handle.read(6)
    except READ_ERRORS as again:
        return describe_read_error(again)
    if not head:
        return "the file is empty"
    for magic, mode, label in _COMPRESSIONS:
        if head.startswith(magic):
            try:
                tarfile.open(path, mode).close()
            except READ_ERRORS as again:
                if isinstance(again, tarfile.ReadError) and "header" in str(again):
                    return f"its {label} data holds no tar archive (or its first member header is corrupt)"
                if isinstance(again, tarfile.ReadError):
                    return f"its {label} data is corrupt"
                return describe_read_error(again).split(" (")[0]
            return describe_read_error(error)
    return "neither tar nor gzip, bzip2 or xz data (or its first member header is corrupt)"


def _read_member(
    archive: tarfile.TarFile, member: tarfile.TarInfo, where: str, known: Mapping[str, str]
) -> Iterator[ReadResult | KnownArticle]:
    """One tarball member's articles; a JSON Lines member streamed a line at a time."""
    # typeshed says IO[bytes]; a regular member's data is an io.BufferedReader, which can peek
    handle = cast("io.BufferedReader | None", archive.extractfile(member))
    if handle is None:
        raise OSError("member has no data")
    if _is_jsonl(member.name) and handle.peek(2)[:2] not in (b"\xff\xfe", b"\xfe\xff"):
        yield from _read_jsonl_lines(handle, where, known)
    else:
        yield from _read_bytes_safely(member.name, where, lambda: _read_bounded(handle))


def _tar_members(archive: tarfile.TarFile) -> tuple[list[tarfile.TarInfo], str | None]:
    """The members whose headers could be read, and what stopped the listing early (None: nothing)."""
    try:
        archive.getmembers()
    except READ_ERRORS as error:
        return _listed(archive), describe_read_error(error)
    return _listed(archive), None


def _listed(archive: tarfile.TarFile) -> list[tarfile.TarInfo]:
    """The members listed so far: `getmembers()` would try again to read past the damage."""
    return list(archive.members)  # type: ignore[attr-defined]  # a TarFile attribute typeshed leaves out


def _ends_as_an_archive(archive: tarfile.TarFile) -> bool:
    """Whether the listing stopped at the archive's end: a block of zeros, where `tarfile` also
    stops, without a word, at the first header it cannot read."""
    try:
        archive.fileobj.seek(archive.offset)
        block = archive.fileobj.read(tarfile.BLOCKSIZE)
    except READ_ERRORS:
        return False
    return len(block) == tarfile.BLOCKSIZE and block.count(0) == tarfile.BLOCKSIZE


# The most zeros a whole archive has past its last member: the two-block end marker, then padding
# to a whole record, which GNU tar and Python make 20 blocks by default and up to 1 MiB with
# `-b 2048` (tape drives use 64 to 256 KiB). More than the most is a file cut short and
# zero-filled; between the two, it may be either (`SuspectEnd`).
DEFAULT_TAR_END_ZEROS = 2 * tarfile.BLOCKSIZE + 20 * tarfile.BLOCKSIZE
MAX_TAR_END_ZEROS = 2 * tarfile.BLOCKSIZE + (1 << 20)


def _tail_damage(archive: tarfile.TarFile) -> tuple[str | None, str | None, int]:
    """The rest of the archive past the block of zeros its listing stopped at, read to its last
    byte: (why it does not decompress, a compressed stream's checksum being checked there; why those
    zeros are not the archive's end; how many zeros there are), the reasons None when all is well.
    `tarfile` takes the first block of zeros for the end, even with members after it (a header
    zeroed mid-archive); and a file cut short and zero-filled to its size (a preallocated
    download) ends in more zeros than tar pads with. Either way, taken for the end it would
    remove every later member's article."""
    zeros = tarfile.BLOCKSIZE  # the one `_ends_as_an_archive` read
    try:
        while chunk := archive.fileobj.read(1 << 20):
            if chunk.count(0) < len(chunk):
                return None, "a block of zeros in the middle of it, with members after it", zeros
            zeros += len(chunk)
    except READ_ERRORS as error:
        return describe_read_error(error), None, zeros
    if zeros > MAX_TAR_END_ZEROS:
        return (
            None,
            f"{zeros:,} bytes of zeros after its last member, more than tar pads with: cut short and zero-filled?",
            zeros,
        )
    return None, None, zeros


def _read_bytes_safely(relative: str, shown_path: str, load) -> Iterator[ReadResult]:
    """Read one file's articles, turning every failure into an `Unreadable` with its reason.

    An I/O error or damaged compressed data while loading propagates (the caller knows the source
    whose reading it cuts short); what the bytes hold is this file's own business."""
    try:
        data = load()
    except TooLargeError as error:
        yield Unreadable(shown_path, str(error))
        return
    try:
        text = decode_japanese(data)
    except (UndecodableError, UnicodeDecodeError) as error:
        yield Unreadable(shown_path, str(error))
        return
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    if _is_jsonl(relative):
        yield from parse_jsonl(text.split("\n"), shown_path)
        return
    try:
        yield parse_article_text(text, relative, shown_path)
    except ValueError as error:
        yield Unreadable(shown_path, str(error))


# --- one text file ---------------------------------------------------------------------------


def parse_article_text(text: str, relative: str, shown_path: str = "") -> Article:
    """An article from one text file, livedoor layout or the project's own format."""
    lines = text.split("\n")
    if len(lines) >= 3 and _URL.match(lines[0].strip()) and _ISO_DATE.match(lines[1].strip()):
        return parse_livedoor(lines, relative, shown_path)
    return parse_text_article(lines, relative, shown_path)


def _id_from_path(relative: str) -> str:
    return safe_article_id(_checked_text(str(PurePosixPath(relative).with_suffix("")), "path"))


_SURROGATE = re.compile(r"[\ud800-\udfff]")


def _checked_text(value: str, what: str) -> str:
    """`value`, or ValueError when it holds a lone surrogate (JSON's "\\ud800", a file name in
    no encoding): not a character, so no text file or index can hold it."""
    found = _SURROGATE.search(value)
    if found:
        raise ValueError(
            f"{what} holds {found.group().encode('unicode_escape').decode()!r}, half of a UTF-16 pair (not a character)"
        )
    return value


def _category_from_path(relative: str) -> str:
    parent = PurePosixPath(relative).parent
    return parent.name if parent.name else ""


def parse_livedoor(lines: list[str], relative: str, shown_path: str = "") -> Article:
    """The livedoor news corpus layout: URL, ISO date, title, then the body (link blocks dropped)."""
    parts = PurePosixPath(relative).parts
    if parts and parts[0] == LIVEDOOR_ROOT:
        relative = str(PurePosixPath(*parts[1:]))
    body = _drop_trailing_boilerplate(_drop_link_blocks(lines[3:]))
    paragraphs = _paragraphs(body)
    sections = sections_from_paragraphs("", paragraphs)
    if not sections:
        raise ValueError("livedoor article has no body text")
    return Article(
        id=_id_from_path(relative),
        title=bounded_line(lines[2].strip()),
        sections=sections,
        date=parse_date(lines[1].strip()),
        source=LIVEDOOR_SOURCE,
        url=lines[0].strip(),
        category=_category_from_path(relative),
        path=shown_path or relative,
    )


def _drop_link_blocks(lines: list[str]) -> list[str]:
    """Remove 【関連記事】/■関連記事/【関連情報】 blocks: link lists, not body text.

    A block is the marker line and what follows it while that is a list item (・…), a URL, a
    link title directly followed by its URL, or a blank line between such entries.
    """
    kept: list[str] = []
    index = 0
    while index < len(lines):
        if not _LINK_BLOCK_START.match(lines[index]):
            kept.append(lines[index])
            index += 1
            continue
        index += 1
        while index < len(lines):
            line = lines[index].strip()
            next_line = lines[index + 1].strip() if index + 1 < len(lines) else ""
            if not line or line.startswith("・") or _URL.match(line) or _URL.match(next_line):
                index += 1
            else:
                break
        kept.append("")
    return kept


def _drop_trailing_boilerplate(lines: list[str]) -> list[str]:
    """Remove what ends an article without being its text: a bare list of related-article titles
    (trailing lines that each start with one ・, after a blank line or a header such as
    【MOVIE ENTER おすすめ記事】 or ■デジ通の記事をもっと見る, as at the end of Sports Watch articles),
    an author's profile (a プロフィール heading and a few lines to the end) and a shop's product box
    (…販売元：Amazon.co.jp / クチコミを見る), in any order. Each only after body text, so an article
    never loses all of it.

    A bare list's lines are the titles of other articles: their words would make the article match
    what it is not about, and such a section, short and dense in them, outranks real text. A list
    of ・ items that are sentences (most ending in 。) with no such header before it is body text
    and stays, as do a list introduced by a sentence and lists in the middle of an article."""
    end = len(lines)
    while True:
        while end and not lines[end - 1].strip():
            end -= 1
        start = end
        for boilerplate_start in (_bare_list_start, _profile_start, _product_box_start):
            if start == end:
                start = boilerplate_start(lines, end)
        if start == end or not any(line.strip() for line in lines[:start]):
            return lines[:end]
        end = start


def _bare_list_start(lines: list[str], end: int) -> int:
    """Where the paragraph of bare links that ends at `end` starts, or `end` if it is none: lines
    that each start with one ・, standing as a paragraph of their own, most not ending in 。."""
    start = end
    while start and _BARE_LINK.match(lines[start - 1].strip()):
        start -= 1
    items = [line.strip() for line in lines[start:end]]
    if not items:
        return end
    if start and _LINK_LIST_HEADER.match(lines[start - 1].strip()):
        return start - 1  # its header says what it is, and goes with it (titles may end in 。: …だった件。)
    if (start and lines[start - 1].strip()) or 2 * sum(item.endswith("。") for item in items) > len(items):
        return end  # items of the sentence before them (…は次の通り。), or sentences: a list in the text
    return start


def _product_box_start(lines: list[str], end: int) -> int:
    """Where the product box that ends at `end` starts (its paragraph), or `end`."""
    if not end or lines[end - 1].strip() != _PRODUCT_BOX_END:
        return end
    start = end - 1
    while start and lines[start - 1].strip() and end - start < PRODUCT_BOX_MAX_LINES:
        start -= 1
    if not any(line.strip().startswith("販売元") for line in lines[start:end]):
        return end
    return start


def _profile_start(lines: list[str], end: int) -> int:
    """Where the author's profile that ends the article at `end` starts (its heading), or `end`."""
    for start in range(end - 1, max(-1, end - PROFILE_MAX_LINES - 4), -1):
        if _PROFILE_START.match(lines[start]):
            rest = [line for line in lines[start + 1 : end] if line.strip()]
            if len(rest) <= PROFILE_MAX_LINES and sum(len(line) for line in rest) <= PROFILE_MAX_CHARS:
                return start
            return end
    return end


def _paragraphs(lines: list[str]) -> list[str]:
    """Blank-line separated paragraphs, each a list of its non-blank lines joined by newlines."""
    paragraphs: list[str] = []
    current: list[str] = []
    for line in lines:
        stripped = line.strip()
        if stripped:
            if heading_of_line(stripped) is not None and current:
                paragraphs.append("\n".join(current))
                current = []
            current.append(stripped)
        elif current:
            paragraphs.append("\n".join(current))
            current = []
    if current:
        paragraphs.append("\n".join(current))
    return paragraphs


def parse_text_article(lines: list[str], relative: str, shown_path: str = "") -> Article:
    """The project's text format: `# title`, metadata lines, lead, `## heading` sections.

    A file that holds the same article twice, first flattened onto one line (inline `## `
    headings) and then laid out over lines, is read once, from its laid-out copy. Without any
    `## ` heading, short unpunctuated lines followed by a paragraph are taken as headings.
    """
    lines = _drop_flattened_duplicate([line.rstrip() for line in lines])
    while lines and not lines[0].strip():
        lines.pop(0)
    if not lines:
        raise ValueError("empty file")
    title = bounded_line(re.sub(r"^#\s+", "", lines[0].strip()))
    metadata, body_lines = _read_metadata(lines[1:])
    date = parse_date(metadata["date"]) if "date" in metadata else None
    sections = _text_sections(body_lines)
    if not sections:
        raise ValueError("article has a title but no body text")
    extra = {"original_title": metadata["original_title"]} if "original_title" in metadata else {}
    return Article(
        id=_id_from_path(relative),
        title=title,
        sections=sections,
        date=date,
        source=metadata.get("source", ""),
        url=metadata.get("url", ""),
        category=metadata.get("category") or _category_from_path(relative),
        path=shown_path or relative,
        extra=extra,
    )


def _squash(text: str) -> str:
    return re.sub(r"\s+|#+", "", text)


def _drop_flattened_duplicate(lines: list[str]) -> list[str]:
    """Drop a first line that is the rest of the file flattened (inline `## ` headings)."""
    non_empty = [i for i, line in enumerate(lines) if line.strip()]
    if len(non_empty) < 2:
        return lines
    first = lines[non_empty[0]]
    if "## " not in first[2:]:
        return lines
    rest = _squash("".join(lines[non_empty[1] :]))
    flattened = _squash(first)
    # The flattened copy is the laid-out copy minus its title line: compare its tail.
    tail = flattened[-200:]
    if tail and tail in rest and len(flattened) >= 0.8 * len(rest) - 200:
        return lines[non_empty[1] :]
    return lines


def _read_metadata(lines: list[str]) -> tuple[dict[str, str], list[str]]:
    """Leading `キー: 値` lines; text after the last value on such a line starts the body."""
    metadata: dict[str, str] = {}
    index = 0
    while index < len(lines):
        line = lines[index].strip()
        if not line:
            index += 1
            continue
        if not re.match(_METADATA_PAIR, line):
            break
        position = 0
        for match in _METADATA_PAIR.finditer(line):
            if line[position : match.start()].strip():
                break
            metadata[_METADATA_KEYS[match.group("key")]] = bounded_line(match.group("value"))
            position = match.end()
        remainder = line[position:].strip()
        index += 1
        if remainder:
            return metadata, [remainder, *lines[index:]]
    return metadata, lines[index:]


def _text_sections(lines: list[str]) -> list[Section]:
    """Sections under `## ` headings (or plain heading lines); unheaded text cut at paragraphs."""
    if not any(line.startswith("## ") for line in lines):
        has_blank_lines = any(not line.strip() for line in "\n".join(lines).strip().split("\n"))
        if has_blank_lines or any(heading_of_line(line) for line in lines):
            return sections_from_paragraphs("", _paragraphs(lines))
        lines = _mark_plain_headings(lines)
    sections: list[Section] = []
    heading = ""
    paragraphs: list[str] = []

    def flush() -> None:
        if sum(len(p) for p in paragraphs) <= MAX_SECTION_CHARS:
            text = "\n".join(paragraphs)
            sections.extend([Section(heading, text)] if text else [])
        else:  # an over-long headed section: several sections under the same heading
            sections.extend(sections_from_paragraphs(heading, paragraphs))
        paragraphs.clear()

    for line in lines:
        if line.startswith("## "):
            flush()
            heading = bounded_line(line[3:].strip())
        elif line.strip():
            paragraphs.append(line.strip())
    flush()
    return sections


def _mark_plain_headings(lines: list[str]) -> list[str]:
    """Turn short unpunctuated lines that introduce a longer paragraph into `## ` headings."""
    content = [i for i, line in enumerate(lines) if line.strip()]
    marked = list(lines)
    for position, index in enumerate(content[:-1]):
        line = lines[index].strip()
        following = lines[content[position + 1]].strip()
        if (
            position > 0
            and len(line) <= _PLAIN_HEADING_MAX
            and not line.endswith(_SENTENCE_ENDINGS)
            and not line.startswith(("・", "-", "*", "#"))
            and len(following) > len(line)
            and following.endswith(_SENTENCE_ENDINGS)
        ):
            marked[index] = "## " + line
    return marked


# --- JSON Lines ------------------------------------------------------------------------------


def parse_jsonl(lines: Iterable[str], shown_path: str) -> Iterator[ReadResult]:
    """One article per line of decoded text; a bad line is reported with its line number and skipped."""
    for number, line in enumerate(lines, start=1):
        if line.strip():
            yield _parse_jsonl_line(line, f"{shown_path}:{number}")


def line_digest(raw: bytes) -> str:
    """What identifies a JSON Lines article's content: a digest of its line's bytes.

    The line is everything the reader makes the article from, so hashing it stands for hashing
    the parsed article (a change in how lines are parsed must bump `INDEX_FORMAT`).
    """
    return hashlib.blake2b(raw, digest_size=16).hexdigest()


def _parse_jsonl_line(line: str, where: str, digest: str = "") -> ReadResult:
    try:
        record = json.loads(line)
    except RecursionError:  # `[[[[…` thousands deep: Python's parser gives up, the reindex goes on
        return Unreadable(where, "bad JSON article: nested too deeply")
    except json.JSONDecodeError as error:  # its own words ("Expecting value: line 1 column 1") are Python's
        return Unreadable(where, f"bad JSON article: not valid JSON (at character {error.pos + 1} of the line)")
    except ValueError:  # Python's own limit, in words about sys.set_int_max_str_digits()
        return Unreadable(where, f"bad JSON article: a number of over {sys.get_int_max_str_digits():,} digits")
    try:
        article = article_from_json(record, where)
    except (ValueError, TypeError, AttributeError) as error:
        return Unreadable(where, f"bad JSON article: {error}")
    article.source_digest = digest
    return article


def article_from_json(record: dict, where: str) -> Article:
    if not isinstance(record, dict):
        raise ValueError("a line must be a JSON object")

    def text(value, what: str) -> str:
        return _checked_text("" if value is None else str(value), what)  # (an id of 0 is "0")

    article_id = text(record.get("id"), '"id"').strip()
    if not article_id:
        raise ValueError('missing "id"')
    if "sections" in record:
        if not isinstance(record["sections"], list) or not all(isinstance(s, dict) for s in record["sections"]):
            raise ValueError('"sections" must be a list of {"heading": …, "text": …} objects')
        sections = [
            Section(text(s.get("heading"), "a heading").strip(), text(s.get("text"), "a section").strip())
            for s in record["sections"]
        ]
        sections = bounded_sections([s for s in sections if s.text])
    elif "body" in record:
        sections = sections_from_paragraphs("", _paragraphs(text(record["body"], '"body"').split("\n")))
    else:
        raise ValueError('needs "sections" or "body"')
    if not sections:
        raise ValueError("no section has text")
    return Article(
        id=safe_article_id(article_id),
        title=bounded_line(text(record.get("title"), '"title"').strip()),
        sections=sections,
        date=parse_date(text(record["date"], '"date"')) if record.get("date") else None,
        source=bounded_line(text(record.get("source"), '"source"')),
        url=bounded_line(text(record.get("url"), '"url"')),
        category=bounded_line(text(record.get("category"), '"category"')),
        path=where,
    )


# --- dates -----------------------------------------------------------------------------------

# Whole numbers only: 99999-01-01 is no date, not 9999-01-01 (nor 20120-05-01 the year 120).
_JAPANESE_DATE = re.compile(r"(?<!\d)(\d{4})\s*[年/.-]\s*(\d{1,2})\s*[月/.-]\s*(\d{1,2})(?!\d)")


def parse_date(value: str) -> datetime | None:
    """ISO 8601 (livedoor's `+0900` too), `2025年12月9日` or `2025/12/09`; None if unparsable.

    The wall-clock time is kept as written (time zone dropped): news dates are read as printed.
    """
    value = str(value).strip()
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        match = _JAPANESE_DATE.search(value)
        if not match:
            return None
        try:
            year, month, day = map(int, match.groups())
            return datetime(year, month, day)
        except ValueError:
            return None
    return parsed.replace(tzinfo=None)


def estimate_articles(paths: Iterable[Path | str]) -> int:
    """About how many articles `read_corpus` will yield, for a progress bar (cheap: no parsing)."""
    total = 0
    for file in corpus_files(paths):
        if isinstance(file, Unreadable):
            continue
        if _is_tarball(file.path):
            try:
                with tarfile.open(file.path) as archive:
                    total += sum(1 for m in archive if m.isfile() and _is_article_file(m.name))
            except READ_ERRORS:  # damaged: reading it will say how (a truncated gzip raises EOFError)
                continue
        elif file.path.suffix.lower() in JSONL_SUFFIXES:
            total += _lines(file.path)
        else:
            total += 1
    return total


def _lines(path: Path) -> int:
    """Lines in a JSON Lines file, counted a megabyte at a time (a feed can be gigabytes)."""
    total, last = 0, b"\n"
    try:
        with open(path, "rb") as handle:
            while chunk := handle.read(1 << 20):
                total += chunk.count(b"\n")
                last = chunk[-1:]
    except OSError:
        return 0
    return total + (0 if last == b"\n" else 1)
