"""Celery tasks of the dashboard rollups: thin interfaces over insights/rollups.py.

`insights.rollup_recompute` is queued on commit by every change to an escape; beat runs
`insights.rollup_full` as the backstop (config/settings.py). All return quietly when the team
is gone.
"""

from datetime import date

from celery import shared_task

from insights import release_rollups, rollups


@shared_task(name="insights.rollup_recompute", ignore_result=True)
def rollup_recompute_task(team_id: int, days: list[str]) -> int:
    """The team's months of these local ISO dates; returns the months written."""
    return rollups.rollups_recompute(team_id=team_id, days=[date.fromisoformat(d) for d in days])


@shared_task(name="insights.rollup_team", ignore_result=True)
def rollup_team_task(team_id: int) -> int:
    """Every month of one team (its rollups were missing or bucketed in another zone)."""
    return rollups.rollups_recompute_team(team_id=team_id)


@shared_task(name="insights.rollup_full", ignore_result=True)
def rollup_full_task() -> int:
    """Every team: rewrites what differs, deletes emptied months, stamps the rest as checked."""
    return rollups.rollups_recompute_all()


@shared_task(name="insights.rollup_releases", ignore_result=True)
def rollup_releases_task(team_id: int) -> bool:
    """The team's release rollup (a release was created or caught counts reported)."""
    return release_rollups.release_rollup_recompute(team_id=team_id)
