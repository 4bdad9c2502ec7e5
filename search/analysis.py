"""Japanese analysis for Whoosh: SudachiPy morphemes in, index terms out.

A term is Sudachi's normalized form, lowercased (コンピュータ → コンピューター, ＡＩ → ai), with
particles, auxiliary verbs, symbols and blanks dropped. Adjacent Latin/digit morphemes are joined
back into one term (Sudachi splits H200 into H + 200; we keep `h200`, so H200 never matches H20).
Character offsets come from Sudachi and always point into the caller's original text.

Whoosh pickles analyzers into the index schema, so `SudachiTokenizer` holds only its split mode;
the dictionary is opened once per process and a tokenizer once per thread (Sudachi tokenizers are
not thread-safe).
"""

from __future__ import annotations

import functools
import importlib.metadata
import os
import re
import threading
import unicodedata
from collections import OrderedDict
from collections.abc import Iterator
from typing import NamedTuple

from sudachipy import Dictionary, SplitMode
from whoosh.analysis import Token, Tokenizer

# Sudachi refuses input over 49,149 bytes; stay well below it, cutting at sentence ends.
MAX_CHUNK_BYTES = 40_000
DROPPED_POS = frozenset({"助詞", "助動詞", "補助記号", "空白", "記号"})
# Light verbs that carry grammar, not meaning (承認し**た**, 行って**いる**): as common as particles.
LIGHT_VERBS = frozenset({"為る", "居る", "有る", "成る", "下さる", "仕舞う", "御座る"})
_SPLIT_MODES = ("A", "C")
_CHUNK_BREAK = re.compile(r"(?<=[。！？!?\n])")
_BREAK = re.compile(r"[。！？!?\n]")

_dictionary: Dictionary | None = None
_dictionary_pid: int | None = None
_dictionary_lock = threading.Lock()
_local = threading.local()


def analyzer_version() -> str:
    """The Sudachi code and dictionary an index's terms come from.

    A new dictionary splits and normalises some words differently, so an index built with
    another one would miss the terms its queries now produce: a reindex then rebuilds in full.
    """
    versions = (f"{name} {importlib.metadata.version(name)}" for name in ("SudachiPy", "sudachidict-core"))
    return ", ".join(versions)


def _sudachi_dictionary() -> Dictionary:
    """One dictionary per process (re-opened after a fork: its memory map is not fork-safe)."""
    global _dictionary, _dictionary_pid
    with _dictionary_lock:
        if _dictionary is None or _dictionary_pid != os.getpid():
            _dictionary = Dictionary(dict="core")
            _dictionary_pid = os.getpid()
        return _dictionary


def _thread_tokenizer():
    """This thread's Sudachi tokenizer (mode C) and content-POS matcher."""
    cache = getattr(_local, "tokenizer", None)
    if cache is None or _local.pid != os.getpid():
        dictionary = _sudachi_dictionary()
        cache = _local.tokenizer = (
            dictionary.tokenizer(mode=SplitMode.C),
            dictionary.pos_matcher(lambda pos: pos[0] not in DROPPED_POS),
        )
        _local.pid = os.getpid()
    return cache


class Term(NamedTuple):
    """One index term and the original characters [start, end) it came from."""

    text: str
    start: int
    end: int
    synonym_groups: tuple[int, ...] = ()
    in_compound: bool = False  # a mode A unit of a longer mode C word (ロビー of ロビー活動)


