"""Snippets on real text: cuts fall between words, fragments join with one ellipsis, never two.

Where a snippet cuts a sentence is checked against Sudachi's own analysis of the whole text
(its mode C morphemes, read here independently of the index's analysis), on the fixture corpus
with narrow windows (so every sentence is cut) and, in the livedoor-marked test, on the snippets
real searches show.
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

import pytest

from search.browse import Browser
from search.query.parse import HighlightSpec
from search.searching import SearchIndex
from search.snippets import ELLIPSIS, Snippet, lead, make_snippet, short_snippet

FIXTURE_NEWS = Path(__file__).resolve().parent / "fixtures" / "news"
# Words of the fixture corpus, each in several of its articles.
WORDS = ("日本", "香川", "輸出", "iphone", "サッカー", "政府", "選手", "発表", "スマートフォン")
# Two ellipses with only a blank between them (the text's own 「……」 is the author's).
DOUBLED = re.compile(r"…。?\s+…")


@cache
def _tokenizer():
    from sudachipy import Dictionary, SplitMode

    return Dictionary(dict="core").tokenizer(mode=SplitMode.C)


def morpheme_edges(text: str) -> set[int]:
    """Every offset of `text` where one of Sudachi's mode C morphemes starts or ends."""
    edges = {0, len(text)}
    for line_start, line in _lines(text):
        for morpheme in _tokenizer().tokenize(line):
            edges.add(line_start + morpheme.begin())
            edges.add(line_start + morpheme.end())
    return edges


def _lines(text: str):
    start = 0
    for line in text.split("\n"):
        yield start, line
        start += len(line) + 1


def fixture_bodies() -> list[str]:
    bodies = []
    for path in sorted(FIXTURE_NEWS.glob("*/*.txt")):
        _url, _date, _title, body = path.read_text(encoding="utf-8").split("\n", 3)
        bodies.append(body.strip())
    return bodies


def assert_cut_between_words(snippet: Snippet, text: str) -> None:
    """Each fragment is a piece of `text` whose cut edges (marked by …) are morpheme edges, and
    the shown snippet has no double ellipsis and no fragment opening on a closing bracket or comma."""
    shown = snippet.text()
    assert not DOUBLED.search(shown), shown
    edges = morpheme_edges(text)
    for fragment in snippet.fragments:
        pieces = [piece for piece, _ in fragment]
        cut_before, cut_after = pieces[0] == ELLIPSIS, pieces[-1] == ELLIPSIS
        body = "".join(pieces[cut_before : len(pieces) - cut_after])
        start = text.find(body)
        assert start >= 0, body
        end = start + len(body)
        assert not cut_before or start in edges, f"starts inside a word: …{text[start - 5 : start]}|{body[:10]}"
        assert not cut_after or end in edges, f"ends inside a word: {body[-10:]}|{text[end : end + 5]}…"
        assert body and body[0] not in "」』）)、，,。", body


@pytest.mark.parametrize("chars", [20, 28, 35])
def test_narrow_windows_cut_between_words_on_fixture_news(chars):
    checked = cut = 0
    for body in fixture_bodies():
        for word in WORDS:
            if word not in body.lower():
                continue
            snippet = short_snippet(body, HighlightSpec(terms=frozenset({word})), 3, chars)
            assert_cut_between_words(snippet, body)
            checked += 1
            cut += any(piece == (ELLIPSIS, False) for fragment in snippet.fragments for piece in fragment)
            assert all(len("".join(t for t, _ in f).strip(ELLIPSIS)) <= chars for f in snippet.fragments)
    assert checked >= 15 and cut >= 3  # the windows did cut sentences, and every cut was checked


def test_a_window_keeps_a_verb_with_its_ending():
    [body] = [b for b in fixture_bodies() if "マンチェスター・ユナイテッドへ移籍" in b]
    snippet = short_snippet(body, HighlightSpec(terms=frozenset({"香川"})), 3, 40)
    first = "".join(text for text, _ in snippet.fragments[0])
    assert first.startswith("ドルトムントの香川真司が") and first.endswith("正式に…"), first  # not 正式に決ま…


