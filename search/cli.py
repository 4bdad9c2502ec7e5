"""The `midashi` command: reindex, search, stats, serve, check.

Thin by design: every command calls one function of the engine and only formats what it returns.
Errors a user can cause (no index, a busy index, a damaged index, a bad query, a bad option) end in one line that
says what to do and a non-zero exit code, never a traceback. Each command imports the part of the
engine it uses: a reindex does not pay for the query side's imports (some 50 ms of every run).
"""

from __future__ import annotations

import json
import os
import signal
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

import click

from .codec.parallel import WorkerFailed
from .codec.store import (
    DamagedIndexError,
    IndexBusyError,
    IndexMissingError,
    IndexStore,
)
from .indexing import ReindexReport, ReindexStopped, StopRequest, reindex
from .sources.readers import estimate_articles

if TYPE_CHECKING:
    from collections.abc import Sequence

    from .browse import Alternative
    from .searching import Hit, Relaxation, SearchIndex, SearchResults
    from .snippets import Snippet

DEFAULT_INDEX = "index"
DEFAULT_CORPUS = "corpus"
EXIT_INTERRUPTED = 130
EXIT_INTERNAL = 70  # EX_SOFTWARE: a bug of ours, not the user's input
EXIT_TERMINATED = 128 + signal.SIGTERM  # what a shell reports for a process SIGTERM ended
SKIPPED_SHOWN = 20  # skipped files listed in the reindex summary; the count covers all
FALLBACK_SIZE = os.terminal_size((80, 24))  # the progress bar's terminal where it reports no size

index_option = click.option(
    "--index",
    "index_root",
    default=DEFAULT_INDEX,
    show_default=True,
    envvar="MIDASHI_INDEX",
    type=click.Path(file_okay=False, path_type=Path),
    help="Index folder (or set MIDASHI_INDEX).",
)


class UserError(click.ClickException):
    """An error the user can fix; shown as one line."""

    def show(self, file=None) -> None:
        click.echo(f"midashi: {self.format_message()}", err=True)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def cli() -> None:
    """Midashi: full-text search for Japanese news, section by section."""


# --- reindex ---------------------------------------------------------------------------------


@cli.command("reindex")
@click.option(
    "--corpus",
    "corpus_paths",
    multiple=True,
    type=click.Path(path_type=Path),
    help=f"Folder, file or tarball of articles; repeatable. [default: {DEFAULT_CORPUS}]",
)
@index_option
@click.option("--full", is_flag=True, help="Rebuild everything instead of only what changed.")
@click.option(
    "--workers",
    type=click.IntRange(min=0),
    default=None,
    help="Processes that analyse a big change. [default: one per core; 0 analyses in this process]",
)
def reindex_command(corpus_paths: tuple[Path, ...], index_root: Path, full: bool, workers: int | None) -> None:
    """Bring the index in line with the corpus (only added, changed and removed articles)."""
    paths = list(corpus_paths) or [Path(DEFAULT_CORPUS)]
    missing = [str(p) for p in paths if not p.exists()]
    if missing:
        raise UserError(f"corpus not found: {', '.join(missing)} (give --corpus PATH)")
    bar = _progress_bar(estimate_articles(paths)) if sys.stderr.isatty() else None  # quiet when piped
    stop = StopRequest()
    left = _what_stays(index_root)
    try:
        with _stopping_on_signals(stop, left):
            report = reindex(
                paths,
                index_root,
                full=full,
                progress=(lambda _: bar.update()) if bar else None,
                workers=workers,
                notify=lambda message: click.echo(f"midashi: {message}", err=True),
                writing=(lambda: _say_writing(bar)) if bar else None,
                stop=stop,
            )
    except IndexBusyError as error:
        raise UserError(str(error)) from None
    except WorkerFailed as error:
        raise UserError(f"reindex failed, {left}. {error}") from None
    except OSError as error:  # the corpus's read errors are reported per source: this is the index's
        raise UserError(f"reindex failed, {left}: {_os_reason(error, index_root)}") from None
    except (KeyboardInterrupt, ReindexStopped) as stopped:
        if isinstance(stopped, ReindexStopped) and stopped.signum == signal.SIGTERM:
            click.echo(f"midashi: reindex stopped (SIGTERM); {left}.", err=True)
            sys.exit(EXIT_TERMINATED)
        click.echo(f"\nmidashi: reindex interrupted; {left}.", err=True)
        sys.exit(EXIT_INTERRUPTED)
    finally:
        if bar is not None:
            bar.close()
    click.echo(format_report(report, index_root))
    if stop.signum is not None:
        name = signal.Signals(stop.signum).name
        click.echo(f"midashi: {name} came while the new index was being committed; it was finished first.", err=True)


