"""The Sudachi analyzer: normalised terms, offsets on the original characters, long input, threads."""

from __future__ import annotations

import pickle
from concurrent.futures import ThreadPoolExecutor

from search.analysis import sudachi as analysis
from search.analysis.sudachi import (
    MAX_CHUNK_BYTES,
    JapaneseAnalyzer,
    SudachiTokenizer,
    terms,
)


def texts(text: str) -> list[str]:
    return [t.text for t in terms(text)]


def test_terms_are_normalized_and_particles_dropped():
    assert texts("コンピュータを使った") == ["コンピューター", "使う"]
    assert texts("ＡＩ半導体") == ["ai", "半導体"]
    assert texts("ｴﾇﾋﾞﾃﾞｨｱの株価") == ["エヌビディア", "株価"]
    assert texts("引越しした") == texts("引っ越しした") == ["引っ越し"]
    assert texts("、。！「」 　") == []


def test_alphanumeric_model_names_stay_whole():
    assert texts("H200チップ") == ["h200", "チップ"]
    assert texts("H20チップ") == ["h20", "チップ"]
    assert texts("Ｈ２００") == ["h200"]
    assert "g7" in texts("G7サミット") and "5g" in texts("5G対応")
    # A hyphen in either width joins; numbers a word apart stay apart, in both modes.
    for mode in ("C", "A"):
        found = [term.text for term in terms("COVID-19とＣＯＶＩＤ－１９、2012年4月の1.5倍", mode)]
        assert found == ["covid-19", "covid-19", "2012", "年", "4", "月", "1.5", "倍"]


def test_offsets_land_on_the_original_characters():
    text = "ＡＩとｴﾇﾋﾞﾃﾞｨｱ😀、H200とコンピュータ🇯🇵です。"
    spans = {t.text: text[t.start : t.end] for t in terms(text)}
    assert spans["ai"] == "ＡＩ"
    assert spans["エヌビディア"] == "ｴﾇﾋﾞﾃﾞｨｱ"
    assert spans["h200"] == "H200"
    assert spans["コンピューター"] == "コンピュータ"


def test_a_word_written_in_other_widths_keeps_its_own_offsets():
    # One dictionary word, whose analysis is kept per word: half-width kana make each spelling's
    # characters, and where its mode A units split, differ.
    text = "ﾋﾞﾃﾞｵカメラ、ビデオｶﾒﾗ、ビデオカメラ、ﾋﾞﾃﾞｵｶﾒﾗ。"
    words = [(t.text, text[t.start : t.end]) for t in terms(text)]
    units = [text[t.start : t.end] for t in terms(text, "A")]
    assert words == [("ビデオカメラ", spelling) for spelling in ("ﾋﾞﾃﾞｵカメラ", "ビデオｶﾒﾗ", "ビデオカメラ", "ﾋﾞﾃﾞｵｶﾒﾗ")]
    assert units == ["ﾋﾞﾃﾞｵ", "カメラ", "ビデオ", "ｶﾒﾗ", "ビデオ", "カメラ", "ﾋﾞﾃﾞｵ", "ｶﾒﾗ"]


def test_text_over_sudachis_limit_is_split_at_sentence_ends_with_offsets_carried():
    sentence = "米国政府は半導体の輸出規制を見直した。"
    text = sentence * (3 * MAX_CHUNK_BYTES // len(sentence.encode("utf-8"))) + "最後にｴﾇﾋﾞﾃﾞｨｱ。"
    assert len(text.encode("utf-8")) > 49_149 * 2
    found = list(terms(text))
    assert sum(1 for t in found if t.text == "輸出") == text.count("輸出")
    last = found[-1]
    assert last.text == "エヌビディア" and text[last.start : last.end] == "ｴﾇﾋﾞﾃﾞｨｱ"
    assert all(text[t.start : t.end] in sentence + "最後にｴﾇﾋﾞﾃﾞｨｱ" for t in found)


def test_a_single_huge_sentence_without_punctuation_is_still_analysed():
    text = "あ" * 60_000 + "エヌビディア"
    assert "エヌビディア" in texts(text)


def test_whoosh_tokens_carry_positions_and_chars():
    analyzer = JapaneseAnalyzer()
    tokens = [(t.text, t.pos, t.startchar, t.endchar) for t in analyzer("日本の首都は東京", positions=True, chars=True)]
    assert tokens == [("日本", 0, 0, 2), ("首都", 1, 3, 5), ("東京", 2, 6, 8)]


def test_analyzer_pickles_without_tokenizer_state():
    analyzer = JapaneseAnalyzer()
    list(analyzer("辞書を開かせる"))  # make sure a tokenizer exists in this thread
    state = pickle.dumps(analyzer)
    assert b"sudachipy" not in state
    restored = pickle.loads(state)
    assert isinstance(restored, SudachiTokenizer) and restored == analyzer
    assert [t.text for t in restored("輸出規制")] == ["輸出", "規制"]


def test_threads_each_get_their_own_tokenizer():
    text = "トランプ大統領がエヌビディアのH200チップの中国輸出を承認した。" * 50
    expected = texts(text)
    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(texts, [text] * 64))
    assert all(result == expected for result in results)


def test_recent_analyses_are_kept_up_to_a_character_budget(monkeypatch):
    # A result list analyses two hundred titles and headings; the next one shows many again.
    monkeypatch.setattr(analysis, "ANALYSED_CHARS_CACHED", 100)
    monkeypatch.setattr(analysis._local, "analyses", analysis._AnalysisCache(), raising=False)
    headlines = [f"第{number}回の会議で予算案を審議した" for number in range(10, 30)]  # 16 characters each
    first = [analysis._analysis(headline) for headline in headlines]
    kept = analysis._local.analyses
    assert list(kept) == headlines[-6:] and kept.chars == 96
    assert analysis._analysis(headlines[-6]) is first[-6]  # from the cache, not Sudachi again
    again = analysis._analysis(headlines[0])
    assert again is not first[0] and again.words == first[0].words  # analysed again: the same terms
    assert list(kept) == [*headlines[-4:], headlines[-6], headlines[0]]  # the least recently used made room
