"""Measured "caught before release" (docs/metrics.md, "Caught before release, measured" and
"Typed and measured counts"): counted from MeasuredCatch rows, written as StageCatch rows
with source measured, never over a typed count."""

from datetime import datetime, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from escapes.models import PipelineStage, Release, StageCatch
from escapes.services import (
    release_create,
    release_move,
    stage_catches_report,
    stage_catches_typed_clear,
)
from escapes.stage_services import release_catches_set
from evidence.catches import measured_catches_refresh
from evidence.models import MeasuredCatch, ResultUpload, TrackedTest
from teams.models import Team

pytestmark = pytest.mark.django_db


@pytest.fixture
def base() -> datetime:
    """A Monday 08:00, weeks ago: release 2.3 ships then (the worked example's week)."""
    now = timezone.now().replace(hour=8, minute=0, second=0, microsecond=0)
    return now - timedelta(days=now.weekday() + 21)


@pytest.fixture
def unit(stages) -> PipelineStage:
    return stages[0]


@pytest.fixture
def integration(stages) -> PipelineStage:
    return stages[1]


def tracked(team: Team, stage: PipelineStage, name: str, at: datetime) -> TrackedTest:
    return TrackedTest.objects.create(
        team=team,
        stage=stage,
        name=name,
        key=f"{stage.pk}:{name}",
        first_run_at=at,
        last_run_at=at,
        last_outcome="passed",
    )


def caught(test: TrackedTest, fixed_at: datetime, release_version: str = "") -> MeasuredCatch:
    return MeasuredCatch.objects.create(
        team=test.team,
        stage=test.stage,
        test=test,
        failed_at=fixed_at - timedelta(hours=2),
        failed_commit="c3",
        fixed_at=fixed_at,
        fixed_commit="e5",
        release_version=release_version,
    )


def uploaded(
    team: Team, stage: PipelineStage, ran_at: datetime, release_version: str = "", **kw
) -> ResultUpload:
    return ResultUpload.objects.create(
        team=team,
        stage=stage,
        commit="a1",
        identity=f"{stage.pk}-{ran_at.isoformat()}-{release_version}",
        status=kw.get("status", "done"),
        ran_at=ran_at,
        release_version=release_version,
    )


def counts(release: Release) -> dict[str, tuple[int, str]]:
    return {
        c.stage.name: (c.caught, c.source)
        for c in StageCatch.objects.filter(release=release).select_related("stage")
    }


def refresh(team: Team, stages: list[PipelineStage], since: datetime) -> None:
    measured_catches_refresh(team.pk, {s.pk for s in stages}, since)


# --- The worked example ------------------------------------------------------------------


def test_the_worked_example_counts_one_test_once_for_release_2_4(team, integration, base):
    """docs/metrics.md: one Integration test, releases 2.3 (Mon 08:00) and 2.4 (Wed 12:00);
    catches c3 → e5 (Tue 16:00) and g7 → h8 (Wed 10:00): 2.4 caught 1, measured."""
    r23 = release_create(team=team, version="2.3", released_at=base)
    r24 = release_create(team=team, version="2.4", released_at=base + timedelta(days=2, hours=4))
    test = tracked(team, integration, "test_checkout_total", base)
    caught(test, base + timedelta(days=1, hours=8))  # Tue 16:00
    caught(test, base + timedelta(days=2, hours=2))  # Wed 10:00
    uploaded(team, integration, base + timedelta(days=1, hours=8))

    refresh(team, [integration], base + timedelta(days=1, hours=8))

    assert counts(r24) == {"Integration": (1, "measured")}
    assert counts(r23) == {}  # before it: nothing was uploaded, unknown


def test_distinct_tests_count_and_each_test_once(team, unit, base):
    release = release_create(team=team, version="3.0", released_at=base)
    a, b = tracked(team, unit, "a", base), tracked(team, unit, "b", base)
    for hours in (30, 20, 10):
        caught(a, base - timedelta(hours=hours))
    caught(b, base - timedelta(hours=5))
    refresh(team, [unit], base - timedelta(days=5))
    assert counts(release) == {"Unit": (2, "measured")}


