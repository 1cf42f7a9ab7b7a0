"""The worker's fold (evidence/processing.py): each definition of docs/metrics.md, "Test
evidence", the order of late uploads, the all-or-nothing transaction, idempotency, retention
and the speed on 20,000 cases."""

from __future__ import annotations

import gzip
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.conf import settings
from django.db import connection
from django.db.models import Sum
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from evidence import processing, retention, services
from evidence.models import (
    COMMIT_KEEP_DAYS,
    CommitResult,
    DailyResult,
    MeasuredCatch,
    ResultFile,
    ResultUpload,
    TrackedTest,
)
from evidence.processing import upload_process
from tests.evidence.factories import junit_xml, many_cases
from tests.evidence.helpers import send, tracked

A = ("shop.CartTest", "adds_item")
B = ("shop.CartTest", "pays")


@pytest.fixture
def stage(stages):
    return next(s for s in stages if s.name == "Integration")


@pytest.fixture
def base() -> datetime:
    """Two days ago, 08:00 UTC: every run of a test is a few hours after it."""
    now = timezone.now().astimezone(UTC)
    return (now - timedelta(days=2)).replace(hour=8, minute=0, second=0, microsecond=0)


@pytest.fixture(autouse=True)
def refreshed(monkeypatch) -> list[tuple[int, set[int], datetime]]:
    calls: list[tuple[int, set[int], datetime]] = []
    for module in (processing, retention):
        monkeypatch.setattr(
            module,
            "measured_catches_refresh",
            lambda team_id, stage_ids, since: calls.append((team_id, stage_ids, since)),
        )
    return calls


@pytest.fixture(autouse=True)
def no_broker(monkeypatch) -> list[int]:
    queued: list[int] = []

    class Task:
        def delay(self, pk: int) -> None:
            queued.append(pk)

    monkeypatch.setattr(services, "registered_task", lambda name: Task())
    return queued


def h(base: datetime, hours: float) -> datetime:
    return base + timedelta(hours=hours)


# --- Run of a test.


def test_an_uploads_cases_of_one_test_are_one_run_passed_if_any_attempt_passed(team, stage, base):
    upload = send(
        team,
        stage,
        [(*A, "failed"), (*A, "passed"), (*B, "failed"), (*B, ("skipped", "later"))],
        commit="c1",
        at=base,
    )
    assert (upload.status, upload.cases) == ("done", 4)
    assert (upload.passed, upload.failed, upload.skipped) == (1, 1, 0)
    a, b = tracked(stage, *A), tracked(stage, *B)
    assert (a.runs, a.last_outcome, a.retries) == (1, "passed", 1)
    assert (b.runs, b.last_outcome, b.retries, b.failures) == (1, "failed", 0, 1)
    assert a.first_run_at == a.last_run_at == base


def test_a_run_spans_the_uploads_files(team, stage, base):
    files = services.files_check(
        [
            ("first.xml", junit_xml([(*A, "failed")], timestamp=base)),
            ("rerun.xml", junit_xml([(*A, "passed")], timestamp=h(base, 1))),
        ]
    )
    upload, _ = services.upload_receive(
        team=team, stage=stage, meta=services.RunMeta(commit="c1"), files=files, by=None
    )
    assert upload.ran_at == base, "the earliest suite timestamp"
    upload_process(upload.pk)
    test = tracked(stage, *A)
    assert (test.runs, test.retries, test.flips, test.last_outcome) == (1, 1, 1, "passed")


def test_a_run_without_a_timestamp_is_at_its_receipt_and_never_in_the_future(team, stage):
    before = timezone.now()
    files = services.files_check([("r.xml", junit_xml([(*A, "passed")]))])
    upload, _ = services.upload_receive(
        team=team, stage=stage, meta=services.RunMeta(commit="c1"), files=files, by=None
    )
    assert before <= upload.ran_at <= timezone.now()
    future = timezone.now() + timedelta(days=3)
    files = services.files_check([("r.xml", junit_xml([(*B, "passed")], timestamp=future))])
    later, _ = services.upload_receive(
        team=team, stage=stage, meta=services.RunMeta(commit="c2"), files=files, by=None
    )
    assert later.ran_at <= timezone.now()


# --- Retried.


