"""Query strings → Whoosh queries, with the semantics a Japanese news reader expects.

- Words typed without spaces are phrases (輸出規制 = 輸出 then 規制), see `schema.py`.
- Space-separated words (half- or full-width spaces) are all required.
- `"…"` (or 「…」『…』“…”) phrases, `OR`, `-word` / `NOT word`, `title:` / `heading:` /
  `body:` / `source:` / `category:` fields work as in Whoosh's query language.
- A typed question or pasted sentence is ranked by best match instead of requiring every word:
  its content words (question words dropped), a bonus where a compound's words stand together and
  where neighbouring words stand next to each other, particles aside (日本の首都 → 日本 首都), the
  whole scaled by how much of the question a section covers (`coverage.py`).
- Quotes inside a pasted sentence or headline (text written right against them: 「“AKB48のセンター”が
  …」) quote a remark, not a phrase the text must repeat: such a query is read without them. A
  query of quotes and spaced words (`"国家安全保障" 半導体`) keeps its phrases.
- Each word also matches, with less weight, its finer sub-units (mode A), its dictionary synonyms,
  the user's synonyms file and, for katakana, its bigrams, so an exact match always ranks first.
  With the index's lexicon at hand (`Lexicon`), a compound also matches with one of its parts
  replaced by a synonym the index holds (東京オリンピック → 東京五輪), and a word of Latin letters
  only matches the model names it starts (iPhone → iPhone4S, iPhone5; H20 stays H20).
- A negated word (`-word`, `NOT word`) leaves out every section of an article in which some section
  has it, its synonyms or its model names (`ParsedQuery.excluded`): `iPhone -Android` never lists an
  article that discusses Android (or アンドロイド).
- `relaxed_query` is the best-match reading of a query the strict reading found (almost) nothing
  for: `searching.py` ranks its matches below the strict ones.
"""

from __future__ import annotations

import functools
import itertools
import re
import unicodedata
from dataclasses import dataclass, replace
from typing import Protocol

from whoosh import query as wq
from whoosh.fields import Schema
from whoosh.qparser import (
    AndGroup,
    EveryPlugin,
    MultifieldParser,
    PlusMinusPlugin,
    WildcardPlugin,
)

from ..analysis.sudachi import (
    Term,
    bigram_columns,
    is_hiragana_word,
    is_katakana_word,
    reading_words,
    synonym_group,
    synonym_term,
    terms,
    to_katakana,
)
from ..codec.schema import TEXT_FIELDS
from .coverage import Coverage, Word
from .synonyms import UserSynonyms

MAX_QUERY_CHARS = 1000
# A question, a sentence (particles between its words) of this many words, or a query of more
# words than this is ranked by best match; a few keywords stay all-required.
BEST_MATCH_MIN_TERMS = 4
# Weights of the looser matches relative to the word itself (1.0).
PARTS_BOOST = 0.5
SYNONYM_BOOST = 0.5
USER_SYNONYM_BOOST = 0.9
FALLBACK_BOOST = 0.3
MODEL_BOOST = 0.3  # iphone4s for iphone: below the word itself even where the model is rarer (idf)
COMPOUND_SYNONYM_BOOST = 0.5  # 東京五輪 for 東京オリンピック
READING_BOOST = 0.3  # セルジオ for せるじお, beside what the hiragana itself matches
# A word typed in hiragana of this many kana or more (and at most MAX_READING_KANA) also finds
# the words it reads as, unless the dictionary reads it as one word already (ありがとう, やきゅう):
# two kana read as too many words (はし: 橋, 箸, 端).
MIN_READING_KANA = 3
MAX_READING_KANA = 24
# A compound's part is replaced by at most this many of its synonyms (the most frequent first).
MAX_PART_VARIANTS = 4
# A word of Latin letters this long or longer finds the model names it starts (not `a` → a4).
MIN_MODEL_PREFIX = 2
PROXIMITY_BOOST = 0.5
NEIGHBOUR_BOOST = 0.3
# What a question asks with carries no meaning to match (normalized forms, as the index has them);
# so does any 何 with a counter (何人, 何歳, 何回, 何処, 何時), see `is_question_word`.
QUESTION_WORDS = frozenset(
    {
        "何",
        "どこ",
        "いつ",
        "誰",
        "どなた",
        "どれ",
        "どの",
        "どう",
        "どのよう",
        "どのような",
        "如何",
        "何故",
        "幾つ",
        "幾ら",
        "どちら",
        "どっち",
        "どんな",
        "言う",
    }
)
_QUOTES = str.maketrans({"「": '"', "」": '"', "『": '"', "』": '"', "“": '"', "”": '"'})
# Control characters, and lone surrogates (a Python caller's undecodable bytes): not text.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff]")
_QUOTED = re.compile(r'"[^"]*"')
_LATIN_WORD = re.compile(r"[a-z]+")
_WORD_START = r"(?<![^\s(])"  # +/- are operators only before a word: COVID-19 is one word
_OPERATORS = re.compile(r"(^|\s)[-+]\S|\b(AND|OR|NOT)\b|\b[a-z]+:\S")
# Parentheses group operators; without any they are a sentence's punctuation (（LuisVáezdeTorres）).
_PARENTHESES = re.compile(r"[()]")


