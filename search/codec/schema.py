"""The Whoosh schema: one document per article section, carrying its article's fields.

Text fields share the Japanese analyzer and turn an unspaced multi-term word into a phrase
(`multitoken_query="phrase"`), so 輸出規制 means 輸出 directly followed by 規制.

Four more fields index the same text (title, heading and body together) differently, each to
be matched with less weight than the words themselves (see `query/parse.py`):
- `parts`: Sudachi's finest units (mode A) of the words that have them, so ロビー finds ロビー活動;
  Whoosh has no position length, so the sub-units live beside the whole words, not among them;
- `synonyms`: dictionary synonym groups (米国 ↔ アメリカ, スマホ ↔ スマートフォン);
- `fallback`: character bigrams of katakana runs, for names the dictionary lacks;
- `reading`: each word's reading in katakana at the word's position, for a query typed in
  hiragana (せるじお finds セルジオ).

Two fields are only counted and filtered by, never scored (no lengths, no effect on ranking):
`people` and `places`, the person and place names Sudachi tags in the same text (香川 + 真司
written together are one name, 香川真司), each once per section.

One more is never searched: `synonym_words` lists which words of each synonym group the corpus
uses (`g62:米国`), for swapping a synonym into a query's compound (`IndexLexicon.variants`).
"""

from __future__ import annotations

from datetime import datetime
from typing import TypeVar

from whoosh.fields import DATETIME, ID, KEYWORD, NUMERIC, STORED, TEXT, FieldType, Schema

from ..analysis.sudachi import (
    NAME_FIELDS,
    TEXT_SEPARATOR,
    CharBigramTokenizer,
    JapaneseAnalyzer,
    NameTokenizer,
    ReadingTokenizer,
    SudachiTokenizer,
    SynonymGroupTokenizer,
    SynonymWordTokenizer,
)
from ..sources.articles import Article
from .postings import ArrayPositions, TermCounts

# BM25F field weights: a word in the title or a heading says more about a section than the body.
FIELD_BOOSTS = {"title": 2.0, "heading": 1.5, "body": 1.0}
TEXT_FIELDS = tuple(FIELD_BOOSTS)
EXTRA_FIELDS = ("parts", "synonyms", "fallback", "reading", "synonym_words")


def build_schema() -> Schema:
    analyzer = JapaneseAnalyzer()

    def text_field(name: str) -> TEXT:
        return _array_positions(
            TEXT(
                analyzer=analyzer,
                stored=True,
                phrase=True,
                field_boost=FIELD_BOOSTS[name],
                multitoken_query="phrase",
            )
        )

    return Schema(
        section_id=STORED(),  # only shown: sections are replaced and found by article_id
        article_id=ID(stored=True),
        section_number=NUMERIC(stored=True, sortable=True),
        title=text_field("title"),
        heading=text_field("heading"),
        body=text_field("body"),
        parts=_array_positions(
            TEXT(analyzer=SudachiTokenizer("A", compound_parts_only=True), phrase=True, multitoken_query="phrase")
        ),
        synonyms=_with_format(TEXT(analyzer=SynonymGroupTokenizer(), phrase=False), TermCounts),
        synonym_words=_with_format(TEXT(analyzer=SynonymWordTokenizer(), phrase=False), TermCounts),
        fallback=_array_positions(TEXT(analyzer=CharBigramTokenizer(), phrase=True, multitoken_query="phrase")),
        reading=_array_positions(TEXT(analyzer=ReadingTokenizer(), phrase=True, multitoken_query="phrase")),
        **{name: _with_format(KEYWORD(analyzer=NameTokenizer(name)), TermCounts) for name in NAME_FIELDS},
        date=DATETIME(stored=True, sortable=True),
        source=ID(stored=True, sortable=True),
        category=ID(stored=True, sortable=True),
        url=STORED(),
    )


def _array_positions(field: TEXT) -> TEXT:
    """Positions kept as `ArrayPositions` keeps them: read as arrays, not unpickled."""
    return _with_format(field, ArrayPositions)


F = TypeVar("F", bound=FieldType)


def _with_format(field: F, format_class) -> F:
    field.format = format_class(field_boost=field.format.field_boost)
    return field


def section_documents(article: Article) -> list[dict]:
    """The Whoosh documents for an article, one per section, in the article's order."""
    common: dict[str, str | datetime] = {
        "article_id": article.id,
        "title": article.title,
        "source": article.source,
        "category": article.category,
        "url": article.url,
    }
    if article.date is not None:
        common["date"] = article.date
    documents = []
    for number, section in enumerate(article.sections, start=1):
        # Each part is analysed once (cached) for the word fields and the fields below.
        whole = TEXT_SEPARATOR.join((article.title, section.heading, section.text))
        documents.append(
            {
                **common,
                "section_id": article.section_id(number),
                "section_number": number,
                "heading": section.heading,
                "body": section.text,
                **dict.fromkeys((*EXTRA_FIELDS, *NAME_FIELDS), whole),
            }
        )
    return documents
