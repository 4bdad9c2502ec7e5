"""Articles, not just sections: a negated word leaves out whole articles, boilerplate at an
article's end (bare link lists, author profiles) is not indexed, and `midashi search` lists each
article once. On the fixture corpus tests/fixtures/news (tech-0004: an iPhone story ending in a
bulleted paragraph of sentences, a bare list of related titles and an author profile; tech-0005:
iPhone in its lead, Android only in its second section), so they run without ../shared."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from search.batch import rank_each
from search.cli import cli
from search.indexing import reindex
from search.searching import Filters, Hit, SearchIndex
from search.sources.readers import _drop_trailing_boilerplate, parse_livedoor
from tests.whoosh_oracle import WhooshOracle
from web import create_app

NEWS = Path(__file__).resolve().parent / "fixtures" / "news"
NEGATIONS = ["iPhone -Android", "iPhone NOT Android", "iPhone AND NOT Android", "NOT Android iPhone"]


@pytest.fixture(scope="module")
def news_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("articles") / "index"
    reindex([NEWS], root, workers=0)
    return root


@pytest.fixture(scope="module")
def fast(news_root) -> SearchIndex:
    return SearchIndex(news_root)


@pytest.fixture(scope="module")
def oracle(news_root) -> SearchIndex:
    """Whoosh's own matchers and collector, the exclusion worked out from stored article ids."""
    return WhooshOracle(news_root)


def _articles(results) -> set[str]:
    return {hit.article_id for hit in results.hits}


def _read(relative: str):
    path = NEWS / relative
    return parse_livedoor(path.read_text(encoding="utf-8").split("\n"), relative)


# --- -word / NOT leaves out the whole article ---------------------------------------------------


def test_a_dash_standing_alone_in_a_pasted_headline_excludes_nothing(fast):
    """「…」 - 連載名 vol.27: the dash sets the series name apart; it is no operator (it left out
    every article of the series, the headline's own included)."""
    pasted = fast.search("「iPhoneの新機能」 - Android", limit=50)
    assert fast.parse("「iPhoneの新機能」 - Android").excluded is None
    assert "tech/tech-0005" in _articles(pasted)  # says iPhone and Android
    assert "tech/tech-0005" not in _articles(fast.search("iPhone -Android", limit=50))


def test_iphone_alone_finds_the_article_that_discusses_android_elsewhere(fast):
    found = fast.search("iPhone", limit=50)
    assert "tech/tech-0005" in _articles(found)  # the premise: its lead has iPhone, its §2 Android
    assert "tech/tech-0005#1" in {hit.section_id for hit in found.hits}


@pytest.mark.parametrize("query", NEGATIONS)
def test_negated_word_excludes_every_section_of_its_articles(fast, query):
    found = fast.search(query, limit=50, facets=True)
    assert _articles(found) == {"tech/tech-0004"}  # not tech-0005 (Android in §2), not tech-0001
    assert found.total == len(found.hits) == 2
    assert sum(facet.count for facet in found.facets.category) == 1  # articles, not its 2 sections
    grouped = fast.search(query, limit=50, group=True)
    assert grouped.articles == 1 and [g.best.article_id for g in grouped.groups] == ["tech/tech-0004"]
    for sort in ("newest", "oldest"):
        dated = fast.search(query, limit=50, sort=sort, facets=True)
        assert _articles(dated) == {"tech/tech-0004"} and dated.total == 2


def test_exclusion_holds_for_the_batch_run_and_the_api(fast, news_root):
    [ranked] = list(rank_each(fast, [("q1", "iPhone -Android")]))
    assert sorted(line.split()[2] for line in ranked.lines) == ["tech/tech-0004#1", "tech/tech-0004#2"]
    data = create_app(news_root).test_client().get("/api/search?q=iPhone -Android").get_json()
    assert (
        data["articles"] == 1 and data["total"] == 2 and [h["article_id"] for h in data["hits"]] == ["tech/tech-0004"]
    )
    # The article's other matching section is listed under its best one (whichever ranks first).
    best, [other] = data["hits"][0]["section_id"], data["hits"][0]["other_sections"]
    assert {best, other["section_id"]} == {"tech/tech-0004#1", "tech/tech-0004#2"}
    assert sum(facet["count"] for facet in data["facets"]["category"]) == data["articles"] == 1


