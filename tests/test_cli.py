"""The `midashi` command as a user runs it: output, exit codes, one-line errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from click.testing import CliRunner

from search.cli import cli
from tests.conftest import CORPUS, FIXTURE_NEWS, SAMPLE_ARTICLE_ID


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
    result = CliRunner().invoke(
        cli, ["search", "--queries", str(queries), "--run", str(run), "--index", str(index_root)]
    )
    assert result.exit_code == 0
    lines = run.read_text(encoding="utf-8").splitlines()
    assert lines[0].split() == ["q1", "Q0", f"{SAMPLE_ARTICLE_ID}#4", "1", lines[0].split()[4], "midashi"]
    assert {line.split()[0] for line in lines} == {"q1", "q2"}
    assert "3 queries (1 unsearchable)" in result.output


def test_batch_ids_are_one_word_each_as_the_run_needs_them(index_root, tmp_path):
    queries, run = tmp_path / "q.tsv", tmp_path / "out.trec"
    # An editor's byte-order mark is no part of the first id; a query may hold U+2028 (a line
    # separator to str.splitlines, not to a TSV file); CRLF line ends.
    queries.write_bytes("\ufeffq1\tH20\r\nq2\t輸出\u2028規制\r\n".encode())
    command = ["search", "--queries", str(queries), "--run", str(run), "--index", str(index_root)]
    result = CliRunner().invoke(cli, command)
    assert result.exit_code == 0, result.output
    assert {line.split()[0] for line in run.read_text(encoding="utf-8").splitlines()} == {"q1", "q2"}
    assert "2 queries (0 unsearchable)" in result.output
    for lines, problem in (("q1\tH20\n\t輸出規制\n", "'' is empty"), ("q 2\tH20\n", "'q 2' is more than one word")):
        queries.write_text(lines, encoding="utf-8")
        result = CliRunner().invoke(cli, command)
        assert result.exit_code != 0
        assert f"q.tsv:{lines.count(chr(10))}: the query id {problem}" in result.output


def test_stats(index_root):
    result = CliRunner().invoke(cli, ["stats", "--index", str(index_root)])
    assert result.exit_code == 0
    assert "articles       1" in result.output and "sections       5" in result.output


@pytest.mark.slow
@pytest.mark.parametrize(
    "args, message",
    [
        (
            ["search", "半導体", "--index", "/nonexistent/index"],
            "no index at /nonexistent/index yet: run `midashi reindex",
        ),
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
    subprocess.run(
        [
            sys.executable,
            "-c",
            "from search.cli import main; main()",
            "reindex",
            "--corpus",
            str(tmp_path / "corpus"),
            "--index",
            str(tmp_path / "index"),
        ],
        check=True,
        capture_output=True,
    )
    quiet = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert quiet.returncode == 70 and "Traceback" not in quiet.stderr
    assert quiet.stderr.splitlines() == [
        "midashi: internal error (ZeroDivisionError). Please report it with the command you ran"
        " (MIDASHI_DEBUG=1 shows the details)"
    ]
    loud = subprocess.run(
        command, capture_output=True, text=True, timeout=120, env={**os.environ, "MIDASHI_DEBUG": "1"}
    )
    assert "Traceback" in loud.stderr and "ZeroDivisionError: division by zero" in loud.stderr


# --- issue 29: the search command on the fixture corpus (three categories, dates 2011-2012) ----


@pytest.fixture(scope="module")
def news_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli-news") / "index"
    result = CliRunner().invoke(cli, ["reindex", "--corpus", str(FIXTURE_NEWS), "--index", str(root), "--workers", "0"])
    assert result.exit_code == 0, result.output
    return root


def search_json(root, *args: str) -> dict:
    result = CliRunner().invoke(cli, ["search", "--json", "--index", str(root), *args])
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def test_a_not_word_first_is_a_query_word_not_an_option(news_root):
    everything = {hit["article_id"] for hit in search_json(news_root, "サッカー")["hits"]}
    assert "sports/sports-0001" in everything and len(everything) > 1
    for args in (["-日本代表", "サッカー"], ["サッカー", "-日本代表"], ["--", "-日本代表", "サッカー"]):
        data = search_json(news_root, "-n", "5", *args)
        found = {hit["article_id"] for hit in data["hits"]}
        assert found and "sports/sports-0001" not in found and found < everything, args
        assert data["query"] == " ".join(a for a in args if a != "--")
    shell = midashi("search", "-日本代表", "--index", str(news_root))  # alone: it excludes, nothing to find
    assert shell.returncode == 1 and shell.stdout == ""
    assert (
        shell.stderr == "midashi: a query of only excluded words (-日本代表) finds nothing:"
        " add a word to search for, as in 半導体 -中国\n"
    )
    assert "No such option '-x'" in midashi("search", "-x", "サッカー", "--index", str(news_root)).stderr


def test_an_unknown_field_is_one_line_as_in_the_api(news_root):
    from web import create_app

    shell = midashi("search", "サッカー foo:bar", "--index", str(news_root))
    assert shell.returncode == 1 and shell.stdout == ""
    [line] = shell.stderr.splitlines()
    assert line.startswith("midashi: there is no field foo:; search in title:")
    api = create_app(news_root).test_client().get("/api/search", query_string={"q": "サッカー foo:bar"})
    assert api.status_code == 400 and f"midashi: {api.get_json()['error']}" == line


def test_filters_and_sort_narrow_as_the_page_does(news_root):
    every = search_json(news_root, "日本", "-n", "20")["hits"]
    assert {hit["category"] for hit in every} >= {"sports", "economy"}
    sports = search_json(news_root, "日本", "-n", "20", "--category", "sports")["hits"]
    assert sports and {hit["category"] for hit in sports} == {"sports"} and len(sports) < len(every)
    in_2012 = search_json(news_root, "日本", "-n", "20", "--from", "2012-01-01", "--to", "2012-12-31")["hits"]
    assert in_2012 and all(hit["date"].startswith("2012") for hit in in_2012)
    assert len(in_2012) < len(every)  # sports-0003 is of 2011-12
    newest = search_json(news_root, "日本", "-n", "20", "--sort", "newest")
    dates = [hit["date"] for hit in newest["hits"]]
    assert newest["sort"] == "newest" and dates == sorted(dates, reverse=True) and len(dates) == len(every)
    assert search_json(news_root, "日本", "--source", "no such source")["hits"] == []
    source = every[0]["source"]  # the fixture has one source: the filter keeps exactly its hits
    kept = search_json(news_root, "日本", "-n", "20", "--source", source)
    assert source == "livedoor ニュース" and kept["hits"] == every
    assert kept["facets"]["source"] == [{"value": source, "count": kept["articles"]}]
    bad = midashi("search", "日本", "--from", "2012-13-45", "--index", str(news_root))
    assert bad.returncode == 1
    assert bad.stderr == "midashi: not a date: '2012-13-45' (use YYYY-MM-DD, YYYY-MM or YYYY)\n"
    assert (
        "unknown sort order 'bogus'" in midashi("search", "日本", "--sort", "bogus", "--index", str(news_root)).stderr
    )


def test_json_is_utf8_with_facets(news_root):
    result = CliRunner().invoke(cli, ["search", "サッカー", "--format", "json", "--index", str(news_root)])
    assert "サッカー" in result.output and "\\u" not in result.output
    data = json.loads(result.output)
    assert data["facets"]["category"] == [{"value": "sports", "count": data["articles"]}]
    alias = search_json(news_root, "サッカー")  # --json is --format json
    assert {**alias, "elapsed_ms": None} == {**data, "elapsed_ms": None}


def test_csv_has_a_header_and_a_row_per_article(news_root):
    import csv
    import io

    result = CliRunner().invoke(cli, ["search", "サッカー 日本代表", "--format", "csv", "--index", str(news_root)])
    assert result.exit_code == 0
    rows = list(csv.DictReader(io.StringIO(result.output, newline="")))
    hits = search_json(news_root, "サッカー 日本代表")["hits"]
    assert [row["section_id"] for row in rows] == [hit["section_id"] for hit in hits] and rows
    first = rows[0]
    assert list(first) == [
        "rank",
        "score",
        "section_id",
        "article_id",
        "title",
        "heading",
        "date",
        "category",
        "source",
        "url",
        "snippet",
    ]
    assert first["title"] == "サッカー日本代表、ワールドカップ予選へ向け合宿開始" and first["rank"] == "1"
    assert "<mark>" not in first["snippet"] and "サッカー日本代表" in first["snippet"]
    assert first["source"] == "livedoor ニュース" and first["url"] == "http://example.com/sports/0001"
    shell = subprocess.run(
        [
            sys.executable,
            "-c",
            "from search.cli import main; main()",
            "search",
            "サッカー 日本代表",
            "--format",
            "csv",
            "--index",
            str(news_root),
        ],
        capture_output=True,
        timeout=120,
    )
    assert shell.stdout.decode("utf-8").split("\r\n")[:2] == result.output.splitlines()[:2]  # RFC 4180 line ends


def test_jsonl_is_one_hit_per_line(news_root):
    result = CliRunner().invoke(cli, ["search", "サッカー", "--format", "jsonl", "--index", str(news_root)])
    lines = result.output.splitlines()
    assert lines and "\\u" not in result.output
    assert [json.loads(line) for line in lines] == search_json(news_root, "サッカー")["hits"]


def test_a_title_stays_bold_around_its_marks(news_root):
    result = CliRunner().invoke(cli, ["search", "日本代表", "--index", str(news_root)], color=True)
    title = next(line for line in result.output.splitlines() if line.startswith("  1. "))
    assert title == "  1. \x1b[1mサッカー\x1b[33m日本代表\x1b[39m、ワールドカップ予選へ向け合宿開始\x1b[0m"


def test_reindex_progress_shows_on_a_terminal_of_no_size(tmp_path):
    """A terminal that reports 0 x 0 still gets the bar, and the bar says when it is writing."""
    import fcntl
    import pty
    import struct
    import termios

    main_end, terminal = pty.openpty()
    fcntl.ioctl(terminal, termios.TIOCSWINSZ, struct.pack("HHHH", 0, 0, 0, 0))
    code = "from search.cli import main; main()"
    command = [
        sys.executable,
        "-c",
        code,
        "reindex",
        "--corpus",
        str(FIXTURE_NEWS),
        "--index",
        str(tmp_path / "i"),
        "--workers",
        "0",
    ]
    process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=terminal)
    os.close(terminal)
    shown = b""
    while True:
        try:
            chunk = os.read(main_end, 4096)
        except OSError:  # the terminal closed: the process is done
            break
        if not chunk:
            break
        shown += chunk
    os.close(main_end)
    assert process.wait(timeout=120) == 0 and process.stdout.read().startswith(b"Reindexed ")
    text = shown.decode()
    assert "0/10 [" in text  # the bar, at its start
    assert "writing the index…: 100%|" in text and "10/10 [" in text