def test_surefires_flaky_failure_is_a_retry_counted_once_per_upload(team, stage, base):
    send(team, stage, [(*A, "flaky"), (*A, "failed"), (*A, "passed")], commit="c1", at=base)
    test = tracked(stage, *A)
    assert (test.runs, test.retries, test.last_outcome) == (1, 1, "passed")
    day = DailyResult.objects.get(test=test)
    assert (day.runs, day.retries, day.flips, day.passes) == (1, 1, 1, 1)


def test_a_pass_then_a_failure_is_not_a_retry(team, stage, base):
    send(team, stage, [(*A, "passed"), (*A, "failed")], commit="c1", at=base)
    test = tracked(stage, *A)
    assert (test.retries, test.last_outcome) == (0, "passed")


# --- Flip.


def test_a_flip_across_runs_counts_once_per_commit_on_the_day_of_the_second_outcome(
    team, stage, base
):
    send(team, stage, [(*A, "failed")], commit="c1", at=base)
    next_day = h(base, 24)
    send(team, stage, [(*A, "passed")], commit="c1", at=next_day)
    send(team, stage, [(*A, "failed")], commit="c1", at=h(next_day, 1))
    send(team, stage, [(*A, "passed")], commit="c1", at=h(next_day, 2))
    test = tracked(stage, *A)
    assert test.flips == 1
    flips = dict(DailyResult.objects.filter(test=test).values_list("day", "flips"))
    assert flips == {base.date(): 0, next_day.date(): 1}
    assert CommitResult.objects.get(test=test, commit="c1").outcomes == 3


def test_a_skip_and_a_pass_on_a_commit_is_no_flip(team, stage, base):
    send(team, stage, [(*A, "skipped")], commit="c1", at=base)
    send(team, stage, [(*A, "passed")], commit="c1", at=h(base, 1))
    test = tracked(stage, *A)
    assert test.flips == 0
    assert CommitResult.objects.get(test=test).outcomes == 1 | 4


def test_a_re_run_after_the_commits_outcomes_were_pruned_is_no_flip(team, stage):
    old = timezone.now() - timedelta(days=31)
    send(team, stage, [(*A, "failed")], commit="c1", at=old)
    retention.prune()
    assert not CommitResult.objects.exists()
    send(team, stage, [(*A, "passed")], commit="c1", at=timezone.now() - timedelta(hours=1))
    assert tracked(stage, *A).flips == 0


def test_flakiness_counts_the_commits_it_passed_or_failed_on(team, stage, base):
    send(team, stage, [(*A, "passed")], commit="c1", at=base)
    send(team, stage, [(*A, "skipped")], commit="c2", at=h(base, 1))  # not a commit of it
    send(team, stage, [(*A, "failed"), (*A, "passed")], commit="c3", at=h(base, 2))
    send(team, stage, [(*A, "passed")], commit="c3", at=h(base, 3))  # the same commit again
    days = DailyResult.objects.aggregate(flips=Sum("flips"), commits=Sum("commits"))
    assert (days["flips"], days["commits"]) == (1, 2)


# --- Last green.


def test_last_green_is_the_latest_passed_run(team, stage, base):
    send(team, stage, [(*A, "passed")], commit="c1", at=base)
    send(team, stage, [(*A, "failed")], commit="c2", at=h(base, 1))
    send(team, stage, [(*A, "skipped")], commit="c3", at=h(base, 2))
    test = tracked(stage, *A)
    assert test.last_passed_at == base
    assert (test.last_outcome, test.last_run_at) == ("skipped", h(base, 2))


# --- Caught (measured).


def test_failures_on_later_commits_belong_to_the_catch_of_the_first(team, stage, base):
    send(team, stage, [(*A, "passed")], commit="c0", at=base)
    send(team, stage, [(*A, "failed")], commit="c1", at=h(base, 1))
    send(team, stage, [(*A, "failed")], commit="c2", at=h(base, 2))
    send(team, stage, [(*A, "skipped")], commit="c3", at=h(base, 3))  # neither opens nor closes
    assert tracked(stage, *A).failing_commit == "c1"
    send(team, stage, [(*A, "passed")], commit="c4", at=h(base, 4), release="3.1")
    catch = MeasuredCatch.objects.get()
    assert (catch.failed_commit, catch.failed_at) == ("c1", h(base, 1))
    assert (catch.fixed_commit, catch.fixed_at, catch.release_version) == ("c4", h(base, 4), "3.1")