@pytest.mark.parametrize("query", [*NEGATIONS, "iPhone -Android -円高", "スマートフォン -Android", "画面 -GALAXY"])
def test_exclusion_agrees_with_whooshs_own_path(fast, oracle, query):
    arrays, whoosh = fast.search(query, limit=50, facets=True), oracle.search(query, limit=50, facets=True)
    assert [hit.section_id for hit in arrays.hits] == [hit.section_id for hit in whoosh.hits]
    assert arrays.total == whoosh.total == len(arrays.hits)
    assert arrays.facets == whoosh.facets


def test_exclusion_reaches_words_in_any_section_and_with_filters(fast, oracle):
    # 円高 is in tech-0004's bulleted paragraph (§2) only: the lead section goes too.
    assert _articles(fast.search("iPhone -円高", limit=50)) == {"tech/tech-0001", "tech/tech-0005"}
    assert fast.search("iPhone -円高 -Android", limit=50).total == 0
    # GALAXY is only in tech-0004#2.
    assert "tech/tech-0004" not in _articles(fast.search("画面 -GALAXY", limit=50))
    tech = Filters.parse(category="tech")
    for index in (fast, oracle):
        found = index.search("スマートフォン -Android", limit=50, filters=tech, facets=True)
        assert [hit.section_id for hit in found.hits] == ["tech/tech-0003#1"] and found.total == 1


def test_a_negated_word_also_leaves_out_its_synonyms_and_model_names(fast, oracle):
    # tech-0005 says Android; アンドロイド is its synonym. tech-0001 says only iPhone5 and iPhone4S.
    for index in (fast, oracle):
        assert _articles(index.search("iPhone -アンドロイド", limit=50)) == {"tech/tech-0004"}
        assert "tech/tech-0001" in _articles(index.search("スマートフォン", limit=50))
        assert "tech/tech-0001" not in _articles(index.search("スマートフォン -iPhone", limit=50))


@pytest.mark.parametrize("word", ["日本", "東京", "市場", "選手"])
def test_a_negated_word_also_leaves_out_the_longer_words_it_stands_in(fast, oracle, word):
    """What finds an article leaves it out when negated: 東京 finds tech-0003 by its
    東京ディズニーランド (東京 is a unit of it), so 東京 -東京 finds nothing (it found tech-0003)."""
    assert fast.search(word, limit=50).total  # the premise: the word finds sections
    for index in (fast, oracle):
        assert index.search(f"{word} -{word}", limit=50).total == 0
    # Only where the negated word's own units stand together: -東京都 is no -東京.
    assert "tech/tech-0003" in _articles(fast.search("東京 -東京都", limit=50))
    # A compound Sudachi splits (日本代表: 日本 代表) is negated inside longer words too, as it is
    # found (日本代表団, one word, has the units 日本 代表 団).
    assert 'parts:"日本 代表"' in str(fast.parse("サッカー -日本代表").excluded)


def test_negation_inside_an_or_group_stays_per_section(fast):
    # Only the top level excludes articles; inside a group a NOT narrows that group's sections.
    found = fast.search("円高 OR (iPhone NOT Android)", limit=50)
    assert "economy/economy-0001" in _articles(found) and "tech/tech-0005" in _articles(found)


# --- boilerplate at an article's end is not indexed ----------------------------------------------


def test_bare_link_list_and_profile_are_dropped_but_bulleted_sentences_stay():
    article = _read("tech/tech-0004.txt")
    text = "\n".join(section.text for section in article.sections)
    assert "・価格は据え置かれるとみられるが、円高の影響で国内価格が下がる可能性もある。" in text
    for boilerplate in ("iPhone4Sの販売台数、国内で過去最高に", "夏の新製品を発表", "著者プロフィール", "取材歴"):
        assert boilerplate not in text
    assert [section.heading for section in article.sections] == ["", "競合の動き"]


def test_boilerplate_words_find_nothing_and_real_text_ranks(fast):
    assert "tech/tech-0004" not in _articles(fast.search("取材歴", limit=50))
    assert "tech/tech-0004" not in _articles(fast.search("過去最高", limit=50))
    assert fast.search("販売競争", limit=50).hits[0].section_id == "tech/tech-0004#2"  # the bulleted sentences
    best = fast.search("iPhone 画面", limit=50).hits[0]
    assert best.section_id == "tech/tech-0004#1"


