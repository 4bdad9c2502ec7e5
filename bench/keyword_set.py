"""A keyword query set made from headlines: what a news reader types instead of the headline.

    python bench/keyword_set.py HEADLINES_DIR OUT_DIR   # queries.tsv + qrels.txt beside a headline set

How it is made, deterministically (no state, the same queries on every machine with the same
Sudachi dictionary):
- the headlines are those of a headline → article set (`ldcc_titles.py --part measure`, or
  `--part train` for the training part): never the held-out odd-numbered livedoor articles;
- each headline is cut into Sudachi (mode C, the product's dictionary) morphemes; its keywords
  are the common and proper nouns (名詞-普通名詞 / 名詞-固有名詞, not 副詞可能 ones such as 時 or
  今日, not numbers) of at least two characters, and not hiragana words of up to three (こと,
  もの, ところ: nouns by grammar, not by meaning), with two joins a reader would make: a run of
  Latin letters and digits is one word (AKB48, iPhone4S) and adjacent proper nouns are one name
  (セルジオ越後); each keyword counts once (letter case aside), in the headline's first spelling;
- a headline with fewer than two keywords gives no query; otherwise `random.Random(f"{SEED}:{qid}")`
  draws 2 or 3 of them (3 only when there are 3 or more), kept in headline order and joined
  by spaces: 「出会い カフェ 小遣い」;
- the target is the headline's article (article-level qrels, as the headline set's), and the
  query id is the headline's with `kw-` in front.
"""

from __future__ import annotations

import argparse
import random
import sys
from pathlib import Path

from sudachipy import Dictionary, SplitMode

SEED = "midashi-keywords-1"
KEYWORDS_DRAWN = (2, 3)
MIN_KEYWORD_CHARS = 2
MAX_HIRAGANA_FILLER_CHARS = 3  # こと, もの, とも, ところ
_NOUN_KINDS = frozenset({"普通名詞", "固有名詞"})

_tokenizer = None


def _sudachi():
    """Sudachi in mode C on the core dictionary, as the index analyses text; opened once."""
    global _tokenizer
    if _tokenizer is None:
        _tokenizer = Dictionary(dict="core").tokenizer(mode=SplitMode.C)
    return _tokenizer


def _is_latin_word(text: str) -> bool:
    return text.isascii() and text.isalnum()


def _is_filler(word: str) -> bool:
    return len(word) <= MAX_HIRAGANA_FILLER_CHARS and all("\u3041" <= ch <= "\u309f" for ch in word)


def keywords(headline: str) -> list[str]:
    """The headline's keywords in order (see the module docstring for which words count)."""
    words: list[tuple[str, bool, bool, int]] = []  # (surface, is a noun, is a proper noun, end)
    for morpheme in _sudachi().tokenize(headline):
        surface, pos = morpheme.surface(), morpheme.part_of_speech()
        noun = pos[0] == "名詞" and pos[1] in _NOUN_KINDS and pos[2] != "副詞可能"
        proper = noun and pos[1] == "固有名詞"
        if words and words[-1][3] == morpheme.begin():
            previous, was_noun, was_proper, _ = words[-1]
            if (_is_latin_word(previous) and _is_latin_word(surface)) or (was_proper and proper):
                words[-1] = (previous + surface, was_noun or noun, was_proper or proper, morpheme.end())
                continue
        words.append((surface, noun, proper, morpheme.end()))
    found = [
        surface
        for surface, noun, _, _ in words
        if noun and len(surface) >= MIN_KEYWORD_CHARS and not _is_filler(surface)
    ]
    first_spelling: dict[str, str] = {}
    for word in found:
        first_spelling.setdefault(word.lower(), word)  # GALAXY and Galaxy are one keyword
    return list(first_spelling.values())


def keyword_query(qid: str, headline: str) -> str | None:
    """2–3 of the headline's keywords, drawn with a seed of the query id; None if it has fewer than 2."""
    found = keywords(headline)
    if len(found) < min(KEYWORDS_DRAWN):
        return None
    draw = random.Random(f"{SEED}:{qid}")
    count = min(draw.choice(KEYWORDS_DRAWN), len(found))
    return " ".join(found[i] for i in sorted(draw.sample(range(len(found)), count)))


def keyword_set(
    headlines: list[tuple[str, str]], relevant: dict[str, set[str]]
) -> tuple[list[tuple[str, str]], dict[str, set[str]]]:
    """Keyword queries (`kw-<qid>`) and their qrels (the headline's own targets), in headline order."""
    queries, qrels = [], {}
    for qid, headline in headlines:
        query = keyword_query(qid, headline)
        if query is not None and qid in relevant:
            queries.append((f"kw-{qid}", query))
            qrels[f"kw-{qid}"] = relevant[qid]
    return queries, qrels


def main() -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from trec_eval import read_qrels

    from search.batch import read_queries

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("headlines", type=Path, help="a folder with queries.tsv and qrels.txt of headlines")
    parser.add_argument("out", type=Path)
    args = parser.parse_args()
    queries, qrels = keyword_set(read_queries(args.headlines / "queries.tsv"), read_qrels(args.headlines / "qrels.txt"))
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "queries.tsv").write_text("".join(f"{qid}\t{text}\n" for qid, text in queries), encoding="utf-8")
    (args.out / "qrels.txt").write_text(
        "".join(f"{qid} 0 {doc} 1\n" for qid, _ in queries for doc in sorted(qrels[qid])), encoding="utf-8"
    )
    print(f"{args.out}: {len(queries)} keyword queries")


if __name__ == "__main__":
    main()
