"""Counts agree: the facets count articles (an article once per value), the header's article count
is their sum, and a question's counts are of the results worth showing (its best
BEST_MATCH_ARTICLES articles), on the page's API, in `midashi search --format json` and in
`SearchIndex.search` alike (issue 29: 「170 件の記事」 beside Sports Watch 174 sections; MOVIE
ENTER 1,147 for a なでしこ question).

On the web fixture index (tests/web_corpus.py: a digest article of many sections beside the
fixture news articles) and, marked livedoor, on livedoor.
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from web_corpus import build_web_index

from search import searching
from search.cli import cli
from search.indexing import reindex
from search.searching import MAX_LIMIT, Filters, SearchIndex, article_counts
from tests.conftest import FIXTURE_NEWS
from web import create_app

QUERIES = ("日本", "半導体 輸出", "サッカー", "日本の半導体の輸出はどうなったのか")
QUESTION = "日本の半導体の輸出はどうなったのか"


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    return build_web_index(tmp_path_factory.mktemp("counts"))


@pytest.fixture(scope="module")
def index(root) -> SearchIndex:
    return SearchIndex(root)


def listed_articles(index: SearchIndex, query: str) -> dict[str, set[str]]:
    """category → the articles of every section the search lists (its whole list)."""
    found = index.search(query, limit=MAX_LIMIT, facets=True)
    assert len(found.hits) == found.total  # the whole list, to count from
    by_category: dict[str, set[str]] = defaultdict(set)
    for hit in found.hits:
        by_category[hit.category].add(hit.article_id)
    return by_category


@pytest.mark.parametrize("query", QUERIES)
def test_facets_count_each_article_once(index, query):
    grouped = index.search(query, limit=5, facets=True, group=True)
    expected = {category: len(ids) for category, ids in listed_articles(index, query).items() if category}
    assert {facet.value: facet.count for facet in grouped.facets.category} == expected
    assert sum(facet.count for facet in grouped.facets.category) <= grouped.articles
    assert sum(facet.count for facet in grouped.facets.source) == grouped.articles


def test_an_article_of_many_matching_sections_counts_once(index):
    """The premise of the test above: some article has several matching sections."""
    grouped = index.search("日本", limit=50, facets=True, group=True)
    assert grouped.total > grouped.articles
    assert any(group.others for group in grouped.groups)
    assert sum(facet.count for facet in grouped.facets.source) == grouped.articles


def test_a_question_counts_the_articles_worth_showing(index, root, monkeypatch):
    """A question matches any section sharing a word: its counts, pages and facets are of its best
    BEST_MATCH_ARTICLES articles (2 here), the same on the API and in the CLI."""
    everything = index.search(QUESTION, limit=50, facets=True, group=True)
    assert everything.natural_language and everything.articles > 2
    monkeypatch.setattr(searching, "BEST_MATCH_ARTICLES", 2)
    best = index.search(QUESTION, limit=50, facets=True, group=True)
    assert best.articles == 2 == sum(facet.count for facet in best.facets.source)
    assert [group.best.article_id for group in best.groups] == [g.best.article_id for g in everything.groups[:2]]
    assert best.total == sum(1 + len(group.others) for group in best.groups)
    assert index.search(QUESTION, limit=10, offset=2, group=True).groups == []  # no page past them
    newest = index.search(QUESTION, limit=50, facets=True, group=True, sort="newest")
    assert {g.best.article_id for g in newest.groups} == {g.best.article_id for g in best.groups}
    assert newest.facets == best.facets
    api = create_app(root).test_client().get("/api/search", query_string={"q": QUESTION}).get_json()
    printed = CliRunner().invoke(cli, ["search", QUESTION, "--format", "json", "--index", str(root)])
    assert printed.exit_code == 0, printed.output
    for shown in (api, json.loads(printed.output)):
        assert shown["articles"] == 2 and shown["total"] == best.total
        assert sum(facet["count"] for facet in shown["facets"]["source"]) == 2


def test_a_relaxed_search_counts_the_partial_matches_it_lists(tmp_path, monkeypatch):
    """「サッカー 日本代表」 has every word in one fixture news article: the sections with some of them
    follow, and the best BEST_MATCH_ARTICLES articles are listed and counted, what `relaxed` says."""
    reindex([FIXTURE_NEWS], tmp_path / "index", workers=0)
    index = SearchIndex(tmp_path / "index")
    everything = index.search("サッカー 日本代表", limit=50, facets=True, group=True)
    assert everything.relaxed is not None and everything.relaxed.strict_articles == 1
    assert everything.articles > 2
    monkeypatch.setattr(searching, "BEST_MATCH_ARTICLES", 2)
    best = index.search("サッカー 日本代表", limit=50, facets=True, group=True)
    assert best.relaxed is not None and best.articles == 2 == sum(f.count for f in best.facets.source)
    assert best.relaxed.partial == best.total - best.relaxed.strict_total > 0
    assert best.groups[0].best.article_id == everything.groups[0].best.article_id  # the strict match first


def test_article_counts_takes_pairs_for_many_values_per_section():
    """The counting function others reuse: (docnum, code) pairs, several codes for one section,
    several sections for one article."""
    articles = np.array([0, 0, 1, 2, 2])  # docnum → article number
    docnums = np.array([0, 0, 1, 1, 2, 3, 4, 4])
    codes = np.array([0, 1, 0, 1, 1, 2, -1, 0])
    assert article_counts(docnums, codes, articles, 4).tolist() == [2, 2, 1, 0]
    assert article_counts(docnums[:0], codes[:0], articles, 3).tolist() == [0, 0, 0]


@pytest.mark.livedoor
def test_livedoor_counts_agree(livedoor):
    index = SearchIndex(livedoor[0])
    strict = index.search("サッカー 日本代表", facets=True, group=True)
    assert strict.total > strict.articles > 100
    assert sum(facet.count for facet in strict.facets.category) == strict.articles
    assert sum(facet.count for facet in strict.facets.year) == strict.articles
    question = index.search("なでしこジャパンの監督は誰ですか", facets=True, group=True)
    counts = {facet.value: facet.count for facet in question.facets.category}
    assert question.articles == searching.BEST_MATCH_ARTICLES == sum(counts.values())
    assert counts["sports-watch"] > sum(counts.values()) / 2 > counts.get("movie-enter", 0)


def test_a_chip_s_click_lists_the_articles_it_counted(index):
    """Every chip of 「半導体 輸出」 (15 articles have both words) counts strict matches, so its
    click stays strict: it never relaxes into articles with one of the words (on livedoor a
    category chip of 1 article led to 47, a month chip of 1 to 11)."""
    query = "半導体 輸出"
    results = index.search(query, group=True, facets=True)
    assert results.articles == 15 and not results.relaxed
    chips = [Filters.parse(person=chip.value) for chip in results.facets.people]
    chips += [Filters.parse(place=chip.value) for chip in results.facets.places]
    chips += [Filters.parse(category=chip.value) for chip in results.facets.category]
    chips += [Filters.parse(date_from=month.month, date_to=month.month) for month in results.timeline if month.articles]
    counts = [chip.count for chip in (*results.facets.people, *results.facets.places, *results.facets.category)]
    counts += [month.articles for month in results.timeline if month.articles]
    assert len(chips) >= 10 and min(counts) == 1
    for chip, count in zip(chips, counts):
        clicked = index.search(query, group=True, filters=chip)
        assert (clicked.articles, clicked.relaxed) == (count, None), chip


def test_a_filter_on_words_too_few_articles_hold_still_relaxes(index):
    """Relaxing is about the words: when they find too few articles anywhere, a filter does not
    stop the articles with some of them from following."""
    unfiltered = index.search("日本 サッカー", group=True, facets=True)
    assert unfiltered.relaxed is not None and unfiltered.facets.category
    category = unfiltered.facets.category[0]
    filtered = index.search("日本 サッカー", group=True, filters=Filters.parse(category=category.value))
    assert filtered.relaxed is not None and filtered.articles == category.count
