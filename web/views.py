"""The HTML pages: the search page (results, facets, help) and the article page."""

from __future__ import annotations

import calendar
import dataclasses
import math
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from flask import Blueprint, abort, render_template, request, url_for

from search.browse import ArticleSection
from search.query.parse import QueryError, QueryTooExpensive
from search.searching import SORTS, ArticleGroup, Hit, MonthCount, Relaxation
from search.snippets import Snippet, lead

from . import browser
from .params import MAX_PAGE, search_request

blueprint = Blueprint("views", __name__)

SORT_LABELS = dict(zip(SORTS, ("関連度順", "新しい順", "古い順")))
# The livedoor news corpus's categories, as the sites call themselves.
CATEGORY_LABELS = {
    "dokujo-tsushin": "独女通信",
    "it-life-hack": "ITライフハック",
    "kaden-channel": "家電チャンネル",
    "livedoor-homme": "livedoor HOMME",
    "movie-enter": "MOVIE ENTER",
    "peachy": "Peachy",
    "smax": "エスマックス",
    "sports-watch": "Sports Watch",
    "topic-news": "トピックニュース",
}
_FILTER_ARGS = ("category", "source", "from", "to", "person", "place")
# An article of this many sections or more gets a table of contents.
TOC_MIN_SECTIONS = 6
# A section without a heading is named in the table of contents by its opening, this long at most.
SECTION_LEAD_CHARS = 28
# The timeline's bars are this many steps high at most (style.css has a class per step: the
# page's styles are its own files, and the Content-Security-Policy allows no inline style).
TIMELINE_LEVELS = 20
# A timeline of more months than this is drawn a bar per year: 48 bars still fit a phone (some
# 6 px each), and a year bar filters to its year, whose chart has its months.
TIMELINE_MAX_MONTHS = 48
# A chart by year writes at most this many years under its bars: the years stay apart on a phone.
TIMELINE_TICKS = 6


@blueprint.app_template_filter("ja_date")
def ja_date(when: datetime | None) -> str:
    return f"{when.year}年{when.month}月{when.day}日" if when else ""


@blueprint.app_template_filter("category_label")
def category_label(category: str) -> str:
    return CATEGORY_LABELS.get(category, category)


@blueprint.app_template_filter("web_url")
def web_url(url: str) -> str | None:
    """The URL if it is safe to link (http/https); a `javascript:` URL is shown as text instead."""
    return url if urlsplit(url).scheme in ("http", "https") else None


@blueprint.app_template_filter("relaxed_note")
def relaxed_note(relaxed: Relaxation) -> str:
    """What the page says above articles that match only some of the query's words."""
    quoted = "".join(f"「{word}」" for word in relaxed.missing)
    if relaxed.strict_total:
        return (
            f"すべての語を含む記事は {relaxed.strict_articles:,} 件です。続いて一部の語に一致する記事を表示しています。"
        )
    if relaxed.absent:
        return f"{quoted}を含む記事はありません — 一部の語に一致する記事"
    if relaxed.missing:
        return f"{quoted}をほかの語と一緒に含む記事はありません — 一部の語に一致する記事"
    return "すべての語を含む記事はありません — 一部の語に一致する記事"


@blueprint.app_template_filter("section_label")
def section_label(section: ArticleSection) -> str:
    """What the table of contents calls a section: its heading, else the opening of its text."""
    heading = section.heading.text()
    if heading:
        return heading
    text = "".join(paragraph.text() for paragraph in section.paragraphs)
    return lead(text, SECTION_LEAD_CHARS) or f"第{section.number}節"


@dataclass(frozen=True)
class TimelineBar:
    """One bar of the page's timeline (a month, or a year): its count, what it says to a screen
    reader and in a tooltip, the dates a click filters to, its height in steps, and the year
    written under it, if any (`tick_ends`: ending at the bar's right, near the chart's end)."""

    articles: int
    label: str
    first_day: str
    last_day: str
    level: int
    tick: str | None
    tick_ends: bool = False


@dataclass(frozen=True)
class TimelineChart:
    """The bars of the results' timeline, oldest first, a bar per month or (`by_year`) per year."""

    bars: list[TimelineBar]
    by_year: bool


