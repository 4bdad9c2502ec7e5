"""A fixed, mixed query set for latency benchmarks.

    python bench/perf_queries.py

Search cost depends on the query's shape far more than on its text: a rare keyword touches a few
postings, a very common word touches most of the index, a quoted phrase needs positions, and a
pasted question becomes a wide best-match OR. A benchmark of one shape would hide the others'
cost, so the set mixes all four, drawn from real titles and real questions, and is deterministic
(same seed, same queries) so runs can be compared.
"""

from __future__ import annotations

import argparse
import itertools
import random
import re
import sys
from pathlib import Path

from search.analysis.sudachi import terms
from search.sources.readers import Article, read_corpus

COMMON_WORDS = ("日本", "発表", "映画", "女性", "今年")
KEYWORD_QUERIES = 25
PHRASE_QUERIES = 15
QUESTION_QUERIES = 15
_HIRAGANA = re.compile(r"[\u3041-\u309f]+")
ARTICLES_READ = 500  # enough titles to draw from; reading the whole corpus would take minutes


def livedoor_titles(livedoor_tarball: Path) -> list[str]:
    """Titles of the tarball's first articles."""
    return [
        article.title
        for article in itertools.islice(read_corpus([livedoor_tarball]), ARTICLES_READ)
        if isinstance(article, Article) and article.title
    ]


def mixed_queries(titles: list[str], jaquad_queries: Path, seed: int = 7) -> list[tuple[str, str]]:
    """About 60 (kind, query) pairs: "keywords", "common", "phrase" and "question" queries."""
    rng = random.Random(seed)
    queries = [("keywords", query) for query in _keyword_queries(titles, rng)]
    queries += [("common", word) for word in COMMON_WORDS]
    queries += [("phrase", query) for query in _phrase_queries(titles, rng)]
    queries += [("question", query) for query in _questions(jaquad_queries, rng)]
    return queries


def _keyword_queries(titles: list[str], rng: random.Random) -> list[str]:
    """1–3 content words of a random title, space-separated (all required).

    All-hiragana words are skipped: Sudachi splits kana runs into fragments (たま, っと) that no
    reader would type.
    """
    queries: list[str] = []
    for title in rng.sample(titles, len(titles)):
        words = list(
            dict.fromkeys(
                title[t.start : t.end]
                for t in terms(title)
                if t.end - t.start >= 2 and not _HIRAGANA.fullmatch(title[t.start : t.end])
            )
        )
        if words:
            chosen = rng.sample(words, min(len(words), rng.randint(1, 3)))
            queries.append(" ".join(chosen))
        if len(queries) == KEYWORD_QUERIES:
            break
    return queries


def _phrase_queries(titles: list[str], rng: random.Random) -> list[str]:
    """Two adjacent content words of a random title, as a quoted phrase."""
    queries: list[str] = []
    for title in rng.sample(titles, len(titles)):
        found = list(terms(title))
        spans = [
            title[first.start : second.end]
            for first, second in itertools.pairwise(found)
            if first.end == second.start and second.end - first.start >= 3
        ]
        phrase = f'"{rng.choice(spans)}"' if spans else ""
        if phrase and phrase not in queries:
            queries.append(phrase)
        if len(queries) == PHRASE_QUERIES:
            break
    return queries


def _questions(jaquad_queries: Path, rng: random.Random) -> list[str]:
    """Random JaQuAD questions (`qid<TAB>question` lines)."""
    questions = [
        line.split("\t", 1)[1].strip()
        for line in jaquad_queries.read_text(encoding="utf-8").splitlines()
        if "\t" in line
    ]
    return rng.sample(questions, QUESTION_QUERIES)


def main() -> None:
    """Print the query set, one `kind<TAB>query` line each."""
    root = Path(__file__).resolve().parent.parent
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--livedoor", type=Path, default=root.parent / "shared/data/ldcc-20140209.tar.gz")
    parser.add_argument("--jaquad", type=Path, default=root.parent / "shared/data/jaquad/queries.tsv")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    for path in (args.livedoor, args.jaquad):
        if not path.is_file():
            sys.exit(f"perf_queries: {path} not found")
    for kind, query in mixed_queries(livedoor_titles(args.livedoor), args.jaquad, args.seed):
        print(f"{kind}\t{query}")


if __name__ == "__main__":
    main()
