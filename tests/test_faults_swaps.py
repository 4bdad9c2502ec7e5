"""Generation swaps and segments without a column: every request sees one generation, no 500s.

Issue 26: indexing corpus/ (no dates) and then the livedoor tarball beside it left one segment
without a `date` column, and every search page was a 500; and searches running while reindexes
swapped generations read the next generation's tables (IndexError in the facet counts). These
tests run on the fixture corpus (tests/fixtures/news) plus undated articles written here.
"""

from __future__ import annotations

import gc
import json
import os
import socket
import subprocess
import sys
import tarfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import weakref
from pathlib import Path

import pytest
from conftest import CORPUS, LIVEDOOR_TARBALL, require

import search.searching as searching
from search.indexing import reindex
from search.ranking.scoring import SEGMENT_TABLES
from search.searching import ArticleMap, FacetTable, Filters, SearchIndex
from tests.whoosh_oracle import WhooshOracle
from web import create_app

PROJECT = Path(__file__).resolve().parent.parent
NEWS = PROJECT / "tests" / "fixtures" / "news"
# Undated articles: one with a source and a category, one with neither (a top-level file).
UNDATED = {
    "desk/undated-1.md": (
        "# 日本の半導体輸出、規制の行方\n出典: 編集部\n\n日本の半導体メーカーは輸出規制の影響を受けている。\n"
    ),
    "undated-2.md": (
        "# サッカー日本代表の新しい監督\n\n日本代表の新監督が決まった。ワールドカップ予選に向けて準備を進める。\n"
    ),
}
OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def write_undated(folder: Path) -> Path:
    for name, text in UNDATED.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(text, encoding="utf-8")
    return folder


@pytest.fixture
def undated(tmp_path) -> Path:
    return write_undated(tmp_path / "undated")


@pytest.fixture(scope="module")
def mixed_index(tmp_path_factory) -> Path:
    """Undated articles indexed, then the fixture corpus beside them: one segment has no dates."""
    undated = write_undated(tmp_path_factory.mktemp("undated"))
    root = tmp_path_factory.mktemp("mixed") / "index"
    reindex([undated], root, workers=0)
    reindex([NEWS, undated], root, workers=0)
    return root


def segments_without_dates(index: SearchIndex) -> int:
    with index.open()[1].reader() as reader:
        return sum(not leaf.has_column("date") for leaf, _ in reader.leaf_readers())


# --- a segment without a date, category or source column ---------------------------------------


@pytest.mark.parametrize("order", ["undated first (the README flow)", "dated first"])
def test_a_segment_without_dates_or_categories_serves_every_page(tmp_path, undated, order):
    root = tmp_path / "index"
    first = [undated] if order.startswith("undated") else [NEWS]
    reindex(first, root, workers=0)
    reindex([NEWS, undated], root, workers=0)
    index = SearchIndex(root)
    assert segments_without_dates(index) == 1  # what broke the facet table
    app = create_app(root)
    client = app.test_client()
    for url in [
        "/?q=日本",
        "/?q=半導体&sort=newest",
        "/?q=日本代表&from=2012-01&to=2012-12",
        "/?q=日本&category=sports",
        "/api/search?q=日本",
        "/api/search?q=半導体 輸出&sort=oldest",
        "/api/search?q=日本&source=編集部",
        "/api/suggest?q=日本",
        "/api/articles/desk/undated-1?q=半導体",
        "/articles/undated-2",
        "/api/articles/tech/tech-0002",
        "/?q=半導休メーカー",
        "/healthz",
    ]:
        response = client.get(url)
        assert response.status_code == 200, (url, response.data[:300])

    found = client.get("/api/search?q=日本&per_page=50").get_json()
    ids = {hit["article_id"] for hit in found["hits"]}
    assert {"desk/undated-1", "undated-2"} <= ids and ids & {"sports/sports-0001", "economy/economy-0001"}
    facets = found["facets"]
    assert {"value": "編集部", "count": 1} in facets["source"]  # the undated article's source
    assert sum(f["count"] for f in facets["month"]) < found["articles"]  # undated articles count in no month
    for sort in ("newest", "oldest"):
        dates = [hit["date"] for hit in client.get(f"/api/search?q=日本&sort={sort}&per_page=50").get_json()["hits"]]
        dated = [d for d in dates if d]
        assert dated == sorted(dated, reverse=sort == "newest") and dates[len(dated) :] == [None, None]
    undated_only = client.get("/api/search?q=日本&from=2000&to=2030&per_page=50").get_json()
    assert not {hit["article_id"] for hit in undated_only["hits"]} & {"desk/undated-1", "undated-2"}
    assert "日本の半導体輸出、規制の行方" in {
        t["title"] for t in client.get("/api/suggest?q=日本の半導").get_json()["titles"]
    }


