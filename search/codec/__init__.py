"""Stage 3, the index on disk: Midashi's fork of Whoosh's codec, segments and index folder.

Everything that reaches into Whoosh's private internals lives in this package, each use named
in `whoosh_internals.py` (`tests/test_codec.py` fails by name when an installed Whoosh lacks one).
"""
