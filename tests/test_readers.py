"""Corpus readers on the seed article as given, livedoor files, JSON Lines and hostile files."""

from __future__ import annotations

import io
import json
import tarfile
from datetime import datetime

import pytest

from search.sources.articles import MAX_SECTION_CHARS
from search.sources.readers import Unreadable, estimate_articles, read_corpus
from tests.conftest import CORPUS, SAMPLE_ARTICLE_ID

SAMPLE_TITLE = "トランプ、NVIDIAのAIチップ中国輸出を電撃承認…米中技術覇権競争の転換点"
SAMPLE_HEADINGS = [
    "",
    "政策転換の背景",
    "エヌビディアCEOのロビー活動の成果とワシントンの懸念",
    "中国の反応と技術自立化",
    "米中技術外交の流れ",
]


def read_all(*paths):
    return list(read_corpus(paths))


@pytest.mark.livedoor
def test_seed_file_as_given_is_one_article_with_lead_and_four_sections(seed_file):
    [article] = read_all(seed_file)
    assert article.title == SAMPLE_TITLE
    assert article.source == "BlockMedia"
    assert article.extra["original_title"].startswith("トランプ、エヌビディアAIチップの中国輸出を電撃承認")
    assert [s.heading for s in article.sections] == SAMPLE_HEADINGS
    assert article.sections[0].text.startswith("ドナルド・トランプ大統領がエヌビディア")
    assert "出典" not in article.sections[0].text
    # The flattened copy is gone: no section carries inline `## ` headings or the text twice.
    assert all("##" not in s.text for s in article.sections)
    assert sum(s.text.count("ただし、中国が実際にH200チップを購入するか") for s in article.sections) == 1


@pytest.mark.livedoor
def test_corpus_sample_article_matches_the_seed(seed_file):
    [seed] = read_all(seed_file)
    [clean] = read_all(CORPUS)
    assert clean.id == SAMPLE_ARTICLE_ID
    assert (clean.title, clean.source, clean.extra) == (seed.title, seed.source, seed.extra)
    assert clean.sections == seed.sections
    assert clean.section_id(4) == f"{SAMPLE_ARTICLE_ID}#4"


LIVEDOOR_ARTICLE = """http://news.livedoor.com/article/detail/1/
2011-10-02T10:00:00+0900
川越シェフの悪評
最近、TVでも人気者の川越シェフ。代官山のレストランのオーナーシェフである。

【関連記事】
ミニストップのケーキがバカ高いと話題に
http://news.livedoor.com/topics/detail/5899457/

普通のケーキなら、原価は200円程度。

■関連記事
・悩ましき女友だちとの格差問題
・独女的映画レビュー vol.11

■料理の腕
肝心の料理の腕に関しては、「デパ地下の惣菜レベル」という意見もある。
"""


def _tarball(tmp_path, files: dict[str, str]):
    path = tmp_path / "ldcc.tar.gz"
    with tarfile.open(path, "w:gz") as archive:
        for name, text in files.items():
            data = text.encode("utf-8")
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return path


def test_livedoor_tarball_layout(tmp_path):
    tarball = _tarball(
        tmp_path,
        {
            "text/topic-news/topic-news-1.txt": LIVEDOOR_ARTICLE,
            "text/topic-news/LICENSE.txt": "ライセンス",
            "text/README.txt": "readme",
            "text/CHANGES.txt": "changes",
        },
    )
    [article] = read_all(tarball)
    assert article.id == "topic-news/topic-news-1"
    assert article.category == "topic-news"
    assert article.date == datetime(2011, 10, 2, 10, 0)
    assert article.url == "http://news.livedoor.com/article/detail/1/"
    assert article.title == "川越シェフの悪評"
    body = "\n".join(s.text for s in article.sections)
    assert "普通のケーキなら" in body and "デパ地下" in body
    for link_text in ("関連記事", "バカ高い", "http://", "悩ましき", "vol.11"):
        assert link_text not in body
    assert article.sections[-1].heading == "料理の腕"


def test_livedoor_folder_gives_the_same_ids_as_the_tarball(tmp_path):
    folder = tmp_path / "ldcc" / "text" / "topic-news"
    folder.mkdir(parents=True)
    (folder / "topic-news-1.txt").write_text(LIVEDOOR_ARTICLE, encoding="utf-8")
    for paper in ("LICENSE.txt", "LICENSE-CC.txt", "README.ja.md", "CHANGES"):  # a corpus's papers
        (folder / paper).write_text("license", encoding="utf-8")
    for article in ("license-plate-scandal.txt", "license-plate.txt", "changes-2012.txt"):
        (folder / article).write_text("# ナンバープレート\n\n本文。\n", encoding="utf-8")
    assert {item.id for item in read_all(folder)} == {
        "topic-news-1",
        "license-plate-scandal",
        "license-plate",
        "changes-2012",
    }
    for article in ("license-plate-scandal.txt", "license-plate.txt", "changes-2012.txt"):
        (folder / article).unlink()
    [from_text_root] = read_all(tmp_path / "ldcc" / "text")
    [from_above] = read_all(tmp_path / "ldcc")
    assert from_text_root.id == from_above.id == "topic-news/topic-news-1"


@pytest.mark.livedoor
def test_real_livedoor_article_from_the_official_tarball(livedoor_tarball):
    articles = {}
    for item in read_all(livedoor_tarball):
        assert not isinstance(item, Unreadable), item
        articles[item.id] = item
    assert len(articles) == 7367
    article = articles["topic-news/topic-news-5903225"]
    assert article.title == "悪評が次から次へと溢れ出る川越シェフ"
    body = "\n".join(s.text for s in article.sections)
    assert "ミニストップの川越シェフプロデュースクリスマスケーキがバカ高いと話題に" not in body
    assert "http://" not in body
    assert "原価は200円程度" in body
    assert {a.category for a in articles.values()} == {
        "dokujo-tsushin",
        "it-life-hack",
        "kaden-channel",
        "livedoor-homme",
        "movie-enter",
        "peachy",
        "smax",
        "sports-watch",
        "topic-news",
    }


