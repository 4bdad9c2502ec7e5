"""The JSON API: search, articles, suggestions, health, and its OpenAPI description."""

from __future__ import annotations

from datetime import datetime

from flask import Blueprint, abort, jsonify, request

from search.query.parse import QueryError

from . import browser
from .openapi import OPENAPI
from .params import search_request
from .views import query_error_status

blueprint = Blueprint("api", __name__)


@blueprint.errorhandler(QueryError)
def _bad_query(error: QueryError):
    return jsonify(error=str(error)), query_error_status(error)


@blueprint.get("/api/search")
def search():
    wanted = search_request(request.args)
    results = wanted.run(browser().index)
    alternatives = browser().alternatives(wanted.q, wanted.filters) if results.few else []
    # What `midashi search --json` prints, and the page the request asked for.
    return jsonify({**results.as_json(alternatives), "page": wanted.page, "per_page": wanted.per_page})


@blueprint.get("/api/articles/<path:article_id>")
def article(article_id: str):
    view = browser().article(article_id, request.args.get("q", ""))
    if view is None:
        abort(404, description=f"no article with id {article_id!r}")
    return jsonify(
        id=view.article_id,
        title=view.title.text(),
        date=_iso(view.date),
        source=view.source,
        category=view.category,
        url=view.url,
        sections=[
            {
                "section_id": section.section_id,
                "number": section.number,
                "heading": section.heading.text(),
                "text": "\n".join(p.text() for p in section.paragraphs),
                "html": "\n".join(p.html() for p in section.paragraphs),
                "matched": section.matched,
            }
            for section in view.sections
        ],
        related=[
            {"id": r.article_id, "title": r.title, "date": _iso(r.date), "source": r.source, "category": r.category}
            for r in view.related
        ],
    )


@blueprint.get("/api/suggest")
def suggest():
    suggestions = browser().suggest(request.args.get("q", ""))
    return jsonify(
        queries=suggestions.queries,
        titles=[{"id": article_id, "title": title} for article_id, title in suggestions.titles],
    )


@blueprint.get("/healthz")
def healthz():
    with browser().index.searcher() as (generation, searcher):  # this thread's open searcher: no file opening
        return jsonify(status="ok", generation=generation, sections=searcher.doc_count())


@blueprint.get("/api/openapi.json")
def openapi():
    return jsonify(OPENAPI)


def _iso(when: datetime | None) -> str | None:
    return when.isoformat() if when else None
