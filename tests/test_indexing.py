"""Reindex: incremental by content hash, atomic generations, one writer, interruptions lose nothing."""

from __future__ import annotations

import errno
import functools
import gc
import itertools
import json
import multiprocessing
import os
import re
import signal
import tarfile
import weakref
from pathlib import Path

import pytest

from search import indexing
from search.codec import parallel
from search.codec.parallel import WorkerFailed
from search.codec.postings import ArrayCodec
from search.codec.segments import ArraySegmentWriter
from search.codec.store import (
    BUILDING_SUFFIX,
    INDEX_FORMAT,
    MANIFEST_FILE,
    IndexBusyError,
    IndexMissingError,
    IndexStore,
    Manifest,
)
from search.indexing import ReindexStopped, StopRequest, reindex
from search.searching import SearchIndex
from search.sources import readers
from search.sources.readers import read_file as indexing_read_file
from search.stats import index_stats
from tests.conftest import JAQUAD, assert_ranked_alike, require
from tests.whoosh_oracle import WhooshOracle

NEW_ARTICLE = "# 半導体の新工場\n出典: テスト通信\n日付: 2025年12月10日\n\n熊本に半導体の新工場が完成した。\n"


def test_incremental_reindex_touches_only_what_changed(corpus_copy, tmp_path):
    root = tmp_path / "index"
    first = reindex([corpus_copy], root)
    assert (first.added.articles, first.added.sections) == (1, 5)

    again = reindex([corpus_copy], root)
    assert not again.changed and again.unchanged.articles == 1
    assert IndexStore(root).current_name() == first.generation

    (corpus_copy / "factory.md").write_text(NEW_ARTICLE, encoding="utf-8")
    added = reindex([corpus_copy], root)
    assert (added.added.articles, added.unchanged.articles) == (1, 1)
    [hit] = SearchIndex(root).search("熊本").hits
    assert hit.article_id == "factory" and hit.date.year == 2025 and hit.source == "テスト通信"

    (corpus_copy / "factory.md").write_text(NEW_ARTICLE.replace("熊本", "北海道"), encoding="utf-8")
    updated = reindex([corpus_copy], root)
    assert (updated.updated.articles, updated.added.articles) == (1, 0)
    index = SearchIndex(root)
    assert index.search("熊本").total == 0 and index.search("北海道").total == 1

    (corpus_copy / "factory.md").unlink()
    removed = reindex([corpus_copy], root)
    assert (removed.removed.articles, removed.removed.sections) == (1, 1)
    assert index.search("北海道").total == 0
    assert index.search("H200").total == 4


def test_a_question_over_deleted_sections_ranks_like_whoosh(corpus_copy, tmp_path):
    # An update deletes the old sections inside a kept segment: the array evaluation must drop
    # them as Whoosh's own matchers do.
    root = tmp_path / "index"
    (corpus_copy / "factory.md").write_text(NEW_ARTICLE, encoding="utf-8")
    reindex([corpus_copy], root)
    (corpus_copy / "factory.md").write_text(NEW_ARTICLE.replace("熊本", "北海道"), encoding="utf-8")
    reindex([corpus_copy], root)
    fast, plain = SearchIndex(root), WhooshOracle(root)
    with fast.open()[1].reader() as reader:
        assert reader.has_deletions()
    question = "熊本に半導体の新工場が完成したのはいつですか？"
    one, two = fast.search(question, snippets=False), plain.search(question, snippets=False)
    assert one.natural_language and one.total == two.total == 5
    assert_ranked_alike(one, two)
    assert [h.heading.text() for h in one.hits if h.article_id == "factory"] == [""]


