"""Release rollups (releases and stage catches per team) and the dashboard's kept answers."""

from datetime import date
from typing import Any

import pytest
from django.core.exceptions import ValidationError

from escapes.models import PipelineStage, Release, StageCatch
from escapes.services import release_create, stage_catches_report
from escapes.stage_services import release_catches_set, stage_delete
from insights import dashboard as numbers
from insights.dashboard import DashboardQuery, dashboard
from insights.models import ReleaseRollup
from insights.release_rollups import release_rollup_recompute
from insights.rollups import rollups_recompute_all, rollups_recompute_team
from insights.tasks import rollup_releases_task
from tests.dashboard import add, run_when_queued, utc

pytestmark = pytest.mark.django_db

NOVEMBER = (date(2026, 11, 1), date(2026, 11, 30))


@pytest.fixture
def worker(monkeypatch) -> list[tuple[Any, ...]]:
    """Runs each queued release rollup at once, as a worker would after the commit."""
    return run_when_queued(monkeypatch, rollup_releases_task)


def november(*teams):
    return dashboard(DashboardQuery(teams=teams, start=NOVEMBER[0], end=NOVEMBER[1]))


def stage(team, name: str) -> PipelineStage:
    return PipelineStage.objects.get(team=team, name=name)


def test_a_new_release_and_its_catches_reach_the_dashboard_through_the_worker(
    team, worker, django_capture_on_commit_callbacks
):
    add(team, utc(2026, 11, 10, 12))
    rollups_recompute_team(team_id=team.pk)
    assert november(team).releases == ()

    with django_capture_on_commit_callbacks(execute=True):
        release = release_create(team=team, version="2026.11.2", released_at=utc(2026, 11, 9))
    with django_capture_on_commit_callbacks(execute=True):
        stage_catches_report(release=release, counts={stage(team, "E2E"): 9})

    assert worker == [(team.pk,), (team.pk,)]
    board = november(team)
    (bar,) = board.releases
    assert (bar.version, bar.released_at, bar.caught) == ("2026.11.2", utc(2026, 11, 9), 9)
    e2e = next(b for b in board.stages if b.name == "E2E")
    assert e2e.caught == 9


def test_nothing_is_queued_for_a_refused_release(team, worker, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True), pytest.raises(ValidationError):
        release_create(team=team, version="x" * 500, released_at=utc(2026, 11, 9))
    assert worker == []


def test_cleared_counts_and_a_deleted_stage_leave_the_rollup(
    team, worker, django_capture_on_commit_callbacks
):
    release = Release.objects.create(team=team, version="1", released_at=utc(2026, 11, 2))
    unit, e2e = stage(team, "Unit"), stage(team, "E2E")
    with django_capture_on_commit_callbacks(execute=True):
        release_catches_set(release=release, counts={unit: 4, e2e: 2})
    assert november(team).releases[0].caught == 6
    with django_capture_on_commit_callbacks(execute=True):
        release_catches_set(release=release, counts={unit: 4, e2e: None})
    assert november(team).releases[0].caught == 4
    with django_capture_on_commit_callbacks(execute=True):
        stage_delete(stage=unit)
    assert not StageCatch.objects.filter(stage_id=unit.pk).exists()
    assert november(team).releases[0].caught is None  # nothing reported any more


def test_a_team_with_releases_but_no_release_rollup_is_stale_and_requested(team, monkeypatch):
    requested: list[int] = []
    monkeypatch.setattr(
        "insights.rollups.rollups_request_team", lambda *, team_id: requested.append(team_id)
    )
    add(team, utc(2026, 11, 10, 12))
    rollups_recompute_all()
    Release.objects.create(team=team, version="1", released_at=utc(2026, 11, 2))
    ReleaseRollup.objects.all().delete()

    board = november(team)

    assert board.stale_teams == (team.slug,)
    assert requested == [team.pk]
    rollups_recompute_all()  # the backstop rebuilds release rollups with the escapes'
    assert november(team).stale_teams == ()
    assert november(team).releases_total == 1


def test_the_release_rollup_is_rewritten_only_when_it_changed(team):
    Release.objects.create(team=team, version="1", released_at=utc(2026, 11, 2))
    assert release_rollup_recompute(team_id=team.pk) is True
    assert release_rollup_recompute(team_id=team.pk) is False
    StageCatch.objects.create(
        release=Release.objects.get(team=team), stage=stage(team, "Unit"), caught=3
    )
    assert release_rollup_recompute(team_id=team.pk) is True


# --- Kept answers -----------------------------------------------------------------------


def test_the_same_question_is_answered_from_the_kept_answer(team, monkeypatch):
    add(team, utc(2026, 11, 10, 12))
    rollups_recompute_all()
    first = november(team)
    computed: list[int] = []
    real = numbers._compute

    def counted(*args: Any) -> Any:
        computed.append(1)
        return real(*args)

    monkeypatch.setattr(numbers, "_compute", counted)

    again = november(team)

    assert computed == []
    assert again.total == first.total and again.periods == first.periods


def test_any_change_the_numbers_depend_on_is_a_new_answer(team, other_team):
    add(team, utc(2026, 11, 10, 12))
    rollups_recompute_all()
    assert november(team).total.n == 1
    # An escape more (its month rewritten by the worker's recompute) ...
    add(team, utc(2026, 11, 11, 12))
    rollups_recompute_team(team_id=team.pk)
    assert november(team).total.n == 2
    # ... a release ...
    Release.objects.create(team=team, version="1", released_at=utc(2026, 11, 2))
    release_rollup_recompute(team_id=team.pk)
    assert november(team).releases_total == 1
    # ... a renamed stage, and another set of teams.
    unit = stage(team, "Unit")
    unit.name = "Unit tests"
    unit.save()
    assert "Unit tests" in [b.name for b in november(team).stages]
    assert november(team, other_team).total.n == 2


def test_a_kept_answer_says_how_fresh_the_rollups_are_now(team):
    add(team, utc(2026, 11, 10, 12))
    rollups_recompute_all()
    before = november(team).computed_at
    rollups_recompute_all()  # beat's backstop: nothing changed, every row stamped as checked
    after = november(team).computed_at
    assert before is not None and after is not None and after > before
