"""The dashboard as one CSV file: every chart's numbers in one long, tidy table.

Columns: `section` (the chart: total, mttd, categories, stages, weakest_stage,
pareto_categories, pareto_components, releases, time_in_production, follow_through,
data_problems; and `query`, what was asked), `item` (the period, stage, category, component,
release or problem), `key` (its machine key: period start, stage id, category key, release
id, problem kind), `measure` (n, known, mean, median, p90, minimum, q1, q3, maximum, caught,
containment, count, cumulative_share, escapes, escape_rate, ...), `value` (a number:
durations in seconds, shares as 0–1 fractions; empty when unknown) and `text` (the same value
as the page shows it: "2 d 4 h", "66.7 %").

One long file rather than one per chart: a spreadsheet pivot or `pandas.read_csv` then
`query("section == 'mttd'")` gets any chart, and the file carries its query and freshness.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Iterator, Sequence
from datetime import timedelta
from typing import Any, Protocol

from insights.dashboard import Dashboard, Durations
from insights.metrics import DATA_PROBLEM_LABELS, NO_VALUE, format_duration, format_percent

HEADER = ("section", "item", "key", "measure", "value", "text")
# A cell starting with one of these is a formula to a spreadsheet; component names and
# release versions are typed by people, so they are quoted as text.
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")

CsvRow = tuple[str, str, str, str, str, str]


class Writable(Protocol):
    def write(self, content: str, /) -> Any: ...


def _cell(value: object) -> str:
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(FORMULA_START) else text


def _number(value: float | int | None) -> str:
    return "" if value is None else repr(value) if isinstance(value, float) else str(value)


def _seconds_text(value: float | None) -> str:
    return format_duration(None if value is None else timedelta(seconds=value))


def _row(section: str, item: object, key: object, measure: str, value: Any, text: str) -> CsvRow:
    number = value if isinstance(value, str) else _number(value)
    return (section, _cell(item), _cell(key), measure, number, _cell(text))


def _durations(section: str, item: str, key: str, d: Durations) -> Iterator[CsvRow]:
    yield _row(section, item, key, "n", d.n, str(d.n))
    yield _row(section, item, key, "known", d.known, f"deficit known for {d.known} of {d.n}")
    for measure in ("mean", "median", "p90"):
        seconds = getattr(d, measure)
        yield _row(section, item, key, measure, seconds, _seconds_text(seconds))


def _query_rows(board: Dashboard, notes: Sequence[str]) -> Iterator[CsvRow]:
    q = board.query
    at = board.computed_at.isoformat() if board.computed_at else ""
    for measure, value in (
        ("teams", " ".join(t.slug for t in q.teams)),
        ("start", q.start.isoformat()),
        ("end", q.end.isoformat()),
        ("period", q.period),
        ("component", q.component),
        ("severity", q.severity),
        ("release_id", "" if q.release_id is None else str(q.release_id)),
        ("computed_at", at),
        ("stale_teams", " ".join(board.stale_teams)),
    ):
        yield _row("query", "", "", measure, "", value)
    for note in notes:
        yield _row("query", "", "", "note", "", note)


def _stage_rows(board: Dashboard) -> Iterator[CsvRow]:
    for box in board.stages:
        key = "" if box.stage_id is None else box.stage_id
        yield _row("stages", box.name, key, "n", box.n, str(box.n))
        yield _row("stages", box.name, key, "known", box.known, str(box.known))
        for measure in ("minimum", "q1", "median", "q3", "maximum"):
            seconds = getattr(box, measure)
            yield _row("stages", box.name, key, measure, seconds, _seconds_text(seconds))
        caught = NO_VALUE if box.caught is None else str(box.caught)
        yield _row("stages", box.name, key, "caught", box.caught, caught)
        share = format_percent(box.containment)
        yield _row("stages", box.name, key, "containment", box.containment, share)
    if board.weakest_stage is not None:
        stage = board.weakest_stage
        key = "" if stage.stage_id is None else stage.stage_id
        yield _row("weakest_stage", stage.name, key, "reason", "", board.weakest_reason or "")


def _other_rows(board: Dashboard) -> Iterator[CsvRow]:
    for section, items in (
        ("pareto_categories", board.pareto_categories),
        ("pareto_components", board.pareto_components),
    ):
        for item in items:
            yield _row(section, item.label, item.key, "count", item.count, str(item.count))
            share = format_percent(item.cumulative_share)
            yield _row(
                section, item.label, item.key, "cumulative_share", item.cumulative_share, share
            )
    for bar in board.releases:
        version, key = bar.version, bar.release_id
        yield _row("releases", version, key, "team", "", bar.team_slug)
        yield _row("releases", version, key, "released_at", "", bar.released_at.isoformat())
        yield _row("releases", version, key, "escapes", bar.escapes, str(bar.escapes))
        caught = NO_VALUE if bar.caught is None else str(bar.caught)
        yield _row("releases", version, key, "caught", bar.caught, caught)
        rate = format_percent(bar.escape_rate)
        yield _row("releases", version, key, "escape_rate", bar.escape_rate, rate)
    yield from _durations("time_in_production", "", "", board.time_in_production)
    f = board.follow_through
    for measure in ("actions", "pushed", "done", "overdue"):
        value = getattr(f, measure)
        yield _row("follow_through", "", "", measure, value, str(value))
    days = f.median_days_to_done
    text = NO_VALUE if days is None else f"{days:.1f} d"
    yield _row("follow_through", "", "", "median_days_to_done", days, text)
    ids = " ".join(map(str, f.re_escape_ids))
    yield _row("follow_through", "", "", "re_escapes", f.re_escapes, ids)
    for kind, label in DATA_PROBLEM_LABELS.items():
        problem_ids = board.problems.get(kind, ())
        yield _row(
            "data_problems",
            label,
            kind,
            "escapes",
            board.problem_counts.get(kind, len(problem_ids)),
            " ".join(map(str, problem_ids)),  # the first 200
        )


def rows(board: Dashboard, *, notes: Sequence[str] = ()) -> Iterator[CsvRow]:
    """Every row of the file after the header, in the page's order."""
    yield from _query_rows(board, notes)
    yield from _durations("total", "", "", board.total)
    for point in board.periods:
        yield from _durations("mttd", point.label, point.start.isoformat(), point.deficit)
    for point in board.periods:
        for key, count in sorted(point.categories.items()):
            yield _row(
                "categories", point.label, key or "unclassified", "escapes", count, str(count)
            )
    yield from _stage_rows(board)
    yield from _other_rows(board)


def write(out: Writable, board: Dashboard, *, notes: Iterable[str] = ()) -> None:
    writer = csv.writer(out)
    writer.writerow(HEADER)
    writer.writerows(rows(board, notes=tuple(notes)))