def chunks(text: str) -> Iterator[tuple[int, str]]:
    """(offset, piece) pairs covering `text`, each small enough for Sudachi.

    Pieces end at sentence ends (or line ends) where possible, so no word is cut in two.
    """
    if len(text) * 3 <= MAX_CHUNK_BYTES or len(text.encode("utf-8")) <= MAX_CHUNK_BYTES:
        yield 0, text
        return
    offset = 0
    piece: list[str] = []
    size = 0
    for sentence in _CHUNK_BREAK.split(text):
        sentence_size = len(sentence.encode("utf-8"))
        if piece and size + sentence_size > MAX_CHUNK_BYTES:
            joined = "".join(piece)
            yield offset, joined
            offset += len(joined)
            piece, size = [], 0
        while sentence_size > MAX_CHUNK_BYTES:  # one enormous sentence: cut it by characters
            head = sentence[: MAX_CHUNK_BYTES // 4]
            yield offset, head
            offset += len(head)
            sentence = sentence[len(head):]
            sentence_size = len(sentence.encode("utf-8"))
        piece.append(sentence)
        size += sentence_size
    if piece:
        yield offset, "".join(piece)


def _is_ascii_word(text: str) -> bool:
    return text.isascii() and text.replace("-", "").isalnum() and not text.endswith("-")


def terms(text: str, mode: str = "C") -> Iterator[Term]:
    """The index terms of `text` in order, with offsets into `text` (synonym groups in mode C).

    Mode A terms are Sudachi's finest units, split from the same mode C analysis. A section's
    text is analysed by several fields (words, sub-units, synonyms), so the analysis of recent
    texts is cached and Sudachi runs once per text.
    """
    return iter(_analysis(text, mode)[0])


# The analyses of the most recent texts up to this many characters, per thread: a section's
# fields while it is indexed, and the titles and headings of a result list (a hundred hits show
# two hundred of them, and the next query's hits show many of them again).
ANALYSED_CHARS_CACHED = 200_000


def _analysis(text: str, mode: str) -> tuple[tuple[Term, ...], tuple[int, ...]]:
    """`text`'s terms in `mode` and their positions (see `_positions`), from this thread's cache."""
    if mode not in _SPLIT_MODES:
        raise ValueError(f"Sudachi split mode must be A or C, not {mode!r}")
    cache = getattr(_local, "analyses", None)
    if cache is None or _local.analyses_pid != os.getpid():
        cache = _local.analyses = OrderedDict()
        _local.analyses_pid, _local.analysed_chars = os.getpid(), 0
    analysis = cache.get(text)
    if analysis is None:
        analysis = cache[text] = _Analysis(text)
        _local.analysed_chars += len(text)
        while _local.analysed_chars > ANALYSED_CHARS_CACHED and len(cache) > 1:
            dropped, _ = cache.popitem(last=False)
            _local.analysed_chars -= len(dropped)
    else:
        cache.move_to_end(text)
    return analysis.parts if mode == "A" else analysis.words


class _Analysis:
    """One Sudachi pass over a text: its mode C terms at once, and its mode A units (what only
    indexing asks for) split from the same morphemes when first asked for. Kept per thread, as the
    morphemes belong to the thread's tokenizer."""

    def __init__(self, text: str):
        tokenizer, self._is_content = _thread_tokenizer()
        self.text = text
        self._morphemes = [(offset, tokenizer.tokenize(piece)) for offset, piece in chunks(text)]
        found: list[Term] = []
        for offset, morphemes in self._morphemes:
            found += _join_ascii(_units(morphemes, offset, self._is_content, split=False))
        self.words = (tuple(found), _positions(text, found))

    @functools.cached_property
    def parts(self) -> tuple[tuple[Term, ...], tuple[int, ...]]:
        found: list[Term] = []
        for offset, morphemes in self._morphemes:
            found += _join_ascii(_units(morphemes, offset, self._is_content, split=True))
        self._morphemes = ()
        return tuple(found), _positions(self.text, found)


def _units(morphemes, offset: int, is_content, split: bool) -> list[Term | str]:
    """The content morphemes as Terms (with their synonym groups), or split into their mode A
    units; dropped ones as their normalized form, which `_join_ascii` needs to see hyphens and
    gaps."""
    units: list[Term | str] = []
    for morpheme in morphemes:
        normalized = morpheme.normalized_form()
        if not is_content(morpheme) or normalized in LIGHT_VERBS:
            units.append(normalized)
            continue
        start, end = offset + morpheme.begin(), offset + morpheme.end()
        if not split:
            units.append(Term(normalized.lower(), start, end, tuple(morpheme.synonym_group_ids())))
            continue
        pieces = morpheme.split(SplitMode.A) if end - start > 1 else ()  # empty when one unit already
        if not pieces:
            units.append(Term(normalized.lower(), start, end))
            continue
        for unit in pieces:
            form = unit.normalized_form()
            if is_content(unit) and form not in LIGHT_VERBS:
                units.append(Term(form.lower(), offset + unit.begin(), offset + unit.end(), (), True))
            else:
                units.append(form)
    return units


def _positions(text: str, found: list[Term]) -> tuple[int, ...]:
    """Each term's position: one after the last, and one more after a sentence end or a line
    break, so a phrase never spans two sentences. (Positions count index terms only, so phrases
    skip particles.)"""
    breaks = [match.start() for match in _BREAK.finditer(text)]
    positions: list[int] = []
    position, previous_end, index = -1, None, 0
    for term in found:
        position += 1
        gap = False
        while index < len(breaks) and breaks[index] < term.start:
            gap = gap or (previous_end is not None and breaks[index] >= previous_end)
            index += 1
        position += gap
        previous_end = term.end
        positions.append(position)
    return tuple(positions)


def _join_ascii(units: Iterator[Term | str]) -> Iterator[Term]:
    """Join Latin letters and digits written together, with single hyphens inside, into one term
    (H200, 5G, COVID-19): Sudachi splits them, and differently depending on the context."""
    pending: Term | None = None
    hyphen = False  # a "-" directly after an ASCII `pending`, which the next unit may continue
    for unit in units:
        if isinstance(unit, str):
            if unit == "-" and pending and not hyphen and _is_ascii_word(pending.text):
                hyphen = True
                continue
            if pending:
                yield pending
            pending, hyphen = None, False
            continue
        if pending and _is_ascii_word(pending.text) and _is_ascii_word(unit.text):
            gap = unit.start - pending.end
            if gap == 0 or (hyphen and gap == 1):
                text = pending.text + ("-" if gap else "") + unit.text
                pending, hyphen = Term(text, pending.start, unit.end, (), pending.in_compound), False
                continue
        if pending:
            yield pending
        pending, hyphen = unit, False
    if pending:
        yield pending


# Joins the texts of a field fed from several (title, heading, body); Whoosh would take a list
# for pre-split tokens, so the tokenizers split on this instead.
TEXT_SEPARATOR = "\x1e"


class _TermTokenizer(Tokenizer):
    """A tokenizer over `_terms(text)`: (term, position, start, end) of one text.

    A field may be fed several texts joined by TEXT_SEPARATOR: each is analysed on its own (so the
    cached analysis of each is reused), and positions run on across them with a gap, so a phrase
    never spans two texts. Whoosh's analysis calls get tokens; indexing, through our formats
    (`postings.py`), gets each term's positions straight from `term_positions`.
    """

    def _terms(self, text: str) -> Iterator[tuple[str, int, int, int]]:
        raise NotImplementedError

    def stream(self, value: str, start_pos: int = 0, start_char: int = 0) -> Iterator[tuple[str, int, int, int]]:
        """(term, position, start, end) over every text of `value`, offsets into `value`."""
        for text in value.split(TEXT_SEPARATOR):
            last = start_pos
            for term, position, start, end in self._terms(text):
                last = start_pos + position
                yield term, last, start_char + start, start_char + end
            start_pos, start_char = last + 2, start_char + len(text) + 1

    def term_positions(self, value: str) -> dict[str, list[int]]:
        """Each term of `value` and its positions, in order of first occurrence."""
        found: dict[str, list[int]] = {}
        for term, position, _, _ in self.stream(value):
            if term in found:
                found[term].append(position)
            else:
                found[term] = [position]
        return found

    def __call__(
        self,
        value: str,
        positions: bool = False,
        chars: bool = False,
        keeporiginal: bool = False,
        removestops: bool = True,
        start_pos: int = 0,
        start_char: int = 0,
        tokenize: bool = True,
        mode: str = "",
        **kwargs,
    ) -> Iterator[Token]:
        token = Token(positions, chars, removestops=removestops, mode=mode, **kwargs)
        if not tokenize:
            token.original = token.text = value
            token.boost = 1.0
            if positions:
                token.pos = start_pos
            if chars:
                token.startchar, token.endchar = start_char, start_char + len(value)
            yield token
            return
        for term, position, start, end in self.stream(value, start_pos, start_char):
            token.text = term
            token.boost = 1.0
            token.stopped = False
            if keeporiginal:
                token.original = value[start - start_char:end - start_char]
            if positions:
                token.pos = position
            if chars:
                token.startchar, token.endchar = start, end
            yield token


class SudachiTokenizer(_TermTokenizer):
    """Sudachi's terms of a text (`terms()`) in split mode C or A."""

    compound_parts_only = False  # class default: schemas pickled before the option still load

    def __init__(self, mode: str = "C", compound_parts_only: bool = False):
        if mode not in _SPLIT_MODES:
            raise ValueError(f"Sudachi split mode must be A or C, not {mode!r}")
        self.mode = mode
        # In mode A, index only the units of words that split: the rest are in the word fields.
        self.compound_parts_only = compound_parts_only

    def _terms(self, text: str) -> Iterator[tuple[str, int, int, int]]:
        found, positions = _analysis(text, self.mode)
        parts_only = self.compound_parts_only
        for term, position in zip(found, positions):
            if not parts_only or term.in_compound:
                yield term.text, position, term.start, term.end


class SynonymGroupTokenizer(_TermTokenizer):
    """Each term's Sudachi synonym groups as `g<id>` terms: 米国 and アメリカ both give `g62`.

    Indexed in a field of their own, so a synonym match can rank below an exact one.
    """

    def _terms(self, text: str) -> Iterator[tuple[str, int, int, int]]:
        found, positions = _analysis(text, "C")
        for term, position in zip(found, positions):
            for group in term.synonym_groups:
                yield synonym_term(group), position, term.start, term.end


def synonym_term(group: int) -> str:
    return f"g{group}"


# Katakana only: Latin and digits are exact terms already (and h200 must never match h20), and
# kanji bigrams, measured on JaQuAD, would double the index for +0.003 MRR@10 (see the README).
_KATAKANA_RUN = re.compile(r"[\u30a1-\u30fa\u30fc]{2,}")
_HALFWIDTH_KANA = re.compile(r"[\uff61-\uff9f]")


def katakana_runs(text: str) -> Iterator[tuple[list[str], list[tuple[int, int]]]]:
    """Katakana runs of `text`, width-folded, with each character's span.

    Folding is per character (ｴﾇﾋﾞﾃﾞｨｱ → エヌビディア) so every bigram keeps the offsets of the
    original characters it came from.
    """
    if not _HALFWIDTH_KANA.search(text):  # the common case: nothing to fold
        for match in _KATAKANA_RUN.finditer(text):
            yield list(match.group()), [(i, i + 1) for i in range(match.start(), match.end())]
        return
    folded: list[str] = []
    spans: list[tuple[int, int]] = []
    for index, char in enumerate(text):
        char = unicodedata.normalize("NFKC", char).lower()
        if char in ("\u3099", "\u309a", "\u309b", "\u309c") and folded:  # (semi-)voiced mark
            mark = {"\u309b": "\u3099", "\u309c": "\u309a"}.get(char, char)
            folded[-1] = unicodedata.normalize("NFC", folded[-1] + mark)
            spans[-1] = (spans[-1][0], index + 1)
            continue
        folded.append(char if len(char) == 1 else " ")
        spans.append((index, index + 1))
    for match in _KATAKANA_RUN.finditer("".join(folded)):
        yield folded[match.start():match.end()], spans[match.start():match.end()]


def is_katakana_word(text: str) -> bool:
    """A word written in katakana only (width-folded), such as a name the dictionary lacks."""
    runs = list(katakana_runs(text))
    return len(runs) == 1 and runs[0][1][0][0] == 0 and runs[0][1][-1][1] == len(text)


def char_bigrams(text: str) -> Iterator[tuple[str, int, int, int]]:
    """(bigram, position, start, end) of each pair of adjacent characters in a katakana run of
    `text`: a run's bigrams have consecutive positions and runs are kept apart, so a phrase of
    bigrams matches the run's characters in order and never across two runs."""
    position = 0
    for run, spans in katakana_runs(text):
        for offset in range(len(run) - 1):
            yield run[offset] + run[offset + 1], position, spans[offset][0], spans[offset + 1][1]
            position += 1
        position += 1


class CharBigramTokenizer(_TermTokenizer):
    """Character bigrams of katakana runs (`char_bigrams`): a dictionary-free fallback for new
    names and coinages."""

    def _terms(self, text: str) -> Iterator[tuple[str, int, int, int]]:
        return char_bigrams(text)


def JapaneseAnalyzer(mode: str = "C") -> SudachiTokenizer:
    """The analyzer every text field uses (a factory, like Whoosh's StandardAnalyzer)."""
    return SudachiTokenizer(mode)
