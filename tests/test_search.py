"""Query semantics and snippets on the sample article and on purpose-built hostile articles."""

from __future__ import annotations

import re

import pytest

from search.indexing import reindex
from search.query.parse import MAX_QUERY_CHARS, QueryError
from search.searching import SearchIndex
from search.snippets import FRAGMENT_CHARS, MAX_FRAGMENTS
from search.sources.readers import read_corpus
from tests.conftest import CORPUS, SAMPLE_ARTICLE_ID

SECTION = {n: f"{SAMPLE_ARTICLE_ID}#{n}" for n in range(1, 6)}


def ids(results) -> list[str]:
    return [hit.section_id for hit in results.hits]


def test_h200_finds_the_sample_sections_and_never_h20_alone(corpus_index):
    results = corpus_index.search("H200")
    assert set(ids(results)) == {SECTION[1], SECTION[2], SECTION[3], SECTION[4]}
    assert all("<mark>H200</mark>" in hit.snippet.html() for hit in results.hits)


def test_h20_ranks_the_china_reaction_section_first(corpus_index):
    results = corpus_index.search("H20")
    assert ids(results)[0] == SECTION[4]
    assert results.hits[0].heading.text() == "中国の反応と技術自立化"
    assert "<mark>H20</mark>チップ" in results.hits[0].snippet.html()
    assert "H200" not in results.hits[0].snippet.text()  # only the sentence that says H20
    assert results.total == 1  # the H200 sections do not match


def test_unspaced_word_is_a_phrase(corpus_index, tmp_path):
    # The strict reading (relax=False); on a one-article corpus the sections with some of the
    # words follow it otherwise (tests/test_no_zero.py).
    assert ids(corpus_index.search("輸出規制", relax=False)) == [SECTION[5]]
    (tmp_path / "scattered.txt").write_text(
        "# 規制と輸出\n\n規制の話を最初にする。\n\n関係のない文が続く。そして最後に輸出の話をする。\n",
        encoding="utf-8",
    )
    reindex([tmp_path], tmp_path / "index")
    scattered = SearchIndex(tmp_path / "index")
    assert scattered.search("輸出 規制", relax=False).total == 1
    assert scattered.search("輸出規制", relax=False).total == 0


def test_space_separated_words_are_all_required(corpus_index):
    both = set(ids(corpus_index.search("半導体 輸出", relax=False)))
    only_semiconductor = set(ids(corpus_index.search("半導体", relax=False)))
    assert both and both <= only_semiconductor
    assert corpus_index.search("半導体　大豆", relax=False).total == 0  # full-width space separates too


def test_phrase_or_not_and_field_syntax(corpus_index):
    assert ids(corpus_index.search('"国家安全保障"')) == [SECTION[3]]
    assert ids(corpus_index.search("「国家安全保障」")) == [SECTION[3]]
    assert set(ids(corpus_index.search("大豆 OR 称賛"))) == {SECTION[3], SECTION[5]}
    with_nvidia = set(ids(corpus_index.search("エヌビディア")))
    assert SECTION[3] in with_nvidia and len(with_nvidia) > 1
    # フアン is in §3 only: a negated word leaves out the whole article that has it, not just §3.
    assert corpus_index.search("エヌビディア -フアン").total == 0
    assert corpus_index.search("エヌビディア NOT フアン").total == 0
    assert set(ids(corpus_index.search("エヌビディア -サッカー"))) == with_nvidia
    assert ids(corpus_index.search("heading:背景")) == [SECTION[2]]
    assert corpus_index.search("title:大豆").total == 0 and corpus_index.search("大豆").total == 1


def test_a_question_is_ranked_by_best_match_not_required_word_by_word(corpus_index):
    results = corpus_index.search(
        "中国はなぜアメリカの半導体輸出許可を受けてもH200チップを買わない可能性があるのですか？"
    )
    assert results.natural_language
    assert results.total >= 1
    assert ids(results)[0] == SECTION[4]


def test_title_and_heading_rank_above_body(tmp_path):
    (tmp_path / "a.md").write_text("# 半導体の今後\n\n市場は拡大する。\n", encoding="utf-8")
    (tmp_path / "b.md").write_text("# 市場の話\n\n市場の中で半導体は拡大する。\n", encoding="utf-8")
    reindex([tmp_path], tmp_path / "index")
    assert [h.article_id for h in SearchIndex(tmp_path / "index").search("半導体").hits] == ["a", "b"]


