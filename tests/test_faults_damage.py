"""A damaged index, as a disk, a crash or a clumsy operator leaves it: every command says what is
damaged and how to repair it (never a traceback, never a 500, never a silently different ranking),
`midashi check` finds it, and a reindex, plain or --full, repairs it.

Each test damages its own copy of an index of the fixture corpus (tests/fixtures/news).
"""

from __future__ import annotations

import json
import os
import pickle
import shutil
import socket
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner

from search.cli import EXIT_INTERNAL, cli
from search.cli import main as cli_main
from search.codec import store as store_module
from search.codec.check import check_index
from search.codec.store import (
    CURRENT_FILE,
    MANIFEST_FILE,
    DamagedIndexError,
    IndexStore,
    Manifest,
)
from search.indexing import reindex
from search.searching import SearchIndex
from web import create_app

FIXTURE = Path(__file__).resolve().parent / "fixtures" / "news"
FIXTURE_ARTICLES = len(list(FIXTURE.rglob("*.txt")))  # 10, in 12 sections (tech-0004 and -0005 have two)
FIXTURE_SECTIONS = 12
# Queries whose rankings must come back as they were: a word in several articles, a phrase, a
# question ranked by best match, a field query and a boolean one.
QUERIES = ("日本", "ワールドカップ", "新しいスマートフォンの発売はいつですか", "title:代表", "経済 OR 試合")
REPAIR = "midashi reindex --full"


def rankings(root: Path) -> dict[str, list[tuple[str, float]]]:
    index = SearchIndex(root)
    return {
        query: [(hit.section_id, round(hit.score, 9)) for hit in index.search(query, limit=20).hits]
        for query in QUERIES
    }


@pytest.fixture(scope="module")
def pristine(tmp_path_factory) -> tuple[Path, dict]:
    """An index of the fixture corpus, built once, and its rankings of QUERIES."""
    root = tmp_path_factory.mktemp("pristine") / "index"
    reindex([FIXTURE], root, workers=0)
    found = rankings(root)
    assert sum(len(hits) for hits in found.values()) >= 10, found  # the queries do match something
    return root, found


@pytest.fixture
def index_root(pristine, tmp_path) -> Path:
    """This test's own copy of the pristine index (copies, not links: damage stays in it)."""
    root = tmp_path / "index"
    shutil.copytree(pristine[0], root)
    return root


def generation(root: Path) -> Path:
    return root / (root / CURRENT_FILE).read_text().strip()


def segment(root: Path) -> Path:
    return max(generation(root).glob("*.seg"), key=lambda path: path.stat().st_size)


def toc(root: Path) -> Path:
    [path] = generation(root).glob("_MAIN_*.toc")
    return path


