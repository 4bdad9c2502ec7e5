"""Snippets: up to three sentence-aligned fragments around the matches, ready for HTML or a terminal.

Built on Whoosh's highlighting pipeline (mark matched tokens, fragment, pick the best fragments
in text order). Tokens are marked by the query's `HighlightSpec`, so synonyms, sub-units and
fallback matches light up too. Two pieces are our own:
`SentenceFragmenter` cuts at 。！？ and keeps long sentences to a window around their matches,
and `SegmentFormatter` returns plain (text, is_match) segments, so HTML escaping and terminal
emphasis are each done once, in `Snippet`, and nothing but our `<mark>` is ever markup.

A cut never falls inside a word: a window of a long sentence starts and ends at a clause break
(after 、 or a closing bracket, before an opening one) where one is near, else where a content
word begins (Sudachi's analysis, so a verb keeps its ending: 行われた, not 行わ). A fragment that
is cut carries its own `…`, and fragments join with one `…` between them, never two.
"""

from __future__ import annotations

import bisect
import html
import re
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
FRAGMENT_GAP = " … "
# A sentence ends at 。！？ unless a closing bracket or a particle follows (「勝った！」と語った is
# one sentence: a fragment never starts at 」と), or at a line end.
_SENTENCE_END = re.compile(r"[。！？!?]++(?![」』）)\]ぁ-ゖ])|\n")
# Where a window may start or end inside a sentence without cutting a word: after a comma or a
# blank, after a closing bracket unless a particle or punctuation follows (」と述べた, 」、),
# before an opening bracket. Not after an ASCII colon (a URL's, a time's) nor a digit group's comma.
_CLAUSE_BREAK = re.compile(
    r"(?<=[、，；：\s])|(?<=,)(?!\d)|(?<=[」』）)】〕])(?![ぁ-ゖ、，,。．」』）)】〕])|(?=[「『（(【〔])"
)
# A window's edge moves at most this far (in characters) to reach a clause break rather than a
# word start: beyond it the match would lose most of its context.
CLAUSE_REACH = 30

Segment = tuple[str, bool]  # (text, is it a match)


@dataclass(frozen=True)
class Snippet:
    """Fragments of (text, matched) segments; cut text carries its own `…` segment."""

    fragments: tuple[tuple[Segment, ...], ...]

    def render(self, mark, plain=lambda text: text, separator: str = FRAGMENT_GAP) -> str:
        """The fragments joined by `separator`; where a fragment is cut at the join its own `…`
        already says so, and the join is a blank (「出た… 不愉快な」, not 「出… … 不愉快」), as it is
        next to the text's own ellipsis (「親戚……。」, 「…でも」)."""
        shown: list[str] = []
        previous_cut = False
        for fragment in self.fragments:
            if shown:
                cut_here = previous_cut or fragment[0][0].startswith(ELLIPSIS)
                if previous_cut and fragment[0] == (ELLIPSIS, False):
                    fragment = fragment[1:]
                shown.append(" " if cut_here else separator)
            shown.append("".join(mark(text) if matched else plain(text) for text, matched in fragment))
            previous_cut = bool(fragment) and fragment[-1][0].rstrip("。").endswith(ELLIPSIS)
        return "".join(shown)

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
        self._word_starts: list[int] = []

    def fragment_tokens(self, text, tokens):
        tokens = list(tokens)
        self._word_starts = [t.startchar for t in tokens]
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
        """About `maxchars` of the sentence [start, end) around `group`, a third of the spare room
        before it; both edges moved to a clause break or a word start (`window_edge`)."""
        first, last = group[0].startchar, group[-1].endchar
        context = max(self.maxchars - (last - first), 0) // 3
        window_start = window_edge(text, self._word_starts, max(start, first - context), first, forward=True)
        window_end = window_edge(text, self._word_starts, last, min(end, window_start + self.maxchars), forward=False)
        return highlight.Fragment(text, group, window_start, window_end)


def window_edge(text: str, word_starts: list[int], low: int, high: int, forward: bool) -> int:
    """Where in [low, high] a window's edge goes without cutting a word. A window's start
    (`forward`) takes the earliest clause break within CLAUSE_REACH of `low`, else the first word
    start; its end the latest clause break within CLAUSE_REACH of `high`, else the last word start
    (the words before it kept whole, endings and particles too). An edge that is a sentence's own
    edge stays: no search moves it."""
    if low >= high:
        return high if forward else low
    if forward:
        if _is_edge(text, low):
            return low
        reach = text[low : min(high, low + CLAUSE_REACH)]
        clause = next((m.start() for m in _CLAUSE_BREAK.finditer(reach) if m.start() > 0), None)
        if clause is not None:
            return low + clause
        i = bisect.bisect_left(word_starts, low)
        return word_starts[i] if i < len(word_starts) and word_starts[i] <= high else high
    if _is_edge(text, high):
        return high
    reach_start = max(low, high - CLAUSE_REACH)
    breaks = [m.start() for m in _CLAUSE_BREAK.finditer(text[reach_start:high]) if m.start() > 0]
    if breaks:
        return reach_start + breaks[-1]
    i = bisect.bisect_right(word_starts, high) - 1
    return word_starts[i] if i >= 0 and word_starts[i] >= low else low


