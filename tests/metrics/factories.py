"""Escapes, releases and catches written straight to the database.

The services refuse inconsistent times, but the metrics must cope with rows that arrive
inconsistent anyway (older imports, direct API writes), so tests build them as they are.
"""

from datetime import UTC, datetime, timedelta

from escapes.models import Escape, PipelineStage, Release, StageCatch
from teams.models import Team


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def make_escape(
    team: Team,
    *,
    detected_at: datetime,
    deficit: timedelta | None = timedelta(hours=1),
    merged_at: datetime | None = None,
    released_at: datetime | None = None,
    category: str = "",
    stage: PipelineStage | None = None,
    release: Release | None = None,
    title: str = "Escape",
) -> Escape:
    if merged_at is None and deficit is not None:
        merged_at = detected_at - deficit
    return Escape.objects.create(
        team=team,
        title=title,
        detected_at=detected_at,
        merged_at=merged_at,
        released_at=released_at,
        category=category,
        stage=stage,
        release=release,
    )


def make_release(team: Team, version: str, released_at: datetime) -> Release:
    return Release.objects.create(team=team, version=version, released_at=released_at)


def report_catches(release: Release, counts: dict[PipelineStage, int]) -> None:
    for stage, caught in counts.items():
        StageCatch.objects.create(release=release, stage=stage, caught=caught)
