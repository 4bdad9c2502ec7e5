"""Never a needless zero (issue 28): a query of words that finds (almost) nothing with every word
is followed by the articles that match some of them, quotes inside a pasted headline are not
required phrases, a compound's parts find their synonyms, a misspelling gets a did-you-mean, and
a word of Latin letters finds the model names it starts.

On the fixture corpus (tests/fixtures/news) and three articles of our own written here, so every
test runs without ../shared.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from search.browse import Browser
from search.cli import cli
from search.indexing import reindex
from search.searching import RELAX_BELOW_ARTICLES, SearchIndex
from tests.conftest import fixture_news_with
from web import create_app

# Our own writing, beside the fixture's ten articles (livedoor layout: URL, date, title, body).
EXTRA_ARTICLES = {
    "tech/tech-0101.txt": (
        "http://example.com/tech/0101\n2012-07-01T09:00:00+0900\n"
        "iPhone向けの待ち時間アプリ、ディズニーランドで人気\n"
        "iPhoneで遊園地の待ち時間を調べる人が増えている。ディズニーランドの混雑を予想するアプリは、"
        "夏休みを前に利用者が倍増した。スマートフォンの画面で行列の長さが分かるという。\n"
    ),
    "tech/tech-0102.txt": (
        "http://example.com/tech/0102\n2012-07-02T09:00:00+0900\n"
        "スマートフォンの電池を長持ちさせるこつ\n"
        "画面の明るさを抑え、使わない通信を切ると、スマートフォンの電池は長持ちする。"
        "専門家は充電の回数を減らす設定も勧めている。\n"
    ),
    "economy/economy-0101.txt": (
        "http://example.com/economy/0101\n2012-07-03T09:00:00+0900\n"
        "新型チップH200の出荷始まる\n"
        "半導体メーカーは新型チップH200の出荷を始めた。データセンター向けの需要が強いという。\n"
    ),
}


@pytest.fixture(scope="module")
def news_root(tmp_path_factory) -> Path:
    return fixture_news_with(tmp_path_factory.mktemp("no-zero"), EXTRA_ARTICLES)


@pytest.fixture(scope="module")
def news(news_root) -> SearchIndex:
    return SearchIndex(news_root)


def articles(results) -> list[str]:
    return [hit.article_id for hit in results.hits]


# --- strict first, then best match ----------------------------------------------------------


def test_words_no_article_holds_together_find_those_with_some_and_name_the_missing_one(news):
    strict = news.search("香川真司 速報 ザッケローニ", relax=False)
    assert strict.total == 0  # the strict reading alone: a zero
    results = news.search("香川真司 速報 ザッケローニ")
    assert set(articles(results)) == {"sports/sports-0001", "sports/sports-0002"}
    assert results.relaxed.missing == ["速報"] and results.relaxed.absent
    assert results.relaxed.strict_total == 0 and results.relaxed.partial == results.total


def test_a_word_only_apart_from_the_others_is_named_as_such(news):
    # ザッケローニ and マンチェスター are both in the index, never in one article.
    results = news.search("香川真司 ザッケローニ マンチェスター")
    assert results.total and results.relaxed.strict_total == 0
    assert not results.relaxed.absent
    assert set(results.relaxed.missing) == {"ザッケローニ", "マンチェスター"}


def test_strict_matches_rank_above_those_with_only_some_words(news):
    results = news.search("香川真司 ドルトムント", limit=10)
    assert articles(results)[0] == "sports/sports-0002"  # the only article with both
    assert "sports/sports-0001" in articles(results)[1:]  # 香川真司 alone, after it
    assert results.relaxed.strict_articles == 1 and results.relaxed.strict_total == 1
    scores = [hit.score for hit in results.hits]
    assert scores == sorted(scores, reverse=True) and scores[0] > scores[1]
    grouped = news.search("香川真司 ドルトムント", group=True)
    assert grouped.groups[0].best.article_id == "sports/sports-0002"


def test_enough_articles_with_every_word_are_not_relaxed(news):
    results = news.search("スマートフォン")
    assert len(set(articles(results))) >= RELAX_BELOW_ARTICLES
    assert results.relaxed is None


def test_operators_and_a_lone_quote_stay_strict(news):
    assert news.search("香川真司 -ドルトムント").relaxed is None
    assert news.search('"為替介入も辞さず"').total == 0  # only a quote: an exact phrase still
    assert news.search("title:香川真司 速報").relaxed is None


def test_unspaced_words_stay_a_phrase_in_the_strict_reading(tmp_path):
    (tmp_path / "scattered.txt").write_text(
        "# 規制と輸出\n\n規制の話を最初にする。\n\n関係のない文が続く。そして最後に輸出の話をする。\n",
        encoding="utf-8",
    )
    reindex([tmp_path], tmp_path / "index", workers=0)
    scattered = SearchIndex(tmp_path / "index")
    assert scattered.search("輸出規制", relax=False).total == 0
    results = scattered.search("輸出規制")  # found, but told it is only some of the words
    assert results.total == 1 and results.relaxed.strict_total == 0 and results.relaxed.missing == ["輸出規制"]


# --- quotes in a pasted headline --------------------------------------------------------------


def test_quotes_inside_a_headline_are_not_required_phrases(news):
    headline = "“為替介入も辞さず”財務大臣が円高をけん制、輸出企業の業績を圧迫"
    results = news.search(headline)
    assert results.natural_language
    assert articles(results)[0] == "economy/economy-0001"
    # A spaced quote beside keywords is still a phrase asked for.
    assert news.search('"為替介入も辞さず" 円高', relax=False).total == 0


# --- synonyms of a compound's parts -----------------------------------------------------------


def test_a_compound_finds_its_parts_synonyms_as_a_phrase(news):
    results = news.search("東京オリンピック 招致", relax=False)
    assert articles(results) == ["sports/sports-0003"]  # the text says 東京五輪招致
    assert "<mark>" in results.hits[0].snippet.html()
    assert articles(news.search("東京オリンピック", relax=False)) == ["sports/sports-0003"]


# --- did you mean -------------------------------------------------------------------------------


def test_a_misspelling_gets_the_index_s_own_word(news):
    browser = Browser(news)
    assert news.search("iphnoe").total == 0
    spelled = [a.query for a in browser.alternatives("iphnoe") if a.reason == "spelling"]
    assert spelled[0] == "iphone"  # one swap away, before iphone5 (two edits)
    spelled = [a.query for a in browser.alternatives("デズニーランド") if a.reason == "spelling"]
    assert spelled[0] == "ディズニーランド"
    assert news.search("H20").total == 0
    assert not [a for a in browser.alternatives("H20") if a.reason == "spelling"]  # not 20, not H200


# --- model names ------------------------------------------------------------------------------


def test_a_latin_word_finds_the_model_names_it_starts_below_the_word_itself(news):
    results = news.search("iPhone")
    found = articles(results)
    assert found[0] in ("tech/tech-0101", "tech/tech-0004")  # say iPhone itself, in title and lead
    assert found.index("tech/tech-0101") < found.index("tech/tech-0001")
    assert "tech/tech-0001" in articles(results)  # only iPhone5 and iPhone4S
    assert results.relaxed is None or results.relaxed.partial == 0
    marked = next(hit for hit in results.hits if hit.article_id == "tech/tech-0001")
    assert "<mark>iPhone5</mark>" in marked.snippet.html()


def test_model_numbers_stay_exact(news):
    assert news.search("H20").total == 0  # H200 is not H20, strict or relaxed
    assert articles(news.search("H200")) == ["economy/economy-0101"]
    assert "tech/tech-0001" not in articles(news.search("iPhone4S"))[1:]  # no iphone5 for iphone4s
    assert {h.article_id for h in news.search("iPhone4S").hits} == {"tech/tech-0001"}


# --- the three front ends ---------------------------------------------------------------------


def test_the_page_says_which_word_is_missing_and_links_the_spelling(news_root):
    client = create_app(news_root).test_client()
    html = client.get("/", query_string={"q": "香川真司 速報 ザッケローニ"}).get_data(as_text=True)
    assert "「速報」を含む記事はありません — 一部の語に一致する記事" in html
    assert "香川真司" in html and "Traceback" not in html
    html = client.get("/", query_string={"q": "iphnoe"}).get_data(as_text=True)
    assert 'href="/?q=iphone"' in html and "もしかして" in html


def test_the_api_has_relaxed_and_alternatives_fields(news_root):
    client = create_app(news_root).test_client()
    body = client.get("/api/search", query_string={"q": "香川真司 速報 ザッケローニ"}).get_json()
    assert body["relaxed"]["missing"] == ["速報"] and body["relaxed"]["absent"] is True
    assert body["hits"]
    body = client.get("/api/search", query_string={"q": "iphnoe"}).get_json()
    assert body["total"] == 0 and body["relaxed"] is not None
    # iphone: the sections with iPhone itself or a model name it starts (as the CLI test counts)
    assert {"query": "iphone", "total": 5, "reason": "spelling"} in body["alternatives"]
    body = client.get("/api/search", query_string={"q": "スマートフォン"}).get_json()
    assert body["relaxed"] is None and body["alternatives"] == []


def test_the_cli_says_it_in_one_line(news_root):
    result = CliRunner().invoke(cli, ["search", "香川真司 速報 ザッケローニ", "--index", str(news_root)])
    assert result.exit_code == 0
    assert "No article has 「速報」; 2 sections with some of the words follow." in result.output.splitlines()
    result = CliRunner().invoke(cli, ["search", "iphnoe", "--index", str(news_root)])
    assert result.exit_code == 0
    assert "Did you mean 「iphone」 (5 sections) or 「iphone5」 (1 section)?" in result.output.splitlines()


def test_a_synonym_group_s_words_come_from_the_index_s_own_list(news, tmp_path):
    # The words of オリンピック's group that the corpus uses, from the `synonym_words` field the
    # analysis wrote (no section is read again); the query's own word left out.
    from whoosh.fields import TEXT, Schema
    from whoosh.filedb.filestore import RamStorage

    from search.analysis.sudachi import terms
    from search.searching import IndexLexicon, LexiconMemory

    groups = sorted(next(iter(terms("オリンピック"))).synonym_groups)
    assert groups  # Sudachi links オリンピック and 五輪
    with news.view() as view:
        lexicon = IndexLexicon(view.searcher, LexiconMemory())
        words = [word for group in groups for word in lexicon.variants(group, "オリンピック")]
        assert "五輪" in words and "オリンピック" not in words
        assert "オリンピック" in [word for group in groups for word in lexicon.variants(group, "五輪")]
    # An index written before the field (format 4) offers no variants, and does not fail.
    old = RamStorage().create_index(Schema(body=TEXT(), synonyms=TEXT()))
    with old.searcher() as searcher:
        assert IndexLexicon(searcher, LexiconMemory()).variants(groups[0], "オリンピック") == []