def _what_stays(index_root: Path) -> str:
    """What a reindex that fails or stops leaves for searches, in words: the index there was."""
    try:
        live = IndexStore(index_root).current_name()
    except (DamagedIndexError, OSError):
        live = "?"  # something is there, unreadable: the next reindex rebuilds it
    return "the previous index is still in use" if live else "no index was written"


def _progress_bar(total: int):
    """A progress bar on stderr, a terminal. Its size where the terminal reports none (0 x 0: a
    serial console, some CI runners) is 80 x 24: tqdm draws nothing in a terminal of no width or
    height (it takes a bar on line 1 of 0 lines for one off the screen)."""
    from tqdm import tqdm

    try:
        size = os.get_terminal_size(sys.stderr.fileno())
    except (OSError, ValueError):
        size = os.terminal_size((0, 0))
    return tqdm(
        total=total,
        unit=" articles",
        file=sys.stderr,
        leave=False,
        ncols=size.columns or FALLBACK_SIZE.columns,
        nrows=size.lines or FALLBACK_SIZE.lines,
    )


def _say_writing(bar) -> None:
    """Every article is read: say what the last seconds are for instead of sitting at 100 %."""
    bar.set_description_str("writing the index…", refresh=False)
    bar.total = bar.n  # the estimate may have been off: what was read is all there is
    bar.refresh()


def _os_reason(error: OSError, path: Path) -> str:
    """An operating system error as a person reads it: what failed, on which file."""
    return f"cannot write {error.filename or path} ({error.strerror or error})"


STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


@contextmanager
def _stopping_on_signals(stop: StopRequest, left: str) -> Iterator[None]:
    """Turn Ctrl-C and SIGTERM into a request `reindex` honours at its next safe point, so the
    half-built generation is discarded and the workers are stopped (Python's default would end
    the process on the spot for SIGTERM, and raise wherever it is for Ctrl-C).

    A second one of either ends the process at once, whatever it is doing, until it exits: raised
    as a KeyboardInterrupt it landed in the cleanup itself, which then never stopped the workers,
    and the exit waited forever on their queue. What it leaves (a half-built generation, its pid
    in the lock) the next reindex clears, and says so. `left` says what stays for searches."""
    # A signal we were started ignoring (Ctrl-C, for a job a script put in the background) stays so.
    previous = {signum: signal.getsignal(signum) for signum in STOP_SIGNALS}
    previous = {signum: handler for signum, handler in previous.items() if handler is not signal.SIG_IGN}
    said = f"\nmidashi: reindex stopped at once; {left}.\n".encode()

    def at_once(signum: int, frame) -> None:
        os.write(2, said)
        os._exit(EXIT_INTERRUPTED)

    def ask(signum: int, frame) -> None:
        stop.ask(signum)
        for caught in previous:
            signal.signal(caught, at_once if caught == signal.SIGINT else signal.SIG_DFL)

    for signum in previous:
        signal.signal(signum, ask)
    try:
        yield
    finally:
        if stop.signum is None:  # (else the second one must still act at once, up to the exit)
            for signum, handler in previous.items():
                signal.signal(signum, handler)


