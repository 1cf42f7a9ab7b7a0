"""Every chart's numbers pinned on hand-built escapes, read back through the rollups."""

from datetime import date, timedelta

import pytest
from django.utils import timezone

from escapes.models import Category, PipelineStage, Release, Severity, StageCatch
from insights import dashboard as dashboard_module
from insights.dashboard import DashboardQuery, dashboard
from insights.metrics import LOWEST_CONTAINMENT, MOST_ESCAPES
from retros.models import PreventativeAction, PushState, Retrospective
from tests.dashboard import HOUR, _fresh_cache, add, board, utc  # noqa: F401

NOV_START, NOV_END = date(2026, 11, 1), date(2026, 11, 30)
NOON = utc(2026, 11, 5, 12)


def hours(value: float | None) -> float:
    assert value is not None
    return value / HOUR


# --- Time zones and periods ---------------------------------------------------------------


def test_an_escape_belongs_to_the_local_day_it_was_detected_on(team):
    # 23:30 UTC on 31 October is 00:30 on 1 November in Berlin.
    add(team, utc(2026, 10, 31, 23, 30))
    # 22:59 UTC on 30 November is still 30 November in Berlin; 23:00 UTC is 1 December.
    add(team, utc(2026, 11, 30, 22, 59))
    add(team, utc(2026, 11, 30, 23, 0))
    assert board(team, NOV_START, NOV_END).total.n == 2
    assert board(team, date(2026, 10, 1), date(2026, 10, 31)).total.n == 0
    assert board(team, date(2026, 12, 1), date(2026, 12, 1)).total.n == 1


def test_late_sunday_utc_falls_in_mondays_iso_week_in_berlin(team):
    # Sunday 8 November 23:30 UTC is Monday 9 November 00:30 in Berlin: week 46, not 45.
    add(team, utc(2026, 11, 8, 23, 30))
    add(team, utc(2026, 11, 8, 22, 30))  # 23:30 on Sunday in Berlin: week 45
    result = board(team, date(2026, 11, 2), date(2026, 11, 15), period="week")
    assert [(p.label, p.start, p.deficit.n) for p in result.periods] == [
        ("2026-W45", date(2026, 11, 2), 1),
        ("2026-W46", date(2026, 11, 9), 1),
    ]


def test_daylight_saving_time_moves_local_midnight(team):
    # Summer time (UTC+2) ends on 25 October 2026; winter time is UTC+1.
    add(team, utc(2026, 10, 24, 22, 30))  # 00:30 CEST, Sunday 25 October: week 43
    add(team, utc(2026, 10, 25, 22, 30))  # 23:30 CET, still Sunday 25 October: week 43
    add(team, utc(2026, 10, 25, 23, 30))  # 00:30 CET, Monday 26 October: week 44
    # Summer time starts on 29 March 2026: midnight before it is UTC+1, after it UTC+2.
    add(team, utc(2026, 3, 29, 22, 30))  # 00:30 CEST, Monday 30 March: week 14
    weeks = board(team, date(2026, 10, 19), date(2026, 11, 1), period="week").periods
    assert [p.deficit.n for p in weeks] == [2, 1]
    spring = board(team, date(2026, 3, 23), date(2026, 4, 5), period="week").periods
    assert [(p.label, p.deficit.n) for p in spring] == [("2026-W13", 0), ("2026-W14", 1)]


def test_empty_periods_are_zeros_not_gaps(team):
    add(team, utc(2026, 9, 10, 12), category=Category.COVERAGE_GAP)
    add(team, utc(2026, 11, 10, 12))
    result = board(team, date(2026, 9, 1), date(2026, 11, 30))
    assert [p.label for p in result.periods] == ["2026-09", "2026-10", "2026-11"]
    october = result.periods[1]
    assert (october.deficit.n, october.deficit.known, october.deficit.median) == (0, 0, None)
    assert october.categories == {
        "coverage_gap": 0,
        "environment_mismatch": 0,
        "flakiness": 0,
        "": 0,
    }
    assert result.periods[0].categories["coverage_gap"] == 1
    assert result.periods[2].categories[""] == 1


def test_a_range_edge_inside_a_period_counts_only_the_days_of_the_range(team):
    add(team, utc(2026, 11, 3, 12))
    add(team, utc(2026, 11, 20, 12))
    result = board(team, date(2026, 11, 10), date(2026, 11, 30))
    assert [(p.start, p.deficit.n) for p in result.periods] == [(date(2026, 11, 1), 1)]


