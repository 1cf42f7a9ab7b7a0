"""The managers' dashboard: every chart's numbers, read from the rollups (insights/rollups.py).

This module is the contract between the numbers and the pages: `dashboard(query)` answers a
`Dashboard`, the views render it as charts and tables, the API and the CSV download serialise
it. Every number follows docs/metrics.md through insights/metrics.py's definitions (percentiles
interpolate linearly, exclusions are counted, periods are the team's local weeks or months,
empty periods are zeros).

Durations are seconds (float) so that charts, tables, JSON and CSV share one unit; the
`*_display` helpers of insights/metrics.py format them for people.
"""

from __future__ import annotations

import math
import threading
from collections import OrderedDict, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from itertools import accumulate
from typing import Any, Literal

import numpy as np
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone

from escapes.models import Category, Escape, PipelineStage, Release, Severity
from insights import metrics, release_rollups, rollup_blocks, rollup_layout, rollups
from teams.models import Team

Period = Literal["week", "month"]

MAX_LISTED = 200  # re-escape ids given with the count
MAX_RELEASES = 60  # release bars: the newest ones (fifty teams release thousands of times)


@dataclass(frozen=True)
class DashboardQuery:
    teams: tuple[Team, ...]  # one team, or every team the user may see
    start: date  # inclusive, local dates: each team's own time zone buckets its escapes
    end: date
    period: Period = "month"
    component: str = ""  # "" = every component
    severity: str = ""  # "" = every severity (escapes.models.Severity values)
    release_id: int | None = None


@dataclass(frozen=True)
class Durations:
    """mean / median / P90 of some durations, with n and how many were known at all."""

    n: int  # escapes counted
    known: int  # of them with a known, non-negative span ("deficit known for x of y")
    mean: float | None  # seconds; None when nothing is known
    median: float | None
    p90: float | None


@dataclass(frozen=True)
class PeriodPoint:
    """One week or month of the range; empty periods are present with n = 0."""

    start: date  # Monday of the ISO week, or the 1st of the month
    label: str  # "2026-W07", "2026-02"
    deficit: Durations  # Detection Deficit of the escapes detected in the period
    categories: dict[str, int]  # category key (escapes.models.Category, "" unclassified) -> n


@dataclass(frozen=True)
class StageBox:
    """Detection Deficit per pipeline stage as a box plot, with containment where known."""

    stage_id: int | None  # None: escapes not attributed to a stage
    name: str
    n: int
    known: int
    minimum: float | None  # seconds; whiskers are min and max
    q1: float | None
    median: float | None
    q3: float | None
    maximum: float | None
    caught: int | None  # defects the stage caught before release, where reported
    containment: float | None  # caught / (caught + escaped)


@dataclass(frozen=True)
class ParetoItem:
    key: str  # category key or component name ("" = none)
    label: str
    count: int
    cumulative_share: float  # 0..1, in descending order of count


@dataclass(frozen=True)
class ReleaseBar:
    release_id: int
    team_slug: str
    version: str
    released_at: datetime
    escapes: int
    caught: int | None  # defects caught before release, where reported
    escape_rate: float | None


@dataclass(frozen=True)
class FollowThrough:
    actions: int  # preventative actions of the teams' escapes in the range
    pushed: int
    done: int
    overdue: int  # due date passed, not done
    median_days_to_done: float | None  # created -> done
    # Escapes in the same component and category after a sealed one: how many, and the ids of
    # the first MAX_LISTED (the links of the page; on real data most escapes of a busy team
    # can be re-escapes, and listing them all cost more than every chart together).
    re_escape_ids: tuple[int, ...]
    re_escapes: int = 0