def test_an_index_in_an_older_on_disk_format_is_rebuilt_in_full(corpus_copy, tmp_path):
    root = tmp_path / "index"
    reindex([corpus_copy], root)
    store = IndexStore(root)
    manifest = store.manifest()
    manifest.format = INDEX_FORMAT - 1  # as an index built before the array posting format says
    manifest.save(store.current())
    rebuilt = reindex([corpus_copy], root)
    assert (rebuilt.added.articles, rebuilt.unchanged.articles) == (1, 0)
    assert store.manifest().format == INDEX_FORMAT
    with SearchIndex(root).open()[1].reader() as reader:
        assert [type(segment.codec()) for segment in reader.segments()] == [ArrayCodec]
    assert not reindex([corpus_copy], root).changed


def test_an_index_from_another_sudachi_dictionary_is_rebuilt_in_full(corpus_copy, tmp_path):
    root = tmp_path / "index"
    reindex([corpus_copy], root)
    store = IndexStore(root)
    installed = store.manifest().analyzer
    assert re.fullmatch(r"SudachiPy 0\.7\.\S+, sudachidict-core \d{8}\S*", installed)
    assert index_stats(root)["analyzer"] == installed
    manifest = store.manifest()
    manifest.analyzer = "SudachiPy 0.7.0, sudachidict-core 20240409"  # the terms of an older dictionary
    manifest.save(store.current())
    assert index_stats(root)["analyzer"] == (
        f"SudachiPy 0.7.0, sudachidict-core 20240409 (installed: {installed}; run `midashi reindex` to rebuild)"
    )
    rebuilt = reindex([corpus_copy], root)
    assert (rebuilt.added.articles, rebuilt.unchanged.articles) == (1, 0)
    assert store.manifest().analyzer == installed
    assert not reindex([corpus_copy], root).changed


def test_an_untouched_file_is_skipped_unread_and_any_touch_rereads_it(corpus_copy, tmp_path, monkeypatch):
    monkeypatch.setattr(indexing, "RACY_SECONDS", 0)  # the test's files are only milliseconds old
    read: list[str] = []

    def reading(file, known):
        read.append(file.relative)
        return indexing_read_file(file, known)

    monkeypatch.setattr(indexing, "read_file", reading)
    (corpus_copy / "factory.md").write_text(NEW_ARTICLE, encoding="utf-8")
    root = tmp_path / "index"
    first = reindex([corpus_copy], root)
    assert sorted(read) == ["blockmedia-trump-nvidia-h200-china-export.md", "factory.md"]

    read.clear()
    again = reindex([corpus_copy], root)
    assert read == [] and not again.changed
    assert (again.unchanged.articles, again.unchanged.sections) == (2, 6)

    os.utime(corpus_copy / "factory.md")  # touched, same content: read, nothing to write
    touched = reindex([corpus_copy], root)
    assert read == ["factory.md"] and not touched.changed and touched.unchanged.articles == 2
    read.clear()
    assert not reindex([corpus_copy], root).changed and read == []  # the live manifest was re-signed

    (corpus_copy / "factory.md").write_text(NEW_ARTICLE.replace("熊本", "福岡"), encoding="utf-8")  # same size
    updated = reindex([corpus_copy], root)
    assert read == ["factory.md"] and updated.updated.articles == 1
    assert SearchIndex(root).search("福岡").total == 1 and IndexStore(root).current_name() != first.generation


def test_full_reindex_rebuilds_everything(corpus_copy, tmp_path):
    root = tmp_path / "index"
    reindex([corpus_copy], root)
    full = reindex([corpus_copy], root, full=True)
    assert full.changed and full.added.articles == 1 and full.unchanged.articles == 0


def test_a_search_keeps_its_generation_while_a_reindex_swaps(corpus_copy, tmp_path):
    root = tmp_path / "index"
    reindex([corpus_copy], root)
    name, old_index = SearchIndex(root).open()
    with old_index.searcher() as searcher:
        (corpus_copy / "factory.md").write_text(NEW_ARTICLE, encoding="utf-8")
        reindex([corpus_copy], root)
        assert searcher.doc_count() == 5  # the open reader still sees the old generation whole
    assert SearchIndex(root).open()[0] != name
    assert SearchIndex(root).search("熊本").total == 1


