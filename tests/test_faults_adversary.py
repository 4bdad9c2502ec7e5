"""Faults found by trying to break the issue-26 fixes as a hostile user and a clumsy operator would.

Each test is one failure seen end to end through the CLI or a served page, on the fixture corpus
(tests/fixtures/news) and files the test writes: a JSON line nested thousands deep, a file name in
no encoding, a named pipe, dates with a digit too many, CURRENT turned into a folder, a generation
number reused under a running server, a batch run that cannot be read or written, archives that
are not archives.
"""

from __future__ import annotations

import gzip
import io
import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from search import browse, indexing
from search.browse import Browser
from search.codec.store import IndexStore
from search.indexing import reindex
from search.searching import SearchIndex
from search.sources.readers import IncompleteSource, parse_date, read_corpus
from web import create_app

NEWS = Path(__file__).resolve().parent / "fixtures" / "news"
NEWS_IDS = {path.relative_to(NEWS).with_suffix("").as_posix() for path in NEWS.rglob("*-*.txt")}


def midashi(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    """The real entry point, as a shell runs it."""
    code = "from search.cli import main; main()"
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=timeout)


def assert_one_line_error(result: subprocess.CompletedProcess) -> None:
    assert result.returncode != 0
    assert "Traceback" not in result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("midashi: "), result.stderr


def article_ids(root: Path) -> set[str]:
    return set(IndexStore(root).manifest().articles)


def news_copy(tmp_path: Path) -> Path:
    corpus = tmp_path / "news"
    shutil.copytree(NEWS, corpus)
    return corpus


def test_a_json_line_nested_too_deeply_is_skipped_and_the_rest_indexed(tmp_path):
    feed = tmp_path / "feed.jsonl"
    lines = [
        json.dumps({"id": "before", "title": "前の記事", "body": "深い入れ子の前にある記事です。"}),
        '{"id": "deep", "title": "t", "body": ' + "[" * 100_000 + "]" * 100_000 + "}",
        json.dumps({"id": "odd", "title": "t", "sections": "本文"}),
        '{"id": "cut", "title": "途中で切れた記事',
        json.dumps({"id": "after", "title": "後の記事", "body": "深い入れ子の後にある記事です。"}),
        '{"id": "huge", "title": "t", "body": "b", "n": ' + "9" * 5000 + "}",
        json.dumps({"id": 0, "title": "番号ゼロの記事", "body": "ゼロという番号の記事です。"}),
    ]
    feed.write_text("\n".join(lines) + "\n", encoding="utf-8")
    report = reindex([feed], tmp_path / "index", workers=0)
    assert article_ids(tmp_path / "index") == {"before", "after", "0"}  # an id of 0 is one
    assert [item.path.rsplit(":", 1)[1] for item in report.skipped] == ["2", "3", "4", "6"]
    reasons = {item.path.rsplit(":", 1)[1]: item.reason for item in report.skipped}
    assert reasons["2"] == "bad JSON article: nested too deeply"
    assert reasons["3"].startswith('bad JSON article: "sections" must be a list')  # not Python's words
    assert reasons["4"] == "bad JSON article: not valid JSON (at character 24 of the line)"  # where its title starts
    assert reasons["6"] == "bad JSON article: a number of over 4,300 digits"  # not set_int_max_str_digits()


@pytest.mark.slow
def test_a_file_name_in_no_encoding_is_reported_and_the_rest_published(tmp_path):
    corpus = news_copy(tmp_path)
    body = "不正なバイトの名前\n\nこのファイルの名前はどの文字コードでもない。\n".encode()
    with open(os.fsencode(corpus / "tech") + b"/bad\xffname.txt", "wb") as handle:
        handle.write(body)
    root = tmp_path / "index"
    result = midashi("reindex", "--corpus", str(corpus), "--index", str(root))
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    assert f"{corpus}/tech/bad\\xffname.txt: its name is not UTF-8 text" in result.stdout
    assert article_ids(root) == NEWS_IDS


