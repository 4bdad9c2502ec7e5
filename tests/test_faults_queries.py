"""Hostile and expensive queries (issue 26, item 6): each gets a clear message for a person, and
none ties up a thread. On the fixture corpus tests/fixtures/news, so they run without ../shared."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from datetime import date
from pathlib import Path

import pytest
from conftest import PROJECT
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from search.indexing import reindex
from search.query.parse import QueryError, QueryTooExpensive
from search.searching import SearchIndex
from tests.whoosh_oracle import WhooshOracle
from web import create_app

NEWS = PROJECT / "tests" / "fixtures" / "news"
# What must never reach a person: the text of a Python exception or of Whoosh's internals.
PYTHON_TEXT = re.compile(
    r"Error|Exception|Traceback|object|attribute|index out of range|codec|surrogates|NoneType|"
    r"\bNone\b|TermRange|Phrase\(|parseable|STORED\(|self\.|__"
)


@pytest.fixture(scope="module")
def news_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("news-index")
    reindex([NEWS], root, workers=0)
    return root


@pytest.fixture(scope="module")
def news(news_root) -> SearchIndex:
    return SearchIndex(news_root)


@pytest.fixture(scope="module")
def client(news_root):
    return create_app(news_root).test_client()


def _article_dates() -> list[date]:
    """The date of each fixture article, from its file (the second line, livedoor's layout)."""
    return [date.fromisoformat(path.read_text(encoding="utf-8").splitlines()[1][:10]) for path in NEWS.rglob("*.txt")]


# --- ranges ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "query, shown",
    [
        ("body:[あ TO 龥]", "[あ TO 龥]"),
        ("[あ TO 龥]", "[あ TO 龥]"),  # every text field
        ("title:{a TO z}", "[a TO z]"),
        ("半導体 -body:[あ TO 龥]", "[あ TO 龥]"),  # under NOT too
        ("heading:[あ TO]", "[あ TO ]"),
    ],
)
def test_a_range_on_text_is_refused_before_anything_is_read(news, query, shown):
    with pytest.raises(QueryError) as refused:
        news.parse(query)  # refused while parsing: no posting is ever looked at
    assert str(refused.value).startswith(f"a range like {shown} works only on date:")
    assert "date:[2012-01 TO 2012-06]" in str(refused.value)
    assert "date: にだけ使えます" in refused.value.japanese


def test_a_date_range_finds_the_articles_of_those_months(news, news_root):
    results = news.search("date:[2012-02 TO 2012-04]", limit=50)
    wanted = [day for day in _article_dates() if date(2012, 2, 1) <= day <= date(2012, 4, 30)]
    assert len(wanted) == 3 and results.total == len(wanted)  # one section an article
    assert sorted(hit.date.date() for hit in results.hits) == sorted(wanted)
    # With words, and as Whoosh's own matcher finds and scores it.
    plain = WhooshOracle(news_root)
    for query in (
        "date:[2012-02 TO 2012-04]",
        "発表 date:[2012-01 TO 2012-06]",
        "date:2012-03 OR 野球",
        "日本 -date:{2012-01-25 TO 2012-06-02}",
    ):
        fast, slow = news.search(query, limit=50), plain.search(query, limit=50)
        assert fast.total == slow.total > 0, query
        assert [(h.section_id, pytest.approx(h.score)) for h in fast.hits] == [
            (h.section_id, h.score) for h in slow.hits
        ], query


@pytest.mark.parametrize(
    "query",
    [
        "date:[ TO ]",
        "date:[いつか TO 2012]",
        "date:yesterday",
        'date:"2012" 日本',
        # A time glued to the day was read as its month, and "31t10 00" as words: nothing found.
        "date:2012-05-31T10:00",
        "date:2012-05-31T25:00 日本",
        # Read as another date than it looks: 2012-5 as the year 2012, 2012-05-1 as May.
        "date:2012-5",
        "date:2012-05-1",
        "date:2012-05-31-01",
        "date:2012-",
    ],
)
def test_a_date_that_is_not_one_gets_the_date_syntax(news, query):
    with pytest.raises(QueryError, match=r"^date: takes a date such as date:2012"):
        news.search(query)


def test_a_day_followed_by_words_is_that_day_and_the_words(news):
    def found(query: str) -> set[str]:
        return {hit.section_id for hit in news.search(query, limit=50).hits}

    day, both = found("date:2012-03-08"), found("date:2012-03-08 iPhone")  # tech-0001's day
    assert both and both <= day and both == found("iPhone date:2012-03-08") == found("(date:2012-03-08) iPhone")


def test_wildcards_are_not_expanded(news):
    """`*` and `?` are punctuation (Japanese text uses them so): no prefix or wildcard query, and
    `*:*` is not "every section"."""
    assert news.parse("半*").query == news.parse("半").query
    assert news.search("日本 OR *:*").total == news.search("日本").total
    with pytest.raises(QueryError, match="no searchable words"):
        news.search("*")