def test_the_window_runs_from_the_previous_release_exclusive_to_this_one_inclusive(
    team, unit, base
):
    first = release_create(team=team, version="1.0", released_at=base)
    second = release_create(team=team, version="1.1", released_at=base + timedelta(days=2))
    at_first = tracked(team, unit, "at-first", base)
    caught(at_first, base)  # at 1.0's released_at: 1.0's, not 1.1's
    at_second = tracked(team, unit, "at-second", base)
    caught(at_second, base + timedelta(days=2))  # at 1.1's released_at: 1.1's
    after = tracked(team, unit, "after", base)
    caught(after, base + timedelta(days=2, seconds=1))  # after the last release: nobody's yet

    refresh(team, [unit], base - timedelta(days=30))

    assert counts(first) == {"Unit": (1, "measured")}
    assert counts(second) == {"Unit": (1, "measured")}


def test_a_catch_that_named_a_release_counts_for_that_release_only(team, unit, base):
    old = release_create(team=team, version="4.0", released_at=base)
    new = release_create(team=team, version="4.1", released_at=base + timedelta(days=3))
    test = tracked(team, unit, "named", base)
    # Fixed in 4.1's window, but the run said it built 4.0 (a hotfix branch, say).
    caught(test, base + timedelta(days=1), release_version="4.0")
    other = tracked(team, unit, "unnamed", base)
    caught(other, base + timedelta(days=1))

    refresh(team, [unit], base + timedelta(days=1))

    assert counts(old) == {"Unit": (1, "measured")}
    assert counts(new) == {"Unit": (1, "measured")}


def test_named_and_unnamed_catches_of_one_test_count_once(team, unit, base):
    release = release_create(team=team, version="5.0", released_at=base)
    test = tracked(team, unit, "both", base)
    caught(test, base - timedelta(hours=3), release_version="5.0")
    caught(test, base - timedelta(hours=1))
    refresh(team, [unit], base - timedelta(days=1))
    assert counts(release) == {"Unit": (1, "measured")}


def test_a_catch_naming_a_release_not_recorded_yet_counts_once_it_is(team, unit, base):
    test = tracked(team, unit, "early", base)
    caught(test, base - timedelta(days=20), release_version="6.0-rc")
    refresh(team, [unit], base - timedelta(days=20))
    assert not StageCatch.objects.exists()

    release = release_create(team=team, version="6.0-rc", released_at=base)

    assert counts(release) == {"Unit": (1, "measured")}


# --- Zero and unknown ---------------------------------------------------------------------


def test_a_stage_that_ran_and_caught_nothing_caught_zero_one_without_runs_is_unknown(
    team, unit, integration, base
):
    release = release_create(team=team, version="7.0", released_at=base)
    uploaded(team, unit, base - timedelta(hours=4))  # Unit ran in the window, no catch
    uploaded(team, integration, base + timedelta(hours=1))  # after the release: not its run
    uploaded(team, integration, base - timedelta(hours=1), status="queued")  # not processed

    refresh(team, [unit, integration], base - timedelta(days=1))

    assert counts(release) == {"Unit": (0, "measured")}


def test_a_run_that_named_the_release_makes_its_zero_measured(team, unit, base):
    release = release_create(team=team, version="7.1", released_at=base)
    uploaded(team, unit, base + timedelta(hours=2), release_version="7.1")
    refresh(team, [unit], base + timedelta(hours=2))
    assert counts(release) == {"Unit": (0, "measured")}


def test_a_measured_count_whose_catches_are_gone_becomes_unknown_again(team, unit, base):
    release = release_create(team=team, version="7.2", released_at=base)
    test = tracked(team, unit, "gone", base)
    caught(test, base - timedelta(hours=1))
    refresh(team, [unit], base - timedelta(days=1))
    assert counts(release) == {"Unit": (1, "measured")}

    test.delete()  # and its catches
    refresh(team, [unit], base - timedelta(days=1))

    assert counts(release) == {}


# --- Typed and measured -------------------------------------------------------------------


