"""The page and the JSON API through Flask's test client, hostile input included."""

from __future__ import annotations

import re

import pytest
from web_corpus import CATEGORIES, CHIP_ARTICLES, HOSTILE_ID, build_web_index

from web import create_app

SAMPLE = "blockmedia-trump-nvidia-h200-china-export"


@pytest.fixture(scope="session")
def client(tmp_path_factory):
    app = create_app(build_web_index(tmp_path_factory.mktemp("web")))
    app.testing = True
    return app.test_client()


def page(client, url: str, status: int = 200) -> str:
    response = client.get(url)
    assert response.status_code == status, response.data[:500]
    text = response.get_data(as_text=True)
    assert "Traceback" not in text
    return text


def api(client, url: str, status: int = 200) -> dict:
    response = client.get(url)
    assert response.status_code == status, response.data[:500]
    assert response.is_json
    return response.get_json()


# --- the search page -------------------------------------------------------------------------


def test_home_page_has_a_labelled_focused_search_box_and_help(client):
    html = page(client, "/")
    assert '<form class="search-form" role="search"' in html
    assert '<label for="q"' in html and "autofocus" in html
    assert "<main" in html and "<header" in html and "<footer" in html
    assert "検索のしかた" in html and "OR" in html and "title:" in html


def test_results_are_grouped_by_article_with_marked_snippets(client):
    html = page(client, "/?q=半導体")
    assert "<mark>半導体</mark>" in html
    assert "この記事の他の一致箇所 (3)" in html
    assert f"<strong>{CHIP_ARTICLES + 2}</strong> 件の記事" in html
    assert 'value="半導体"' in html  # the query stays in the box
    # Each article appears once on a page.
    links = re.findall(r'class="hit-title"><a href="/articles/([^"?]+)', html)
    assert len(links) == len(set(links)) == 10


def test_result_links_land_on_the_matched_section_with_the_query(client):
    html = page(client, "/?q=純水")
    assert re.search(r'href="/articles/chips/chip-\d+\?q=%E7%B4%94%E6%B0%B4#s4"', html)


def test_facets_filter_and_show_counts(client):
    html = page(client, "/?q=半導体")
    assert 'href="/?q=%E5%8D%8A%E5%B0%8E%E4%BD%93&amp;category=economy"' in html
    filtered = page(client, "/?q=半導体&category=economy")
    assert "category=tech" not in filtered.split('class="results"')[1]
    assert "絞り込みを解除" in filtered
    data = api(client, "/api/search?q=半導体&category=tech&per_page=50")
    assert {hit["category"] for hit in data["hits"]} == {"tech"}


def test_year_facet_leads_to_month_facet(client):
    html = page(client, "/?q=半導体&from=2011-01-01&to=2011-12-31")
    assert "<h2>月</h2>" in html and "3月" in html
    data = api(client, "/api/search?q=半導体&from=2011-03&to=2011-03&per_page=50")
    assert data["hits"] and all(hit["date"].startswith("2011-03") for hit in data["hits"])


def test_sort_by_date(client):
    newest = api(client, "/api/search?q=半導体&sort=newest&per_page=50")["hits"]
    dates = [hit["date"] for hit in newest if hit["date"]]
    assert dates == sorted(dates, reverse=True)
    assert newest[-1]["date"] is None  # undated articles go last
    oldest = api(client, "/api/search?q=半導体&sort=oldest&per_page=50")["hits"]
    assert [hit["date"] for hit in oldest if hit["date"]] == sorted(dates)


def test_pagination(client):
    first = page(client, "/?q=半導体")
    assert 'rel="next"' in first and 'aria-current="page">1<' in first
    second = page(client, "/?q=半導体&page=2")
    assert 'rel="prev"' in second and 'start="11"' in second
    ids = lambda data: [hit["article_id"] for hit in data["hits"]]  # noqa: E731
    one = api(client, "/api/search?q=半導体&per_page=5&page=1")
    two = api(client, "/api/search?q=半導体&per_page=5&page=2")
    assert not set(ids(one)) & set(ids(two))
    assert two["hits"][0]["rank"] == 6


def test_zero_results_suggest_other_queries(client):
    html = page(client, "/?q=半導体 存在しない語彙")  # by relevance: the articles with 半導体 follow
    assert "を含む記事はありません — 一部の語に一致する記事" in html
    html = page(client, "/?q=半導体 存在しない語彙&sort=newest")  # by date: every word, or nothing
    assert "一致する記事は見つかりませんでした" in html
    assert 'href="/?q=%E5%8D%8A%E5%B0%8E%E4%BD%93&amp;sort=newest"' in html and "語を1つ外す" in html
    html = page(client, "/?q=半導体&category=nothing")
    assert "絞り込みを解除" in html