def test_a_long_lived_search_lets_go_of_the_generation_it_left(corpus_copy, tmp_path):
    # Searches keep term matchers and decoded lists for later searches: none may hold on to an
    # old generation's searcher (its open files) or answer from its segments.
    root = tmp_path / "index"
    reindex([corpus_copy], root)
    index = SearchIndex(root)
    assert index.search("半導体の輸出規制はどうなったのか").total > 0
    with index.searcher() as (_, searcher):
        old = [weakref.ref(segment) for segment, _ in searcher.leaf_searchers()]
    del searcher
    (corpus_copy / "factory.md").write_text(NEW_ARTICLE, encoding="utf-8")
    reindex([corpus_copy], root)
    assert [hit.article_id for hit in index.search("熊本の半導体工場はいつ完成したか").hits][:1] == ["factory"]
    gc.collect()
    assert not any(ref() for ref in old)


class Interrupt(KeyboardInterrupt):
    pass


def test_interrupted_reindex_leaves_the_previous_index_in_use(corpus_copy, tmp_path):
    root = tmp_path / "index"
    reindex([corpus_copy], root)
    before = IndexStore(root).current_name()
    for number in range(30):
        (corpus_copy / f"extra-{number:02d}.md").write_text(NEW_ARTICLE, encoding="utf-8")

    def interrupt_midway(count: int) -> None:
        if count == 10:
            raise Interrupt

    with pytest.raises(Interrupt):
        reindex([corpus_copy], root, progress=interrupt_midway)
    assert IndexStore(root).current_name() == before
    assert not list(root.glob("*" + BUILDING_SUFFIX))
    assert SearchIndex(root).search("熊本").total == 0
    assert SearchIndex(root).search("H200").total == 4
    finished = reindex([corpus_copy], root)  # and the next reindex picks up from the old one
    assert finished.added.articles == 30


@pytest.mark.parametrize("workers", [0, 2])
def test_a_stop_asked_for_is_honoured_until_the_segments_are_merged(corpus_copy, tmp_path, monkeypatch, workers):
    """Asked for between articles, or once all are read and the workers are writing their segments,
    a stop leaves the previous index in use."""
    root = tmp_path / "index"
    reindex([corpus_copy], root)
    before = IndexStore(root).current_name()
    for number in range(parallel.PARALLEL_MIN_DOCUMENTS + 20):  # enough for the workers to start
        (corpus_copy / f"extra-{number:03d}.md").write_text(NEW_ARTICLE, encoding="utf-8")
    started = []
    start_workers = parallel.ParallelWriter._start_workers
    monkeypatch.setattr(parallel.ParallelWriter, "_start_workers", lambda w: started.append(start_workers(w)))
    for moment in ("progress", "writing"):
        stop = StopRequest()
        ask = functools.partial(_ask_sigterm, stop)
        with pytest.raises(ReindexStopped, match="SIGTERM"):
            reindex([corpus_copy], root, workers=workers, stop=stop, **{moment: ask})
        assert IndexStore(root).current_name() == before
        assert not list(root.glob("*" + BUILDING_SUFFIX))
        assert SearchIndex(root).search("熊本").total == 0
    assert len(started) == (1 if workers else 0)  # "writing": the workers had started, then stopped


def _ask_sigterm(stop: StopRequest, *_) -> None:
    stop.ask(signal.SIGTERM)


def test_a_stop_is_honoured_inside_one_long_article(tmp_path, monkeypatch):
    """A stop was checked between articles only, and one long article (thousands of sections)
    took its whole analysis to stop: 12 s for a 4 MB one."""
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    paragraphs = "".join(f"第{number}段落。熊本に半導体の新工場が完成した。\n\n" for number in range(2000))
    (corpus / "long.md").write_text("# 長い記事\n\n" + paragraphs, encoding="utf-8")
    stop, written = StopRequest(), []
    add_documents = ArraySegmentWriter.add_documents

    def counted(writer, documents):
        written.extend(documents)
        stop.ask(signal.SIGINT)  # asked while the first few sections are analysed
        return add_documents(writer, documents)

    monkeypatch.setattr(ArraySegmentWriter, "add_documents", counted)
    with pytest.raises(ReindexStopped):
        reindex([corpus], tmp_path / "index", workers=0, stop=stop)
    assert 0 < len(written) <= parallel.STOP_CHECK_DOCUMENTS  # of its 121 sections


