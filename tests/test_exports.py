"""A search's Atom feed (/feed) and CSV download (/search.csv), read as their readers read them:
the feed by feedparser and as XML against what RFC 4287 requires, the CSV as `midashi search
--format csv` prints it. On the fixture corpus plus one article with a hostile title."""

from __future__ import annotations

import csv
import io
import json
from xml.etree import ElementTree

import feedparser
import pytest
from click.testing import CliRunner
from conftest import fixture_news_with
from werkzeug.http import parse_options_header

from search.cli import cli
from web import create_app

HOSTILE_TITLE = "<script>alert('feed')</script> R&D \x01半導体 & \"AT&T\" ]]> <![CDATA[x]]>"
HOSTILE = f"""http://example.com/tech/0099?a=1&b=2
2012-07-02T08:00:00+0900
{HOSTILE_TITLE}
半導体の研究開発（R&D）に <b>力</b> を入れる & 投資を増やす。\x02制御文字も混じる。
"""
ATOM = "{http://www.w3.org/2005/Atom}"


@pytest.fixture(scope="module")
def index_root(tmp_path_factory):
    return fixture_news_with(tmp_path_factory.mktemp("exports"), {"tech/tech-0099.txt": HOSTILE})


@pytest.fixture(scope="module")
def client(index_root):
    app = create_app(index_root)
    app.testing = True
    return app.test_client()


def api_hits(client, query: str, **params: str) -> list[dict]:
    response = client.get("/api/search", query_string={"q": query, "per_page": 50, **params})
    assert response.status_code == 200
    return response.get_json()["hits"]


def feed_of(client, url: str):
    response = client.get(url)
    assert response.status_code == 200, response.data[:300]
    assert response.headers["Content-Type"] == "application/atom+xml; charset=utf-8"
    parsed = feedparser.parse(response.data)
    assert not parsed.bozo, parsed.get("bozo_exception")  # well-formed XML, as a feed reader reads it
    assert parsed.version == "atom10"
    return parsed, response.data


def check_required_atom(raw: bytes) -> ElementTree.Element:
    """What RFC 4287 requires of a feed and its entries, which feedparser forgives."""
    feed = ElementTree.fromstring(raw)
    assert feed.tag == ATOM + "feed"
    for name in ("id", "title", "updated"):
        assert len(feed.findall(ATOM + name)) == 1 and feed.findtext(ATOM + name), name
    links = {link.get("rel"): link.get("href") for link in feed.findall(ATOM + "link")}
    assert set(links) == {"self", "alternate"}
    assert feed.find(ATOM + "author/" + ATOM + "name") is not None  # entries may have no author of their own
    for entry in feed.findall(ATOM + "entry"):
        for name in ("id", "title", "updated", "summary"):
            assert len(entry.findall(ATOM + name)) == 1, name
        assert entry.findtext(ATOM + "id").startswith("urn:uuid:")
        assert entry.find(ATOM + "link[@rel='alternate']") is not None
        updated = entry.findtext(ATOM + "updated")
        assert updated[10] == "T" and updated.endswith("+09:00"), updated  # RFC 3339, with its zone
    return feed