@blueprint.app_template_global()
def timeline_chart(timeline: list[MonthCount] | None) -> TimelineChart | None:
    """The chart of the results' timeline: a bar per month, or per year when the months would be
    too many to tell apart on a phone (a year's bar filters to it, and the chart of that year
    has its months); None for fewer than two months (one bar compares nothing)."""
    if not timeline or len(timeline) < 2:
        return None
    by_year = len(timeline) > TIMELINE_MAX_MONTHS
    bars = _year_bars(timeline) if by_year else _month_bars(timeline)
    # A year written under one of the last bars would stick out of the chart (a phone's screen):
    # it ends at its bar's right instead.
    near_end = len(bars) - max(1, len(bars) // 8)
    bars = [
        dataclasses.replace(bar, tick_ends=True) if bar.tick and number >= near_end else bar
        for number, bar in enumerate(bars)
    ]
    return TimelineChart(bars, by_year)


def _month_bars(timeline: list[MonthCount]) -> list[TimelineBar]:
    """A bar per month; the year under each January, and under the first bar unless the first
    January is too near (an eighth of the chart, three bars at least: the years would touch)."""
    most = max(month.articles for month in timeline)
    apart = max(3, math.ceil(len(timeline) / 8))
    bars = []
    for number, month in enumerate(timeline):
        year, month_number = (int(part) for part in month.month.split("-"))
        last = calendar.monthrange(year, month_number)[1]
        labelled = month_number == 1 or (number == 0 and 13 - month_number >= apart)
        bars.append(
            TimelineBar(
                articles=month.articles,
                label=f"{year}年{month_number}月: {month.articles:,} 件",
                first_day=f"{month.month}-01",
                last_day=f"{month.month}-{last:02d}",
                level=_level(month.articles, most),
                tick=f"{year}年" if labelled else None,
            )
        )
    return bars


def _year_bars(timeline: list[MonthCount]) -> list[TimelineBar]:
    """A bar per year, the months' counts summed; a year under every few bars (at most
    TIMELINE_TICKS of them)."""
    years: dict[int, int] = {}
    for month in timeline:
        year = int(month.month.split("-")[0])
        years[year] = years.get(year, 0) + month.articles
    most = max(years.values())
    every = math.ceil(len(years) / TIMELINE_TICKS)
    return [
        TimelineBar(
            articles=count,
            label=f"{year}年: {count:,} 件",
            first_day=f"{year:04d}-01-01",
            last_day=f"{year:04d}-12-31",
            level=_level(count, most),
            tick=f"{year}年" if number % every == 0 else None,
        )
        for number, (year, count) in enumerate(years.items())
    ]


def _level(count: int, most: int) -> int:
    """A bar's height in steps: 0 for none, at least 1 for any."""
    return math.ceil(count / most * TIMELINE_LEVELS) if most else 0


@blueprint.app_template_global()
def url_with(**changes: str | int | None) -> str:
    """This search's URL with some parameters changed (None drops one); back to page 1 unless set."""
    # Any: query parameters, which url_for takes as **values beside its own typed _external etc.
    args: dict[str, Any] = {key: value for key, value in request.args.items() if value and key != "page"}
    args.update(changes)
    return url_for("views.search", **{key: value for key, value in args.items() if value})


@blueprint.app_template_global()
def article_url(article_id: str, section_number: int | None = None, q: str = "") -> str:
    anchor = f"s{section_number}" if section_number else None
    return url_for("views.article", article_id=article_id, q=q or None, _anchor=anchor)


@dataclass(frozen=True)
class OtherSection:
    """One line of a result's 「この記事の他の一致箇所」: the section, its heading unless the line
    before showed the same one, and a snippet of its text."""

    hit: Hit
    heading: Snippet | None
    snippet: Snippet | None


@blueprint.app_template_global()
def other_sections(group: ArticleGroup, snippets: dict[str, Snippet]) -> tuple[list[OtherSection], int]:
    """A result's other matching sections in article order, each heading shown once (a long
    section cut in parts repeats its heading), and how many are left out for having neither
    a new heading nor a snippet to show."""
    shown: list[OtherSection] = []
    left_out = 0
    previous = group.best.heading.text()
    for hit in sorted(group.others, key=lambda other: other.section_number):
        heading = hit.heading if hit.heading.text() and hit.heading.text() != previous else None
        previous = hit.heading.text() or previous
        snippet = snippets.get(hit.section_id)
        if heading is None and not (snippet and snippet.fragments):
            left_out += 1
            continue
        shown.append(OtherSection(hit, heading, snippet if snippet and snippet.fragments else None))
    return shown, left_out


@blueprint.get("/")
def search():
    q = request.args.get("q", "")
    context = {"q": q, "sort_labels": SORT_LABELS, "args": request.args}
    if not q.strip():
        return render_template("search.html", **context)
    try:
        wanted = search_request(request.args)
    except QueryError as error:  # a page number or a date, not the words: say so, in Japanese
        return render_template("search.html", error=error.japanese, error_in="conditions", **context), 400
    try:
        results = wanted.run(browser().index)
    except QueryError as error:  # the page is in Japanese, and so is what it says about the query
        return render_template("search.html", error=error.japanese, error_in="query", **context), query_error_status(
            error
        )
    pages = min(math.ceil((results.articles or 0) / wanted.per_page), MAX_PAGE)
    past_end = bool(pages) and wanted.page > pages  # a page past the last: link to the last, advise nothing
    alternatives = browser().alternatives(q, wanted.filters) if results.few and not past_end else []
    return render_template(
        "search.html",
        results=results,
        wanted=wanted,
        pages=pages,
        page_links=page_links(min(wanted.page, pages), pages),
        past_end=past_end,
        other_snippets=browser().other_snippets(results.groups, q),
        alternatives=alternatives,
        filtered=any(request.args.get(name) for name in _FILTER_ARGS),
        **context,
    )


def page_links(current: int, pages: int, around: int = 2) -> list[int | None]:
    """The page numbers the pager shows: the first, the last, and `around` either side of the
    current one; None where numbers are left out (1 2 3 4 5 … 17). Gaps of one page show the page."""
    shown = sorted({1, pages, *range(max(1, current - around), min(pages, current + around) + 1)} - {0})
    links: list[int | None] = []
    for number in shown:
        if links and number - links[-1] == 2:
            links.append(number - 1)
        elif links and number - links[-1] > 2:
            links.append(None)
        links.append(number)
    return links


def query_error_status(error: QueryError) -> int:
    """400 for a query that cannot be searched; 503 for one that would take too long, which is
    the server's limit, not a mistake in the query (the JSON API answers the same)."""
    return 503 if isinstance(error, QueryTooExpensive) else 400


@blueprint.get("/articles/<path:article_id>")
def article(article_id: str):
    q = request.args.get("q", "")
    view = browser().article(article_id, q)
    if view is None:
        abort(404)
    return render_template("article.html", article=view, q=q, toc_min_sections=TOC_MIN_SECTIONS)