def test_a_typed_count_is_never_overwritten(team, unit, base):
    release = release_create(team=team, version="8.0", released_at=base)
    stage_catches_report(release=release, counts={unit: 40})
    caught(tracked(team, unit, "t", base), base - timedelta(hours=1))

    refresh(team, [unit], base - timedelta(days=1))

    assert counts(release) == {"Unit": (40, "typed")}


def test_typing_over_a_measured_count_makes_it_typed(team, unit, base):
    release = release_create(team=team, version="8.1", released_at=base)
    caught(tracked(team, unit, "t", base), base - timedelta(hours=1))
    refresh(team, [unit], base - timedelta(days=1))

    stage_catches_report(release=release, counts={unit: 3})

    assert counts(release) == {"Unit": (3, "typed")}


def test_clearing_a_typed_count_gives_the_stage_back_to_the_measured_one(
    team, unit, integration, base
):
    release = release_create(team=team, version="8.2", released_at=base)
    caught(tracked(team, unit, "t", base), base - timedelta(hours=1))
    stage_catches_report(release=release, counts={unit: 40, integration: 2})
    refresh(team, [unit], base - timedelta(days=1))
    assert counts(release) == {"Unit": (40, "typed"), "Integration": (2, "typed")}

    release_catches_set(release=release, counts={unit: None, integration: None})

    # Unit has a measured count; Integration has none (no upload): unknown, not zero.
    assert counts(release) == {"Unit": (1, "measured")}


def test_clearing_keeps_measured_rows(team, unit, base):
    release = release_create(team=team, version="8.3", released_at=base)
    caught(tracked(team, unit, "t", base), base - timedelta(hours=1))
    refresh(team, [unit], base - timedelta(days=1))
    assert stage_catches_typed_clear(release=release, stage_ids=[unit.pk]) == 0
    assert counts(release) == {"Unit": (1, "measured")}


# --- Releases created and moved -----------------------------------------------------------


def test_a_release_created_after_its_catches_gets_its_count_and_its_successor_recounts(
    team, unit, base
):
    later = release_create(team=team, version="9.2", released_at=base + timedelta(days=4))
    early, late = tracked(team, unit, "early", base), tracked(team, unit, "late", base)
    caught(early, base - timedelta(days=1))
    caught(late, base + timedelta(days=1))
    refresh(team, [unit], base - timedelta(days=30))
    assert counts(later) == {"Unit": (2, "measured")}

    between = release_create(team=team, version="9.1", released_at=base)

    assert counts(between) == {"Unit": (1, "measured")}
    assert counts(later) == {"Unit": (1, "measured")}


def test_moving_a_release_recounts_it_and_both_old_and_new_neighbours(team, unit, base):
    a = release_create(team=team, version="10.0", released_at=base)
    b = release_create(team=team, version="10.1", released_at=base + timedelta(days=2))
    c = release_create(team=team, version="10.2", released_at=base + timedelta(days=4))
    for day in (1, 3):
        caught(tracked(team, unit, f"day{day}", base), base + timedelta(days=day))
    uploaded(team, unit, base - timedelta(hours=1))
    refresh(team, [unit], base - timedelta(days=30))
    assert (counts(a), counts(b), counts(c)) == (
        {"Unit": (0, "measured")},
        {"Unit": (1, "measured")},
        {"Unit": (1, "measured")},
    )
    caught(tracked(team, unit, "day1.5", base), base + timedelta(days=1, hours=12))

    # 10.0 moves to after day 1's catch: it takes that catch from 10.1 (its new successor),
    # and the upload before base goes with it.
    release_move(release=a, released_at=base + timedelta(days=1, hours=1))

    assert counts(a) == {"Unit": (1, "measured")}  # day 1's, and the upload: 0 no more
    assert counts(b) == {"Unit": (1, "measured")}  # (day 1 + 1 h, day 2]: day 1.5's
    assert counts(c) == {"Unit": (1, "measured")}

    # 10.1 moves after 10.2: 10.2 (its old successor) now runs from 10.0's time.
    release_move(release=b, released_at=base + timedelta(days=5))

    assert counts(c) == {"Unit": (2, "measured")}  # day 1.5's and day 3's
    assert counts(b) == {}  # (day 4, day 5]: nothing ran: unknown


