"""Rebuild the learned ranker (`search/ranking/models/ranker.txt`) from nothing, from the training parts only.

    python bench/train_ranker.py                       # the shipped model, from the training sets
    python bench/train_ranker.py --jaquad-sample 4     # every 4th JaQuAD training question (default: all)
    python bench/train_ranker.py --custom CORPUS QUERIES QRELS --out /tmp/model.txt   # any one set
    python bench/train_ranker.py --features F.npz --folds 3   # held-out MRR@10 per set, 3 folds

The training queries are those `relevance.py --train` scores, never a dev one:
- JaQuAD training questions (`../shared/data/jaquad/train-queries.tsv` + `train-qrels.txt`), every
  `--jaquad-sample`th one (all by default); label 1 for the section that answers, 0 for the others;
- livedoor headlines `ldcc_titles.py --part train`, and the keyword set built from those
  headlines (`keyword_set.py`); label 1 for the headline's article, which its first section
  among the candidates stands for: its other sections are left out
  (`first_of_each_relevant_article` says why). Each of their rows weighs ARTICLE_LEVEL_WEIGHT.

Each query is searched as users search it (`SearchIndex.search`, default options) with a
reranker that records each candidate's features (`rerank.section_features`) instead of scoring
them: the same code computes them at search time. A query none of whose candidates is relevant
teaches nothing and is left out. One query in HELD_OUT_SHARE (by a hash of its id) is held out
for early stopping.

LightGBM's LambdaMART trains on one thread with `deterministic=True`, fixed seeds and no
sampling, so two runs over the same index write byte-identical models (`--check` trains twice
and compares).
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
import zlib
from pathlib import Path

import numpy as np
from relevance import JAQUAD, QuerySet, build_index, headline_set, jaquad_set, keyword_query_set
from trec_eval import article_of, articles_in_order, evaluate, read_qrels

from search.batch import read_queries
from search.query.parse import QueryError, QueryOptions
from search.ranking.rerank import FEATURES, MODEL_PATH, MONOTONE, RERANK_DEPTH, Reranker
from search.searching import SearchIndex

HELD_OUT_SHARE = 7  # one query in 7 is held out for early stopping
SEED = 28
PARAMETERS = {
    "objective": "lambdarank",
    "metric": "ndcg",
    "eval_at": [10],
    "lambdarank_truncation_level": 20,
    "learning_rate": 0.1,
    "num_leaves": 31,
    "min_data_in_leaf": 50,
    "min_sum_hessian_in_leaf": 1e-3,
    "lambda_l2": 1.0,
    "feature_fraction": 1.0,
    "bagging_fraction": 1.0,
    "bagging_freq": 0,
    "max_bin": 255,
    "monotone_constraints": list(MONOTONE),  # see rerank.FEATURES_AND_DIRECTIONS
    "monotone_constraints_method": "basic",
    "num_threads": 1,
    "deterministic": True,
    "force_row_wise": True,
    "seed": SEED,
    "bagging_seed": SEED,
    "feature_fraction_seed": SEED,
    "data_random_seed": SEED,
    "verbosity": -1,
}
MAX_ROUNDS = 600
# What a row of an article-level query (a headline, keywords) weighs against a JaQuAD question's.
# There are ten JaQuAD training questions to each news query (31,607 against 3,178). Every one of
# them is used: in three folds of the training queries, all of them against every 2nd gave
# held-out MRR@10 +0.0024 on JaQuAD. The news rows weigh twice, so the news sets keep the share of
# the training they had with every 2nd question: weighing 1, their MRR@10 fell by 0.01 (one fold).
ARTICLE_LEVEL_WEIGHT = 2.0
EARLY_STOPPING_ROUNDS = 40


class Recorder(Reranker):
    """A reranker that keeps the candidates' features and leaves the first stage's order."""

    def __init__(self):
        super().__init__()
        self.last: tuple[np.ndarray, np.ndarray] | None = None

    def decide(self, docnums: np.ndarray, features: np.ndarray) -> np.ndarray:
        self.last = (docnums, features)
        # Falling scores keep the first stage's order, so the hits line up with the rows (equal
        # ones would be ordered by article: `Reranker.reranked` breaks ties so).
        return -np.arange(len(docnums), dtype=np.float64)


@dataclasses.dataclass
class Collected:
    """Per query, in order: its candidates' feature rows, labels and articles, and its id."""

    rows: list[np.ndarray] = dataclasses.field(default_factory=list)
    labels: list[np.ndarray] = dataclasses.field(default_factory=list)
    articles: list[np.ndarray] = dataclasses.field(default_factory=list)  # each candidate's (a hash)
    qids: list[str] = dataclasses.field(default_factory=list)
    article_level: list[bool] = dataclasses.field(default_factory=list)  # its qrels name articles
    left_out: int = 0


