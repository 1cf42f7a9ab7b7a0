"""What the dashboard page shows: a `Dashboard` as tables and chart data, rendered once per answer.

This module turns a `Dashboard` (insights/dashboard.py) into table rows (durations formatted
with insights.metrics) and chart data (seconds, for static/js/dashboard.js), and gives every
item the escape-register link of the escapes behind it. The tables carry those links, so the
page works without JavaScript. `numbers_html` renders the charts and tables and keeps the
fragment in this process under the key the answer was kept under (`Dashboard.cache_key`).
"""

from __future__ import annotations

import calendar
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any
from urllib.parse import urlencode

from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from django.utils.safestring import SafeString, mark_safe

from escapes.models import Category
from insights.dashboard import (
    CAUGHT_SOURCE_LABELS,
    Dashboard,
    DashboardQuery,
    Durations,
    ParetoItem,
    Period,
    StageBox,
)
from insights.metrics import (
    DATA_PROBLEM_LABELS,
    LOWEST_CONTAINMENT,
    NO_VALUE,
    format_duration,
    format_percent,
)
from teams.models import Team

# Each link to the register of escapes by id carries at most this many ids.
MAX_LINKED_IDS = 200
UNCLASSIFIED_LABEL = "Unclassified"
NONE_FILTER = "none"  # the register's value for "no category" / "no stage" / "no component"


# --- Links into the escape register -----------------------------------------------------


@dataclass(frozen=True)
class Link:
    team: Team | None  # None: the register of every team of the user
    url: str


def period_end(point_start: date, period: Period) -> date:
    if period == "week":
        return point_start + timedelta(days=6)
    return point_start.replace(day=calendar.monthrange(point_start.year, point_start.month)[1])


class Linker:
    """Register URLs of the escapes behind a number.

    One team's dashboard links into that team's register; the all-teams dashboard into the
    register of every team of the user (`all_escape_list`), one link per number, which reads
    each team's local dates in its own zone. The register's filters: category, stage, release,
    severity, component and detected_from / detected_to (inclusive local dates), problem (a
    data-problem kind), ids (comma-separated escape ids); "none" for no category, stage or
    component.
    """

    def __init__(self, query: DashboardQuery) -> None:
        self.query = query
        self.team = query.teams[0] if len(query.teams) == 1 else None
        if self.team is None:
            self.path = reverse("all_escape_list")
        else:
            self.path = reverse("escape_list", kwargs={"team": self.team.slug})

    def url(self, **params: Any) -> str:
        base = {"component": self.query.component, "severity": self.query.severity}
        if self.query.release_id is not None:
            base["release"] = str(self.query.release_id)
        merged = {**base, **{k: str(v) for k, v in params.items() if v is not None}}
        query = urlencode({k: v for k, v in merged.items() if v != ""})
        return self.path + (f"?{query}" if query else "")

    def links(
        self, start: date | None = None, end: date | None = None, **params: Any
    ) -> list[Link]:
        start = max(start or self.query.start, self.query.start)
        end = min(end or self.query.end, self.query.end)
        return [Link(self.team, self.url(detected_from=start, detected_to=end, **params))]

    def release_links(self, release_id: int) -> list[Link]:
        return [Link(self.team, self.url(release=release_id))]

    def id_links(self, ids: Sequence[int]) -> list[Link]:
        """The register of these escapes (the first MAX_LINKED_IDS)."""
        if not ids:
            return []
        return [Link(self.team, self.url(ids=",".join(map(str, ids[:MAX_LINKED_IDS]))))]


# --- What the template shows ------------------------------------------------------------


def seconds_display(value: float | None) -> str:
    return format_duration(None if value is None else timedelta(seconds=value))


@dataclass(frozen=True)
class DurationRow:
    label: str
    n: int
    known: int
    mean: str
    median: str
    p90: str
    links: list[Link] = field(default_factory=list)
    anchor: str = ""

    @classmethod
    def of(cls, label: str, d: Durations, links: list[Link], anchor: str = "") -> DurationRow:
        return cls(
            label,
            d.n,
            d.known,
            seconds_display(d.mean),
            seconds_display(d.median),
            seconds_display(d.p90),
            links,
            anchor,
        )


@dataclass(frozen=True)
class Row:
    """A table row: its label, its cells, the register links of its escapes."""

    label: str
    cells: list[Any]
    links: list[Link] = field(default_factory=list)
    anchor: str = ""


def category_label(key: str) -> str:
    if not key:
        return UNCLASSIFIED_LABEL
    return str(Category(key).label) if key in Category.values else key


def category_filter(key: str) -> str:
    return key or NONE_FILTER


def _href(links: list[Link], anchor: str) -> str:
    """Where a click on the chart goes: the register when one team, else the table row."""
    return links[0].url if len(links) == 1 else f"#{anchor}"