def test_the_feed_lists_the_matching_articles_newest_first(client):
    parsed, raw = feed_of(client, "/feed?q=半導体")
    check_required_atom(raw)
    newest = api_hits(client, "半導体", sort="newest")
    assert len(newest) == 3  # the hostile one, tech-0002 and economy-0002
    links = [entry.link for entry in parsed.entries]
    assert [link.split("/articles/", 1)[1].split("?")[0] for link in links] == [hit["article_id"] for hit in newest]
    dates = [entry.updated_parsed for entry in parsed.entries]
    assert dates == sorted(dates, reverse=True)
    assert parsed.entries[-1].updated.startswith("2012-02-10T11:10:00")  # economy-0002, the oldest
    assert all(
        link.startswith("http://localhost/articles/") and "q=%E5%8D%8A%E5%B0%8E%E4%BD%93" in link for link in links
    )
    assert parsed.feed.title == "「半導体」の新着記事 — Midashi"
    assert parsed.feed.links[0].href == "http://localhost/feed?q=%E5%8D%8A%E5%B0%8E%E4%BD%93"
    assert {link.rel: link.href for link in parsed.feed.links}["alternate"].endswith(
        "/?q=%E5%8D%8A%E5%B0%8E%E4%BD%93&sort=newest"
    )
    assert parsed.feed.updated.startswith("2012-07-02T08:00:00")  # its newest entry's date
    first = next(entry for entry in parsed.entries if "economy-0002" in entry.link)
    assert first.title == "米国の輸出規制、半導体メーカーに影響広がる"
    assert first.summary.startswith("米国政府が先端半導体の輸出規制を強化した") and "<mark>" not in raw.decode()
    assert first.author == "livedoor ニュース" and first.tags[0].term == "economy"
    assert len({entry.id for entry in parsed.entries}) == len(parsed.entries)


def test_a_hostile_title_is_text_in_the_feed(client):
    parsed, raw = feed_of(client, "/feed?q=半導体")
    text = raw.decode("utf-8")
    assert "<script>" not in text and "&lt;script&gt;" in text and "R&amp;D" in text and "<b>" not in text
    assert "\x01" not in text and "\x02" not in text  # XML 1.0 cannot carry them, escaped or not
    hostile = parsed.entries[0]  # the newest (2012-07-02)
    assert hostile.title == HOSTILE_TITLE.replace("\x01", "")
    assert hostile.summary.startswith("半導体の研究開発（R&D）に <b>力</b> を入れる & 投資を増やす。")
    feed = ElementTree.fromstring(raw)
    assert not feed.findall(".//script") and not feed.findall(".//b")
    related = feed.find(f"{ATOM}entry/{ATOM}link[@rel='related']")
    assert related is not None and related.get("href") == "http://example.com/tech/0099?a=1&b=2"


def test_the_feed_keeps_the_filters_and_ids_are_stable(client):
    parsed, raw = feed_of(client, "/feed?q=半導体&category=tech&from=2012-04&to=2012-12")
    check_required_atom(raw)
    assert [entry.link.split("/articles/")[1].split("?")[0] for entry in parsed.entries] == [
        hit["article_id"] for hit in api_hits(client, "半導体", category="tech", sort="newest", **{"from": "2012-04"})
    ]
    assert {entry.tags[0].term for entry in parsed.entries} == {"tech"} and len(parsed.entries) == 2
    assert "category=tech" in parsed.feed.links[0].href and "from=2012-04" in parsed.feed.links[0].href
    assert "（tech、2012-04-01〜2012-12-31）" in parsed.feed.title
    again, _ = feed_of(client, "/feed?q=半導体&category=tech&from=2012-04&to=2012-12")
    everything, _ = feed_of(client, "/feed?q=半導体")
    assert again.feed.id == parsed.feed.id != everything.feed.id
    shared = {entry.link: entry.id for entry in everything.entries}
    assert all(shared[entry.link] == entry.id for entry in parsed.entries), "an article has one id in any feed"


def test_a_feed_of_nothing_found_is_still_a_valid_feed(client):
    parsed, raw = feed_of(client, "/feed?q=存在しない語彙")
    check_required_atom(raw)
    assert parsed.entries == [] and parsed.feed.updated


@pytest.mark.parametrize(
    "url, detail",
    [
        ("/feed?q=", "検索語を入力してください"),
        ("/feed?q=半導体&from=2012-13-45", "日付として読めません"),
        ("/feed?q=foo:bar", "foo: という項目はありません"),
        ("/search.csv?q=半導体&sort=sideways", "並べ替えの指定が正しくありません"),
        ("/search.csv?q=%20", "検索語を入力してください"),
    ],
)
def test_a_bad_feed_or_csv_request_says_why_in_japanese(client, url, detail):
    response = client.get(url)
    assert response.status_code == 400
    text = response.get_data(as_text=True)
    assert detail in text and "Traceback" not in text
    assert ("フィードは作れませんでした" if url.startswith("/feed") else "CSVは作れませんでした") in text


