"""The learned ranker (issue 28, item 4): the shipped model loads and scores, rankings stay
deterministic, strict matches stay above relaxed ones whatever the model says, an article that
covers a headline's subject from its lead beats a single side mention, and `bench/train_ranker.py`
rebuilds a model end to end.

On the fixture corpus (tests/fixtures/news) and articles written here: no ../shared needed.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from search.query.parse import QueryOptions
from search.ranking import rerank
from search.ranking.rerank import (
    FEATURES,
    MODEL_PATH,
    RERANK_DEPTH,
    Reranker,
    SectionTable,
)
from search.ranking.scoring import Deadline
from search.searching import SearchIndex
from tests.conftest import fixture_news_with

PROJECT = Path(__file__).resolve().parent.parent

# Our own writing, in the livedoor layout (URL, date, title, body; 【…】 lines start sections).
# A story on a rocket launch that says so in its lead and again further down, and a festival
# report with one short side section that mentions a rocket launch.
ROCKET_ARTICLES = {
    "tech/tech-0201.txt": (
        "http://example.com/tech/0201\n2012-08-15T10:00:00+0900\n"
        "北海道の宇宙ベンチャー、新型機の試験で高度100キロに到達\n"
        "北海道大樹町の宇宙ベンチャーは15日、開発中の小型ロケットの打ち上げ試験を行い、機体は"
        "予定どおり高度100キロに到達した。社長は記者会見で「民間の力で宇宙に届いた」と喜びを語った。\n"
        "【今後の計画】\n"
        "同社は来年、小型ロケットで超小型の人工衛星を軌道に運ぶ打ち上げを目指す。"
        "部品の多くを町内の工場で作り、費用を大手の十分の一に抑えるという。\n"
        "【地元の反応】\n"
        "町役場の前では住民およそ三百人が中継を見守り、打ち上げの瞬間には大きな拍手が起きた。"
        "町は観光客の増加にも期待を寄せている。\n"
    ),
    "economy/economy-0201.txt": (
        "http://example.com/economy/0201\n2012-08-16T10:00:00+0900\n"
        "港まつりに十万人、花火と屋台でにぎわう\n"
        "横浜の港まつりが16日に開かれ、主催者の発表でおよそ十万人が訪れた。夜には花火が打ち上げられ、"
        "岸壁には屋台が並んだ。実行委員会は来年も同じ規模で開く予定だ。\n"
        "【子ども向けの催し】\n"
        "小型ロケット打ち上げ教室では、子どもたちが手作りの小型ロケットの打ち上げに挑んだ。\n"
        "【交通の混雑】\n"
        "まつりの帰りには最寄り駅が混み合い、鉄道会社は臨時列車を走らせた。"
        "警察は来年に向けて誘導の方法を見直すとしている。\n"
    ),
}


@pytest.fixture(scope="module")
def news_root(tmp_path_factory) -> Path:
    return fixture_news_with(tmp_path_factory.mktemp("rerank"), ROCKET_ARTICLES)


@pytest.fixture(scope="module")
def news(news_root) -> SearchIndex:
    return SearchIndex(news_root)


def ranked(results) -> list[tuple[str, float]]:
    return [(hit.section_id, hit.score) for hit in results.hits]


def test_the_shipped_model_loads_and_scores_every_feature():
    booster = Reranker(MODEL_PATH).booster()
    assert booster.num_feature() == len(FEATURES)
    assert booster.feature_name() == list(FEATURES)
    # Two candidates alike but for how much of the query they hold: the model's directions
    # (FEATURES_AND_DIRECTIONS) never rank the one holding less above the other.
    rows = np.zeros((2, len(FEATURES)))
    rows[:, FEATURES.index("query_words")] = 3
    rows[:, FEATURES.index("rank")] = np.log1p(5)
    for name, more, less in [("score_share", 1.0, 0.3), ("bm25", 1.0, 0.4), ("idf_covered", 1.0, 0.5)]:
        rows[0, FEATURES.index(name)], rows[1, FEATURES.index(name)] = more, less
    scores = Reranker(MODEL_PATH).scores(rows)
    assert scores.shape == (2,) and np.isfinite(scores).all()
    assert scores[0] > scores[1]


def test_the_ranker_reorders_and_the_first_stage_alone_does_not(news_root):
    with_ranker = SearchIndex(news_root)
    without = SearchIndex(news_root, QueryOptions(rerank=False))
    assert with_ranker.reranker is not None and without.reranker is None
    query = "小型ロケット 打ち上げ"
    mine, theirs = with_ranker.search(query, limit=20, marks=False), without.search(query, limit=20, marks=False)
    assert {section for section, _ in ranked(mine)} == {section for section, _ in ranked(theirs)}
    scores = [score for _, score in ranked(mine)]
    assert scores == sorted(scores, reverse=True)  # the hits carry the model's scores, in order


def test_ranking_is_deterministic_in_one_process_and_a_fresh_one(news, news_root):
    queries = ["小型ロケット 打ち上げ", "日本代表 合宿", "円高が輸出企業に与える影響は何ですか", "iPhone"]
    first = [ranked(news.search(query, limit=30, marks=False)) for query in queries]
    again = [ranked(news.search(query, limit=30, marks=False)) for query in queries]
    assert first == again
    script = (
        "import json, sys\n"
        "from search.searching import SearchIndex\n"
        "index = SearchIndex(sys.argv[1])\n"
        "print(json.dumps([[[h.section_id, h.score] for h in index.search(q, limit=30, marks=False).hits]"
        " for q in json.loads(sys.argv[2])]))\n"
    )
    fresh = subprocess.run(
        [sys.executable, "-c", script, str(news_root), json.dumps(queries, ensure_ascii=False)],
        capture_output=True,
        text=True,
        cwd=PROJECT,
        env={"PYTHONPATH": str(PROJECT), "PATH": ""},
        check=True,
    )
    assert [[tuple(pair) for pair in ranking] for ranking in json.loads(fresh.stdout)] == first


class _PrefersTheLast(Reranker):
    """A model that likes each candidate more than the one before it: it would put the relaxed
    matches (the last ones) first."""

    def decide(self, docnums: np.ndarray, features: np.ndarray) -> np.ndarray:
        return np.arange(len(docnums), dtype=np.float64)


def test_strict_matches_stay_above_relaxed_ones_whatever_the_model_says(news_root):
    # Only one section has both words: the relaxed reading lists the sections with one of them.
    query = "ロケット 花火"
    first_stage = SearchIndex(news_root, QueryOptions(rerank=False)).search(query, limit=50, marks=False)
    assert first_stage.relaxed is not None and first_stage.relaxed.strict_total >= 1
    assert first_stage.relaxed.partial >= 2
    strict = first_stage.relaxed.strict_total
    strict_sections = {hit.section_id for hit in first_stage.hits[:strict]}
    contrary = SearchIndex(news_root)
    contrary.reranker = _PrefersTheLast()
    results = contrary.search(query, limit=50, marks=False)
    assert {hit.section_id for hit in results.hits[:strict]} == strict_sections
    relaxed = [hit.section_id for hit in results.hits[strict:]]
    assert relaxed == [hit.section_id for hit in first_stage.hits[strict:]][::-1]  # the model did reorder them
    scores = [hit.score for hit in results.hits]
    assert scores == sorted(scores, reverse=True)


def test_sections_beyond_the_depth_keep_their_order_below(news_root):
    index = SearchIndex(news_root)
    with index.view() as view:
        searcher = view.searcher
        docnums = np.arange(min(searcher.doc_count_all(), RERANK_DEPTH + 5))
        from search.ranking.scoring import Ranking

        ranking = Ranking(len(docnums), docnums, np.linspace(10, 1, len(docnums)), docnums)
        parsed = index.parse("日本代表 合宿")
        reordered = _PrefersTheLast().reranked(
            searcher, parsed, ranking, len(docnums), view.table(SectionTable), Deadline(None)
        )
    depth = min(RERANK_DEPTH, len(docnums))
    assert reordered.docnums[:depth].tolist() == docnums[:depth][::-1].tolist()
    assert reordered.docnums[depth:].tolist() == docnums[depth:].tolist()
    assert (np.diff(reordered.scores) <= 0).all()


def test_an_article_covering_a_headline_from_its_lead_beats_a_side_mention(news):
    # The festival's short side section says 小型ロケット打ち上げ in fewer words than anything
    # else: the first stage puts it first. The rocket story says it in its lead and again below.
    query = "小型ロケット 打ち上げ"
    first_stage = SearchIndex(news.store.root, QueryOptions(rerank=False)).search(
        query, limit=10, group=True, marks=False
    )
    assert first_stage.hits[0].section_id == "economy/economy-0201#2"
    results = news.search(query, limit=10, group=True, marks=False)
    assert [hit.section_id.split("#")[0] for hit in results.hits[:2]] == ["tech/tech-0201", "economy/economy-0201"]
    assert results.hits[0].section_id == "tech/tech-0201#1"  # the lead


TRAINING_QUERIES = {
    "q1": ("日本代表 合宿", "sports/sports-0001"),
    "q2": ("香川 移籍", "sports/sports-0002"),
    "q3": ("円高 輸出", "economy/economy-0001"),
    "q4": ("iPhone5 発表", "tech/tech-0001"),
    "q5": ("半導体 輸出規制", "economy/economy-0002"),
    "q6": ("小型ロケット 打ち上げ", "tech/tech-0201"),
    "q7": ("五輪 招致", "sports/sports-0003"),
    "q8": ("打ち上げ 花火", "economy/economy-0201"),
    "q9": ("ロケット 人工衛星", "tech/tech-0201"),
}


def test_train_ranker_rebuilds_a_loadable_model_end_to_end(news_root, tmp_path):
    corpus = news_root.parent / "corpus"
    queries, qrels = tmp_path / "queries.tsv", tmp_path / "qrels.txt"
    queries.write_text("".join(f"{qid}\t{text}\n" for qid, (text, _) in TRAINING_QUERIES.items()), encoding="utf-8")
    qrels.write_text(
        "".join(f"{qid} 0 {article} 1\n" for qid, (_, article) in TRAINING_QUERIES.items()), encoding="utf-8"
    )
    model, features = tmp_path / "model.txt", tmp_path / "features.npz"
    common = ["--custom", str(corpus), str(queries), str(qrels), "--work", str(tmp_path / "work")]
    trained = _train_ranker(*common, "--features", str(features), "--out", str(model), "--check")
    assert trained.returncode == 0, trained.stderr
    assert "byte-identical" in trained.stdout
    # The folds, from the features kept: one line per fold and their mean, for the one set.
    folded = _train_ranker(*common, "--features", str(features), "--folds", "2")
    assert folded.returncode == 0, folded.stderr
    lines = folded.stdout.splitlines()
    assert [line.split(":")[0] for line in lines if line.startswith("fold ")] == ["fold 0", "fold 1"]
    mean = next(line for line in lines if line.startswith("mean of 2 folds: custom "))
    assert 0.0 < float(mean.rsplit(" ", 1)[1]) <= 1.0
    reranker = Reranker(model)
    assert reranker.booster().feature_name() == list(FEATURES)
    index = SearchIndex(news_root)
    index.reranker = reranker
    results = index.search("ロケット 人工衛星", limit=10, marks=False)
    assert results.hits and results.hits[0].section_id.startswith("tech/tech-0201")


def _train_ranker(*arguments: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(PROJECT / "bench" / "train_ranker.py"), *arguments],
        capture_output=True,
        text=True,
        cwd=PROJECT,
        env={"PYTHONPATH": str(PROJECT), "PATH": ""},
    )


def test_a_fold_s_reciprocal_rank_counts_articles_once_where_they_ask_for_it():
    sys.path.insert(0, str(PROJECT / "bench"))
    from train_ranker import reciprocal_rank

    labels, articles = np.array([0.0, 0.0, 1.0]), np.array([5, 5, 7])
    predicted = np.array([0.9, 0.8, 0.7])
    assert reciprocal_rank(predicted, labels, articles, article_level=False) == pytest.approx(1 / 3)
    assert reciprocal_rank(predicted, labels, articles, article_level=True) == 0.5  # article 5 once
    assert reciprocal_rank(np.array([0.1, 0.2, 0.3]), labels, articles, article_level=False) == 1.0
    # Equal predictions keep the first stage's order; past the 10th, a miss.
    assert reciprocal_rank(np.ones(2), np.array([0.0, 1.0]), np.array([1, 2]), article_level=False) == 0.5
    eleventh = np.zeros(11)
    eleventh[10] = 1.0
    assert reciprocal_rank(-np.arange(11.0), eleventh, np.arange(11), article_level=False) == 0.0


def test_a_fold_s_model_never_early_stops_on_the_queries_it_is_scored_on(monkeypatch):
    """Early-stopping on the scored part would choose a model's rounds by the very score the fold
    reports: each fold stops on another part, and trains on neither."""
    sys.path.insert(0, str(PROJECT / "bench"))
    import train_ranker

    collected = train_ranker.Collected()
    for number in range(70):
        collected.qids.append(f"jaquad:q{number}")
        collected.rows.append(np.zeros((2, len(FEATURES))))
        collected.labels.append(np.array([1.0, 0.0]))
        collected.articles.append(np.array([1, 2]))
        collected.article_level.append(False)
    parts = []

    class Booster:
        def predict(self, rows, **_):
            return -np.arange(len(rows), dtype=np.float64)

    def fit(given, held, scored=None):
        parts.append((held, scored))
        return Booster(), 1, 1.0, 0

    monkeypatch.setattr(train_ranker, "fit", fit)
    means = train_ranker.cross_validate(collected, 3)
    assert means == {"jaquad": 1.0}
    assert len(parts) == 3
    for fold, (held, scored) in enumerate(parts):
        assert scored is not None and scored.any() and held.any()
        assert not (held & scored).any()
        assert (scored == train_ranker.held_out(collected, fold)).all()


def test_sections_of_equal_first_stage_score_share_their_place():
    # How the first stage orders equal scores (by docnum) depends on how the index was split into
    # segments; the reranker's features must not, so one process and several workers rank alike.
    assert rerank._tied_positions(np.array([3.0, 2.0, 2.0, 1.0, 1.0, 1.0, 0.5])).tolist() == [0, 1, 1, 3, 3, 3, 6]
    assert rerank._tied_positions(np.zeros(0)).tolist() == []


def test_neighbouring_pairs_are_the_phrases_the_first_stage_matches(news_root, monkeypatch):
    # The reranker's pair feature (from the positions it reads at its candidates) against the
    # first stage's own evaluation of each two-word body phrase over the whole index, on every
    # section of the fixture, candidates in a shuffled order; nothing taken from earlier searches.
    from whoosh import query as wq

    from search.ranking.rerank import _Candidates
    from search.ranking.scoring import Evaluation, top_documents

    monkeypatch.setattr(Evaluation, "remembered", lambda self, key: None)
    index = SearchIndex(news_root)
    words = ["日本", "代表", "合宿", "スマートフォン", "市場", "iphone", "画面", "発表"]
    found_somewhere = 0
    with index.view() as view:
        searcher = view.searcher
        shuffled = np.random.default_rng(28).permutation(searcher.doc_count_all())
        candidates = _Candidates(Evaluation(searcher), shuffled)
        for first in words:
            for second in words:
                if first == second:
                    continue
                phrase = top_documents(searcher, wq.Phrase("body", [first, second]), None).matched
                pairs = candidates.in_sequence("body", first, second)
                assert set(shuffled[pairs > 0].tolist()) == set(phrase.tolist()), (first, second)
                found_somewhere += len(phrase)
    assert found_somewhere > 0  # some pair does stand together in the fixture


def test_the_training_recorder_keeps_the_first_stage_s_order(news_root):
    # train_ranker labels the recorded rows by the hits' order: the recorder must leave the first
    # stage's order as it is (a constant score would let the tie rule reorder them by article).
    sys.path.insert(0, str(PROJECT / "bench"))
    from train_ranker import Recorder

    index = SearchIndex(news_root)
    for query in ("日本代表の合宿はいつ始まりましたか", "スマートフォン 画面", "ロケット 打ち上げ 成功"):
        index.reranker = None
        first_stage = [hit.section_id for hit in index.search(query, limit=RERANK_DEPTH, marks=False).hits]
        index.reranker = recorder = Recorder()
        recorded = [hit.section_id for hit in index.search(query, limit=RERANK_DEPTH, marks=False).hits]
        assert recorder.last is not None and len(first_stage) > 2
        assert recorded == first_stage, query


def test_the_densest_stretch_is_what_whoosh_s_own_positions_show(news_root, monkeypatch):
    # The proximity features (`_Candidates.densest`) against a plain count over the positions
    # Whoosh's own matchers read, at every section of the fixture, candidates in a shuffled order:
    # the largest idf sum of distinct words inside any stretch of `span` body positions.
    from search.ranking.rerank import DENSEST_SPANS, _Candidates
    from search.ranking.scoring import Evaluation

    monkeypatch.setattr(Evaluation, "remembered", lambda self, key: None)
    index = SearchIndex(news_root)
    words = ["小型", "ロケット", "打ち上げ", "試験", "日本", "代表", "合宿", "スマートフォン"]
    idfs = np.array([1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0])  # each sum tells its words apart
    several = 0
    with index.view() as view:
        searcher = view.searcher
        shuffled = np.random.default_rng(28).permutation(searcher.doc_count_all())
        candidates = _Candidates(Evaluation(searcher), shuffled)
        spans = (1, 2, 3, *DENSEST_SPANS)  # (short ones: the stretch's end is exact)
        for span, found in candidates.densest("body", words, idfs, spans).items():
            for row, docnum in enumerate(shuffled.tolist()):
                placed = [
                    (position, word, idf)
                    for word, idf in zip(words, idfs)
                    for position in _whoosh_positions(searcher, "body", word, docnum)
                ]
                expected = max(
                    (sum({w: i for p, w, i in placed if start <= p < start + span}.values()) for start, _, _ in placed),
                    default=0.0,
                )
                assert found[row] == expected, (span, docnum)
                several += expected not in idfs and expected > 0
    assert several > 0  # some section holds several of the words within a stretch


def _whoosh_positions(searcher, field: str, word: str, docnum: int) -> list[int]:
    """The word's positions in one document, as Whoosh's own matcher reads them."""
    if (field, word) not in searcher.reader():
        return []
    postings = searcher.postings(field, word)
    postings.skip_to(docnum)
    return list(postings.value_as("positions")) if postings.is_active() and postings.id() == docnum else []