def format_report(report: ReindexReport, index_root: Path) -> str:
    lines = []
    for label, counts in (
        ("added", report.added),
        ("updated", report.updated),
        ("removed", report.removed),
        ("unchanged", report.unchanged),
    ):
        lines.append(f"  {label:<9} {counts.articles:>8,} articles {counts.sections:>9,} sections")
    lines.append(f"  {'skipped':<9} {len(report.skipped):>8,} files/lines")
    for skipped in report.skipped[:SKIPPED_SHOWN]:
        lines.append(f"    {skipped.path}: {skipped.reason}")
    if len(report.skipped) > SKIPPED_SHOWN:
        lines.append(f"    … and {len(report.skipped) - SKIPPED_SHOWN:,} more")
    if report.changed:
        size = IndexStore(index_root).size_on_disk()
        head = f"Reindexed {index_root} ({report.generation}, {size / 1e6:.1f} MB on disk)"
    else:
        head = f"Nothing changed: {index_root} is up to date"
    lines.insert(0, f"{head} in {report.elapsed_seconds:.1f} s")
    if report.damage:
        lines.insert(0, f"The index was damaged ({report.damage}): rebuilt it in full from the corpus.")
    return "\n".join(lines)


# --- search ----------------------------------------------------------------------------------

FORMATS = ("text", "json", "csv", "jsonl")


class SearchCommand(click.Command):
    """`midashi search` reads a word that starts with `-` and then a character no option starts
    with (`-半導体`, `-"日本代表"`) as part of the query, a NOT word, rather than as an unknown
    option; `--` still ends the options (`midashi search -- -trump`)."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        return super().parse_args(ctx, _not_words_last(args, self._options_with_values()))

    def _options_with_values(self) -> set[str]:
        return {
            name
            for param in self.params
            if isinstance(param, click.Option) and not param.is_flag and not param.count
            for name in (*param.opts, *param.secondary_opts)
        }


def _not_words_last(args: list[str], options_with_values: set[str]) -> list[str]:
    """`args` with the query's words moved after a `--`, in their order, when one of them is a
    NOT word (`-半導体`), so that click takes it as a word rather than an unknown option. An
    option's value (`--source -x`) stays with its option; what follows a `--` is words already."""
    options: list[str] = []
    words: list[str] = []
    rest = list(args)
    while rest:
        arg = rest.pop(0)
        if arg == "--":
            words.extend(rest)
            break
        if _is_not_word(arg) or not arg.startswith("-") or arg == "-":
            words.append(arg)
            continue
        options.append(arg)
        if arg in options_with_values and rest:
            options.append(rest.pop(0))
    return [*options, "--", *words] if any(map(_is_not_word, words)) else args


def _is_not_word(arg: str) -> bool:
    """`-半導体`, `-"a b"`: a minus and then a character no option name has (ASCII letters,
    digits and `-` begin options: `-n`, `--json`)."""
    return len(arg) > 1 and arg[0] == "-" and not (arg[1].isascii() and (arg[1].isalnum() or arg[1] == "-"))


