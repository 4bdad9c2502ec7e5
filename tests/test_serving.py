"""Serving hardening: the security headers of every response, and one memory budget for every
cache of a threaded server (the accounting itself, not timings or RSS: those are in
bench/serve_memory.py)."""

from __future__ import annotations

import itertools
import threading
from html.parser import HTMLParser
from pathlib import Path

import pytest
from web_corpus import build_web_index

from search import memory
from search.analysis import sudachi as analysis
from search.browse import Browser
from search.codec import postings
from search.indexing import reindex
from search.ranking import scoring
from search.searching import Filters, SearchIndex
from web import SECURITY_HEADERS, create_app

NEWS = Path(__file__).resolve().parent / "fixtures" / "news"
THREADS = 8


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    app = create_app(build_web_index(tmp_path_factory.mktemp("serving-web")))
    app.testing = True
    return app.test_client()


# --- headers ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url, status",
    [
        ("/", 200),
        ("/?q=半導体&sort=newest&category=tech", 200),
        ("/?q=(", 400),
        ("/articles/evil/hostile", 200),
        ("/articles/no/such/article", 404),
        ("/api/search?q=半導体", 200),
        ("/api/search?q=半導体&page=0", 400),
        ("/api/articles/evil/hostile", 200),
        ("/api/suggest?q=半", 200),
        ("/api/openapi.json", 200),
        ("/healthz", 200),
        ("/api/nothing-here", 404),
        ("/static/app.js", 200),
        ("/static/style.css", 200),
        ("/static/../search/memory.py", 404),
    ],
)
def test_every_response_carries_the_security_headers(client, url, status):
    response = client.get(url)
    assert response.status_code == status
    for name, value in SECURITY_HEADERS.items():
        assert response.headers.get(name) == value, name
    policy = response.headers["Content-Security-Policy"]
    for directive in (
        "default-src 'self'",
        "frame-ancestors 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "object-src 'none'",
    ):
        assert directive in policy
    assert "unsafe-inline" not in policy and "unsafe-eval" not in policy


def test_a_server_error_and_a_missing_index_carry_them_too(tmp_path):
    app = create_app(tmp_path / "no-index")

    @app.get("/boom")
    def boom():
        raise RuntimeError("a bug, not the user's fault")

    client = app.test_client()
    for url, status in (("/boom", 500), ("/?q=x", 503), ("/api/search?q=x", 503)):
        response = client.get(url)
        assert response.status_code == status
        assert "Traceback" not in response.get_data(as_text=True)
        assert response.headers["Content-Security-Policy"] == SECURITY_HEADERS["Content-Security-Policy"]
        assert response.headers["X-Frame-Options"] == "DENY"


class _InlineFinder(HTMLParser):
    """The tags and attributes of a page that a policy without 'unsafe-inline' would block."""

    def __init__(self):
        super().__init__()
        self.blocked: list[str] = []
        self.scripts: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag == "script":
            self.scripts.append(found.get("src") or "")
            if not found.get("src"):
                self.blocked.append("inline <script>")
        if tag == "style":
            self.blocked.append("<style>")
        for name, value in attrs:
            if name == "style" or name.startswith("on"):
                self.blocked.append(f"<{tag} {name}=>")
            if (value or "").strip().lower().startswith("javascript:"):
                self.blocked.append(f"<{tag} {name}=javascript:>")


@pytest.mark.parametrize(
    "url", ["/", "/?q=半導体", "/?q=半導体&page=2", "/?q=ない語句ないない", "/articles/evil/hostile", "/missing"]
)
def test_pages_hold_nothing_inline_that_the_policy_would_block(client, url):
    # The hostile article's markup (<script>, onerror=, javascript:) is text on its page, not tags.
    finder = _InlineFinder()
    finder.feed(client.get(url).get_data(as_text=True))
    assert finder.blocked == []
    assert finder.scripts == ["/static/app.js"]


# --- one memory budget -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def news_index(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("serving-news")
    reindex([NEWS], root, workers=0)
    return root


@pytest.fixture
def small_budget():
    """A budget so small that the fixture corpus's searches overflow every cache."""
    before = memory.cache_budget()
    memory.set_cache_budget(96 << 10)
    yield memory.cache_budget()
    memory.set_cache_budget(before)


def _many_queries() -> list[str]:
    """Every title's words alone, in pairs and as phrases: a few hundred distinct queries (a
    livedoor-layout file: URL, date, title, body)."""
    titles = [path.read_text(encoding="utf-8").splitlines()[2] for path in sorted(NEWS.rglob("*.txt"))]
    queries = []
    for title in titles:
        words = [title[term.start : term.end] for term in analysis.terms(title)]
        queries += words + [f"{one} {two}" for one, two in itertools.pairwise(words)]
        queries += [f'"{one}{two}"' for one, two in itertools.pairwise(words)]
    return list(dict.fromkeys(queries))


