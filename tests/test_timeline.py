"""The timeline: matching articles per month over the whole result set (not the page), in the
JSON of the API and the CLI, and as the page's bar chart whose bars filter to their month.

The counts are checked against the results themselves: every matching article listed (the
fixtures have fewer than a page of 50), its date's month counted once."""

from __future__ import annotations

import json
import re
from collections import Counter
from itertools import pairwise

import pytest
from click.testing import CliRunner
from conftest import FIXTURE_NEWS, fixture_news_with
from web_corpus import CHIP_ARTICLES, build_web_index

from search.cli import cli
from search.indexing import reindex
from search.searching import SearchIndex
from web import create_app


@pytest.fixture(scope="module")
def web_root(tmp_path_factory):
    return build_web_index(tmp_path_factory.mktemp("timeline"))


@pytest.fixture(scope="module")
def client(web_root):
    app = create_app(web_root)
    app.testing = True
    return app.test_client()


def search_api(client, query: str, **params) -> dict:
    response = client.get("/api/search", query_string={"q": query, "per_page": 50, **params})
    assert response.status_code == 200, response.data[:300]
    return response.get_json()


def months_of(hits: list[dict]) -> dict[str, int]:
    """The oracle: each listed article's month, counted (undated articles have none)."""
    return dict(Counter(hit["date"][:7] for hit in hits if hit["date"]))


def check_shape(timeline: list[dict]) -> None:
    """Oldest first, one entry per month from the first to the last, none left out."""
    months = [entry["month"] for entry in timeline]
    assert months == sorted(months) and len(set(months)) == len(months)
    for earlier, later in pairwise(months):
        year, month = map(int, earlier.split("-"))
        assert later == (f"{year + 1}-01" if month == 12 else f"{year}-{month + 1:02d}"), (earlier, later)
    assert timeline[0]["articles"] and timeline[-1]["articles"], "it starts and ends with a month that has some"


def test_the_timeline_counts_each_matching_article_once_per_month(client):
    data = search_api(client, "半導体")
    assert data["articles"] == len(data["hits"]) == CHIP_ARTICLES + 2  # every article is on this page
    timeline = data["timeline"]
    check_shape(timeline)
    assert {entry["month"]: entry["articles"] for entry in timeline if entry["articles"]} == months_of(data["hits"])
    assert sum(entry["articles"] for entry in timeline) < data["total"], "articles, not their many sections"
    assert {"month": "2011-02", "articles": 0} in timeline  # a month between without a match is there, as 0
    # The whole result set, not the page: a page of one article has the same timeline.
    assert search_api(client, "半導体", per_page=1, page=3)["timeline"] == timeline
    assert search_api(client, "半導体", sort="oldest")["timeline"] == timeline


@pytest.mark.parametrize(
    "params",
    [{"category": "tech"}, {"source": "テスト通信"}, {"from": "2011-03-15", "to": "2012-04"}],
    ids=["category", "source", "dates"],
)
def test_the_timeline_follows_the_filters(client, params):
    data = search_api(client, "半導体", **params)
    assert data["hits"]
    nonzero = {entry["month"]: entry["articles"] for entry in data["timeline"] if entry["articles"]}
    assert nonzero == months_of(data["hits"])
    assert nonzero != months_of(search_api(client, "半導体")["hits"])
    if "from" in params:
        assert data["timeline"][0]["month"] >= "2011-03" and data["timeline"][-1]["month"] <= "2012-04"


def test_nothing_found_has_an_empty_timeline(client):
    assert search_api(client, "存在しない語彙")["timeline"] == []


def test_the_cli_json_carries_the_same_timeline(client, web_root):
    for query, options in (("半導体", []), ("半導体", ["--category", "tech"]), ("半導体 工場", ["--sort", "newest"])):
        result = CliRunner().invoke(cli, ["search", query, "--format", "json", "--index", str(web_root), *options])
        assert result.exit_code == 0, result.output
        printed = json.loads(result.output)["timeline"]
        params = dict(zip([option.lstrip("-") for option in options[::2]], options[1::2]))
        assert printed and printed == search_api(client, query, **params)["timeline"], query


def test_the_fixture_news_timeline(tmp_path):
    """サッカー in the fixture corpus: 2011-12 (なでしこ) and 2012-05 (日本代表), the months between 0."""
    reindex([FIXTURE_NEWS], tmp_path / "index", workers=0)
    results = SearchIndex(tmp_path / "index").search("サッカー", facets=True, group=True)
    assert [(month.month, month.articles) for month in results.timeline or []] == [
        ("2011-12", 1),
        ("2012-01", 0),
        ("2012-02", 0),
        ("2012-03", 0),
        ("2012-04", 0),
        ("2012-05", 1),
    ]
    assert SearchIndex(tmp_path / "index").search("サッカー").timeline is None  # counted with the facets only


# --- the page's chart --------------------------------------------------------------------------


def chart(html: str) -> str:
    match = re.search(r'<nav class="timeline".*?</nav>', html, re.S)
    return match.group(0) if match else ""


