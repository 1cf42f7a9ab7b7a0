"""The team's metrics in the REST API: the numbers of the team page, durations in seconds.

`GET /api/v1/teams/{slug}/metrics` — one definition of each number (insights/metrics.py),
the same as the team page shows.
"""

from datetime import date, datetime, timedelta
from typing import Any

from django.http import HttpRequest
from ninja import Field, Query, Router, Schema
from ninja.errors import ValidationError as NinjaValidationError

from insights.metrics import (
    DEFAULT_RANGE_DAYS,
    CaughtSource,
    DurationSummary,
    StageStat,
    TeamMetrics,
    default_range,
    team_metrics,
)
from teams.api import ApiInput, membership_for
from teams.models import Team

# Tagged with the escapes' endpoints, where it was published first.
router = Router(tags=["escapes"])


class DurationOut(Schema):
    """Mean, median and P90 of a set of durations (null when n is 0), in seconds and hours."""

    n: int
    mean_seconds: float | None
    median_seconds: float | None
    p90_seconds: float | None
    mean_hours: float | None
    median_hours: float | None
    p90_hours: float | None


class CategoryCountOut(Schema):
    key: str = Field(description="A category value, or `unclassified`")
    label: str
    count: int


class StageStatOut(Schema):
    name: str
    unattributed: bool = Field(description="True for the escapes attributed to no stage")
    escaped: int = Field(description="Escapes this stage should have caught")
    caught: int | None = Field(description="Defects it caught before release; null if unknown")
    containment: float | None = Field(description="caught ÷ (caught + escaped), 0–1")
    caught_source: CaughtSource | None = Field(
        description="Where `caught` came from: measured from CI test results, typed, or both "
        "(some releases each); null where no count was reported"
    )
    mean_deficit_seconds: float | None = Field(description="Mean Detection Deficit")
    median_deficit_seconds: float | None
    p90_deficit_seconds: float | None
    mean_deficit_hours: float | None
    median_deficit_hours: float | None
    p90_deficit_hours: float | None


class ReleaseRateOut(Schema):
    version: str
    released_at: datetime
    escaped: int
    caught: int
    escape_rate: float | None = Field(description="escaped ÷ (escaped + caught), 0–1")
    detection_rate: float | None


class DataProblemsOut(Schema):
    """Escape ids per kind of data problem."""

    negative_deficit: list[int]
    detected_before_release: list[int]
    missing_merged_at: list[int]


class MetricsOut(Schema):
    start: date
    end: date
    timezone: str = Field(description="Days are the team's local days")
    escapes_total: int
    detection_deficit: DurationOut = Field(description="detected_at − merged_at; mean = MTTD")
    deficit_known: int = Field(description="Escapes whose deficit is known, of deficit_of")
    deficit_of: int
    time_in_production: DurationOut = Field(description="detected_at − released_at")
    by_category: list[CategoryCountOut]
    by_stage: list[StageStatOut]
    weakest_stage: str | None
    weakest_reason: str | None
    data_problems: DataProblemsOut
    release_escape_rates: list[ReleaseRateOut]


class MetricsQuery(ApiInput):
    start: date | None = Field(None, description="First local day (default: 90 days ago)")
    end: date | None = Field(None, description="Last local day, inclusive (default: today)")


def _days_before(day: date, days: int) -> date:
    try:
        return day - timedelta(days=days)
    except OverflowError:  # near year 1: the range simply starts at the first day there is
        return date.min


def _seconds(value: timedelta | None) -> float | None:
    return None if value is None else value.total_seconds()


def _hours(value: timedelta | None) -> float | None:
    return None if value is None else value.total_seconds() / 3600


def _duration_out(summary: DurationSummary) -> dict[str, Any]:
    return {
        "n": summary.n,
        **{f"{k}_seconds": _seconds(getattr(summary, k)) for k in ("mean", "median", "p90")},
        **{f"{k}_hours": _hours(getattr(summary, k)) for k in ("mean", "median", "p90")},
    }


def _stage_out(stat: StageStat) -> dict[str, Any]:
    return {
        "name": stat.name,
        "unattributed": stat.stage_id is None,
        "escaped": stat.escaped,
        "caught": stat.caught,
        "containment": stat.containment,
        "caught_source": stat.caught_source,
        **{
            f"{k}_deficit_seconds": _seconds(getattr(stat, f"{k}_deficit"))
            for k in ("mean", "median", "p90")
        },
        **{
            f"{k}_deficit_hours": _hours(getattr(stat, f"{k}_deficit"))
            for k in ("mean", "median", "p90")
        },
    }


def _metrics_out(team: Team, m: TeamMetrics) -> dict[str, Any]:
    return {
        "start": m.range.start,
        "end": m.range.end,
        "timezone": team.timezone,
        "escapes_total": m.escapes_total,
        "detection_deficit": _duration_out(m.deficit),
        "deficit_known": m.deficit_known,
        "deficit_of": m.deficit_of,
        "time_in_production": _duration_out(m.time_in_production),
        "by_category": [vars(c) for c in m.by_category],
        "by_stage": [_stage_out(s) for s in m.by_stage],
        "weakest_stage": m.weakest_stage.name if m.weakest_stage else None,
        "weakest_reason": m.weakest_reason,
        "data_problems": {
            "negative_deficit": list(m.data_problems.negative_deficit),
            "detected_before_release": list(m.data_problems.detected_before_release),
            "missing_merged_at": list(m.data_problems.missing_merged_at),
        },
        "release_escape_rates": [
            {
                "version": r.version,
                "released_at": r.released_at,
                "escaped": r.escaped,
                "caught": r.caught,
                "escape_rate": r.escape_rate,
                "detection_rate": r.detection_rate,
            }
            for r in m.release_escape_rates
        ],
    }


@router.get(
    "/{slug}/metrics",
    response=MetricsOut,
    summary="Detection deficit, stages, categories and escape rates over local days",
)
def metrics(request: HttpRequest, slug: str, query: Query[MetricsQuery]) -> dict[str, Any]:
    team = membership_for(request, slug).team
    default = default_range(team)
    end = query.end or default.end
    start = query.start or _days_before(end, DEFAULT_RANGE_DAYS - 1)
    if start > end:
        raise NinjaValidationError(
            [{"type": "invalid", "loc": ["query", "start"], "msg": "start is after end."}]
        )
    return _metrics_out(team, team_metrics(team, start, end))