def test_a_stop_asked_for_while_committing_comes_too_late(corpus_copy, tmp_path, monkeypatch):
    """Once the new generation is being published the reindex finishes it, whole: the caller
    sees what was asked meanwhile in `stop.signum`."""
    root = tmp_path / "index"
    reindex([corpus_copy], root)
    (corpus_copy / "factory.md").write_text(NEW_ARTICLE, encoding="utf-8")
    stop = StopRequest()
    publish = IndexStore.publish

    def publish_after_a_stop(store, *args):
        stop.ask(signal.SIGINT)
        return publish(store, *args)

    monkeypatch.setattr(IndexStore, "publish", publish_after_a_stop)
    report = reindex([corpus_copy], root, stop=stop)
    assert report.generation == IndexStore(root).current_name()
    assert stop.signum == signal.SIGINT
    assert [hit.article_id for hit in SearchIndex(root).search("熊本の半導体工場").hits][:1] == ["factory"]


def test_an_article_that_lost_a_duplicate_id_comes_back_when_the_winner_goes(tmp_path, monkeypatch):
    """b.jsonl's X lost to a.jsonl's; with a.jsonl deleted, b.jsonl (its stat unchanged) was
    skipped unread and X removed, though b.jsonl holds it, until a --full reindex."""
    corpus, root = tmp_path / "corpus", tmp_path / "index"
    corpus.mkdir()
    (corpus / "a.jsonl").write_text('{"id": "X", "title": "旧", "body": "りんごの記事。"}\n', encoding="utf-8")
    (corpus / "b.jsonl").write_text(
        '{"id": "X", "title": "新", "body": "みかんの記事。"}\n'
        '{"id": "Y", "title": "ワイ", "body": "ぶどうの記事。"}\n',
        encoding="utf-8",
    )
    monkeypatch.setattr(indexing, "RACY_SECONDS", 0)  # files trusted by their stat at once, not 2 s later
    first = reindex([corpus], root, workers=0)
    assert [item.reason for item in first.skipped] == ["duplicate article id 'X'"]
    (corpus / "a.jsonl").unlink()
    second = reindex([corpus], root, workers=0)
    assert second.removed.articles == 0 and second.updated.articles == 1
    assert [hit.article_id for hit in SearchIndex(root).search("みかん").hits] == ["X"]
    assert SearchIndex(root).search("りんご").total == 0
    assert not reindex([corpus], root, workers=0).changed  # and b.jsonl is trusted again


