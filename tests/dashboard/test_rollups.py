"""Rollups: kept by a task queued on commit, only where a change lands, fixed by the backstop,
and equal to what escapes/metrics.py computes from the raw escapes."""

import random
from datetime import date, datetime, timedelta
from typing import Any

import pytest
from django.db import transaction

from escapes.csv_import import csv_import
from escapes.models import Category, Escape, Release, Severity, StageCatch
from escapes.services import escape_classify, escape_create, escape_seal, escape_update
from insights import metrics
from insights.dashboard import Dashboard, DashboardQuery, Period, dashboard
from insights.models import EscapeRollup
from insights.rollup_blocks import rollups_cache_clear
from insights.rollups import rollups_recompute, rollups_recompute_all
from insights.tasks import rollup_full_task, rollup_recompute_task
from retros import services as retro_services
from retros.models import Phase, PreventativeAction, PushState, Retrospective
from tests.dashboard import HOUR, _fresh_cache, add, run_when_queued, utc  # noqa: F401

NOON = utc(2026, 11, 5, 12)


@pytest.fixture
def queued(monkeypatch) -> list[tuple[Any, ...]]:
    """What is queued for the rollups, instead of sending it to the broker."""
    calls: list[tuple[Any, ...]] = []
    monkeypatch.setattr(rollup_recompute_task, "delay", lambda *args: calls.append(args))
    return calls


@pytest.fixture
def worker(monkeypatch) -> list[tuple[Any, ...]]:
    """Runs each queued recompute at once, as a worker would after the commit."""
    return run_when_queued(monkeypatch, rollup_recompute_task)


def stamps(*teams) -> dict[tuple[str, date], datetime]:
    rows = EscapeRollup.objects.filter(team__in=teams).values_list(
        "team__slug", "month", "computed_at"
    )
    return {(slug, month): at for slug, month, at in rows}


def count(team, start: date, end: date) -> int:
    return dashboard(DashboardQuery(teams=(team,), start=start, end=end)).total.n


def test_a_change_recomputes_only_its_team_and_month(
    team, other_team, worker, django_capture_on_commit_callbacks
):
    changed = add(team, NOON)
    add(team, utc(2026, 10, 5, 12))
    add(other_team, NOON)
    rollup_full_task.run()
    before = stamps(team, other_team)
    assert set(before) == {
        ("checkout", date(2026, 10, 1)),
        ("checkout", date(2026, 11, 1)),
        ("search", date(2026, 11, 1)),
    }

    with django_capture_on_commit_callbacks(execute=True):
        escape_classify(escape=changed, category=Category.FLAKINESS, stage=None)

    assert worker == [(team.pk, ["2026-11-05"])]
    after = stamps(team, other_team)
    rewritten = {key for key in after if after[key] != before[key]}
    assert rewritten == {("checkout", date(2026, 11, 1))}
    result = dashboard(
        DashboardQuery(teams=(team,), start=date(2026, 11, 1), end=date(2026, 11, 30))
    )
    assert result.pareto_categories[0].key == Category.FLAKINESS


def test_nothing_is_queued_before_commit_nor_after_a_rollback(
    team, queued, django_capture_on_commit_callbacks
):
    escape = add(team, NOON)
    with django_capture_on_commit_callbacks() as callbacks:
        escape_update(escape=escape, data={"component": "payments"})
    assert queued == [], "queued only once the transaction commits"
    for callback in callbacks:
        callback()
    assert queued == [(team.pk, ["2026-11-05"])]

    queued.clear()
    with (
        django_capture_on_commit_callbacks(execute=True),
        pytest.raises(RuntimeError),
        transaction.atomic(),
    ):
        escape_update(escape=escape, data={"component": "search"})
        raise RuntimeError("the request failed after the update")
    assert queued == []


def test_an_edit_that_the_rollups_do_not_keep_queues_nothing(
    team, queued, django_capture_on_commit_callbacks
):
    escape = add(team, NOON)
    with django_capture_on_commit_callbacks(execute=True):
        escape_update(escape=escape, data={"title": "A better title"})
    assert queued == []


