"""Faults on the corpus side: damaged archives, bad lines, symlinks, unsafe ids, endless text.

Reading never deletes: an article leaves the index only when its source was read to its end and no
longer holds it. Each test runs on real text: the fixture corpus tests/fixtures/news (packed into a
tarball here) and, where ../shared has it, the livedoor tarball.
"""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
from conftest import CORPUS, LIVEDOOR_TARBALL, SAMPLE_ARTICLE_ID, require

from search import snippets
from search.analysis.sudachi import MAX_CHUNK_BYTES, chunks
from search.codec.store import IndexStore
from search.indexing import reindex
from search.query.parse import HighlightSpec
from search.searching import SearchIndex
from search.sources import readers
from search.sources.articles import MAX_SECTION_CHARS, safe_article_id
from search.sources.readers import IncompleteSource, read_corpus

NEWS = Path(__file__).resolve().parent / "fixtures" / "news"
NEWS_IDS = {
    f"news/{path.relative_to(NEWS).with_suffix('').as_posix()}"
    for path in NEWS.rglob("*.txt")
    if path.name != "README.md"
}


def news_articles() -> dict[str, bytes]:
    """The fixture corpus's article files by their path under news/."""
    return {f"news/{path.relative_to(NEWS).as_posix()}": path.read_bytes() for path in sorted(NEWS.rglob("*.txt"))}


def pack(target: Path, files: dict[str, bytes], compression: str = "gz") -> bytes:
    """A tarball of `files` with fixed metadata (the same bytes on every machine); its bytes."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode=f"w:{compression}" if compression else "w") as archive:
        for name, data in files.items():
            member = tarfile.TarInfo(name)
            member.size, member.mtime, member.mode = len(data), 1_300_000_000, 0o644
            archive.addfile(member, io.BytesIO(data))
    if compression == "gz":  # the gzip header's own time, too
        data = bytearray(buffer.getvalue())
        data[4:8] = b"\0\0\0\0"
        target.write_bytes(bytes(data))
    else:
        target.write_bytes(buffer.getvalue())
    return target.read_bytes()


def flip_middle(data: bytes) -> bytes:
    """16 bytes inverted half way through, as the issue's reproduction did."""
    damaged = bytearray(data)
    middle = len(data) // 2
    for offset in range(middle, middle + 16):
        damaged[offset] ^= 0xFF
    return bytes(damaged)


def corrupt_header(data: bytes) -> bytes:
    """An uncompressed tarball whose fifth member header has its name scrambled (bad checksum):
    `tarfile` stops listing there without a word, which used to read as 'the rest was removed'."""
    with tarfile.open(fileobj=io.BytesIO(data)) as archive:
        offset = archive.getmembers()[4].offset
    damaged = bytearray(data)
    damaged[offset : offset + 16] = b"\xff" * 16
    return bytes(damaged)


def zeroed_header(data: bytes) -> bytes:
    """The fifth member's header zeroed: `tarfile` took the block of zeros for the archive's end,
    and the articles of every member after it were removed."""
    offset = _fifth_member(data)
    return data[:offset] + bytes(tarfile.BLOCKSIZE) + data[offset + tarfile.BLOCKSIZE :]


def cut_and_zero_filled(data: bytes) -> bytes:
    """Cut short at the fifth member's header and zero-filled to its size, as a preallocated
    download leaves it: a well-formed archive of four members, but for the zeros (the rest of
    the download is made over the largest padding tar writes: a 1 MiB record)."""
    offset = _fifth_member(data)
    return data[:offset] + bytes(max(len(data) - offset, readers.MAX_TAR_END_ZEROS + 1))


def _fifth_member(data: bytes) -> int:
    with tarfile.open(fileobj=io.BytesIO(data)) as archive:
        return archive.getmembers()[4].offset