def cli_csv(index_root, *arguments: str) -> str:
    result = CliRunner().invoke(cli, ["search", *arguments, "--format", "csv", "--index", str(index_root)])
    assert result.exit_code == 0, result.output
    return result.stdout_bytes.decode("utf-8")  # as written: `output` reads CRLF as LF


@pytest.mark.parametrize(
    "params, options",
    [
        ({}, []),
        ({"sort": "newest", "category": "sports"}, ["--sort", "newest", "--category", "sports"]),
    ],
    ids=["relevance", "newest-sports"],
)
def test_the_csv_download_is_what_the_cli_writes(client, index_root, params, options):
    response = client.get("/search.csv", query_string={"q": "サッカー 日本代表", **params})
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "text/csv; charset=utf-8"
    body = response.data.decode("utf-8")
    assert body.startswith("\ufeff"), "a byte-order mark: Excel reads the file as UTF-8, not Shift_JIS"
    assert body[1:] == cli_csv(index_root, "サッカー 日本代表", "-n", "1000", *options)
    rows = list(csv.DictReader(io.StringIO(body[1:], newline="")))
    assert "サッカー日本代表" in rows[0]["title"] + rows[0]["snippet"]
    assert {row["category"] for row in rows} == ({"sports"} if params else {"sports", "economy"})
    header = response.headers["Content-Disposition"]
    # As browsers read it (RFC 6266): filename* (RFC 5987, UTF-8) over the ASCII filename.
    assert parse_options_header(header) == ("attachment", {"filename": "midashi-サッカー_日本代表.csv"})
    assert "filename*=UTF-8''midashi-%E3%82%B5" in header and 'filename="midashi-search.csv"' in header


def test_the_csv_download_stops_at_its_limit(client, monkeypatch):
    from web import exports

    def rows() -> list[list[str]]:
        return list(csv.reader(io.StringIO(client.get("/search.csv?q=半導体").data.decode("utf-8"), newline="")))

    full = rows()
    monkeypatch.setattr(exports, "CSV_ARTICLES", 2)
    cut = rows()
    assert len(full) == 4 and cut == full[:3]  # the header and the best two of three articles


def test_the_page_links_its_feed_and_csv(client):
    html = client.get("/?q=半導体&category=tech&page=1").get_data(as_text=True)
    feed = '/feed?q=%E5%8D%8A%E5%B0%8E%E4%BD%93&amp;category=tech"'
    assert (
        f'<link rel="alternate" type="application/atom+xml" title="「半導体」の新着記事（Atom）" href="{feed}>' in html
    )
    assert f'<a class="feed-link" href="{feed} type="application/atom+xml">' in html
    assert '<a class="csv-link" href="/search.csv?q=%E5%8D%8A%E5%B0%8E%E4%BD%93&amp;category=tech" download>' in html
    nothing = client.get("/?q=存在しない語彙").get_data(as_text=True)
    assert 'type="application/atom+xml"' in nothing and "csv-link" not in nothing  # a feed waits for news
    assert "application/atom+xml" not in client.get("/").get_data(as_text=True)


def test_the_feed_id_names_the_search_not_the_host(client):
    from search.exports import stable_id

    parsed, _ = feed_of(client, "/feed?q=半導体")
    assert parsed.feed.id == stable_id("search", json.dumps({"q": "半導体"}, ensure_ascii=False))
    filtered, _ = feed_of(client, "/feed?category=tech&q=半導体")
    key = json.dumps({"category": "tech", "q": "半導体"}, ensure_ascii=False)
    assert filtered.feed.id == stable_id("search", key) != parsed.feed.id
    assert stable_id("article", "tech/tech-0002") in {entry.id for entry in parsed.entries}
