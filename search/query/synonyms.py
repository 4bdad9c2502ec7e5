"""User synonyms: a plain text file read at query time, so editing it needs no reindex.

Format: one group of equivalent words per line, separated by commas (`,` `、` `，`); `#` starts a
comment. Each word is analysed like the text, so `NVIDIA, エヌビディア` also covers ｎｖｉｄｉａ.

    # 社名の表記ゆれ
    NVIDIA, エヌビディア
    TSMC, 台湾積体電路製造
"""

from __future__ import annotations

import os
import re
import threading
from pathlib import Path

from ..analysis.sudachi import terms

DEFAULT_FILE = "synonyms.txt"
ENVIRONMENT_VARIABLE = "MIDASHI_SYNONYMS"
_SEPARATORS = re.compile(r"[,、，]")

Words = tuple[str, ...]


def default_synonyms_path() -> Path:
    """$MIDASHI_SYNONYMS, else synonyms.txt in the working directory (it may not exist)."""
    return Path(os.environ.get(ENVIRONMENT_VARIABLE, DEFAULT_FILE))


class UserSynonyms:
    """Equivalent word sequences from a synonyms file, reloaded when the file changes."""

    def __init__(self, path: Path | str | None):
        self.path = Path(path) if path else None
        self._lock = threading.Lock()
        self._stamp: tuple[int, int] | None = None
        self._groups: dict[Words, frozenset[Words]] = {}

    def groups(self) -> dict[Words, frozenset[Words]]:
        """Each listed word sequence (analysed terms) and its group, as the file stands now: one
        look at the file, so a query takes it once rather than once a word."""
        try:
            stat = self.path.stat() if self.path else None
        except OSError:
            stat = None
        stamp = (stat.st_mtime_ns, stat.st_size) if stat else None
        with self._lock:
            if stamp != self._stamp:
                self._groups = parse_synonyms(self.path.read_text(encoding="utf-8")) if stamp and self.path else {}
                self._stamp = stamp
            return self._groups


def parse_synonyms(text: str) -> dict[Words, frozenset[Words]]:
    groups: dict[Words, frozenset[Words]] = {}
    for line in text.splitlines():
        line = line.split("#", 1)[0]
        members = frozenset(
            words for words in (tuple(t.text for t in terms(part.strip())) for part in _SEPARATORS.split(line)) if words
        )
        if len(members) > 1:
            for words in members:
                groups[words] = groups.get(words, frozenset()) | members
    return groups