@pytest.mark.slow
def test_a_named_pipe_is_reported_and_never_waited_on(tmp_path):
    corpus = news_copy(tmp_path)
    os.mkfifo(corpus / "tech" / "pipe.txt")
    os.mkfifo(tmp_path / "feed.jsonl")
    root = tmp_path / "index"
    result = midashi(
        "reindex", "--corpus", str(corpus), "--corpus", str(tmp_path / "feed.jsonl"), "--index", str(root), timeout=60
    )  # a pipe with no writer would block forever
    assert result.returncode == 0, result.stderr
    assert f"{corpus}/tech/pipe.txt: not a regular file" in result.stdout
    assert f"{tmp_path}/feed.jsonl: not a regular file" in result.stdout
    assert article_ids(root) == NEWS_IDS


def test_a_file_that_became_a_pipe_keeps_its_articles(tmp_path):
    corpus = news_copy(tmp_path)
    root = tmp_path / "index"
    reindex([corpus], root, workers=0)
    (corpus / "tech" / "tech-0001.txt").unlink()
    os.mkfifo(corpus / "tech" / "tech-0001.txt")
    report = reindex([corpus], root, workers=0)
    assert report.removed.articles == 0 and article_ids(root) == NEWS_IDS
    assert any(isinstance(item, IncompleteSource) and "not a regular file" in item.reason for item in report.skipped)


@pytest.mark.parametrize("written", ["99999-01-01", "20120-05-01", "12012/05/01", "2012-05-011"])
def test_a_date_with_a_digit_too_many_is_no_date(written, tmp_path):
    assert parse_date(written) is None
    feed = tmp_path / "feed.jsonl"
    feed.write_text(
        json.dumps({"id": "a", "title": "日付", "body": "本文。", "date": written}) + "\n", encoding="utf-8"
    )
    (article,) = read_corpus([feed])
    assert article.date is None  # not 9999-01-01, nor the year 120


@pytest.mark.parametrize("written", ["2012-05-01", "2012年5月1日", "２０１２年５月１日", "配信日2012/5/1 10:00"])
def test_dates_as_written_still_read(written):
    assert parse_date(written).date().isoformat() == "2012-05-01"


@pytest.mark.slow
def test_reindex_full_replaces_a_current_that_is_a_folder(tmp_path):
    root = tmp_path / "index"
    reindex([NEWS], root, workers=0)
    (root / "CURRENT").unlink()
    (root / "CURRENT" / "inside").mkdir(parents=True)
    for args in (["--full"], []):  # the plain reindex finds the damage and rebuilds in full too
        result = midashi("reindex", *args, "--corpus", str(NEWS), "--index", str(root))
        assert result.returncode == 0, result.stderr
        assert (root / "CURRENT").is_file() and article_ids(root) == NEWS_IDS
        (root / "CURRENT").unlink()
        (root / "CURRENT").mkdir()
    assert "CURRENT cannot be read" in midashi("check", "--index", str(root)).stdout


def test_the_next_generation_is_numbered_past_a_deleted_live_one(tmp_path):
    root = tmp_path / "index"
    reindex([NEWS], root, workers=0)
    reindex([NEWS / "tech"], root, workers=0)
    live = IndexStore(root).current()
    shutil.rmtree(live)
    reindex([NEWS], root, workers=0)
    assert IndexStore(root).current().name > live.name


def test_a_server_follows_a_new_index_under_a_reused_generation_name(tmp_path):
    root = tmp_path / "index"
    reindex([NEWS / "tech"], root, workers=0)
    client = create_app(root).test_client()
    first = client.get("/api/search", query_string={"q": "アップル"})
    assert first.status_code == 200 and first.json["total"] > 0
    name = IndexStore(root).current().name
    shutil.rmtree(root)  # the operator wipes the index folder and builds it again: same name
    reindex([NEWS / "sports"], root, workers=0)
    assert IndexStore(root).current().name == name
    for path in ("/api/search?q=%E3%82%A2%E3%83%83%E3%83%97%E3%83%AB", "/api/search?q=試合", "/?q=試合", "/healthz"):
        assert client.get(path).status_code == 200, path
    assert client.get("/api/search", query_string={"q": "アップル"}).json["total"] == 0
    assert client.get("/api/search", query_string={"q": "試合"}).json["total"] > 0


