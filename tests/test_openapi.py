"""The OpenAPI description matches what the endpoints really return.

jsonschema is not a test dependency, so `check` validates the JSON Schema subset the description
uses (type, properties, required, additionalProperties, items, enum, const, minimum, maximum, $ref)
and fails on any keyword it does not know, so the description cannot outgrow the check.
"""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner
from web_corpus import HOSTILE_ID, build_web_index

from search.cli import cli
from web import create_app
from web.openapi import OPENAPI

_TYPES = {
    "object": dict,
    "array": list,
    "string": str,
    "boolean": bool,
    "integer": int,
    "number": (int, float),
    "null": type(None),
}
_ANNOTATIONS = {"description", "format"}


def check(value, schema: dict, path: str = "$") -> None:
    unknown = (
        set(schema)
        - _ANNOTATIONS
        - {
            "$ref",
            "type",
            "properties",
            "required",
            "additionalProperties",
            "items",
            "enum",
            "const",
            "minimum",
            "maximum",
        }
    )
    assert not unknown, f"{path}: the checker does not know {unknown}"
    if "$ref" in schema:
        name = schema["$ref"].removeprefix("#/components/schemas/")
        check(value, OPENAPI["components"]["schemas"][name], path)
        return
    if "type" in schema:
        types = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
        matches = [
            t
            for t in types
            if isinstance(value, _TYPES[t]) and not (isinstance(value, bool) and t in ("integer", "number"))
        ]
        assert matches, f"{path}: {value!r} is not {types}"
    if "enum" in schema:
        assert value in schema["enum"], f"{path}: {value!r} not in {schema['enum']}"
    if "const" in schema:
        assert value == schema["const"], f"{path}: {value!r} != {schema['const']!r}"
    number = isinstance(value, (int, float)) and not isinstance(value, bool)  # bounds apply to numbers only
    if "minimum" in schema and number:
        assert value >= schema["minimum"], f"{path}: {value} < {schema['minimum']}"
    if "maximum" in schema and number:
        assert value <= schema["maximum"], f"{path}: {value} > {schema['maximum']}"
    if isinstance(value, dict) and "properties" in schema:
        for name in schema.get("required", []):
            assert name in value, f"{path}: missing {name}"
        if schema.get("additionalProperties") is False:
            assert set(value) <= set(schema["properties"]), f"{path}: extra {set(value) - set(schema['properties'])}"
        for name, item in value.items():
            check(item, schema["properties"][name], f"{path}.{name}")
    if isinstance(value, list) and "items" in schema:
        for i, item in enumerate(value):
            check(item, schema["items"], f"{path}[{i}]")


@pytest.fixture(scope="module")
def web_index(tmp_path_factory):
    return build_web_index(tmp_path_factory.mktemp("openapi"))


@pytest.fixture(scope="module")
def client(web_index):
    return create_app(web_index).test_client()


CALLS = [
    ("/api/search", "/api/search?q=半導体 輸出&per_page=5", 200),
    ("/api/search", "/api/search?q=半導体&sort=newest&category=tech&from=2011&to=2012-06", 200),
    ("/api/search", "/api/search?q=存在しない語彙", 200),
    ("/api/search", "/api/search?q=サッカー&person=香川真司&place=ドルトムント", 200),
    ("/api/search", "/api/search?q=", 400),
    ("/api/articles/{id}", f"/api/articles/{HOSTILE_ID}?q=半導体", 200),
    ("/api/articles/{id}", "/api/articles/blockmedia-trump-nvidia-h200-china-export", 200),
    ("/api/articles/{id}", "/api/articles/../secret", 404),
    ("/api/suggest", "/api/suggest?q=半導", 200),
    ("/api/suggest", "/api/suggest?q=", 200),
    ("/healthz", "/healthz", 200),
]


@pytest.mark.parametrize("path, url, status", CALLS)
def test_responses_match_the_description(client, path, url, status):
    response = client.get(url)
    assert response.status_code == status
    described = OPENAPI["paths"][path]["get"]["responses"][str(status)]
    check(response.get_json(), described["content"]["application/json"]["schema"])


def test_every_described_path_is_exercised_and_served(client):
    assert {path for path, _, _ in CALLS} == set(OPENAPI["paths"])
    served = client.get("/api/openapi.json")
    assert served.status_code == 200 and served.get_json() == OPENAPI


@pytest.mark.parametrize("query", ["半導体 輸出", "存在しない語彙", "輸出規制 トランプ"])
def test_the_cli_prints_the_api_shape(client, web_index, query):
    """`midashi search --json` prints `SearchResults`, the API the same with its page: the same
    hits, counts, facets and relaxation for the same search."""
    index = str(web_index)
    grouped = _cli_json(query, "--index", index)
    flat = _cli_json(query, "--sections", "--index", index)
    api = client.get("/api/search", query_string={"q": query}).get_json()
    schemas = OPENAPI["components"]["schemas"]
    for printed in (grouped, flat):
        check(printed, schemas["SearchResults"])
    check(api, schemas["SearchPage"])
    assert set(api) - {"page", "per_page"} == set(grouped) == set(flat)
    assert flat["articles"] is None and api["facets"]["category"] is not None
    assert flat["facets"] == grouped["facets"]  # counted in articles either way
    assert flat["timeline"] == grouped["timeline"]  # and articles per month either way
    same = ("query", "total", "articles", "sort", "hits", "facets", "timeline", "relaxed", "alternatives")
    assert {key: grouped[key] for key in same} == {key: api[key] for key in same}
    assert all("other_sections" in hit for hit in grouped["hits"]) and not any(
        "other_sections" in hit for hit in flat["hits"]
    )
    assert flat["total"] == grouped["total"] and len(flat["hits"]) >= len(grouped["hits"])


def _cli_json(*arguments: str) -> dict:
    result = CliRunner().invoke(cli, ["search", *arguments, "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def test_the_checker_rejects_what_it_should():
    with pytest.raises(AssertionError):
        check({"error": 1}, {"$ref": "#/components/schemas/Error"})
    with pytest.raises(AssertionError):
        check({"error": "x", "more": 1}, {"$ref": "#/components/schemas/Error"})
    with pytest.raises(AssertionError):
        check({"queries": []}, {"$ref": "#/components/schemas/Suggestions"})