def test_fragments_join_with_one_ellipsis():
    """Where a fragment cut at its end meets one cut at its start (「出… … 不愉快」 before), one
    ellipsis stands between them; between whole sentences, the gap's own ` … `."""
    both_cut = whole = 0
    for body in fixture_bodies():
        for word in WORDS:
            if word not in body.lower():
                continue
            snippet = short_snippet(body, HighlightSpec(terms=frozenset({word})), 3, 25)
            fragments = snippet.fragments
            cut_end = [fragment[-1] == (ELLIPSIS, False) for fragment in fragments]
            cut_start = [fragment[0] == (ELLIPSIS, False) for fragment in fragments]
            joins = list(zip(cut_end, cut_start[1:]))
            both_cut += sum(end and start for end, start in joins)
            whole += sum(not end and not start for end, start in joins)
            expected = (
                sum(cut_end)
                + sum(cut_start)
                - sum(end and start for end, start in joins)
                + sum(not end and not start for end, start in joins)
            )
            shown = snippet.text()
            assert shown.count(ELLIPSIS) == expected and not DOUBLED.search(shown), shown
    assert both_cut >= 1 and whole >= 1


def test_a_sentence_does_not_end_inside_a_quotation():
    """「やじうまテレビ！」には: the ！ ends no sentence, so no fragment starts at 」には."""
    text = (
        "1日、東北電力ビッグスワンスタジアムで行われたサッカー・キリンカップの翌日、テレビ朝日、朝の情報番組"
        "「やじうまテレビ！」には、元日本代表でサッカー解説者の福田正博氏がVTRで出演。"
    )
    snippet = make_snippet(text, HighlightSpec(terms=frozenset({"解説"})))
    assert_cut_between_words(snippet, text)
    assert "」には" not in snippet.text()[:4]


def test_the_opening_stands_in_cut_between_words():
    """No match in the text (the title matched): its opening shows, cut at a sentence end or
    between words."""
    nothing = HighlightSpec(terms=frozenset({"存在しない語"}))
    for body in fixture_bodies():
        for text in (body, "\n\u3000 " + body):  # leading blanks do not shift the cut
            for chars in (25, 50):
                snippet = short_snippet(text, nothing, 1, chars)
                assert snippet.fragments and not snippet.has_match()
                assert_cut_between_words(snippet, text)
                assert len(snippet.text()) <= chars + 1
    assert lead("", 20) == ""
    assert lead("短い文。", 20) == "短い文。"


def test_hostile_text_is_escaped_in_a_cut_window():
    text = "前置き" * 20 + "、<script>alert(1)</script>香川の<b>記事</b>&amp;、" + "後の文" * 30 + "。"
    html = short_snippet(text, HighlightSpec(terms=frozenset({"香川"})), 1, 40).html()
    assert set(re.findall(r"</?([a-zA-Z]+)", html)) == {"mark"} and "<mark>香川</mark>" in html


@pytest.mark.livedoor
def test_livedoor_snippets_cut_between_words(livedoor):
    """The snippets and other-section lines real searches show over livedoor: 「…た男子サッカー」
    and 「出… … 不愉快」 were what the issue saw."""
    index = SearchIndex(livedoor[0])
    browser = Browser(index)
    checked = 0
    with index.view() as view:
        bodies = {
            fields["section_id"]: fields.get("body", "")
            for fields in (view.searcher.stored_fields(d) for d in range(view.searcher.doc_count()))
        }
    for query in ("サッカー 日本代表", "香川", "不愉快", "結婚", "iPhone アプリ", "なでしこジャパンはなぜ強いのか"):
        results = index.search(query, 10, group=True)
        others = browser.other_snippets(results.groups, query)
        for group in results.groups:
            assert_cut_between_words(group.best.snippet, bodies[group.best.section_id])
            checked += 1
            for other in group.others:
                if other.section_id in others:
                    assert_cut_between_words(others[other.section_id], bodies[other.section_id])
                    checked += 1
    assert checked >= 60
