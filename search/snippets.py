"""Snippets: up to three sentence-aligned fragments around the matches, ready for HTML or a terminal.

Built on Whoosh's highlighting pipeline (mark matched tokens, fragment, pick the best fragments
in text order). Tokens are marked by the query's `HighlightSpec`, so synonyms, sub-units and
fallback matches light up too. Two pieces are our own:
`SentenceFragmenter` cuts at 。！？ and keeps long sentences to a window around their matches,
and `SegmentFormatter` returns plain (text, is_match) segments, so HTML escaping and terminal
emphasis are each done once, in `Snippet`, and nothing but our `<mark>` is ever markup.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from dataclasses import dataclass

from whoosh import highlight
from whoosh.analysis import Token

from .analysis.sudachi import terms
from .query.parse import HighlightSpec
from .sources.articles import cut_text

MAX_FRAGMENTS = 3
FRAGMENT_CHARS = 120
# The most of one text a snippet analyses: its opening. A reader cuts sections far shorter, but an
# index may hold a longer one (an older index, a feed's own sections), and analysing megabytes for
# a snippet costs seconds and gigabytes.
SNIPPET_SCAN_CHARS = 12_000
ELLIPSIS = "…"
_SENTENCE_END = re.compile(r"[。！？!?]+|\n")

Segment = tuple[str, bool]  # (text, is it a match)


@dataclass(frozen=True)
class Snippet:
    """Fragments of (text, matched) segments; cut text carries its own `…` segment."""

    fragments: tuple[tuple[Segment, ...], ...]

    def render(self, mark, plain=lambda text: text, separator: str = " … ") -> str:
        return separator.join(
            "".join(mark(text) if matched else plain(text) for text, matched in fragment)
            for fragment in self.fragments
        )

    def html(self) -> str:
        """Escaped text with matches in `<mark>`: the only markup we emit."""
        return self.render(lambda text: f"<mark>{html.escape(text)}</mark>", html.escape)

    def text(self) -> str:
        return self.render(lambda text: text)

    def has_match(self) -> bool:
        return any(matched for fragment in self.fragments for _, matched in fragment)


class SentenceFragmenter(highlight.Fragmenter):
    """One fragment per sentence with matches; a sentence over `maxchars` becomes a window.

    Unlike Whoosh's own SentenceFragmenter it knows Japanese sentence ends and never drops a long
    sentence, and it has no 32,768-character limit: a match at the end of a long article counts.
    """

    def __init__(self, maxchars: int = FRAGMENT_CHARS):
        self.maxchars = maxchars

    def fragment_tokens(self, text, tokens):
        matches = [t.copy() for t in tokens if t.matched]
        if not matches:
            return
        index = 0
        for start, end in _sentences(text):
            in_sentence = []
            while index < len(matches) and matches[index].startchar < end:
                if matches[index].startchar >= start:
                    in_sentence.append(matches[index])
                index += 1
            if in_sentence:
                yield from self._windows(text, start, end, in_sentence)

    def _windows(self, text, start, end, matches):
        """The sentence itself if short enough, else windows of `maxchars` around match groups."""
        if end - start <= self.maxchars:
            yield highlight.Fragment(text, matches, start, end)
            return
        group: list = []
        for match in matches:
            if group and match.endchar - group[0].startchar > self.maxchars:
                yield self._window(text, start, end, group)
                group = []
            group.append(match)
        yield self._window(text, start, end, group)

    def _window(self, text, start, end, group):
        span = group[-1].endchar - group[0].startchar
        context = max(self.maxchars - span, 0) // 3
        window_start = max(start, group[0].startchar - context)
        window_end = min(end, window_start + self.maxchars)
        return highlight.Fragment(text, group, window_start, window_end)


def _sentences(text: str) -> list[tuple[int, int]]:
    spans, start = [], 0
    for match in _SENTENCE_END.finditer(text):
        if match.end() > start:
            spans.append((start, match.end()))
        start = match.end()
    if start < len(text):
        spans.append((start, len(text)))
    return spans


def segments(text: str, spans, start: int = 0, end: int | None = None) -> list[Segment]:
    """`text[start:end]` cut into unmatched and matched segments; touching matches merge (安全保障)."""
    end = len(text) if end is None else end
    result: list[Segment] = []
    position = start
    for span_start, span_end in spans:
        span_end = min(span_end, end)
        if span_start < position or span_start >= end:
            continue
        if span_start > position:
            result.append((text[position:span_start], False))
        elif result and result[-1][1]:
            result[-1] = (result[-1][0] + text[span_start:span_end], True)
            position = span_end
            continue
        result.append((text[span_start:span_end], True))
        position = span_end
    if position < end:
        result.append((text[position:end], False))
    return result


class SegmentFormatter(highlight.Formatter):
    """Whoosh formatter that returns a `Snippet` instead of a string."""

    def format(self, fragments, replace=False):
        return Snippet(tuple(self._fragment(fragment) for fragment in fragments))

    @staticmethod
    def _fragment(fragment) -> tuple[Segment, ...]:
        text, start, end = fragment.text, fragment.startchar, fragment.endchar
        spans = [(token.startchar, token.endchar) for token in fragment.matches]
        parts = [(t.strip("\n") if not matched else t, matched) for t, matched in segments(text, spans, start, end)]
        if start > 0 and not _SENTENCE_END.match(text[start - 1]):
            parts.insert(0, (ELLIPSIS, False))
        if end < len(text) and not _SENTENCE_END.match(text[end - 1]):
            parts.append((ELLIPSIS, False))
        return tuple(part for part in parts if part[0])


def _tokens(text: str, spec: HighlightSpec) -> Iterator[Token]:
    """Whoosh tokens of `text` with `matched` set by the query's highlight spec."""
    for term in terms(text):
        token = Token(chars=True)
        token.text, token.startchar, token.endchar = term.text, term.start, term.end
        token.matched = spec.matches(term)
        yield token


def make_snippet(text: str, spec: HighlightSpec) -> Snippet:
    """Up to three fragments of `text` around what the query matched.

    Without any match (the section matched by its title, say) the opening of the text stands in,
    so every hit shows something to read. Only the first SNIPPET_SCAN_CHARS are looked at.
    """
    scanned = _scanned(text)
    fragments = SentenceFragmenter().fragment_tokens(scanned, _tokens(scanned, spec))
    best = highlight.top_fragments(fragments, MAX_FRAGMENTS, highlight.BasicFragmentScorer(), highlight.FIRST)
    snippet = SegmentFormatter().format(best)
    if snippet.has_match():
        return snippet
    opening = text[:FRAGMENT_CHARS].strip()
    if not opening:
        return Snippet(())
    tail = ((ELLIPSIS, False),) if len(text) > FRAGMENT_CHARS else ()
    return Snippet((((opening, False), *tail),))


def mark_whole(text: str, spec: HighlightSpec | None) -> Snippet:
    """All of a short text (a title, a heading) with its matches marked; nothing marked without a
    spec (a batch run reads only the ids, and marking a hundred titles is half its time)."""
    spans = [] if spec is None else [(t.startchar, t.endchar) for t in _tokens(_scanned(text), spec) if t.matched]
    return Snippet((tuple(segments(text, spans)),))


def _scanned(text: str) -> str:
    """The part of `text` a snippet analyses: all of it, or its opening cut at a break."""
    return text if len(text) <= SNIPPET_SCAN_CHARS else cut_text(text, SNIPPET_SCAN_CHARS)[0]