def test_moving_an_escape_to_another_month_updates_both(
    team, worker, django_capture_on_commit_callbacks
):
    escape = add(team, utc(2026, 10, 20, 12))
    add(team, utc(2026, 10, 21, 12))
    rollups_recompute_all()
    assert count(team, date(2026, 10, 1), date(2026, 10, 31)) == 2

    with django_capture_on_commit_callbacks(execute=True):
        escape_update(escape=escape, data={"detected_at": NOON})

    assert worker == [(team.pk, ["2026-10-20", "2026-11-05"])]
    assert count(team, date(2026, 10, 1), date(2026, 10, 31)) == 1
    assert count(team, date(2026, 11, 1), date(2026, 11, 30)) == 1


def test_a_month_left_empty_loses_its_rollup(team):
    escape = add(team, NOON)
    rollups_recompute_all()
    escape.delete()
    assert rollups_recompute(team_id=team.pk, days=[date(2026, 11, 5)]) == 0
    assert not EscapeRollup.objects.filter(team=team).exists()
    assert count(team, date(2026, 11, 1), date(2026, 11, 30)) == 0


def test_the_full_recompute_repairs_tampered_and_missing_rollups(team, other_team):
    for day in (3, 4):
        add(team, utc(2026, 10, day, 12))
    add(team, NOON)
    add(other_team, NOON)
    rollups_recompute_all()
    october = EscapeRollup.objects.get(team=team, month=date(2026, 10, 1))
    november = EscapeRollup.objects.get(team=team, month=date(2026, 11, 1))
    # October now holds November's single escape; the other team's rollup is lost.
    EscapeRollup.objects.filter(pk=october.pk).update(
        columns=november.columns, escapes=1, digest=november.digest
    )
    EscapeRollup.objects.filter(team=other_team).delete()
    assert count(team, date(2026, 10, 1), date(2026, 10, 31)) == 1

    assert rollups_recompute_all() == 2  # the tampered row and the missing one

    assert count(team, date(2026, 10, 1), date(2026, 10, 31)) == 2
    assert count(other_team, date(2026, 11, 1), date(2026, 11, 30)) == 1
    assert EscapeRollup.objects.get(pk=november.pk).computed_at > november.computed_at


def test_the_whole_batch_of_a_csv_import_is_one_recompute(
    team, worker, django_capture_on_commit_callbacks
):
    content = (
        b"title,detected_at\nOne,2026-10-14T09:30\nTwo,2026-11-02T10:00\nThree,2026-11-03T10:00\n"
    )
    with django_capture_on_commit_callbacks(execute=True):
        csv_import(team, content, None)
    assert worker == [(team.pk, ["2026-10-14", "2026-11-02", "2026-11-03"])]
    assert count(team, date(2026, 10, 1), date(2026, 11, 30)) == 3


