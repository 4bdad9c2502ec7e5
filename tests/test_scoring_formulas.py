"""One of each: the BM25 formula, the coverage maths and the phrase check, each written once and
equal to Whoosh's own (its `bm25()`, `idf()`, `CoverageMatcher` walked by Whoosh's collector,
its phrase matcher), on the fixture and generated corpus: no ../shared needed."""

from __future__ import annotations

import random
from collections import defaultdict

import numpy as np
import pytest
from whoosh import index as whoosh_index
from whoosh import query as wq
from whoosh import scoring as whoosh_scoring
from whoosh.formats import Positions
from whoosh.scoring import BM25F

from search import memory
from search.codec.schema import build_schema, section_documents
from search.codec.segments import ArraySegmentWriter
from search.query.coverage import Coverage
from search.query.parse import parse_query
from search.ranking import bm25, scoring
from search.sources.articles import Article
from search.sources.readers import read_corpus
from tests.conftest import CORPUS, FIXTURE_NEWS


def test_bm25_is_whooshs_to_the_last_bit():
    rng = random.Random(27)
    for _ in range(200):
        K1, B = rng.choice([1.2, 0.0, 2.5, rng.uniform(0, 3)]), rng.choice([0.75, 0.0, 1.0, rng.random()])
        idf, avgfl = rng.uniform(0.01, 12), rng.choice([1.0, rng.uniform(0.5, 900)])
        tf = np.array([rng.choice([1.0, 2.0, 0.5, rng.uniform(0.1, 300)]) for _ in range(8)])
        fl = np.array([rng.choice([1.0, 0.0, float(rng.randrange(1, 5000))]) for _ in range(8)])
        ours = bm25.term_scores(idf, tf, bm25.length_norms(fl, B, K1, avgfl), K1)
        theirs = [whoosh_scoring.bm25(idf, t, f, avgfl, B, K1) for t, f in zip(tf.tolist(), fl.tolist())]
        assert ours.tolist() == theirs  # equal, not approximately
    for documents, frequency in [(1, 0), (1, 1), (10, 3), (7367, 0), (7367, 7366), (10**6, 12)]:
        assert bm25.idf(documents, frequency) == np.log(documents / (frequency + 1)) + 1


@pytest.fixture(scope="module")
def documents(generated_news) -> list[dict]:
    articles = read_corpus([CORPUS, FIXTURE_NEWS, generated_news])
    return [document for article in articles if isinstance(article, Article) for document in section_documents(article)]


def _index(folder, documents: list[dict], body_format=None):
    """The documents in one segment of our codec; the body's positions in `body_format` if given
    (Whoosh's own, pickled per posting), else as arrays."""
    schema = build_schema()
    if body_format is not None:
        schema["body"].format = body_format
    ix = whoosh_index.create_in(str(folder), schema)
    writer = ArraySegmentWriter(ix)
    for document in documents:
        writer.add_document(**document)
    writer.commit(merge=False)
    return ix


@pytest.fixture(scope="module", params=["array-positions", "whoosh-positions"])
def index(request, documents, tmp_path_factory):
    body_format = None if request.param == "array-positions" else Positions(field_boost=1.0)
    return _index(tmp_path_factory.mktemp(request.param), documents, body_format)


def test_idf_is_whooshs(index):
    with index.searcher(weighting=BM25F()) as searcher:
        evaluation = scoring.Evaluation(searcher)
        terms = [btext for fieldname, btext in searcher.reader().all_terms() if fieldname == "body"]
        assert len(terms) > 300
        for btext in terms:
            assert evaluation.idf("body", btext) == searcher.idf("body", btext.decode())


def _phrases(ix, per_section: int = 3) -> list[list[str]]:
    """Runs of two and three body words standing together in sections of the index, and the
    same pairs the other way round (which stand together far less often)."""
    at: dict[int, dict[int, str]] = defaultdict(dict)
    with ix.reader() as reader:
        for fieldname, btext in reader.all_terms():
            if fieldname == "body":
                for docnum, positions in reader.postings("body", btext).items_as("positions"):
                    for position in positions:
                        at[docnum][position] = btext.decode()
    phrases = []
    for docnum in sorted(at)[::9]:
        words = at[docnum]
        starts = [p for p in sorted(words) if p + 1 in words][:per_section]
        for start in starts:
            phrases.append([words[start], words[start + 1]])
            phrases.append([words[start + 1], words[start]])
            if start + 2 in words:
                phrases.append([words[start], words[start + 1], words[start + 2]])
    return phrases


def _whooshs(searcher, query) -> dict[int, float]:
    return {hit.docnum: hit.score for hit in searcher.search(query, limit=None)}


def _ours(searcher, query) -> dict[int, float]:
    ranking = scoring.top_documents(searcher, query, None)
    return dict(zip(ranking.docnums.tolist(), ranking.scores.tolist()))


@pytest.mark.parametrize("few", [0, 10**9], ids=["array-check", "one-by-one-check"])
def test_the_one_phrase_check_finds_what_whooshs_phrase_matcher_finds(index, monkeypatch, few):
    # Both strategies of `in_sequence`, over positions stored as arrays and decoded from
    # Whoosh's own format: the same sections as Whoosh's SpanNear2, the same scores.
    monkeypatch.setattr(scoring, "FEW_CANDIDATES", few)
    memory.forget()
    phrases = _phrases(index)
    assert len(phrases) > 40
    matched = 0
    with index.searcher(weighting=BM25F()) as searcher:
        for words in phrases:
            query = wq.Phrase("body", words)
            ours, theirs = _ours(searcher, query), _whooshs(searcher, query)
            assert ours.keys() == theirs.keys(), words
            assert list(ours.values()) == pytest.approx([theirs[docnum] for docnum in ours], rel=1e-12, abs=0)
            matched += bool(ours)
            # Fewer sections than the words' intersection: the check did something.
            both = _ours(searcher, wq.And([wq.Term("body", word) for word in words]))
            assert ours.keys() <= both.keys()
    assert 0 < matched < len(phrases)  # the reversed pairs mostly stand together nowhere


QUESTIONS = (
    "香川真司はどのクラブへ移籍しましたか？",
    "エヌビディアの新しいチップの消費電力はどれくらい減りましたか？",
    "トランプ大統領が中国への輸出を承認した半導体はどのチップですか",
    "スマートフォンで待ち時間を確認できるアプリはありますか",
    "日本の首都はどこですか",
)


def test_coverage_scores_over_arrays_as_whooshs_collector_walks_them(index):
    # The array evaluation (`Evaluation._coverage`) and Whoosh's walk of `CoverageMatcher` share
    # `coverage.coverage_scores` and `CREDITS`: the same sections, the same scores (up to the
    # order in which a section's clause scores are added).
    with index.searcher(weighting=BM25F()) as searcher:
        for question in QUESTIONS:
            query = parse_query(question, index.schema).query
            assert _has_coverage(query), question
            ours, theirs = _ours(searcher, query), _whooshs(searcher, query)
            assert ours and ours.keys() == theirs.keys(), question
            assert list(ours.values()) == pytest.approx([theirs[docnum] for docnum in ours], rel=1e-12, abs=0)


def _has_coverage(query: wq.Query) -> bool:
    return isinstance(query, Coverage) or any(_has_coverage(child) for child in query.children())