def test_a_catch_calls_the_measured_count_refresh_on_commit(
    team, stage, base, refreshed, django_capture_on_commit_callbacks
):
    send(team, stage, [(*A, "failed")], commit="c1", at=base)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        send(team, stage, [(*A, "passed")], commit="c2", at=h(base, 1))
    assert refreshed == [], "not before the transaction commits"
    for callback in callbacks:
        callback()
    assert refreshed == [(team.pk, {stage.pk}, h(base, 1))]


def test_a_run_without_a_catch_refreshes_from_its_own_time(
    team, stage, base, refreshed, django_capture_on_commit_callbacks
):
    """A stage that ran in a release's window and caught nothing has a measured 0 there."""
    with django_capture_on_commit_callbacks(execute=True):
        send(team, stage, [(*A, "failed")], commit="c1", at=base)
        send(team, stage, [(*A, "passed")], commit="c1", at=h(base, 1))
    assert not MeasuredCatch.objects.exists()
    assert refreshed == [(team.pk, {stage.pk}, base), (team.pk, {stage.pk}, h(base, 1))]


def test_a_retried_pass_on_another_commit_closes_the_failure_without_a_catch(team, stage, base):
    send(team, stage, [(*A, "failed")], commit="c1", at=base)
    send(team, stage, [(*A, "failed"), (*A, "passed")], commit="c2", at=h(base, 1))
    test = tracked(stage, *A)
    assert test.failing_since is None
    assert not MeasuredCatch.objects.exists()


def test_a_re_run_passing_a_later_failing_commit_is_a_flip_not_a_fix(team, stage, base):
    # c1 opens the failure, c2 fails too; a re-run of c2 passes: c2 flipped, nothing fixed.
    send(team, stage, [(*A, "failed")], commit="c1", at=base)
    send(team, stage, [(*A, "failed")], commit="c2", at=h(base, 1))
    send(team, stage, [(*A, "passed")], commit="c2", at=h(base, 2))
    test = tracked(stage, *A)
    assert (test.failing_since, test.flips) == (None, 1)
    assert not MeasuredCatch.objects.exists()


def test_a_failure_on_a_commit_it_passed_on_opens_no_failure(team, stage, base):
    send(team, stage, [(*A, "passed")], commit="c1", at=base)
    send(team, stage, [(*A, "failed")], commit="c1", at=h(base, 1))  # a re-run: a flip
    test = tracked(stage, *A)
    assert (test.failing_since, test.flips, test.last_outcome) == (None, 1, "failed")
    send(team, stage, [(*A, "passed")], commit="c2", at=h(base, 2))
    assert not MeasuredCatch.objects.exists()


def test_a_pass_with_no_open_failure_catches_nothing(team, stage, base):
    send(team, stage, [(*A, "passed")], commit="c1", at=base)
    send(team, stage, [(*A, "passed")], commit="c2", at=h(base, 1))
    assert not MeasuredCatch.objects.exists()


def test_tests_are_per_stage(team, stages, base):
    unit, integration = stages[0], stages[1]
    send(team, unit, [(*A, "failed")], commit="c1", at=base)
    send(team, integration, [(*A, "passed")], commit="c2", at=h(base, 1))
    assert TrackedTest.objects.count() == 2
    assert tracked(unit, *A).failing_commit == "c1"
    assert not MeasuredCatch.objects.exists()


# --- Quarantined by the code.


def test_skips_with_a_message_quarantine_since_the_first_until_a_pass(team, stage, base):
    send(team, stage, [(*A, ("skipped", "flaky on CI, JIRA-12"))], commit="c1", at=base)
    send(team, stage, [(*A, ("skipped", "flaky on CI, JIRA-13"))], commit="c2", at=h(base, 1))
    test = tracked(stage, *A)
    assert (test.skipped_since, test.skip_reason) == (base, "flaky on CI, JIRA-13")
    assert (test.skips, test.runs) == (2, 2)
    send(team, stage, [(*A, "passed")], commit="c3", at=h(base, 2))
    test = tracked(stage, *A)
    assert (test.skipped_since, test.skip_reason) == (None, "")


def test_a_failed_run_or_a_skip_without_a_message_clears_the_quarantine(team, stage, base):
    send(team, stage, [(*A, ("skipped", "why")), (*B, ("skipped", "why"))], commit="c1", at=base)
    send(team, stage, [(*A, "failed"), (*B, "skipped")], commit="c2", at=h(base, 1))
    assert tracked(stage, *A).skipped_since is None
    assert tracked(stage, *B).skipped_since is None