@dataclass(frozen=True)
class Dashboard:
    query: DashboardQuery
    total: Durations  # the whole range
    periods: tuple[PeriodPoint, ...]
    stages: tuple[StageBox, ...]
    weakest_stage: StageBox | None
    weakest_reason: str | None  # "lowest containment" / "most escapes"
    pareto_categories: tuple[ParetoItem, ...]
    pareto_components: tuple[ParetoItem, ...]
    releases: tuple[ReleaseBar, ...]
    time_in_production: Durations
    follow_through: FollowThrough
    # Data-problem kind (metrics.DATA_PROBLEM_LABELS) -> the first MAX_LISTED ids, and the counts.
    problems: dict[str, tuple[int, ...]]
    computed_at: datetime | None  # the oldest rollup read: how fresh the numbers are
    stale_teams: tuple[str, ...] = field(default=())  # slugs whose rollups are missing/pending
    releases_total: int = 0  # releases in the range; `releases` holds the newest MAX_RELEASES
    problem_counts: dict[str, int] = field(default_factory=dict)
    # What the answer was kept under (dashboard()): renderings of it may be kept by it too.
    cache_key: tuple[Any, ...] | None = field(default=None, compare=False, repr=False)


# --- Computing the dashboard from the rollups ---------------------------------------------

MAX_PERIODS = 1000  # 19 years of weeks; a longer series is no chart anyone reads
_QUARTILES = (0.0, 0.25, 0.5, 0.75, 1.0)
_NO_COMPONENT = "(no component)"


def _quantiles(values: np.ndarray, fractions: Sequence[float]) -> list[float]:
    """metrics.percentile_cont of unsorted values, for several fractions at one partition."""
    n = len(values)
    positions = [f * (n - 1) for f in fractions]
    lowers = [math.floor(p) for p in positions]
    kth = sorted({min(k, n - 1) for low in lowers for k in (low, low + 1)})
    part = np.partition(values, kth)
    result = []
    for pos, low in zip(positions, lowers, strict=True):
        if low >= n - 1:
            result.append(float(part[n - 1]))
        else:
            a, b = float(part[low]), float(part[low + 1])
            result.append(a + (b - a) * (pos - low))
    return result


def _durations(known: np.ndarray, n: int) -> Durations:
    """`known`: the non-negative spans (no NaN) of `n` escapes."""
    if not len(known):
        return Durations(n=n, known=0, mean=None, median=None, p90=None)
    median, p90 = _quantiles(known, (0.5, 0.9))
    return Durations(n=n, known=len(known), mean=float(known.mean()), median=median, p90=p90)


def _grouped(keys: np.ndarray, count: int, values: np.ndarray) -> list[np.ndarray]:
    """values split by key 0..count-1 (a stable radix sort for small keys)."""
    small = keys.astype(np.int16) if count < 2**15 else keys.astype(np.int32)
    ordered = values[np.argsort(small, kind="stable")]
    ends = list(accumulate(np.bincount(small, minlength=count).tolist()))
    return [ordered[start:end] for start, end in zip([0, *ends[:-1]], ends, strict=True)]


# --- Periods ----------------------------------------------------------------------------


def _month_index(day: date) -> int:
    return day.year * 12 + day.month - 1


