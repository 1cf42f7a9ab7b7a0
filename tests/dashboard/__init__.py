"""Helpers of the dashboard tests: escapes written straight to the database, rollups from them."""

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from escapes.models import Escape
from insights.dashboard import Dashboard, DashboardQuery, dashboard
from insights.rollup_blocks import rollups_cache_clear
from insights.rollups import rollups_recompute_all
from teams.models import Team

HOUR = 3600.0


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def add(
    team: Team,
    detected_at: datetime,
    *,
    deficit: timedelta | None = timedelta(hours=1),
    **fields: Any,
) -> Escape:
    """An escape as it may arrive (no service validation): times are the test's to choose."""
    if deficit is not None and "merged_at" not in fields:
        fields["merged_at"] = detected_at - deficit
    return Escape.objects.create(team=team, title="Escape", detected_at=detected_at, **fields)


def board(teams: Team | tuple[Team, ...], start: date, end: date, **query: Any) -> Dashboard:
    """The dashboard after a full recompute of every rollup."""
    rollups_recompute_all()
    chosen = teams if isinstance(teams, tuple) else (teams,)
    return dashboard(DashboardQuery(teams=chosen, start=start, end=end, **query))


@pytest.fixture(autouse=True)
def _fresh_cache() -> Iterator[None]:
    """Blocks are cached per process by row id and digest; ids repeat across tests."""
    rollups_cache_clear()
    yield
    rollups_cache_clear()


def run_when_queued(monkeypatch: pytest.MonkeyPatch, task: Any) -> list[tuple[Any, ...]]:
    """Runs each `task.delay(...)` at once, as a worker would after the commit; the calls."""
    calls: list[tuple[Any, ...]] = []

    def run(*args: Any) -> None:
        calls.append(args)
        task.run(*args)

    monkeypatch.setattr(task, "delay", run)
    return calls
