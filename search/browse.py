"""Everything around a search besides ranking: reading an article, related articles, suggestions.

`Browser` wraps a `SearchIndex` so the web layer (and anything else) gets whole articles with the
query's terms marked, related articles (`related_articles`), search-as-you-type completions and,
when a search finds nothing, other queries that would find something.
"""

from __future__ import annotations

import itertools
import math
import re
import time
from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from operator import attrgetter

import numpy as np
from rapidfuzz import process
from rapidfuzz.distance import OSA
from whoosh.searching import Searcher

from .analysis.sudachi import terms
from .query.parse import HighlightSpec, QueryError, normalize_query
from .searching import ArticleGroup, ArticleMap, Filters, GenerationView, SearchIndex, article_fields
from .snippets import Snippet, mark_whole, short_snippet
from .sources.articles import SECTION_SEPARATOR

MAX_ARTICLE_ID_CHARS = 300
RELATED_ARTICLES = 5
# Related articles share an article's most distinctive words: its RELATED_KEY_TERMS nouns of the
# highest tf-idf (a title's words count RELATED_TITLE_WEIGHT times), and another article is
# related when it has at least RELATED_MIN_TERMS of them weighing RELATED_MIN_SHARE of their
# weight. Fewer or none rather than articles that share a common word or two (issue 29: the H200
# export article was "related" to レアアース, 韓流 and スマホ stories).
RELATED_KEY_TERMS = 12
RELATED_TITLE_WEIGHT = 3
RELATED_MIN_TERMS = 2
RELATED_MIN_SHARE = 0.25
# A word in more than this share of all sections says nothing about a topic (日本, 今回); in a
# small index, where any word is in a large share, a word in RELATED_FEW_SECTIONS still may.
RELATED_MAX_DF_SHARE = 0.05
RELATED_FEW_SECTIONS = 10
# How many times RELATED_KEY_TERMS candidates are weighed by the articles that have them.
RELATED_CANDIDATES = 3
_HIRAGANA = re.compile(r"[ぁ-ゖ]")
# An article page analyses a bounded part of its article: its key terms for related articles are
# taken from the opening this long, and matches are marked in this many characters of it, the
# rest shown plain. A 17.5 MB article with no sentence ends took 70-87 s and left the server at
# 6.9 GB when every paragraph went through Sudachi.
RELATED_TEXT_CHARS = 20_000
MARKED_ARTICLE_CHARS = 200_000
SUGGESTIONS = 8
# A result's other matching sections each show one line of their text: at most this many of
# them per article (the rest show their heading), each fragment at most this many characters.
OTHER_SNIPPETS = 3
OTHER_SNIPPET_CHARS = 60
# How many lexicon entries a prefix may expand to before we stop looking (a one-letter prefix).
PREFIX_SCAN = 2000
MAX_ALTERNATIVES = 5
MIN_RESPELL_CHARS = 3
# Finding alternatives costs a search per candidate and a comparison with the whole vocabulary per
# unknown word (see `Vocabulary`), all after the search itself: without bounds a query of 999
# unknown katakana kept a server thread busy for minutes, and one of 30 unknown words for 42 s
# (when each word walked the term index). So a long word is not
# respelled, a long query does not try dropping each of its words, and the whole stops when the
# index's time budget has passed (at most one more step after it).
MAX_RESPELL_CHARS = 16
MAX_DROPPED_WORDS = 8
_PLAIN_WORD = re.compile(r"[^\"':()*?+\-]+")
_UNSAFE_ID = re.compile(r"[\x00-\x1f\x7f\\]")


@dataclass(frozen=True)
class ArticleSection:
    """One section of an article as read on its page: heading and paragraphs, matches marked."""

    number: int
    section_id: str
    heading: Snippet
    paragraphs: list[Snippet]
    matched: bool


@dataclass(frozen=True)
class RelatedArticle:
    article_id: str
    title: str
    date: datetime | None
    source: str
    category: str


@dataclass(frozen=True)
class ArticleView:
    """A whole article: its fields, every section in order, and articles like it."""

    article_id: str
    title: Snippet
    date: datetime | None
    source: str
    category: str
    url: str
    sections: list[ArticleSection]
    related: list[RelatedArticle]


