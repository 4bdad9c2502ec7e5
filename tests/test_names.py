"""People and places facets, their filters, person suggestions and reading search (issue 29).

On the fixture corpus (tests/fixtures/news: 香川真司 at ドルトムント in sports-0002, 澤穂希 and 東京五輪 in
sports-0003) and two articles of our own written here: one whose two sections both name 香川真司
(so sections and articles counts differ), one that spells 東京 in hiragana (とうきょう). The tests
marked `livedoor` read ../shared's livedoor corpus.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from whoosh import query as wq

from search import indexing
from search.analysis.sudachi import NAME_FIELDS, TEXT_SEPARATOR, NameTokenizer
from search.browse import Browser
from search.cli import cli
from search.codec.schema import build_schema, section_documents
from search.searching import Filters, SearchIndex
from tests.conftest import FIXTURE_NEWS, fixture_news_with
from web import create_app

EXTRA_ARTICLES = {
    "sports/sports-0901.txt": (
        "http://example.com/sports/0901\n2012-07-01T10:00:00+0900\n香川真司、新天地で初めての練習\n"
        "マンチェスター・ユナイテッドに移籍した香川真司が、初めてチームの練習に参加した。\n\n"
        "■練習を終えて\n香川真司は練習の後、「早くチームになじみたい」と話した。\n"
    ),
    "sports/sports-0902.txt": (
        "http://example.com/sports/0902\n2012-07-02T10:00:00+0900\nとうきょうの下町で子ども向けサッカー教室\n"
        "とうきょうの下町の小学校で、子ども向けのサッカー教室が開かれた。\n"
    ),
}
KAGAWA_MOVE = "sports/sports-0901"


@pytest.fixture(scope="module")
def news_root(tmp_path_factory) -> Path:
    return fixture_news_with(tmp_path_factory.mktemp("names"), EXTRA_ARTICLES)


@pytest.fixture(scope="module")
def news(news_root) -> SearchIndex:
    return SearchIndex(news_root)


def names(facets: list) -> dict[str, int]:
    return {facet.value: facet.count for facet in facets}


def section_text(searcher, article_id: str, section_id: str) -> str:
    """A section's title, heading and body, as stored."""
    stored = next(fields for fields in searcher.documents(article_id=article_id) if fields["section_id"] == section_id)
    return stored["title"] + stored["heading"] + stored["body"]


def test_a_surname_and_given_name_written_together_are_one_person():
    text = "ドルトムントの香川真司と本田圭佑が、香川県丸亀市で野田首相に会った。真司は笑顔だった。"
    people = NameTokenizer("people").term_positions(text)
    places = NameTokenizer("places").term_positions(text)
    assert list(people) == ["香川真司", "本田圭佑", "野田", "真司"]  # a lone surname or given name as written
    assert list(places) == ["ドルトムント", "香川県丸亀市"]
    assert "香川" not in people and "香川" not in places


def test_a_lone_surname_of_a_full_name_in_the_section_is_no_place():
    """Sudachi tags a lone 香川 as the prefecture; after 香川真司 in the title it is the player."""
    value = TEXT_SEPARATOR.join(["香川真司、マンU移籍", "", "香川はドルトムントで活躍した。香川県の出身。"])
    assert list(NameTokenizer("people").term_positions(value)) == ["香川真司"]
    assert list(NameTokenizer("places").term_positions(value)) == ["ドルトムント", "香川県"]
    assert "香川" in NameTokenizer("places").term_positions("香川はうどんの県だ。")


def test_people_are_counted_in_articles_not_sections(news):
    results = news.search("香川真司", facets=True, group=True)
    assert results.total > results.articles  # sports-0901 matches in both of its sections
    assert KAGAWA_MOVE in {group.best.article_id for group in results.groups}
    assert names(results.facets.people)["香川真司"] == results.articles
    assert "ドルトムント" in names(results.facets.places)


