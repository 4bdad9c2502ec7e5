"""Highlighting on real text: a compound the user typed is marked as a whole, its words alone only
where they alone are why a section matched (issue 29: 日本 was marked in 日本時間 and 日本テレビ, 代表
in デンマーク代表, for 「サッカー 日本代表」).

The marks are read back from the HTML the page, the API and the CLI show (snippets, titles,
headings, the article page), on the fixture corpus with two articles of our own added and, marked
livedoor, on the livedoor corpus.
"""

from __future__ import annotations

import json
import re

import pytest
from click.testing import CliRunner

from search.browse import Browser
from search.cli import cli
from search.searching import SearchIndex
from tests.conftest import fixture_news_with

QUERY = "サッカー 日本代表"
# Words that hold one of the query's parts without being the compound.
LOOKALIKES = ("日本時間", "日本テレビ", "デンマーク代表")
MATCH_ARTICLE = "sports/sports-0101.txt"
PARTS_ARTICLE = "sports/sports-0102.txt"
EXTRA = {
    MATCH_ARTICLE: "http://example.com/sports/0101\n2012-06-15T08:00:00+0900\n"
    "サッカー日本代表、デンマーク代表に逆転勝ち\n"
    "サッカー日本代表は日本時間の15日未明、デンマーク代表と対戦し、2対1で逆転勝ちした。"
    "試合は日本テレビが生中継し、日本時間の早朝にもかかわらず高い視聴率を記録した。\n",
    PARTS_ARTICLE: "http://example.com/sports/0102\n2012-06-16T10:00:00+0900\n"
    "デンマーク代表監督、敗戦を振り返る\n"
    "デンマーク代表の監督は日本時間の16日、記者会見を開き、前半の守備に課題があったと話した。\n",
}


def marked_text(html: str) -> tuple[str, list[bool]]:
    """The text of a highlighted HTML fragment and, per character, whether it is inside <mark>."""
    plain, inside = [], []
    for piece in re.split(r"(<mark>.*?</mark>)", html):
        marked = piece.startswith("<mark>")
        text = re.sub(r"</?mark>", "", piece)
        for ch in re.sub(r"&(amp|lt|gt|quot|#x27);", "_", text):
            plain.append(ch)
            inside.append(marked)
    return "".join(plain), inside


def check_whole_marks(html: str) -> int:
    """Assert that every 日本代表 in `html` is marked whole and no lookalike holds a mark; how many
    lookalikes were checked."""
    plain, inside = marked_text(html)
    for found in re.finditer("日本代表", plain):
        assert all(inside[found.start() : found.end()]), html
    checked = 0
    for word in LOOKALIKES:
        for found in re.finditer(word, plain):
            assert not any(inside[found.start() : found.end()]), (word, html)
            checked += 1
    return checked


@pytest.fixture(scope="module")
def index(tmp_path_factory) -> SearchIndex:
    return SearchIndex(fixture_news_with(tmp_path_factory.mktemp("highlight"), EXTRA))


def hit_htmls(hit: dict) -> list[str]:
    return [hit["title_html"], hit["heading_html"], hit["snippet_html"]]


def test_a_compound_is_marked_whole_in_snippets_titles_and_headings(index):
    results = index.search(QUERY, limit=50, group=True).as_json()
    # Two articles have both words: the query's best-match reading follows them (relaxed).
    assert results["relaxed"] is not None and results["relaxed"]["strict_articles"] == 2
    strict = [hit for hit in results["hits"] if "日本代表" in "".join(hit_htmls(hit))]
    assert {hit["article_id"] for hit in strict} == {"sports/sports-0001", "sports/sports-0101"}
    assert sum(check_whole_marks(html) for hit in strict for html in hit_htmls(hit)) >= 3
    match = next(hit for hit in strict if hit["article_id"] == "sports/sports-0101")
    assert "<mark>サッカー日本代表</mark>" in match["title_html"]