# --- field names -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "query, english, japanese",
    [
        (
            "fallback:[x TO y]",
            "fallback: is not a field you can search in; use title:, heading:",
            "fallback: は検索に使えない項目です",
        ),
        ("section_id:x", "section_id: is not a field you can search in", "section_id: は検索に使えない項目です"),
        ("foo:bar", "there is no field foo:; search in title:", "foo: という項目はありません"),
        ("半導体 Autor:田中", "there is no field Autor:", "Autor: という項目はありません"),
        ("title:", "title: needs a word right after it", "title: のすぐ後ろに"),
        ("title: 半導体", "title: needs a word right after it", "title: のすぐ後ろに"),
        ('"国家安全保障" title:', "title: needs a word right after it", "title: のすぐ後ろに"),
        # Nothing to search glued to it: searched as the word "title" (タイトル), 264 articles.
        ("title:(", "title: needs a word right after it", "title: のすぐ後ろに"),
        ("日本 heading:-", "heading: needs a word right after it", "heading: のすぐ後ろに"),
        ("NOT NOT 日本", "could not read the query: check its quotes", "検索語を読み取れませんでした"),
        ("body:[あ TO 龥]", "a range like [あ TO 龥] works only on date:", "date: にだけ使えます"),
    ],
)
def test_query_errors_are_400_with_a_message_in_the_page_language(client, query, english, japanese):
    response = client.get("/api/search", query_string={"q": query})
    assert response.status_code == 400 and response.get_json()["error"].startswith(english)
    page = client.get("/", query_string={"q": query})
    html = page.get_data(as_text=True)
    assert page.status_code == 400 and japanese in html and english not in html
    assert not PYTHON_TEXT.search(response.get_json()["error"])


@pytest.mark.parametrize(
    "query", ['"foo:bar"', "「fallback:x」 日本", "https://example.com/chips", "結論:日本の景気", "12:30 試合"]
)
def test_text_that_merely_looks_like_a_field_is_text(news, query):
    news.search(query)  # no QueryError: quoted, a URL, a Japanese label, a time


@pytest.mark.parametrize("query", ["title:(iPhone)", "title:「iPhone」", "date:(2012)", "(title:iPhone)"])
def test_a_field_with_a_word_glued_in_brackets_searches_it(news, query):
    assert news.search(query).total


def test_suggestions_are_only_queries_that_search(tmp_path):
    """The index keeps a few symbols as terms (% here; (^-^)/ in livedoor), which no query can
    search: completing to one offered a query that was then refused."""
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "rates.md").write_text("# 金利の記事\n\n金利は5%上がった。\n", encoding="utf-8")
    reindex([corpus], tmp_path / "index", workers=0)
    client = create_app(tmp_path / "index").test_client()
    assert client.get("/api/search", query_string={"q": "%"}).status_code == 400  # the premise
    assert client.get("/api/suggest", query_string={"q": "%"}).get_json()["queries"] == []
    assert client.get("/api/suggest", query_string={"q": "金"}).get_json()["queries"] == ["金利"]


def test_parameter_errors_speak_the_page_language(client):
    data = client.get("/api/search", query_string={"q": "日本", "page": "x"}).get_json()
    assert data["error"] == "page must be a whole number"
    html = client.get("/", query_string={"q": "日本", "page": "x"}).get_data(as_text=True)
    assert "ページ番号は整数で指定してください" in html and "page には" not in html
    html = client.get("/", query_string={"q": "日本", "sort": "random"}).get_data(as_text=True)
    assert "並べ替えの指定が正しくありません" in html


# --- fuzzing the parser ----------------------------------------------------------------------

PIECES = [
    "日本",
    "経済",
    "半導体",
    "輸出規制",
    "エヌビディア",
    "ｶﾀｶﾅ",
    "OR",
    "AND",
    "NOT",
    "ＯＲ",
    "TO",
    "-",
    "－",
    "+",
    "--",
    '"',
    "「",
    "」",
    "『",
    "(",
    ")",
    "（",
    "[",
    "]",
    "{",
    "}",
    "*",
    "?",
    "^",
    "~",
    "\\",
    "/",
    ":",
    "'",
    "!",
    " ",
    "　",
    "\t",
    "\n",
    "\x00",
    "\x07",
    "\ud800",
    "\udcff",
    "2",
    "2012-01",
    "title:",
    "body:",
    "date:",
    "source:",
    "category:",
    "fallback:",
    "parts:",
    "section_id:",
    "foo:",
]


@pytest.mark.slow
@settings(max_examples=400, deadline=None, database=None, suppress_health_check=list(HealthCheck))
@given(st.lists(st.sampled_from(PIECES), max_size=14))
def test_no_query_raises_anything_but_a_query_error_for_a_person(news, parts):
    query = "".join(parts)
    try:
        news.search(query, limit=3, facets=True)
    except QueryError as error:
        message = str(error)
        assert message and "\n" not in message and not PYTHON_TEXT.search(message), (query, message)
        assert re.search(r"[ぁ-んァ-ン]", error.japanese), (query, error.japanese)