def _period_starts(query: DashboardQuery) -> list[date]:
    if query.period == "week":
        first = query.start - timedelta(days=query.start.weekday())
        count = (query.end.toordinal() - first.toordinal()) // 7 + 1
        if count > MAX_PERIODS:
            raise ValueError(f"That range has {count} weeks; choose months or a shorter range.")
        return [first + timedelta(weeks=i) for i in range(count)]
    first_index = _month_index(query.start)
    count = _month_index(query.end) - first_index + 1
    if count > MAX_PERIODS:
        raise ValueError(f"That range has {count} months; choose a shorter range.")
    return [date((first_index + i) // 12, (first_index + i) % 12 + 1, 1) for i in range(count)]


def _label(start: date, period: str) -> str:
    if period == "week":
        year, week, _ = start.isocalendar()
        return f"{year}-W{week:02d}"
    return f"{start:%Y-%m}"


# --- Selecting each team's escapes -------------------------------------------------------


@dataclass
class _Selected:
    """The range's escapes (filters applied) of one team or all, as parallel arrays."""

    ids: np.ndarray  # every selected row, data problems included
    flags: np.ndarray
    valid: np.ndarray  # of the selected rows: not detected before its release
    deficit: np.ndarray  # the rest: valid rows only
    tip: np.ndarray
    period: np.ndarray
    stage: np.ndarray  # index into the stage list; len(stages) = unattributed
    category: np.ndarray
    component: np.ndarray  # index into the shared component names
    re_escape: np.ndarray
    # The preventative actions of the valid rows.
    to_done: np.ndarray  # seconds from created to done; NaN while not done
    pushed: np.ndarray
    done: np.ndarray
    overdue: np.ndarray


def _filter_mask(
    block: rollup_blocks.TeamBlock, query: DashboardQuery, cols: dict
) -> np.ndarray | None:
    """Rows of `cols` matching component, severity and release; None: no filter."""
    mask: np.ndarray | None = None

    def both(m: np.ndarray) -> np.ndarray:
        return m if mask is None else mask & m

    if query.component:
        try:
            code = block.components.index(query.component)
        except ValueError:
            return np.zeros(len(cols["id"]), dtype=bool)
        mask = both(cols["component"] == code)
    if query.severity:
        mask = both(cols["severity"] == rollup_layout.SEVERITY_KEYS.index(query.severity))
    if query.release_id is not None:
        if query.release_id not in block.releases:
            return np.zeros(len(cols["id"]), dtype=bool)
        mask = both(cols["release"] == block.releases.index(query.release_id))
    return mask


def _select_team(
    block: rollup_blocks.TeamBlock,
    query: DashboardQuery,
    stage_codes: tuple[np.ndarray, np.ndarray, int],
    component_names: dict[str, int],
    today: int,
) -> _Selected:
    """`today`: the team's local date, as an ordinal (for overdue actions)."""
    ordinal = block.cols["ordinal"]
    lo, hi = query.start.toordinal(), query.end.toordinal()
    window: slice | np.ndarray
    if block.ordered:
        # Rows are in detection order, so the local dates of the range are one slice.
        lower, upper = np.searchsorted(ordinal, lo, "left"), np.searchsorted(ordinal, hi, "right")
        window = slice(int(lower), int(upper))
    else:
        window = (ordinal >= lo) & (ordinal <= hi)
    period_column = "ordinal" if query.period == "week" else "month"
    needed = (
        "id", "flags", "deficit", "tip", period_column, "stage", "category", "component",
        "re_escape", "severity", "release",
    )  # fmt: skip
    cols = {name: block.cols[name][window] for name in needed}
    rows = np.arange(block.size)[window]
    mask = _filter_mask(block, query, cols)
    if mask is not None:
        cols = {name: array[mask] for name, array in cols.items()}
        rows = rows[mask]
    valid = cols["flags"] & rollup_layout.BEFORE_RELEASE == 0
    ok = {name: cols[name][valid] for name in needed[2:9]}
    chosen = np.zeros(block.size, dtype=bool)
    chosen[rows[valid]] = True
    acts = block.actions
    of_chosen = chosen[acts["escape"]]
    done = acts["done"][of_chosen]
    due = acts["due"][of_chosen]
    if query.period == "week":
        first_monday = query.start.toordinal() - query.start.weekday()
        period = (ok["ordinal"] - first_monday) // 7
    else:
        period = ok["month"] - _month_index(query.start)
    stage_ids, stage_index, unattributed = stage_codes
    at = np.searchsorted(stage_ids, ok["stage"]).clip(0, max(len(stage_ids) - 1, 0))
    known_stage = stage_ids[at] == ok["stage"] if len(stage_ids) else np.zeros(len(at), dtype=bool)
    stage = np.where(known_stage, stage_index[at] if len(stage_ids) else 0, unattributed)
    to_shared = np.array(
        [component_names.setdefault(n, len(component_names)) for n in block.components] or [0],
        dtype=np.int64,
    )
    return _Selected(
        ids=cols["id"],
        flags=cols["flags"],
        valid=valid,
        deficit=ok["deficit"],
        tip=ok["tip"],
        period=period,
        stage=stage,
        category=ok["category"],
        component=to_shared[ok["component"]],
        re_escape=ok["re_escape"],
        to_done=acts["to_done"][of_chosen],
        pushed=acts["pushed"][of_chosen],
        done=done,
        overdue=~done & (due != 0) & (due < today),
    )


def _concat(parts: list[_Selected]) -> _Selected:
    if len(parts) == 1:
        return parts[0]
    names = _Selected.__dataclass_fields__
    if not parts:
        floats = {"deficit", "tip", "to_done"}
        flags = {"valid", "re_escape", "pushed", "done", "overdue"}
        return _Selected(
            **{
                n: np.empty(0, dtype=float if n in floats else bool if n in flags else np.int64)
                for n in names
            }
        )
    return _Selected(**{n: np.concatenate([getattr(p, n) for p in parts]) for n in names})


# --- The database's small tables ---------------------------------------------------------


def _windows(query: DashboardQuery) -> dict[int, tuple[datetime, datetime]]:
    """Each team's range in UTC: local midnight of start to local midnight after end."""
    result = {}
    for team in query.teams:
        date_range = metrics.DateRange(query.start, query.end, team.tzinfo)
        result[team.pk] = (date_range.start_utc, date_range.end_utc)
    return result


def _stages(query: DashboardQuery) -> list[tuple[int, str]]:
    order = {team.pk: i for i, team in enumerate(query.teams)}
    slugs = {team.pk: team.slug for team in query.teams}
    rows = sorted(
        PipelineStage.objects.filter(team_id__in=order).values_list(
            "id", "team_id", "name", "position"
        ),
        key=lambda r: (order[r[1]], r[3], r[0]),
    )
    several = len(query.teams) > 1
    return [(sid, f"{slugs[tid]} · {name}" if several else name) for sid, tid, name, _ in rows]


def _follow_through(sel: _Selected) -> FollowThrough:
    to_done = sel.to_done[~np.isnan(sel.to_done)] / 86400
    return FollowThrough(
        actions=len(sel.done),
        pushed=int(sel.pushed.sum()),
        done=int(sel.done.sum()),
        overdue=int(sel.overdue.sum()),
        median_days_to_done=_quantiles(to_done, (0.5,))[0] if len(to_done) else None,
        re_escape_ids=tuple(_smallest(sel.ids[sel.valid][sel.re_escape], MAX_LISTED)),
        re_escapes=int(sel.re_escape.sum()),
    )


def _smallest(ids: np.ndarray, k: int) -> list[int]:
    """The k smallest ids, ascending, without sorting them all."""
    if len(ids) > k:
        ids = np.partition(ids, k - 1)[:k]
    return [int(i) for i in np.sort(ids)]


# --- The dashboard ----------------------------------------------------------------------


def _check(query: DashboardQuery) -> None:
    if query.start > query.end:
        raise ValueError(f"The range starts ({query.start}) after it ends ({query.end}).")
    if query.period not in ("week", "month"):
        raise ValueError(f"Unknown period {query.period!r}; choose week or month.")
    if query.severity and query.severity not in Severity.values:
        raise ValueError(f"Unknown severity; choose one of {', '.join(Severity.values)}.")


def _stale(
    query: DashboardQuery,
    blocks: dict[int, rollup_blocks.TeamBlock],
    release_blocks: dict[int, release_rollups.ReleaseBlock],
) -> list[Team]:
    """Teams whose rollups are missing (though they have escapes or releases) or of another
    time zone."""
    stale = [t for t in query.teams if t.pk in blocks and blocks[t.pk].timezone != t.timezone]
    no_escape_rollup = [t.pk for t in query.teams if t.pk not in blocks]
    no_release_rollup = [t.pk for t in query.teams if t.pk not in release_blocks]
    if no_escape_rollup or no_release_rollup:
        lacking = Team.objects.filter(
            Q(pk__in=no_escape_rollup) & Exists(Escape.objects.filter(team_id=OuterRef("pk")))
            | Q(pk__in=no_release_rollup) & Exists(Release.objects.filter(team_id=OuterRef("pk")))
        )
        found = set(lacking.values_list("pk", flat=True))
        stale += [t for t in query.teams if t.pk in found and t not in stale]
    return stale


def _stage_boxes(
    sel: _Selected, stages: list[tuple[int, str]], caught: dict[int, int] | None
) -> list[StageBox]:
    count = len(stages) + 1
    escaped = np.bincount(sel.stage, minlength=count)
    known = ~np.isnan(sel.deficit)
    groups = _grouped(sel.stage[known], count, sel.deficit[known])
    boxes = []
    for i, (stage_id, name) in enumerate([*stages, (None, metrics.UNATTRIBUTED)]):
        values = groups[i]
        q = _quantiles(values, _QUARTILES) if len(values) else [None] * 5
        stage_caught = caught.get(stage_id) if caught is not None and stage_id else None
        boxes.append(
            StageBox(
                stage_id=stage_id,
                name=name,
                n=int(escaped[i]),
                known=len(values),
                minimum=q[0],
                q1=q[1],
                median=q[2],
                q3=q[3],
                maximum=q[4],
                caught=stage_caught,
                containment=(
                    None
                    if stage_caught is None
                    else metrics.containment(stage_caught, int(escaped[i]))
                ),
            )
        )
    return boxes


def _weakest(boxes: list[StageBox]) -> tuple[StageBox | None, str | None]:
    """metrics.weakest_stage's choice, made on the boxes."""
    stats = [
        metrics.StageStat(
            stage_id=b.stage_id,
            name=b.name,
            escaped=b.n,
            caught=b.caught,
            containment=b.containment,
            median_deficit=None if b.median is None else timedelta(seconds=b.median),
        )
        for b in boxes
    ]
    pick, reason = metrics.weakest_stage(stats)
    if pick is None:
        return None, None
    return next(b for b in boxes if b.stage_id == pick.stage_id), reason


def _pareto(counts: Sequence[tuple[str, str, int]]) -> tuple[ParetoItem, ...]:
    """(key, label, count) with count > 0, largest first, with the cumulative share."""
    ordered = sorted((c for c in counts if c[2] > 0), key=lambda c: -c[2])
    total = sum(c[2] for c in ordered)
    items, running = [], 0
    for key, label, count in ordered:
        running += count
        items.append(ParetoItem(key, label, count, running / total))
    return tuple(items)


def _periods(sel: _Selected, starts: list[date], period: str) -> tuple[PeriodPoint, ...]:
    count = len(starts)
    n = np.bincount(sel.period, minlength=count)
    known = ~np.isnan(sel.deficit)
    groups = _grouped(sel.period[known], count, sel.deficit[known])
    cats = len(rollup_layout.CATEGORY_KEYS)
    by_category = np.bincount(sel.period * cats + sel.category, minlength=count * cats).reshape(
        count, cats
    )
    return tuple(
        PeriodPoint(
            start=start,
            label=_label(start, period),
            deficit=_durations(groups[i], int(n[i])),
            categories={
                key: int(by_category[i, k]) for k, key in enumerate(rollup_layout.CATEGORY_KEYS)
            },
        )
        for i, start in enumerate(starts)
    )


@dataclass
class _ReleaseRange:
    """The releases of the range (and of the release filter) from the release rollups."""

    parts: list[tuple[release_rollups.ReleaseBlock, np.ndarray]]  # positions in each block
    with_catches: bool  # caught counts apply (no component or severity filter)

    @classmethod
    def of(
        cls,
        query: DashboardQuery,
        windows: dict[int, tuple[datetime, datetime]],
        blocks: dict[int, release_rollups.ReleaseBlock],
    ) -> _ReleaseRange:
        parts = []
        for team in query.teams:
            block = blocks.get(team.pk)
            if block is None:
                continue
            window = block.window(*windows[team.pk])
            positions = np.arange(window.start, window.stop)
            if query.release_id is not None:
                positions = positions[block.ids[positions] == query.release_id]
            parts.append((block, positions))
        return cls(parts, with_catches=not (query.component or query.severity))

    @property
    def total(self) -> int:
        return sum(len(positions) for _, positions in self.parts)

    def caught_by_stage(self) -> dict[int, int] | None:
        if not self.with_catches:
            return None
        caught: dict[int, int] = defaultdict(int)
        for block, positions in self.parts:
            mask = np.isin(block.catch_release, positions)
            for stage_id, n in zip(
                block.catch_stage[mask].tolist(), block.catch_caught[mask].tolist(), strict=True
            ):
                caught[stage_id] += n
        return caught


def _releases(
    query: DashboardQuery,
    blocks: dict[int, rollup_blocks.TeamBlock],
    in_range: _ReleaseRange,
) -> tuple[ReleaseBar, ...]:
    slugs = {team.pk: team.slug for team in query.teams}
    counts: dict[int | None, int] = {}  # release ids are unique across teams
    for block in blocks.values():
        per_code = block.release_counts
        if query.component or query.severity:
            # Every escape of the release counts, whenever detected (metrics' choice).
            plain = DashboardQuery(
                teams=query.teams,
                start=query.start,
                end=query.end,
                component=query.component,
                severity=query.severity,
            )
            mask = _filter_mask(block, plain, block.cols)
            mask = (block.cols["flags"] & rollup_layout.BEFORE_RELEASE == 0) & mask
            per_code = np.bincount(block.cols["release"][mask], minlength=len(block.releases))
        counts.update(zip(block.releases, per_code.tolist(), strict=True))
    bars = []
    for release in release_rollups.newest(in_range.parts, MAX_RELEASES):
        escaped = counts.get(release.id, 0)
        bar_caught = None
        if in_range.with_catches:
            mine = release.block.catch_release == release.position
            if mine.any():
                bar_caught = int(release.block.catch_caught[mine].sum())
        bars.append(
            ReleaseBar(
                release_id=release.id,
                team_slug=slugs[release.team_id],
                version=release.version,
                released_at=release.released_at,
                escapes=escaped,
                caught=bar_caught,
                escape_rate=None
                if bar_caught is None
                else metrics.escape_rate(escaped, bar_caught),
            )
        )
    return tuple(bars)


@dataclass(frozen=True)
class Snapshot:
    """The rollups of some teams as read once: a request's form and numbers share them."""

    blocks: dict[int, rollup_blocks.TeamBlock]
    releases: dict[int, release_rollups.ReleaseBlock]

    @classmethod
    def read(cls, teams: Sequence[Team]) -> Snapshot:
        team_ids = [t.pk for t in teams]
        return cls(rollup_blocks.team_blocks(team_ids), release_rollups.release_blocks(team_ids))


def dashboard(query: DashboardQuery, snapshot: Snapshot | None = None) -> Dashboard:
    """Every chart's numbers for the query, from the rollups; a fixed number of queries.

    `snapshot`: the rollups of the query's teams when the caller has read them already.
    Raises ValueError with a message for people when the query cannot be answered (start
    after end, an unknown period or severity, more than MAX_PERIODS periods).
    Caught counts are not known per component or severity: with either filter, containment,
    caught and escape rates are None rather than a mixed ratio.
    """
    _check(query)
    starts = _period_starts(query)
    if snapshot is None:
        snapshot = Snapshot.read(query.teams)
    blocks, release_blocks = snapshot.blocks, snapshot.releases
    stale = _stale(query, blocks, release_blocks)
    for team in stale:
        rollups.rollups_request_team(team_id=team.pk)
    stages = _stages(query)
    now = timezone.now()
    todays = tuple(now.astimezone(t.tzinfo).date().toordinal() for t in query.teams)
    computed_at = min(
        [b.computed_at for b in blocks.values() if b.computed_at]
        + [b.computed_at for b in release_blocks.values()],
        default=None,
    )
    key = _result_key(query, blocks, release_blocks, stages, todays)
    with _results_lock:
        known = _results.get(key)
        if known is not None:
            _results.move_to_end(key)
    if known is not None:
        return replace(
            known, query=query, computed_at=computed_at, stale_teams=tuple(t.slug for t in stale)
        )
    board = _compute(query, starts, blocks, release_blocks, stages, todays)
    board = replace(
        board,
        computed_at=computed_at,
        stale_teams=tuple(t.slug for t in stale),
        cache_key=key,
    )
    with _results_lock:
        _results[key] = board
        while len(_results) > RESULTS_KEPT:
            _results.popitem(last=False)
    return board


# Dashboards answered, by everything their numbers depend on: the rollups' digests, the
# stages, the query, each team's local date (overdue actions). A change to any of them is a
# new key, so an answer is never stale; a manager's reload or the next manager's same view
# costs the digests' query, not the arithmetic over a million escapes.
RESULTS_KEPT = 64
_results: OrderedDict[tuple[Any, ...], Dashboard] = OrderedDict()
_results_lock = threading.Lock()


def _result_key(
    query: DashboardQuery,
    blocks: dict[int, rollup_blocks.TeamBlock],
    release_blocks: dict[int, release_rollups.ReleaseBlock],
    stages: list[tuple[int, str]],
    todays: tuple[int, ...],
) -> tuple[Any, ...]:
    teams = tuple((t.pk, t.slug, t.timezone) for t in query.teams)
    return (
        teams,
        todays,
        tuple(blocks[t.pk].signature if t.pk in blocks else None for t in query.teams),
        tuple(release_blocks[t.pk].digest if t.pk in release_blocks else None for t in query.teams),
        tuple(stages),
        (query.start, query.end, query.period, query.component, query.severity, query.release_id),
    )


def dashboard_results_clear() -> None:
    """Forget the answers kept by this process (tests)."""
    with _results_lock:
        _results.clear()


def _compute(
    query: DashboardQuery,
    starts: list[date],
    blocks: dict[int, rollup_blocks.TeamBlock],
    release_blocks: dict[int, release_rollups.ReleaseBlock],
    stages: list[tuple[int, str]],
    todays: tuple[int, ...],
) -> Dashboard:
    order = np.argsort(np.array([sid for sid, _ in stages], dtype=np.int64))
    stage_ids = np.array([stages[i][0] for i in order], dtype=np.int64)
    stage_codes = (stage_ids, order.astype(np.int64), len(stages))
    component_names: dict[str, int] = {}
    sel = _concat(
        [
            _select_team(blocks[t.pk], query, stage_codes, component_names, today=today)
            for t, today in zip(query.teams, todays, strict=True)
            if t.pk in blocks
        ]
    )
    in_range = _ReleaseRange.of(query, _windows(query), release_blocks)
    caught_by_stage = in_range.caught_by_stage()
    boxes = _stage_boxes(sel, stages, caught_by_stage)
    weakest, reason = _weakest(boxes)
    valid_n = len(sel.deficit)
    category_counts = np.bincount(sel.category, minlength=len(rollup_layout.CATEGORY_KEYS))
    category_labels = dict(Category.choices)
    component_counts = np.bincount(sel.component, minlength=len(component_names))
    flags = sel.flags

    def ids_with(bit: int) -> tuple[int, ...]:
        return tuple(_smallest(sel.ids[flags & bit != 0], MAX_LISTED))

    def count_with(bit: int) -> int:
        return int(np.count_nonzero(flags & bit))

    return Dashboard(
        query=query,
        total=_durations(sel.deficit[~np.isnan(sel.deficit)], valid_n),
        periods=_periods(sel, starts, query.period),
        stages=tuple(boxes),
        weakest_stage=weakest,
        weakest_reason=reason,
        pareto_categories=_pareto(
            [
                (key, str(category_labels.get(key, "Unclassified")), int(category_counts[k]))
                for k, key in enumerate(rollup_layout.CATEGORY_KEYS)
            ]
        ),
        pareto_components=_pareto(
            [
                (name, name or _NO_COMPONENT, int(component_counts[code]))
                for name, code in component_names.items()
            ]
        ),
        releases=_releases(query, blocks, in_range),
        releases_total=in_range.total,
        time_in_production=_durations(sel.tip[~np.isnan(sel.tip)], valid_n),
        follow_through=_follow_through(sel),
        problems={
            "negative_deficit": ids_with(rollup_layout.NEGATIVE_DEFICIT),
            "detected_before_release": ids_with(rollup_layout.BEFORE_RELEASE),
            "missing_merged_at": ids_with(rollup_layout.MISSING_MERGED),
        },
        problem_counts={
            "negative_deficit": count_with(rollup_layout.NEGATIVE_DEFICIT),
            "detected_before_release": count_with(rollup_layout.BEFORE_RELEASE),
            "missing_merged_at": count_with(rollup_layout.MISSING_MERGED),
        },
        computed_at=None,  # set by dashboard(), like the stale teams
    )
