"""Where indexes written before the codec moved into `search/codec/` find their posting
formats: Whoosh pickled them as `search.postings.<name>` (`tests/test_codec.py` checks it)."""

from .codec.postings import ArrayCodec, ArrayPositions, TermCounts

__all__ = ["ArrayCodec", "ArrayPositions", "TermCounts"]