def test_creating_and_sealing_an_escape_recompute_its_month(
    team, worker, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        escape = escape_create(team=team, data={"title": "Down", "detected_at": NOON})
    with django_capture_on_commit_callbacks(execute=True), transaction.atomic():
        escape_seal(escape=escape, at=NOON + timedelta(days=1))
    assert worker == [(team.pk, ["2026-11-05"]), (team.pk, ["2026-11-05"])]
    assert count(team, date(2026, 11, 1), date(2026, 11, 30)) == 1


def test_a_lost_enqueue_is_logged_and_the_change_kept(
    team, monkeypatch, caplog, django_capture_on_commit_callbacks
):
    def broker_down(*args: Any) -> None:
        raise ConnectionError("broker unreachable")

    monkeypatch.setattr(rollup_recompute_task, "delay", broker_down)
    with django_capture_on_commit_callbacks(execute=True):
        escape = escape_create(team=team, data={"title": "Down", "detected_at": NOON})
    assert Escape.objects.filter(pk=escape.pk).exists()
    assert "not queued" in caplog.text


# --- The dashboard equals the metric code on random data ----------------------------------


def random_escapes(rng: random.Random, teams, stages_of) -> None:
    start = utc(2025, 1, 1)
    releases = {
        team.pk: [
            Release.objects.create(
                team=team,
                version=f"{team.slug}-{i}",
                released_at=start + timedelta(days=rng.uniform(0, 700)),
            )
            for i in range(6)
        ]
        for team in teams
    }
    for team in teams:
        for shipped in releases[team.pk]:
            for stage in rng.sample(stages_of[team.pk], rng.randint(0, 3)):
                StageCatch.objects.create(release=shipped, stage=stage, caught=rng.randint(0, 60))
    for _ in range(400):
        team = rng.choice(teams)
        detected = start + timedelta(seconds=rng.uniform(0, 730 * 86400))
        release: Release | None = rng.choice([None, *releases[team.pk]])
        released_at = release.released_at if release else rng.choice([None, detected])
        if released_at is not None and rng.random() < 0.3:
            released_at = detected - timedelta(hours=rng.uniform(-10, 500))
        merged = rng.choice(
            [
                None,
                detected - timedelta(hours=rng.expovariate(1 / 48)),
                detected + timedelta(hours=1),
            ]
        )
        sealed = detected + timedelta(days=rng.uniform(-2, 60)) if rng.random() < 0.2 else None
        Escape.objects.create(
            team=team,
            title="Random",
            detected_at=detected,
            merged_at=merged,
            released_at=released_at,
            release=release,
            category=rng.choice(["", *Category.values]),
            stage=rng.choice([None, *stages_of[team.pk]]),
            severity=rng.choice(Severity.values),
            component=rng.choice(["", "cart", "search", "payments"]),
            sealed_at=sealed,
        )


def seconds(value: timedelta | None) -> float | None:
    return None if value is None else value.total_seconds()


def assert_durations_equal(ours, summary: metrics.DurationSummary) -> None:
    assert ours.known == summary.n
    for mine, theirs in (
        (ours.mean, summary.mean),
        (ours.median, summary.median),
        (ours.p90, summary.p90),
    ):
        if theirs is None:
            assert mine is None
        else:
            assert mine == pytest.approx(theirs.total_seconds(), abs=1e-5)


def assert_matches_metrics(result: Dashboard, team, start: date, end: date) -> None:
    m = metrics.team_metrics(team, start, end)
    assert result.total.n == m.escapes_total
    assert_durations_equal(result.total, m.deficit)
    assert result.time_in_production.n == m.escapes_total
    assert_durations_equal(result.time_in_production, m.time_in_production)
    categories = {c.key: c.count for c in m.by_category}
    ours = {
        key: sum(p.categories[key] for p in result.periods) for key in result.periods[0].categories
    }
    assert ours == {
        **{k: categories[k] for k in Category.values},
        "": categories[metrics.UNCLASSIFIED],
    }
    assert [(s.stage_id, s.n, s.caught) for s in result.stages] == [
        (s.stage_id, s.escaped, s.caught) for s in m.by_stage
    ]
    for box, stat in zip(result.stages, m.by_stage, strict=True):
        assert box.median == pytest.approx(seconds(stat.median_deficit), abs=1e-5)
        assert box.containment == pytest.approx(stat.containment)
    assert (result.weakest_stage.stage_id if result.weakest_stage else None) == (
        m.weakest_stage.stage_id if m.weakest_stage else None
    )
    assert result.weakest_reason == m.weakest_reason
    assert result.problems == {
        "negative_deficit": m.data_problems.negative_deficit,
        "detected_before_release": m.data_problems.detected_before_release,
        "missing_merged_at": m.data_problems.missing_merged_at,
    }
    rates = {r.release_id: (r.escaped, r.caught, r.escape_rate) for r in m.release_escape_rates}
    reported = {
        b.release_id: (b.escapes, b.caught, b.escape_rate)
        for b in result.releases
        if b.caught is not None
    }
    assert reported == rates


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_the_dashboard_equals_the_metrics_of_the_raw_escapes(team, other_team, seed):
    rng = random.Random(seed)
    teams = [team, other_team]
    stages_of = {t.pk: list(t.stages.order_by("position")) for t in teams}
    random_escapes(rng, teams, stages_of)
    rollups_recompute_all()
    for _ in range(6):
        first = date(2025, 1, 1) + timedelta(days=rng.randint(0, 700))
        last = first + timedelta(days=rng.randint(0, 400))
        period: Period = rng.choice(["week", "month"])
        for chosen in teams:
            result = dashboard(
                DashboardQuery(teams=(chosen,), start=first, end=last, period=period)
            )
            assert_matches_metrics(result, chosen, first, last)
            # Each period holds what the metrics find in its days of the range.
            point = rng.choice(result.periods)
            span_end = point.start + timedelta(days=6 if period == "week" else 40)
            if period == "month":
                span_end = min(
                    span_end, (point.start + timedelta(days=32)).replace(day=1) - timedelta(days=1)
                )
            sub = metrics.team_metrics(chosen, max(point.start, first), min(span_end, last))
            assert point.deficit.n == sub.escapes_total
            assert_durations_equal(point.deficit, sub.deficit)
        both = dashboard(DashboardQuery(teams=tuple(teams), start=first, end=last, period=period))
        valid = [row for t in teams for row in valid_rows(t, first, last)]
        assert both.total.n == len(valid)
        assert_durations_equal(both.total, metrics.mean_median_p90(metrics.deficits_of(valid)))


def valid_rows(team, start: date, end: date) -> list[metrics.EscapeRow]:
    window = metrics.DateRange(start, end, team.tzinfo)
    rows = Escape.objects.filter(
        team=team, detected_at__gte=window.start_utc, detected_at__lt=window.end_utc
    ).values_list(*metrics.ESCAPE_ROW_FIELDS)
    return metrics.split_escapes(metrics.EscapeRow(*r) for r in rows)[0]


def test_a_cached_block_reused_after_a_change_gives_the_numbers_of_a_fresh_read(team, owner):
    retro = Retrospective.objects.create(team=team, title="Autumn", facilitator=owner)
    october = add(team, utc(2026, 10, 5, 12), component="cart", category=Category.COVERAGE_GAP)
    october.sealed_at = utc(2026, 10, 6, 12)
    october.save()
    PreventativeAction.objects.create(retro=retro, escape=october, title="Test the cart")
    november = add(team, NOON, component="cart", category=Category.COVERAGE_GAP)
    query = DashboardQuery(teams=(team,), start=date(2026, 10, 1), end=date(2026, 11, 30))
    rollups_recompute_all()
    assert dashboard(query).follow_through.re_escape_ids == (november.pk,)  # cached now

    PreventativeAction.objects.create(retro=retro, escape=november, title="Guard the cart")
    later = add(team, utc(2026, 11, 20, 12), component="cart", category=Category.COVERAGE_GAP)
    rollups_recompute(team_id=team.pk, days=[date(2026, 11, 20)])  # October is reused

    reused = dashboard(query)
    rollups_cache_clear()
    fresh = dashboard(query)
    assert reused == fresh
    assert reused.follow_through.actions == 2
    assert reused.follow_through.re_escape_ids == (november.pk, later.pk)


def test_an_action_added_or_pushed_queues_its_escapes_month_for_the_follow_through(
    team, owner, queued, django_capture_on_commit_callbacks
):
    escape = add(team, NOON)
    retro = Retrospective.objects.create(
        team=team, title="November", facilitator=owner, phase=Phase.ACTIONS
    )
    retro.items.create(escape=escape)
    queued.clear()
    with django_capture_on_commit_callbacks(execute=True):
        action = retro_services.action_add(
            retro=retro,
            escape=escape,
            title="Guard",
            kind="process_change",
            stage=None,
            owner=owner,
            created_by=owner,
        )
    assert queued == [(team.pk, ["2026-11-05"])]
    queued.clear()
    with django_capture_on_commit_callbacks(execute=True):
        retro_services.action_tracker_update(action_id=action.pk, sprint="Sprint 9")
    assert queued == [], "a sprint name is not counted by the dashboards"
    with django_capture_on_commit_callbacks(execute=True):
        retro_services.action_tracker_update(action_id=action.pk, push_state=PushState.QUEUED)
    assert queued == [(team.pk, ["2026-11-05"])]
