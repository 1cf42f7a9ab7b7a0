"""The worked example of docs/metrics.md, "Test evidence: runs, retries, flips, catches,
quarantine", replayed upload by upload: each row's "what it does" is asserted after it.

One Integration test; the team's releases 2.3 (Mon 08:00) and 2.4 (Wed 12:00).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.db.models import Sum
from django.utils import timezone

from escapes.models import Release
from evidence import processing
from evidence.models import CommitResult, DailyResult, MeasuredCatch, TrackedTest
from tests.evidence.helpers import send

TEST = ("shop.CheckoutIT", "pays_with_card")


def monday() -> datetime:
    """A Monday 00:00 UTC two to three weeks ago (the suite runs on any day)."""
    today = timezone.now().astimezone(UTC)
    return (today - timedelta(days=14 + today.weekday())).replace(
        hour=0, minute=0, second=0, microsecond=0
    )


@pytest.fixture
def refreshed(monkeypatch) -> list[tuple[int, set[int], datetime]]:
    calls: list[tuple[int, set[int], datetime]] = []
    monkeypatch.setattr(
        processing,
        "measured_catches_refresh",
        lambda team_id, stage_ids, fixed_since: calls.append((team_id, stage_ids, fixed_since)),
    )
    return calls


def caught_before_release(stage_id: int, release: Release, previous: Release) -> int:
    """docs/metrics.md, "Caught before release", for runs that named no release: distinct
    tests of the stage with a catch fixed after the previous release, at or before this one."""
    return (
        MeasuredCatch.objects.filter(
            stage_id=stage_id,
            release_version="",
            fixed_at__gt=previous.released_at,
            fixed_at__lte=release.released_at,
        )
        .values("test")
        .distinct()
        .count()
    )


def test_the_worked_example(team, stages, refreshed, django_capture_on_commit_callbacks):
    integration = next(s for s in stages if s.name == "Integration")
    mon = monday()
    tue, wed = mon + timedelta(days=1), mon + timedelta(days=2)
    r23 = Release.objects.create(team=team, version="2.3", released_at=mon.replace(hour=8))
    r24 = Release.objects.create(team=team, version="2.4", released_at=wed.replace(hour=12))

    def run(commit: str, at: datetime, *attempts: str) -> TrackedTest:
        with django_capture_on_commit_callbacks(execute=True):
            send(team, integration, [(*TEST, a) for a in attempts], commit=commit, at=at)
        return TrackedTest.objects.get(stage=integration)

    def flipped(commit: str) -> bool:
        return CommitResult.objects.get(commit=commit).outcomes & 3 == 3

    # 1. a1, Mon 10:00, pass: last green Mon 10:00.
    test = run("a1", mon.replace(hour=10), "passed")
    assert test.last_outcome == "passed"
    assert test.last_passed_at == mon.replace(hour=10)
    assert test.failing_since is None

    # 2. b2, Mon 14:00, fail: the failure opens at b2.
    test = run("b2", mon.replace(hour=14), "failed")
    assert (test.failing_commit, test.failing_since) == ("b2", mon.replace(hour=14))
    assert test.last_passed_at == mon.replace(hour=10)

    # 3. b2 re-run, Mon 14:30, pass: a flip on b2; the failure closes, no catch.
    test = run("b2", mon.replace(hour=14, minute=30), "passed")
    assert flipped("b2")
    assert test.flips == 1
    assert test.failing_since is None and test.failing_commit == ""
    assert not MeasuredCatch.objects.exists()
    assert test.last_passed_at == mon.replace(hour=14, minute=30)

    # 4. c3, Tue 09:00, fail: the failure opens at c3.
    test = run("c3", tue.replace(hour=9), "failed")
    assert (test.failing_commit, test.failing_since) == ("c3", tue.replace(hour=9))

    # 5. d4, Tue 11:00, fail: still the failure of c3.
    test = run("d4", tue.replace(hour=11), "failed")
    assert (test.failing_commit, test.failing_since) == ("c3", tue.replace(hour=9))
    assert not MeasuredCatch.objects.exists()

    # 6. e5, Tue 16:00, pass: a catch, failed c3 Tue 09:00, fixed e5 Tue 16:00.
    test = run("e5", tue.replace(hour=16), "passed")
    catch = MeasuredCatch.objects.get()
    assert (catch.failed_commit, catch.failed_at) == ("c3", tue.replace(hour=9))
    assert (catch.fixed_commit, catch.fixed_at) == ("e5", tue.replace(hour=16))
    assert (catch.stage_id, catch.test_id) == (integration.pk, test.pk)
    assert test.failing_since is None
    # Every upload recounts from its own time (a stage that ran caught 0, not unknown).
    assert refreshed[-1] == (team.pk, {integration.pk}, tue.replace(hour=16))
    assert len(refreshed) == 6

    # 7. f6, Tue 17:00, fail then pass: passed, retried; a retry and a flip on f6, no failure.
    test = run("f6", tue.replace(hour=17), "failed", "passed")
    assert test.last_outcome == "passed"
    assert test.retries == 1
    assert flipped("f6")
    assert test.flips == 2
    assert test.failing_since is None
    assert MeasuredCatch.objects.count() == 1

    # 8. g7, Wed 09:00, fail: the failure opens at g7.
    test = run("g7", wed.replace(hour=9), "failed")
    assert (test.failing_commit, test.failing_since) == ("g7", wed.replace(hour=9))

    # 9. h8, Wed 10:00, pass: a catch, g7 → h8.
    test = run("h8", wed.replace(hour=10), "passed")
    second = MeasuredCatch.objects.latest("fixed_at")
    assert (second.failed_commit, second.fixed_commit) == ("g7", "h8")
    assert MeasuredCatch.objects.count() == 2
    assert len(refreshed) == 9
    assert refreshed[-1] == (team.pk, {integration.pk}, wed.replace(hour=10))

    # For release 2.4 the stage caught 1: the same test, fixed twice before the release.
    assert caught_before_release(integration.pk, r24, r23) == 1

    # It flipped on 2 commits (b2, f6) of the 8 it passed or failed on: flakiness 25 %.
    days = DailyResult.objects.filter(test=test).aggregate(flips=Sum("flips"), n=Sum("commits"))
    assert (days["flips"], days["n"]) == (2, 8)
    assert days["flips"] / days["n"] == 0.25
    assert (test.runs, test.failures, test.retries, test.flips) == (9, 4, 1, 2)
    # The flips counted on the UTC day the second outcome came: Monday (b2), Tuesday (f6).
    by_day = dict(DailyResult.objects.filter(test=test).values_list("day", "flips"))
    assert by_day == {mon.date(): 1, tue.date(): 1, wed.date(): 0}
    assert test.last_passed_at == wed.replace(hour=10)