@dataclass
class Page:
    """Every table of the dashboard and the data of every chart (`charts`, for json_script)."""

    board: Dashboard
    mttd: list[DurationRow]
    category_keys: list[str]
    category_labels: list[str]
    category_rows: list[Row]
    stages: list[Row]
    stage_figures: list[DurationRow]
    pareto_categories: list[Row]
    pareto_components: list[Row]
    releases: list[Row]
    time_in_production: DurationRow
    total: DurationRow
    follow_through: list[Row]
    re_escape_links: list[Link]
    problems: list[Row]
    problem_total: int
    charts: dict[str, Any]


def _period_rows(
    board: Dashboard, linker: Linker
) -> tuple[list[DurationRow], list[str], list[Row]]:
    keys = [c.value for c in Category]
    extra = sorted({k for p in board.periods for k in p.categories if k not in keys and k})
    keys += [*extra, ""]
    mttd, by_category = [], []
    for i, point in enumerate(board.periods):
        end = period_end(point.start, board.query.period)
        mttd.append(
            DurationRow.of(point.label, point.deficit, linker.links(point.start, end), f"mttd-{i}")
        )
        cells = [
            (
                point.categories.get(key, 0),
                linker.links(point.start, end, category=category_filter(key)),
            )
            for key in keys
        ]
        by_category.append(Row(point.label, cells, linker.links(point.start, end), f"cat-{i}"))
    return mttd, keys, by_category


def source_label(source: str | None) -> str:
    """Where a caught count came from, as the page says it (docs/metrics.md)."""
    return NO_VALUE if source is None else CAUGHT_SOURCE_LABELS[source]


def _stage_rows(board: Dashboard, linker: Linker) -> list[Row]:
    rows = []
    for i, box in enumerate(board.stages):
        stage = NONE_FILTER if box.stage_id is None else box.stage_id
        cells = [
            box.n,
            box.known,
            *(seconds_display(v) for v in (box.mean, box.median, box.p90)),
            *(seconds_display(v) for v in (box.minimum, box.q1, box.q3, box.maximum)),
            NO_VALUE if box.caught is None else box.caught,
            format_percent(box.containment),
            source_label(box.caught_source),
        ]
        rows.append(Row(box.name, cells, linker.links(stage=stage), f"stage-{i}"))
    return rows


def _stage_figures(board: Dashboard) -> list[DurationRow]:
    """Each stage's mean, median and P90 with n: the figures shown beside the box plot."""
    return [
        DurationRow.of(
            box.name,
            Durations(n=box.n, known=box.known, mean=box.mean, median=box.median, p90=box.p90),
            [],
            f"stage-{i}",
        )
        for i, box in enumerate(board.stages)
    ]


def _pareto_rows(items: Sequence[ParetoItem], linker: Linker, kind: str) -> list[Row]:
    rows = []
    for i, item in enumerate(items):
        if kind == "category":
            links = linker.links(category=category_filter(item.key))
        else:
            links = linker.links(component=item.key or NONE_FILTER)
        label = item.label or ("No component" if kind == "component" else UNCLASSIFIED_LABEL)
        rows.append(
            Row(label, [item.count, format_percent(item.cumulative_share)], links, f"{kind}-{i}")
        )
    return rows


def _release_rows(board: Dashboard, linker: Linker) -> list[Row]:
    many = len(board.query.teams) > 1
    rows = []
    for i, bar in enumerate(board.releases):
        label = f"{bar.team_slug} · {bar.version}" if many else bar.version
        cells = [
            timezone.localtime(bar.released_at).strftime("%Y-%m-%d %H:%M"),
            bar.escapes,
            NO_VALUE if bar.caught is None else bar.caught,
            format_percent(bar.escape_rate),
            format_percent(bar.detection_rate),
            source_label(bar.caught_source),
        ]
        rows.append(Row(label, cells, linker.release_links(bar.release_id), f"release-{i}"))
    return rows


def _follow_rows(board: Dashboard) -> list[Row]:
    f = board.follow_through
    days = NO_VALUE if f.median_days_to_done is None else f"{f.median_days_to_done:.1f} d"
    return [
        Row("Preventative actions", [f.actions, ""]),
        Row("Pushed to a tracker", [f.pushed, format_percent(f.share(f.pushed))]),
        Row("Done", [f.done, format_percent(f.share(f.done))]),
        Row("Overdue (due date passed, not done)", [f.overdue, format_percent(f.share(f.overdue))]),
        Row("Median days from created to done", [days, ""]),
    ]


def _problem_rows(board: Dashboard, linker: Linker) -> list[Row]:
    rows = []
    for kind, label in DATA_PROBLEM_LABELS.items():
        ids = board.problems.get(kind, ())
        count = board.problem_counts.get(kind, len(ids))
        links = linker.links(problem=kind) if count else []
        rows.append(Row(label, [count, list(ids[:20])], links, f"problem-{kind}"))
    return rows


