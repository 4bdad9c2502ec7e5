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
    ["nope", "chips/nope", "../etc/passwd", "chips/../chips/chip-01", "chips//chip-01", "%2e%2e/etc/passwd",
     "chips/chip-01%23s1", "a\\b", "%00"],
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
    ["q=", "q=半導体&page=0", "q=半導体&page=x", "q=半導体&per_page=1000", "q=半導体&sort=random",
     "q=半導体&from=2012-13-01", "q=半導体&from=2012-05-01&to=2011-01-01", "q=" + "x" * 10_000],
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
