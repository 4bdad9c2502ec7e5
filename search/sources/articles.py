"""The data model every stage shares: an article and its ordered sections.

Readers produce `Article`s, the indexer turns each `Section` into one Whoosh document, and search
results point back at `section_id`s. Keeping this free of I/O lets every stage be tested alone.
"""

from __future__ import annotations

import hashlib
import json
import re
import unicodedata
from dataclasses import dataclass, field
from datetime import datetime

SECTION_SEPARATOR = "#"

# Headings Japanese news writes as lines of their own: ■見出し, ●見出し, and a line that is only 【…】.
_HEADING_LINE = re.compile(r"^\s*(?:[■●◆▼◇□○]\s*(?P<mark>\S.{0,60})|【(?P<bracket>[^】]{1,40})】)\s*$")
_SENTENCE_END = re.compile(r"(?<=[。！？!?])")
TARGET_SECTION_CHARS = 400
MAX_SECTION_CHARS = 1200
# A feed's own sections (JSON Lines `sections`) are kept as given up to this size; longer ones are
# cut into several sections under the same heading, like unheaded text.
MAX_GIVEN_SECTION_CHARS = 10_000
# A title or heading is one line: a longer one is cut (it is stored and analysed with every section).
MAX_LINE_CHARS = 1_000
MAX_ID_CHARS = 1_000
# Where a run of text with no sentence end is cut, best first: a line end, then a blank or a
# punctuation mark, the cut after it; with none of these in the last part of the window, a hard cut.
_SOFT_BREAKS = (re.compile(r"\n"), re.compile(r"[\s、，,；;：:・）)」』】〕\]]"))


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
    """Split a paragraph over MAX_SECTION_CHARS into sentence-aligned pieces of ~TARGET chars.

    A sentence longer than MAX_SECTION_CHARS (a list, a table, a text with no 。 at all) is cut
    by `cut_text`: every piece stays bounded, whatever the text.
    """
    if len(paragraph) <= MAX_SECTION_CHARS:
        return [paragraph]
    pieces: list[str] = []
    current = ""
    for sentence in split_sentences(paragraph):
        for part in cut_text(sentence, MAX_SECTION_CHARS):
            if current and len(current) + len(part) > TARGET_SECTION_CHARS:
                pieces.append(current)
                current = ""
            current += part
    if current:
        pieces.append(current)
    return pieces


def cut_text(text: str, limit: int) -> list[str]:
    """`text` in consecutive pieces of at most `limit` characters that join back into it.

    Each cut falls after the last line end in the window's second half, else after the last blank
    or punctuation mark there, else at the limit itself (a text with none of them).
    """
    if len(text) <= limit:
        return [text]
    pieces: list[str] = []
    start = 0
    while len(text) - start > limit:
        end = start + limit
        pieces.append(text[start : _cut_point(text, start + limit // 2, end)])
        start += len(pieces[-1])
    pieces.append(text[start:])
    return pieces


def _cut_point(text: str, earliest: int, end: int) -> int:
    """Where to cut `text` at or before `end` and after `earliest`: see `cut_text`."""
    for pattern in _SOFT_BREAKS:
        last = None
        for last in pattern.finditer(text, earliest, end):  # noqa: B007 - keeps the last match
            pass
        if last is not None:
            return last.end()
    return end


def bounded_line(text: str, limit: int = MAX_LINE_CHARS) -> str:
    """A title or heading cut to `limit` characters (at a blank or punctuation where it can be)."""
    return cut_text(text, limit)[0].strip() if len(text) > limit else text


def bounded_sections(sections: list[Section], limit: int = MAX_GIVEN_SECTION_CHARS) -> list[Section]:
    """Sections as given, except that one longer than `limit` becomes several under its heading."""
    bounded: list[Section] = []
    for section in sections:
        heading = bounded_line(section.heading)
        if len(section.text) <= limit and heading == section.heading:
            bounded.append(section)
        elif len(section.text) <= limit:
            bounded.append(Section(heading, section.text))
        else:
            paragraphs = [p.strip() for p in section.text.split("\n") if p.strip()]
            bounded.extend(sections_from_paragraphs(heading, paragraphs))
    return bounded


_ID_REPLACEMENTS = str.maketrans({"\\": "/", "#": "＃", "?": "？"})


def safe_article_id(raw: str) -> str:
    """An id that shows safely as a URL path and never collides with a section id.

    The rule (README, "Corpus formats"): control characters are dropped, `\\` counts as `/`,
    `#` and `?` become their full-width forms ＃ and ？ (`#` separates a section's number, `?`
    would start a URL's query), and the id is cut into its `/` parts, each stripped of blanks,
    with empty, `.` and `..` parts dropped. ValueError when nothing is left or it is too long.
    """
    kept = "".join(ch for ch in raw if unicodedata.category(ch) != "Cc").translate(_ID_REPLACEMENTS)
    parts = [part.strip() for part in kept.split("/")]
    safe = "/".join(part for part in parts if part and part not in (".", ".."))
    if not safe:
        raise ValueError(f"id {raw!r} has no usable characters (ids are / separated names)")
    if len(safe) > MAX_ID_CHARS:
        raise ValueError(f"id longer than {MAX_ID_CHARS:,} characters")
    return safe
