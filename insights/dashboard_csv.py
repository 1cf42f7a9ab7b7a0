"""The dashboard as one CSV file: every chart's numbers in one long, tidy table.

Columns: `section` (the chart: total, mttd, categories, stages, weakest_stage,
pareto_categories, pareto_components, releases, time_in_production, follow_through,
data_problems; and `query`, what was asked), `item` (the period, stage, category, component,
release or problem), `key` (its machine key: period start, stage id, category key, release
id, problem kind), `measure` (n, known, mean, median, p90, minimum, q1, q3, maximum, caught,
containment, caught_source, count, cumulative_share, escapes, escape_rate, detection_rate,
...), `value` (a number: durations in seconds, shares as 0–1 fractions; empty when unknown
or not a number) and `text` (the same value as the page shows it: "2 d 4 h", "66.7 %",
"measured and typed").

One long file rather than one per chart: a spreadsheet pivot or `pandas.read_csv` then
`query("section == 'mttd'")` gets any chart, and the file carries its query and freshness.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from datetime import timedelta
from typing import Any

from config import csv_safe
from insights.dashboard import CAUGHT_SOURCE_LABELS, Dashboard, Durations
from insights.freshness import Freshness
from insights.metrics import DATA_PROBLEM_LABELS, NO_VALUE, format_duration, format_percent

HEADER = ("section", "item", "key", "measure", "value", "text")
VALUE = HEADER.index("value")  # the one column of computed numbers, written as they are

# Component names and release versions are typed by people: config/csv_safe.py writes every
# other cell so that no spreadsheet reads it as a formula.
CsvRow = tuple[str, object, object, str, float | int | str | None, str]


def _seconds_text(value: float | None) -> str:
    return format_duration(None if value is None else timedelta(seconds=value))


def _source_text(source: str | None) -> str:
    """A caught count's source as the page says it: measured, typed, measured and typed."""
    return NO_VALUE if source is None else CAUGHT_SOURCE_LABELS[source]


def _row(section: str, item: object, key: object, measure: str, value: Any, text: str) -> CsvRow:
    return (section, item, key, measure, value, text)


def _durations(section: str, item: str, key: str, d: Durations) -> Iterator[CsvRow]:
    yield _row(section, item, key, "n", d.n, str(d.n))
    yield _row(section, item, key, "known", d.known, f"deficit known for {d.known} of {d.n}")
    for measure in ("mean", "median", "p90"):
        seconds = getattr(d, measure)
        yield _row(section, item, key, measure, seconds, _seconds_text(seconds))


def _query_rows(
    board: Dashboard, notes: Sequence[str], fresh: Freshness | None
) -> Iterator[CsvRow]:
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
    if fresh is not None:  # the page's freshness line (insights/freshness.py)
        newest = fresh.newest.isoformat() if fresh.newest else ""
        yield _row("query", "", "", "changes_up_to", "", newest)
        yield _row("query", "", "", "pending_teams", "", " ".join(t.slug for t in fresh.pending))
    for note in notes:
        yield _row("query", "", "", "note", "", note)


def _stage_rows(board: Dashboard) -> Iterator[CsvRow]:
    for box in board.stages:
        key = "" if box.stage_id is None else box.stage_id
        yield _row("stages", box.name, key, "n", box.n, str(box.n))
        yield _row("stages", box.name, key, "known", box.known, str(box.known))
        for measure in ("mean", "median", "p90", "minimum", "q1", "q3", "maximum"):
            seconds = getattr(box, measure)
            yield _row("stages", box.name, key, measure, seconds, _seconds_text(seconds))
        caught = NO_VALUE if box.caught is None else str(box.caught)
        yield _row("stages", box.name, key, "caught", box.caught, caught)
        share = format_percent(box.containment)
        yield _row("stages", box.name, key, "containment", box.containment, share)
        yield _row("stages", box.name, key, "caught_source", "", _source_text(box.caught_source))
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
    total = board.releases_total
    yield _row("releases", "", "", "releases_total", total, str(total))
    for bar in board.releases:
        version, key = bar.version, bar.release_id
        yield _row("releases", version, key, "team", "", bar.team_slug)
        yield _row("releases", version, key, "released_at", "", bar.released_at.isoformat())
        yield _row("releases", version, key, "escapes", bar.escapes, str(bar.escapes))
        caught = NO_VALUE if bar.caught is None else str(bar.caught)
        yield _row("releases", version, key, "caught", bar.caught, caught)
        source = _source_text(bar.caught_source)
        yield _row("releases", version, key, "caught_source", "", source)
        rate = format_percent(bar.escape_rate)
        yield _row("releases", version, key, "escape_rate", bar.escape_rate, rate)
        detection = format_percent(bar.detection_rate)
        yield _row("releases", version, key, "detection_rate", bar.detection_rate, detection)
    yield from _durations("time_in_production", "", "", board.time_in_production)
    f = board.follow_through
    for measure in ("actions", "pushed", "done", "overdue"):
        value = getattr(f, measure)
        yield _row("follow_through", "", "", measure, value, str(value))
    for measure in ("pushed", "done", "overdue"):
        part = f.share(getattr(f, measure))
        yield _row("follow_through", "", "", f"{measure}_share", part, format_percent(part))
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


def rows(
    board: Dashboard, *, notes: Sequence[str] = (), fresh: Freshness | None = None
) -> Iterator[CsvRow]:
    """Every row of the file after the header, in the page's order."""
    yield from _query_rows(board, notes, fresh)
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


def write(
    out: csv_safe.Writable,
    board: Dashboard,
    *,
    notes: Iterable[str] = (),
    fresh: Freshness | None = None,
) -> None:
    writer = csv_safe.writer(out)
    writer.writerow(HEADER)
    writer.writerows(rows(board, notes=tuple(notes), fresh=fresh), numbers=(VALUE,))
