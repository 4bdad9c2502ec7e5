"""The seam between Midashi and Whoosh's internals (`search/codec/whoosh_internals.py`).

Each private Whoosh name Midashi uses must exist in the installed Whoosh (a failure names the
one that is gone), and no code outside `search/codec/` may reach into a Whoosh object's private
names. Indexes already on disk name the classes Whoosh pickled into them; those names resolve.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import io
import pickle
import re
import warnings
from pathlib import Path

import pytest
import whoosh

from search.codec.whoosh_internals import PRIVATE_NAMES, PrivateName

PROJECT = Path(__file__).resolve().parent.parent
CODEC = PROJECT / "search" / "codec"


def _resolve(dotted: str):
    """A module, or a class inside one (`whoosh.columns.FixedBytesColumn.Reader`)."""
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            found = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        for part in parts[cut:]:
            found = getattr(found, part)
        return found
    raise ImportError(dotted)


def _whoosh_has(owner, name: str) -> bool:
    """Whether a Whoosh module or class has `name`: as an attribute, or (for an instance attribute)
    assigned as `self.<name>` somewhere in the class or a Whoosh class it inherits from."""
    if hasattr(owner, name):
        return True
    if not inspect.isclass(owner):
        return False
    assigned = re.compile(rf"\bself\.{re.escape(name)}\b[^=\n]*=(?!=)")
    return any(
        assigned.search(inspect.getsource(klass)) for klass in owner.__mro__ if klass.__module__.startswith("whoosh")
    )


@pytest.mark.parametrize("private", PRIVATE_NAMES, ids=lambda private: f"{private.owner}.{private.name}")
def test_every_private_whoosh_name_midashi_uses_exists(private: PrivateName):
    owner = _resolve(private.owner)
    assert owner.__name__.startswith("whoosh") or owner.__module__.startswith("whoosh")
    assert _whoosh_has(owner, private.name), (
        f"whoosh {whoosh.versionstring()} has no {private.owner}.{private.name} ({private.why}): "
        "search/codec/ must change with it"
    )


def test_the_check_fails_for_a_name_whoosh_never_had():
    assert not _whoosh_has(_resolve("whoosh.reading.SegmentReader"), "_no_such_thing")
    assert _whoosh_has(_resolve("whoosh.reading.SegmentReader"), "_terms")  # an instance attribute


def _whoosh_private_names() -> set[str]:
    """Every `_name` Whoosh's source defines, assigns or reads as an attribute."""
    names = set()
    for path in Path(whoosh.__file__).parent.rglob("*.py"):
        with warnings.catch_warnings():  # Whoosh's source has old string escapes
            warnings.simplefilter("ignore", SyntaxWarning)
            warnings.simplefilter("ignore", DeprecationWarning)
            tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
                names.add(node.name)
            elif isinstance(node, ast.Attribute):
                names.add(node.attr)
            elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
                names.add(node.id)
    return {name for name in names if name.startswith("_") and not name.startswith("__")}


def private_whoosh_uses(source: str, whoosh_names: set[str]) -> list[str]:
    """Where `source` imports a private name from Whoosh, reads a Whoosh private name off an
    object other than `self`, or uses one on `self` in a class built on a Whoosh class."""
    found = []
    tree = ast.parse(source)
    whoosh_bases: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("whoosh"):
            whoosh_bases.update(alias.asname or alias.name for alias in node.names)
            found += [f"line {node.lineno}: import {alias.name}" for alias in node.names if alias.name.startswith("_")]
        elif isinstance(node, ast.Import):
            whoosh_bases.update(alias.asname or alias.name for alias in node.names if alias.name.startswith("whoosh"))
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Attribute)
            and node.attr in whoosh_names
            and not (isinstance(node.value, ast.Name) and node.value.id in ("self", "cls"))
        ):
            found.append(f"line {node.lineno}: {ast.unparse(node)}")
        if isinstance(node, ast.ClassDef):
            bases = {ast.unparse(base).split(".")[0] for base in node.bases}
            if bases & whoosh_bases:
                for inner in ast.walk(node):
                    if isinstance(inner, ast.Attribute) and inner.attr in whoosh_names:
                        found.append(f"line {inner.lineno}: {node.name} uses {ast.unparse(inner)}")
                    elif isinstance(inner, ast.FunctionDef) and inner.name in whoosh_names:
                        found.append(f"line {inner.lineno}: {node.name} overrides {inner.name}")
    return found


def test_no_private_whoosh_name_outside_the_codec():
    whoosh_names = _whoosh_private_names()
    outside = [
        path
        for folder in ("search", "web")
        for path in sorted((PROJECT / folder).rglob("*.py"))
        if CODEC not in path.parents
    ]
    assert len(outside) > 10
    uses = {
        str(path.relative_to(PROJECT)): found
        for path in outside
        if (found := private_whoosh_uses(path.read_text(encoding="utf-8"), whoosh_names))
    }
    assert not uses, f"Whoosh internals outside search/codec/ (use search/codec/whoosh_internals.py): {uses}"


def test_the_scan_finds_each_kind_of_private_use():
    whoosh_names = _whoosh_private_names()
    source = (
        "from whoosh.codec.whoosh3 import _lenfield\n"
        "from whoosh.sorting import ColumnCategorizer\n"
        "def f(reader):\n    return reader._terms\n"
        "class C(ColumnCategorizer):\n    def g(self):\n        return self._creader\n"
    )
    found = private_whoosh_uses(source, whoosh_names)
    assert sorted(line.split(":")[0] for line in found) == ["line 1", "line 4", "line 7"], found
    assert private_whoosh_uses("class D:\n    def g(self):\n        return self._lock\n", whoosh_names) == []


# Classes Whoosh pickles into an index's table of contents, at every path an index may name:
# where they live now, and where indexes written before the stage packages name them.
PICKLED = {
    "search.analysis.sudachi": [
        "SudachiTokenizer",
        "SynonymGroupTokenizer",
        "CharBigramTokenizer",
        "ReadingTokenizer",
        "NameTokenizer",
        "SynonymWordTokenizer",  # (since index format 6: never under `search.analysis`)
    ],
    "search.analysis": ["SudachiTokenizer", "SynonymGroupTokenizer", "CharBigramTokenizer"],
    "search.codec.postings": ["ArrayCodec", "ArrayPositions", "TermCounts"],
    "search.postings": ["ArrayCodec", "ArrayPositions", "TermCounts"],
}


@pytest.mark.parametrize("module", sorted(PICKLED))
def test_every_class_an_index_may_name_resolves(module: str):
    unpickler = pickle.Unpickler(io.BytesIO(b""))
    current = importlib.import_module("search.analysis.sudachi" if "analysis" in module else "search.codec.postings")
    for name in PICKLED[module]:
        assert unpickler.find_class(module, name) is getattr(current, name)


def test_a_schema_pickles_under_the_current_paths(corpus_index):
    schema = corpus_index.open()[1].schema
    written = pickle.dumps(schema, protocol=2)
    named = set(re.findall(rb"c(search[\w.]*)\n(\w+)\n", written))
    assert named, "the schema names no class of Midashi's"
    for module, name in named:
        assert name.decode() in PICKLED[module.decode()]
    assert pickle.loads(written).names() == schema.names()
