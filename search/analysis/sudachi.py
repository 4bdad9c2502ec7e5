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

import bisect
import functools
import importlib.metadata
import itertools
import operator
import os
import re
import threading
import unicodedata
import weakref
from collections import OrderedDict
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import NamedTuple

from sudachipy import Dictionary, SplitMode
from whoosh.analysis import Token, Tokenizer

from .. import memory
from ..sources.articles import cut_text

# Sudachi refuses input over 49,149 bytes; stay well below it, cutting at sentence ends.
MAX_CHUNK_BYTES = 40_000
DROPPED_POS = frozenset({"助詞", "助動詞", "補助記号", "空白", "記号"})
# Light verbs that carry grammar, not meaning (承認し**た**, 行って**いる**): as common as particles.
LIGHT_VERBS = frozenset({"為る", "居る", "有る", "成る", "下さる", "仕舞う", "御座る"})
_SPLIT_MODES = ("A", "C")
_BREAK = re.compile(r"[。！？!?\n]")

_dictionary: Dictionary | None = None
_dictionary_lock = threading.Lock()
_local = threading.local()


def _forget_parent_sudachi() -> None:
    """In a forked child: open Sudachi's dictionary again (its memory map is not fork-safe), and
    with it every tokenizer and analysis, on first use. Done once at the fork, not checked on
    every call: `os.getpid()` is a system call, and analysis asks for the cache on every field."""
    global _dictionary, _dictionary_lock, _local, _caches, _caches_lock
    _dictionary, _dictionary_lock, _local = None, threading.Lock(), threading.local()
    _caches, _caches_lock = weakref.WeakValueDictionary(), threading.Lock()


os.register_at_fork(after_in_child=_forget_parent_sudachi)


def analyzer_version() -> str:
    """The Sudachi code and dictionary an index's terms come from.

    A new dictionary splits and normalises some words differently, so an index built with
    another one would miss the terms its queries now produce: a reindex then rebuilds in full.
    """
    versions = (f"{name} {importlib.metadata.version(name)}" for name in ("SudachiPy", "sudachidict-core"))
    return ", ".join(versions)


def dictionary_bytes() -> int:
    """The size of Sudachi's system dictionary file (0 if it cannot be found): a process maps it,
    and over many texts reads most of it into its memory."""
    try:
        import sudachidict_core

        return (Path(sudachidict_core.__file__).parent / "resources" / "system.dic").stat().st_size
    except (ImportError, OSError):
        return 0


def _sudachi_dictionary() -> Dictionary:
    """One dictionary per process."""
    global _dictionary
    with _dictionary_lock:
        if _dictionary is None:
            _dictionary = Dictionary(dict="core")
        return _dictionary


