"""Shared fixtures: the real texts tests run on, and indexes built once per session."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from search.indexing import reindex
from search.searching import SearchIndex

PROJECT = Path(__file__).resolve().parent.parent
SHARED = PROJECT.parent / "shared"
SEED_DIR = SHARED / "seed"
LIVEDOOR_TARBALL = SHARED / "data" / "ldcc-20140209.tar.gz"
JAQUAD = SHARED / "data" / "jaquad"
CORPUS = PROJECT / "corpus"
SAMPLE_ARTICLE_ID = "blockmedia-trump-nvidia-h200-china-export"


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