def test_names_come_from_the_matching_sections_only(news):
    """澤穂希 is in sports-0003, which 東京五輪 matches and 移籍 does not."""
    assert "澤穂希" in names(news.search("東京五輪", facets=True).facets.people)
    assert "澤穂希" not in names(news.search("移籍", facets=True).facets.people)


def test_a_person_or_place_filter_keeps_the_sections_that_name_them(news):
    everything = news.search("移籍", group=True, facets=True)
    person = news.search("移籍", group=True, facets=True, filters=Filters(person="香川真司"))
    assert person.articles == names(everything.facets.people)["香川真司"]
    for group in person.groups:
        for hit in (group.best, *group.others):
            with news.searcher() as (_, searcher):
                stored = section_text(searcher, hit.article_id, hit.section_id)
            assert "香川真司" in stored
    place = news.search("移籍", group=True, filters=Filters(person="香川真司", place="ドルトムント"))
    assert [group.best.article_id for group in place.groups] == ["sports/sports-0002"]
    assert news.search("移籍", filters=Filters(person="誰でもない人")).total == 0


def test_the_api_page_and_cli_carry_people_and_filter_by_them(news_root):
    client = create_app(news_root).test_client()
    api = client.get("/api/search", query_string={"q": "移籍", "person": "香川真司"}).get_json()
    assert {hit["article_id"] for hit in api["hits"]} == {"sports/sports-0002", KAGAWA_MOVE}
    assert {"value": "香川真司", "count": 2} in api["facets"]["people"]
    page = client.get("/", query_string={"q": "移籍"}).get_data(as_text=True)
    assert 'aria-label="人物で絞り込む"' in page and "person=%E9%A6%99%E5%B7%9D%E7%9C%9F%E5%8F%B8" in page
    filtered = client.get("/", query_string={"q": "移籍", "place": "ドルトムント"}).get_data(as_text=True)
    assert "地名「ドルトムント」の絞り込みを解除" in filtered
    printed = CliRunner().invoke(
        cli, ["search", "移籍", "--place", "ドルトムント", "--format", "json", "--index", str(news_root)]
    )
    assert printed.exit_code == 0, printed.output
    found = json.loads(printed.output)
    assert [hit["article_id"] for hit in found["hits"]] == ["sports/sports-0002"]
    assert {"value": "ドルトムント", "count": 1} in found["facets"]["places"]


CAPTAINS = {
    "sports/sports-0911.txt": (
        "http://example.com/sports/0911\n2012-07-03T10:00:00+0900\n長谷部誠が主将として初の会見\n"
        "日本代表の主将を務める長谷部誠が会見を開いた。長谷部は「責任を感じる」と話した。\n"
    ),
    "sports/sports-0912.txt": (
        "http://example.com/sports/0912\n2012-07-04T10:00:00+0900\n長谷部、ヴォルフスブルクで先発\n"
        "ヴォルフスブルクの長谷部が先発し、主将として試合に出た。\n"
    ),
    "sports/sports-0913.txt": (  # Sudachi tags §2's lone 香川 地名: it is §1's 香川真司
        "http://example.com/sports/0913\n2012-07-05T10:00:00+0900\n新主将が先発、勝利に貢献\n"
        "主将を任された香川真司が試合に臨んだ。\n\n■試合を終えて\n香川は先発で出場した。\n"
    ),
    "sports/sports-0914.txt": (
        "http://example.com/sports/0914\n2012-07-06T10:00:00+0900\n香川で少年サッカー大会\n"
        "香川県の高松市で、主将を務める小学生が集まる大会が開かれた。\n"
    ),
}