@pytest.mark.parametrize(
    "query, status",
    [
        ("", 200),
        ("   ", 200),
        ("半" * 10_000, 400),
        ("\x00\x01半導体\x1f", 200),
        ('"半導体', 200),
        ("「半導体", 200),
        ("title:", 200),
        ("(((", 200),
        ("OR", 200),
        ("-半導体", 200),
        ("<script>alert(1)</script>", 200),
        ("。、！", 400),
    ],
)
def test_hostile_queries_never_fail(client, query, status):
    response = client.get("/", query_string={"q": query})
    text = response.get_data(as_text=True)
    assert response.status_code in (status, 400)
    assert "Traceback" not in text and "<script>alert" not in text
    assert client.get("/api/search", query_string={"q": query}).is_json


def test_query_errors_are_friendly(client):
    html = page(client, "/?q=" + "半" * 10_000, 400)
    assert "この検索語では検索できませんでした" in html and 'role="alert"' in html
    assert "検索語が長すぎます" in html  # the page is in Japanese, and so are its messages
    html = page(client, "/?q=半導体&from=yesterday", 400)
    assert "日付として読めません: yesterday" in html and "not a date" not in html


# --- the article page ------------------------------------------------------------------------


def test_article_page_has_all_sections_marked_and_related(client):
    html = page(client, f"/articles/{SAMPLE}?q=半導体")
    for number in range(1, 6):
        assert f'id="s{number}"' in html
    assert "<mark>半導体</mark>" in html
    chip = page(client, "/articles/chips/chip-03?q=輸出")
    assert "関連記事" in chip and 'href="/articles/chips/chip-' in chip
    assert 'href="https://example.com/chips/3"' in chip


def test_hostile_article_shows_markup_as_text(client):
    for url in (f"/articles/{HOSTILE_ID}", "/?q=半導体", "/?q=危険な記事"):
        html = page(client, url)
        assert "<script>alert" not in html and "<img src=x" not in html and "<b>悪意" not in html
        assert 'href="javascript:' not in html
    html = page(client, f"/articles/{HOSTILE_ID}")
    assert "&lt;script&gt;alert(1)&lt;/script&gt;危険な記事の見出し" in html
    assert '<span class="raw-url">javascript:alert(1)</span>' in html


@pytest.mark.parametrize(
    "article_id",
    [
        "nope",
        "chips/nope",
        "../etc/passwd",
        "chips/../chips/chip-01",
        "chips//chip-01",
        "%2e%2e/etc/passwd",
        "chips/chip-01%23s1",
        "a\\b",
        "%00",
    ],
)
def test_unknown_and_traversal_ids_are_404(client, article_id):
    html = page(client, f"/articles/{article_id}", 404)
    assert "ページが見つかりません" in html
    assert "error" in api(client, f"/api/articles/{article_id}", 404)


# --- the JSON API ----------------------------------------------------------------------------


def test_api_search_fields(client):
    data = api(client, "/api/search?q=半導体 輸出&per_page=3")
    assert data["total"] >= data["articles"] >= 3 and len(data["hits"]) == 3
    hit = data["hits"][0]
    assert "<mark>" in hit["snippet_html"] and "<mark>" not in hit["snippet"]
    assert hit["section_id"].startswith(hit["article_id"] + "#")
    assert hit["score"] > 0 and data["elapsed_ms"] >= 0
    assert {f["value"] for f in data["facets"]["category"]} >= set(CATEGORIES)


@pytest.mark.parametrize(
    "query",
    [
        "q=",
        "q=半導体&page=0",
        "q=半導体&page=x",
        "q=半導体&per_page=1000",
        "q=半導体&sort=random",
        "q=半導体&from=2012-13-01",
        "q=半導体&from=2012-05-01&to=2011-01-01",
        "q=" + "x" * 10_000,
    ],
)
def test_api_errors_are_json_400(client, query):
    assert api(client, f"/api/search?{query}", 400)["error"]


def test_api_article(client):
    data = api(client, f"/api/articles/{HOSTILE_ID}?q=半導体")
    assert data["title"].startswith("<script>")  # JSON carries the text as is
    assert "&lt;script&gt;" in data["sections"][0]["html"] and "<mark>半導体</mark>" in data["sections"][0]["html"]


