"""The dashboard in the REST API: the same `Dashboard` the pages draw, durations in seconds.

Parameters are parsed by the page's own form (insights.forms.query_from), so the API
and the page agree on defaults (the last twelve months, by month) and on what is valid; where
the page falls back to a default and says so, the API answers 422.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, Literal

from django.http import HttpRequest
from django.utils import timezone
from ninja import Field, Query, Router, Schema
from ninja.errors import ValidationError as NinjaValidationError

from escapes.models import Severity
from insights import dashboard as numbers
from insights.dashboard import CaughtSource, Dashboard, Durations, ReleaseBar, StageBox
from insights.forms import query_from
from insights.freshness import freshness
from teams.api import ApiInput, api_user, membership_for
from teams.models import Team
from teams.selectors import teams_for_user

router = Router(tags=["dashboard"])


class DashboardParams(ApiInput):
    start: date | None = Field(
        None, description="First local day (default: 1st of the month 11 months ago)"
    )
    end: date | None = Field(None, description="Last local day, inclusive (default: today)")
    period: Literal["week", "month"] = "month"
    component: str = Field("", max_length=100)
    severity: Severity | None = None
    release: int | None = Field(None, description="A release id of one of the teams")


class DurationsOut(Schema):
    n: int = Field(description="Escapes counted")
    known: int = Field(description="Of them with a known, non-negative span")
    mean: float | None = Field(description="Seconds")
    median: float | None
    p90: float | None


class PeriodOut(Schema):
    start: date
    label: str
    deficit: DurationsOut
    categories: dict[str, int] = Field(description='Category key ("" unclassified) -> escapes')


class StageBoxOut(Schema):
    stage_id: int | None = Field(description="null: escapes attributed to no stage")
    name: str
    n: int
    known: int
    minimum: float | None
    q1: float | None
    median: float | None
    q3: float | None
    maximum: float | None
    caught: int | None
    containment: float | None
    mean: float | None = Field(description="Mean Detection Deficit, seconds (known spans)")
    p90: float | None = Field(description="P90 of the Detection Deficit, seconds")
    caught_source: CaughtSource | None = Field(
        description="Where `caught` came from: measured from CI test results, typed by a "
        "person, or both (some releases each); null where no count was reported"
    )


class ParetoOut(Schema):
    key: str
    label: str
    count: int
    cumulative_share: float


class DashboardReleaseOut(Schema):
    release_id: int
    team_slug: str
    version: str
    released_at: datetime
    escapes: int
    caught: int | None
    escape_rate: float | None
    detection_rate: float | None = Field(description="1 − escape_rate; null when unknown")
    caught_source: CaughtSource | None = Field(
        description="Where `caught` came from: measured, typed or both (some stages each); "
        "null where no count was reported"
    )


class FollowThroughOut(Schema):
    actions: int
    pushed: int
    done: int
    overdue: int
    pushed_share: float | None = Field(description="pushed ÷ actions, 0–1; null without actions")
    done_share: float | None = Field(description="done ÷ actions, 0–1")
    overdue_share: float | None = Field(description="overdue ÷ actions, 0–1")
    median_days_to_done: float | None
    re_escapes: int
    re_escape_ids: list[int]  # the first 200


class QueryOut(Schema):
    teams: list[str]
    start: date
    end: date
    period: str
    component: str
    severity: str
    release_id: int | None


class DashboardOut(Schema):
    query: QueryOut
    total: DurationsOut
    periods: list[PeriodOut]
    stages: list[StageBoxOut]
    weakest_stage: StageBoxOut | None
    weakest_reason: str | None
    pareto_categories: list[ParetoOut]
    pareto_components: list[ParetoOut]
    releases: list[DashboardReleaseOut]
    time_in_production: DurationsOut
    follow_through: FollowThroughOut
    releases_total: int = Field(description="Releases in the range; `releases` has the newest 60")
    problems: dict[str, list[int]] = Field(
        description="Data-problem kind -> the first 200 escape ids"
    )
    problem_counts: dict[str, int] = Field(description="Data-problem kind -> escapes")
    computed_at: datetime | None = Field(
        description="When the oldest rollup behind these numbers was computed"
    )
    changes_up_to: datetime | None = Field(
        description="The newest change included: the latest rollup's time (the page's "
        "'Numbers include changes up to')"
    )
    pending_teams: list[str] = Field(
        description="Teams with a change not yet counted (the page's 'still being counted')"
    )
    stale_teams: list[str] = Field(description="Teams whose numbers are still being computed")


def _durations(d: Durations) -> dict[str, Any]:
    return {"n": d.n, "known": d.known, "mean": d.mean, "median": d.median, "p90": d.p90}


def _stage(box: StageBox) -> dict[str, Any]:
    return {name: getattr(box, name) for name in StageBoxOut.model_fields}


def _release(bar: ReleaseBar) -> dict[str, Any]:
    return {**vars(bar), "detection_rate": bar.detection_rate}


def dashboard_out(board: Dashboard) -> dict[str, Any]:
    q = board.query
    f = board.follow_through
    return {
        "query": {
            "teams": [t.slug for t in q.teams],
            "start": q.start,
            "end": q.end,
            "period": q.period,
            "component": q.component,
            "severity": q.severity,
            "release_id": q.release_id,
        },
        "total": _durations(board.total),
        "periods": [
            {
                "start": p.start,
                "label": p.label,
                "deficit": _durations(p.deficit),
                "categories": p.categories,
            }
            for p in board.periods
        ],
        "stages": [_stage(s) for s in board.stages],
        "weakest_stage": _stage(board.weakest_stage) if board.weakest_stage else None,
        "weakest_reason": board.weakest_reason,
        "pareto_categories": [vars(i) for i in board.pareto_categories],
        "pareto_components": [vars(i) for i in board.pareto_components],
        "releases": [_release(r) for r in board.releases],
        "releases_total": board.releases_total,
        "time_in_production": _durations(board.time_in_production),
        "follow_through": {
            "actions": f.actions,
            "pushed": f.pushed,
            "done": f.done,
            "overdue": f.overdue,
            "pushed_share": f.share(f.pushed),
            "done_share": f.share(f.done),
            "overdue_share": f.share(f.overdue),
            "median_days_to_done": f.median_days_to_done,
            "re_escapes": f.re_escapes,
            "re_escape_ids": list(f.re_escape_ids),
        },
        "problems": {kind: list(ids) for kind, ids in board.problems.items()},
        "problem_counts": dict(board.problem_counts),
        "computed_at": board.computed_at,
        "stale_teams": list(board.stale_teams),
    }


def _answer(params: DashboardParams, teams: list[Team]) -> dict[str, Any]:
    raw = {k: v for k, v in params.model_dump().items() if v not in (None, "")}
    raw = {k: v.isoformat() if isinstance(v, date) else str(v) for k, v in raw.items()}
    query, form, problems = query_from(raw, teams, today=timezone.localdate())
    if problems:
        raise NinjaValidationError(
            [{"type": "invalid", "loc": ["query", p.field], "msg": p.message} for p in problems]
        )
    out = dashboard_out(numbers.dashboard(query, form.snapshot))
    fresh = freshness(teams)
    out["changes_up_to"] = fresh.newest
    out["pending_teams"] = [t.slug for t in fresh.pending]
    return out


@router.get(
    "/teams/{slug}/dashboard",
    response=DashboardOut,
    summary="The team's dashboard: MTTD per period, stages, categories, releases, follow-through",
)
def team_dashboard(
    request: HttpRequest, slug: str, params: Query[DashboardParams]
) -> dict[str, Any]:
    team = membership_for(request, slug).team
    with timezone.override(team.tzinfo):
        return _answer(params, [team])


@router.get(
    "/dashboard",
    response=DashboardOut,
    summary="The dashboard over every team of the token's user",
)
def all_dashboard(request: HttpRequest, params: Query[DashboardParams]) -> dict[str, Any]:
    return _answer(params, list(teams_for_user(api_user(request))))