def truncate(path: Path) -> None:
    os.truncate(path, path.stat().st_size // 2)


def flip(path: Path, size: int = 4096) -> None:
    """Invert `size` bytes in the middle of the file (all of it when smaller), keeping its size."""
    data = bytearray(path.read_bytes())
    start = max(0, len(data) // 2 - size // 2)
    for at in range(start, min(len(data), start + size)):
        data[at] ^= 0xFF
    path.write_bytes(bytes(data))


# Each damage: the file the error must name, and what it does to an index root.
DAMAGES: dict[str, tuple[Callable[[Path], str], Callable[[Path], None]]] = {
    "segment truncated": (lambda root: segment(root).name, lambda root: truncate(segment(root))),
    "segment deleted": (lambda root: segment(root).name, lambda root: segment(root).unlink()),
    "segment 4 KB flipped": (lambda root: segment(root).name, lambda root: flip(segment(root))),
    "toc truncated": (lambda root: toc(root).name, lambda root: truncate(toc(root))),
    "toc deleted": (lambda root: toc(root).name, lambda root: toc(root).unlink()),
    "manifest flipped": (lambda root: MANIFEST_FILE, lambda root: flip(generation(root) / MANIFEST_FILE, 64)),
    "manifest deleted": (lambda root: MANIFEST_FILE, lambda root: (generation(root) / MANIFEST_FILE).unlink()),
    "CURRENT garbage": (
        lambda root: CURRENT_FILE,
        lambda root: (root / CURRENT_FILE).write_bytes(b"\x00\xff\xfe garbage \x80\n"),
    ),
    "CURRENT names a missing generation": (
        lambda root: "gen-000099",
        lambda root: (root / CURRENT_FILE).write_text("gen-000099\n"),
    ),
}


def damage(name: str, root: Path) -> str:
    """Damage `root` as DAMAGES[name] says; the name of the file the error must mention (read
    before the damage: a deleted file is named by what it was)."""
    named, act = DAMAGES[name]
    expected = named(root)
    act(root)
    return expected


def midashi(*args: str) -> subprocess.CompletedProcess:
    """The real entry point, as a shell runs it."""
    return subprocess.run(
        [sys.executable, "-c", "from search.cli import main; main()", *args],
        capture_output=True,
        text=True,
        timeout=120,
    )


def assert_one_line_naming(text: str, file_name: str) -> None:
    assert "Traceback" not in text
    lines = text.strip().splitlines()
    assert len(lines) == 1, text
    assert lines[0].startswith("midashi: the index at ") and "is damaged" in lines[0], text
    assert file_name in lines[0] and REPAIR in lines[0], text


@pytest.mark.slow
@pytest.mark.parametrize("case", DAMAGES)
def test_damage_is_reported_everywhere_and_repaired(case, index_root, pristine):
    named = damage(case, index_root)

    searched = midashi("search", "日本", "--index", str(index_root))
    assert searched.returncode == 1 and searched.stdout == ""
    assert_one_line_naming(searched.stderr, named)

    client = create_app(index_root).test_client()
    page = client.get("/?q=日本")
    assert page.status_code == 503
    assert "索引が壊れています" in page.text and named in page.text and REPAIR in page.text
    api = client.get("/api/search?q=日本")
    assert api.status_code == 503 and named in api.json["error"] and REPAIR in api.json["error"]

    checked = CliRunner().invoke(cli, ["check", "--index", str(index_root)])
    assert checked.exit_code == 1
    assert any(line.startswith("damaged: ") and named in line for line in checked.output.splitlines()), checked.output
    assert REPAIR in checked.output and "Traceback" not in checked.output

    plain = CliRunner().invoke(cli, ["reindex", "--corpus", str(FIXTURE), "--index", str(index_root), "--workers", "0"])
    assert plain.exit_code == 0, plain.output
    assert "Nothing changed" not in plain.output
    assert plain.output.startswith("The index was damaged (") and "rebuilt it in full" in plain.output
    assert f"added     {FIXTURE_ARTICLES:>8} articles" in plain.output
    assert rankings(index_root) == pristine[1]

    named = damage(case, index_root)  # the repaired generation, damaged again: --full repairs it too
    assert CliRunner().invoke(cli, ["check", "--index", str(index_root)]).exit_code == 1
    full = CliRunner().invoke(
        cli, ["reindex", "--full", "--corpus", str(FIXTURE), "--index", str(index_root), "--workers", "0"]
    )
    assert full.exit_code == 0, full.output
    assert rankings(index_root) == pristine[1]
    clean = CliRunner().invoke(cli, ["check", "--index", str(index_root)])
    assert (
        clean.exit_code == 0
        and "is intact" in clean.output
        and f"{FIXTURE_SECTIONS} sections of {FIXTURE_ARTICLES} articles" in clean.output
    )


def test_check_reads_past_damage_anywhere_in_a_segment(index_root):
    """4 KB flipped at each place of the segment in turn: the check reports the checksum and
    whatever else it could not read, and never stops on an error of its own."""
    path = segment(index_root)
    original = path.read_bytes()
    for start in range(0, len(original), 4096):
        damaged = bytearray(original)
        damaged[start : start + 4096] = bytes(byte ^ 0xFF for byte in damaged[start : start + 4096])
        path.write_bytes(bytes(damaged))
        report = check_index(index_root)
        assert report.damaged and f"{path.parent.name}/{path.name} does not match its checksum" in report.problems
    path.write_bytes(original)
    final = check_index(index_root)
    assert not final.damaged, final.problems


@pytest.mark.slow
def test_a_clean_index_checks_clean_and_a_plain_reindex_changes_nothing(index_root):
    checked = midashi("check", "--index", str(index_root))
    assert checked.returncode == 0 and checked.stderr == ""
    assert checked.stdout.startswith(f"{index_root} (gen-000001) is intact: 2 files")
    assert " checksums; 1 segment, " in checked.stdout  # one segment, in the singular
    again = CliRunner().invoke(cli, ["reindex", "--corpus", str(FIXTURE), "--index", str(index_root), "--workers", "0"])
    assert again.output.startswith("Nothing changed")


@pytest.mark.slow
def test_stats_and_serve_refuse_a_damaged_index_in_one_line(index_root):
    named = damage("segment truncated", index_root)
    for command in ("stats", "serve"):
        result = midashi(command, "--index", str(index_root))
        assert result.returncode == 1
        assert_one_line_naming(result.stderr, named)


def test_a_file_cut_short_under_a_running_server_is_refused(index_root, pristine):
    client = create_app(index_root).test_client()
    assert client.get("/api/search?q=日本").status_code == 200
    truncate(segment(index_root))
    response = client.get("/api/search?q=日本")
    assert response.status_code == 503 and segment(index_root).name in response.json["error"]
    assert client.get("/healthz").status_code == 503
    reindex([FIXTURE], index_root, workers=0)  # the server picks up the repaired generation
    assert client.get("/api/search?q=日本").status_code == 200


def test_a_server_verifies_a_new_generation_before_it_searches_it(index_root, tmp_path):
    index = SearchIndex(index_root)
    before = index.search("日本").hits
    corpus = tmp_path / "news"
    shutil.copytree(FIXTURE, corpus)
    (corpus / "tech" / "tech-0001.txt").unlink()
    reindex([corpus], index_root, workers=0)
    flip(segment(index_root))  # the new generation's segments, damaged before anyone searched them
    with pytest.raises(DamagedIndexError, match="does not match its checksum"):
        index.search("日本")
    assert before  # the old generation served until then


def test_a_read_error_from_a_damaged_file_becomes_the_damage(index_root):
    """Whoosh's own errors (a pickle, a short read) are damage when a file does not match its
    checksum, and go on as they are when every file does."""
    index = SearchIndex(index_root)
    index.search("日本")
    with pytest.raises(pickle.UnpicklingError), index.searcher():
        raise pickle.UnpicklingError("not damage: the files are intact")
    flip(segment(index_root))
    with pytest.raises(DamagedIndexError, match=segment(index_root).name), index.searcher():
        raise pickle.UnpicklingError("invalid load key")


def _without_checksums(root: Path) -> None:
    """The manifest as Midashi wrote it before checksums (index format 2): none, nor its own digest."""
    path = generation(root) / MANIFEST_FILE
    data = json.loads(path.read_text(encoding="utf-8"))
    del data["checksums"], data["checksum"]
    path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")


@pytest.mark.parametrize("damage", ["truncate", "flip"])
def test_a_damaged_index_written_before_checksums_is_damage_too(index_root, damage):
    """Nothing says which file is damaged there; the read error is reported as damage, with the
    repair, not as "aborted" (click's word for an EOFError) or an internal error."""
    _without_checksums(index_root)
    assert SearchIndex(index_root).search("日本").total  # intact, it searches as ever
    with open(segment(index_root), "r+b") as file:
        file.truncate(file.seek(0, os.SEEK_END) // 3)
    if damage == "flip":
        flip(segment(index_root), size=1 << 20)
    for query in ("日本", "経済 OR 試合"):
        result = CliRunner().invoke(cli, ["search", "--index", str(index_root), query])
        if result.exit_code == 0:
            continue  # a query whose terms the damage spared
        assert result.exit_code == 1 and "aborted" not in result.output and "internal error" not in result.output
        [line] = result.output.splitlines()
        assert line.startswith(f"midashi: the index at {index_root} is damaged: gen-") and REPAIR in line
        break
    else:
        pytest.fail("no query met the damage")
    with socket.socket() as probe:  # a free port, in case it started after all (the timeout fails it)
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    served = midashi("serve", "--index", str(index_root), "--port", str(port))
    assert served.returncode == 1
    [line] = served.stderr.splitlines()
    assert line.startswith(f"midashi: the index at {index_root} is damaged: gen-") and REPAIR in line


def test_an_eof_error_that_is_no_damage_is_an_internal_error_not_an_abort(index_root, monkeypatch, capsys):
    """click takes any EOFError for the user's Ctrl-D ("aborted"); one from our code is a bug."""

    def failing(*_, **__):
        raise EOFError("a bug of ours")

    monkeypatch.setattr(SearchIndex, "search", failing)
    monkeypatch.setattr(sys, "argv", ["midashi", "search", "--index", str(index_root), "日本"])
    with pytest.raises(SystemExit) as exited:
        cli_main()
    assert exited.value.code == EXIT_INTERNAL
    assert capsys.readouterr().err.strip().splitlines() == [
        "midashi: internal error (EOFError). Please report it with the command you ran (MIDASHI_DEBUG=1 shows the"
        " details)"
    ]


def test_reindex_full_works_whatever_the_folder_holds(index_root, pristine):
    shutil.rmtree(generation(index_root))
    (index_root / CURRENT_FILE).write_bytes(os.urandom(64))
    (index_root / "gen-000007").write_text("not a folder")
    result = CliRunner().invoke(cli, ["reindex", "--full", "--corpus", str(FIXTURE), "--index", str(index_root)])
    assert result.exit_code == 0, result.output
    assert rankings(index_root) == pristine[1]


def test_a_missing_current_with_generations_left_is_damage(index_root):
    (index_root / CURRENT_FILE).unlink()
    with pytest.raises(DamagedIndexError, match="CURRENT is missing"):
        SearchIndex(index_root).search("日本")


def test_an_unchanged_segment_keeps_its_recorded_checksum(index_root, tmp_path, monkeypatch):
    """A publish reads only the files it wrote: hard-linked segments keep the checksum recorded."""
    before = Manifest.load(generation(index_root)).checksums
    old_segment = segment(index_root).name
    hashed: list[Path] = []
    real = store_module.file_checksum
    monkeypatch.setattr(store_module, "file_checksum", lambda path: hashed.append(Path(path)) or real(path))
    corpus = tmp_path / "news"
    shutil.copytree(FIXTURE, corpus)
    (corpus / "tech" / "tech-0009.txt").write_text("新製品の発表\n\n新しい端末が発表された。", encoding="utf-8")
    report = reindex([corpus], index_root, workers=0)
    assert report.added.articles == 1 and report.generation == "gen-000002"
    published = [path.name for path in hashed if path.parent.name.startswith("gen-000002")]
    assert old_segment not in published and published  # the new segment and TOC were read
    assert Manifest.load(generation(index_root)).checksums[old_segment] == before[old_segment]
    assert IndexStore(index_root).verify(generation(index_root))  # and they match