def test_a_release_in_the_future_cannot_be_moved_there(team, base):
    release = release_create(team=team, version="11.0", released_at=base)
    with pytest.raises(Exception, match="future"):
        release_move(release=release, released_at=timezone.now() + timedelta(days=1))


# --- Efficiency ---------------------------------------------------------------------------


def test_a_refresh_touches_only_the_releases_from_fixed_since_on(team, unit, base):
    old = release_create(team=team, version="12.0", released_at=base - timedelta(days=10))
    caught(tracked(team, unit, "old", base), base - timedelta(days=11))
    recent = release_create(team=team, version="12.1", released_at=base)
    caught(tracked(team, unit, "recent", base), base - timedelta(days=1))
    StageCatch.objects.all().delete()

    with CaptureQueriesContext(connection) as queries:
        refresh(team, [unit], base - timedelta(days=2))

    assert counts(old) == {}  # not touched
    assert counts(recent) == {"Unit": (1, "measured")}
    assert len(queries) <= 10, [q["sql"] for q in queries]


def test_the_count_is_the_same_whatever_the_number_of_tests_in_few_queries(team, unit, base):
    release = release_create(team=team, version="13.0", released_at=base)
    for i in range(30):
        caught(tracked(team, unit, f"t{i}", base), base - timedelta(hours=i + 1))
    with CaptureQueriesContext(connection) as queries:
        refresh(team, [unit], base - timedelta(days=3))
    assert counts(release) == {"Unit": (30, "measured")}
    assert len(queries) <= 10


def test_other_teams_catches_do_not_count(team, other_team, unit, base):
    release = release_create(team=team, version="14.0", released_at=base)
    theirs = other_team.stages.order_by("position").first()
    caught(tracked(other_team, theirs, "x", base), base - timedelta(hours=1))
    refresh(team, [unit], base - timedelta(days=1))
    assert counts(release) == {}


def test_measured_counts_are_refused_across_teams(team, other_team, unit, base):
    from escapes.services import stage_catches_measured_set

    release = release_create(team=team, version="15.0", released_at=base)
    theirs = other_team.stages.order_by("position").first()
    with pytest.raises(ValueError, match="another team's stage"):
        stage_catches_measured_set(team_id=team.pk, counts={(release.pk, theirs.pk): 1})
    with pytest.raises(ValueError, match="another team's release"):
        stage_catches_measured_set(team_id=other_team.pk, counts={(release.pk, theirs.pk): 1})
    assert not StageCatch.objects.exists()


def test_a_release_time_corrected_in_the_django_admin_recounts_like_release_move(
    team, unit, base, django_capture_on_commit_callbacks
):
    from django.contrib.auth.models import User
    from django.test import Client

    a = release_create(team=team, version="11.0", released_at=base)
    b = release_create(team=team, version="11.1", released_at=base + timedelta(days=2))
    caught(tracked(team, unit, "day1", base), base + timedelta(days=1))
    uploaded(team, unit, base - timedelta(hours=1))
    refresh(team, [unit], base - timedelta(days=30))
    assert (counts(a), counts(b)) == ({"Unit": (0, "measured")}, {"Unit": (1, "measured")})

    staff = User.objects.create_superuser("ops", "ops@example.com", "x")
    client = Client()
    client.force_login(staff)
    moved = timezone.localtime(base + timedelta(days=1, hours=1))
    with django_capture_on_commit_callbacks(execute=True):
        answer = client.post(
            f"/admin/escapes/release/{a.pk}/change/",
            {
                "team": team.pk,
                "version": "11.0",
                "released_at_0": moved.strftime("%Y-%m-%d"),
                "released_at_1": moved.strftime("%H:%M:%S"),
            },
        )
    assert answer.status_code == 302, answer.content.decode()[:2000]
    a.refresh_from_db()
    assert a.released_at == base + timedelta(days=1, hours=1)
    assert counts(a) == {"Unit": (1, "measured")}, "the catch of day 1 moved to 11.0"
    assert counts(b) == {}, "nothing ran in (day 1 + 1 h, day 2]: unknown"
