"""The OpenAPI 3.1 description of the JSON API, served at /api/openapi.json.

`tests/test_openapi.py` validates real responses against these schemas, so they cannot drift.
`SearchResults` is also what `midashi search --json` prints (both come from
`SearchResults.as_json`); the API's `SearchPage` adds the page it was asked for.
"""

from __future__ import annotations

_STRING = {"type": "string"}
_DATE = {"type": ["string", "null"], "format": "date-time"}


def _object(properties: dict, required: list[str] | None = None) -> dict:
    """A closed object schema: every listed property required unless `required` says otherwise."""
    return {
        "type": "object",
        "properties": properties,
        "required": list(properties) if required is None else required,
        "additionalProperties": False,
    }


def _ref(name: str) -> dict:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict, description: str) -> dict:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _query(name: str, description: str, schema: dict | None = None, required: bool = False) -> dict:
    return {"name": name, "in": "query", "required": required, "description": description, "schema": schema or _STRING}


_ERROR = _json(_ref("Error"), "The request cannot be answered; `error` says why.")
_FACET_LIST = {"type": "array", "items": _ref("FacetCount")}
_TIMELINE = {
    "type": "array",
    "items": _ref("MonthCount"),
    "description": "Matching articles per month over all the results (an article once, however many of its"
    " sections match), oldest first: every month from the first to the last that has some, those between"
    " without any as 0; undated articles are not counted. Empty when nothing is found.",
}

# A hit and a page of hits as `SearchResults.as_json` makes them, for the API and the CLI alike.
_SEARCH_HIT = {
    "section_id": _STRING,
    "article_id": _STRING,
    "section_number": {"type": "integer"},
    "title": _STRING,
    "title_html": _STRING,
    "heading": _STRING,
    "heading_html": _STRING,
    "snippet": _STRING,
    "snippet_html": {"type": "string", "description": "HTML-escaped text; matches in <mark>."},
    "date": _DATE,
    "source": _STRING,
    "category": _STRING,
    "url": _STRING,
    "score": {
        "type": "number",
        "description": "Relevance, higher first: the learned ranker's score on its own scale (it may be"
        " negative); 0 when sorted by date.",
    },
    "rank": {"type": "integer", "minimum": 1},
    "other_sections": {
        "type": "array",
        "items": _ref("OtherSection"),
        "description": "Grouped by article (always, in the API): the article's other matching sections.",
    },
}
_NAME_FACET_LIST = {
    **_FACET_LIST,
    "description": "The names Sudachi tags in the matching sections, those the most matching articles name"
    " first; `count` counts articles (each once per name). Empty for an index built before names were indexed.",
}
_FACETS = _object(
    {
        "category": _FACET_LIST,
        "source": _FACET_LIST,
        "year": _FACET_LIST,
        "month": _FACET_LIST,
        "people": _NAME_FACET_LIST,
        "places": _NAME_FACET_LIST,
    }
)
_SEARCH_RESULTS = {
    "query": {"type": "string", "description": "The query as normalised for searching."},
    "total": {"type": "integer", "minimum": 0, "description": "Matching sections."},
    "articles": {
        "type": ["integer", "null"],
        "minimum": 0,
        "description": "Matching articles; null when sections are listed one by one (`--sections`).",
    },
    "sort": {"enum": ["relevance", "newest", "oldest"]},
    "elapsed_ms": {"type": "number", "minimum": 0},
    "hits": {
        "type": "array",
        "items": _ref("SearchHit"),
        "description": "One per article (its best section), or one per section with `--sections`.",
    },
    "facets": {
        **_FACETS,
        "type": ["object", "null"],
        "description": "Counts over every matching section; null when not counted (the CLI).",
    },
    "timeline": {
        **_TIMELINE,
        "type": ["array", "null"],
        "description": f"{_TIMELINE['description']} Null when it is not counted (with the facets: the API"
        " and `midashi search --format json` always count it).",
    },
    "relaxed": {
        "type": ["object", "null"],
        "description": "Set when every word together found fewer than 3 articles: those come first,"
        " then `partial` sections that match only some of the words. With no section holding every"
        " word, `missing` names the words no section has (`absent` true) or none has together with"
        " the others (`absent` false).",
        "properties": {
            "missing": {"type": "array", "items": _STRING},
            "absent": {"type": "boolean"},
            "strict_total": {"type": "integer", "minimum": 0},
            "strict_articles": {"type": "integer", "minimum": 0},
            "partial": {"type": "integer", "minimum": 0},
        },
        "required": ["missing", "absent", "strict_total", "strict_articles", "partial"],
        "additionalProperties": False,
    },
    "alternatives": {
        "type": "array",
        "items": _ref("Alternative"),
        "description": "With no or few results: other queries that find something (did you mean).",
    },
}