def test_a_manifest_that_cannot_be_written_leaves_the_live_one_alone(corpus_copy, tmp_path, monkeypatch):
    """A no-change reindex rewrites the live manifest in place; on a full disk it left an empty
    midashi-manifest.tmp in the live generation."""
    root = tmp_path / "index"
    reindex([corpus_copy], root)
    folder = IndexStore(root).current()
    before = (folder / MANIFEST_FILE).read_bytes()

    def full_disk(descriptor: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", full_disk)
    with pytest.raises(OSError, match="No space left"):
        Manifest.load(folder).save(folder)
    assert sorted(path.name for path in folder.iterdir() if "manifest" in path.name) == [MANIFEST_FILE]
    assert (folder / MANIFEST_FILE).read_bytes() == before


def _hold_lock(root: str, ready, release) -> None:
    with IndexStore(root).writer_lock():
        ready.set()
        release.wait(30)


def test_a_second_reindex_on_the_same_index_is_refused(corpus_copy, tmp_path):
    root = tmp_path / "index"
    reindex([corpus_copy], root)
    context = multiprocessing.get_context("spawn")
    ready, release = context.Event(), context.Event()
    holder = context.Process(target=_hold_lock, args=(str(root), ready, release))
    holder.start()
    try:
        assert ready.wait(30)
        with pytest.raises(IndexBusyError, match=f"pid {holder.pid}"):
            reindex([corpus_copy], root)
    finally:
        release.set()
        holder.join(30)
    assert reindex([corpus_copy], root).unchanged.articles == 1  # free again afterwards


def test_unreadable_files_are_skipped_with_reasons_not_fatal(corpus_copy, tmp_path):
    (corpus_copy / "broken.txt").write_bytes(b"\x00\xff binary")
    (corpus_copy / "dup").mkdir()
    (corpus_copy / "feed.jsonl").write_text(
        '{"id": "x", "title": "t", "body": "本文。"}\n{"id": "x", "title": "t2", "body": "本文。"}\n', encoding="utf-8"
    )
    report = reindex([corpus_copy], tmp_path / "index")
    reasons = {s.path.rsplit("/", 1)[-1]: s.reason for s in report.skipped}
    assert "broken.txt" in reasons and "NUL" in reasons["broken.txt"]
    assert any("duplicate article id 'x'" in r for r in reasons.values())
    assert report.added.articles == 2


def test_searching_without_an_index_says_what_to_do(tmp_path):
    with pytest.raises(IndexMissingError, match="midashi reindex"):
        SearchIndex(tmp_path / "nowhere").search("半導体")


def test_old_generations_are_cleaned_up(corpus_copy, tmp_path):
    root = tmp_path / "index"
    for number in range(4):
        (corpus_copy / f"n{number}.md").write_text(NEW_ARTICLE, encoding="utf-8")
        reindex([corpus_copy], root)
    generations = sorted(p.name for p in root.glob("gen-*"))
    assert len(generations) == 2 and IndexStore(root).current_name() == generations[-1]
    assert os.path.exists(root / "CURRENT")


@pytest.fixture
def jaquad_sample(tmp_path) -> Path:
    """The first articles of the JaQuAD corpus (real Wikipedia text, ~150 sections)."""
    lines = require(JAQUAD / "corpus.jsonl").read_text(encoding="utf-8").splitlines()[:12]
    path = tmp_path / "sample.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.fixture
def livedoor_sample(livedoor_tarball, tmp_path) -> Path:
    """The tarball's first 60 articles, unmodified, in its own folder layout (text/<category>/)."""
    target = tmp_path / "livedoor"
    with tarfile.open(livedoor_tarball) as tar:
        members = (m for m in tar if m.isfile() and re.search(r"-\d+\.txt$", m.name))
        tar.extractall(target, members=list(itertools.islice(members, 60)), filter="data")
    return target


@pytest.fixture
def small_batches(monkeypatch):
    """Make a small corpus take the worker-process path a big reindex takes."""
    monkeypatch.setattr(parallel, "PARALLEL_MIN_DOCUMENTS", 10)
    monkeypatch.setattr(parallel, "BATCH_DOCUMENTS", 7)


def _ranked(index: SearchIndex, query: str) -> list[tuple[str, float]]:
    return [(hit.section_id, round(hit.score, 6)) for hit in index.search(query, limit=20, snippets=False).hits]


@pytest.mark.livedoor
def test_worker_processes_build_the_same_index_as_one_process(livedoor_sample, jaquad_sample, tmp_path, small_batches):
    serial, workers = tmp_path / "serial", tmp_path / "workers"
    reindex([livedoor_sample, jaquad_sample], serial, workers=0)
    report = reindex([livedoor_sample, jaquad_sample], workers, workers=2)
    segments = list((workers / report.generation).glob("*.seg"))
    assert len(segments) == 2  # one per worker: the parallel path really ran
    one, two = SearchIndex(serial), SearchIndex(workers)
    for query in ("東大寺", "奈良 仏像", "大仏はいつ造られたか", "「盧舎那仏」", "女性", "結婚 仕事", "独女"):
        assert _ranked(one, query) and _ranked(one, query) == _ranked(two, query)
    assert index_stats(serial)["sections"] == index_stats(workers)["sections"] == f"{report.added.sections:,}"


@pytest.mark.livedoor
def test_one_process_writes_documents_as_they_come(livedoor_sample, tmp_path, small_batches, monkeypatch):
    # With no workers (a single core, or --workers 0) a big corpus must not wait in memory whole.
    batches: list[int] = []
    add_documents = ArraySegmentWriter.add_documents

    def recording(self, documents):
        batches.append(len(documents))
        add_documents(self, documents)

    monkeypatch.setattr(ArraySegmentWriter, "add_documents", recording)
    report = reindex([livedoor_sample], tmp_path / "index", workers=0)
    assert sum(batches) == report.added.sections and len(batches) > 10 and max(batches) <= 7


@pytest.mark.livedoor
def test_a_failing_worker_abandons_the_reindex(jaquad_sample, corpus_copy, tmp_path, small_batches, monkeypatch):
    root = tmp_path / "index"
    reindex([corpus_copy], root)
    before = IndexStore(root).current_name()

    def broken_add_document(self, **fields):
        raise MemoryError("simulated worker failure")

    monkeypatch.setattr(ArraySegmentWriter, "add_document", broken_add_document)  # inherited by the forks
    with pytest.raises(WorkerFailed, match="simulated worker failure"):
        reindex([corpus_copy, jaquad_sample], root, workers=2)
    assert not multiprocessing.active_children()
    assert IndexStore(root).current_name() == before
    assert not list(root.glob("*" + BUILDING_SUFFIX))
    monkeypatch.undo()
    assert SearchIndex(root).search("H200").total == 4


def _rewritten(line: str, note: str) -> str:
    record = json.loads(line)
    record["sections"][-1]["text"] += note
    return json.dumps(record, ensure_ascii=False)


@pytest.mark.livedoor
def test_an_updated_feed_parses_only_its_changed_lines(jaquad_sample, tmp_path, monkeypatch):
    root = tmp_path / "index"
    assert reindex([jaquad_sample], root).added.articles == 12
    parsed: list[str] = []

    def parsing(record, where):
        parsed.append(where)
        return article_from_json(record, where)

    article_from_json = readers.article_from_json
    monkeypatch.setattr(readers, "article_from_json", parsing)
    lines = jaquad_sample.read_text(encoding="utf-8").splitlines()
    lines[2] = _rewritten(lines[2], "この節は更新された。")
    lines.append(lines[5])  # an unchanged line twice: the copy is still a duplicate id
    jaquad_sample.write_text("\n".join(lines) + "\n", encoding="utf-8")
    report = reindex([jaquad_sample], root)
    assert parsed == [f"{jaquad_sample}:3"]
    assert (report.updated.articles, report.unchanged.articles) == (1, 11)
    [duplicate] = report.skipped
    assert duplicate.path == f"{jaquad_sample}:13" and "duplicate article id" in duplicate.reason
    assert SearchIndex(root).search("この節は更新された", relax=False).total == 1  # every word: that section only


@pytest.mark.livedoor
def test_segments_an_update_empties_are_dropped(jaquad_sample, tmp_path, small_batches):
    root = tmp_path / "index"
    built = reindex([jaquad_sample], root, workers=2)
    with SearchIndex(root).open()[1].reader() as reader:
        first = {segment.segment_id() for segment in reader.segments()}
    lines = jaquad_sample.read_text(encoding="utf-8").splitlines()
    jaquad_sample.write_text("".join(_rewritten(line, "（更新）") + "\n" for line in lines), encoding="utf-8")
    updated = reindex([jaquad_sample], root, workers=2)
    assert updated.updated.sections == built.added.sections
    with SearchIndex(root).open()[1].reader() as reader:
        segments = reader.segments()
        assert all(not segment.has_deletions() for segment in segments)  # every old one left
        assert sum(segment.doc_count_all() for segment in segments) == built.added.sections
    assert len(first) == 2 and not [
        p for p in (root / updated.generation).iterdir() if p.stem.split("_", 1)[-1] in first
    ]
