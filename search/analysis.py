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

import os
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass

from sudachipy import Dictionary, SplitMode
from whoosh.analysis import Token, Tokenizer

# Sudachi refuses input over 49,149 bytes; stay well below it, cutting at sentence ends.
MAX_CHUNK_BYTES = 40_000
DROPPED_POS = frozenset({"助詞", "助動詞", "補助記号", "空白", "記号"})
# Light verbs that carry grammar, not meaning (承認し**た**, 行って**いる**): as common as particles.
LIGHT_VERBS = frozenset({"為る", "居る", "有る", "成る", "下さる", "仕舞う", "御座る"})
_SPLIT_MODES = {"A": SplitMode.A, "B": SplitMode.B, "C": SplitMode.C}
_CHUNK_BREAK = re.compile(r"(?<=[。！？!?\n])")

_dictionary: Dictionary | None = None
_dictionary_pid: int | None = None
_dictionary_lock = threading.Lock()
_local = threading.local()


def _sudachi_dictionary() -> Dictionary:
    """One dictionary per process (re-opened after a fork: its memory map is not fork-safe)."""
    global _dictionary, _dictionary_pid
    with _dictionary_lock:
        if _dictionary is None or _dictionary_pid != os.getpid():
            _dictionary = Dictionary(dict="core")
            _dictionary_pid = os.getpid()
        return _dictionary


def _thread_tokenizer(mode: str):
    """This thread's Sudachi tokenizer and content-POS matcher for `mode`."""
    cache = getattr(_local, "tokenizers", None)
    if cache is None or _local.pid != os.getpid():
        cache = _local.tokenizers = {}
        _local.pid = os.getpid()
    if mode not in cache:
        dictionary = _sudachi_dictionary()
        cache[mode] = (
            dictionary.tokenizer(mode=_SPLIT_MODES[mode]),
            dictionary.pos_matcher(lambda pos: pos[0] not in DROPPED_POS),
        )
    return cache[mode]


@dataclass(frozen=True, slots=True)
class Term:
    """One index term and the original characters [start, end) it came from."""

    text: str
    start: int
    end: int
    synonym_groups: tuple[int, ...] = ()


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


def _is_ascii_alnum(text: str) -> bool:
    return text.isascii() and text.isalnum()


def terms(text: str, mode: str = "C", with_synonyms: bool = False) -> Iterator[Term]:
    """The index terms of `text` in order, with offsets into `text`."""
    tokenizer, is_content = _thread_tokenizer(mode)
    for offset, piece in chunks(text):
        pending: Term | None = None
        for morpheme in tokenizer.tokenize(piece):
            normalized = morpheme.normalized_form()
            if not is_content(morpheme) or normalized in LIGHT_VERBS:
                if pending:
                    yield pending
                    pending = None
                continue
            term = Term(
                normalized.lower(),
                offset + morpheme.begin(),
                offset + morpheme.end(),
                tuple(morpheme.synonym_group_ids()) if with_synonyms else (),
            )
            if (
                pending is not None
                and pending.end == term.start
                and _is_ascii_alnum(pending.text)
                and _is_ascii_alnum(term.text)
            ):
                pending = Term(pending.text + term.text, pending.start, term.end)
                continue
            if pending:
                yield pending
            pending = term
        if pending:
            yield pending


class SudachiTokenizer(Tokenizer):
    """Whoosh tokenizer over `terms()`: positions count index terms only, so phrases skip particles."""

    def __init__(self, mode: str = "C"):
        if mode not in _SPLIT_MODES:
            raise ValueError(f"Sudachi split mode must be A, B or C, not {mode!r}")
        self.mode = mode

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
        for position, term in enumerate(terms(value, self.mode), start=start_pos):
            token.text = term.text
            token.boost = 1.0
            token.stopped = False
            if keeporiginal:
                token.original = value[term.start:term.end]
            if positions:
                token.pos = position
            if chars:
                token.startchar = start_char + term.start
                token.endchar = start_char + term.end
            yield token


def JapaneseAnalyzer(mode: str = "C") -> SudachiTokenizer:
    """The analyzer every text field uses (a factory, like Whoosh's StandardAnalyzer)."""
    return SudachiTokenizer(mode)