def _thread_tokenizer():
    """This thread's Sudachi tokenizer (mode C) and content-POS matcher."""
    cache = getattr(_local, "tokenizer", None)
    if cache is None:
        dictionary = _sudachi_dictionary()
        cache = _local.tokenizer = (
            dictionary.tokenizer(mode=SplitMode.C),
            dictionary.pos_matcher(lambda pos: pos[0] not in DROPPED_POS),
        )
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

    Pieces end at sentence ends (or line ends) where possible, so no word is cut in two. A run
    with no sentence end longer than a piece may be (a table, a text with no 。 at all) is cut by
    `cut_text`, at a blank or punctuation where it can be, in time linear in the text.
    """
    if len(text) * 4 <= MAX_CHUNK_BYTES or len(text.encode("utf-8")) <= MAX_CHUNK_BYTES:
        yield 0, text
        return
    offset = 0  # where the piece being gathered starts
    size = 0  # its UTF-8 bytes
    for start, end in _sentence_spans(text):
        sentence_size = len(text[start:end].encode("utf-8"))
        if size and size + sentence_size > MAX_CHUNK_BYTES:
            yield offset, text[offset:start]
            offset, size = start, 0
        if sentence_size <= MAX_CHUNK_BYTES:
            size += sentence_size
            continue
        for piece in cut_text(text[start:end], MAX_CHUNK_BYTES // 4):  # at most 4 bytes a character
            yield offset, piece
            offset += len(piece)
    if offset < len(text):
        yield offset, text[offset:]


def _sentence_spans(text: str) -> Iterator[tuple[int, int]]:
    """[start, end) of each sentence (or line) of `text`, its end mark included."""
    start = 0
    for match in _BREAK.finditer(text):
        yield start, match.end()
        start = match.end()
    if start < len(text):
        yield start, len(text)


def _is_ascii_word(text: str) -> bool:
    return text.isascii() and text.replace("-", "").isalnum() and not text.endswith("-")


def terms(text: str, mode: str = "C") -> Iterator[Term]:
    """The index terms of `text` in order, with offsets into `text` (synonym groups in mode C).

    Mode A terms are Sudachi's finest units, split from the same mode C analysis. A section's
    text is analysed by several fields (words, sub-units, synonyms), so the analysis of recent
    texts is cached and Sudachi runs once per text.
    """
    if mode not in _SPLIT_MODES:
        raise ValueError(f"Sudachi split mode must be A or C, not {mode!r}")
    analysis = _analysis(text)
    return iter(analysis.word_terms if mode == "C" else analysis.unit_terms)


# The analyses of the most recent texts up to this many characters, per thread: a section's
# fields while it is indexed, and the titles and headings of a result list (a hundred hits show
# two hundred of them, and the next query's hits show many of them again).
ANALYSED_CHARS_CACHED = 200_000
# What a kept analysis costs per character of its text: 463 bytes measured over livedoor's section
# bodies (Sudachi's morphemes, kept for the mode A split, and the terms); a title's costs less.
ANALYSIS_BYTES_PER_CHAR = 480
# Every thread's cache together keeps at most this many characters (and each thread its latest
# text): the analyses' share of the process's memory budget (`memory.py`), whatever the threads.
_analysed_chars_limit = ANALYSED_CHARS_CACHED
_caches: weakref.WeakValueDictionary = weakref.WeakValueDictionary()  # every live thread's cache, by number
_cache_numbers = itertools.count()
_caches_lock = threading.Lock()


def set_analysed_bytes(budget_bytes: int) -> None:
    """The analyses' share of the memory budget: what is over it goes at once."""
    global _analysed_chars_limit
    _analysed_chars_limit = budget_bytes // ANALYSIS_BYTES_PER_CHAR
    _make_room(None)


def analysed_bytes() -> int:
    """What every thread's kept analyses cost together (estimated from their characters)."""
    return sum(cache.chars for cache in _every_cache()) * ANALYSIS_BYTES_PER_CHAR


def _every_cache() -> list[_AnalysisCache]:
    with _caches_lock:
        return list(_caches.values())


def _analysis(text: str) -> _Analysis:
    """`text`'s analysis, from this thread's cache."""
    cache = getattr(_local, "analyses", None)
    if cache is None:
        cache = _local.analyses = _AnalysisCache()
        with _caches_lock:
            _caches[next(_cache_numbers)] = cache
    with cache.lock:
        analysis = cache.get(text)
        if analysis is not None:
            cache.move_to_end(text)
            return analysis
    analysis = _Analysis(text)
    with cache.lock:
        cache[text] = analysis
        cache.chars += len(text)
        cache.drop_oldest(cache.chars - ANALYSED_CHARS_CACHED, keep=1)
    _make_room(cache)
    return analysis


def _make_room(keeping: _AnalysisCache | None) -> None:
    """Drop the oldest analyses while every thread's together are over their share: the biggest
    caches' first (an idle thread's too), and never the latest text of the thread `keeping`."""
    caches = _every_cache()
    over = sum(cache.chars for cache in caches) - _analysed_chars_limit
    for cache in sorted(caches, key=lambda cache: cache.chars, reverse=True):
        if over <= 0:
            return
        with cache.lock:
            over -= cache.drop_oldest(over, keep=1 if cache is keeping else 0)


def analyse_ahead(values: Iterable[str]) -> None:
    """Analyse the texts of `values` (field values, texts joined by TEXT_SEPARATOR) now, one after
    another, for the fields that ask for them next: Sudachi runs faster over many texts in a row,
    its dictionary kept in the processor's caches, than between the indexing of each. Stops at
    half of what the cache keeps, so that no analysis made ahead is dropped before its use. A text
    several fields hold (a title is in every section's title and whole-text fields) counts once."""
    budget = min(ANALYSED_CHARS_CACHED, _analysed_chars_limit) // 2
    seen: set[str] = set()
    for value in values:
        for text in value.split(TEXT_SEPARATOR):
            if text in seen:
                continue
            seen.add(text)
            budget -= len(text)
            if budget < 0:
                return
            _analysis(text)