@pytest.mark.parametrize(
    "lines, kept",
    [
        # Header and titles after the text: gone.
        (["本文です。", "", "【MOVIE ENTER おすすめ記事】", "・映画の話題", "・別の話題"], ["本文です。"]),
        (["本文です。", "", "・関連する見出し", "・もう一つの見出し", ""], ["本文です。"]),
        (["本文です。", "", "■この事件はこちらでも詳しく紹介", "・監督がキレキレだった件。"], ["本文です。"]),
        # Items that are sentences: a list in the text.
        (["本文です。", "", "・一つ目の事実がある。", "・二つ目の事実もある。"], None),
        # Items introduced by a sentence in the same paragraph: part of it.
        (["主な変更点は次の通り。", "・画面が大きい", "・電池が長持ち"], None),
        # An ellipsis, not a bullet.
        (["本文です。", "", "・・・・・・なるほど"], None),
        # Nothing but a list: the article keeps it, never ends up empty.
        (["・一つ目", "・二つ目"], None),
        # A profile heading and a few lines: gone; a long text after such a heading stays.
        (["本文です。", "", "◆作家プロフィール◆", "●山田：漫画家。"], ["本文です。"]),
        (["本文です。", "", "■プロフィール", *["長い本文が続く。" * 20] * 14], None),
    ],
)
def test_trailing_boilerplate_rule(lines, kept):
    """`kept` None: nothing is dropped (trailing blank lines aside)."""
    unchanged = lines[: max(number + 1 for number, line in enumerate(lines) if line.strip())]
    assert _drop_trailing_boilerplate(lines) == (unchanged if kept is None else kept)


# --- midashi search lists each article once -------------------------------------------------------


def _search(news_root, *args: str):
    result = CliRunner().invoke(cli, ["search", *args, "--index", str(news_root)])
    assert result.exit_code == 0, result.output
    return result.output


def test_cli_groups_by_article(news_root):
    output = _search(news_root, "iPhone")
    lines = output.splitlines()
    assert lines[0].startswith("3 articles (4 sections) for 「iPhone」")
    assert output.count("tech/tech-0004#") == 1  # once, at its best section
    assert "  1. 新しいiPhoneは画面が大きくなるのか" in output and "  3. " in output and "  4. " not in output
    assert "also in #2 (§ 競合の動き)" in output


def test_cli_sections_lists_each_section(news_root):
    output = _search(news_root, "iPhone", "--sections")
    assert output.splitlines()[0].startswith("4 sections for 「iPhone」")
    assert "tech/tech-0004#1" in output and "tech/tech-0004#2" in output and "also in" not in output


def test_cli_json_grouped_and_flat_share_one_hit_shape(news_root):
    grouped = json.loads(_search(news_root, "iPhone", "--json"))
    flat = json.loads(_search(news_root, "iPhone", "--json", "--sections"))
    assert grouped["articles"] == 3 and grouped["total"] == 4 and flat["articles"] is None
    # Each article once, in the order of its best section in the flat list; tech-0004's other
    # matching section is listed under it, as a section reference.
    flat_articles = list(dict.fromkeys(hit["article_id"] for hit in flat["hits"]))
    assert [hit["article_id"] for hit in grouped["hits"]] == flat_articles
    assert sorted(flat_articles) == ["tech/tech-0001", "tech/tech-0004", "tech/tech-0005"]
    assert [hit["rank"] for hit in grouped["hits"]] == [1, 2, 3]
    [tech_0004] = [hit for hit in grouped["hits"] if hit["article_id"] == "tech/tech-0004"]
    [other] = tech_0004["other_sections"]
    assert {tech_0004["section_id"], other["section_id"]} == {"tech/tech-0004#1", "tech/tech-0004#2"}
    assert set(other) == {"section_id", "section_number", "heading"}
    assert other["section_number"] == int(other["section_id"].rsplit("#", 1)[1])
    assert all(not hit["other_sections"] for hit in grouped["hits"] if hit is not tech_0004)
    hit_keys = set(Hit.__dataclass_fields__) - {"title", "heading", "snippet"}
    assert len(flat["hits"]) == 4 and all(hit_keys <= set(hit) and "other_sections" not in hit for hit in flat["hits"])
    assert all(set(hit) - {"other_sections"} == set(flat["hits"][0]) for hit in grouped["hits"])


def test_cli_negation_excludes_articles(news_root):
    output = _search(news_root, "iPhone -Android")
    assert output.splitlines()[0].startswith("1 article (2 sections)")
    assert "tech/tech-0005" not in output and "tech/tech-0001" not in output