def test_two_teams_in_different_time_zones_bucket_by_their_own_clocks(team, other_team):
    moment = utc(2026, 11, 30, 23, 30)  # 1 December in Berlin, 30 November in UTC
    add(team, moment)
    add(other_team, moment)
    both = board((team, other_team), date(2026, 11, 1), date(2026, 12, 31))
    assert [(p.label, p.deficit.n) for p in both.periods] == [("2026-11", 1), ("2026-12", 1)]
    assert both.total.n == 2
    assert both.stale_teams == ()


# --- Durations ----------------------------------------------------------------------------


def test_the_median_of_four_durations_interpolates(team):
    for h in (1, 2, 3, 4):
        add(team, NOON, deficit=timedelta(hours=h))
    assert hours(board(team, NOV_START, NOV_END).total.median) == pytest.approx(2.5)


def test_the_worked_example_mean_median_and_p90(team):
    for h in (1, 2, 3, 4, 100):
        add(team, NOON, deficit=timedelta(hours=h))
    total = board(team, NOV_START, NOV_END).total
    assert (total.n, total.known) == (5, 5)
    assert hours(total.mean) == pytest.approx(22)
    assert hours(total.median) == pytest.approx(3)
    assert hours(total.p90) == pytest.approx(61.6)


def test_a_stage_box_has_the_quartiles_and_whiskers_of_its_deficits(team, stages):
    for h in (1, 2, 3, 4):
        add(team, NOON, deficit=timedelta(hours=h), stage=stages[1])
    box = board(team, NOV_START, NOV_END).stages[1]
    assert (box.stage_id, box.name, box.n, box.known) == (stages[1].pk, stages[1].name, 4, 4)
    assert [hours(v) for v in (box.minimum, box.q1, box.median, box.q3, box.maximum)] == (
        pytest.approx([1, 1.75, 2.5, 3.25, 4])
    )


def test_time_in_production_is_detected_minus_released(team):
    add(team, NOON, released_at=NOON - timedelta(hours=5))
    add(team, NOON, released_at=NOON - timedelta(hours=1))
    add(team, NOON)  # released when, unknown
    tip = board(team, NOV_START, NOV_END).time_in_production
    assert (tip.n, tip.known) == (3, 2)
    assert hours(tip.median) == pytest.approx(3)


# --- Exclusions ---------------------------------------------------------------------------


def test_an_escape_without_merge_time_counts_in_n_but_not_in_the_deficit(team):
    add(team, NOON, deficit=timedelta(hours=2))
    unknown = add(team, NOON, deficit=None)
    result = board(team, NOV_START, NOV_END)
    assert (result.total.n, result.total.known) == (2, 1)
    assert hours(result.total.mean) == pytest.approx(2)
    assert result.problems["missing_merged_at"] == (unknown.pk,)


def test_a_negative_deficit_is_excluded_and_flagged_never_clamped(team):
    add(team, NOON, deficit=timedelta(hours=4))
    backwards = add(team, NOON, merged_at=NOON + timedelta(hours=3))
    result = board(team, NOV_START, NOV_END)
    assert (result.total.n, result.total.known) == (2, 1)
    assert hours(result.total.median) == pytest.approx(4)
    assert result.problems["negative_deficit"] == (backwards.pk,)


def test_a_defect_detected_before_its_release_is_only_a_data_problem(team, stages):
    release = Release.objects.create(team=team, version="1.0", released_at=NOON)
    add(team, NOON + timedelta(hours=1), release=release, released_at=NOON)
    early = add(
        team,
        NOON - timedelta(hours=1),
        deficit=None,
        release=release,
        released_at=NOON,
        stage=stages[0],
        category=Category.FLAKINESS,
        component="payments",
    )
    result = board(team, NOV_START, NOV_END)
    assert result.total.n == 1
    assert result.problems == {
        "negative_deficit": (),
        "detected_before_release": (early.pk,),
        "missing_merged_at": (),
    }
    assert result.stages[0].n == 0
    assert sum(p.categories["flakiness"] for p in result.periods) == 0
    assert [c.key for c in result.pareto_components] == [""]
    assert result.releases[0].escapes == 1


# --- Containment, escape rate, weakest stage ----------------------------------------------


def test_containment_is_caught_over_caught_plus_escaped(team, stages):
    release = Release.objects.create(team=team, version="1.0", released_at=utc(2026, 11, 2))
    StageCatch.objects.create(release=release, stage=stages[0], caught=50)
    for _ in range(25):
        add(team, NOON, stage=stages[0])
    result = board(team, NOV_START, NOV_END)
    unit = result.stages[0]
    assert (unit.caught, unit.n) == (50, 25)
    assert unit.containment == pytest.approx(2 / 3)
    assert f"{unit.containment:.1%}" == "66.7%"
    assert result.stages[1].caught is None  # nothing reported is not zero caught
    assert result.weakest_stage == unit
    assert result.weakest_reason == LOWEST_CONTAINMENT


