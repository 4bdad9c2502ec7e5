"""Query strings → Whoosh queries, with the semantics a Japanese news reader expects.

- Words typed without spaces are phrases (輸出規制 = 輸出 then 規制), see `schema.py`.
- Space-separated words (half- or full-width spaces) are all required.
- `"…"` (or 「…」『…』“…”) phrases, `OR`, `-word` / `NOT word`, `title:` / `heading:` /
  `body:` / `source:` / `category:` fields work as in Whoosh's query language.
- A typed question or pasted sentence (many content words, no syntax) is ranked by best match:
  an OR of its words that rewards sections matching more of them, instead of requiring all.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass

from whoosh import query as wq
from whoosh.fields import Schema
from whoosh.qparser import AndGroup, MultifieldParser, PlusMinusPlugin, WildcardPlugin

from .analysis import terms
from .schema import TEXT_FIELDS

MAX_QUERY_CHARS = 1000
# A sentence (particles between its words) with at least this many content words, or any query
# of more words than this, is ranked by best match; fewer words stay all-required.
BEST_MATCH_MIN_TERMS = 4
NATURAL_LANGUAGE_COORD = 0.9
# What a question asks with carries no meaning to match (normalized forms, as the index has them).
QUESTION_WORDS = frozenset(
    {"何", "どこ", "いつ", "誰", "どれ", "どの", "どう", "どのよう", "どのような", "何故", "幾つ", "幾ら", "どちら", "どんな", "言う"}
)
_QUOTES = str.maketrans({"「": '"', "」": '"', "『": '"', "』": '"', "“": '"', "”": '"'})
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
_SYNTAX = re.compile(r'"|(^|\s)[-+]\S|\b(AND|OR|NOT)\b|\b[a-z]+:\S|[()]')


class QueryError(ValueError):
    """The query cannot be searched; the message says why, for the user."""


@dataclass(frozen=True)
class ParsedQuery:
    text: str  # the normalised query string
    query: wq.Query
    natural_language: bool

    def highlight_terms(self) -> frozenset[str]:
        """Index terms worth marking in snippets (negated ones can never be in a hit)."""
        return frozenset(text for _, text in _positive_terms(self.query))


def normalize_query(raw: str) -> str:
    """NFKC (full-width ＯＲ, －, ＂ become operators), Japanese quotes → `"`, no control chars."""
    text = unicodedata.normalize("NFKC", raw).translate(_QUOTES)
    text = _CONTROL.sub(" ", text)
    return " ".join(text.split())


def parse_query(raw: str, schema: Schema) -> ParsedQuery:
    if raw is None or not raw.strip():
        raise QueryError("the query is empty: type one or more words")
    if len(raw) > MAX_QUERY_CHARS:
        raise QueryError(f"the query is too long ({len(raw):,} characters; at most {MAX_QUERY_CHARS:,})")
    text = normalize_query(raw)
    if not text:
        raise QueryError("the query has no searchable characters")
    if not _SYNTAX.search(text):
        found = list(terms(text))
        if not found:
            raise QueryError(
                "the query has no searchable words (particles and punctuation are not indexed)"
            )
        if _is_sentence(text, found) or len(found) > BEST_MATCH_MIN_TERMS:
            words = list(dict.fromkeys(t.text for t in found if t.text not in QUESTION_WORDS))
            words = words or [t.text for t in found]
            if len(words) >= BEST_MATCH_MIN_TERMS:
                return ParsedQuery(text, _best_match_query(words), natural_language=True)
            return ParsedQuery(text, wq.And([_any_field(word) for word in words]), natural_language=False)
    parser = MultifieldParser(list(TEXT_FIELDS), schema, group=AndGroup)
    parser.add_plugin(PlusMinusPlugin())
    parser.remove_plugin_class(WildcardPlugin)  # ？ and ＊ are punctuation in Japanese text
    try:
        query = parser.parse(text)
    except Exception as error:  # Whoosh raises assorted types for odd input
        raise QueryError(f"could not understand the query: {error}") from None
    query = query.normalize()
    if query is wq.NullQuery:
        raise QueryError(
            "the query has no searchable words (particles and punctuation are not indexed)"
        )
    return ParsedQuery(text, query, natural_language=False)


def _is_sentence(text: str, found: list) -> bool:
    """Words joined by particles or other kana/kanji (日本の首都), not a compound (輸出規制).

    Gaps of symbols only (COVID-19) or at the ends (H200?) do not make a sentence.
    """
    return any(
        any(unicodedata.category(ch).startswith("L") for ch in text[before.end:after.start])
        for before, after in zip(found, found[1:])
        if not text[before.end:after.start].isspace()
    )


def _any_field(word: str) -> wq.Query:
    return wq.Or([wq.Term(field, word) for field in TEXT_FIELDS])


def _best_match_query(words: list[str]) -> wq.Query:
    return wq.Or([_any_field(word) for word in words], scale=NATURAL_LANGUAGE_COORD)


def _positive_terms(query: wq.Query) -> Iterator[tuple[str, str]]:
    if isinstance(query, wq.Not):
        return
    if isinstance(query, wq.AndNot):
        yield from _positive_terms(query.a)
        return
    if query.is_leaf():
        yield from query.terms(phrases=True)
        return
    for child in query.children():
        yield from _positive_terms(child)
