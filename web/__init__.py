"""The browser search page and JSON API: a thin Flask layer over `search`.

`create_app(index_root)` builds the app; `web.server.serve` runs it on waitress. Views only read
parameters, call `search.searching` / `search.browse` and render; no search logic lives here.
Every response, pages, JSON, static files and errors alike, carries the security headers of
`SECURITY_HEADERS`: the page's script and styles are files of its own origin (no inline code), so
the Content-Security-Policy allows nothing else to run, load, frame the page or take its forms.
"""

from __future__ import annotations

from pathlib import Path

from flask import Flask, Response, current_app, jsonify, render_template, request
from flask.globals import request_ctx
from flask.json.provider import DefaultJSONProvider
from werkzeug.exceptions import HTTPException

from search.browse import Browser
from search.codec.store import DamagedIndexError, IndexMissingError
from search.searching import SearchIndex

# `img-src data:` is for the empty favicon (`<link rel="icon" href="data:,">`, which spares a
# request for /favicon.ico); no other data: or inline content is allowed.
CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'self'",
        "img-src 'self' data:",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    )
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",  # frame-ancestors for browsers that predate it
}


def create_app(index_root: str | Path) -> Flask:
    app = Flask(__name__)
    assert isinstance(app.json, DefaultJSONProvider)  # Flask's own, which has these settings
    app.json.ensure_ascii = False
    app.json.sort_keys = False
    app.extensions["midashi"] = Browser(SearchIndex(index_root))

    from . import api, exports, views

    app.register_blueprint(views.blueprint)
    app.register_blueprint(api.blueprint)
    app.register_blueprint(exports.blueprint)
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(IndexMissingError, _index_missing)
    app.register_error_handler(DamagedIndexError, _index_damaged)
    app.register_error_handler(Exception, _unexpected)
    app.after_request(_secured)  # Flask runs it for error pages and static files too
    return app


def _secured(response: Response) -> Response:
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    return response


def browser() -> Browser:
    """The app's `Browser` (and through `.index`, its `SearchIndex`)."""
    return current_app.extensions["midashi"]


def wants_json() -> bool:
    return request.path.startswith("/api/") or request.path == "/healthz"


def _http_error(error: HTTPException):
    if wants_json():
        return jsonify(error=error.description), error.code
    if request_ctx.url_adapter is None:  # a Host Werkzeug cannot read (localhost..): no page can link
        return Response(f"{error.code} {error.name}\n", status=error.code, mimetype="text/plain")
    return render_template("error.html", code=error.code, message=_PAGE_MESSAGES.get(error.code or 0)), error.code


def _index_missing(error: IndexMissingError):
    """No index built yet: say so (with the command to run) instead of failing."""
    if wants_json():
        return jsonify(error=str(error)), 503
    return render_template("error.html", code=503, message="索引がまだありません。", detail=str(error)), 503


def _index_damaged(error: DamagedIndexError):
    """A damaged index: which file, and the command that repairs it; 503 until a reindex does."""
    if wants_json():
        return jsonify(error=str(error)), 503
    return render_template("error.html", code=503, message="索引が壊れています。", detail=str(error)), 503


def _unexpected(error: Exception):
    """An error no view expected: the index's damage when it comes from a damaged file (pages that
    read the index directly), else a plain 500 page (the traceback goes to the log only)."""
    damage = browser().index.damage_behind(error)
    if damage is not None:
        return _index_damaged(damage)
    current_app.logger.error("unexpected error on %s", request.path, exc_info=error)
    if wants_json():
        return jsonify(error=_PAGE_MESSAGES[500]), 500
    return render_template("error.html", code=500, message=_PAGE_MESSAGES[500]), 500


_PAGE_MESSAGES = {
    400: "リクエストを読み取れませんでした。",
    404: "ページが見つかりません。",
    405: "この方法ではアクセスできません。",
    500: "サーバー内部でエラーが起きました。",
}