@pytest.mark.parametrize(
    "query",
    [
        "NOT",
        "OR OR",
        "AND AND NOT",
        "-",
        "--x",
        '""',
        "「」",
        "(((",
        ")))",
        "[[",
        "]]",
        '"半導体',
        "title:",
        "date:",
        "日本 " * 300,
        "\x00\x01\x1f",
        "\ud800",
        "半導体\udcff",
        "body:",
        "category:",
        "NOT NOT NOT 日本",
    ],
)
def test_hostile_queries_end_in_a_query_error_at_worst(news, query):
    try:
        news.search(query)
    except QueryError as error:
        assert not PYTHON_TEXT.search(str(error)), str(error)


# --- the time budget -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "query", ["日本", "輸出規制", "日本 -野球", "date:[2012-01 TO 2012-06]", "日本の首都はどこですか？"]
)
def test_a_spent_time_budget_answers_too_expensive(news_root, query):
    with pytest.raises(QueryTooExpensive) as refused:
        SearchIndex(news_root, time_budget=0).search(query)
    assert str(refused.value) == "this query is too expensive to run (over 0 s); use fewer or more specific words"
    assert SearchIndex(news_root, time_budget=60).search(query).total > 0  # a budget it fits in


def test_too_expensive_is_a_503_with_the_message(news_root):
    app = create_app(news_root)
    app.extensions["midashi"].index.time_budget = 0
    client = app.test_client()
    response = client.get("/api/search", query_string={"q": "日本"})
    assert response.status_code == 503
    assert response.get_json()["error"].startswith("this query is too expensive to run (over 0 s)")
    page = client.get("/", query_string={"q": "日本"})
    assert page.status_code == 503 and "この検索は時間がかかりすぎるため中止しました" in page.get_data(as_text=True)


# --- the CLI ---------------------------------------------------------------------------------


def _midashi(*arguments: bytes | str) -> subprocess.CompletedProcess:
    environment = {**os.environ, "PYTHONPATH": str(PROJECT)}
    return subprocess.run(
        [sys.executable, "-c", "from search.cli import main; main()", *arguments],
        capture_output=True,
        env=environment,
        cwd=PROJECT,
        timeout=120,
    )


@pytest.mark.slow
@pytest.mark.parametrize(
    "arguments",
    [
        (b"search", b"\xff\xfe"),
        (b"reindex", b"--corpus", b"/tmp/\xff\xfe-corpus"),
        (b"stats", b"--index", b"\xe6\x97"),  # a cut UTF-8 sequence
    ],
)
def test_cli_names_a_non_utf8_argument_in_one_line(news_root, arguments):
    done = _midashi(*arguments, *([b"--index", bytes(news_root)] if arguments[0] == b"search" else []))
    lines = done.stderr.decode("utf-8").splitlines()
    assert done.returncode == 2 and len(lines) == 1, done.stderr
    shown = repr(next(argument for argument in arguments if not argument.isascii()))[1:]
    assert lines[0] == f"midashi: an argument is not UTF-8 text: {shown} (give queries and paths in UTF-8)"


@pytest.mark.slow
def test_cli_query_errors_are_one_line(news_root):
    for arguments, message in (
        (("body:[あ TO 龥]",), "midashi: a range like [あ TO 龥] works only on date:"),
        (("fallback:[x TO y]",), "midashi: fallback: is not a field you can search in"),
        (("日本", "--time-budget", "0"), "midashi: this query is too expensive to run (over 0 s)"),
    ):
        done = _midashi("search", *arguments, "--index", str(news_root))
        lines = done.stderr.decode("utf-8").splitlines()
        assert done.returncode == 1 and len(lines) == 1 and lines[0].startswith(message), done.stderr


def test_an_index_of_no_articles_answers_every_front_end(tmp_path):
    """`make run` over an empty corpus folder: every search was a traceback (an idf of log 0, and
    the article map read a segment an empty index does not have)."""
    (tmp_path / "corpus").mkdir()
    root = tmp_path / "index"
    reindex([tmp_path / "corpus"], root, workers=0)
    index = SearchIndex(root)
    for query in ("半導体", "日本の首都はどこですか", "iPhone -Android", "date:2012"):
        for group in (False, True):
            results = index.search(query, group=group, facets=True)
            assert results.total == 0 and results.hits == [] and results.groups == []
        assert index.search(query, sort="newest").total == 0
    client = create_app(root).test_client()
    for url in ("/", "/?q=半導体", "/?q=半導体&sort=newest"):
        response = client.get(url)
        assert response.status_code == 200 and "Traceback" not in response.get_data(as_text=True), url
    assert client.get("/api/search?q=iphnoe").get_json()["total"] == 0
    assert client.get("/api/suggest?q=半").get_json()["queries"] == []
    code = "from search.cli import main; main()"
    cli = subprocess.run(
        [sys.executable, "-c", code, "search", "半導体", "--index", str(root)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=PROJECT,
    )
    assert cli.returncode == 0 and cli.stderr == "" and "0 articles" in cli.stdout