@pytest.mark.slow
def test_caches_stay_within_one_budget_across_threads(news_index, small_budget):
    index = SearchIndex(news_index)
    browser = Browser(index)
    queries = _many_queries()
    assert len(queries) > 100
    highest: dict[str, int] = {}
    most_caches = [0]  # analysis caches alive at once
    failures: list[BaseException] = []
    lock = threading.Lock()

    def serve(number: int) -> None:
        try:
            for position, query in enumerate(queries[number::2] + queries[1 - number % 2 :: 2]):
                sort = ("relevance", "newest", "oldest")[position % 3]
                filters = Filters(category=("economy", "sports", "tech", "")[position % 4])
                results = index.search(
                    query, 10, 10 * (position % 2), filters=filters, sort=sort, facets=True, group=True
                )
                for group in results.groups[:2]:
                    browser.article(group.best.article_id, query)
                browser.suggest(query[:2])
                used = memory.cache_bytes()
                caches = len(analysis._every_cache())
                with lock:
                    most_caches[0] = max(most_caches[0], caches)
                    for name, size in used.items():
                        highest[name] = max(highest.get(name, 0), size)
                    highest["all"] = max(highest.get("all", 0), sum(used.values()))
        except BaseException as error:  # reported by the main thread
            failures.append(error)

    threads = [threading.Thread(target=serve, args=(number,)) for number in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not failures, failures[0]

    # Every cache was used, and none went over its share, whatever the threads did; past its
    # share, each thread's analysis cache keeps only its latest text (no longer than an article).
    latest_texts = THREADS * max(len(path.read_text(encoding="utf-8")) for path in NEWS.rglob("*.txt"))
    slack = {"analyses": latest_texts * analysis.ANALYSIS_BYTES_PER_CHAR}
    assert set(highest) == {*memory.SHARES, "all"}
    for name in memory.SHARES:
        assert highest[name] > 0, name
        assert highest[name] <= memory.cache_limit(name) + slack.get(name, 0), (name, highest[name])
    assert highest["all"] <= small_budget + slack["analyses"]
    assert most_caches[0] >= THREADS  # one per thread, counted together


def test_shared_caches_serve_every_thread(news_index):
    # A term scored by one thread's searcher is not scored again by another of the same generation
    # for its segment tables and term infos; each searcher's scores are its own (they hold its idfs).
    memory.forget()
    index = SearchIndex(news_index)
    first = index.search("試合", 10)
    infos_after_one = len(postings.TERM_INFOS)
    tables_after_one = scoring.SEGMENT_TABLES.used_bytes
    other = threading.Thread(target=lambda: index.search("試合", 10))
    other.start()
    other.join()
    assert first.total > 0
    assert len(postings.TERM_INFOS) == infos_after_one  # the other thread found them all kept
    assert scoring.SEGMENT_TABLES.used_bytes == tables_after_one


def test_a_smaller_budget_drops_what_is_over_it(news_index):
    before = memory.cache_budget()
    try:
        index = SearchIndex(news_index)
        for query in ("試合", "選手", "経済", "技術", "発表"):
            index.search(query, 10)
        assert postings.DECODED_LISTS.used_bytes > 0 and len(scoring.IDFS) > 0
        memory.set_cache_budget(0)
        assert all(size == 0 for name, size in memory.cache_bytes().items() if name != "analyses")
        assert index.search("試合", 10).total > 0  # nothing kept, the same answers
    finally:
        memory.set_cache_budget(before)


def test_serve_gives_the_caches_what_the_rest_leaves_of_its_budget(news_index):
    from search.analysis.sudachi import dictionary_bytes
    from web.server import MIN_CACHE_SHARE, cache_budget

    total = 2048 << 20
    caches, others = cache_budget(total, news_index)
    assert others["Sudachi's dictionary"] == dictionary_bytes() > 50 << 20  # it is there, and big
    assert 0 < others["the index"] < 1 << 20  # eight short articles
    assert caches + sum(others.values()) == total
    small, _ = cache_budget(64 << 20, news_index)  # less than the dictionary alone
    assert small == int((64 << 20) * MIN_CACHE_SHARE)


def test_one_forget_empties_the_caches_of_the_kinds_asked(news_index):
    index = SearchIndex(news_index)
    index.search("試合 日本", 10, group=True, facets=True)
    index.search("日本の首都はどこですか", 10)
    kinds = {name: registered.kind for name, registered in memory._caches.items()}
    assert set(kinds) == set(memory.SHARES), "every cache of the budget is registered, and only those"
    used = memory.cache_bytes()
    assert all(used[name] > 0 for name in kinds), used
    memory.forget([memory.QUERY])
    after_queries = memory.cache_bytes()
    for name, kind in kinds.items():
        assert (after_queries[name] == 0) == (kind == memory.QUERY), (name, kind, after_queries[name])
    memory.forget()
    assert not any(memory.cache_bytes().values())
    # Forgotten is not broken: the same searches find the same again.
    assert [hit.section_id for hit in index.search("試合 日本", 10).hits]


# --- warm start -----------------------------------------------------------------------------


def test_serve_builds_the_tables_before_the_first_request(news_index, capsys):
    """The first search after start must not build the generation's tables (1.6 s on livedoor):
    `midashi serve` builds them, with the ranker's model, before it takes requests."""
    from search.browse import Vocabulary
    from search.searching import SEARCH_TABLES
    from web import create_app
    from web.server import warm_up

    app = create_app(news_index)
    index = app.extensions["midashi"].index
    assert index.generation()._tables == {}  # nothing is built when the app is made
    warm_up(app)
    assert set(index.generation()._tables) == {*SEARCH_TABLES, Vocabulary}
    assert index.reranker is not None and index.reranker._booster is not None
    assert capsys.readouterr().out.startswith("Midashi: ready in ")
    tables = dict(index.generation()._tables)
    response = app.test_client().get("/api/search", query_string={"q": "サッカー 日本代表"})
    assert response.status_code == 200 and response.get_json()["hits"]
    assert all(index.generation()._tables[kind] is table for kind, table in tables.items())  # none built again


def test_a_loopback_server_answers_only_to_loopback_names(news_index, monkeypatch):
    """DNS rebinding: a page at evil.example, its name pointed at 127.0.0.1, would otherwise read
    the index through the reader's browser (the adversary's feed showed its links with that Host)."""
    from web import server

    served = {}
    monkeypatch.setattr(server, "waitress_serve", lambda app, **options: served.update(app=app, **options))
    monkeypatch.setattr(server, "set_cache_budget", lambda budget: None)  # (this process's caches stay as they are)
    for bound, answered in (
        ("127.0.0.1", {"127.0.0.1:8000": 200, "localhost:8000": 200, "[::1]:8000": 200, "127.0.0.2": 200}),
        ("127.0.0.1", {"evil.example": 400, "evil.example:8000": 400, "127.0.0.1.nip.io": 400, "localhost..": 400}),
        # Told to listen beyond this machine: its names are yours (one Werkzeug cannot read: a 400).
        ("0.0.0.0", {"news.example:8000": 200, "localhost..": 400}),
    ):
        server.serve(str(news_index), host=bound, port=8000)
        assert served["host"] == bound
        client = served["app"].test_client()
        for host, status in answered.items():
            for path in ("/api/search?q=日本", "/?q=日本"):
                response = client.get(path, headers={"Host": host})
                assert response.status_code == status, (host, path)  # (a page that failed was a 500)
                if status == 400 and bound == "127.0.0.1":
                    assert response.get_data(as_text=True).startswith("400 Bad Request: this server answers")


def test_a_swapped_in_generation_is_warmed_before_it_serves(tmp_path, monkeypatch):
    """After a reindex, the server builds the new generation's tables in a thread of its own while
    searches keep the old generation (not held up by the building), and switches when they are
    built: the first search on the new generation builds nothing (issue 29: 0.5-1.6 s on livedoor
    after each swap)."""
    from search.browse import Vocabulary
    from search.searching import SEARCH_TABLES, FacetTable
    from web.server import warm_up

    root = tmp_path / "index"
    first = reindex([NEWS], root, workers=0).generation
    app = create_app(root)
    warm_up(app)
    index = app.extensions["midashi"].index
    client = app.test_client()
    built_in: list[str] = []  # the thread each FacetTable was built in, from now on
    release = threading.Event()
    build = FacetTable.build.__func__  # type: ignore[attr-defined]

    def held_build(cls, reader):
        built_in.append(threading.current_thread().name)
        release.wait(120)  # a bound only: the test releases it below
        return build(cls, reader)

    monkeypatch.setattr(FacetTable, "build", classmethod(held_build))
    extra = tmp_path / "extra"
    extra.mkdir()
    (extra / "swap.txt").write_text("交代\n交代後の記事。日本の話題。\n", encoding="utf-8")
    second = reindex([NEWS, extra], root, workers=0).generation
    # While the new generation's FacetTable is held, searches answer from the old generation.
    assert client.get("/healthz").get_json()["generation"] == first
    assert client.get("/api/search", query_string={"q": "日本"}).status_code == 200
    assert client.get("/healthz").get_json()["generation"] == first
    release.set()
    index.wait_until_ready()
    live = index.generation()
    assert live.name == second and set(live._tables) == {*SEARCH_TABLES, Vocabulary}
    assert built_in == [f"midashi-warm-{second}"]  # built once, in the warming thread
    tables = dict(live._tables)
    response = client.get("/api/search", query_string={"q": "交代後"})
    assert response.status_code == 200 and response.get_json()["hits"]
    assert client.get("/healthz").get_json()["generation"] == second
    assert built_in == [f"midashi-warm-{second}"]
    assert all(live._tables[kind] is table for kind, table in tables.items())  # none built again