def test_the_escape_rate_of_a_release(team, stages):
    release = Release.objects.create(team=team, version="2.0", released_at=utc(2026, 11, 2))
    StageCatch.objects.create(release=release, stage=stages[0], caught=100)
    StageCatch.objects.create(release=release, stage=stages[1], caught=80)
    for _ in range(20):
        add(team, NOON, release=release, released_at=release.released_at)
    quiet = Release.objects.create(team=team, version="2.1", released_at=utc(2026, 11, 20))
    bars = board(team, NOV_START, NOV_END).releases
    assert [(b.version, b.escapes, b.caught) for b in bars] == [("2.1", 0, None), ("2.0", 20, 180)]
    assert bars[1].escape_rate == pytest.approx(0.10)
    assert (bars[0].release_id, bars[0].escape_rate) == (quiet.pk, None)


def test_without_catches_the_weakest_stage_is_the_one_with_most_escapes(team, stages):
    add(team, NOON, stage=stages[2])
    add(team, NOON, stage=stages[2])
    add(team, NOON, stage=stages[0])
    result = board(team, NOV_START, NOV_END)
    assert result.weakest_stage is not None
    assert (result.weakest_stage.stage_id, result.weakest_reason) == (stages[2].pk, MOST_ESCAPES)
    assert result.stages[-1].stage_id is None  # "Unattributed" comes last
    assert result.stages[-1].n == 0


# --- Filters and Pareto -------------------------------------------------------------------


def test_filters_narrow_every_number_and_drop_ratios_they_cannot_split(team, stages):
    release = Release.objects.create(team=team, version="3.0", released_at=utc(2026, 11, 2))
    StageCatch.objects.create(release=release, stage=stages[0], caught=10)
    add(team, NOON, component="payments", severity=Severity.HIGH, release=release)
    add(team, NOON, deficit=timedelta(hours=5), component="payments", severity=Severity.LOW)
    add(team, NOON, component="search", severity=Severity.HIGH, stage=stages[0])
    assert board(team, NOV_START, NOV_END, component="payments").total.n == 2
    assert board(team, NOV_START, NOV_END, component="nothing-like-it").total.n == 0
    high = board(team, NOV_START, NOV_END, severity=Severity.HIGH)
    assert high.total.n == 2
    assert (high.stages[0].n, high.stages[0].caught, high.stages[0].containment) == (1, None, None)
    assert [(b.escapes, b.caught) for b in high.releases] == [(1, None)]
    by_release = board(team, NOV_START, NOV_END, release_id=release.pk)
    assert by_release.total.n == 1
    assert by_release.stages[0].caught == 10


def test_pareto_items_are_sorted_with_their_cumulative_share(team):
    for component, n in (("payments", 3), ("search", 1)):
        for _ in range(n):
            add(team, NOON, component=component, category=Category.ENVIRONMENT_MISMATCH)
    add(team, NOON, component="", category=Category.COVERAGE_GAP)
    result = board(team, NOV_START, NOV_END)
    assert [(c.key, c.label, c.count) for c in result.pareto_components] == [
        ("payments", "payments", 3),
        ("search", "search", 1),
        ("", "(no component)", 1),
    ]
    assert [c.cumulative_share for c in result.pareto_components] == pytest.approx([0.6, 0.8, 1])
    assert [(c.key, c.count) for c in result.pareto_categories] == [
        ("environment_mismatch", 4),
        ("coverage_gap", 1),
    ]


def test_bad_queries_are_refused_with_a_message(team):
    with pytest.raises(ValueError, match="after it ends"):
        board(team, NOV_END, NOV_START)
    with pytest.raises(ValueError, match="Unknown severity"):
        board(team, NOV_START, NOV_END, severity="apocalyptic")
    with pytest.raises(ValueError, match="weeks"):
        board(team, date(1900, 1, 1), NOV_END, period="week")


# --- Follow-through and re-escapes --------------------------------------------------------


