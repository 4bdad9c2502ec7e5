"""bench/fingerprint.py, the index fingerprint a refactoring is checked with: on the fixture news
corpus it is the same on every run, and an edited article changes it where the edit is."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

from tests.conftest import FIXTURE_NEWS

BENCH = Path(__file__).resolve().parent.parent / "bench"
sys.path.insert(0, str(BENCH))  # bench/ holds scripts, not a package

from fingerprint import fingerprint_corpus  # noqa: E402

EDITED = Path("tech") / "tech-0001.txt"


def _by_name(lines: list[str]) -> dict[str, str]:
    """Fingerprint lines by what they describe: `field=body`, `docs`, `stored`, `input`, `total_sha256`."""
    return {_name(line): line for line in lines}


def _name(line: str) -> str:
    first = line.split(" ")[0]
    return first if first.startswith("field=") else first.split("=")[0]


@pytest.fixture(scope="module")
def fixture_fingerprint(tmp_path_factory) -> list[str]:
    return fingerprint_corpus([FIXTURE_NEWS], tmp_path_factory.mktemp("fingerprint"))


def test_the_same_corpus_fingerprints_the_same(fixture_fingerprint, tmp_path):
    again = fingerprint_corpus([FIXTURE_NEWS], tmp_path)
    assert again == fixture_fingerprint
    lines = _by_name(fixture_fingerprint)
    assert {"field=body", "field=title", "field=section_id", "docs", "stored", "total_sha256"} <= set(lines)
    assert "postings=0 " not in lines["field=body"] and "stored_sha256=-" not in lines["field=body"]


def test_an_edited_article_changes_its_body_postings_and_stored_text(fixture_fingerprint, tmp_path):
    corpus = tmp_path / "news"
    shutil.copytree(FIXTURE_NEWS, corpus)
    article = corpus / EDITED
    text = article.read_text(encoding="utf-8")
    assert "販売が好調" in text
    article.write_text(text.replace("販売が好調", "販売が不調", 1), encoding="utf-8")
    edited = _by_name(fingerprint_corpus([corpus], tmp_path))
    before = _by_name(fixture_fingerprint)
    changed = {name for name in before if before[name] != edited[name]}
    assert {"input", "field=body", "stored", "total_sha256"} <= changed
    body_before = dict(part.split("=") for part in before["field=body"].split(" "))
    body_after = dict(part.split("=") for part in edited["field=body"].split(" "))
    assert body_before["postings_sha256"] != body_after["postings_sha256"]
    assert body_before["stored_sha256"] != body_after["stored_sha256"]
    # What the edit does not touch keeps its fingerprint: titles, ids, categories, the numbering.
    assert not changed & {"field=title", "field=heading", "field=article_id", "field=category", "docs"}


@pytest.mark.slow
def test_worker_processes_fingerprint_as_one_process_but_for_numbering(generated_news, tmp_path):
    # The parallel path numbers documents by whichever worker finished first; the content is the same.
    one = _by_name(fingerprint_corpus([generated_news], tmp_path, workers=0))
    two = _by_name(fingerprint_corpus([generated_news], tmp_path, workers=2))
    assert int(one["docs"].split(" ")[0].removeprefix("docs=")) > 200
    assert " segments=1 " in one["docs"] and " segments=1 " not in two["docs"]  # the parallel path ran
    assert {name for name in one if one[name] != two[name]} <= {"docs", "total_sha256"}
