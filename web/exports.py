"""A search's results for other programs: its Atom feed (`/feed`) and its CSV download
(`/search.csv`). The formats are written by `search.exports`, as `midashi search` writes them;
this module only reads the request and names the URLs."""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import quote

from flask import Blueprint, Response, render_template, request, url_for

from search.exports import ATOM_CONTENT_TYPE, FeedLinks, results_atom, results_csv
from search.query.parse import QueryError
from search.searching import MAX_LIMIT, Hit

from . import browser
from .params import SearchRequest, search_request
from .views import _FILTER_ARGS, category_label, query_error_status

blueprint = Blueprint("exports", __name__)

# The newest articles a feed lists: what a feed reader shows of a search, not an archive of it.
FEED_ENTRIES = 20
# The articles a CSV download lists at most, best first: `midashi search -n 1000 --format csv`.
CSV_ARTICLES = MAX_LIMIT
# The parameters that choose a search's articles (not its page), the page's filters among them:
# a feed keeps them, and so does the CSV download, with the order.
SEARCH_ARGS = ("q", *_FILTER_ARGS)
# Characters a file name cannot hold on Windows or macOS, and blanks: a `_` in the download's name.
_NOT_IN_FILE_NAMES = re.compile(r'[\\/:*?"<>|\s\x00-\x1f\x7f]+')
FILE_NAME_QUERY_CHARS = 40


@blueprint.errorhandler(QueryError)
def _bad_query(error: QueryError):
    """A query or parameter that cannot be searched: the page's error, in Japanese, never a 500."""
    what = "フィード" if request.path == "/feed" else "CSV"
    message = f"この検索の{what}は作れませんでした。"
    return render_template("error.html", code=400, message=message, detail=error.japanese), query_error_status(error)


def search_args(*names: str) -> dict[str, Any]:
    """This request's parameters among `names` that have a value (Any: url_for's **values)."""
    return {name: request.args[name] for name in names if request.args.get(name)}


@blueprint.app_template_global()
def export_url(endpoint: str, sort: bool = False) -> str:
    """The feed's or the CSV download's URL of the search on the page: its query and filters, and
    with `sort` its order (a feed is always newest first)."""
    return url_for(endpoint, **search_args(*SEARCH_ARGS, *(["sort"] if sort else [])))


@blueprint.app_context_processor
def _csv_limit() -> dict[str, int]:
    return {"csv_articles": CSV_ARTICLES}


@blueprint.get("/feed")
def feed():
    """An Atom feed of the search: its newest FEED_ENTRIES articles, each at its best section."""
    wanted = search_request(request.args)
    results = browser().index.search(wanted.q, FEED_ENTRIES, filters=wanted.filters, sort="newest", group=True)
    args = search_args(*SEARCH_ARGS)
    links = FeedLinks(
        self_url=url_for("exports.feed", _external=True, **args),
        page_url=url_for("views.search", _external=True, **args, sort="newest"),
        title=f"{_described(wanted)} — Midashi",
        # The parameters given, by name: a filter added to the page later leaves feeds' ids as they were.
        search_key=json.dumps(args, ensure_ascii=False, sort_keys=True),
    )

    def entry_url(hit: Hit) -> str:
        anchor = f"s{hit.section_number}" if hit.section_number else None
        return url_for("views.article", article_id=hit.article_id, q=wanted.q, _anchor=anchor, _external=True)

    return Response(results_atom(results, links, entry_url), content_type=ATOM_CONTENT_TYPE)


def _described(wanted: SearchRequest) -> str:
    """What a feed's title says it follows: the query and its filters."""
    filters = wanted.filters
    conditions = [category_label(filters.category), filters.source]
    if filters.date_from or filters.date_to:
        conditions.append(f"{filters.date_from or ''}〜{filters.date_to or ''}")
    shown = "、".join(condition for condition in conditions if condition)
    return f"「{wanted.q.strip()}」の新着記事" + (f"（{shown}）" if shown else "")


@blueprint.get("/search.csv")
def csv_download():
    """The search's first CSV_ARTICLES articles in the page's order, as `midashi search --format
    csv` writes them, with a byte-order mark so that Excel reads it as UTF-8."""
    wanted = search_request(request.args)
    results = browser().index.search(wanted.q, CSV_ARTICLES, filters=wanted.filters, sort=wanted.sort, group=True)
    name = "midashi-" + (_NOT_IN_FILE_NAMES.sub("_", wanted.q.strip())[:FILE_NAME_QUERY_CHARS] or "search") + ".csv"
    return Response(
        results_csv(results, bom=True).encode("utf-8"),
        content_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": content_disposition(name)},
    )


def content_disposition(name: str) -> str:
    """An attachment named `name`: `filename*` in UTF-8 (RFC 5987, what browsers use), and an
    ASCII `filename` for the others (the name itself if it is ASCII, else `midashi-search.csv`)."""
    fallback = name if name.isascii() else "midashi-search.csv"
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(name, safe='')}"