def test_follow_through_counts_the_actions_of_the_ranges_escapes(team, owner, time_machine):
    # November's escapes, their actions made "today", overdue against today: a today that
    # follows them, the same on any day the suite runs (and never near a local midnight).
    time_machine.move_to(utc(2026, 12, 20, 12), tick=False)
    retro = Retrospective.objects.create(team=team, title="November", facilitator=owner)
    first, second = add(team, NOON), add(team, NOON + timedelta(days=1))
    outside = add(team, utc(2026, 12, 15, 12))
    today = timezone.localdate()
    created = timezone.now()

    def action(escape, **fields):
        made = PreventativeAction.objects.create(
            retro=retro, escape=escape, title="Guard", **fields
        )
        PreventativeAction.objects.filter(pk=made.pk).update(created_at=created)

    action(
        first, push_state=PushState.PUSHED, external_key="QA-1", done_at=created + timedelta(days=2)
    )
    action(
        first, push_state=PushState.PUSHED, external_key="QA-2", done_at=created + timedelta(days=4)
    )
    action(second, due_date=today - timedelta(days=3))
    action(second, due_date=today + timedelta(days=3))
    action(outside, due_date=today - timedelta(days=3))
    follow = board(team, NOV_START, NOV_END).follow_through
    assert (follow.actions, follow.pushed, follow.done, follow.overdue) == (4, 2, 2, 1)
    assert follow.median_days_to_done == pytest.approx(3)
    assert [follow.share(n) for n in (follow.pushed, follow.done, follow.overdue)] == [
        0.5,
        0.5,
        0.25,
    ]


def test_a_re_escape_is_a_new_escape_after_a_sealed_one_of_its_component_and_category(team):
    gap = Category.COVERAGE_GAP
    sealed = add(team, utc(2026, 9, 1, 12), component="payments", category=gap)
    sealed.sealed_at = utc(2026, 10, 1, 12)
    sealed.save()
    before = add(team, utc(2026, 9, 20, 12), component="payments", category=gap)
    again = add(team, NOON, component="payments", category=gap)
    add(team, NOON, component="payments", category=Category.FLAKINESS)
    add(team, NOON, component="search", category=gap)
    follow = board(team, date(2026, 9, 1), NOV_END).follow_through
    assert follow.re_escape_ids == (again.pk,)
    assert before.pk not in follow.re_escape_ids
    # The earlier, sealed one counts even when it is outside the range.
    assert board(team, NOV_START, NOV_END).follow_through.re_escape_ids == (again.pk,)


def test_re_escapes_are_counted_in_full_and_listed_up_to_the_cap(team, monkeypatch):
    monkeypatch.setattr(dashboard_module, "MAX_LISTED", 2)
    gap = Category.COVERAGE_GAP
    sealed = add(team, utc(2026, 9, 1, 12), component="payments", category=gap)
    sealed.sealed_at = utc(2026, 10, 1, 12)
    sealed.save()
    again = [
        add(team, NOON + timedelta(hours=i), component="payments", category=gap) for i in range(3)
    ]
    follow = board(team, NOV_START, NOV_END).follow_through
    assert follow.re_escapes == 3
    assert follow.re_escape_ids == tuple(sorted(e.pk for e in again)[:2])


def test_release_bars_are_the_newest_up_to_the_cap_with_the_total(team, monkeypatch):
    monkeypatch.setattr(dashboard_module, "MAX_RELEASES", 2)
    for day in (3, 10, 17):
        Release.objects.create(
            team=team, version=f"2026.11.{day}", released_at=utc(2026, 11, day, 9)
        )
    add(team, NOON)
    result = board(team, NOV_START, NOV_END)
    assert [bar.version for bar in result.releases] == ["2026.11.17", "2026.11.10"]
    assert result.releases_total == 3


# --- Freshness ----------------------------------------------------------------------------


def test_the_dashboard_says_how_fresh_it_is_and_which_teams_are_not_rolled_up(
    team, other_team, frozen_clock
):
    add(team, NOON)
    result = board(team, NOV_START, NOV_END)
    assert result.computed_at is not None
    assert timezone.now() - result.computed_at < timedelta(minutes=1)
    add(other_team, NOON)  # no recompute: its rollups are missing
    both = dashboard(DashboardQuery(teams=(team, other_team), start=NOV_START, end=NOV_END))
    assert both.stale_teams == ("search",)
    assert both.total.n == 1


def test_stages_of_several_teams_are_named_with_their_team(team, other_team):
    PipelineStage.objects.filter(team=other_team).delete()
    PipelineStage.objects.create(team=other_team, name="Smoke", position=0)
    names = [s.name for s in board((team, other_team), NOV_START, NOV_END).stages]
    assert names[-2:] == ["search · Smoke", "Unattributed"]
    assert names[0].startswith("checkout · ")


def test_data_problems_are_counted_in_full_and_listed_up_to_the_cap(team, monkeypatch):
    monkeypatch.setattr(dashboard_module, "MAX_LISTED", 2)
    unknown = [add(team, NOON + timedelta(hours=i), merged_at=None) for i in range(3)]
    result = board(team, NOV_START, NOV_END)
    assert result.problem_counts["missing_merged_at"] == 3
    assert result.problems["missing_merged_at"] == tuple(sorted(e.pk for e in unknown)[:2])
    assert result.problem_counts["negative_deficit"] == 0