def test_a_skip_without_a_message_is_no_quarantine(team, stage, base):
    send(team, stage, [(*A, "skipped")], commit="c1", at=base)
    assert tracked(stage, *A).skipped_since is None


# --- Order: a late upload of an older run.


def test_an_older_run_arriving_late_counts_but_moves_no_state_back(team, stage, base):
    send(team, stage, [(*A, "passed")], commit="c2", at=h(base, 5), component="cart")
    send(team, stage, [(*A, "failed")], commit="c1", at=h(base, 1), component="old")
    test = tracked(stage, *A)
    assert (test.last_run_at, test.last_outcome, test.component) == (h(base, 5), "passed", "cart")
    assert test.failing_since is None, "the latest run passed: no failure is open"
    assert (test.runs, test.failures) == (2, 1)
    assert test.first_run_at == h(base, 1)
    assert test.last_passed_at == h(base, 5)
    # A late pass moves last green only forward.
    send(team, stage, [(*A, "passed")], commit="c0", at=base)
    assert tracked(stage, *A).last_passed_at == h(base, 5)
    # A late re-run of a commit still counts its flip.
    send(team, stage, [(*A, "passed")], commit="c1", at=h(base, 2))
    assert tracked(stage, *A).flips == 1


# --- The upload's life.


def test_processing_sets_the_counts_and_deletes_the_files(team, stage, base):
    upload = send(team, stage, [(*A, "passed"), (*B, "failed")], commit="c1", at=base)
    assert (upload.status, upload.passed, upload.failed, upload.error) == ("done", 1, 1, "")
    assert upload.processed_at is not None
    assert not ResultFile.objects.exists()


def test_running_the_task_twice_folds_once(team, stage, base):
    upload = send(team, stage, [(*A, "passed")], commit="c1", at=base)
    assert upload_process(upload.pk) == "skipped"
    assert upload_process(upload.pk + 1000) == "skipped"
    assert tracked(stage, *A).runs == 1


def test_a_file_the_worker_cannot_read_fails_the_upload_and_keeps_nothing(team, stage, base):
    upload = send(team, stage, [(*A, "passed")], commit="c1", at=base, process=False)
    ResultFile.objects.create(upload=upload, name="cut.xml.gz", data=gzip.compress(b"<a>")[:12])
    assert upload_process(upload.pk) == "failed"
    upload.refresh_from_db()
    assert upload.status == "failed"
    assert "cut.xml.gz" in upload.error
    assert upload.processed_at is not None
    assert not TrackedTest.objects.exists()
    assert not ResultFile.objects.exists()