@pytest.mark.livedoor
def test_the_readme_flow_on_livedoor_articles_serves_every_page(tmp_path):
    """`make run` indexes corpus/ (no date); then the README's reindex adds the livedoor tarball
    beside it (here a tarball of its first articles, as the reader finds them in the real one)."""
    tarball = tmp_path / "ldcc-part.tar.gz"
    with tarfile.open(require(LIVEDOOR_TARBALL)) as source, tarfile.open(tarball, "w:gz") as part:
        taken = 0
        for member in source:
            if member.isfile() and member.name.endswith(".txt") and "LICENSE" not in member.name:
                part.addfile(member, source.extractfile(member))
                taken += 1
            if taken == 60:
                break
    root = tmp_path / "index"
    reindex([CORPUS], root, workers=0)
    reindex([tarball, CORPUS], root, workers=0)
    index = SearchIndex(root)
    assert segments_without_dates(index) == 1
    client = create_app(root).test_client()
    for url in [
        "/?q=日本",
        "/api/search?q=日本",
        "/api/search?q=トランプ&sort=newest",
        "/?q=日本&from=2010",
        "/api/suggest?q=ト",
        "/articles/blockmedia-trump-nvidia-h200-china-export?q=トランプ",
    ]:
        response = client.get(url)
        assert response.status_code == 200, (url, response.data[:300])
    found = client.get("/api/search?q=日本&per_page=50").get_json()
    assert found["total"] > 10 and found["facets"]["month"] and found["facets"]["category"]
    newest = client.get("/api/search?q=トランプ OR 日本&sort=newest&per_page=50").get_json()["hits"]
    assert newest[0]["date"] and newest[-1]["date"] is None  # the sample article has no date: last


@pytest.mark.parametrize(
    ("filters", "finds"),
    [
        (Filters(), True),
        (Filters.parse(date_from="2012-01", date_to="2012-06"), True),
        (Filters.parse(date_from="2012-03"), True),
        (Filters.parse(date_to="2011-12-31"), True),
        (Filters.parse(category="sports"), True),
        (Filters.parse(source="編集部"), True),
        (Filters.parse(category="tech", date_from="2012"), True),
        (Filters.parse(category="desk", date_to="2030"), False),  # desk's one article has no date
        (Filters.parse(category="なし"), False),
    ],
)
def test_facets_and_filters_agree_with_whoosh_over_segments_without_columns(mixed_index, filters, finds):
    """Counts and filters come from the generation's tables (the date column read segment by
    segment); Whoosh's collector and filter queries read the terms: the same sections either way."""
    fast, plain = SearchIndex(mixed_index), WhooshOracle(mixed_index, exact=False)
    assert segments_without_dates(fast) == 1
    totals = []
    for query in ["日本", "半導体", "日本代表 OR 輸出", "発表"]:
        mine = fast.search(query, limit=50, facets=True, filters=filters)
        whoosh = plain.search(query, limit=50, facets=True, filters=filters)
        assert (mine.total, mine.facets) == (whoosh.total, whoosh.facets), query
        assert [hit.section_id for hit in mine.hits] == [hit.section_id for hit in whoosh.hits], query
        totals.append(mine.total)
    assert any(totals) == finds


# --- one generation per search ---------------------------------------------------------------


