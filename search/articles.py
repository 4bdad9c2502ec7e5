"""The data model every stage shares: an article and its ordered sections.

Readers produce `Article`s, the indexer turns each `Section` into one Whoosh document, and search
results point back at `section_id`s. Keeping this free of I/O lets every stage be tested alone.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from datetime import datetime

SECTION_SEPARATOR = "#"

# Headings Japanese news writes as lines of their own: ■見出し, ●見出し, and a line that is only 【…】.
_HEADING_LINE = re.compile(r"^\s*(?:[■●◆▼◇□○]\s*(?P<mark>\S.{0,60})|【(?P<bracket>[^】]{1,40})】)\s*$")
_SENTENCE_END = re.compile(r"(?<=[。！？!?])")
TARGET_SECTION_CHARS = 400
MAX_SECTION_CHARS = 1200


@dataclass(frozen=True)
class Section:
    """One heading's worth of an article: the unit we index and rank."""

    heading: str
    text: str


@dataclass
class Article:
    """An article as read from the corpus, before analysis."""

    id: str
    title: str
    sections: list[Section]
    date: datetime | None = None
    source: str = ""
    url: str = ""
    category: str = ""
    path: str = ""  # where it was read from, for error messages and `midashi stats`
    extra: dict[str, str] = field(default_factory=dict)
    source_digest: str = ""  # a digest of the bytes it was read from, when a reader has one (JSON Lines)

    def section_id(self, number: int) -> str:
        """Stable id of the `number`-th section (counted from 1)."""
        return f"{self.id}{SECTION_SEPARATOR}{number}"

    def content_hash(self) -> str:
        """Digest of everything that reaches the index: a changed hash means reindex this article.

        The digest of its source bytes when the reader kept one: cheaper than re-serialising it.
        """
        if self.source_digest:
            return self.source_digest
        payload = {
            "title": self.title,
            "date": self.date.isoformat() if self.date else None,
            "source": self.source,
            "url": self.url,
            "category": self.category,
            "sections": [[s.heading, s.text] for s in self.sections],
        }
        encoded = json.dumps(payload, ensure_ascii=False, sort_keys=True).encode("utf-8")
        return hashlib.blake2b(encoded, digest_size=16).hexdigest()


def heading_of_line(line: str) -> str | None:
    """The heading text if `line` is a news-style heading line (■…, ●…, 【…】), else None."""
    match = _HEADING_LINE.match(line)
    if not match:
        return None
    return (match.group("mark") or match.group("bracket")).strip()


def split_sentences(text: str) -> list[str]:
    """Cut after 。！？ (and ASCII !?), keeping the punctuation with its sentence."""
    return [s for s in _SENTENCE_END.split(text) if s]


def sections_from_paragraphs(lead_heading: str, paragraphs: list[str]) -> list[Section]:
    """Cut unheaded text into readable sections of a few hundred characters.

    Paragraphs are joined until a section reaches ~TARGET_SECTION_CHARS; a news heading line starts
    a new section under that heading. A single paragraph longer than MAX_SECTION_CHARS is cut at
    sentence ends, never mid-sentence.
    """
    sections: list[Section] = []
    heading = lead_heading
    buffer: list[str] = []

    def flush() -> None:
        if buffer:
            sections.append(Section(heading, "\n".join(buffer)))
            buffer.clear()

    for paragraph in paragraphs:
        first_line, _, rest = paragraph.partition("\n")
        new_heading = heading_of_line(first_line)
        if new_heading is not None:
            flush()
            heading = new_heading
            paragraph = rest.strip()
            if not paragraph:
                continue
        for piece in _cut_long(paragraph):
            if buffer and sum(len(p) for p in buffer) + len(piece) > TARGET_SECTION_CHARS:
                flush()
            buffer.append(piece)
    flush()
    return sections


def _cut_long(paragraph: str) -> list[str]:
    """Split a paragraph over MAX_SECTION_CHARS into sentence-aligned pieces of ~TARGET chars."""
    if len(paragraph) <= MAX_SECTION_CHARS:
        return [paragraph]
    pieces: list[str] = []
    current = ""
    for sentence in split_sentences(paragraph):
        if current and len(current) + len(sentence) > TARGET_SECTION_CHARS:
            pieces.append(current)
            current = ""
        current += sentence
    if current:
        pieces.append(current)
    return pieces
