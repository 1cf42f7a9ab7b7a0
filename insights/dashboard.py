"""The managers' dashboard: every chart's numbers, read from the rollups (insights/rollups.py).

This module is the contract between the numbers and the pages: `dashboard(query)` answers a
`Dashboard`, the views render it as charts and tables, the API and the CSV download serialise
it. Every number follows docs/metrics.md through insights/metrics.py's definitions (percentiles
interpolate linearly, exclusions are counted, periods are the team's local weeks or months,
empty periods are zeros). The query and answer types are defined in
insights/dashboard_types.py and imported from here.

`dashboard` checks the query, reads the rollups once (`Snapshot`), names and requests the
stale teams, and answers from insights/dashboard_cache.py when the same question was answered
with the same data; otherwise it computes: insights/dashboard_arrays.py selects each team's
escapes from its rollup block and does the arithmetic, this module adds what the small tables
say (stages, releases and their catches) and assembles the answer.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, replace
from datetime import date, datetime

import numpy as np
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone

from escapes.models import Category, Severity
from escapes.release_selectors import releases_of_team
from escapes.selectors import escapes_of_team, stages_of_teams
from insights import dashboard_arrays as arrays
from insights import (
    dashboard_cache,
    metrics,
    release_rollups,
    rollup_blocks,
    rollup_layout,
    rollups,
)
from insights.dashboard_types import (
    CAUGHT_SOURCE_LABELS,
    CaughtSource,
    Dashboard,
    DashboardQuery,
    Durations,
    FollowThrough,
    ParetoItem,
    Period,
    PeriodPoint,
    ReleaseBar,
    Snapshot,
    StageBox,
    caught_source,
)
from teams.models import Team
from teams.selectors import teams_all

__all__ = [
    "CAUGHT_SOURCE_LABELS",
    "CaughtSource",
    "Dashboard",
    "DashboardQuery",
    "Durations",
    "FollowThrough",
    "ParetoItem",
    "Period",
    "PeriodPoint",
    "ReleaseBar",
    "Snapshot",
    "StageBox",
    "dashboard",
]

MAX_LISTED = 200  # re-escape ids given with the count
MAX_RELEASES = 60  # release bars: the newest ones (fifty teams release thousands of times)
_NO_COMPONENT = "(no component)"


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
        stages_of_teams(order).values_list("id", "team_id", "name", "position"),
        key=lambda r: (order[r[1]], r[3], r[0]),
    )
    several = len(query.teams) > 1
    return [(sid, f"{slugs[tid]} · {name}" if several else name) for sid, tid, name, _ in rows]


def _follow_through(sel: arrays.Selected) -> FollowThrough:
    to_done = sel.to_done[~np.isnan(sel.to_done)] / 86400
    return FollowThrough(
        actions=len(sel.done),
        pushed=int(sel.pushed.sum()),
        done=int(sel.done.sum()),
        overdue=int(sel.overdue.sum()),
        median_days_to_done=arrays.quantiles(to_done, (0.5,))[0] if len(to_done) else None,
        re_escape_ids=tuple(arrays.smallest(sel.ids[sel.valid][sel.re_escape], MAX_LISTED)),
        re_escapes=int(sel.re_escape.sum()),
    )


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
        lacking = teams_all().filter(
            Q(pk__in=no_escape_rollup) & Exists(escapes_of_team(OuterRef("pk")))
            | Q(pk__in=no_release_rollup) & Exists(releases_of_team(OuterRef("pk")))
        )
        found = set(lacking.values_list("pk", flat=True))
        stale += [t for t in query.teams if t.pk in found and t not in stale]
    return stale


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

    def caught_by_stage(self) -> tuple[dict[int, int], dict[int, CaughtSource]] | None:
        """Caught per stage over the range's releases, and where those counts came from."""
        if not self.with_catches:
            return None
        caught: dict[int, int] = defaultdict(int)
        measured: dict[int, list[bool]] = defaultdict(list)
        for block, positions in self.parts:
            mask = np.isin(block.catch_release, positions)
            for stage_id, n, is_measured in zip(
                block.catch_stage[mask].tolist(),
                block.catch_caught[mask].tolist(),
                block.catch_measured[mask].tolist(),
                strict=True,
            ):
                caught[stage_id] += n
                measured[stage_id].append(is_measured)
        sources = {sid: source for sid, m in measured.items() if (source := caught_source(m))}
        return caught, sources


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
            mask = arrays.filter_mask(block, plain, block.cols)
            mask = (block.cols["flags"] & rollup_layout.BEFORE_RELEASE == 0) & mask
            per_code = np.bincount(block.cols["release"][mask], minlength=len(block.releases))
        counts.update(zip(block.releases, per_code.tolist(), strict=True))
    bars = []
    for release in release_rollups.newest(in_range.parts, MAX_RELEASES):
        escaped = counts.get(release.id, 0)
        bar_caught = None
        bar_source = None
        if in_range.with_catches:
            mine = release.block.catch_release == release.position
            if mine.any():
                bar_caught = int(release.block.catch_caught[mine].sum())
                bar_source = caught_source(release.block.catch_measured[mine].tolist())
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
                caught_source=bar_source,
            )
        )
    return tuple(bars)


