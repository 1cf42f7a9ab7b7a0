"""The dashboard's query and its answer: what `insights.dashboard.dashboard` takes and returns.

The views render a `Dashboard` as charts and tables, the API and the CSV download serialise
it. insights/dashboard.py computes it and re-exports these names, and the rest of the code
imports them from there; only the modules it is built on (dashboard_arrays.py,
dashboard_cache.py) import them from here. `Snapshot` is the rollups of some teams as read
once, so that a request's form and numbers share them. The caps MAX_LISTED and MAX_RELEASES
named below are insights/dashboard.py's.

Durations are seconds (float) so that charts, tables, JSON and CSV share one unit; the
`*_display` helpers of insights/metrics.py format them for people.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Literal

from insights import release_rollups, rollup_blocks
from insights.metrics import CAUGHT_SOURCE_LABELS, CaughtSource, caught_source
from teams.models import Team

Period = Literal["week", "month"]

__all__ = ["CAUGHT_SOURCE_LABELS", "CaughtSource", "caught_source"]  # re-exported


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
    """Detection Deficit per pipeline stage as a box plot, with its mean and P90 (shown beside
    the median on every screen) and containment where known."""

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
    mean: float | None = None  # seconds, over the `known` spans, like Durations.mean
    p90: float | None = None
    caught_source: CaughtSource | None = None  # None where nothing was reported


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
    caught_source: CaughtSource | None = None  # None where nothing was reported

    @property
    def detection_rate(self) -> float | None:
        """1 − escape rate (docs/metrics.md); None where the escape rate is unknown."""
        return None if self.escape_rate is None else 1 - self.escape_rate


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

    def share(self, part: int) -> float | None:
        """`part` of the actions as a 0–1 fraction; None when there are no actions."""
        return part / self.actions if self.actions else None


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


@dataclass(frozen=True)
class Snapshot:
    """The rollups of some teams as read once: a request's form and numbers share them."""

    blocks: dict[int, rollup_blocks.TeamBlock]
    releases: dict[int, release_rollups.ReleaseBlock]

    @classmethod
    def read(cls, teams: Sequence[Team]) -> Snapshot:
        team_ids = [t.pk for t in teams]
        return cls(rollup_blocks.team_blocks(team_ids), release_rollups.release_blocks(team_ids))