DAMAGES = {
    "bit-flipped": ("gz", flip_middle),
    "truncated": ("gz", lambda data: data[: len(data) * 2 // 3]),
    "corrupt-header": ("", corrupt_header),
    "zeroed-header": ("", zeroed_header),
    "cut-and-zero-filled": ("", cut_and_zero_filled),
}


def article_ids(root: Path) -> set[str]:
    return set(IndexStore(root).manifest().articles)


def hits(root: Path, query: str) -> set[str]:
    return {hit.article_id for hit in SearchIndex(root).search(query, limit=50).hits}


def source_faults(report) -> list[IncompleteSource]:
    return [item for item in report.skipped if isinstance(item, IncompleteSource)]


# --- damaged and truncated tarballs ----------------------------------------------------------


@pytest.mark.parametrize("damage", DAMAGES)
def test_a_damaged_tarball_next_to_a_good_corpus_removes_nothing(damage, tmp_path):
    compression, spoil = DAMAGES[damage]
    tarball = tmp_path / ("news.tar.gz" if compression else "news.tar")
    good = pack(tarball, news_articles(), compression)
    root = tmp_path / "index"
    assert reindex([tarball, CORPUS], root, workers=0).added.articles == len(NEWS_IDS) + 1

    tarball.write_bytes(spoil(good))
    report = reindex([tarball, CORPUS], root, workers=0)
    assert report.removed.articles == 0
    assert article_ids(root) == NEWS_IDS | {SAMPLE_ARTICLE_ID}
    fault, *_ = source_faults(report)
    assert report.skipped[0] == fault and fault.path == str(tarball)
    assert "damaged" in fault.reason and re.search(r"kept as (they were|it was)", fault.reason)
    assert "円高" not in fault.reason and "Traceback" not in fault.reason
    assert hits(root, "為替介入") >= {"news/economy/economy-0001"}  # a kept article still answers

    # Repaired: everything read again, nothing skipped; and a member really gone is then removed.
    tarball.write_bytes(good)
    repaired = reindex([tarball, CORPUS], root, workers=0)
    assert repaired.skipped == [] and repaired.removed.articles == 0
    assert article_ids(root) == NEWS_IDS | {SAMPLE_ARTICLE_ID}
    files = news_articles()
    del files["news/sports/sports-0003.txt"]
    pack(tarball, files, compression)
    assert reindex([tarball, CORPUS], root, workers=0).removed.articles == 1
    assert "news/sports/sports-0003" not in article_ids(root)


def test_a_small_tar_cut_short_and_zero_filled_removes_nothing(tmp_path):
    """The first adversary's repro: ten articles in a plain .tar, cut at the fifth member's header
    and zero-filled to the old size. Fewer zeros than a big record's padding, so the archive may
    be whole: it is read whole, and counts as read in part only because it no longer yields five
    articles the index has from it. A new archive like it (nothing to lose) is read quietly."""
    tarball = tmp_path / "news.tar"
    good = pack(tarball, news_articles(), "")
    root = tmp_path / "index"
    assert reindex([tarball], root, workers=0).added.articles == len(NEWS_IDS)
    offset = _fifth_member(good)
    tarball.write_bytes(good[:offset] + bytes(len(good) - offset))
    assert readers.DEFAULT_TAR_END_ZEROS < len(good) - offset < readers.MAX_TAR_END_ZEROS  # (the premise)
    report = reindex([tarball], root, workers=0)
    assert report.removed.articles == 0 and article_ids(root) == NEWS_IDS
    [fault] = source_faults(report)
    assert "maybe damaged after 4 of its members" in fault.reason and "kept as they were" in fault.reason
    fresh = reindex([tarball], tmp_path / "fresh", workers=0)
    assert fresh.skipped == [] and fresh.added.articles == 4


@pytest.mark.parametrize("blocking", [1, 20, 64, 2048])
def test_a_whole_tar_with_any_record_size_is_read_whole(tmp_path, blocking):
    """GNU tar pads an archive to its record (`-b`: 20 blocks by default, 64 KiB at -b 128, 1 MiB
    at -b 2048): padding, not the zero-filled tail of a file cut short."""
    data = pack(tmp_path / "news.tar", news_articles(), "")
    with tarfile.open(fileobj=io.BytesIO(data)) as archive:
        archive.getmembers()
        end = archive.offset  # past the last member: the end marker and padding follow
    record = blocking * tarfile.BLOCKSIZE
    (tmp_path / "news.tar").write_bytes(data[:end] + bytes(-(-(end + 2 * tarfile.BLOCKSIZE) // record) * record - end))
    report = reindex([tmp_path / "news.tar"], tmp_path / "index", workers=0)
    assert report.skipped == [] and article_ids(tmp_path / "index") == NEWS_IDS


def test_a_member_appended_again_is_read_in_its_last_version(tmp_path):
    """`tar -r` adds a file's new version after the old one; tar extracts the last. Reading the
    first and calling the second a duplicate kept the old text."""
    tarball = tmp_path / "news.tar"
    with tarfile.open(tarball, "w") as archive:
        for name, text in (("a.txt", "# 古い\n\nりんごの記事です。\n"), ("b.txt", "# 別\n\n別の記事。\n")):
            member = tarfile.TarInfo(name)
            member.size = len(text.encode())
            archive.addfile(member, io.BytesIO(text.encode()))
    with tarfile.open(tarball, "a") as archive:
        text = "# 新しい\n\nみかんの記事です。\n".encode()
        member = tarfile.TarInfo("a.txt")
        member.size = len(text)
        archive.addfile(member, io.BytesIO(text))
    report = reindex([tarball], tmp_path / "index", workers=0)
    assert report.skipped == [] and report.added.articles == 2
    assert hits(tmp_path / "index", "みかん") and not hits(tmp_path / "index", "りんご")


@pytest.mark.parametrize("damage", [*DAMAGES, "xz-bit-flipped"])
def test_the_progress_estimate_reads_past_a_damaged_tarball(damage, tmp_path):
    """Only a terminal's progress bar asks for it: a truncated .tar.gz (EOFError) ended the reindex
    as "aborted" there, a damaged .tar.xz (LZMAError) as an internal error."""
    compression, spoil = DAMAGES.get(damage, ("xz", flip_middle))
    tarball = tmp_path / ("news.tar." + compression if compression else "news.tar")
    tarball.write_bytes(spoil(pack(tarball, news_articles(), compression)))
    assert 0 <= readers.estimate_articles([tarball, CORPUS]) <= len(NEWS_IDS) + 1


@pytest.mark.parametrize("damage", DAMAGES)
def test_a_first_build_indexes_what_a_damaged_tarball_lets_it_read_and_the_other_corpora(damage, tmp_path):
    compression, spoil = DAMAGES[damage]
    tarball = tmp_path / ("news.tar.gz" if compression else "news.tar")
    tarball.write_bytes(spoil(pack(tarball, news_articles(), compression)))
    root = tmp_path / "index"
    report = reindex([tarball, CORPUS], root, workers=0)
    indexed = article_ids(root)
    assert SAMPLE_ARTICLE_ID in indexed and hits(root, "エヌビディア") == {SAMPLE_ARTICLE_ID}
    assert indexed - {SAMPLE_ARTICLE_ID} < NEWS_IDS  # some of the tarball is missing, none invented
    fault, *_ = source_faults(report)
    assert "not indexed" in fault.reason


@pytest.mark.slow
def test_a_tarball_dropped_into_the_corpus_folder_is_read_as_if_given_itself(tmp_path):
    """Index corpus/, put a tarball into it, reindex: its articles come in under the ids they
    have when the tarball is given with --corpus (a tarball inside a folder was skipped without a
    word: 0 articles added); a damaged one keeps them; taking it out removes them."""
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "seed.md").write_bytes(next(CORPUS.glob("*.md")).read_bytes())
    root = tmp_path / "index"
    first = midashi("reindex", "--corpus", str(corpus), "--index", str(root))
    assert first.returncode == 0, first.stderr
    data = pack(corpus / "news.tar.gz", news_articles())
    second = midashi("reindex", "--corpus", str(corpus), "--index", str(root))
    assert second.returncode == 0, second.stderr
    assert re.search(rf"added +{len(NEWS_IDS)} articles", second.stdout), second.stdout
    assert article_ids(root) - {"seed"} == NEWS_IDS
    assert hits(root, "ザッケローニ") and hits(root, "ザッケローニ") <= NEWS_IDS
    (corpus / "news.tar.gz").write_bytes(flip_middle(data))
    damaged = midashi("reindex", "--corpus", str(corpus), "--index", str(root))
    assert "archive damaged" in damaged.stdout + damaged.stderr and "Traceback" not in damaged.stderr
    assert article_ids(root) - {"seed"} == NEWS_IDS
    (corpus / "news.tar.gz").unlink()
    third = midashi("reindex", "--corpus", str(corpus), "--index", str(root))
    assert third.returncode == 0, third.stderr
    assert article_ids(root) == {"seed"}


def midashi(*args: str) -> subprocess.CompletedProcess:
    """The real entry point, as a shell runs it."""
    code = "from search.cli import main; main()"
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=300)


@pytest.mark.slow
def test_the_cli_reports_a_damaged_tarball_in_one_line_and_removes_nothing(tmp_path):
    tarball = tmp_path / "news.tar.gz"
    good = pack(tarball, news_articles())
    root = tmp_path / "index"
    assert (
        midashi(
            "reindex", "--corpus", str(tarball), "--corpus", str(CORPUS), "--index", str(root), "--workers", "0"
        ).returncode
        == 0
    )
    for spoilt in (flip_middle(good), good[: len(good) * 2 // 3]):
        tarball.write_bytes(spoilt)
        result = midashi("reindex", "--corpus", str(tarball), "--corpus", str(CORPUS), "--index", str(root))
        assert result.returncode == 0, result.stderr
        assert "Traceback" not in result.stdout + result.stderr and result.stderr == ""
        assert re.search(r"removed +0 articles", result.stdout)
        fault_lines = [line for line in result.stdout.splitlines() if line.strip().startswith(f"{tarball}:")]
        assert fault_lines and re.search(r"kept as (they were|it was)", fault_lines[0])
        assert article_ids(root) == NEWS_IDS | {SAMPLE_ARTICLE_ID}


@pytest.fixture(scope="module")
def livedoor_sample() -> dict[str, bytes]:
    """60 real livedoor articles (20 from each of three sites), as their tarball names them."""
    taken: dict[str, bytes] = {}
    per_site: dict[str, int] = {}
    with tarfile.open(require(LIVEDOOR_TARBALL)) as archive:
        for member in archive:
            parts = member.name.split("/")
            if not member.isfile() or len(parts) != 3 or not parts[2].startswith(parts[1]):
                continue
            if per_site.setdefault(parts[1], 0) < 20 and len(per_site) <= 3:
                per_site[parts[1]] += 1
                taken[member.name] = archive.extractfile(member).read()
            if len(taken) == 60:
                break
    return taken


@pytest.mark.livedoor
@pytest.mark.parametrize("damage", ["bit-flipped", "truncated"])
def test_livedoor_articles_survive_a_damaged_tarball(livedoor_sample, damage, tmp_path):
    _, spoil = DAMAGES[damage]
    tarball = tmp_path / "ldcc.tar.gz"
    good = pack(tarball, livedoor_sample)
    root = tmp_path / "index"
    built = reindex([tarball, CORPUS], root, workers=0)
    assert built.added.articles == 61
    everything = article_ids(root)
    tarball.write_bytes(spoil(good))
    report = reindex([tarball, CORPUS], root, workers=0)
    assert report.removed.articles == 0 and article_ids(root) == everything
    assert "kept as they were" in source_faults(report)[0].reason
    tarball.write_bytes(good)
    assert reindex([tarball, CORPUS], root, workers=0).skipped == []
    assert article_ids(root) == everything


@pytest.mark.livedoor
def test_the_real_livedoor_tarball_reads_to_its_end_without_a_fault():
    results = list(read_corpus([require(LIVEDOOR_TARBALL)]))
    assert not [r for r in results if isinstance(r, readers.Unreadable)]
    assert len(results) == 7367


# --- JSON Lines with bad lines ---------------------------------------------------------------


def fixture_bodies() -> list[tuple[str, str]]:
    """(title, body) of the fixture articles (livedoor layout: line 3 the title)."""
    pairs = []
    for path in sorted(NEWS.rglob("*.txt")):
        lines = path.read_text(encoding="utf-8").split("\n")
        pairs.append((lines[2], "\n".join(lines[3:]).strip()))
    return pairs


def test_a_feed_with_bad_lines_indexes_the_good_ones_and_removes_nothing_it_could_not_read(tmp_path):
    (title1, body1), (title2, body2), (title3, body3), *_ = fixture_bodies()
    good = [
        json.dumps({"id": f"feed/{n}", "title": t, "body": b}, ensure_ascii=False)
        for n, (t, b) in enumerate([(title1, body1), (title2, body2), (title3, body3)], start=1)
    ]
    bad = [
        '{"id": "feed/surrogate", "title": "\\ud800", "body": "壊れた見出しの記事。"}',
        '{"id": "feed/broken", "title": "閉じていない',
        '["not", "an", "object"]',
        '{"title": "idのない記事", "body": "本文。"}',
    ]
    feed = tmp_path / "feed.jsonl"
    lines = [good[0], bad[0], good[1], bad[1], bad[2], bad[3], good[2]]
    feed.write_bytes(("\n".join(lines) + "\n").encode("utf-8") + b"\xff\xfe\xfd not text\n")
    root = tmp_path / "index"
    report = reindex([feed], root, workers=0)
    assert report.added.articles == 3 and article_ids(root) == {"feed/1", "feed/2", "feed/3"}
    reasons = {item.path.rsplit(":", 1)[-1]: item.reason for item in report.skipped if ".jsonl:" in item.path}
    assert set(reasons) == {"2", "4", "5", "6", "8"}
    assert "half of a UTF-16 pair" in reasons["2"] and "\\ud800" in reasons["2"]
    assert "bad JSON" in reasons["4"] and 'missing "id"' in reasons["6"]
    assert hits(root, "為替介入") == {"feed/1"}

    # feed/2's line gone while bad lines remain: the file was not read in full, so it stays.
    feed.write_bytes(("\n".join([good[0], bad[0], good[2]]) + "\n").encode("utf-8"))
    report = reindex([feed], root, workers=0)
    assert report.removed.articles == 0 and "feed/2" in article_ids(root)
    assert "its other article is kept as it was" in source_faults(report)[0].reason
    # Read in full without a fault: now it is removed.
    feed.write_bytes(("\n".join([good[0], good[2]]) + "\n").encode("utf-8"))
    report = reindex([feed], root, workers=0)
    assert report.skipped == [] and report.removed.articles == 1
    assert article_ids(root) == {"feed/1", "feed/3"}


# --- symlinks --------------------------------------------------------------------------------


def test_symlinks_are_followed_only_inside_the_corpus_roots(tmp_path):
    corpus = tmp_path / "corpus"
    for name, data in news_articles().items():
        (corpus / name).parent.mkdir(parents=True, exist_ok=True)
        (corpus / name).write_bytes(data)
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_bytes((NEWS / "tech" / "tech-0001.txt").read_bytes())
    other_root = tmp_path / "other"
    other_root.mkdir()
    (other_root / "shared.txt").write_bytes((NEWS / "economy" / "economy-0002.txt").read_bytes())
    (corpus / "passwd-link.txt").symlink_to("/etc/passwd")
    (corpus / "secret-link.txt").symlink_to(outside / "secret.txt")
    (corpus / "outside-folder").symlink_to(outside, target_is_directory=True)
    (corpus / "news" / "alias.txt").symlink_to(corpus / "news" / "economy" / "economy-0001.txt")
    (corpus / "news" / "loop").symlink_to(corpus / "news", target_is_directory=True)
    (corpus / "from-other.txt").symlink_to(other_root / "shared.txt")
    (corpus / "dangling.txt").symlink_to(tmp_path / "nothing-here.txt")

    root = tmp_path / "index"
    report = reindex([corpus, other_root], root, workers=0)
    reasons = {Path(item.path).name: item.reason for item in report.skipped}
    assert reasons["passwd-link.txt"] == "symlink to outside the corpus: /etc/passwd"
    assert reasons["secret-link.txt"].startswith("symlink to outside the corpus:")
    assert reasons["outside-folder"].startswith("symlink to outside the corpus:")
    assert reasons["loop"].startswith("symlink loop")
    assert "dangling.txt" in reasons
    ids = article_ids(root)
    assert {"news/alias", "from-other", "shared"} <= ids  # inside a root given: followed
    assert not {"passwd-link", "secret-link", "outside-folder/secret"} & ids
    assert not any(id.startswith("news/loop/") for id in ids)
    assert hits(root, "root") == set() and hits(root, "daemon") == set()


def test_links_and_names_outside_a_tarball_are_not_followed(tmp_path):
    files = news_articles()
    tarball = tmp_path / "news.tar.gz"
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for name, data in files.items():
            member = tarfile.TarInfo(name)
            member.size = len(data)
            archive.addfile(member, io.BytesIO(data))
        for name, kind, target in (
            ("news/passwd.txt", tarfile.SYMTYPE, "/etc/passwd"),
            ("news/hard.txt", tarfile.LNKTYPE, "news/tech/tech-0001.txt"),
        ):
            link = tarfile.TarInfo(name)
            link.type, link.linkname = kind, target
            archive.addfile(link)
        for name in ("../escape.txt", "/absolute.txt"):
            data = files["news/tech/tech-0001.txt"]
            member = tarfile.TarInfo(name)
            member.size = len(data)
            archive.addfile(member, io.BytesIO(data))
    tarball.write_bytes(buffer.getvalue())
    report = reindex([tarball], tmp_path / "index", workers=0)
    reasons = {item.path.split(":", 1)[1]: item.reason for item in report.skipped}
    assert reasons["news/passwd.txt"].startswith("link inside the archive (to /etc/passwd)")
    assert reasons["news/hard.txt"].startswith("link inside the archive")
    assert "outside the archive" in reasons["../escape.txt"] and "outside the archive" in reasons["/absolute.txt"]
    assert article_ids(tmp_path / "index") == NEWS_IDS


# --- ids that cannot be shown as they are ----------------------------------------------------

UNSAFE_IDS = {
    "../../etc/passwd": "etc/passwd",
    "a#b": "a＃b",
    "/leading/slash": "leading/slash",
    "ctl\x01\x7fchars": "ctlchars",
    "back\\slash": "back/slash",
    "what?x=1": "what？x=1",
    "a//b/./c/": "a/b/c",
}


def test_unsafe_ids_are_normalised_and_their_pages_work(tmp_path):
    from web import create_app
    from web.views import article_url

    bodies = fixture_bodies()
    lines = [
        json.dumps({"id": raw, "title": bodies[n][0], "body": bodies[n][1]}, ensure_ascii=False)
        for n, raw in enumerate(UNSAFE_IDS)
    ]
    lines.append(json.dumps({"id": "../..", "title": "題", "body": "本文。"}, ensure_ascii=False))
    feed = tmp_path / "ids.jsonl"
    feed.write_text("\n".join(lines) + "\n", encoding="utf-8")
    folder = tmp_path / "files" / "q#a"
    folder.mkdir(parents=True)
    (folder / "what?.txt").write_bytes((NEWS / "tech" / "tech-0001.txt").read_bytes())
    root = tmp_path / "index"
    report = reindex([feed, tmp_path / "files"], root, workers=0)
    expected = set(UNSAFE_IDS.values()) | {"q＃a/what？"}
    assert article_ids(root) == expected
    (refused,) = [item for item in report.skipped if item.path.endswith(f":{len(lines)}")]
    assert "no usable characters" in refused.reason

    app = create_app(root)
    app.testing = True
    client = app.test_client()
    for article_id in expected:
        with app.test_request_context():
            url = article_url(article_id, 1)
        page = client.get(url.split("#")[0])
        assert page.status_code == 200, (article_id, url)
        assert "Traceback" not in page.get_data(as_text=True)
        api = client.get(url.replace("/articles/", "/api/articles/", 1).split("#")[0])
        assert api.status_code == 200 and api.get_json()["id"] == article_id


def test_the_id_rule_is_one_function():
    for raw, safe in UNSAFE_IDS.items():
        assert safe_article_id(raw) == safe
        assert safe_article_id(safe) == safe  # normalising twice changes nothing
    with pytest.raises(ValueError, match="longer than"):
        safe_article_id("あ" * 2000)


# --- very long text without sentence ends ----------------------------------------------------


def endless_text(chars: int, commas: bool = False) -> str:
    """Real article text repeated to `chars` with no sentence end or line break: with `commas`,
    each of them made a 、; without, every blank and punctuation mark taken out as well."""
    marks = r"[。！？!?\s]" if commas else r"[。！？!?\s、，,；;：:・（）()「」『』【】〔〕\[\]]"
    text = re.sub(marks, "、" if commas else "", "".join(body for _, body in fixture_bodies()))
    return (text * (chars // len(text) + 1))[:chars]


@pytest.mark.slow
@pytest.mark.parametrize("commas", [False, True])
def test_a_long_unpunctuated_article_is_cut_into_bounded_sections(commas, tmp_path):
    text = endless_text(300_000, commas)
    (tmp_path / "corpus").mkdir()
    path = tmp_path / "corpus" / "endless.txt"
    path.write_text(f"# 終わらない記事\n\n{text}\n", encoding="utf-8")
    (article,) = read_corpus([tmp_path / "corpus"])
    lengths = [len(section.text) for section in article.sections]
    assert max(lengths) <= MAX_SECTION_CHARS and len(lengths) >= 300_000 // MAX_SECTION_CHARS
    assert "".join(section.text for section in article.sections) == text  # nothing lost
    if commas:  # cut after a punctuation mark, not mid-word
        assert all(section.text[-1] in "、・」）" for section in article.sections[:-1])
    else:  # nothing to cut at: cut hard, at the limit
        assert set(lengths[:-1]) == {MAX_SECTION_CHARS}

    pieces = list(chunks(text))
    assert "".join(piece for _, piece in pieces) == text
    assert all(len(piece.encode("utf-8")) <= MAX_CHUNK_BYTES for _, piece in pieces)
    assert all(text[offset : offset + len(piece)] == piece for offset, piece in pieces)

    root = tmp_path / "index"
    report = reindex([tmp_path / "corpus"], root, workers=0)
    assert report.added.sections == len(article.sections)
    results = SearchIndex(root).search("為替介入", limit=3)
    assert results.hits and all(len(hit.snippet.text()) < 1000 for hit in results.hits)


def test_a_snippet_analyses_a_bounded_window_of_a_long_section(monkeypatch):
    text = endless_text(300_000)
    analysed: list[int] = []
    real_terms = snippets.terms
    monkeypatch.setattr(snippets, "terms", lambda value: analysed.append(len(value)) or real_terms(value))
    spec = HighlightSpec(terms=frozenset({"為替"}))
    snippet = snippets.make_snippet(text, spec)
    assert analysed and max(analysed) <= snippets.SNIPPET_SCAN_CHARS
    assert snippet.text() and len(snippet.text()) < 1000


def test_oversized_files_and_lines_are_skipped_with_a_reason(tmp_path, monkeypatch):
    monkeypatch.setattr(readers, "MAX_ARTICLE_BYTES", 100_000)
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "huge.txt").write_text("# 大きすぎる記事\n\n" + endless_text(60_000), encoding="utf-8")
    (corpus / "small.txt").write_bytes((NEWS / "tech" / "tech-0001.txt").read_bytes())
    big_line = json.dumps({"id": "big", "title": "題", "body": endless_text(60_000)}, ensure_ascii=False)
    small_line = json.dumps({"id": "small-line", "title": "題", "body": "為替介入の本文。"}, ensure_ascii=False)
    (corpus / "feed.jsonl").write_text(f"{big_line}\n{small_line}\n", encoding="utf-8")
    report = reindex([corpus], tmp_path / "index", workers=0)
    reasons = {Path(item.path).name: item.reason for item in report.skipped}
    assert "larger than" in reasons["huge.txt"] and "larger than" in reasons["feed.jsonl:1"]
    assert article_ids(tmp_path / "index") == {"small", "small-line"}
    assert os.path.getsize(corpus / "huge.txt") > 100_000