@cli.command("search", cls=SearchCommand)
@click.argument("query_words", nargs=-1)
@click.option(
    "-n", "--limit", default=None, type=click.IntRange(1, 1000), help="Hits to show. [default: 10; 100 with --run]"
)
@click.option(
    "--format",
    "output_format",
    type=click.Choice(FORMATS),
    default="text",
    show_default=True,
    help="text for people; json (with facets), csv (a row per hit) or jsonl (a hit per line) for machines.",
)
@click.option("--json", "as_json", is_flag=True, help="The same as --format json.")
@click.option("--category", default="", help="Only this category (as `midashi search --format json` lists them).")
@click.option("--source", default="", help="Only this source.")
@click.option("--from", "date_from", default="", metavar="DATE", help="From this day on: YYYY-MM-DD, YYYY-MM or YYYY.")
@click.option("--to", "date_to", default="", metavar="DATE", help="Up to this day: YYYY-MM-DD, YYYY-MM or YYYY.")
@click.option("--person", default="", help="Only sections naming this person (as the people facet lists them).")
@click.option("--place", default="", help="Only sections naming this place (as the places facet lists them).")
@click.option("--sort", default="relevance", show_default=True, metavar="ORDER", help="relevance, newest or oldest.")
@click.option(
    "--sections", "flat", is_flag=True, help="List matching sections one by one instead of each article once."
)
@click.option(
    "--queries", type=click.Path(exists=True, dir_okay=False, path_type=Path), help="Batch: a `qid<TAB>query` file."
)
@click.option(
    "--run", "run_path", type=click.Path(dir_okay=False, path_type=Path), help="Batch: write a TREC run here."
)
@click.option(
    "--time-budget",
    type=click.FloatRange(min=0),
    default=None,
    help="Seconds a search may rank before it is refused as too expensive. [default: 5]",
)
@index_option
def search_command(
    query_words: tuple[str, ...],
    limit: int | None,
    output_format: str,
    as_json: bool,
    category: str,
    source: str,
    date_from: str,
    date_to: str,
    person: str,
    place: str,
    sort: str,
    flat: bool,
    queries: Path | None,
    run_path: Path | None,
    time_budget: float | None,
    index_root: Path,
) -> None:
    """Search the index: `midashi search "輸出規制"`, or a batch with --queries/--run.

    Each article is listed once, at its best section, with its other matching sections under it
    (as the web page does); --sections lists the sections themselves. A batch run ranks sections.
    Words of the query may be given apart (`midashi search 半導体 -中国`); a word that starts
    with - and a Latin letter needs a -- before it (`midashi search -- -trump`)."""
    from .browse import Browser
    from .searching import DEFAULT_TIME_BUDGET, Filters, SearchIndex

    query = " ".join(query_words)
    index = SearchIndex(index_root, time_budget=DEFAULT_TIME_BUDGET if time_budget is None else time_budget)
    if queries or run_path:
        if not (queries and run_path) or query:
            raise UserError("batch search needs both --queries FILE.tsv and --run OUT.trec, and no QUERY")
        _run_batch(index, queries, run_path, limit or 100)
        return
    if not query.strip():
        raise UserError('give a query: midashi search "輸出規制"')
    if as_json:
        output_format = "json"
    filters = _guarded(lambda: Filters.parse(category, source, date_from, date_to, person, place))
    results = _guarded(
        lambda: index.search(
            query, limit=limit or 10, group=not flat, filters=filters, sort=sort, facets=output_format == "json"
        ),
        index,
    )
    alternatives = _guarded(lambda: Browser(index).alternatives(query, filters), index) if results.few else []
    if output_format == "json":
        click.echo(json.dumps(results.as_json(alternatives), ensure_ascii=False, indent=2))
    elif output_format == "jsonl":
        for hit in results.as_json()["hits"]:
            click.echo(json.dumps(hit, ensure_ascii=False))
    elif output_format == "csv":
        from .exports import results_csv

        click.echo(results_csv(results), nl=False)
    else:
        click.echo(format_results(results, alternatives))


def _guarded(action, index: SearchIndex | None = None):
    """`action()`, a user's error in it one line; a read error too, when `index`'s live generation
    is damaged behind it (`SearchIndex.read_errors_as_damage`)."""
    from .query.parse import QueryError

    try:
        if index is None:
            return action()
        with index.read_errors_as_damage():
            return action()
    except (QueryError, IndexMissingError, DamagedIndexError) as error:
        raise UserError(str(error)) from None


