"""A result list in the formats other programs read: CSV (`midashi search --format csv` and the
page's download) and Atom (the page's feed of a search).

One writer per format, used by the CLI and the web alike; neither holds a copy. The web gives the
Atom feed its URLs (`FeedLinks`, `entry_url`): which page an entry leads to is the web's to say.
"""

from __future__ import annotations

import csv
import io
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from xml.etree import ElementTree

from .searching import Hit, SearchResults

# What a CSV export has per article (or section, with --sections): a spreadsheet's columns.
CSV_COLUMNS = (
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
)
# Excel, opening a .csv in Japan, reads it as Shift_JIS (CP932) unless it starts with this
# byte-order mark: the page's download has it, the CLI's output (for pipes and scripts) does not.
EXCEL_BOM = "\ufeff"


def results_csv(results: SearchResults, bom: bool = False) -> str:
    """A header row, then one row per hit (RFC 4180: quoted where needed, CRLF line ends), with
    `EXCEL_BOM` first when `bom`."""
    out = io.StringIO()
    if bom:
        out.write(EXCEL_BOM)
    writer = csv.writer(out)
    writer.writerow(CSV_COLUMNS)
    for hit in results.hits:
        row = hit.as_json()
        writer.writerow([row[column] for column in CSV_COLUMNS])
    return out.getvalue()


# --- Atom ------------------------------------------------------------------------------------

ATOM = "http://www.w3.org/2005/Atom"
ATOM_CONTENT_TYPE = "application/atom+xml; charset=utf-8"
# News dates are stored as the wall-clock time printed (`readers.parse_date` drops the zone); Atom
# needs a zone, and the news is Japanese: Japan time.
NEWS_TIME_ZONE = timezone(timedelta(hours=9), "JST")
# Feed and entry ids are name-based UUIDs in this namespace (RFC 4122 version 5): the same article
# or search has the same id on any host and after any reindex, with nothing to escape.
ID_NAMESPACE = uuid.UUID("0b6a3c1e-5d0f-4a57-9e4e-6d1d5a1f29e1")
# Characters XML 1.0 cannot carry at all (not even escaped): C0 controls but tab, newline and
# carriage return, lone surrogates, U+FFFE and U+FFFF.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")

ElementTree.register_namespace("", ATOM)


@dataclass(frozen=True)
class FeedLinks:
    """Where a feed is (`self_url`), the page it mirrors (`page_url`), and its title."""

    self_url: str
    page_url: str
    title: str
    search_key: str  # what identifies the search (query and filters): the feed's id comes from it


def stable_id(kind: str, name: str) -> str:
    """A `urn:uuid:` for an article or a search: the same name gives the same id, always."""
    return uuid.uuid5(ID_NAMESPACE, f"{kind}:{name}").urn


def results_atom(results: SearchResults, links: FeedLinks, entry_url: Callable[[Hit], str]) -> bytes:
    """An Atom 1.0 feed (RFC 4287) of `results`, an entry per hit in their order, as UTF-8.

    The feed is updated when its newest entry is dated (now, when no entry has a date); an
    undated entry takes the feed's time. Text is escaped by the XML writer, and characters XML
    cannot carry are left out, so no title breaks the feed."""
    dates = [hit.date for hit in results.hits if hit.date]
    updated = max(dates).replace(tzinfo=NEWS_TIME_ZONE) if dates else datetime.now(UTC).replace(microsecond=0)
    feed = ElementTree.Element(_atom("feed"), {"{http://www.w3.org/XML/1998/namespace}lang": "ja"})
    _text(feed, "id", stable_id("search", links.search_key))
    _text(feed, "title", links.title)
    _text(feed, "updated", updated.isoformat())
    _link(feed, rel="self", type="application/atom+xml", href=links.self_url)
    _link(feed, rel="alternate", type="text/html", href=links.page_url)
    _text(ElementTree.SubElement(feed, _atom("author")), "name", "Midashi")
    _text(feed, "generator", "Midashi")
    for hit in results.hits:
        entry = ElementTree.SubElement(feed, _atom("entry"))
        _text(entry, "id", stable_id("article", hit.article_id))
        _text(entry, "title", hit.title.text())
        when = hit.date.replace(tzinfo=NEWS_TIME_ZONE) if hit.date else updated
        _text(entry, "updated", when.isoformat())
        if hit.date:
            _text(entry, "published", when.isoformat())
        _link(entry, rel="alternate", type="text/html", href=entry_url(hit))
        if hit.url.startswith(("http://", "https://")):  # the original article; never a javascript: URL
            _link(entry, rel="related", type="text/html", href=hit.url)
        if hit.source:
            _text(ElementTree.SubElement(entry, _atom("author")), "name", hit.source)
        if hit.category:
            ElementTree.SubElement(entry, _atom("category"), term=_xml_safe(hit.category))
        _text(entry, "summary", hit.snippet.text())
    return ElementTree.tostring(feed, encoding="utf-8", xml_declaration=True)


def _atom(name: str) -> str:
    return f"{{{ATOM}}}{name}"


def _text(parent: ElementTree.Element, name: str, text: str) -> ElementTree.Element:
    element = ElementTree.SubElement(parent, _atom(name))
    element.text = _xml_safe(text)
    return element


def _link(parent: ElementTree.Element, **attributes: str) -> None:
    ElementTree.SubElement(parent, _atom("link"), {name: _xml_safe(value) for name, value in attributes.items()})


def _xml_safe(text: str) -> str:
    return _NOT_XML.sub("", text)
