"""`midashi stats`: what the live index holds, read from its manifest and Whoosh's reader."""

from __future__ import annotations

from pathlib import Path

from whoosh import index as whoosh_index

from .analysis.sudachi import analyzer_version
from .codec.schema import TEXT_FIELDS
from .codec.store import IndexStore, Manifest


def index_stats(index_root: Path | str) -> dict[str, str]:
    store = IndexStore(index_root)
    folder = store.current()
    manifest = Manifest.load(folder)
    store.verify(folder, checksums=manifest.checksums)  # DamagedIndexError, not figures off damaged files
    index = whoosh_index.open_dir(str(folder))
    with index.reader() as reader:
        sections = reader.doc_count()
        terms = {term for field in TEXT_FIELDS for term in reader.lexicon(field)}
    return {
        "index": str(folder),
        "articles": f"{len(manifest.articles):,}",
        "sections": f"{sections:,}",
        "terms": f"{len(terms):,} distinct (title, heading, body)",
        "size on disk": f"{store.size_on_disk() / 1e6:.1f} MB",
        "last reindex": manifest.built_at or "unknown",
        "analyzer": _analyzer(manifest.analyzer),
        "corpus": ", ".join(manifest.corpus) or "unknown",
    }


def _analyzer(built_with: str) -> str:
    """The analyzer the index was built with, and what to do when it is not the installed one."""
    installed = analyzer_version()
    if built_with == installed:
        return built_with
    return f"{built_with or 'unknown'} (installed: {installed}; run `midashi reindex` to rebuild)"