def test_a_surname_beside_its_full_name_counts_as_that_person(tmp_path):
    # On livedoor, 長谷部 13 sat beside 長谷部誠 10 for サッカー 日本代表 (and 澤 beside 澤穂希).
    index = SearchIndex(fixture_news_with(tmp_path, CAPTAINS))
    people = names(index.search("主将", facets=True).facets.people)
    assert people["長谷部誠"] == 1 and people["長谷部"] == 1  # 0912's 長谷部 alone is still shown

    def only(person: str) -> list[str]:
        found = index.search("主将", group=True, filters=Filters(person=person))
        return [group.best.article_id for group in found.groups]

    assert only("長谷部") == ["sports/sports-0912"]  # the filter agrees with the count
    assert only("長谷部誠") == ["sports/sports-0911"]

    # An update that drops the full name: the old sections are deleted, not forgotten, in the
    # index; the new generation's table must not let them speak for the article.
    updated = (
        CAPTAINS["sports/sports-0911.txt"]
        .replace("長谷部誠が会見", "長谷部が会見")
        .replace("長谷部誠が主将", "長谷部が主将")
    )
    (tmp_path / "corpus" / "sports" / "sports-0911.txt").write_text(updated, encoding="utf-8")
    assert indexing.reindex([tmp_path / "corpus"], tmp_path / "index", workers=0).updated.articles == 1
    people = names(index.search("主将", facets=True).facets.people)
    assert people["長谷部"] == 2 and "長谷部誠" not in people
    assert sorted(only("長谷部")) == ["sports/sports-0911", "sports/sports-0912"]


def test_a_place_that_starts_a_person_s_name_in_the_article_is_that_person(tmp_path):
    # On livedoor, 香川 (地名) 30 sat beside 香川真司 37 in the places of 「香川」: Sudachi reads a
    # lone 香川 in 香川は先発で出場した as the prefecture. The index drops it when its section names
    # 香川真司 (NameTokenizer); one section naming 香川真司 and another 香川 is the article's to see.
    index = SearchIndex(fixture_news_with(tmp_path, CAPTAINS))
    found = index.search("主将", facets=True)
    assert names(found.facets.people)["香川真司"] == 1
    assert names(found.facets.places)["香川"] == 1  # 0914's 香川 (in its title) is the prefecture
    place = index.search("主将", group=True, filters=Filters(place="香川"))
    assert [group.best.article_id for group in place.groups] == ["sports/sports-0914"]


def test_suggest_completes_a_surname_to_the_full_name(news):
    suggestions = Browser(news).suggest("香川")
    assert suggestions.queries[0] == "香川真司"
    assert "香川" in suggestions.queries  # the word itself is still offered
    assert Browser(news).suggest("移籍 澤").queries[0] == "移籍 澤穂希"


def test_hiragana_finds_the_kanji_and_katakana_it_reads_as(news):
    def found(query: str) -> list[str]:
        return [group.best.article_id for group in news.search(query, group=True).groups]

    assert set(found("かがわしんじ")) == {"sports/sports-0002", KAGAWA_MOVE, "sports/sports-0001"}  # 香川真司
    assert found("どるとむんと") == ["sports/sports-0002"]
    assert found("とうきょうごりん") == ["sports/sports-0003"]  # 東京五輪 read トウキョウ ゴリン
    assert found("まんちぇすたー 練習") == [KAGAWA_MOVE]  # with a kanji word beside it


def test_a_pasted_headline_with_a_hiragana_name_is_not_a_zero(news):
    # 8 livedoor headlines such as おかもとまり「私、枕営業したことないですから！」 found nothing
    # when the hiragana name made every other word a required phrase; the other words decide.
    headlines = (
        "かがわしんじ「早くチームになじみたい」 新天地で練習",
        "かがわしんじ 新天地で初めての練習に参加、チームになじみたい",
    )
    for headline in headlines:
        results = news.search(headline, group=True)
        assert results.groups[0].best.article_id == KAGAWA_MOVE, headline


def test_the_hiragana_spelling_itself_ranks_first(news):
    found = [group.best.article_id for group in news.search("とうきょう", group=True).groups]
    assert found[0] == "sports/sports-0902"  # とうきょう as typed
    assert "sports/sports-0003" in found  # 東京, by its reading