@dataclass(frozen=True)
class QueryOptions:
    """Which of the looser matches a query adds; the defaults are what users get."""

    subwords: bool = True
    synonyms: bool = True
    fallback: bool = True
    proximity: bool = True  # a compound's words together
    neighbours: bool = True  # a question's neighbouring words next to each other
    coverage: bool = True  # a question's score scaled by how much of it a section covers
    drop_question_words: bool = True
    always_best_match: bool = False  # the plain-BM25F baseline: every query an OR of its terms
    models: bool = True  # a word of Latin letters finds the model names it starts (iphone → iphone5)
    readings: bool = True  # a word typed in hiragana finds the words it reads as (せるじお → セルジオ)
    relax: bool = True  # a query of words the strict reading finds (almost) nothing for: best match too
    rerank: bool = True  # the learned model reorders the best sections (`rerank.py`)


PLAIN_BM25F = QueryOptions(
    subwords=False,
    synonyms=False,
    fallback=False,
    proximity=False,
    neighbours=False,
    coverage=False,
    drop_question_words=False,
    always_best_match=True,
    models=False,
    readings=False,
    relax=False,
    rerank=False,
)


# The fields a query may name (`title:トランプ`); the schema's others are the engine's own.
SEARCHABLE_FIELDS = (*TEXT_FIELDS, "source", "category", "date")
_FIELD_LIST = ", ".join(f"{name}:" for name in SEARCHABLE_FIELDS)
# What Whoosh's parser takes for a field name (`\w+:`, the whole run of word characters), and
# the names of those a person may have meant as one (ASCII, as the schema's are).
_FIELD_NAME = re.compile(r"(?<![\w*])(\w+):")
# What may follow date: (a range in brackets, a group, or a year, month or day written whole, its
# end unquoted): a time glued to it, a one-digit month (2012-5: read as the year) or anything else
# is no date Whoosh reads as it looks.
_DATE_VALUE = re.compile(r"[\[{\"(]|[0-9]{4}(?:-?[0-9]{2}(?:-?[0-9]{2})?)?(?=[\s)]|$)")
_FIELD_EXAMPLES = {"date": "2012-05", "category": "sports-watch", "source": '"livedoor ニュース"'}
_ASCII_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class QueryError(ValueError):
    """The query cannot be searched; the message says why, for the user: `str()` in English (the
    CLI and the JSON API), `japanese` for the search page, which is in Japanese."""

    def __init__(self, message: str, japanese: str | None = None):
        super().__init__(message)
        self.japanese = japanese or "この検索語では検索できません。"


class QueryTooExpensive(QueryError):
    """The query ran out of its time budget: it would tie up the server."""

    def __init__(self, budget: float):
        super().__init__(
            f"this query is too expensive to run (over {budget:g} s); use fewer or more specific words",
            f"この検索は時間がかかりすぎるため中止しました（{budget:g}秒超）。語を減らすか、より具体的な語にしてください。",
        )
        self.budget = budget


# What excludes the word it stands before (-半導体); see PlusMinusPlugin in `parse_query`.
_MINUS = _WORD_START + r"-(?=\S)"


def _only_excluded(text: str) -> QueryError:
    return QueryError(
        f"a query of only excluded words ({text}) finds nothing: add a word to search for, as in 半導体 -中国",
        f"除外する語（{text}）だけでは検索できません。探す語も入れてください（例: 半導体 -中国）。",
    )


def _no_words() -> QueryError:
    return QueryError(
        "the query has no searchable words (particles and punctuation are not indexed)",
        "検索できる語がありません（助詞や記号だけでは検索できません）。",
    )


def _unreadable() -> QueryError:
    return QueryError(
        "could not read the query: check its quotes, brackets and parentheses, and put a word after"
        " NOT and -, and on both sides of OR",
        "検索語を読み取れませんでした。引用符やかっこの対応を確かめ、"
        "NOT と - の後ろ、OR の両側には語を置いてください。",
    )


def _bad_date() -> QueryError:
    return QueryError(
        "date: takes a date such as date:2012, date:2012-05, date:2012-05-31 or a range date:[2012-01 TO 2012-06]",
        "date: には date:2012、date:2012-05、date:2012-05-31 のような日付か、"
        "date:[2012-01 TO 2012-06] のような期間を指定してください。",
    )


Words = tuple[str, ...]