SCHEMAS = {
    "Error": _object({"error": _STRING}),
    "FacetCount": _object({"value": _STRING, "count": {"type": "integer", "minimum": 0}}),
    "MonthCount": _object(
        {
            "month": {"type": "string", "description": "YYYY-MM."},
            "articles": {"type": "integer", "minimum": 0, "description": "Matching articles dated in the month."},
        }
    ),
    "OtherSection": _object(
        {
            "section_id": _STRING,
            "section_number": {"type": "integer"},
            "heading": _STRING,
        }
    ),
    "SearchHit": _object(_SEARCH_HIT, required=[name for name in _SEARCH_HIT if name != "other_sections"]),
    "ArticleHit": _object(_SEARCH_HIT),  # a SearchHit grouped by article: other_sections required
    "SearchResults": _object(_SEARCH_RESULTS),
    "SearchPage": _object(
        {
            **_SEARCH_RESULTS,
            "articles": {"type": "integer", "minimum": 0, "description": "Matching articles."},
            "hits": {
                "type": "array",
                "items": _ref("ArticleHit"),
                "description": "One per article (its best section).",
            },
            "facets": _FACETS,
            "timeline": _TIMELINE,
            "page": {"type": "integer", "minimum": 1},
            "per_page": {"type": "integer", "minimum": 1},
        }
    ),
    "Alternative": _object(
        {
            "query": _STRING,
            "total": {"type": "integer", "minimum": 1, "description": "Sections it finds."},
            "reason": {"enum": ["spelling", "drop-word", "no-filters"]},
        }
    ),
    "ArticleSection": _object(
        {
            "section_id": _STRING,
            "number": {"type": "integer"},
            "heading": _STRING,
            "text": _STRING,
            "html": {"type": "string", "description": "HTML-escaped paragraphs; matches in <mark>."},
            "matched": {"type": "boolean"},
        }
    ),
    "RelatedArticle": _object({"id": _STRING, "title": _STRING, "date": _DATE, "source": _STRING, "category": _STRING}),
    "Article": _object(
        {
            "id": _STRING,
            "title": _STRING,
            "date": _DATE,
            "source": _STRING,
            "category": _STRING,
            "url": _STRING,
            "sections": {"type": "array", "items": _ref("ArticleSection")},
            "related": {"type": "array", "items": _ref("RelatedArticle")},
        }
    ),
    "Suggestions": _object(
        {
            "queries": {"type": "array", "items": _STRING},
            "titles": {"type": "array", "items": _object({"id": _STRING, "title": _STRING})},
        }
    ),
    "Health": _object({"status": {"const": "ok"}, "generation": _STRING, "sections": {"type": "integer"}}),
}

OPENAPI = {
    "openapi": "3.1.0",
    "info": {
        "title": "Midashi",
        "version": "0.1.0",
        "description": "Full-text search over Japanese news, ranked by section and grouped by article.",
    },
    "paths": {
        "/api/search": {
            "get": {
                "summary": "Search articles",
                "parameters": [
                    _query("q", 'The query: words, "phrases", OR, -word, title:word.', required=True),
                    _query("page", "Page of articles, from 1.", {"type": "integer", "minimum": 1, "maximum": 1000}),
                    _query("per_page", "Articles per page.", {"type": "integer", "minimum": 1, "maximum": 50}),
                    _query("sort", "Order of articles.", {"enum": ["relevance", "newest", "oldest"]}),
                    _query("category", "Only this category."),
                    _query("source", "Only this source."),
                    _query("from", "Earliest date, YYYY-MM-DD (or YYYY-MM, YYYY)."),
                    _query("to", "Latest date, inclusive, YYYY-MM-DD (or YYYY-MM, YYYY)."),
                    _query("person", "Only sections naming this person (a value of the `people` facet)."),
                    _query("place", "Only sections naming this place (a value of the `places` facet)."),
                ],
                "responses": {
                    "200": _json(_ref("SearchPage"), "Ranked articles, facets and counts."),
                    "400": _ERROR,
                    "503": _ERROR,
                },
            }
        },
        "/api/articles/{id}": {
            "get": {
                "summary": "A whole article",
                "parameters": [
                    {
                        "name": "id",
                        "in": "path",
                        "required": True,
                        "schema": _STRING,
                        "description": "Article id; may contain `/` (e.g. topic-news/topic-news-5903225).",
                    },
                    _query("q", "A query whose terms are marked in the text."),
                ],
                "responses": {"200": _json(_ref("Article"), "The article."), "404": _ERROR, "503": _ERROR},
            }
        },
        "/api/suggest": {
            "get": {
                "summary": "Search-as-you-type suggestions",
                "parameters": [_query("q", "What has been typed so far.")],
                "responses": {
                    "200": _json(_ref("Suggestions"), "Completed queries and matching titles."),
                    "503": _ERROR,
                },
            }
        },
        "/healthz": {
            "get": {
                "summary": "Liveness and the live index generation",
                "responses": {"200": _json(_ref("Health"), "Serving."), "503": _ERROR},
            }
        },
    },
    "components": {"schemas": SCHEMAS},
}