def test_an_error_mid_fold_rolls_everything_back(team, stage, base, monkeypatch):
    send(team, stage, [(*A, "failed")], commit="c1", at=base)
    upload = send(
        team, stage, [(*A, "passed"), (*B, "passed")], commit="c2", at=h(base, 1), process=False
    )

    def broken(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("the database went away")

    monkeypatch.setattr(MeasuredCatch.objects, "bulk_create", broken)
    with pytest.raises(RuntimeError):
        upload_process(upload.pk)
    upload.refresh_from_db()
    assert upload.status == "queued"
    assert ResultFile.objects.filter(upload=upload).exists()
    assert TrackedTest.objects.count() == 1
    assert tracked(stage, *A).failing_commit == "c1"


# --- Retention and the sweep.


def test_prune_drops_rows_past_their_keep_and_keeps_the_rest(team, stage):
    now = timezone.now()
    old = send(team, stage, [(*A, "passed")], commit="c1", at=now - timedelta(days=401))
    ResultUpload.objects.filter(pk=old.pk).update(received_at=now - timedelta(days=91))
    send(team, stage, [(*A, "passed")], commit="c2", at=now - timedelta(days=29))
    counts = retention.prune()
    assert counts == {"commit_results": 1, "daily_results": 1, "uploads": 1}
    assert list(CommitResult.objects.values_list("commit", flat=True)) == ["c2"]
    assert DailyResult.objects.count() == 1
    assert ResultUpload.objects.count() == 1
    assert tracked(stage, *A).runs == 2, "the test's all-time counters stay"


def test_the_sweep_queues_uploads_whose_task_was_lost(team, stage, base, no_broker):
    stuck = send(team, stage, [(*A, "passed")], commit="c1", at=base, process=False)
    fresh = send(team, stage, [(*A, "passed")], commit="c2", at=base, process=False)
    ResultUpload.objects.filter(pk=stuck.pk).update(
        received_at=timezone.now() - timedelta(minutes=11)
    )
    assert retention.sweep() == 1
    assert no_broker == [stuck.pk]
    assert fresh.pk not in no_broker


def test_the_sweep_refuses_an_upload_no_try_could_process_and_it_can_be_sent_again(
    team, stage, base, no_broker
):
    given_up = send(team, stage, [(*A, "passed")], commit="c1", at=base, process=False)
    ResultUpload.objects.filter(pk=given_up.pk).update(
        received_at=timezone.now() - timedelta(hours=7)
    )
    assert retention.sweep() == 0, "not queued again"
    given_up.refresh_from_db()
    assert given_up.status == "failed"
    assert given_up.error.startswith("Not processed within 6 hours")
    assert not ResultFile.objects.filter(upload=given_up).exists()
    # The same run sent again is a new try, not the refused upload as a duplicate.
    again = send(team, stage, [(*A, "passed")], commit="c1", at=base, run_url=given_up.run_url)
    assert again.pk != given_up.pk and again.status == "done"
    assert not ResultUpload.objects.filter(pk=given_up.pk).exists()
    assert tracked(stage, *A).runs == 1


def test_a_done_upload_sent_again_is_still_a_duplicate(team, stage, base):
    first = send(team, stage, [(*A, "passed")], commit="c1", at=base)
    files = services.files_check([("results.xml", junit_xml([(*A, "passed")], timestamp=base))])
    meta = services.RunMeta(commit="c1", run_url=first.run_url)
    upload, created = services.upload_receive(
        team=team, stage=stage, meta=meta, files=files, by=None
    )
    assert (upload.pk, created) == (first.pk, False)


def test_the_daily_recount_covers_the_teams_that_uploaded_lately(
    team, stage, base, refreshed, other_team
):
    send(team, stage, [(*A, "passed")], commit="c1", at=base)
    refreshed.clear()
    assert retention.recount() == 1
    ((team_id, stages, since),) = refreshed
    assert (team_id, stages) == (team.pk, {stage.pk})
    assert timezone.now() - since >= timedelta(days=COMMIT_KEEP_DAYS - 1)


def test_the_beat_schedule_runs_the_prune_and_the_sweep(db):
    tasks = {entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values()}
    assert {"evidence.prune", "evidence.sweep", "evidence.recount"} <= tasks
    from config.celery import registered_task

    for name in ("evidence.prune", "evidence.sweep", "evidence.recount", "evidence.process_upload"):
        assert registered_task(name).name == name


# --- Speed: 20,000 cases.


def test_20000_cases_fold_in_a_few_queries(team, stage, base):
    """20,000 cases, new and then again, fold in with a bounded number of queries. How long it
    takes is measured by `make bench-ci` (bench/ci_results.py, BENCHMARKS.md), not here: a
    test that checks time fails when the machine is busy (12.8 s of wall time seen in CI on
    PostgreSQL beside the browser tests). The times are printed for whoever runs it."""
    cases = many_cases(20_000)
    upload = send(team, stage, cases, commit="c1", at=base, process=False)
    first_wall, first_cpu = _timed(upload.pk)
    # The second run: every test exists, some fail, some flip (a re-run of the commit).
    again = many_cases(20_000, failing_every=10)
    upload = send(team, stage, again, commit="c1", at=h(base, 1), process=False)
    with CaptureQueriesContext(connection) as queries:
        second_wall, second_cpu = _timed(upload.pk)
    print(
        f"\n20,000 cases on {connection.vendor}: new tests {first_wall:.2f} s "
        f"(worker CPU {first_cpu:.2f} s), existing {second_wall:.2f} s "
        f"(CPU {second_cpu:.2f} s, {len(queries)} queries)"
    )
    assert TrackedTest.objects.count() == 20_000
    assert TrackedTest.objects.filter(flips=1).count() == 2_000
    assert DailyResult.objects.filter(failures=1).count() == 2_000
    assert len(queries) < 200


def _timed(upload_id: int) -> tuple[float, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    assert upload_process(upload_id) == "done"
    return time.perf_counter() - wall, time.process_time() - cpu