@dataclass(frozen=True)
class HighlightSpec:
    """What counts as a match in a snippet, a title or an article page (`spans`).

    A phrase or a compound the user typed (日本代表) is marked as a whole, as the index matched
    it: a run of index terms in order (`phrases`), or of Sudachi's finest units for the match
    inside a longer word (`units`: 日本代表 in 日本代表戦). Its words alone (日本 in 日本時間, 代表
    in デンマーク代表) are no match of a strict query. A best-match reading (a question, or the
    relaxed reading of a query that found too little) also matches a compound's words alone;
    `parts` says so, and `for_section` marks them only in a section that lacks the compound, the
    one place where a word alone is why the section matched.
    """

    terms: frozenset[str] = frozenset()  # single index terms (mode C)
    groups: frozenset[str] = frozenset()  # synonym group terms
    substrings: frozenset[str] = frozenset()  # katakana runs spelled by fallback bigrams
    phrases: frozenset[Words] = frozenset()  # runs of index terms, in order
    units: frozenset[Words] = frozenset()  # runs of mode A units, in order
    # (a compound's words, what marks them alone): added only where the compound is absent
    parts: tuple[tuple[Words, HighlightSpec], ...] = ()

    def __bool__(self) -> bool:
        return bool(self.terms or self.groups or self.substrings or self.phrases or self.units or self.parts)

    def __or__(self, other: HighlightSpec) -> HighlightSpec:
        """What either spec marks (a relaxed search's strict and best-match readings)."""
        return HighlightSpec(
            self.terms | other.terms,
            self.groups | other.groups,
            self.substrings | other.substrings,
            self.phrases | other.phrases,
            self.units | other.units,
            tuple(dict.fromkeys(self.parts + other.parts)),
        )

    def words(self) -> frozenset[str]:
        """Every single term it may mark, a compound's words alone included."""
        return self.terms.union(*(alone.words() for _, alone in self.parts))

    def for_section(self, *texts: str, shown: tuple[str, ...] | None = None) -> HighlightSpec:
        """The spec for one section (its title, heading and body): each compound's words alone
        are added where the section has the compound nowhere (not as a run of its words, nor
        written within a longer word). With `shown` (the texts that will be marked), words alone
        that would mark nothing there are left out unread: a grouped page's other sections show
        their heading only, and analysing each one's body to decide cost more than the ranking
        (88 ms a question on livedoor)."""
        if not self.parts:
            return self
        spec = replace(self, parts=())
        for words, alone in self.parts:
            if shown is not None and not any(alone.spans(text) for text in shown if text):
                continue
            joined = "".join(words)
            if not any(joined in text or _has_run(terms(text), words) for text in texts if text):
                spec = spec | alone
        return spec

    @functools.cached_property
    def _group_ids(self) -> frozenset[int]:
        """`groups` as Sudachi's group ids: `spans` runs some 80 times a page, over every term."""
        return frozenset(group for group in map(synonym_group, self.groups) if group is not None)

    @functools.cached_property
    def _phrase_starts(self) -> dict[str, list[Words]]:
        return _by_first(self.phrases)

    @functools.cached_property
    def _unit_starts(self) -> dict[str, list[Words]]:
        return _by_first(self.units)

    def spans(self, text: str) -> list[tuple[int, int]]:
        """[start, end) of each match in `text`, in text order, overlapping ones merged: the one
        highlighter of snippets, titles, headings and article pages."""
        words = list(terms(text))
        group_ids = self._group_ids
        found = [
            (term.start, term.end)
            for term in words
            if term.text in self.terms or (group_ids and not group_ids.isdisjoint(term.synonym_groups))
        ]
        found += _runs(words, self._phrase_starts)
        if self.units:
            found += _runs(list(terms(text, "A")), self._unit_starts)
        for term in words:
            for run in self.substrings:
                if run in term.text:
                    found += _within(term, run)
        return _merged(found)


def _by_first(runs: frozenset[Words]) -> dict[str, list[Words]]:
    """`runs` by their first term, for `_runs`."""
    by_first: dict[str, list[Words]] = {}
    for run in runs:
        if run:
            by_first.setdefault(run[0], []).append(run)
    return by_first


def _runs(found: list[Term], by_first: dict[str, list[Words]]) -> list[tuple[int, int]]:
    """The terms of each run (`by_first`: runs by their first term) where it stands in `found`
    (terms in text order) as consecutive terms, as the index's phrases match: positions count
    terms only, so a particle between does not part them, and stays unmarked (写真を撮影 marks 写真
    and 撮影; touching terms show as one)."""
    spans = []
    for i, term in enumerate(found):
        for run in by_first.get(term.text, ()):
            if tuple(t.text for t in found[i : i + len(run)]) == run:
                spans += [(t.start, t.end) for t in found[i : i + len(run)]]
    return spans


def _has_run(found, run: Words) -> bool:
    return bool(_runs(list(found), _by_first(frozenset({run}))))


def _within(term: Term, run: str) -> list[tuple[int, int]]:
    """Where `run` stands inside `term`: its own characters where the term's text is the text as
    written (same length), else the whole term."""
    if len(term.text) != term.end - term.start:
        return [(term.start, term.end)]
    return [(term.start + m.start(), term.start + m.end()) for m in re.finditer(re.escape(run), term.text)]