def test_api_suggest(client):
    data = api(client, "/api/suggest?q=半導")
    assert "半導体" in data["queries"]
    titles = api(client, "/api/suggest?q=工場の新設")["titles"]
    assert titles and all("工場の新設" in t["title"] for t in titles)
    assert api(client, "/api/suggest?q=") == {"queries": [], "titles": []}
    assert api(client, "/api/suggest?q=" + "\x00" * 50) == {"queries": [], "titles": []}


def test_healthz_and_unknown_api_paths(client):
    assert api(client, "/healthz")["status"] == "ok"
    assert "error" in api(client, "/api/nothing", 404)


def test_missing_index_is_a_friendly_503(tmp_path):
    client = create_app(tmp_path / "none").test_client()
    assert "midashi reindex" in api(client, "/healthz", 503)["error"]
    assert "索引がまだありません" in page(client, "/?q=半導体", 503)


# --- issue 29: the page's language, paging, focus, other sections and the article page -------

ENGLISH_SENTENCE = re.compile(r"\b[a-z]{2,}\b(?: [a-z]{2,}\b){2,}")  # three English words in a row


def notice(html: str) -> str:
    """The text of the page's error notice (tags dropped)."""
    block = re.search(r'<div class="notice" role="alert">(.*?)</div>', html, re.S)
    assert block, "the page shows a notice"
    return re.sub(r"<[^>]+>", "", block.group(1))


@pytest.mark.parametrize(
    "url, expected",
    [
        ("/?q=半導体&from=2012-13-45", "日付として読めません: 2012-13-45"),
        ("/?q=半導体&to=yesterday", "日付として読めません: yesterday"),
        ("/?q=半導体&from=2012-05-01&to=2011-01-01", "開始日が終了日より後"),
        ("/?q=半導体&page=abc", "ページ番号は整数で指定してください"),
        ("/?q=半導体&page=0", "ページ番号は 1 から 1000 まで"),
        ("/?q=半導体&per_page=1000", "1 ページの件数は 1 から 50 まで"),
        ("/?q=の", "助詞や記号だけでは検索できません"),
        ("/?q=。、！", "検索できる語がありません"),
        ("/?q=" + "半" * 10_000, "検索語が長すぎます"),
    ],
)
def test_every_message_on_the_page_is_japanese(client, url, expected):
    text = notice(page(client, url, 400))
    assert expected in text
    assert not ENGLISH_SENTENCE.search(text), text  # not `not a date: ... (use YYYY-MM-DD)`
    assert "must be" not in text and "not a date" not in text and "particles" not in text


def test_a_bad_date_is_about_the_conditions_not_the_words(client):
    text = notice(page(client, "/?q=半導体&from=2012-13-45", 400))
    assert "指定された条件では検索できませんでした" in text and "語を変える" not in text
    html = page(client, "/?q=半導体&from=2012-13-45", 400)
    assert 'href="/?q=%E5%8D%8A%E5%B0%8E%E4%BD%93">条件を外して' in html  # the way out keeps the words
    assert "この検索語では検索できませんでした" in notice(page(client, "/?q=の", 400))


def pager_items(html: str) -> list[str]:
    nav = re.search(r'<nav class="pagination".*?</nav>', html, re.S).group(0)
    return [re.sub(r"<[^>]+>", "", item).strip() for item in re.findall(r"<li>(.*?)</li>", nav, re.S)]


def test_pagination_shows_the_page_count_and_the_last_page(client):
    articles = api(client, "/api/search?q=半導体&per_page=1")["articles"]
    assert articles >= 12  # enough pages for the pager to leave some out
    html = page(client, "/?q=半導体&per_page=1&page=3")
    assert f"{articles} ページ中 3 ページ目" in html
    assert pager_items(html) == ["← 前へ", "1", "2", "3", "4", "5", "…", str(articles), "次へ →"]
    assert f'aria-label="{articles} ページ目（最後）"' in html
    middle = pager_items(page(client, f"/?q=半導体&per_page=1&page={articles // 2}"))
    assert middle[1:3] == ["1", "…"] and middle[-3:] == ["…", str(articles), "次へ →"]
    last = page(client, f"/?q=半導体&per_page=1&page={articles}")
    assert f"{articles} ページ中 {articles} ページ目" in last and 'rel="next"' not in last
    assert 'class="pagination"' not in page(client, "/?q=純水&per_page=50")  # one page: no pager


