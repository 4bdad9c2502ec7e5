"""The Whoosh schema: one document per article section, carrying its article's fields.

Text fields share the Japanese analyzer and turn an unspaced multi-term word into a phrase
(`multitoken_query="phrase"`), so 輸出規制 means 輸出 directly followed by 規制.
"""

from __future__ import annotations

from whoosh.fields import DATETIME, ID, NUMERIC, STORED, TEXT, Schema

from .analysis import JapaneseAnalyzer
from .articles import Article

# BM25F field weights: a word in the title or a heading says more about a section than the body.
FIELD_BOOSTS = {"title": 2.0, "heading": 1.5, "body": 1.0}
TEXT_FIELDS = tuple(FIELD_BOOSTS)


def build_schema() -> Schema:
    analyzer = JapaneseAnalyzer()

    def text_field(name: str) -> TEXT:
        return TEXT(
            analyzer=analyzer,
            stored=True,
            phrase=True,
            field_boost=FIELD_BOOSTS[name],
            multitoken_query="phrase",
        )

    return Schema(
        section_id=ID(stored=True, unique=True),
        article_id=ID(stored=True),
        section_number=NUMERIC(stored=True, sortable=True),
        title=text_field("title"),
        heading=text_field("heading"),
        body=text_field("body"),
        date=DATETIME(stored=True, sortable=True),
        source=ID(stored=True, sortable=True),
        category=ID(stored=True, sortable=True),
        url=STORED(),
    )


def section_documents(article: Article) -> list[dict]:
    """The Whoosh documents for an article, one per section, in the article's order."""
    common = {
        "article_id": article.id,
        "title": article.title,
        "source": article.source,
        "category": article.category,
        "url": article.url,
    }
    if article.date is not None:
        common["date"] = article.date
    return [
        {
            **common,
            "section_id": article.section_id(number),
            "section_number": number,
            "heading": section.heading,
            "body": section.text,
        }
        for number, section in enumerate(article.sections, start=1)
    ]