@pytest.mark.parametrize("query", ["ありがとう", "やきゅう", "はし", "サッカー", "香川"])
def test_ordinary_words_are_not_read_again(news, query):
    """A word the dictionary reads as one word (ありがとう → 有り難う) matches as itself, two kana
    alone (はし: 橋, 箸, 端) would read as too many words, and kana or kanji typed are exact."""
    parsed = news.parse(query).query
    leaves = [parsed] if parsed.is_leaf() else parsed.leaves()
    assert leaves and not any(getattr(leaf, "fieldname", "") == "reading" for leaf in leaves)


@pytest.mark.parametrize("query, reading", [("せるじお", "セルジオ"), ("さっかー", "サッカー")])
def test_a_hiragana_word_sudachi_cuts_wrongly_is_matched_by_its_reading_alone(news, query, reading):
    """せるじお is せる (an auxiliary) + じお (しお) to Sudachi: matching しお would find 塩."""
    parsed = news.parse(query).query
    assert isinstance(parsed, wq.Term) and (parsed.fieldname, parsed.text) == ("reading", reading)


def test_a_particle_inside_a_hiragana_word_keeps_its_own_match(news):
    """とっておき is 取っ + て + おき: a word as typed, matched as itself and by its reading."""
    fields = {leaf.fieldname for leaf in news.parse("とっておき").query.leaves()}
    assert {"body", "reading"} <= fields


def test_an_index_built_before_names_and_readings_still_searches(tmp_path, monkeypatch):
    """An index whose schema has no people, places or reading field (as built before them)
    opens and searches: empty name facets, a name filter finds nothing, hiragana is itself."""
    added = (*NAME_FIELDS, "reading")

    def old_schema():
        schema = build_schema()
        for name in added:
            schema.remove(name)
        return schema

    def old_documents(article):
        return [{k: v for k, v in document.items() if k not in added} for document in section_documents(article)]

    monkeypatch.setattr(indexing, "build_schema", old_schema)
    monkeypatch.setattr(indexing, "section_documents", old_documents)
    indexing.reindex([FIXTURE_NEWS], tmp_path / "index", workers=0)
    old = SearchIndex(tmp_path / "index")
    with old.searcher() as (_, searcher):
        assert not set(added) & set(searcher.schema.names())
    results = old.search("香川真司", facets=True, group=True)
    assert results.articles >= 1 and results.facets.people == [] and results.facets.places == []
    assert old.search("香川真司", filters=Filters(person="香川真司")).total == 0
    assert Browser(old).suggest("香川").queries[0] == "香川"
    assert old.search("かがわしんじ").total == 0  # no readings: only what the hiragana says itself
    client = create_app(tmp_path / "index").test_client()
    assert client.get("/?q=香川真司&person=香川真司").status_code == 200


# --- the livedoor corpus ---------------------------------------------------------------------


@pytest.mark.livedoor
@pytest.mark.slow
def test_livedoor_suggests_and_facets_kagawa_shinji(livedoor):
    index = SearchIndex(livedoor[0])
    assert "香川真司" in Browser(index).suggest("香川").queries[:3]
    results = index.search("香川", facets=True, group=True)
    people = names(results.facets.people)
    assert results.facets.people[0].value == "香川真司" and people["香川真司"] <= results.articles
    assert "ドルトムント" in names(results.facets.places)  # his club's city
    only = index.search("香川", group=True, filters=Filters(person="香川真司"))
    assert only.articles == people["香川真司"]


@pytest.mark.livedoor
@pytest.mark.slow
@pytest.mark.parametrize(
    "query, spelled",
    [("せるじお", "セルジオ"), ("とうきょうおりんぴっく", "東京オリンピック"), ("かがわしんじ", "香川真司")],
)
def test_livedoor_hiragana_finds_the_spelled_words(livedoor, query, spelled):
    results = SearchIndex(livedoor[0]).search(query, limit=5, group=True)
    assert results.articles >= 2
    with SearchIndex(livedoor[0]).searcher() as (_, searcher):
        for group in results.groups[:3]:
            text = section_text(searcher, group.best.article_id, group.best.section_id)
            assert spelled in text, group.best.section_id