@dataclass(frozen=True)
class Suggestions:
    """Completions for a partly typed query: whole queries, and article titles that contain it."""

    queries: list[str]
    titles: list[tuple[str, str]]  # (article_id, title)


@dataclass(frozen=True)
class Alternative:
    """A query that finds something where the user's query found nothing, and why we offer it."""

    query: str
    total: int
    reason: str  # "drop-word" | "spelling" | "no-filters"
    filtered: bool  # keeps the user's filters

    def as_json(self) -> dict:
        return {"query": self.query, "total": self.total, "reason": self.reason}


def valid_article_id(article_id: str) -> bool:
    """Ids are relative corpus paths: no empty, `.` or `..` parts, no backslashes or control chars."""
    if not article_id or len(article_id) > MAX_ARTICLE_ID_CHARS or _UNSAFE_ID.search(article_id):
        return False
    if SECTION_SEPARATOR in article_id:
        return False
    return all(part not in ("", ".", "..") for part in article_id.split("/"))


class Browser:
    """Article pages, related articles and suggestions over one `SearchIndex`."""

    def __init__(self, index: SearchIndex):
        self.index = index

    def warm(self) -> None:
        """Build what the first search and its suggestions need (see `SearchIndex.warm`)."""
        self.index.warm(Vocabulary)

    def _highlight(self, query: str) -> HighlightSpec | None:
        """What to mark for `query`; None (nothing to analyse) for an empty or unusable query."""
        try:
            spec = self.index.highlight(query) if query and query.strip() else None
        except QueryError:
            return None
        return spec or None

    def article(self, article_id: str, query: str = "") -> ArticleView | None:
        """The article with `query`'s terms marked (an unusable query marks nothing); None if unknown."""
        if not valid_article_id(article_id):
            return None
        spec = self._highlight(query)
        with self.index.view() as view:
            searcher = view.searcher
            docnums = sorted(
                searcher.document_numbers(article_id=article_id),
                key=lambda docnum: searcher.stored_fields(docnum).get("section_number", 0),
            )
            if not docnums:
                return None
            stored = [searcher.stored_fields(docnum) for docnum in docnums]
            first = stored[0]
            if spec is not None:  # a compound's words alone are marked only in an article without it
                spec = spec.for_section(*_marked_texts(first.get("title", ""), stored))
            sections, marked = [], 0
            for fields in stored:
                sections.append(_section(fields, spec if marked < MARKED_ARTICLE_CHARS else None))
                marked += len(fields.get("body", ""))
            body = "\n".join(fields.get("body", "") for fields in stored)[:RELATED_TEXT_CHARS]
            related = related_articles(view, article_id, first.get("title", ""), body)
        return ArticleView(
            article_id=article_id,
            title=mark_whole(first.get("title", ""), spec),
            sections=sections,
            related=related,
            **article_fields(first),
        )

    def other_snippets(self, groups: list[ArticleGroup], query: str) -> dict[str, Snippet]:
        """One short snippet (section_id → it) for each of the first OTHER_SNIPPETS other
        matching sections of each article in `groups`, in article order, so a result list can say
        what each of them is about (a search computes snippets for best sections only)."""
        spec = self._highlight(query)
        wanted = {
            group.best.article_id: {
                o.section_id for o in sorted(group.others, key=attrgetter("section_number"))[:OTHER_SNIPPETS]
            }
            for group in groups
            if group.others
        }
        if spec is None or not wanted:
            return {}
        snippets: dict[str, Snippet] = {}
        with self.index.view() as view:
            searcher = view.searcher
            for article_id, section_ids in wanted.items():
                for docnum in searcher.document_numbers(article_id=article_id):
                    fields = searcher.stored_fields(docnum)
                    if fields["section_id"] in section_ids:
                        texts = (fields.get("title", ""), fields.get("heading", ""), fields.get("body", ""))
                        snippets[fields["section_id"]] = short_snippet(
                            texts[2], spec.for_section(*texts), 1, OTHER_SNIPPET_CHARS
                        )
        return snippets

    def suggest(self, text: str, limit: int = SUGGESTIONS) -> Suggestions:
        """Completions of the last word, and titles containing the text. The people the index
        names that the word begins come first (香川 → 香川真司: Sudachi splits a full name in
        two, so no single term completes it), then the most frequent index terms it begins."""
        text = normalize_query(text or "")[:100]
        if not text:
            return Suggestions([], [])
        head, _, last = text.rpartition(" ")
        with self.index.view() as view:
            reader = view.searcher.reader()
            people = [name for name in _frequent(reader, "people", last) if name != last][: (limit + 1) // 2]
            frequent = _frequent(reader, "body", last.lower())
            every_title = view.table(TitleList).titles
        # Only what a search can find: the index keeps some symbols (%, (^-^)/) no query searches.
        completions = dict.fromkeys(term for term in [*people, *frequent] if any(c.isalnum() for c in term))
        queries = [f"{head} {term}".strip() for term in itertools.islice(completions, limit)]
        needle = text.casefold()
        titles = [(article_id, title) for folded, title, article_id in every_title if needle in folded][:limit]
        return Suggestions(queries, titles)

    def alternatives(self, query: str, filters: Filters | None = None) -> list[Alternative]:
        """Queries that find something when `query` found nothing: the same without the filters,
        without one of its words, or with a word spelled as the index knows it."""
        words = normalize_query(query or "").split(" ")
        budget = self.index.time_budget
        deadline = None if budget is None else time.monotonic() + budget
        candidates: list[tuple[str, str, bool]] = []
        if filters:
            candidates.append((" ".join(words), "no-filters", False))
        if 1 < len(words) <= MAX_DROPPED_WORDS:
            candidates += [(" ".join(words[:i] + words[i + 1 :]), "drop-word", True) for i in range(len(words))]
        candidates += [(corrected, "spelling", True) for corrected in self._respellings(words, deadline)]
        found: list[Alternative] = []
        for candidate, reason, keep_filters in dict.fromkeys(candidates):
            if _past(deadline):
                break
            total = self._count(candidate, filters if keep_filters else None)
            if total:
                found.append(Alternative(candidate, total, reason, keep_filters and bool(filters)))
        found.sort(key=lambda alternative: -alternative.total)
        return found[:MAX_ALTERNATIVES]

    def _respellings(self, words: list[str], deadline: float | None = None) -> list[str]:
        """The query with one unknown word replaced by the nearest word the index has.

        Whole words are corrected, not their Sudachi pieces (a typo splits 半導体 into odd bits),
        and only words of MIN_RESPELL_CHARS to MAX_RESPELL_CHARS characters: one edit away from a
        two-kanji word is any other word, and a very long word costs a walk of the lexicon for
        nothing. A word with a digit is a model number, never corrected.
        A word counts as missing when one of its terms is not in the index, or when it finds
        nothing as typed (デズニーランド: ディズニー and ランド are, but never together).
        """
        respelled: list[str] = []
        with self.index.view() as view:
            reader = view.searcher.reader()
            for i, word in enumerate(words):
                if _past(deadline):
                    break
                if not MIN_RESPELL_CHARS <= len(word) <= MAX_RESPELL_CHARS or not _PLAIN_WORD.fullmatch(word):
                    continue  # leave syntax (phrases, fields, negation) alone
                if any(ch.isdigit() for ch in word):
                    continue  # a model number is exact: H20 is no misspelling of 20 or H200
                known = all(reader.doc_frequency("body", term.text) for term in terms(word))
                if known and self._count(word, None):
                    continue
                for fixed in nearest_terms(reader, view.table(Vocabulary), word.lower(), limit=2):
                    respelled.append(" ".join([*words[:i], fixed, *words[i + 1 :]]))
        return respelled

    def _count(self, query: str, filters: Filters | None) -> int:
        if not query.strip():
            return 0
        try:
            return self.index.search(query, limit=1, marks=False, filters=filters, relax=False).total
        except QueryError:
            return 0


@dataclass(frozen=True)
class KeyTerm:
    """One of an article's most distinctive words, and the other articles that have it."""

    word: str
    weight: float
    others: np.ndarray  # their numbers (`ArticleMap`)


def key_terms(view: GenerationView, article_id: str, title: str, body: str) -> list[KeyTerm]:
    """An article's RELATED_KEY_TERMS most distinctive words, the highest weight first. A word's
    weight is (1 + log tf) × idf over articles, a title's words counted RELATED_TITLE_WEIGHT
    times. Words without hiragana only (nouns and names: 輸出, エヌビディア, H200; not 述べる,
    大きい) that another article has, in at most RELATED_MAX_DF_SHARE of the sections (or
    RELATED_FEW_SECTIONS)."""
    counts: Counter[str] = Counter()
    for text, times in ((title, RELATED_TITLE_WEIGHT), (body, 1)):
        for term in terms(text):
            if len(term.text) > 1 and not _HIRAGANA.search(term.text) and not term.text.isdigit():
                counts[term.text] += times
    reader = view.searcher.reader()
    numbers = view.table(ArticleMap).numbers
    own = view.searcher.document_number(article_id=article_id)
    own_number = int(numbers[own]) if own is not None else -1
    total_articles = int(numbers.max()) + 1 if len(numbers) else 0
    sections = reader.doc_count()
    most = max(RELATED_MAX_DF_SHARE * sections, RELATED_FEW_SECTIONS)
    # First by the sections' document frequency (no postings read), then the best few of them by
    # the articles that have them: reading every noun's postings took a second for some articles.
    rough = []
    for word, count in counts.items():
        frequency = reader.doc_frequency("body", word) + reader.doc_frequency("title", word)
        if 2 <= frequency <= 2 * most:  # in another section, and not in too many to say anything
            rough.append(((1 + math.log(count)) * math.log(2 * sections / frequency), word, count))
    rough.sort(key=lambda item: (-item[0], item[1]))
    weighted: list[KeyTerm] = []
    for _, word, count in rough[: RELATED_CANDIDATES * RELATED_KEY_TERMS]:
        articles = _articles_with(reader, numbers, word)
        others = articles[articles != own_number]
        if len(others):
            weighted.append(KeyTerm(word, (1 + math.log(count)) * math.log(total_articles / len(articles)), others))
    weighted.sort(key=lambda key: (-key.weight, key.word))
    return weighted[:RELATED_KEY_TERMS]


def related_articles(view: GenerationView, article_id: str, title: str, body: str) -> list[RelatedArticle]:
    """Articles that share the article's key terms (`key_terms`): each other article scores the
    share of their weight it holds (in any section's title or body), and those with at least
    RELATED_MIN_TERMS of them and RELATED_MIN_SHARE of the weight come, the best first; none
    when no article is that close."""
    keys = key_terms(view, article_id, title, body)
    if not keys:
        return []
    size = max(int(key.others.max()) for key in keys) + 1
    share, shared = np.zeros(size), np.zeros(size, dtype=np.int64)
    total = sum(key.weight for key in keys)
    for key in keys:
        share[key.others] += key.weight / total
        shared[key.others] += 1
    close = np.flatnonzero((share >= RELATED_MIN_SHARE) & (shared >= RELATED_MIN_TERMS))
    best = close[np.lexsort((close, -share[close]))][:RELATED_ARTICLES]
    sections = view.table(ArticleMap).numbers
    reader = view.searcher.reader()
    related = []
    for number in best.tolist():
        live = (docnum for docnum in np.flatnonzero(sections == number).tolist() if not reader.is_deleted(docnum))
        fields = view.searcher.stored_fields(next(live))  # it has a key term: some section is live
        related.append(
            RelatedArticle(
                fields["article_id"],
                fields.get("title", ""),
                fields.get("date"),
                fields.get("source", ""),
                fields.get("category", ""),
            )
        )
    return related


def _articles_with(reader, numbers: np.ndarray, word: str) -> np.ndarray:
    """The numbers of the articles with `word` in a section's title or body."""
    docnums = [
        docnum
        for name in ("body", "title")
        if reader.doc_frequency(name, word)
        for docnum in reader.postings(name, word).all_ids()
        if not reader.is_deleted(docnum)
    ]
    found = numbers[np.array(docnums, dtype=np.int64)]
    return np.unique(found[found >= 0])


def _frequent(reader, field_name: str, prefix: str) -> list[str]:
    """The terms of `field_name` that begin with `prefix`, those in the most sections first
    (none in an index built before the field)."""
    if field_name not in reader.schema or not prefix:
        return []
    candidates = itertools.islice(reader.expand_prefix(field_name, prefix), PREFIX_SCAN)
    counted = sorted(
        ((reader.doc_frequency(field_name, term), term.decode("utf-8")) for term in candidates), reverse=True
    )
    return [term for _, term in counted]


# The fields whose words a misspelling is corrected to: a headline's words are in the titles.
RESPELL_FIELDS = ("body", "title")


def nearest_terms(reader, vocabulary: Vocabulary, word: str, limit: int) -> list[str]:
    """The index's words nearest to `word` (Damerau-Levenshtein distance, optimal string alignment:
    at most 1 below six characters and 2 from six up), the nearest first and, at the same
    distance, those in the most sections first."""
    most = 1 if len(word) < 6 else 2
    near = process.extract(word, vocabulary.words, scorer=OSA.distance, score_cutoff=most, limit=None)
    found = [(distance, term) for term, distance, _ in near if distance > 0]
    frequency = {term: sum(reader.doc_frequency(name, term) for name in RESPELL_FIELDS) for _, term in found}
    return [term for _, term in sorted(found, key=lambda item: (item[0], -frequency[item[1]], item[1]))][:limit]


class Vocabulary:
    """The words a misspelling may be corrected to: every term of RESPELL_FIELDS of a respellable
    length, a table of one generation. Walking the term index for each misspelling took 8.6 s on
    livedoor (past the time budget, so no suggestion at all); listing it once takes about a
    second, and rapidfuzz compares a word with the 45,000 listed in about 10 ms."""

    def __init__(self, words: list[str]):
        self.words = words

    @classmethod
    def build(cls, reader) -> Vocabulary:
        longest = MAX_RESPELL_CHARS + 2  # a word within two edits of a respellable one
        words = {
            term
            for leaf, _ in reader.leaf_readers()
            for field_name in RESPELL_FIELDS
            for term in leaf.lexicon(field_name)
            if MIN_RESPELL_CHARS <= len(term) <= 4 * longest  # UTF-8 bytes: a cheap first cut
        }
        texts = (term.decode("utf-8") for term in words)
        return cls(sorted(text for text in texts if MIN_RESPELL_CHARS <= len(text) <= longest))


class TitleList:
    """Every article's title, newest first, for suggestions: a table of one generation."""

    def __init__(self, titles: list[tuple[str, str, str]]):
        self.titles = titles  # (casefolded title, title, article id)

    @classmethod
    def build(cls, reader) -> TitleList:
        titles = sorted(
            (fields.get("date") or datetime.min, fields.get("title", ""), fields["article_id"])
            for fields in Searcher(reader).documents(section_number=1)
        )
        return cls([(title.casefold(), title, article_id) for _, title, article_id in reversed(titles)])


def _marked_texts(title: str, stored: list[dict]) -> list[str]:
    """The article's texts its page marks matches in: the title, and each section's heading and
    body up to MARKED_ARTICLE_CHARS of bodies (the rest is shown plain)."""
    texts, marked = [title], 0
    for fields in stored:
        if marked >= MARKED_ARTICLE_CHARS:
            break
        texts += [fields.get("heading", ""), fields.get("body", "")]
        marked += len(fields.get("body", ""))
    return texts


def _section(fields: dict, spec: HighlightSpec | None) -> ArticleSection:
    paragraphs = [mark_whole(line, spec) for line in fields.get("body", "").split("\n") if line.strip()]
    heading = mark_whole(fields.get("heading", ""), spec)
    return ArticleSection(
        number=fields.get("section_number", 0),
        section_id=fields["section_id"],
        heading=heading,
        paragraphs=paragraphs,
        matched=heading.has_match() or any(p.has_match() for p in paragraphs),
    )


def _past(deadline: float | None) -> bool:
    return deadline is not None and time.monotonic() > deadline