def relaxed_line(relaxed: Relaxation) -> str:
    """One line on why sections with only some of the query's words are listed."""
    words = " ".join(f"「{word}」" for word in relaxed.missing)
    if relaxed.strict_total:
        count = relaxed.strict_articles
        head = f"Only {count:,} article{'s have' if count > 1 else ' has'} every word"
    elif relaxed.absent:
        head = f"No article has {words}"
    elif relaxed.missing:
        head = f"No article has {words} together with the other words"
    else:
        head = "No article has every word"
    return f"{head}; {_sections(relaxed.partial)} with some of the words follow."


def _sections(count: int) -> str:
    return f"{count:,} section{'' if count == 1 else 's'}"


def _emphasised(snippet: Snippet) -> str:
    """Matches in bold yellow on a terminal; click strips the styling when piped."""
    return snippet.render(lambda text: click.style(text, fg="yellow", bold=True))


def _bold_title(snippet: Snippet) -> str:
    """A title in bold, its matches yellow as well: a mark ends its colour only (click's full
    reset after it would end the bold too, for the rest of the title)."""
    end_colour = click.style("", fg="reset", reset=False)
    marked = snippet.render(lambda text: click.style(text, fg="yellow", reset=False) + end_colour)
    return click.style(marked, bold=True)


def format_results(results: SearchResults, alternatives: Sequence[Alternative] = ()) -> str:
    mode = ", ranked by best match" if results.natural_language else ""
    found = _sections(results.total)
    if results.articles is not None:
        found = f"{results.articles:,} article{'' if results.articles == 1 else 's'} ({found})"
    lines = [f"{found} for 「{results.query}」 ({results.elapsed_ms:.0f} ms{mode})"]
    if results.relaxed and results.relaxed.partial:
        lines.append(relaxed_line(results.relaxed))
    spellings = [f"「{a.query}」 ({_sections(a.total)})" for a in alternatives if a.reason == "spelling"]
    if spellings:
        lines.append(f"Did you mean {' or '.join(spellings)}?")
    others = {group.best.section_id: group.others for group in results.groups}
    for hit in results.hits:
        lines.append("")
        lines.append(f"{hit.rank:>3}. {_bold_title(hit.title)}")
        where = ["§ " + _emphasised(hit.heading) if hit.heading.text() else ""]
        where += [
            hit.date.strftime("%Y-%m-%d") if hit.date else "",
            hit.source,
            hit.section_id,
            f"score {hit.score:.2f}",
        ]
        lines.append("     " + " · ".join(part for part in where if part))
        lines.append("     " + _emphasised(hit.snippet))
        if others.get(hit.section_id):
            lines.append("     also in " + ", ".join(_section_ref(other) for other in others[hit.section_id]))
    return "\n".join(lines)


def _section_ref(hit: Hit) -> str:
    """Where else an article matched, short: #3 (§ 見出し)."""
    heading = hit.heading.text()
    return f"#{hit.section_number}" + (f" (§ {_emphasised(hit.heading)})" if heading else "")


def _run_batch(index: SearchIndex, queries: Path, run_path: Path, limit: int) -> None:
    from .batch import BatchFormatError, read_queries, run_queries

    try:
        report = _guarded(lambda: run_queries(index, read_queries(queries), run_path, limit), index)
    except BatchFormatError as error:
        raise UserError(str(error)) from None
    except OSError as error:  # the queries file was read whole before: this is the run file
        raise UserError(_os_reason(error, run_path)) from None
    for qid, reason in report.unsearchable:
        click.echo(f"midashi: query {qid}: {reason}", err=True)
    click.echo(
        f"Wrote {run_path}: {report.queries:,} queries ({len(report.unsearchable):,} unsearchable)"
        f" in {report.elapsed_seconds:.1f} s"
    )


# --- stats, serve ----------------------------------------------------------------------------


@cli.command("stats")
@index_option
def stats_command(index_root: Path) -> None:
    """Articles, sections, terms, size on disk and the last reindex."""
    from .stats import index_stats

    stats = _guarded(lambda: index_stats(index_root))
    for label, value in stats.items():
        click.echo(f"{label:<14} {value}")