def test_the_page_draws_a_bar_per_month_that_filters_to_it(client):
    html = client.get("/?q=半導体&sort=newest&per_page=5&page=2").get_data(as_text=True)
    bars = chart(html)
    data = search_api(client, "半導体")
    links = re.findall(r'<a class="timeline-month" href="([^"]+)" title="([^"]+)" aria-label="([^"]+)">', bars)
    nonzero = [entry for entry in data["timeline"] if entry["articles"]]
    assert len(links) == len(nonzero) >= 2
    for (href, title, label), entry in zip(links, nonzero):
        year, month = map(int, entry["month"].split("-"))
        assert title == label == f"{year}年{month}月: {entry['articles']} 件"
        assert f"from={entry['month']}-01&amp;to={entry['month']}-" in href
        assert "q=%E5%8D%8A%E5%B0%8E%E4%BD%93" in href and "sort=newest&amp;per_page=5" in href
        assert "page=" not in href.replace("per_page=", ""), "a filtered list starts at its first page"
    assert "from=2012-02-01&amp;to=2012-02-29" in bars  # a leap year's February ends on the 29th
    # A month without articles is drawn (time stays to scale) but is no link.
    empty = len(data["timeline"]) - len(nonzero)
    assert empty and bars.count('<span class="timeline-month" title="') == empty
    assert bars.count('<span class="tick" aria-hidden="true">') == 2 and ">2011年<" in bars and ">2012年<" in bars


def test_a_bar_leads_to_that_months_articles(client):
    html = client.get("/?q=半導体").get_data(as_text=True)
    href = re.search(r'<a class="timeline-month" href="([^"]+)" title="2011年3月', chart(html)).group(1)
    filtered = client.get(href.replace("&amp;", "&"))
    assert filtered.status_code == 200
    page = filtered.get_data(as_text=True)
    dates = re.findall(r'<time datetime="([\d-]+)">', page)
    assert len(dates) == 3 and all(date.startswith("2011-03-") for date in dates)
    assert 'value="2011-03-01"' in page and 'value="2011-03-31"' in page  # the period fields show the month
    assert chart(page) == "", "one month: nothing to compare, no chart"


def test_no_chart_for_one_month_or_nothing(client):
    assert chart(client.get("/?q=純水&from=2012-02&to=2012-02").get_data(as_text=True)) == ""
    assert chart(client.get("/?q=存在しない語彙").get_data(as_text=True)) == ""
    assert chart(client.get("/?q=純水").get_data(as_text=True))


OLD_MATCH = """http://example.com/sports/0099
2005-05-20T10:00:00+0900
サッカーくじの売り上げが伸びる
サッカーくじの売り上げが前の年より伸びた。
"""


def test_a_long_timeline_is_drawn_by_year_and_a_year_leads_to_its_months(tmp_path):
    """More months than a phone can show apart (2005-05 to 2012-05: 85): a bar per year."""
    client = create_app(fixture_news_with(tmp_path, {"sports/sports-0099.txt": OLD_MATCH})).test_client()
    data = client.get("/api/search?q=サッカー").get_json()
    assert len(data["timeline"]) == 85 and data["timeline"][0] == {"month": "2005-05", "articles": 1}
    bars = chart(client.get("/?q=サッカー").get_data(as_text=True))
    assert "年別の記事数" in bars and "その年に絞り込みます" in bars
    labels = re.findall(r'title="([^"]+)"', bars)
    assert labels == [
        f"{year}年: {1 if year in (2005, 2011) else 0 if year < 2012 else 1} 件" for year in range(2005, 2013)
    ]
    assert re.findall(r'class="tick" aria-hidden="true">(\d+)年<', bars) == ["2005", "2007", "2009", "2011"]
    href = re.search(r'href="([^"]+)" title="2005年: 1 件"', bars).group(1).replace("&amp;", "&")
    assert href.endswith("q=%E3%82%B5%E3%83%83%E3%82%AB%E3%83%BC&from=2005-01-01&to=2005-12-31")
    in_2005 = client.get(href).get_data(as_text=True)
    assert re.findall(r'<time datetime="([\d-]+)">', in_2005) == ["2005-05-20"]
    two_years = chart(client.get("/?q=サッカー&from=2011&to=2012").get_data(as_text=True))
    assert "月別の記事数" in two_years and two_years.count("<li>") == 6  # 2011-12 to 2012-05, by month again


@pytest.mark.livedoor
def test_kagawa_over_livedoor(livedoor):
    """香川 over the 7,367 livedoor articles: each month's count is that of the listed articles."""
    results = SearchIndex(livedoor[0]).search("香川", limit=1000, facets=True, group=True)
    assert results.articles is not None and 20 < results.articles < 1000  # every article is listed
    listed = Counter(f"{hit.date:%Y-%m}" for hit in results.hits if hit.date)
    timeline = results.timeline or []
    assert {month.month: month.articles for month in timeline if month.articles} == listed
    check_shape([month.as_json() for month in timeline])
    assert sum(month.articles for month in timeline) < results.total
    page = create_app(livedoor[0]).test_client().get("/?q=香川").get_data(as_text=True)
    drawn = chart(page)
    assert ("年別" if len(timeline) > 48 else "月別") + "の記事数" in drawn
    if len(timeline) <= 48:
        assert drawn.count("<li>") == len(timeline)