def _is_edge(text: str, position: int) -> bool:
    """Whether `position` is the text's start or end, or follows a sentence end or a blank."""
    return position <= 0 or position >= len(text) or bool(_SENTENCE_END.match(text[position - 1]))


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
        if parts and not parts[0][1]:
            parts[0] = (parts[0][0].lstrip(), False)
        if parts and not parts[-1][1]:
            parts[-1] = (parts[-1][0].rstrip(), False)
        if start > 0 and not _SENTENCE_END.match(text[start - 1]):
            parts.insert(0, (ELLIPSIS, False))
        if end < len(text) and not _SENTENCE_END.match(text[end - 1]):
            parts.append((ELLIPSIS, False))
        return tuple(part for part in parts if part[0])


def _tokens(text: str, spec: HighlightSpec) -> list[Token]:
    """Whoosh tokens of `text`: its words (where a window may start), and one matched token for
    each span the query's highlight spec marks (`HighlightSpec.spans`), in text order."""
    words = [_token(text, term.start, term.end, False) for term in terms(text)]
    marks = [_token(text, start, end, True) for start, end in spec.spans(text)]
    return sorted(words + marks, key=lambda token: (token.startchar, token.matched))


def _token(text: str, start: int, end: int, matched: bool) -> Token:
    token = Token(chars=True)
    token.text, token.startchar, token.endchar, token.matched = text[start:end], start, end, matched
    return token


def make_snippet(text: str, spec: HighlightSpec) -> Snippet:
    """Up to three fragments of `text` around what the query matched.

    Without any match (the section matched by its title, say) the opening of the text stands in,
    so every hit shows something to read. Only the first SNIPPET_SCAN_CHARS are looked at.
    """
    return short_snippet(text, spec, MAX_FRAGMENTS, FRAGMENT_CHARS)


def short_snippet(text: str, spec: HighlightSpec, fragments: int, chars: int) -> Snippet:
    """`make_snippet` with at most `fragments` fragments of at most `chars` characters each (a
    result's other sections show one short line each)."""
    scanned = _scanned(text)
    tokens = list(_tokens(scanned, spec))
    found = SentenceFragmenter(chars).fragment_tokens(scanned, tokens)
    best = highlight.top_fragments(found, fragments, highlight.BasicFragmentScorer(), highlight.FIRST)
    snippet = SegmentFormatter().format(best)
    if snippet.has_match():
        return snippet
    return _opening(scanned, [token.startchar for token in tokens], chars)


def lead(text: str, chars: int) -> str:
    """The opening of `text` in at most `chars` characters, cut between words (a table of
    contents names a section without a heading by it)."""
    opening = text[: chars * 2]
    return _opening(opening, [term.start for term in terms(opening)], chars).text()


def _opening(text: str, word_starts: list[int], chars: int) -> Snippet:
    """The text's opening, up to `chars` characters: whole sentences if one ends in the second
    half of that, else cut at a clause break or a word start (`window_edge`), then `…`."""
    offset = len(text) - len(text.lstrip())  # word starts count from the text as given
    text = text.strip()
    if len(text) <= chars:
        return Snippet((((text, False),),) if text else ())
    ends = [m.end() for m in _SENTENCE_END.finditer(text, chars // 2, chars)]
    if ends:
        return Snippet((((text[: ends[-1]].strip(), False),),))
    starts = [start - offset for start in word_starts]
    cut = window_edge(text, starts, chars // 2, chars, forward=False)
    return Snippet((((text[:cut].rstrip(), False), (ELLIPSIS, False)),))


def mark_whole(text: str, spec: HighlightSpec | None) -> Snippet:
    """All of a short text (a title, a heading) with its matches marked; nothing marked without a
    spec (a batch run reads only the ids, and marking a hundred titles is half its time)."""
    spans = [] if spec is None else spec.spans(_scanned(text))
    return Snippet((tuple(segments(text, spans)),))


def _scanned(text: str) -> str:
    """The part of `text` a snippet analyses: all of it, or its opening cut at a break."""
    return text if len(text) <= SNIPPET_SCAN_CHARS else cut_text(text, SNIPPET_SCAN_CHARS)[0]
