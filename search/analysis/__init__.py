"""Stage 2, analysis: Japanese text → index terms, with SudachiPy (`sudachi.py`).

Whoosh pickles each field's analyzer into the index, under the path its class had when the
index was written. Indexes written before the analyzer moved into `sudachi.py` name these
classes as `search.analysis.<name>`; they stay importable from here so those indexes still open
(`tests/test_codec.py` checks every path an index may name).
"""

from .sudachi import CharBigramTokenizer, SudachiTokenizer, SynonymGroupTokenizer

__all__ = ["CharBigramTokenizer", "SudachiTokenizer", "SynonymGroupTokenizer"]
