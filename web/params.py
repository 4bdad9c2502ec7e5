"""Reading a search request's query-string parameters, shared by the page and the JSON API."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from search.query.parse import QueryError
from search.searching import Filters, SearchIndex, SearchResults

DEFAULT_PER_PAGE = 10
MAX_PER_PAGE = 50
MAX_PAGE = 1000


@dataclass(frozen=True)
class SearchRequest:
    """What a search URL asks for; `page` and `per_page` count articles."""

    q: str
    page: int
    per_page: int
    sort: str
    filters: Filters

    @property
    def offset(self) -> int:
        return (self.page - 1) * self.per_page

    def run(self, index: SearchIndex) -> SearchResults:
        """The page of articles this request asks for, with its facets: what the page and the API
        both show."""
        return index.search(
            self.q, self.per_page, self.offset, filters=self.filters, sort=self.sort, facets=True, group=True
        )


def search_request(args: Mapping[str, str]) -> SearchRequest:
    """Parse and bound the parameters; QueryError says what is wrong with one (the sort order is
    checked by the search itself)."""
    return SearchRequest(
        q=args.get("q", ""),
        page=_bounded_int(args, "page", 1, 1, MAX_PAGE),
        per_page=_bounded_int(args, "per_page", DEFAULT_PER_PAGE, 1, MAX_PER_PAGE),
        sort=args.get("sort") or "relevance",
        filters=Filters.parse(
            *(args.get(name, "") for name in ("category", "source", "from", "to", "person", "place"))
        ),
    )


# What the search page calls each numeric parameter when it says what is wrong with one.
_JAPANESE_NAMES = {"page": "ページ番号", "per_page": "1 ページの件数"}


def _bounded_int(args: Mapping[str, str], name: str, default: int, low: int, high: int) -> int:
    raw = args.get(name) or ""
    if not raw:
        return default
    japanese = _JAPANESE_NAMES[name]
    try:
        value = int(raw)
    except ValueError:
        raise QueryError(
            f"{name} must be a whole number", f"{japanese}は整数で指定してください（「{raw[:40]}」は読めません）。"
        ) from None
    if not low <= value <= high:
        raise QueryError(f"{name} must be between {low} and {high}", f"{japanese}は {low} から {high} までです。")
    return value