def test_jsonl_sections_body_and_bad_lines(tmp_path):
    path = tmp_path / "news.jsonl"
    lines = [
        {
            "id": "a1",
            "title": "見出し",
            "date": "2025-12-09",
            "sections": [{"heading": "背景", "text": "本文一。"}, {"text": "本文二。"}],
        },
        {"id": "a2", "title": "本文だけ", "body": "第一段落です。\n\n第二段落です。"},
        "{not json",
        {"title": "id がない", "body": "本文。"},
        {"id": "a3", "title": "空", "sections": []},
    ]
    path.write_text(
        "\n".join(item if isinstance(item, str) else json.dumps(item, ensure_ascii=False) for item in lines),
        encoding="utf-8",
    )
    items = read_all(path)
    articles = [i for i in items if not isinstance(i, Unreadable)]
    errors = [i for i in items if isinstance(i, Unreadable)]
    assert [a.id for a in articles] == ["a1", "a2"]
    assert articles[0].sections[0].heading == "背景" and articles[0].date == datetime(2025, 12, 9)
    assert "第二段落" in articles[1].sections[0].text
    assert [e.path.rsplit(":", 1)[1] for e in errors] == ["3", "4", "5"]
    assert all(e.reason for e in errors)


def test_jsonl_is_read_line_by_line_so_one_bad_line_costs_only_itself(tmp_path):
    def line(article_id: str, encoding: str) -> bytes:
        record = {"id": article_id, "title": "半導体輸出", "body": "エヌビディアのＨ２００を承認した。"}
        return json.dumps(record, ensure_ascii=False).encode(encoding)

    path = tmp_path / "feed.jsonl"
    path.write_bytes(
        b"\r\n".join(
            [
                b"\xef\xbb\xbf" + line("bom", "utf-8"),
                line("sjis", "cp932"),
                b'{"id": "broken", "body": "' + bytes([0x80, 0xFF, 0xFE, 0x81]) * 3 + b'"}',  # no encoding reads it
                line("utf8", "utf-8"),
            ]
        )
    )
    items = read_all(path)
    assert [i.id for i in items if not isinstance(i, Unreadable)] == ["bom", "sjis", "utf8"]
    assert all("エヌビディアのＨ２００" in i.sections[0].text for i in items if not isinstance(i, Unreadable))
    [bad] = [i for i in items if isinstance(i, Unreadable)]
    assert bad.path == f"{path}:3" and "not UTF-8" in bad.reason
    assert estimate_articles([path]) == 4

    utf16 = tmp_path / "utf16.jsonl"
    utf16.write_bytes("\n".join(raw.decode() for raw in (line("u1", "utf-8"), line("u2", "utf-8"))).encode("utf-16"))
    assert [i.id for i in read_all(utf16)] == ["u1", "u2"]


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "cp932", "euc_jp", "utf-16"])
def test_japanese_encodings(tmp_path, encoding):
    text = (
        "# 半導体輸出の行方\n出典: テスト通信\n\n"
        "米国がエヌビディアのＨ２００チップの輸出を承認した。①～③の記号も読める。\n"
    )
    if encoding == "euc_jp":
        text = text.replace("①～③の記号も", "機種依存文字なしで")
    (tmp_path / "a.txt").write_bytes(text.encode(encoding))
    [article] = read_all(tmp_path)
    assert article.title == "半導体輸出の行方"
    assert article.source == "テスト通信"
    assert "エヌビディア" in article.sections[0].text


def test_unreadable_files_are_reported_not_dropped(tmp_path):
    (tmp_path / "good.txt").write_text("# 良い記事\n本文です。\n", encoding="utf-8")
    (tmp_path / "binary.txt").write_bytes(b"\x00\x01\x02binary")
    (tmp_path / "garbage.txt").write_bytes(bytes([0x80, 0xFF, 0xFE, 0x81]) * 50)
    (tmp_path / "empty.md").write_text("", encoding="utf-8")
    (tmp_path / "title-only.md").write_text("# 題だけ\n", encoding="utf-8")
    items = read_all(tmp_path, tmp_path / "missing-folder")
    reasons = {i.path.rsplit("/", 1)[-1]: i.reason for i in items if isinstance(i, Unreadable)}
    assert set(reasons) == {"binary.txt", "garbage.txt", "empty.md", "title-only.md", "missing-folder"}
    assert "NUL" in reasons["binary.txt"]
    assert [i.title for i in items if not isinstance(i, Unreadable)] == ["良い記事"]


def test_unheaded_text_is_cut_into_readable_sections_at_sentence_ends(tmp_path):
    sentence = "政府は半導体の輸出管理を強化する方針を示した。"
    paragraphs = [sentence * 4 for _ in range(12)]  # 12 paragraphs of ~90 characters
    long_paragraph = sentence * 80  # far over the section limit, with no blank line
    text = "# 長い記事\n\n" + "\n\n".join(paragraphs) + "\n\n●新しい話題\n" + long_paragraph + "\n"
    (tmp_path / "long.txt").write_text(text, encoding="utf-8")
    [article] = read_all(tmp_path)
    assert len(article.sections) > 4
    assert all(len(s.text) <= MAX_SECTION_CHARS for s in article.sections)
    assert all(s.text.endswith("。") for s in article.sections)
    assert "新しい話題" in [s.heading for s in article.sections]
    assert "".join(s.text.replace("\n", "") for s in article.sections) == "".join(paragraphs) + long_paragraph