def _merged(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    merged: list[tuple[int, int]] = []
    for start, end in sorted(spans):
        if merged and start < merged[-1][1]:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((start, end))
    return merged


class Lexicon(Protocol):
    """What the index holds, for the matches a query's words alone cannot tell (`searching.py`
    answers from the index being searched)."""

    def model_names(self, word: str) -> list[str]:
        """The index's terms that are `word` followed by a model number (iphone → iphone4s)."""
        ...

    def variants(self, group: int, besides: str = "") -> list[str]:
        """The index's words in Sudachi synonym group `group` other than `besides`, the most
        frequent first."""
        ...

    def has_reading(self, reading: str) -> bool:
        """Whether some word of the index reads `reading` (katakana)."""
        ...


@dataclass(frozen=True)
class ParsedQuery:
    text: str  # the normalised query string
    query: wq.Query
    natural_language: bool
    # A query of plain words and phrases (no operators, no fields, not one quoted phrase alone):
    # when it finds too little, its best-match reading may follow (`relaxed_query`).
    relaxable: bool = False
    # What the query negates at its top level (`-word`, `NOT word`, `AND NOT word`), as one query:
    # an article with a section that matches it is left out whole (`searching.py`), not only that
    # section. None when nothing is negated (a NOT inside an OR group stays section by section).
    excluded: wq.Query | None = None

    @functools.cached_property
    def highlight(self) -> HighlightSpec:
        """What a snippet marks (never what is negated): worked out when first asked for, as
        callers that only rank (batch runs, match counts) never ask; a question's spec walks
        some forty leaves."""
        return _highlight_spec(self.query)


def normalize_query(raw: str) -> str:
    """NFKC (full-width ＯＲ, －, ＂ become operators), Japanese quotes → `"`, no control chars."""
    text = unicodedata.normalize("NFKC", raw).translate(_QUOTES)
    text = _CONTROL.sub(" ", text)
    return " ".join(text.split())


def parse_query(
    raw: str,
    schema: Schema,
    options: QueryOptions = QueryOptions(),
    user_synonyms: UserSynonyms | None = None,
    lexicon: Lexicon | None = None,
) -> ParsedQuery:
    """The query as the engine runs it: the strict reading (every word required) unless it is a
    question or a sentence. `lexicon` adds the matches only the index can tell (model names,
    synonyms of a compound's parts)."""
    if raw is None or not raw.strip():
        raise QueryError("the query is empty: type one or more words", "検索語を入力してください。")
    if len(raw) > MAX_QUERY_CHARS:
        raise QueryError(
            f"the query is too long ({len(raw):,} characters; at most {MAX_QUERY_CHARS:,})",
            f"検索語が長すぎます（{len(raw):,}文字。{MAX_QUERY_CHARS:,}文字まで）。",
        )
    text = normalize_query(raw)
    if not text:
        raise QueryError("the query has no searchable characters", "検索できる文字がありません。")
    _check_field_names(text, schema)
    expander = _Expander(options, user_synonyms, lexicon)
    operators = bool(_OPERATORS.search(_QUOTED.sub('""', text)))  # "-話題-" inside quotes is text
    if not operators and _quotes_in_running_text(text):
        text = " ".join(text.replace('"', " ").split())
    relaxable = not operators and not _QUOTED.fullmatch(text)
    readable = "reading" in schema and not operators and '"' not in text  # (no readings in an index before them)
    read = _read_words(text, options, lexicon) if readable else {}
    if options.always_best_match or not operators:
        analysed = text.replace('"', " ")
        found = list(terms(analysed))
        if not found and (not read or options.always_best_match):  # (a best match needs words)
            raise _no_words()
        # What is typed outside quotes says whether this is a question or a sentence; quotes
        # inside one (『妖精の女王』は誰の作品ですか) name things, while "…" alone is a phrase.
        outside = _QUOTED.sub(" ", text)
        if read:  # what kind of query this is, said by the other words (Sudachi cuts hiragana small)
            outside = " ".join(word for word in outside.split() if word not in read)
        outside_found = list(terms(outside)) if outside != text else found
        sentence = _is_sentence(outside, outside_found)
        counted = outside_found if read else found
        words = list(dict.fromkeys(t.text for t in found))
        if options.drop_question_words:
            words = [w for w in words if not is_question_word(w)] or words
        if (
            options.always_best_match
            or (_is_question(outside, outside_found) and len(found) > 1)
            or (sentence and len(counted) >= BEST_MATCH_MIN_TERMS)
            or (len(counted) > BEST_MATCH_MIN_TERMS and '"' not in text)
        ):
            compounds = _compounds([t for t in found if t.text in words]) if options.proximity else []
            neighbours = _neighbours(words, compounds) if options.neighbours else []
            query = expander.best_match(words, compounds, neighbours, _forms_in(analysed, found))
            return ParsedQuery(text, query, natural_language=True)
        if read:
            # Words typed in hiragana (in keywords, not a pasted headline or a question, whose best
            # match needs no word): Sudachi reads hiragana poorly (せるじお → せる + じお), so each
            # word is matched on its own, as the strict reading would, with its reading beside it;
            # and no best-match reading follows (it would match the poor reading's pieces alone).
            query = wq.And([unit for word in text.split() if (unit := _word_unit(word, schema, read.get(word)))])
            _check_leaves(query)
            query = query.normalize()
            if query is wq.NullQuery:
                raise _no_words()
            return ParsedQuery(text, expander.expand(query), natural_language=False)
        if sentence and '"' not in text:  # a few words joined by particles (存在しない語彙): all, anywhere
            forms = _forms_in(analysed, found)
            query = wq.And([expander.word((word,), forms[word]) for word in words])
            return ParsedQuery(text, query, natural_language=False, relaxable=relaxable)
    parser = _strict_parser(schema)
    try:
        query = parser.parse(text if operators else _PARENTHESES.sub(" ", text))
    except Exception as error:  # Whoosh raises assorted types for odd input (NOT NOT: IndexError)
        # DATETIME.parse_range raises a bare Exception for a range end it cannot read.
        raise (_bad_date() if "parseable date" in str(error) else _unreadable()) from None
    _check_leaves(query)
    query = query.normalize()
    if query is wq.NullQuery:  # also what Whoosh makes of excluded words alone (-半導体)
        raise _only_excluded(text.strip()) if re.search(_MINUS, text) else _no_words()
    negated = negated_part(query)
    if negated is not None:
        # Whatever says the negated word leaves its article out, as whatever says a word finds
        # its article: its synonyms (アンドロイド for Android), model names, and the word inside a
        # longer one (-東京 leaves out 東京ディズニーランド), a compound Sudachi splits too
        # (-日本代表 leaves out 日本代表団; its units stand together there, so -東京都 is no -東京).
        # Not its bigrams, which only resemble it, nor a compound's variants (a lexicon lookup
        # each part).
        negated = _Expander(replace(options, fallback=False), user_synonyms, lexicon).expand(
            negated, phrase_lookups=False
        )
    return ParsedQuery(text, expander.expand(query), natural_language=False, relaxable=relaxable, excluded=negated)


def _strict_parser(schema: Schema) -> MultifieldParser:
    """Whoosh's parser as a strict query uses it: every word required, a dash before a word
    negates it, `?` and `*` are text."""
    parser = MultifieldParser(list(TEXT_FIELDS), schema, group=AndGroup)
    # A dash standing alone is punctuation, not an operator: a pasted headline's 「…」 - 辛口説教部屋
    # vol.27 names its series, and excluded the series' every article.
    parser.add_plugin(PlusMinusPlugin(plusexpr=_WORD_START + r"\+(?=\S)", minusexpr=_MINUS))
    parser.remove_plugin_class(WildcardPlugin)  # ？ and ＊ are punctuation in Japanese text
    parser.remove_plugin_class(EveryPlugin)  # `*:*` would walk every section
    return parser


@dataclass(frozen=True)
class _Reading:
    """How a word typed in hiragana is matched: its reading as index readings (a phrase of them),
    and whether its own analysis is a word as typed (else only the reading is matched)."""

    readings: tuple[str, ...]
    spelled: bool


def _read_words(text: str, options: QueryOptions, lexicon: Lexicon | None) -> dict[str, _Reading]:
    """The words of `text` typed in hiragana that also find what they read as (see
    MIN_READING_KANA), each with its `_Reading`."""
    if not options.readings:
        return {}
    found = {}
    for word in dict.fromkeys(text.split()):
        if not (MIN_READING_KANA <= len(word) <= MAX_READING_KANA and is_hiragana_word(word)):
            continue
        own = list(terms(word))
        if len(own) == 1 and own[0].end - own[0].start == len(word) and not is_hiragana_word(own[0].text):
            continue  # the dictionary's own word (ありがとう → 有り難う, やきゅう → 野球): exact enough
        readings = _reading_pieces(to_katakana(word), lexicon)
        if readings:
            # A word begins and ends with a word, not a particle or auxiliary (せる|じお, さっ|かー):
            # else Sudachi has cut it wrongly. (A particle inside may be right: とって|おき.)
            spelled = bool(own) and own[0].start == 0 and own[-1].end == len(word)
            found[word] = _Reading(readings, spelled)
    return found


def _reading_pieces(katakana: str, lexicon: Lexicon | None) -> tuple[str, ...]:
    """`katakana` cut into readings the index holds: Sudachi's words when the index has each of
    their readings (トウキョウオリンピック → トウキョウ オリンピック), else the fewest readings the
    index has that spell it (カガワシンジ, one unknown word to Sudachi → カガワ シンジ)."""
    analysed = reading_words(katakana)
    if lexicon is None or (analysed and "".join(analysed) == katakana and all(map(lexicon.has_reading, analysed))):
        return analysed
    # fewest[end]: the fewest known readings that spell katakana[:end] (None: no way found)
    fewest: list[tuple[str, ...] | None] = [()] + [None] * len(katakana)
    for end in range(1, len(katakana) + 1):
        for start in range(end):
            before, best = fewest[start], fewest[end]
            if before is None or (best is not None and len(before) + 1 >= len(best)):
                continue
            if lexicon.has_reading(katakana[start:end]):
                fewest[end] = (*before, katakana[start:end])
    return fewest[-1] or analysed


def _word_unit(word: str, schema: Schema, reading: _Reading | None) -> wq.Query | None:
    """What one word of a strict query matches: the word as the parser reads it, and for a word
    typed in hiragana its reading too, with less weight (or alone, when the word's own analysis
    leaves some of it out: せるじお is no せる and じお)."""
    exact = None
    if reading is None or reading.spelled:
        try:
            exact = _strict_parser(schema).parse(_PARENTHESES.sub(" ", word))
        except Exception:  # Whoosh raises assorted types for odd input
            raise _unreadable() from None
    if exact is wq.NullQuery:
        exact = None
    if reading is None:
        return exact
    by_reading = _leaf("reading", reading.readings, READING_BOOST if exact is not None else 1.0)
    return by_reading if exact is None else wq.Or([exact, by_reading])


def negated_part(query: wq.Query) -> wq.Query | None:
    """What a query's top level negates (`iPhone -Android -Galaxy` → Android OR Galaxy), or None:
    the NOT children of its top AND and the excluded side of each ANDNOT down its included side."""
    negated: list[wq.Query] = []
    while isinstance(query, wq.AndNot):
        negated.append(query.b)
        query = query.a
    if isinstance(query, wq.And):
        negated += [child.query for child in query.children() if isinstance(child, wq.Not)]
    elif isinstance(query, wq.Not):
        negated.append(query.query)
    if not negated:
        return None
    return negated[0] if len(negated) == 1 else wq.Or(negated)


def relaxed_query(
    parsed: ParsedQuery,
    schema: Schema,
    options: QueryOptions = QueryOptions(),
    user_synonyms: UserSynonyms | None = None,
    lexicon: Lexicon | None = None,
) -> ParsedQuery | None:
    """The best-match reading of a strict query (an OR of its words, ranked by how much of the
    query a section covers, as a question is), or None if it has none (operators, one phrase)."""
    if not parsed.relaxable or parsed.natural_language:
        return None
    return parse_query(parsed.text, schema, replace(options, always_best_match=True), user_synonyms, lexicon)


def query_units(parsed: ParsedQuery) -> list[tuple[str, wq.Query]]:
    """The parts of a strict query that each must match (its words and phrases), each with the
    text it stands for: as typed when the query's spaced words map one to one onto them."""
    query = parsed.query
    units = list(query.children()) if isinstance(query, wq.And) else [query]
    typed = parsed.text.replace('"', " ").split()
    if len(typed) == len(units):
        return list(zip(typed, units))
    return [(_unit_text(unit), unit) for unit in units]


def _unit_text(unit: wq.Query) -> str:
    for leaf in _positive_leaves(unit):
        if getattr(leaf, "fieldname", None) in TEXT_FIELDS:
            return "".join(leaf.words) if isinstance(leaf, wq.Phrase) else str(leaf.text)
    return ""


def _quotes_in_running_text(text: str) -> bool:
    """Whether a quoted part is written right against text outside it (“AKB48のセンター”が…): a
    headline or sentence quoting a remark, not a phrase asked for."""
    for quoted in _QUOTED.finditer(text):
        before = text[quoted.start() - 1] if quoted.start() else " "
        after = text[quoted.end()] if quoted.end() < len(text) else " "
        if not (before.isspace() or before == '"') or not (after.isspace() or after == '"'):
            return True
    return False


def _check_field_names(text: str, schema: Schema) -> None:
    """Refuse a field name a person typed that is not one to search in (`fallback:`, `foo:bar`),
    and a field name with nothing after it (`title:`, `title: 日本`), instead of quietly searching
    for the name as a word. Quoted text is text; so is `https://…` and a name that is not ASCII
    (`結論:` in a pasted sentence), as Whoosh's parser takes it."""
    unquoted = _QUOTED.sub(lambda quoted: " " * len(quoted.group()), text)  # where text is, unmoved
    for found in _FIELD_NAME.finditer(unquoted):
        name, after = found.group(1), text[found.end() : found.end() + 2]
        if name in SEARCHABLE_FIELDS:
            # Nothing searchable glued to it (title: 日本, title:( , title:-): a range has its own checks.
            glued = text[found.end() :].split(maxsplit=1)[0] if after and not after[0].isspace() else ""
            if not glued.startswith(("[", "{")) and not any(character.isalnum() for character in glued):
                example = f"{name}:{_FIELD_EXAMPLES.get(name, 'トランプ')}"
                raise QueryError(
                    f"{name}: needs a word right after it, with no space ({example})",
                    f"{name}: のすぐ後ろに、空白を入れずに語を続けてください（{example}）。",
                )
            if name == "date" and not _DATE_VALUE.match(unquoted, found.end()):
                raise _bad_date()  # date:2012-05-31T10:00 read as the month, and "31t10 00" as text
            continue
        if not _ASCII_NAME.fullmatch(name) or not after or after[0].isspace() or after == "//":
            continue
        if name in schema:
            raise QueryError(
                f"{name}: is not a field you can search in; use {_FIELD_LIST}",
                f"{name}: は検索に使えない項目です。{_FIELD_LIST} のどれかを使ってください。",
            )
        raise QueryError(
            f"there is no field {name}:; search in {_FIELD_LIST}, or put the words in quotes"
            f' ("{name}:…") to search for them as text',
            f"{name}: という項目はありません。{_FIELD_LIST} のどれかを使うか、"
            f"語として検索するなら引用符で囲んでください（「{name}:…」）。",
        )


_RANGES = (wq.TermRange, wq.NumericRange, wq.Every)


def _check_leaves(query: wq.Query) -> None:
    """Refuse what the parser made of a query that would cost too much or means nothing: a range
    anywhere but on date: (`body:[あ TO 龥]` walks every word of the body between the two, tens
    of thousands), a date range open at both ends (every section), a date that is not one."""
    for leaf in query.leaves() if not query.is_leaf() else [query]:
        if getattr(leaf, "error", None) is not None:  # Whoosh's mark on a date it could not read
            raise _bad_date()
        if getattr(leaf, "fieldname", None) == "date" and isinstance(getattr(leaf, "text", None), str):
            raise _bad_date()  # date:"2012": quoted, so never read as a date (Whoosh fails at search)
        if not isinstance(leaf, _RANGES):
            continue
        if leaf.fieldname != "date":
            shown = f"[{getattr(leaf, 'start', None) or ''} TO {getattr(leaf, 'end', None) or ''}]"
            raise QueryError(
                f"a range like {shown} works only on date: (date:[2012-01 TO 2012-06]);"
                " search for words without brackets",
                f"{shown} のような範囲指定は date: にだけ使えます（date:[2012-01 TO 2012-06]）。"
                "語を検索するときは角かっこを付けないでください。",
            )
        if isinstance(leaf, wq.Every) or (leaf.start is None and leaf.end is None):
            raise _bad_date()


def _is_sentence(text: str, found: list[Term]) -> bool:
    """Words joined by particles or other kana/kanji (日本の首都), not a compound (輸出規制).

    Gaps of symbols only (COVID-19) or at the ends (H200?) do not make a sentence.
    """
    return any(
        any(unicodedata.category(ch).startswith("L") for ch in text[before.end : after.start])
        for before, after in itertools.pairwise(found)
        if not text[before.end : after.start].isspace()
    )


def _is_question(text: str, found: list[Term]) -> bool:
    """Ends like a question (？, …か) or asks with a question word (何, どこ, いつ, 誰 …)."""
    return text.rstrip("。 ").endswith(("?", "か")) or any(is_question_word(t.text) for t in found)


def is_question_word(word: str) -> bool:
    return word in QUESTION_WORDS or (len(word) == 2 and word[0] == "何")


def _compounds(found: list[Term]) -> list[tuple[str, ...]]:
    """Runs of two or more terms written with nothing between them (国家安全保障 → 国家 安全 保障)."""
    runs: list[list[str]] = [[found[0].text]] if found else []
    for before, after in itertools.pairwise(found):
        if before.end == after.start:
            runs[-1].append(after.text)
        else:
            runs.append([after.text])
    return [tuple(run) for run in runs if len(run) > 1]


def _neighbours(words: list[str], compounds: list[tuple[str, ...]]) -> list[tuple[str, str]]:
    """Each content word with the next one (8世紀に日本の首都は → 世紀 日本, 日本 首都).

    Words a question joins with a particle are mostly joined the same way in the passage that
    answers it, and positions skip particles, so the pair is a two-word phrase there.
    """
    inside = {pair for run in compounds for pair in itertools.pairwise(run)}  # already a compound's phrase
    return [pair for pair in itertools.pairwise(words) if pair not in inside]


@dataclass(frozen=True)
class WordForms:
    """What else a word matches by in the dictionary: its finest units (Sudachi mode A) and its
    synonym groups."""

    parts: tuple[str, ...]
    groups: frozenset[int]

    @classmethod
    def of(cls, text: str) -> WordForms:
        """The forms of a word analysed on its own (a word of a parsed query)."""
        groups = frozenset(group for term in terms(text) for group in term.synonym_groups)
        return cls(tuple(term.text for term in terms(text, "A")), groups)


def _forms_in(text: str, found: list[Term]) -> dict[str, WordForms]:
    """Each word's forms from the query's own analysis (`found` are the terms of `text`): its
    units are the mode A units inside it, its groups those of each place it stands."""
    units = list(terms(text, "A"))
    forms: dict[str, WordForms] = {}
    for term in found:
        groups = frozenset(term.synonym_groups)
        if term.text in forms:
            forms[term.text] = WordForms(forms[term.text].parts, forms[term.text].groups | groups)
            continue
        parts = tuple(unit.text for unit in units if term.start <= unit.start and unit.end <= term.end)
        forms[term.text] = WordForms(parts or (term.text,), groups)
    return forms


def _leaf(field_name: str, words: tuple[str, ...], boost: float = 1.0) -> wq.Query:
    if len(words) == 1:
        return wq.Term(field_name, words[0], boost=boost)
    return wq.Phrase(field_name, list(words), boost=boost)


class _Expander:
    """Adds each word's looser matches (sub-units, synonyms, fallback bigrams) beside the word."""

    def __init__(self, options: QueryOptions, user_synonyms: UserSynonyms | None, lexicon: Lexicon | None = None):
        self.options = options
        self.user_groups = user_synonyms.groups() if user_synonyms is not None else {}
        self.lexicon = lexicon

    def word(self, words: tuple[str, ...], forms: WordForms | None = None) -> wq.Query:
        """The word in any text field, or any of its alternatives."""
        return wq.Or(self._word_leaves(words, forms))

    def _word_leaves(self, words: tuple[str, ...], forms: WordForms | None = None) -> list[wq.Query]:
        return [_leaf(name, words) for name in TEXT_FIELDS] + self.alternatives(words, forms)

    def best_match(
        self,
        words: list[str],
        compounds: list[tuple[str, ...]],
        neighbours: list[tuple[str, str]],
        forms: dict[str, WordForms],
    ) -> wq.Query:
        together = [_leaf(name, run, PROXIMITY_BOOST) for run in compounds for name in ("title", "body")]
        together += [_leaf("body", pair, NEIGHBOUR_BOOST) for pair in neighbours]
        if not self.options.coverage:
            # One flat OR: an OR scores the sum of its matching children, nested or not.
            return wq.Or([leaf for word in words for leaf in self._word_leaves((word,), forms[word])] + together)
        clauses = []
        for word in words:
            alternatives = self.alternatives((word,), forms[word])
            exact = wq.Or([_leaf(name, (word,)) for name in TEXT_FIELDS])
            clauses.append(Word(word, exact, wq.Or(alternatives) if alternatives else None))
        return Coverage(clauses, together)

    def expand(self, query: wq.Query, phrase_lookups: bool = True) -> wq.Query:
        """Add alternatives beside each body-field word and phrase of a parsed query (never under
        NOT); a phrase's from the index's lexicon only with `phrase_lookups`."""
        if isinstance(query, wq.Not):
            return query
        if isinstance(query, wq.AndNot):
            return wq.AndNot(self.expand(query.a, phrase_lookups), query.b)
        if isinstance(query, (wq.Term, wq.Phrase)):
            if query.fieldname != "body":
                return query
            words = (query.text,) if isinstance(query, wq.Term) else tuple(query.words)
            alternatives = self.alternatives(words, lookups=isinstance(query, wq.Term) or phrase_lookups)
            return wq.Or([query, *alternatives]) if alternatives else query
        if query.is_leaf():
            return query
        return query.apply(lambda child: self.expand(child, phrase_lookups))

    def alternatives(
        self, words: tuple[str, ...], forms: WordForms | None = None, lookups: bool = True
    ) -> list[wq.Query]:
        """The looser matches of a word (or a phrase's words); `forms` as the query's own analysis
        found them, else the words are analysed on their own; the index's lexicon asked only with
        `lookups`."""
        options, joined = self.options, "".join(words)
        forms = forms or WordForms.of(joined)
        found: list[wq.Query] = []
        if options.subwords and forms.parts:
            found.append(_leaf("parts", forms.parts, PARTS_BOOST))
        if options.synonyms and len(words) == 1:
            found += [wq.Term("synonyms", synonym_term(g), boost=SYNONYM_BOOST) for g in sorted(forms.groups)]
        if options.fallback and len(joined) >= 3 and is_katakana_word(joined):
            found.append(_leaf("fallback", bigram_columns(joined).texts, FALLBACK_BOOST))
        for other in sorted(self.user_groups.get(words, frozenset()) - {words}):
            found += [_leaf(name, other, USER_SYNONYM_BOOST) for name in TEXT_FIELDS]
        if self.lexicon is not None and lookups:
            found += self._from_lexicon(words)
        return found

    def _from_lexicon(self, words: tuple[str, ...]) -> list[wq.Query]:
        """The matches only the index can tell: the model names a Latin word starts, and a
        compound with one part replaced by a synonym the index holds (a phrase still: 東京五輪 for
        東京オリンピック, never 東京 and 五輪 apart)."""
        assert self.lexicon is not None  # asked for only when the index gave one
        found: list[wq.Query] = []
        if (
            self.options.models
            and len(words) == 1
            and len(words[0]) >= MIN_MODEL_PREFIX
            and _LATIN_WORD.fullmatch(words[0])
        ):
            for model in self.lexicon.model_names(words[0]):
                found += [_leaf(name, (model,), MODEL_BOOST) for name in TEXT_FIELDS]
        if self.options.synonyms and len(words) > 1:
            for number, part in enumerate(words):
                groups = {group for term in terms(part) for group in term.synonym_groups}
                variants = dict.fromkeys(v for group in sorted(groups) for v in self.lexicon.variants(group, part))
                for variant in [v for v in variants if v != part][:MAX_PART_VARIANTS]:
                    replaced = (*words[:number], variant, *words[number + 1 :])
                    found += [_leaf(name, replaced, COMPOUND_SYNONYM_BOOST) for name in TEXT_FIELDS]
        return found


def _highlight_spec(query: wq.Query) -> HighlightSpec:
    """What a query marks: its words and phrases as the index matches them (`HighlightSpec`); in a
    best-match query (`Coverage`) the words of a compound are marked alone only where the section
    lacks the compound (`HighlightSpec.parts`)."""
    if isinstance(query, Coverage):
        return _coverage_spec(query)
    words, phrases, groups, substrings, units = set(), set(), set(), set(), set()
    for leaf in _positive_leaves(query):
        sequence = tuple(leaf.words) if isinstance(leaf, wq.Phrase) else (getattr(leaf, "text", None),)
        field_name = getattr(leaf, "fieldname", None)
        if field_name == "fallback":  # bigrams: the run of katakana they spell
            substrings.add(sequence[0] + "".join(b[1:] for b in sequence[1:]))
        elif field_name in TEXT_FIELDS and isinstance(leaf, wq.Phrase):
            phrases.add(sequence)
        elif field_name == "parts" and isinstance(leaf, (wq.Term, wq.Phrase)):
            units.add(sequence)
        else:
            for name, text in leaf.terms(phrases=True):
                if name in TEXT_FIELDS:
                    words.add(text)
                elif name == "synonyms":
                    groups.add(text)
    return HighlightSpec(
        frozenset(words), frozenset(groups), frozenset(substrings), frozenset(phrases), frozenset(units)
    )


def _coverage_spec(query: Coverage) -> HighlightSpec:
    """A best-match query's marks: its compounds (a phrase in titles too; a pair of neighbours is
    asked for in bodies only) as wholes, the words of a compound alone only where it is absent,
    every other word and its looser forms anywhere."""
    compounds = [
        tuple(leaf.words) for leaf in query.together if isinstance(leaf, wq.Phrase) and leaf.fieldname == "title"
    ]
    spec = _highlight_spec(wq.Or(list(query.together))) if query.together else HighlightSpec()
    parts: list[tuple[Words, HighlightSpec]] = []
    for word in query.words:
        clauses = [word.exact] if word.loose is None else [word.exact, word.loose]
        alone = _highlight_spec(wq.Or(clauses))
        inside = [compound for compound in compounds if word.text in compound]
        if inside:
            parts += [(compound, alone) for compound in inside]
        else:
            spec = spec | alone
    return replace(spec, parts=spec.parts + tuple(parts))


def _positive_leaves(query: wq.Query) -> list[wq.Query]:
    """The leaves a match may come from: none under a NOT, nor the excluded side of an ANDNOT."""
    leaves, pending = [], [query]
    while pending:
        node = pending.pop()
        if isinstance(node, wq.Not):
            continue
        if isinstance(node, wq.AndNot):
            pending.append(node.a)
        elif node.is_leaf():
            leaves.append(node)
        else:
            pending += node.children()
    return leaves
