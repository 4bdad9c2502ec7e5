"""The relevance benchmark's own parts, on the fixture news corpus: the keyword set it builds, the
article-level scoring of headline and keyword sets, and a whole measurement with the bm25s peer."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from search.sources.articles import Article
from search.sources.readers import read_corpus

BENCH = Path(__file__).resolve().parent.parent / "bench"
sys.path.insert(0, str(BENCH))  # bench/ holds scripts, not a package

from keyword_set import keyword_set, keywords  # noqa: E402
from relevance import PEER, QuerySet, measure  # noqa: E402
from trec_eval import articles_in_order, evaluate  # noqa: E402

from search.query.parse import QueryOptions  # noqa: E402

NEWS = Path(__file__).resolve().parent / "fixtures" / "news"


@pytest.fixture(scope="module")
def articles() -> list[Article]:
    return [article for article in read_corpus([NEWS]) if isinstance(article, Article)]


@pytest.fixture(scope="module")
def sectioned_corpus(articles, tmp_path_factory) -> Path:
    """The fixture articles as the headline tool writes livedoor: no title, a section per paragraph."""
    path = tmp_path_factory.mktemp("bench") / "corpus.jsonl"
    lines = []
    for article in articles:
        paragraphs = [p for section in article.sections for p in section.text.split("\n") if p.strip()]
        record = {"id": article.id, "title": "", "sections": [{"text": p} for p in paragraphs]}
        lines.append(json.dumps(record, ensure_ascii=False) + "\n")
    path.write_text("".join(lines), encoding="utf-8")
    return path


def test_keywords_are_a_headlines_nouns_as_a_reader_writes_them():
    # 秋 is an adverbial noun, の/は/か particles; Latin letters and digits stay one word.
    assert keywords("新型iPhone5の発表は秋か、iPhone4Sの販売は好調") == [
        "新型",
        "iPhone5",
        "発表",
        "iPhone4S",
        "販売",
        "好調",
    ]
    # Adjacent proper nouns are one name; こと is grammar, not a keyword.
    assert keywords("セルジオ越後がAKB48のことを語る") == ["セルジオ越後", "AKB48"]
    assert keywords("GALAXYのレイヤーがGalaxyを語る") == ["GALAXY", "レイヤー"]


def test_keyword_set_is_reproducible_and_targets_the_headlines_article(articles):
    headlines = [(article.id, article.title) for article in articles] + [("few", "人に聞いてはいけないこと")]
    relevant = {qid: {f"article-of-{qid}"} for qid, _ in headlines}
    queries, qrels = keyword_set(headlines, relevant)
    assert (queries, qrels) == keyword_set(headlines, relevant)
    assert [qid for qid, _ in queries] == [f"kw-{article.id}" for article in articles]  # not "few": one keyword
    titles = dict(headlines)
    for qid, query in queries:
        words, found = query.split(" "), keywords(titles[qid[3:]])
        assert 2 <= len(words) <= 3
        assert words == [word for word in found if word in words]  # the headline's own keywords, in its order
        assert qrels[qid] == {f"article-of-{qid[3:]}"}
    assert {len(query.split(" ")) for _, query in queries} == {2, 3}


def test_a_ranking_of_sections_scores_each_article_at_its_best_section():
    ranked = ["b#2", "b#1", "a#3", "c#1", "a#1"]
    assert articles_in_order(ranked) == ["b", "a", "c"]
    relevant = {"q": {"a"}}
    assert evaluate(relevant, {"q": articles_in_order(ranked)})["MRR@10"] == pytest.approx(1 / 2)
    # Scored on sections, b's second section would push a down to rank 3.
    assert evaluate(relevant, {"q": [section.split("#")[0] for section in ranked]})["MRR@10"] == pytest.approx(1 / 3)


def test_measure_scores_midashi_and_the_peer_at_article_level(articles, sectioned_corpus, tmp_path):
    headlines = [(article.id, article.title) for article in articles]
    relevant = {article.id: {article.id} for article in articles}
    queries, qrels = keyword_set(headlines, relevant)
    nothing = ("kw-nothing", "zqxjv")  # no section holds it: a zero result and a miss
    query_set = QuerySet(
        "keywords",
        [*queries, nothing],
        {**qrels, nothing[0]: {"tech/tech-0001"}},
        sectioned_corpus,
        tmp_path / "index",
        True,
    )
    from search.indexing import reindex

    reindex([sectioned_corpus], query_set.index)
    default, peer = measure(query_set, {"default": QueryOptions(), PEER: PEER}, tmp_path, tmp_path)
    for scores in (default, peer):
        assert scores["queries"] == len(articles) + 1
        assert scores["zero"] == pytest.approx(1 / (len(articles) + 1))
        assert scores["R@10"] == pytest.approx(
            len(articles) / (len(articles) + 1)
        )  # each keyword query finds its article
    runs = sorted(path.name for path in tmp_path.glob("*.trec"))
    assert runs == ["keywords-bm25s-peer-naive-bm25.trec", "keywords-default.trec"]
    peer_run = (tmp_path / "keywords-bm25s-peer-naive-bm25.trec").read_text(encoding="utf-8").splitlines()
    assert peer_run and all("#" in line.split()[2] for line in peer_run)  # sections ranked, articles scored
