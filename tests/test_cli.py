"""The `midashi` command as a user runs it: output, exit codes, one-line errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from click.testing import CliRunner

from search.cli import cli
from tests.conftest import CORPUS, SAMPLE_ARTICLE_ID


@pytest.fixture(scope="module")
def index_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli") / "index"
    result = CliRunner().invoke(cli, ["reindex", "--corpus", str(CORPUS), "--index", str(root)])
    assert result.exit_code == 0, result.output
    assert "added" in result.output and "1 articles" in result.output.replace("  ", " ")
    return root


def midashi(*args: str) -> subprocess.CompletedProcess:
    """Run the real entry point, as a shell would (stderr and exit code included)."""
    code = "from search.cli import main; main()"
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=120)


def test_second_reindex_says_nothing_changed(index_root):
    result = CliRunner().invoke(cli, ["reindex", "--corpus", str(CORPUS), "--index", str(index_root)])
    assert result.exit_code == 0
    assert result.output.startswith(f"Nothing changed: {index_root} is up to date")
    assert "unchanged        1 articles         5 sections" in result.output


def test_search_prints_ranked_articles_plain_when_piped(index_root):
    result = CliRunner().invoke(cli, ["search", "H20", "--index", str(index_root)])
    assert result.exit_code == 0
    lines = result.output.splitlines()
    assert lines[0].startswith("1 article (1 section) for 「H20」")
    assert "§ 中国の反応と技術自立化" in result.output and f"{SAMPLE_ARTICLE_ID}#4" in result.output
    assert "\x1b[" not in result.output  # no terminal styling in a pipe


def test_search_json(index_root):
    result = CliRunner().invoke(cli, ["search", "輸出規制", "--json", "-n", "3", "--index", str(index_root)])
    data = json.loads(result.output)
    assert data["relaxed"]["strict_total"] == 1  # one section has it; the others have 輸出 or 規制
    hit = data["hits"][0]
    assert hit["section_id"] == f"{SAMPLE_ARTICLE_ID}#5" and hit["heading"] == "米中技術外交の流れ"
    assert "<mark>輸出規制</mark>" in hit["snippet_html"] and "<mark>" not in hit["snippet"]


def test_batch_writes_a_trec_run(index_root, tmp_path):
    queries = tmp_path / "q.tsv"
    queries.write_text("q1\tH20\nq2\t輸出規制\nq3\tの\n", encoding="utf-8")
    run = tmp_path / "out.trec"
    result = CliRunner().invoke(cli, ["search", "--queries", str(queries), "--run", str(run), "--index", str(index_root)])
    assert result.exit_code == 0
    lines = run.read_text(encoding="utf-8").splitlines()
    assert lines[0].split() == ["q1", "Q0", f"{SAMPLE_ARTICLE_ID}#4", "1", lines[0].split()[4], "midashi"]
    assert {line.split()[0] for line in lines} == {"q1", "q2"}
    assert "3 queries (1 unsearchable)" in result.output


def test_stats(index_root):
    result = CliRunner().invoke(cli, ["stats", "--index", str(index_root)])
    assert result.exit_code == 0
    assert "articles       1" in result.output and "sections       5" in result.output


@pytest.mark.slow
@pytest.mark.parametrize(
    "args, message",
    [
        (["search", "半導体", "--index", "/nonexistent/index"], "no index at /nonexistent/index yet: run `midashi reindex"),
        (["search", "の", "--index", "{index}"], "no searchable words"),
        (["search", "", "--index", "{index}"], "give a query"),
        (["search", "半導体", "--bogus"], "No such option"),
        (["reindex", "--corpus", "/nonexistent/corpus", "--index", "{index}"], "corpus not found"),
        (["search", "--queries", "/nonexistent.tsv", "--run", "x"], "does not exist"),
    ],
)
def test_user_errors_are_one_line_with_nonzero_exit(index_root, args, message):
    result = midashi(*(a.replace("{index}", str(index_root)) for a in args))
    assert result.returncode != 0
    assert result.stdout == ""
    [line] = result.stderr.strip().splitlines()
    assert line.startswith("midashi: ") and message in line
    assert "Traceback" not in result.stderr


def test_a_bug_of_ours_is_one_line_not_a_traceback(tmp_path):
    """Whatever slips through (here a search that raises), the person gets one line and exit 70;
    MIDASHI_DEBUG=1 shows the traceback."""
    code = (
        "import search.searching as s\n"
        "def broken(*args, **kwargs): raise ZeroDivisionError('division by zero')\n"
        "s.SearchIndex.search = broken\n"
        "from search.cli import main; main()\n"
    )
    command = [sys.executable, "-c", code, "search", "半導体", "--index", str(tmp_path / "index")]
    (tmp_path / "corpus").mkdir()
    subprocess.run([sys.executable, "-c", "from search.cli import main; main()", "reindex", "--corpus",
                    str(tmp_path / "corpus"), "--index", str(tmp_path / "index")], check=True, capture_output=True)
    quiet = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert quiet.returncode == 70 and "Traceback" not in quiet.stderr
    assert quiet.stderr.splitlines() == [
        "midashi: internal error (ZeroDivisionError). Please report it with the command you ran"
        " (MIDASHI_DEBUG=1 shows the details)"
    ]
    loud = subprocess.run(command, capture_output=True, text=True, timeout=120, env={**os.environ, "MIDASHI_DEBUG": "1"})
    assert "Traceback" in loud.stderr and "ZeroDivisionError: division by zero" in loud.stderr