def dashboard(query: DashboardQuery, snapshot: Snapshot | None = None) -> Dashboard:
    """Every chart's numbers for the query, from the rollups; a fixed number of queries.

    `snapshot`: the rollups of the query's teams when the caller has read them already.
    Raises ValueError with a message for people when the query cannot be answered (start
    after end, an unknown period or severity, more than dashboard_arrays.MAX_PERIODS periods).
    Caught counts are not known per component or severity: with either filter, containment,
    caught and escape rates are None rather than a mixed ratio.
    """
    _check(query)
    starts = arrays.period_starts(query)
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
    key = dashboard_cache.answer_key(query, blocks, release_blocks, stages, todays)
    known = dashboard_cache.answer_get(key)
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
    dashboard_cache.answer_keep(key, board)
    return board


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
    sel = arrays.concat(
        [
            arrays.select_team(blocks[t.pk], query, stage_codes, component_names, today=today)
            for t, today in zip(query.teams, todays, strict=True)
            if t.pk in blocks
        ]
    )
    in_range = _ReleaseRange.of(query, _windows(query), release_blocks)
    caught_by_stage = in_range.caught_by_stage()
    boxes = arrays.stage_boxes(sel, stages, caught_by_stage)
    weakest, reason = arrays.weakest(boxes)
    valid_n = len(sel.deficit)
    category_counts = np.bincount(sel.category, minlength=len(rollup_layout.CATEGORY_KEYS))
    category_labels = dict(Category.choices)
    component_counts = np.bincount(sel.component, minlength=len(component_names))
    flags = sel.flags

    def ids_with(bit: int) -> tuple[int, ...]:
        return tuple(arrays.smallest(sel.ids[flags & bit != 0], MAX_LISTED))

    def count_with(bit: int) -> int:
        return int(np.count_nonzero(flags & bit))

    return Dashboard(
        query=query,
        total=arrays.durations(sel.deficit[~np.isnan(sel.deficit)], valid_n),
        periods=arrays.periods(sel, starts, query.period),
        stages=tuple(boxes),
        weakest_stage=weakest,
        weakest_reason=reason,
        pareto_categories=arrays.pareto(
            [
                (key, str(category_labels.get(key, "Unclassified")), int(category_counts[k]))
                for k, key in enumerate(rollup_layout.CATEGORY_KEYS)
            ]
        ),
        pareto_components=arrays.pareto(
            [
                (name, name or _NO_COMPONENT, int(component_counts[code]))
                for name, code in component_names.items()
            ]
        ),
        releases=_releases(query, blocks, in_range),
        releases_total=in_range.total,
        time_in_production=arrays.durations(sel.tip[~np.isnan(sel.tip)], valid_n),
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