class _AnalysisCache(OrderedDict):
    """Recent texts' analyses, oldest first, and the characters they hold. Its thread uses it;
    another may make room in it (`_make_room`), so both hold its lock."""

    def __init__(self):
        super().__init__()
        self.chars = 0
        self.lock = threading.Lock()

    def drop_oldest(self, chars: int, keep: int) -> int:
        """Drop the oldest analyses until `chars` characters are gone (or only `keep` are left);
        the characters dropped."""
        dropped_chars = 0
        while dropped_chars < chars and len(self) > keep:
            dropped, _ = self.popitem(last=False)
            dropped_chars += len(dropped)
        self.chars -= dropped_chars
        return dropped_chars


def _forget_analyses() -> None:
    for cache in _every_cache():
        with cache.lock:
            cache.clear()
            cache.chars = 0


memory.register("analyses", memory.CacheFunctions(set_analysed_bytes, analysed_bytes, _forget_analyses), memory.TEXT)


class Columns(NamedTuple):
    """A text's index terms as parallel tuples (term, position, first and end character): what
    indexing reads, zipped, with no object made per term."""

    texts: tuple[str, ...] = ()
    positions: tuple[int, ...] = ()
    starts: tuple[int, ...] = ()
    ends: tuple[int, ...] = ()


# A term while a text is analysed: (term, start, end, synonym groups, in_compound), the fields of
# `Term` in a plain tuple (cheaper to make). Lists of units hold one per morpheme: a row, or for
# a dropped morpheme its normalized form (a str), which `_join_ascii` needs to see hyphens and gaps.
_Row = tuple[str, int, int, tuple[int, ...], bool]
# A content morpheme's dictionary entry and its first and end character.
_Labelled = tuple["_Entry", int, int]


class _Analysis:
    """One Sudachi pass over a text: its mode C words at once, and its mode A units (what only
    indexing and query parsing ask for) split from the same morphemes when first asked for. Kept
    per thread, as the morphemes belong to the thread's tokenizer."""

    def __init__(self, text: str):
        tokenizer, is_content = _thread_tokenizer()
        self.text = text
        self._morphemes: list = []  # per piece, Sudachi's morphemes if a word of it splits (for mode A)
        self._units: list[list[_Row | str]] = []  # per piece, a unit per morpheme (for mode A)
        self._splitting: list[list[int]] = []  # per piece, which of its units are words that split
        self._words: list[_Row] = []
        self._labelled: list[_Labelled] = []  # every content morpheme's entry, for readings and names
        for offset, piece in chunks(text):
            morphemes = tokenizer.tokenize(piece)
            units, splitting, words, labelled = _word_units(text, morphemes, offset, is_content)
            self._morphemes.append(morphemes if splitting else None)  # the rest need not be kept
            self._units.append(units)
            self._splitting.append(splitting)
            self._words += words
            self._labelled += labelled
        self.words = _columns_of(text, self._words)

    @functools.cached_property
    def readings(self) -> Columns:
        """Each word's reading (katakana, Sudachi's `reading_form`) at the word's position, so a
        phrase of readings matches the words in order; none for Latin and digits (exact terms)."""
        readings = {start: (end, entry.reading) for entry, start, end in self._labelled}
        words = self.words
        found = [
            (reading, position, start, end)
            for term, position, start, end in zip(words.texts, words.positions, words.starts, words.ends)
            if not term.isascii()
            for word_end, reading in (readings.get(start, (-1, "")),)
            if reading and word_end == end
        ]
        return Columns(*zip(*found)) if found else Columns()

    @functools.cached_property
    def names(self) -> tuple[tuple[str, ...], tuple[str, ...], frozenset[str]]:
        """The people and the places the text names, each once, in order of first mention, and
        the surnames of the full names among the people.

        Sudachi tags a full name as a surname and a given name (香川 + 真司): the two written
        together are one person, 香川真司; either alone, or a name it tags as a whole, is kept
        as written, unless it is also a common noun (との見方が: Sudachi tags 見方 a surname) and
        no title follows it (野田首相, 本田氏)."""
        people: dict[str, None] = {}
        places: dict[str, None] = {}
        surnames: set[str] = set()
        labelled = self._labelled
        number = 0
        while number < len(labelled):
            entry, _, end = labelled[number]
            number += 1
            if entry.name == PLACE:
                places[entry.name_text] = None
            elif entry.name:
                following, start, _ = labelled[number] if number < len(labelled) else (_NO_ENTRY, -1, -1)
                adjacent = start == end
                if entry.name == SURNAME and adjacent and following.name == GIVEN_NAME:
                    people[entry.name_text + following.name_text] = None
                    surnames.add(entry.name_text)
                    number += 1
                elif not entry.common or (adjacent and following.title):
                    people[entry.name_text] = None
        return tuple(people), tuple(places), frozenset(surnames)

    @functools.cached_property
    def word_terms(self) -> tuple[Term, ...]:
        return tuple(map(Term._make, self._words))

    @functools.cached_property
    def synonyms(self) -> Columns:
        """Each word's synonym groups as `g<id>` terms, at the word's position."""
        words = self.words
        found = [
            (synonym_term(group), position, start, end)
            for (_, _, _, groups, _), position, start, end in zip(
                self._words, words.positions, words.starts, words.ends
            )
            for group in groups
        ]
        return Columns(*zip(*found)) if found else Columns()

    @functools.cached_property
    def synonym_words(self) -> Columns:
        """Each word that has synonym groups as `g<id>:<word>` terms, one per group."""
        words = self.words
        found = [
            (synonym_word_term(group, text), position, start, end)
            for (text, _, _, groups, _), position, start, end in zip(
                self._words, words.positions, words.starts, words.ends
            )
            for group in groups
        ]
        return Columns(*zip(*found)) if found else Columns()

    @functools.cached_property
    def _unit_rows(self) -> list[_Row]:
        """The mode A terms: the words, with each word that splits replaced by its units. A word
        that does not split keeps its row (synonym groups and all: only `unit_terms` shows them,
        and drops them)."""
        if not any(self._splitting):  # the same terms as the words (most titles and headings)
            rows = self._words
        else:
            _, is_content = _thread_tokenizer()
            rows = []
            for morphemes, units, splitting in zip(self._morphemes, self._units, self._splitting):
                rows += _split_units(self.text, morphemes, units, splitting, is_content)
        self._morphemes, self._units, self._splitting = [], [], []  # not needed again: let them go
        return rows

    @functools.cached_property
    def units(self) -> Columns:
        return self.words if self._unit_rows is self._words else _columns_of(self.text, self._unit_rows)

    @functools.cached_property
    def compound_units(self) -> Columns:
        """The units of words that split in two or more (the rest are words already), at their
        positions among all units."""
        kept = [
            (text, position, start, end)
            for (text, start, end, _, in_compound), position in zip(self._unit_rows, self.units.positions)
            if in_compound
        ]
        return Columns(*zip(*kept)) if kept else Columns()

    @functools.cached_property
    def unit_terms(self) -> tuple[Term, ...]:
        return tuple(Term(text, start, end, (), in_compound) for text, start, end, _, in_compound in self._unit_rows)