def test_snippets_are_short_sentence_aligned_and_marked(corpus_index):
    [article] = read_corpus([CORPUS])
    bodies = {article.section_id(n): s.text for n, s in enumerate(article.sections, start=1)}
    results = corpus_index.search("中国")
    assert results.total == 5  # the title says 中国: every section matches
    for hit in results.hits:
        fragments = hit.snippet.fragments
        assert 1 <= len(fragments) <= MAX_FRAGMENTS
        for fragment in fragments:
            text = "".join(t for t, _ in fragment).strip("…")
            assert len(text) <= FRAGMENT_CHARS
        assert ("<mark>中国</mark>" in hit.snippet.html()) == ("中国" in bodies[hit.section_id])


def test_long_sentences_are_windowed_around_the_match(tmp_path):
    long_sentence = "前置きの文章が" * 40 + "エヌビディアの決定は" + "後続の説明が" * 40 + "続いた。"
    (tmp_path / "a.md").write_text(f"# 長文\n\n{long_sentence}\n", encoding="utf-8")
    reindex([tmp_path], tmp_path / "index")
    [hit] = SearchIndex(tmp_path / "index").search("エヌビディア").hits
    [fragment] = hit.snippet.fragments
    text = "".join(t for t, _ in fragment)
    assert "<mark>エヌビディア</mark>" in hit.snippet.html()
    assert text.startswith("…") and text.endswith("…")
    assert len(text.strip("…")) <= FRAGMENT_CHARS


def test_a_search_without_marks_ranks_alike_and_marks_nothing(corpus_index):
    marked = corpus_index.search("エヌビディア 半導体", limit=5)
    plain = corpus_index.search("エヌビディア 半導体", limit=5, marks=False)
    assert [(h.section_id, h.score) for h in plain.hits] == [(h.section_id, h.score) for h in marked.hits]
    assert any(h.title.has_match() for h in marked.hits) and marked.hits[0].snippet.has_match()
    assert [h.title.text() for h in plain.hits] == [h.title.text() for h in marked.hits]
    assert not any(h.title.has_match() or h.heading.has_match() or h.snippet.fragments for h in plain.hits)


def test_corpus_text_is_escaped_and_only_mark_is_markup(tmp_path):
    hostile = '# <script>alert("x")</script>見出し\n\n<img src=x onerror=alert(1)>エヌビディアの<b>発表</b>&amp;。\n'
    (tmp_path / "hostile.md").write_text(hostile, encoding="utf-8")
    reindex([tmp_path], tmp_path / "index")
    [hit] = SearchIndex(tmp_path / "index").search("エヌビディア").hits
    markup = hit.snippet.html() + hit.title.html()
    tags = set(re.findall(r"</?([a-zA-Z]+)", markup))
    assert tags == {"mark"}
    assert "&lt;img src=x onerror=alert(1)&gt;" in markup and "&amp;amp;" in markup


def test_match_past_32768_characters_is_highlighted(tmp_path):
    filler = "これは長い記事の本文である。" * 3000
    (tmp_path / "long.jsonl").write_text(
        '{"id": "long", "title": "長い記事", "sections": [{"text": "' + filler + 'エヌビディアが登場した。"}]}\n',
        encoding="utf-8",
    )
    reindex([tmp_path], tmp_path / "index")
    [hit] = SearchIndex(tmp_path / "index").search("エヌビディア").hits
    assert "<mark>エヌビディア</mark>" in hit.snippet.html()


@pytest.mark.parametrize(
    "query, message",
    [("", "empty"), ("   ", "empty"), ("の", "no searchable words"), ("x" * (MAX_QUERY_CHARS + 1), "too long")],
)
def test_bad_queries_raise_a_clear_error(corpus_index, query, message):
    with pytest.raises(QueryError, match=message):
        corpus_index.search(query)


@pytest.mark.parametrize("query", ['"unbalanced', "OR", "AND AND", "title:", "-", "((", "\x00\x07制御", "*"])
def test_odd_queries_never_crash(corpus_index, query):
    try:
        corpus_index.search(query)
    except QueryError:
        pass