def collect(query_set: QuerySet, collected: Collected, synonyms: Path) -> None:
    """Search each query of the set and keep its candidates' features and labels."""
    # No time budget: a query the budget cuts on a busy machine would be left out, and the
    # model would depend on the machine's load (15,763 JaQuAD questions kept busy, 15,801 quiet).
    index = SearchIndex(query_set.index, options=QueryOptions(), synonyms_path=synonyms, time_budget=None)
    recorder = index.reranker = Recorder()
    started, before = time.perf_counter(), len(collected.qids)
    for qid, text in query_set.queries:
        relevant = query_set.relevant.get(qid, set())
        recorder.last = None
        try:
            results = index.search(text, limit=RERANK_DEPTH, marks=False)
        except QueryError:
            collected.left_out += 1
            continue
        if recorder.last is None:  # fewer than two candidates: nothing to order
            collected.left_out += 1
            continue
        docnums, features = recorder.last
        sections = [hit.section_id for hit in results.hits][: len(docnums)]
        keys = [section.rsplit("#", 1)[0] for section in sections] if query_set.article_level else sections
        labels = np.array([key in relevant for key in keys], dtype=np.float64)
        if len(sections) != len(docnums) or not labels.any():
            collected.left_out += 1
            continue
        articles = np.array([zlib.crc32(section.rsplit("#", 1)[0].encode()) for section in sections], dtype=np.int64)
        keep = first_of_each_relevant_article(labels, articles) if query_set.article_level else slice(None)
        collected.rows.append(features[keep])
        collected.labels.append(labels[keep])
        collected.articles.append(articles[keep])
        collected.qids.append(f"{query_set.name}:{qid}")
        collected.article_level.append(query_set.article_level)
    took = time.perf_counter() - started
    print(
        f"{query_set.name}: {len(collected.qids) - before} of {len(query_set.queries)} queries with a relevant"
        f" candidate ({took:.0f} s)",
        flush=True,
    )


def first_of_each_relevant_article(labels: np.ndarray, articles: np.ndarray) -> np.ndarray:
    """Which candidates an article-level query trains on: a relevant article's first section (in
    the first stage's order) stands for it, and its other sections are left out. Labelled
    relevant too, they would teach the model to lift an article's weaker sections above its
    best one, which article-level scoring never sees but a grouped result list shows first."""
    keep = labels == 0
    relevant = np.flatnonzero(labels > 0)
    _, first = np.unique(articles[relevant], return_index=True)
    keep[relevant[first]] = True
    return keep


def save(collected: Collected, path: Path) -> None:
    """The collected features, for training again without searching again (`--features`)."""
    np.savez_compressed(
        path,
        rows=np.vstack(collected.rows),
        labels=np.concatenate(collected.labels),
        articles=np.concatenate(collected.articles),
        sizes=np.array([len(labels) for labels in collected.labels]),
        qids=np.array(collected.qids),
        article_level=np.array(collected.article_level),
        features=np.array(FEATURES),
        left_out=np.array(collected.left_out),
    )


def load(path: Path) -> Collected:
    kept = np.load(path)
    if tuple(kept["features"].tolist()) != FEATURES:
        sys.exit(f"train_ranker: {path} holds other features than rerank.FEATURES: delete it to collect again")
    if "article_level" not in kept:
        sys.exit(f"train_ranker: {path} does not say which queries are article-level: delete it to collect again")
    bounds = np.cumsum(kept["sizes"])[:-1]
    split = lambda name: np.split(kept[name], bounds)  # noqa: E731
    return Collected(
        split("rows"),
        split("labels"),
        split("articles"),
        kept["qids"].tolist(),
        kept["article_level"].tolist(),
        int(kept["left_out"]),
    )


def held_out(collected: Collected, fold: int = 0) -> np.ndarray:
    """Which queries are held out for early stopping: one in HELD_OUT_SHARE, by a hash of its id
    (`fold` picks which one; the shipped model holds out fold 0)."""
    held = np.array([zlib.crc32(qid.encode()) % HELD_OUT_SHARE == fold for qid in collected.qids])
    if held.all() or not held.any():  # a tiny set: hold out the last query
        held = np.zeros(len(collected.qids), dtype=bool)
        held[-1] = True
    return held