@pytest.mark.slow
def test_batch_search_that_cannot_read_or_write_says_so_in_one_line(tmp_path):
    root = tmp_path / "index"
    reindex([NEWS], root, workers=0)
    queries = tmp_path / "queries.tsv"
    queries.write_text("q1\tiPhone\n", encoding="utf-8")
    result = midashi(
        "search", "--queries", str(queries), "--run", str(tmp_path / "absent" / "run.trec"), "--index", str(root)
    )
    assert_one_line_error(result)
    assert "run.trec (No such file or directory)" in result.stderr
    queries.write_bytes(b"q1\t\xff\xfe\n")
    result = midashi("search", "--queries", str(queries), "--run", str(tmp_path / "run.trec"), "--index", str(root))
    assert_one_line_error(result)
    assert "not UTF-8 text" in result.stderr


@pytest.mark.slow
def test_a_reindex_that_cannot_write_its_index_says_so_in_one_line(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder", encoding="utf-8")
    result = midashi("reindex", "--corpus", str(NEWS), "--index", str(blocker / "index"))
    assert_one_line_error(result)
    assert "reindex failed, no index was written: cannot write" in result.stderr  # there was none


def zipped_news() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for path in sorted(NEWS.rglob("*.txt")):
            archive.writestr(path.relative_to(NEWS).as_posix(), path.read_bytes())
    return buffer.getvalue()


@pytest.mark.parametrize(
    "content, reason",
    [
        (b"", "the file is empty"),
        (bytes(range(256)) * 20, "neither tar nor gzip, bzip2 or xz data"),
        (zipped_news(), "neither tar nor gzip, bzip2 or xz data"),
        (gzip.compress(b"plain text, not a tar archive " * 100, mtime=0), "its gzip data holds no tar archive"),
        (b"BZh9" + bytes(200), "its bzip2 data is corrupt"),
    ],
    ids=["empty", "random-bytes", "zip", "gzip-of-text", "bzip2-garbage"],
)
def test_an_archive_that_cannot_be_opened_is_described_in_one_line(content, reason, tmp_path):
    tarball = tmp_path / "news.tar.gz"
    tarball.write_bytes(content)
    report = reindex([tarball, NEWS], tmp_path / "index", workers=0)
    (fault,) = report.skipped
    assert isinstance(fault, IncompleteSource) and reason in fault.reason
    assert "\n" not in fault.reason and "method" not in fault.reason  # not tarfile's list of attempts
    assert article_ids(tmp_path / "index") == NEWS_IDS
    assert SearchIndex(tmp_path / "index").search("アップル").total > 0


@pytest.mark.parametrize(
    "twice",
    [("news", "news"), ("news", "news/tech"), ("news/tech", "news")],
    ids=["same-twice", "folder-then-inside", "inside-then-folder"],
)
def test_a_corpus_given_twice_loses_nothing_on_the_next_reindex(twice, tmp_path, monkeypatch):
    """`--corpus news --corpus news` (or a folder and one inside it) read each file twice; the
    second reading found only duplicates and recorded the file as holding no article, so the
    next plain reindex, trusting the unchanged file, removed every article of it."""
    monkeypatch.setattr(indexing, "RACY_SECONDS", 0)  # the copied files are only milliseconds old
    news_copy(tmp_path)
    root = tmp_path / "index"
    first = reindex([tmp_path / path for path in twice], root, workers=0)
    assert any("read already, under another --corpus path" in item.reason for item in first.skipped)
    ids = article_ids(root)
    assert len(ids) == len(NEWS_IDS)
    again = reindex([tmp_path / "news"], root, workers=0)
    assert again.removed.articles == 0 and article_ids(root) == ids
    assert SearchIndex(root).search("アップル").total > 0


def test_a_file_recorded_with_no_article_is_read_again(tmp_path, monkeypatch):
    """An index the bug above left behind heals: a file recorded as holding nothing is read."""
    monkeypatch.setattr(indexing, "RACY_SECONDS", 0)
    corpus = news_copy(tmp_path)
    root = tmp_path / "index"
    reindex([corpus], root, workers=0)
    store = IndexStore(root)
    manifest = store.manifest()
    for key, (signature, _) in list(manifest.files.items()):
        manifest.files[key] = (signature, [])  # as the bug recorded them
    building = store.new_generation()
    store.link_segments(store.current(), building)
    store.publish(building, manifest, manifest)
    assert not any(ids for _, ids in store.manifest().files.values())
    report = reindex([corpus], root, workers=0)
    assert report.removed.articles == 0 and article_ids(root) == NEWS_IDS


@pytest.fixture(scope="module")
def news_index(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("news-index")
    reindex([NEWS], root, workers=0)
    return root


def test_alternatives_to_a_search_that_found_nothing_keep_to_its_time_budget(news_index):
    """The page looks for other queries when one finds nothing: a search per candidate and a walk
    of the whole lexicon per unknown word, after the search's own budget. On livedoor, 999 unknown
    katakana kept a server thread busy for minutes, 30 unknown words for 42 s."""
    generous = Browser(SearchIndex(news_index, time_budget=5))
    assert [a.query for a in generous.alternatives("アップルル")] == ["アップル"]  # one letter off
    assert [a.query for a in generous.alternatives("アップル ズザゾ")] == ["アップル"]  # one word too many
    spent = Browser(SearchIndex(news_index, time_budget=0))
    assert spent.alternatives("アップルル") == [] and spent.alternatives("アップル ズザゾ") == []


def test_a_long_query_does_not_try_dropping_each_word(news_index):
    browser = Browser(SearchIndex(news_index, time_budget=None))
    words = ["アップル", "次期", "スマートフォン", "発表", "見方", "現行", "国内", "販売"]  # all in tech-0001
    eight = " ".join([*words[:7], "ズザゾ"])
    assert " ".join(words[:7]) in [a.query for a in browser.alternatives(eight)]
    nine = " ".join([*words, "ズザゾ"])
    assert browser.alternatives(nine) == []  # eight of its words would find the article: not tried


def test_a_very_long_unknown_word_is_not_respelled(news_index, monkeypatch):
    browser = Browser(SearchIndex(news_index, time_budget=None))
    asked: list[str] = []
    monkeypatch.setattr(browse, "nearest_terms", lambda reader, vocabulary, word, limit: asked.append(word) or [])
    browser.alternatives("ア" * 999)
    browser.alternatives("アップルル")
    assert asked == ["アップルル"]  # the long word never reaches the lexicon walk


@pytest.mark.slow
def test_the_page_of_a_huge_article_analyses_a_bounded_part_of_it(tmp_path, monkeypatch):
    """A long article with no sentence ends: its page marks matches in its opening only and analyses
    nothing at all without a query (every paragraph went through Sudachi: 70-87 s and 6.9 GB for
    one of 17.5 MB)."""
    from search.query.parse import HighlightSpec

    corpus = tmp_path / "corpus"
    corpus.mkdir()
    phrase = "スマホ市場の拡大と半導体不足の影響を受けた家電量販店の売り場では新製品の発表が続いている"
    body = "\n".join(phrase * 12 for _ in range(400))  # 400 paragraphs, 211,200 characters, no 。
    (corpus / "huge.txt").write_text(f"# 巨大な記事\n\n{body}\n", encoding="utf-8")
    index_root = tmp_path / "index"
    reindex([corpus], index_root, workers=0)
    analysed: list[int] = []
    real_spans = HighlightSpec.spans  # the one highlighter: what it is given is what is analysed to mark
    monkeypatch.setattr(HighlightSpec, "spans", lambda spec, text: analysed.append(len(text)) or real_spans(spec, text))
    browser = Browser(SearchIndex(index_root))

    plain = browser.article("huge")
    assert plain is not None and sum(len(s.paragraphs) for s in plain.sections) == 400
    assert analysed == []  # nothing to mark: nothing analysed
    marked = browser.article("huge", "スマホ")
    assert marked is not None and marked.sections[0].matched
    assert not marked.sections[-1].matched  # past the marking budget: shown plain
    longest_section = max(len(p.text()) for s in marked.sections for p in s.paragraphs) * 10
    assert browse.MARKED_ARTICLE_CHARS <= sum(analysed) <= browse.MARKED_ARTICLE_CHARS + longest_section