def test_a_part_is_marked_where_it_alone_is_why_the_section_matched(index):
    """The relaxed reading finds sports-0102 by 代表 alone: there 代表 is marked, as is nothing
    that is not the query's (日本 of 日本時間 is the query's word 日本, also alone there)."""
    results = index.search(QUERY, limit=50, group=True).as_json()
    parts = next(hit for hit in results["hits"] if hit["article_id"] == "sports/sports-0102")
    assert "デンマーク<mark>代表</mark>" in parts["title_html"]
    assert "<mark>代表</mark>" in parts["snippet_html"]


def test_the_article_page_marks_as_the_results_do(index):
    browser = Browser(index)
    page = browser.article("sports/sports-0101", QUERY)
    assert page is not None
    htmls = [page.title.html()] + [p.html() for section in page.sections for p in section.paragraphs]
    assert sum(check_whole_marks(html) for html in htmls) >= 4
    assert any("<mark>" in html for html in htmls[1:])
    other = browser.article("sports/sports-0102", QUERY)
    assert other is not None
    assert "<mark>代表</mark>" in "".join(p.html() for section in other.sections for p in section.paragraphs)


def test_the_cli_shares_the_highlighter(index):
    output = CliRunner().invoke(cli, ["search", QUERY, "--format", "json", "--index", str(index.store.root)])
    assert output.exit_code == 0, output.output
    hits = json.loads(output.output)["hits"]
    match = next(hit for hit in hits if hit["article_id"] == "sports/sports-0101")
    assert check_whole_marks(match["snippet_html"]) + check_whole_marks(match["title_html"]) >= 3
    assert "<mark>サッカー日本代表</mark>" in match["snippet_html"]


@pytest.mark.livedoor
def test_livedoor_soccer_national_team_marks_the_compound_whole(livedoor):
    index = SearchIndex(livedoor[0])
    results = index.search(QUERY, limit=200, group=True).as_json()
    assert results["articles"] > 100 and results["relaxed"] is None
    checked = sum(check_whole_marks(html) for hit in results["hits"] for html in hit_htmls(hit))
    assert checked >= 20  # 日本時間, 日本テレビ and デンマーク代表 stand in many of these snippets
    assert sum("日本代表</mark>" in hit["snippet_html"] for hit in results["hits"]) >= 100
    # The article page of a result that names 日本時間 marks it as the result list does.
    named = next(hit for hit in results["hits"] if "日本時間" in hit["snippet"])
    page = Browser(index).article(named["article_id"], QUERY)
    assert page is not None
    assert sum(check_whole_marks(p.html()) for section in page.sections for p in section.paragraphs) >= 1


def test_marked_text_reads_marks_back():
    plain, inside = marked_text("日本時間の<mark>日本代表</mark>")
    assert plain == "日本時間の日本代表" and inside == [False] * 5 + [True] * 4
    with pytest.raises(AssertionError):
        check_whole_marks("<mark>日本</mark>時間")
    with pytest.raises(AssertionError):
        check_whole_marks("<mark>日本</mark>代表")


def test_what_is_shown_is_marked_the_same_when_only_it_is_read(index):
    # `shown`: the words alone that mark nothing in the texts shown are not looked for in the
    # section; what the shown texts get marked must not change for it.
    from search.query.parse import parse_query
    from search.snippets import mark_whole

    with index.view() as view:
        parsed = parse_query("サッカー日本代表の監督は誰ですか", view.searcher.schema)  # a question: best match
        spec = parsed.highlight
        assert spec.parts  # a compound's words alone are in play
        texts = [
            (
                "デンマーク代表監督、敗戦を振り返る",
                "日本代表の課題",
                "デンマーク代表の監督は日本時間の16日、会見を開いた。",
            ),
            ("サッカー日本代表が合宿", "代表監督の話", "サッカー日本代表は13日、合宿を始めた。"),
            ("日本時間の速報", "", "日本代表は勝った。"),
        ]
        for title, heading, body in texts:
            full = spec.for_section(title, heading, body)
            for shown in ((heading,), (title, heading, body)):
                read = spec.for_section(title, heading, body, shown=shown)
                assert [mark_whole(text, read).html() for text in shown] == [
                    mark_whole(text, full).html() for text in shown
                ]