def fit(collected: Collected, held: np.ndarray, scored: np.ndarray | None = None):
    """A model trained on the queries neither `held` nor `scored`, early-stopping on those held;
    (the booster, its rounds, its held-out NDCG@10, the training candidates). `scored` are left
    out of both, for the caller to measure the model on."""
    import lightgbm

    def dataset(keep: np.ndarray, reference=None):
        picked = np.flatnonzero(keep)
        features = np.vstack([collected.rows[i] for i in picked])
        labels = np.concatenate([collected.labels[i] for i in picked])
        groups = [len(collected.labels[i]) for i in picked]
        weight_of = [ARTICLE_LEVEL_WEIGHT if collected.article_level[i] else 1.0 for i in picked]
        weights = np.concatenate([np.full(len(collected.labels[i]), weight) for i, weight in zip(picked, weight_of)])
        return lightgbm.Dataset(
            features,
            labels,
            group=groups,
            weight=weights,
            feature_name=list(FEATURES),
            reference=reference,
            params={"max_bin": PARAMETERS["max_bin"], "verbosity": -1},
            free_raw_data=False,
        )

    trained = ~held if scored is None else ~held & ~scored
    training = dataset(trained)
    validation = dataset(held, reference=training)
    parameters = dict(PARAMETERS)
    rows = sum(len(collected.labels[i]) for i in np.flatnonzero(trained))
    parameters["min_data_in_leaf"] = min(PARAMETERS["min_data_in_leaf"], max(1, rows // 40))
    booster = lightgbm.train(
        parameters,
        training,
        num_boost_round=MAX_ROUNDS,
        valid_sets=[validation],
        valid_names=["held out"],
        callbacks=[lightgbm.early_stopping(EARLY_STOPPING_ROUNDS, verbose=False)],
    )
    rounds = booster.best_iteration or MAX_ROUNDS
    ndcg = booster.best_score.get("held out", {}).get("ndcg@10", float("nan"))
    return booster, rounds, ndcg, rows


def train(collected: Collected, out: Path) -> tuple[int, float]:
    """Train, early-stopping on the held-out queries, and write the model; (rounds, held-out NDCG@10)."""
    held = held_out(collected)
    booster, rounds, ndcg, rows = fit(collected, held)
    out.parent.mkdir(parents=True, exist_ok=True)
    booster.save_model(str(out), num_iteration=rounds)
    print(
        f"trained on {int((~held).sum())} queries ({rows} candidates), held out {int(held.sum())}:"
        f" {rounds} rounds, held-out NDCG@10 {ndcg:.4f}",
        flush=True,
    )
    importance = booster.feature_importance("gain", iteration=rounds)
    ranked = sorted(zip(FEATURES, importance), key=lambda pair: -pair[1])
    print("gain: " + ", ".join(f"{name} {gain:.0f}" for name, gain in ranked[:12]), flush=True)
    return rounds, ndcg


def reciprocal_rank(predicted: np.ndarray, labels: np.ndarray, articles: np.ndarray, article_level: bool) -> float:
    """1/rank of the first relevant candidate in the top 10 by `predicted` (ties in the first
    stage's order), 0 if none, as `trec_eval` scores a run; article-level, each article counts
    once, where it first stands (`articles_in_order`)."""
    ranked = [f"{articles[row]}#{row}" for row in np.lexsort((np.arange(len(predicted)), -predicted))]
    relevant = {f"{articles[row]}#{row}" for row in np.flatnonzero(labels > 0)}
    if article_level:
        ranked, relevant = articles_in_order(ranked), {article_of(section) for section in relevant}
    return evaluate({"query": relevant}, {"query": ranked})["MRR@10"] if relevant else 0.0


def cross_validate(collected: Collected, folds: int) -> dict[str, float]:
    """Train once per fold, each scoring another of the HELD_OUT_SHARE parts, and print each set's
    MRR@10 over that fold's queries; returns each set's mean over the folds. What to tune the
    training on: the dev sets are for reporting only. A fold's model early-stops on the next part,
    never on the part it is scored on (that would pick its rounds by the score it reports)."""
    scores: dict[str, list[float]] = {}
    for fold in range(folds):
        scored = held_out(collected, fold)
        booster, rounds, ndcg, _ = fit(collected, held_out(collected, (fold + 1) % HELD_OUT_SHARE), scored)
        ranks: dict[str, list[float]] = {}
        for i in np.flatnonzero(scored):
            predicted = booster.predict(collected.rows[i], num_iteration=rounds, num_threads=1)
            rank = reciprocal_rank(predicted, collected.labels[i], collected.articles[i], collected.article_level[i])
            ranks.setdefault(collected.qids[i].split(":", 1)[0], []).append(rank)
        for name, values in ranks.items():
            scores.setdefault(name, []).append(float(np.mean(values)))
        shown = ", ".join(f"{name} {np.mean(values):.4f} ({len(values)})" for name, values in ranks.items())
        print(f"fold {fold}: {rounds} rounds, NDCG@10 {ndcg:.4f}; held-out MRR@10: {shown}", flush=True)
    means = {name: float(np.mean(values)) for name, values in scores.items()}
    print(f"mean of {folds} folds: " + ", ".join(f"{name} {mean:.4f}" for name, mean in means.items()), flush=True)
    return means


def training_sets(args: argparse.Namespace) -> list[QuerySet]:
    if args.custom:
        corpus, queries, qrels = args.custom
        index = args.work / "custom-index"
        return [QuerySet("custom", read_queries(queries), read_qrels(qrels), corpus, index, article_level=True)]
    jaquad = jaquad_set(args.jaquad, args.work, train=True)
    jaquad.queries = jaquad.queries[:: args.jaquad_sample]
    headlines = headline_set(args.work, "train", args.tarball)
    return [jaquad, headlines, keyword_query_set(headlines, "train")]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jaquad", type=Path, default=JAQUAD, help="folder with corpus.jsonl and train-*.tsv/txt")
    parser.add_argument("--jaquad-sample", type=int, default=1, help="every Nth JaQuAD training question")
    parser.add_argument("--tarball", type=Path, help="the livedoor tarball (default: the headline tool's)")
    parser.add_argument(
        "--custom",
        nargs=3,
        type=Path,
        metavar=("CORPUS", "QUERIES", "QRELS"),
        help="train on this one set instead (article-level qrels)",
    )
    parser.add_argument("--work", type=Path, default=Path("/tmp/midashi-relevance"), help="generated sets and indexes")
    parser.add_argument("--out", type=Path, default=MODEL_PATH, help="where the model is written")
    parser.add_argument(
        "--features", type=Path, help="keep the collected features in this .npz (reused when it exists)"
    )
    parser.add_argument("--check", action="store_true", help="train twice and check the two models are identical")
    parser.add_argument(
        "--folds", type=int, help="instead of writing a model: held-out MRR@10 per set over this many folds"
    )
    args = parser.parse_args()
    if args.jaquad_sample < 1:
        parser.error("--jaquad-sample must be 1 or more")
    if args.folds is not None and not 1 <= args.folds < HELD_OUT_SHARE:
        parser.error(f"--folds must be 1 to {HELD_OUT_SHARE - 1} (each fold early-stops on another part)")
    args.work.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    synonyms = args.work / "no-user-synonyms.txt"
    if args.features and args.features.exists():
        collected = load(args.features)
        print(f"features of {len(collected.qids)} queries read from {args.features}", flush=True)
    else:
        collected = Collected()
        for query_set in training_sets(args):
            build_index(query_set.corpus, query_set.index)
            collect(query_set, collected, synonyms)
        if args.features:
            save(collected, args.features)
    if len(collected.qids) < 2:
        sys.exit("train_ranker: fewer than two queries have a relevant candidate: nothing to learn from")
    trained = time.perf_counter()
    if args.folds:
        cross_validate(collected, args.folds)
        print(f"features {trained - started:.0f} s, {args.folds} folds {time.perf_counter() - trained:.0f} s")
        return
    train(collected, args.out)
    if args.check:
        again = args.out.with_suffix(".check")
        train(collected, again)
        same = again.read_bytes() == args.out.read_bytes()
        again.unlink()
        print(f"two trainings: {'byte-identical' if same else 'DIFFERENT'} models")
        if not same:
            sys.exit(1)
    print(
        f"wrote {args.out} ({args.out.stat().st_size:,} bytes); {len(collected.qids)} queries"
        f" ({collected.left_out} without a relevant candidate left out); features {trained - started:.0f} s,"
        f" training {time.perf_counter() - trained:.0f} s, total {time.perf_counter() - started:.0f} s"
    )


if __name__ == "__main__":
    main()