def test_swaps_in_the_middle_of_a_search_change_nothing_for_it(tmp_path, undated, monkeypatch):
    """Two reindexes publish generations with other sections while a search is between ranking
    and counting facets and grouping, and the second deletes the search's generation folder: the
    search still builds its tables from, and finishes on, its own generation."""
    root = tmp_path / "index"
    reindex([NEWS, undated], root, workers=0)
    before = SearchIndex(root).search("日本", limit=20, facets=True, group=True)
    index = SearchIndex(root)  # nothing built yet: its tables are built mid-search
    ranked = searching.top_documents
    swapped: list[str] = []

    def rank_then_swap(*args, **kwargs):
        result = ranked(*args, **kwargs)
        if not swapped:
            swapped.extend(reindex(corpora, root, workers=0).generation for corpora in ([NEWS], [undated]))
        return result

    monkeypatch.setattr(searching, "top_documents", rank_then_swap)
    during = index.search("日本", limit=20, facets=True, group=True)
    assert len(swapped) == 2 and during.generation == before.generation not in swapped
    assert not (root / before.generation).exists()
    assert (during.total, during.facets, during.articles) == (before.total, before.facets, before.articles)
    assert [g.best.section_id for g in during.groups] == [g.best.section_id for g in before.groups]
    after = index.search("日本", limit=20, facets=True, group=True)
    assert after.generation == swapped[-1] and after.total < before.total
    assert {g.best.article_id for g in after.groups} <= {"desk/undated-1", "undated-2"}


def test_old_generations_and_their_tables_are_released(tmp_path, undated):
    root = tmp_path / "index"
    reindex([NEWS], root, workers=0)
    index = SearchIndex(root)
    index.search("日本", facets=True, group=True)
    with index.view() as view:
        first = weakref.ref(view.generation)
        tables = weakref.ref(view.table(FacetTable)), weakref.ref(view.table(ArticleMap))
    for corpora in ([NEWS, undated], [NEWS], [NEWS, undated]):
        reindex(corpora, root, workers=0)
        results = index.search("日本", facets=True, group=True)
        with index.view() as view:
            assert view.name == results.generation
            assert len(view.table(FacetTable).codes["month"]) == view.searcher.doc_count_all()
    gc.collect()
    assert first() is None and all(table() is None for table in tables)


def test_article_map_kept_per_segment_groups_as_one_built_afresh(tmp_path, undated):
    """ArticleMap keeps each segment's article ids between generations: after adding, changing
    (its old sections deleted in a kept segment) and removing articles, it still puts the same
    sections together as one read from the whole generation's article ids, and keeps no segment
    the live generation has dropped."""
    root = tmp_path / "index"
    index = SearchIndex(root)
    changed = undated / "undated-2.md"
    steps = [
        [NEWS],
        [NEWS, undated],
        lambda: changed.write_text(
            changed.read_text(encoding="utf-8") + "\n日本代表の合宿は来週から。\n", encoding="utf-8"
        ),
        [NEWS, undated],
        [undated],
    ]
    for step in steps:
        if callable(step):
            step()
            continue
        reindex(step, root, workers=0)
        with index.view() as view:
            reader = view.searcher.reader()
            kept = view.table(ArticleMap).numbers
            fresh = searching._term_codes(reader, "article_id")[1]  # -1 for a deleted document
            live = {leaf.segment().segment_id() for leaf, _ in reader.leaf_readers()}
        assert (fresh >= 0).sum() == reader.doc_count() and (kept >= 0).all()
        kept, fresh = kept[fresh >= 0], fresh[fresh >= 0]
        pairs = set(zip(kept.tolist(), fresh.tolist()))
        assert len(pairs) == len(set(kept.tolist())) == len(set(fresh.tolist())), step
        # Each live segment's article ids are kept with the per-segment tables (stale ones age
        # out of that cache's budget like any other entry).
        assert all(SEGMENT_TABLES.get(("articles", segment)) is not None for segment in live)
    results = index.search("日本代表", group=True, relax=False)  # the strict reading: one article has it
    assert [g.best.article_id for g in results.groups] == ["undated-2"] and results.articles == 1