# What analysis asks Sudachi of every morpheme depends only on its dictionary entry (and, for
# the mode A split's offsets, on its original characters): kept per process, as asking Sudachi
# again for each of a word's thousands of occurrences costs more than its own tokenization.
_ENTRIES_CACHED = 200_000
# What an entry of either costs (key and value): 520 bytes measured over livedoor's sections, and
# 120 more since a word's entry keeps its reading (a katakana str, about 80) and five more fields.
DICTIONARY_ENTRY_BYTES = 640
_entries_limit = _ENTRIES_CACHED  # of both together: their share of the memory budget (`memory.py`)
# Per word id: a dropped word's normalized form, or a kept one's `_Entry`.
_word_entries: dict[int, str | _Entry] = {}
# Per (word id, surface) of a word that splits: its mode A pieces as (normalized form, first and
# end character from the word's start, kept?).
_unit_pieces: dict[tuple[int, str], tuple[tuple[str, int, int, bool], ...]] = {}


def set_entry_bytes(budget_bytes: int) -> None:
    """The dictionary entries' share of the memory budget (up to `_ENTRIES_CACHED` of each)."""
    global _entries_limit
    _entries_limit = min(2 * _ENTRIES_CACHED, budget_bytes // DICTIONARY_ENTRY_BYTES)
    _make_entry_room()


def entry_bytes() -> int:
    return (len(_word_entries) + len(_unit_pieces)) * DICTIONARY_ENTRY_BYTES


def _make_entry_room() -> None:
    """Forget every entry when either table, or both together, are full: a forgotten entry costs
    one more question to Sudachi, less than ordering every use would."""
    if (
        len(_word_entries) + len(_unit_pieces) >= _entries_limit
        or max(len(_word_entries), len(_unit_pieces)) >= _ENTRIES_CACHED
    ):
        _word_entries.clear()
        _unit_pieces.clear()


def _forget_entries() -> None:
    _word_entries.clear()
    _unit_pieces.clear()


memory.register("dictionary entries", memory.CacheFunctions(set_entry_bytes, entry_bytes, _forget_entries), memory.TEXT)


class _Entry(NamedTuple):
    """What analysis keeps of a content word's dictionary entry."""

    term: str  # its normalized form, lowercased
    groups: tuple[int, ...]  # its synonym groups
    splits: bool  # whether it has mode A units
    reading: str  # its reading form, in katakana (`reading_form()`)
    name: str  # the kind of proper noun it is (SURNAME, GIVEN_NAME, PERSON, PLACE), or ""
    name_text: str  # its normalized form as written (not lowercased) when it is a name
    common: bool = False  # a person's name that is also a common noun (見方, 野田): a name only in context
    title: bool = False  # what follows a person's name (氏, さん, 首相, 選手)


# Words after a surname that say it is one (野田首相, 本田選手), besides Sudachi's noun suffixes (氏, さん).
PERSON_TITLES = frozenset(
    {
        "首相",
        "大臣",
        "選手",
        "監督",
        "社長",
        "会長",
        "議員",
        "知事",
        "市長",
        "代表",
        "容疑者",
        "被告",
        "投手",
        "議長",
        "総裁",
    }
)
_NO_ENTRY = _Entry("", (), False, "", "", "")  # what follows the last word

# Sudachi's proper-noun tags (名詞,固有名詞,人名,姓 / 名 / 一般 and 名詞,固有名詞,地名,*) as name kinds.
SURNAME, GIVEN_NAME, PERSON, PLACE = "surname", "given", "person", "place"
_PERSON_KINDS = {"姓": SURNAME, "名": GIVEN_NAME}


def _name_kind(part_of_speech: Sequence[str]) -> str:
    """The kind of proper noun a part of speech tags, or "" for any other word."""
    if part_of_speech[0] != "名詞" or part_of_speech[1] != "固有名詞":
        return ""
    if part_of_speech[2] == "人名":
        return _PERSON_KINDS.get(part_of_speech[3], PERSON)
    return PLACE if part_of_speech[2] == "地名" else ""


def _also_common(surface: str) -> bool:
    """Whether the dictionary also lists `surface` as a common noun (見方 is a surname too)."""
    return any(entry.part_of_speech()[1] == "普通名詞" for entry in _sudachi_dictionary().lookup(surface))


def _word_entry(morpheme, is_content) -> str | _Entry:
    """A morpheme's entry in `_word_entries`, made and kept (not for unknown words: they share
    their ids, their normalized form is their surface, and they have no mode A units)."""
    normalized = morpheme.normalized_form()
    unknown = morpheme.is_oov()
    if normalized in LIGHT_VERBS or not is_content(morpheme):
        entry: str | _Entry = normalized
    else:
        groups = morpheme.synonym_group_ids()
        splits = not unknown and bool(morpheme.split(SplitMode.A))
        part_of_speech = morpheme.part_of_speech()
        name = "" if unknown else _name_kind(part_of_speech)
        entry = _Entry(
            normalized.lower(),
            tuple(groups) if groups else (),
            splits,
            morpheme.reading_form(),
            name,
            normalized if name else "",
            common=name not in ("", PLACE) and _also_common(morpheme.surface()),
            title=normalized in PERSON_TITLES or part_of_speech[:2] == ("接尾辞", "名詞的"),
        )
    if not unknown:
        _make_entry_room()
        _word_entries[morpheme.word_id()] = entry
    return entry


def _pieces(morpheme, key: tuple[int, str], is_content) -> tuple[tuple[str, int, int, bool], ...]:
    """A morpheme's entry in `_unit_pieces` (its key: word id and surface), made and kept."""
    base = morpheme.begin()
    pieces = tuple(
        (form, piece.begin() - base, piece.end() - base, form not in LIGHT_VERBS and is_content(piece))
        for piece in morpheme.split(SplitMode.A)
        for form in (piece.normalized_form(),)
    )
    _make_entry_room()
    _unit_pieces[key] = pieces
    return pieces


def _word_units(
    text: str, morphemes, offset: int, is_content
) -> tuple[list[_Row | str], list[int], list[_Row], list[_Labelled]]:
    """A unit per morpheme (content ones as terms with their synonym groups, dropped ones as their
    normalized form), which of them are words that split in mode A, the terms (`_join_ascii`ed
    where two Latin ones may join), and each content morpheme's entry with its offsets (for its
    reading and whether it is a name)."""
    units: list[_Row | str] = []
    splitting: list[int] = []
    rows: list[_Row] = []
    labelled: list[_Labelled] = []
    entries = _word_entries
    for morpheme in morphemes:
        entry = entries.get(morpheme.word_id())
        if entry is None:
            entry = _word_entry(morpheme, is_content)
        if isinstance(entry, str):
            units.append(entry)
            continue
        term, groups, splits = entry[:3]
        begin, end = offset + morpheme.begin(), offset + morpheme.end()
        if splits and end - begin > 1:
            splitting.append(len(units))
        row = (term, begin, end, groups, False)
        units.append(row)
        rows.append(row)
        labelled.append((entry, begin, end))
    return units, splitting, (_join_ascii(units) if _may_join(text, rows) else rows), labelled


def _split_units(text: str, morphemes, units: list[_Row | str], splitting: list[int], is_content) -> list[_Row]:
    """The mode A terms of `_word_units`: each word that splits replaced by its units (in_compound,
    Sudachi gives none for a word that is one unit already), `_join_ascii`ed as words are."""
    split: list[_Row | str] = []
    done = 0
    cached = _unit_pieces
    for number in splitting:
        split += units[done:number]
        done = number + 1
        unit = units[number]
        assert not isinstance(unit, str), "only words (rows) split"
        _, start, end, _, _ = unit
        morpheme = morphemes[number]
        key = (morpheme.word_id(), text[start:end])
        pieces = cached.get(key)
        if pieces is None:
            pieces = _pieces(morpheme, key, is_content)
        split += [
            (form.lower(), start + first, start + last, (), True) if kept else form
            for form, first, last, kept in pieces
        ]
    split += units[done:]
    rows = [unit for unit in split if not isinstance(unit, str)]
    return _join_ascii(split) if _may_join(text, rows) else rows


def _columns_of(text: str, rows: list[_Row]) -> Columns:
    if not rows:
        return Columns()
    texts, starts, ends, _, _ = zip(*rows)
    return Columns(texts, _positions(text, starts, ends), starts, ends)


def _positions(text: str, starts: tuple[int, ...], ends: tuple[int, ...]) -> tuple[int, ...]:
    """Each term's position: one after the last, and one more after a sentence end or a line
    break, so a phrase never spans two sentences. (Positions count index terms only, so phrases
    skip particles.)"""
    count = len(starts)
    gaps = [0] * count
    for match in _BREAK.finditer(text):
        after = bisect.bisect_right(starts, match.start())  # the first term after the break
        if 0 < after < count and ends[after - 1] <= match.start():
            gaps[after] = 1
    return tuple(map(operator.add, range(count), itertools.accumulate(gaps)))


def _may_join(text: str, rows: list[_Row]) -> bool:
    """Whether `_join_ascii` could join anything in `text`: two Latin terms side by side or with one
    symbol between them (a hyphen, in any width). Most texts with Latin in them have only numbers
    apart from each other (2012年4月1日), and this look at the terms alone is quicker than the
    join's walk over every unit."""
    latin_end = -2
    for term, start, end, _, _ in rows:
        if term.isascii():
            if start == latin_end or (start == latin_end + 1 and not text[latin_end].isalnum()):
                return True
            latin_end = end
    return False


def _join_ascii(units: list[_Row | str]) -> list[_Row]:
    """The terms of `units`, Latin letters and digits written together, with single hyphens
    inside, joined into one term (H200, 5G, COVID-19): Sudachi splits them, and differently
    depending on the context."""
    joined: list[_Row] = []
    pending: _Row | None = None
    hyphen = False  # a "-" directly after an ASCII `pending`, which the next unit may continue
    for unit in units:
        if isinstance(unit, str):
            if unit == "-" and pending and not hyphen and _is_ascii_word(pending[0]):
                hyphen = True
                continue
            if pending:
                joined.append(pending)
            pending, hyphen = None, False
            continue
        if pending and _is_ascii_word(pending[0]) and _is_ascii_word(unit[0]):
            gap = unit[1] - pending[2]
            if gap == 0 or (hyphen and gap == 1):
                text = pending[0] + ("-" if gap else "") + unit[0]
                pending, hyphen = (text, pending[1], unit[2], (), pending[4]), False
                continue
        if pending:
            joined.append(pending)
        pending, hyphen = unit, False
    if pending:
        joined.append(pending)
    return joined


# Joins the texts of a field fed from several (title, heading, body); Whoosh would take a list
# for pre-split tokens, so the tokenizers split on this instead.
TEXT_SEPARATOR = "\x1e"


class _TermTokenizer(Tokenizer):
    """A tokenizer over `_columns(text)`: the terms of one text.

    A field may be fed several texts joined by TEXT_SEPARATOR: each is analysed on its own (so the
    cached analysis of each is reused), and positions run on across them with a gap, so a phrase
    never spans two texts. Whoosh's analysis calls get tokens; indexing, through our formats
    (`postings.py`), gets each term's positions straight from `term_positions`.
    """

    def _columns(self, text: str) -> Columns:
        raise NotImplementedError

    def _each_text(self, value: str, start_pos: int, start_char: int) -> Iterator[tuple[Columns, int, int]]:
        """The columns of each text of `value`, with the position and character they count from."""
        for text in value.split(TEXT_SEPARATOR):
            columns = self._columns(text)
            yield columns, start_pos, start_char
            start_pos += (columns.positions[-1] if columns.positions else 0) + 2
            start_char += len(text) + 1

    def stream(self, value: str, start_pos: int = 0, start_char: int = 0) -> Iterator[tuple[str, int, int, int]]:
        """(term, position, start, end) over every text of `value`, offsets into `value`."""
        for (texts, positions, starts, ends), first_pos, first_char in self._each_text(value, start_pos, start_char):
            for term, position, start, end in zip(texts, positions, starts, ends):
                yield term, first_pos + position, first_char + start, first_char + end

    def term_positions(self, value: str) -> dict[str, list[int]]:
        """Each term of `value` and its positions, in order of first occurrence."""
        found: dict[str, list[int]] = {}
        for columns, first_pos, _ in self._each_text(value, 0, 0):
            positions = columns.positions if not first_pos else [first_pos + p for p in columns.positions]
            for term, position in zip(columns.texts, positions):
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
                token.original = value[start - start_char : end - start_char]
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

    def _columns(self, text: str) -> Columns:
        analysis = _analysis(text)
        if self.mode == "C":
            return analysis.words
        return analysis.compound_units if self.compound_parts_only else analysis.units


class SynonymGroupTokenizer(_TermTokenizer):
    """Each term's Sudachi synonym groups as `g<id>` terms: 米国 and アメリカ both give `g62`.

    Indexed in a field of their own, so a synonym match can rank below an exact one.
    """

    def _columns(self, text: str) -> Columns:
        return _analysis(text).synonyms


def synonym_term(group: int) -> str:
    return f"g{group}"


def synonym_group(term: str) -> int | None:
    """The group id a `synonym_term` stands for; None for any other text."""
    number = term[1:]
    return int(number) if number.isdigit() and synonym_term(int(number)) == term else None


class SynonymWordTokenizer(_TermTokenizer):
    """Which words of each synonym group the text uses, as `g<id>:<word>` terms: 米国 gives
    `g62:米国`, アメリカ gives `g62:アメリカ`.

    Never searched: it is the index's own list of a group's spellings, with how many sections use
    each (its document frequency), so a query's compound can swap in the spelling the corpus uses
    (東京オリンピック → 東京五輪) with a lexicon lookup, not Sudachi run again over sections.
    """

    def _columns(self, text: str) -> Columns:
        return _analysis(text).synonym_words


def synonym_word_term(group: int, word: str) -> str:
    return f"{synonym_term(group)}:{word}"


class ReadingTokenizer(_TermTokenizer):
    """Each word's reading in katakana (`_Analysis.readings`), at the word's position: a query
    typed in hiragana finds the words it spells (せるじお → セルジオ, とうきょう → 東京)."""

    def _columns(self, text: str) -> Columns:
        return _analysis(text).readings


def reading_words(text: str) -> tuple[str, ...]:
    """The readings of `text`'s words, in order (what the reading field holds for it)."""
    return _analysis(text).readings.texts


# Hiragana ぁ..ゖ and their iteration marks ゝゞ sit 0x60 below their katakana.
_TO_KATAKANA = {code: code + 0x60 for code in (*range(0x3041, 0x3097), 0x309D, 0x309E)}
_HIRAGANA_WORD = re.compile(r"[\u3041-\u3096\u309d\u309eー]+")


def is_hiragana_word(text: str) -> bool:
    """A word written in hiragana only (a long-vowel mark ー allowed)."""
    return bool(_HIRAGANA_WORD.fullmatch(text)) and text.strip("ー") != ""


def to_katakana(text: str) -> str:
    """`text` with its hiragana written in katakana (せるじお → セルジオ)."""
    return text.translate(_TO_KATAKANA)


class NameTokenizer(_TermTokenizer):
    """The people (`kind` "people") or places ("places") a field's texts name together
    (`_Analysis.names`), each once, as whole names: a field to count and filter by, not to rank
    with. A place that is the surname of a full name the texts give is that person (香川真司's
    title, then 香川は… in the text: Sudachi tags the lone 香川 a place, the prefecture)."""

    def __init__(self, kind: str):
        if kind not in NAME_FIELDS:
            raise ValueError(f"names are {' or '.join(NAME_FIELDS)}, not {kind!r}")
        self.kind = kind

    def _columns(self, text: str) -> Columns:
        return self._named(text.split(TEXT_SEPARATOR))

    def _each_text(self, value: str, start_pos: int, start_char: int) -> Iterator[tuple[Columns, int, int]]:
        """The names of all of `value`'s texts at once (not one text after another)."""
        yield self._named(value.split(TEXT_SEPARATOR)), start_pos, start_char

    def _named(self, texts: list[str]) -> Columns:
        named = [_analysis(text).names for text in texts]
        if self.kind == NAME_FIELDS[0]:
            found = tuple(dict.fromkeys(name for people, _, _ in named for name in people))
        else:
            surnames = frozenset().union(*(surnames for _, _, surnames in named))
            found = tuple(dict.fromkeys(name for _, places, _ in named for name in places if name not in surnames))
        zeros = (0,) * len(found)
        return Columns(found, tuple(range(len(found))), zeros, zeros)


# The fields of names, in the order `_Analysis.names` gives them.
NAME_FIELDS = ("people", "places")


# Katakana only: Latin and digits are exact terms already (and h200 must never match h20), and
# kanji bigrams, measured on JaQuAD, would double the index for +0.003 MRR@10 (see the README).
_KATAKANA_RUN = re.compile(r"[\u30a1-\u30fa\u30fc]{2,}")
_HALFWIDTH_KANA = re.compile(r"[\uff61-\uff9f]")


def katakana_runs(text: str) -> Iterator[tuple[str, Sequence[int], Sequence[int]]]:
    """Katakana runs of `text`, width-folded, with each character's first and end offset.

    Folding is per character (ｴﾇﾋﾞﾃﾞｨｱ → エヌビディア) so every bigram keeps the offsets of the
    original characters it came from.
    """
    if not _HALFWIDTH_KANA.search(text):  # the common case: nothing to fold
        for match in _KATAKANA_RUN.finditer(text):
            yield match.group(), range(match.start(), match.end()), range(match.start() + 1, match.end() + 1)
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
        run = spans[match.start() : match.end()]
        yield match.group(), [start for start, _ in run], [end for _, end in run]


def is_katakana_word(text: str) -> bool:
    """A word written in katakana only (width-folded), such as a name the dictionary lacks."""
    runs = list(katakana_runs(text))
    return len(runs) == 1 and runs[0][1][0] == 0 and runs[0][2][-1] == len(text)


def bigram_columns(text: str) -> Columns:
    """The pairs of adjacent characters in the katakana runs of `text`: a run's bigrams have
    consecutive positions and runs are kept apart, so a phrase of bigrams matches the run's
    characters in order and never across two runs."""
    texts: list[str] = []
    positions: list[int] = []
    starts: list[int] = []
    ends: list[int] = []
    position = 0
    for run, run_starts, run_ends in katakana_runs(text):
        pairs = len(run) - 1
        texts += [run[offset : offset + 2] for offset in range(pairs)]
        positions += range(position, position + pairs)
        starts += run_starts[:-1]
        ends += run_ends[1:]
        position += pairs + 1
    return Columns(tuple(texts), tuple(positions), tuple(starts), tuple(ends))


class CharBigramTokenizer(_TermTokenizer):
    """Character bigrams of katakana runs (`bigram_columns`): a dictionary-free fallback for new
    names and coinages."""

    def _columns(self, text: str) -> Columns:
        return bigram_columns(text)


def JapaneseAnalyzer(mode: str = "C") -> SudachiTokenizer:
    """The analyzer every text field uses (a factory, like Whoosh's StandardAnalyzer)."""
    return SudachiTokenizer(mode)