@cli.command("serve")
@index_option
@click.option(
    "--host", default="127.0.0.1", show_default=True, help="Address to bind (loopback unless told otherwise)."
)
@click.option("--port", default=8000, show_default=True, type=click.IntRange(1, 65535))
@click.option(
    "--memory-budget",
    "memory_budget_mb",
    default=512,
    show_default=True,
    type=click.IntRange(min=64),
    metavar="MB",
    help="Memory for the server in all: what the dictionary, the index and the threads leave goes to caches.",
)
def serve_command(index_root: Path, host: str, port: int, memory_budget_mb: int) -> None:
    """Serve the search page and JSON API on a production WSGI server."""
    from web.server import serve

    from .searching import SearchIndex

    _guarded(lambda: SearchIndex(index_root).open())
    serve(str(index_root), host=host, port=port, memory_budget_mb=memory_budget_mb)


def undecodable_argument(arguments: list[str]) -> str | None:
    """The first argument that is not UTF-8 text, as its bytes show it, or None. Python hands such
    bytes over as lone surrogates, which no query, path or message can carry."""
    for argument in arguments:
        if any("\ud800" <= ch <= "\udfff" for ch in argument):
            return repr(os.fsencode(argument))[1:]
    return None


@cli.command("check")
@index_option
def check_command(index_root: Path) -> None:
    """Read all of the index (checksums, segments, postings, stored sections) and report damage."""
    from .codec.check import check_index

    report = _guarded(lambda: check_index(index_root))
    for note in report.notes:
        click.echo(f"note: {note}")
    if report.damaged:
        for problem in report.problems:
            click.echo(f"damaged: {problem}")
        count = len(report.problems)
        raise UserError(f"{report.root}: {count:,} problem{'s' if count > 1 else ''} found; {report.repair}")
    click.echo(
        f"{report.root} ({report.generation}) is intact: {report.files:,} files ({report.bytes / 1e6:.1f} MB) match"
        f" their checksums; {report.segments:,} segment{'s' if report.segments != 1 else ''},"
        f" {report.terms:,} terms, {report.postings:,} postings,"
        f" {report.sections:,} sections of {report.articles:,} articles read in {report.elapsed_seconds:.1f} s"
    )


def main() -> None:
    """Entry point: usage errors become one line with a pointer to --help."""
    undecodable = undecodable_argument(sys.argv[1:])
    if undecodable is not None:
        click.echo(f"midashi: an argument is not UTF-8 text: {undecodable} (give queries and paths in UTF-8)", err=True)
        sys.exit(2)
    try:
        cli.main(standalone_mode=False)
    except click.exceptions.Abort as abort:
        if isinstance(abort.__context__, EOFError):  # click takes any EOFError for the user's Ctrl-D
            _internal_error(abort.__context__)
        click.echo("midashi: aborted", err=True)
        sys.exit(EXIT_INTERRUPTED)
    except click.UsageError as error:
        command = error.ctx.command_path if error.ctx else "midashi"
        click.echo(f"midashi: {error.format_message()} (see `{command} --help`)", err=True)
        sys.exit(error.exit_code)
    except click.ClickException as error:
        error.show()
        sys.exit(error.exit_code)
    except DamagedIndexError as error:  # any command that reads the index, not only those guarded
        click.echo(f"midashi: {error}", err=True)
        sys.exit(1)
    except click.exceptions.Exit as exit_:
        sys.exit(exit_.exit_code)
    except Exception as error:
        _internal_error(error)


def _internal_error(error: BaseException) -> NoReturn:
    """A bug of ours: one line for the person, the traceback on request."""
    if os.environ.get("MIDASHI_DEBUG"):
        raise error
    click.echo(
        f"midashi: internal error ({type(error).__name__})."
        " Please report it with the command you ran (MIDASHI_DEBUG=1 shows the details)",
        err=True,
    )
    sys.exit(EXIT_INTERNAL)
