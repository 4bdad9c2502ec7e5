"""Related articles are related: they share the article's most distinctive words (its key terms),
and an article with nothing like it in the index has none (issue 29: the H200 export article's
"related" were レアアース, 韓流 and スマホ stories).

On the fixture corpus with the sample H200 article (corpus/) and a few articles written here
(one more on 香川真司's transfer, one more on chip export rules, one on bonsai with no neighbour),
and, marked livedoor, on livedoor's articles about 香川真司.
"""

from __future__ import annotations

import shutil

import pytest

from search.browse import RELATED_ARTICLES, Browser, key_terms
from search.indexing import reindex
from search.searching import SearchIndex
from tests.conftest import CORPUS, FIXTURE_NEWS, SAMPLE_ARTICLE_ID

EXTRA = {
    "sports/sports-0201.txt": "http://example.com/sports/0201\n2012-07-05T10:00:00+0900\n"
    "香川真司、マンチェスター・ユナイテッドで入団会見\n"
    "ドルトムントから移籍した香川真司が、マンチェスター・ユナイテッドの入団会見に臨んだ。"
    "ファーガソン監督は香川の攻撃的な才能を高く評価していると語った。\n",
    "economy/economy-0201.txt": "http://example.com/economy/0201\n2012-08-01T09:00:00+0900\n"
    "半導体の輸出規制、エヌビディアの中国向けチップに影響\n"
    "米商務省による半導体の輸出規制の強化で、エヌビディアの中国向けAIチップの販売に影響が出ている。"
    "半導体メーカー各社は輸出許可の取得を急いでいる。\n",
    "life/life-0201.txt": "http://example.com/life/0201\n2012-09-01T09:00:00+0900\n"
    "盆栽の手入れ、夏場の水やりのこつ\n"
    "盆栽愛好家の間で、夏場の水やりと剪定の時期が話題になっている。松や楓の盆栽は朝夕二回の水やりがよいという。\n",
}


@pytest.fixture(scope="module")
def browser(tmp_path_factory) -> Browser:
    base = tmp_path_factory.mktemp("related")
    news = base / "news"
    shutil.copytree(FIXTURE_NEWS, news, ignore=shutil.ignore_patterns("*.md"))
    for name, text in EXTRA.items():
        (news / name).parent.mkdir(exist_ok=True)
        (news / name).write_text(text, encoding="utf-8")
    reindex([news, CORPUS], base / "index", workers=0)
    return Browser(SearchIndex(base / "index"))


def related_ids(browser: Browser, article_id: str) -> list[str]:
    page = browser.article(article_id)
    assert page is not None
    return [related.article_id for related in page.related]


def test_a_transfer_story_is_related_to_the_other_one(browser):
    related = related_ids(browser, "sports/sports-0002")
    assert related[0] == "sports/sports-0201"
    assert "sports/sports-0002" not in related  # never the article itself
    assert related_ids(browser, "sports/sports-0201")[0] == "sports/sports-0002"


def test_the_sample_h200_article_is_related_to_chip_export_stories_only(browser):
    related = related_ids(browser, SAMPLE_ARTICLE_ID)
    assert "economy/economy-0201" in related
    # Chip export rules, and エヌビディア's chips (tech-0002); no iPhone, no football, no 円高.
    assert set(related) <= {"economy/economy-0201", "economy/economy-0002", "tech/tech-0002"}


def test_an_article_with_nothing_like_it_has_no_related_articles(browser):
    assert related_ids(browser, "life/life-0201") == []


def test_key_terms_are_distinctive_nouns_other_articles_have(browser):
    page = browser.article("sports/sports-0002")
    assert page is not None
    body = "\n".join(p.text() for section in page.sections for p in section.paragraphs)
    with browser.index.view() as view:
        keys = key_terms(view, "sports/sports-0002", page.title.text(), body)
    words = [key.word for key in keys]
    assert "香川" in words and not any(any("ぁ" <= ch <= "ゖ" for ch in word) for word in words)
    assert all(len(key.others) for key in keys)  # each in some other article
    assert [key.weight for key in keys] == sorted((key.weight for key in keys), reverse=True)


@pytest.mark.livedoor
def test_livedoor_kagawa_articles_relate_to_other_kagawa_articles(livedoor):
    browser = Browser(SearchIndex(livedoor[0]))
    found = browser.index.search("香川真司", limit=5, group=True, filters=None)
    checked = 0
    for group in found.groups[:3]:
        page = browser.article(group.best.article_id)
        assert page is not None and 1 <= len(page.related) <= RELATED_ARTICLES
        for related in page.related:
            assert related.article_id != group.best.article_id
            other = browser.article(related.article_id)
            assert other is not None
            text = other.title.text() + "".join(p.text() for s in other.sections for p in s.paragraphs)
            assert "香川" in text, related.title
            assert related.category in {"sports-watch", "topic-news"}, related.title
            checked += 1
    assert checked >= 6
