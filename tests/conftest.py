"""Shared fixtures: the real texts tests run on, and indexes built once per session."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from search.cli import cli
from search.indexing import reindex
from search.searching import SearchIndex, SearchResults
from tests.fork_corpus import write_generated_news

PROJECT = Path(__file__).resolve().parent.parent
SHARED = PROJECT.parent / "shared"
SEED_DIR = SHARED / "seed"
LIVEDOOR_TARBALL = SHARED / "data" / "ldcc-20140209.tar.gz"
JAQUAD = SHARED / "data" / "jaquad"
CORPUS = PROJECT / "corpus"
FIXTURE_NEWS = PROJECT / "tests" / "fixtures" / "news"
SAMPLE_ARTICLE_ID = "blockmedia-trump-nvidia-h200-china-export"


def fixture_news_with(base: Path, extra: dict[str, str]) -> Path:
    """An index of the fixture corpus plus `extra` articles (relative path → livedoor-layout
    text) written for one test module, in one process; its root."""
    corpus = base / "corpus"
    shutil.copytree(FIXTURE_NEWS, corpus, ignore=shutil.ignore_patterns("*.md"))
    for name, text in extra.items():
        (corpus / name).write_text(text, encoding="utf-8")
    reindex([corpus], base / "index", workers=0)
    return base / "index"


def require(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f"{path} is absent: this test reads the shared data set from ../shared")
    return path


@pytest.fixture(scope="session")
def seed_file() -> Path:
    return next(require(SEED_DIR).glob("*.txt"))


@pytest.fixture(scope="session")
def livedoor_tarball() -> Path:
    return require(LIVEDOOR_TARBALL)


@pytest.fixture(scope="session")
def livedoor(livedoor_tarball, tmp_path_factory) -> tuple[Path, Path, str]:
    """The whole livedoor tarball reindexed through the CLI, once: (index, tarball, its output)."""
    root = tmp_path_factory.mktemp("livedoor") / "index"
    first = CliRunner().invoke(cli, ["reindex", "--corpus", str(livedoor_tarball), "--index", str(root)])
    assert first.exit_code == 0, first.output
    return root, livedoor_tarball, first.output


@pytest.fixture(scope="session")
def generated_news(tmp_path_factory) -> Path:
    """A few hundred sections recombined from our own fixture sentences (tests/fork_corpus.py),
    big enough to exercise the fork where ../shared is absent."""
    return write_generated_news(tmp_path_factory.mktemp("generated-news"))


@pytest.fixture(scope="session")
def corpus_index(tmp_path_factory) -> SearchIndex:
    """The project's own corpus/ (the sample article), indexed once."""
    root = tmp_path_factory.mktemp("corpus-index")
    reindex([CORPUS], root)
    return SearchIndex(root)


@pytest.fixture
def corpus_copy(tmp_path) -> Path:
    """A writable copy of corpus/ for tests that add, change and remove articles."""
    target = tmp_path / "corpus"
    shutil.copytree(CORPUS, target)
    return target


def assert_ranked_alike(fast: SearchResults, plain: SearchResults) -> None:
    """The same sections in the same order with the same scores, as far as floats allow.

    The array evaluation adds a section's clause scores up in another order than Whoosh's matcher
    tree, so a score may differ in its last bit (about 1e-15 of it), and sections whose scores tie
    to that precision may come in either order (the last tie in either order or either section).
    """
    assert fast.total == plain.total
    one = [(hit.section_id, hit.score) for hit in fast.hits]
    two = [(hit.section_id, hit.score) for hit in plain.hits]
    assert [score for _, score in one] == pytest.approx([score for _, score in two], rel=1e-12, abs=0)
    start = 0
    while start < len(two):  # each run of tied scores holds the same sections
        end = start + 1
        while end < len(two) and two[end][1] == pytest.approx(two[start][1], rel=1e-12, abs=0):
            end += 1
        if end < len(two) or end - start == 1:
            assert {section for section, _ in one[start:end]} == {section for section, _ in two[start:end]}, (one, two)
        start = end