def _charts(board: Dashboard, page: Page) -> dict[str, Any]:
    def points(rows: Sequence[Row | DurationRow]) -> list[str]:
        return [_href(r.links, r.anchor) for r in rows]

    periods = board.periods
    return {
        "mttd": {
            "labels": [p.label for p in periods],
            "mean": [p.deficit.mean for p in periods],
            "median": [p.deficit.median for p in periods],
            "p90": [p.deficit.p90 for p in periods],
            "n": [p.deficit.n for p in periods],
            "known": [p.deficit.known for p in periods],
            "hrefs": points(page.mttd),
        },
        "stages": {
            "names": [s.name for s in board.stages],
            "boxes": [_box(s) for s in board.stages],
            "mean": [s.mean for s in board.stages],
            "p90": [s.p90 for s in board.stages],
            "n": [s.n for s in board.stages],
            "containment": [s.containment for s in board.stages],
            "weakest": _weakest_index(board),
            "hrefs": points(page.stages),
        },
        "categories": {
            "labels": [p.label for p in periods],
            "series": [
                {
                    "name": category_label(key),
                    "data": [row.cells[k][0] for row in page.category_rows],
                    "hrefs": [_href(row.cells[k][1], row.anchor) for row in page.category_rows],
                }
                for k, key in enumerate(page.category_keys)
            ],
        },
        "pareto_categories": _pareto_chart(board.pareto_categories, page.pareto_categories),
        "pareto_components": _pareto_chart(board.pareto_components, page.pareto_components),
        "releases": {
            "labels": [r.label for r in page.releases],
            "escapes": [b.escapes for b in board.releases],
            "rates": [b.escape_rate for b in board.releases],
            "detection": [b.detection_rate for b in board.releases],
            "hrefs": points(page.releases),
        },
    }


def _box(box: StageBox) -> list[float] | None:
    values = (box.minimum, box.q1, box.median, box.q3, box.maximum)
    return None if any(v is None for v in values) else [float(v) for v in values if v is not None]


def _weakest_index(board: Dashboard) -> int | None:
    if board.weakest_stage is None:
        return None
    for i, box in enumerate(board.stages):
        if box.stage_id == board.weakest_stage.stage_id and box.name == board.weakest_stage.name:
            return i
    return None


def _pareto_chart(items: Sequence[ParetoItem], rows: Sequence[Row]) -> dict[str, Any]:
    return {
        "labels": [r.label for r in rows],
        "counts": [i.count for i in items],
        "cumulative": [i.cumulative_share for i in items],
        "hrefs": [_href(r.links, r.anchor) for r in rows],
    }


def build_page(board: Dashboard) -> Page:
    linker = Linker(board.query)
    mttd, keys, by_category = _period_rows(board, linker)
    page = Page(
        board=board,
        mttd=mttd,
        category_keys=keys,
        category_labels=[category_label(k) for k in keys],
        category_rows=by_category,
        stages=_stage_rows(board, linker),
        stage_figures=_stage_figures(board),
        pareto_categories=_pareto_rows(board.pareto_categories, linker, "category"),
        pareto_components=_pareto_rows(board.pareto_components, linker, "component"),
        releases=_release_rows(board, linker),
        time_in_production=DurationRow.of(
            "Time in production", board.time_in_production, linker.links()
        ),
        total=DurationRow.of("Whole range", board.total, linker.links()),
        follow_through=_follow_rows(board),
        re_escape_links=linker.id_links(board.follow_through.re_escape_ids),
        problems=_problem_rows(board, linker),
        problem_total=sum(board.problem_counts.values()),  # the kinds never overlap
        charts={},
    )
    page.charts = _charts(board, page)
    return page


def weakest_text(board: Dashboard) -> str:
    stage = board.weakest_stage
    if stage is None:
        return ""
    if board.weakest_reason == LOWEST_CONTAINMENT:
        return (
            f"{stage.name}: lowest containment, {format_percent(stage.containment)} "
            f"({stage.caught} caught, {source_label(stage.caught_source)}, {stage.n} escaped)"
        )
    return f"{stage.name}: most escapes, {stage.n}, median deficit {seconds_display(stage.median)}"


# The rendered charts and tables of the answers insights.dashboard keeps, by the same key: a
# three-year weekly table is a thousand linked cells, and rendering them was most of a repeated
# view. The fragment holds nothing of the user (no CSRF token, no role).
FRAGMENTS_KEPT = 32
_fragments: OrderedDict[tuple[Any, ...], str] = OrderedDict()
_fragments_lock = threading.Lock()


def numbers_html(board: Dashboard, *, team: Team | None) -> SafeString:
    """The charts and tables of `board`, from the kept fragment when its answer was kept."""
    key = None if board.cache_key is None else (board.cache_key, team is None)
    html = None
    if key is not None:
        with _fragments_lock:
            html = _fragments.get(key)
            if html is not None:
                _fragments.move_to_end(key)
    if html is None:
        context: dict[str, Any] = {
            "team": team,
            "board": board,
            "query": board.query,
            "page": build_page(board),
            "weakest_text": weakest_text(board),
        }
        html = render_to_string("insights/dashboard.html#numbers", context)
        if key is not None:
            with _fragments_lock:
                _fragments[key] = html
                while len(_fragments) > FRAGMENTS_KEPT:
                    _fragments.popitem(last=False)
    return mark_safe(html)  # noqa: S308 - our own template's output


def dashboard_fragments_clear() -> None:
    """Forget the fragments kept by this process (tests)."""
    with _fragments_lock:
        _fragments.clear()