def test_a_page_past_the_end_links_to_the_last(client):
    articles = api(client, "/api/search?q=半導体&per_page=10")["articles"]
    pages = -(-articles // 10)
    html = page(client, "/?q=半導体&page=999&sort=newest")
    assert "999 ページ目はありません" in html
    assert (
        f'href="/?q=%E5%8D%8A%E5%B0%8E%E4%BD%93&amp;sort=newest&amp;page={pages}">最後のページ（{pages} ページ目）へ'
        in html
    )
    assert "語を減らす" not in html and "一致する記事は見つかりませんでした" not in html
    assert 'rel="next"' not in html


def test_only_the_empty_home_page_takes_focus(client):
    assert "autofocus" in page(client, "/")
    for url in ("/?q=半導体", "/?q=半導体&page=999", "/?q=の", f"/articles/{SAMPLE}?q=半導体", "/no-such-page"):
        response = client.get(url)
        assert "autofocus" not in response.get_data(as_text=True), url


def test_other_sections_show_a_heading_once_and_a_snippet(client):
    html = page(client, "/?q=香川")
    [digest] = [block for block in html.split('<li class="hit">') if "/articles/digest/week" in block]
    others = re.search(r'<details class="others">(.*?)</details>', digest, re.S).group(1)
    lines = re.findall(r"<li>(.*?)</li>", others, re.S)
    assert len(lines) >= 3
    headings = re.findall(r'<span class="other-heading">(.*?)</span>', others)
    assert len(headings) == len(set(headings)), "a heading is shown once"
    best_heading = re.search(r'<p class="section-heading">(.*?)</p>', digest).group(1)
    assert best_heading not in headings
    assert not re.search(r">第\d+節<", others), "no bare section number"
    snippets = re.findall(r'<span class="other-snippet">(.*?)</span></a>', others, re.S)
    assert len(snippets) >= 3 and all(re.sub(r"<[^>]+>", "", s).strip() for s in snippets)
    assert any("<mark>香川</mark>" in s for s in snippets)
    assert all(set(re.findall(r"</?([a-zA-Z]+)", s)) <= {"mark"} for s in snippets)  # escaped text and marks


def test_other_sections_of_the_chip_articles_each_say_what_they_are(client):
    html = page(client, "/?q=半導体")
    for others in re.findall(r'<details class="others">(.*?)</details>', html, re.S):
        for line in re.findall(r"<li>(.*?)</li>", others, re.S):
            assert 'class="other-snippet"' in line or 'class="other-heading"' in line or "left-out" in line
            assert not re.search(r">第\d+節<", line)


def test_long_article_has_a_table_of_contents_and_match_navigation(client):
    html = page(client, "/articles/digest/week?q=香川")
    toc = re.search(r'<nav class="toc".*?</nav>', html, re.S).group(0)
    entries = re.findall(r'<li( class="matched")?><a href="#s(\d+)">(.*?)</a>', toc)
    sections = re.findall(r'<section id="s(\d+)"', html)
    assert len(entries) == len(sections) >= 6
    assert entries[0][2] == "今週の主なニュースを分野ごとにまとめた。"  # an unheaded section: its opening
    matched = [number for flag, number, _ in entries if flag]
    assert matched == re.findall(r'<section id="s(\d+)" class="article-section matched"', html) and len(matched) == 2
    first, second = matched
    assert f'<a href="#s{second}" rel="next" data-match-nav="next">' in html
    assert f'<a href="#s{first}" rel="prev" data-match-nav="prev">' in html
    assert f'<a class="first-match" href="#s{first}">一致箇所 2 か所</a>' in html
    short = page(client, f"/articles/{SAMPLE}?q=半導体")
    assert 'class="toc"' not in short  # five sections: no table of contents


def test_article_bar_names_the_article_for_a_reader_landing_mid_article(client):
    from web_corpus import DIGEST_TITLE

    html = page(client, "/articles/digest/week?q=香川")
    bar = re.search(r'<div class="article-bar" id="article-bar">(.*?)</div>', html, re.S).group(1)
    assert f'<span class="bar-headline">{DIGEST_TITLE}</span>' in bar and "2012年6月9日" in bar
    assert "「香川」の検索結果" in bar
    hostile = page(client, f"/articles/{HOSTILE_ID}")
    assert '<span class="bar-headline">&lt;script&gt;alert(1)&lt;/script&gt;危険な記事の見出し</span>' in hostile