# --- HTTP load while reindexes swap generations -------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def fetch(url: str) -> tuple[int, bytes]:
    try:
        with OPENER.open(url, timeout=30) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def start_server(root: Path, port: int, log: Path) -> subprocess.Popen:
    """`midashi serve` of this checkout, returned once /healthz answers."""
    env = {**os.environ, "PYTHONPATH": str(PROJECT)}
    with log.open("wb") as output:
        server = subprocess.Popen(
            [
                sys.executable,
                "-c",
                "from search.cli import main; main()",
                "serve",
                "--index",
                str(root),
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
            ],
            stdout=output,
            stderr=subprocess.STDOUT,
            cwd=PROJECT,
            env=env,
        )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and server.poll() is None:
        try:
            if fetch(f"http://127.0.0.1:{port}/healthz")[0] == 200:
                return server
        except OSError:
            time.sleep(0.2)
    server.kill()
    server.wait()
    pytest.fail(f"midashi serve did not start:\n{log.read_text(errors='replace')}")


# (path, statuses it may answer): an article of the extra folder exists in every other generation.
LOAD = [
    ("/?q=日本", {200}),
    ("/?q=半導体&sort=newest&category=tech", {200}),
    ("/api/search?q=日本&sort=newest", {200}),
    ("/api/search?q=輸出&sort=oldest&from=2012-01&to=2012-12", {200}),
    ("/api/search?q=サッカー日本代表&source=編集部", {200}),
    ("/api/search?q=日本 OR 半導体&page=2&per_page=3", {200}),
    ("/api/articles/sports/sports-0001?q=日本代表", {200}),
    ("/articles/tech/tech-0002?q=チップ", {200}),
    ("/api/articles/desk/undated-1", {200, 404}),
    ("/api/suggest?q=日本", {200}),
    ("/?q=半導休メーカー", {200}),
    ('/api/search?q="日本', {200, 400}),
    ("/healthz", {200}),
]


SWAPS = 6
REQUESTS_PER_ROUND = 10


def test_http_load_during_repeated_swaps_has_no_errors(tmp_path, undated):
    """A real `midashi serve`, three clients sending every kind of request, while this process
    reindexes the index six times, alternately with and without undated articles: every answer is
    200 (or the 404 of the undated article where the generation lacks it, a 400 for a bad query),
    the server logs no exception, and the clients saw every generation."""
    root = tmp_path / "index"
    reindex([NEWS], root, workers=0)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    server = start_server(root, port, tmp_path / "server.log")
    unexpected: list[tuple[str, int, bytes]] = []
    answered: list[int] = []
    generations: set[str] = set()
    stop = threading.Event()

    def client(number: int) -> None:
        position = number * 4
        while not stop.is_set():
            path, allowed = LOAD[position % len(LOAD)]
            position += 1
            try:
                status, body = fetch(base + urllib.parse.quote(path, safe="/?&="))
            except Exception as error:  # counted below: a refused or dropped connection is an error too
                status, body = 0, repr(error).encode()
            answered.append(status)
            if status not in allowed:
                unexpected.append((path, status, body[:300]))
            elif path == "/healthz":
                generations.add(json.loads(body)["generation"])

    clients = [threading.Thread(target=client, args=(n,)) for n in range(3)]
    published: list[str] = []
    try:
        for thread in clients:
            thread.start()
        for round_number in range(SWAPS + 1):
            # Requests before, between and after the swaps, however slow the machine is, and on
            # each new generation (as /healthz names it) before the next swap.
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and (
                len(answered) < (round_number + 1) * REQUESTS_PER_ROUND or not set(published[-1:]) <= generations
            ):
                time.sleep(0.05)
            if round_number < SWAPS:
                corpora = [NEWS, undated] if round_number % 2 == 0 else [NEWS]
                published.append(reindex(corpora, root, workers=0).generation)
    finally:
        stop.set()
        for thread in clients:
            thread.join()
        server.terminate()
        server.wait(timeout=10)
    log = (tmp_path / "server.log").read_text(errors="replace")
    assert not unexpected, unexpected[:5]
    assert "Traceback" not in log and "Exception" not in log, log[-2000:]
    assert len(set(published)) == SWAPS and len(answered) >= (SWAPS + 1) * REQUESTS_PER_ROUND
    assert set(published) <= generations  # the clients saw every generation
