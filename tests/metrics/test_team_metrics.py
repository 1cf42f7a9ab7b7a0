"""team_metrics: what counts, what is left out, and in which local day an escape falls."""

from datetime import date, timedelta

import pytest

from escapes.models import Category
from insights.metrics import (
    LOWEST_CONTAINMENT,
    MOST_ESCAPES,
    release_escape_rate,
    team_metrics,
)
from tests.metrics.factories import make_escape, make_release, report_catches, utc

# A quiet week in November: Berlin is on CET (UTC+1) throughout.
START, END = date(2026, 11, 2), date(2026, 11, 8)
NOON = utc(2026, 11, 5, 12)


def in_hours(value: timedelta | None) -> float:
    assert value is not None
    return value.total_seconds() / 3600


def test_the_worked_example_holds_for_a_teams_escapes(team):
    for h in (1, 2, 3, 4, 100):
        make_escape(team, detected_at=NOON, deficit=timedelta(hours=h))
    metrics = team_metrics(team, START, END)
    assert metrics.escapes_total == 5
    assert metrics.deficit.n == 5
    assert in_hours(metrics.deficit.mean) == pytest.approx(22)
    assert in_hours(metrics.deficit.median) == pytest.approx(3)
    assert in_hours(metrics.deficit.p90) == pytest.approx(61.6)
    assert (metrics.deficit_known, metrics.deficit_of) == (5, 5)


def test_an_escape_without_merge_time_counts_everywhere_but_in_the_deficit(team, stages):
    known = make_escape(team, detected_at=NOON, deficit=timedelta(hours=2), stage=stages[0])
    unknown = make_escape(
        team, detected_at=NOON, deficit=None, category=Category.COVERAGE_GAP, stage=stages[0]
    )
    metrics = team_metrics(team, START, END)
    assert metrics.escapes_total == 2
    assert (metrics.deficit_known, metrics.deficit_of) == (1, 2)
    assert metrics.deficit.mean == timedelta(hours=2)
    assert metrics.by_stage[0].escaped == 2
    assert metrics.by_category[0].count == 1
    assert metrics.data_problems.missing_merged_at == (unknown.pk,)
    assert known.pk not in metrics.data_problems.missing_merged_at


def test_a_negative_deficit_is_excluded_and_flagged_never_clamped(team):
    make_escape(team, detected_at=NOON, deficit=timedelta(hours=4))
    backwards = make_escape(
        team,
        detected_at=NOON,
        merged_at=NOON + timedelta(hours=3),
        released_at=NOON - timedelta(hours=1),
    )
    metrics = team_metrics(team, START, END)
    assert metrics.escapes_total == 2
    assert metrics.deficit.n == 1
    assert metrics.deficit.mean == timedelta(hours=4)  # a clamp to 0 would give 2 h
    assert (metrics.deficit_known, metrics.deficit_of) == (1, 2)
    assert metrics.data_problems.negative_deficit == (backwards.pk,)
    assert metrics.data_problems.counts["negative_deficit"] == 1
    # Its time in production is a sound span of its own and still counts.
    assert metrics.time_in_production.n == 1
    assert metrics.time_in_production.mean == timedelta(hours=1)


def test_a_defect_detected_before_its_release_is_not_an_escape(team, stages):
    real = make_escape(
        team,
        detected_at=NOON,
        released_at=NOON - timedelta(hours=10),
        category=Category.FLAKINESS,
        stage=stages[1],
    )
    early = make_escape(
        team,
        detected_at=NOON,
        released_at=NOON + timedelta(hours=5),
        deficit=None,
        category=Category.FLAKINESS,
        stage=stages[1],
    )
    metrics = team_metrics(team, START, END)
    assert metrics.escapes_total == 1
    assert (metrics.deficit_known, metrics.deficit_of) == (1, 1)
    assert metrics.time_in_production.n == 1
    assert metrics.time_in_production.mean == timedelta(hours=10)
    assert {c.key: c.count for c in metrics.by_category}[Category.FLAKINESS] == 1
    assert metrics.by_stage[1].escaped == 1
    assert metrics.data_problems.detected_before_release == (early.pk,)
    # Listed once, as what it is: not also as an escape with an unknown merge time.
    assert metrics.data_problems.missing_merged_at == ()
    assert real.pk not in metrics.data_problems.detected_before_release


def test_time_in_production_is_summarised_like_the_deficit(team):
    for h in (1, 2, 3, 4, 100):
        make_escape(team, detected_at=NOON, released_at=NOON - timedelta(hours=h))
    make_escape(team, detected_at=NOON)  # release time unknown: not in this summary
    summary = team_metrics(team, START, END).time_in_production
    assert summary.n == 5
    assert in_hours(summary.mean) == pytest.approx(22)
    assert in_hours(summary.median) == pytest.approx(3)
    assert in_hours(summary.p90) == pytest.approx(61.6)


def test_an_empty_range_has_n_zero_nothing_else_and_zeros_everywhere(team, stages, other_team):
    make_escape(other_team, detected_at=NOON)  # another team's escapes never count
    make_escape(team, detected_at=NOON + timedelta(days=30))
    metrics = team_metrics(team, START, END)
    assert metrics.escapes_total == 0
    for summary in (metrics.deficit, metrics.time_in_production):
        assert (summary.n, summary.mean, summary.median, summary.p90) == (0, None, None, None)
    assert (metrics.deficit_known, metrics.deficit_of) == (0, 0)
    assert [c.key for c in metrics.by_category] == [
        "coverage_gap",
        "environment_mismatch",
        "flakiness",
        "unclassified",
    ]
    assert all(c.count == 0 for c in metrics.by_category)
    assert [s.name for s in metrics.by_stage] == ["Unit", "Integration", "E2E", "Unattributed"]
    assert all(s.escaped == 0 and s.median_deficit is None for s in metrics.by_stage)
    assert metrics.weakest_stage is None and metrics.weakest_reason is None
    assert metrics.data_problems.total == 0
    assert metrics.release_escape_rates == ()


def test_escapes_are_counted_per_category_and_per_stage_in_pipeline_order(team, stages):
    unit, _, e2e = stages
    make_escape(team, detected_at=NOON, category=Category.COVERAGE_GAP, stage=e2e)
    make_escape(team, detected_at=NOON, category=Category.COVERAGE_GAP, stage=unit)
    make_escape(team, detected_at=NOON, category=Category.ENVIRONMENT_MISMATCH, stage=e2e)
    make_escape(team, detected_at=NOON)
    metrics = team_metrics(team, START, END)
    assert [(c.label, c.count) for c in metrics.by_category] == [
        ("Coverage Gap", 2),
        ("Environment Mismatch", 1),
        ("Flakiness / False Negative", 0),
        ("Unclassified", 1),
    ]
    assert [(s.name, s.escaped) for s in metrics.by_stage] == [
        ("Unit", 1),
        ("Integration", 0),
        ("E2E", 2),
        ("Unattributed", 1),
    ]


def test_starting_a_range_after_it_ends_is_refused(team):
    with pytest.raises(ValueError):
        team_metrics(team, END, START)


# --- Local days ---------------------------------------------------------------------------


def escapes_in(team, start: date, end: date) -> int:
    return team_metrics(team, start, end).escapes_total


def test_the_last_local_evening_of_the_range_is_in_and_the_next_morning_out(team):
    # 20 Nov 2026, Berlin (UTC+1): 23:30 local is 22:30 UTC; 00:10 on the 21st is 23:10 UTC.
    make_escape(team, detected_at=utc(2026, 11, 20, 22, 30))
    assert escapes_in(team, date(2026, 11, 14), date(2026, 11, 20)) == 1
    make_escape(team, detected_at=utc(2026, 11, 20, 23, 10))
    assert escapes_in(team, date(2026, 11, 14), date(2026, 11, 20)) == 1
    assert escapes_in(team, date(2026, 11, 21), date(2026, 11, 21)) == 1


def test_the_first_local_minutes_of_the_range_are_in_and_the_evening_before_out(team):
    make_escape(team, detected_at=utc(2026, 11, 13, 23, 10))  # 00:10 on the 14th in Berlin
    make_escape(team, detected_at=utc(2026, 11, 13, 22, 50))  # 23:50 on the 13th in Berlin
    assert escapes_in(team, date(2026, 11, 14), date(2026, 11, 20)) == 1
    assert escapes_in(team, date(2026, 11, 13), date(2026, 11, 13)) == 1


def test_the_short_day_when_clocks_go_forward_ends_an_hour_earlier_in_utc(team):
    # 29 Mar 2026 in Berlin runs from 23:00 UTC on the 28th to 22:00 UTC on the 29th.
    make_escape(team, detected_at=utc(2026, 3, 28, 23, 10))  # 00:10 CET on the 29th: in
    make_escape(team, detected_at=utc(2026, 3, 29, 21, 50))  # 23:50 CEST on the 29th: in
    make_escape(team, detected_at=utc(2026, 3, 29, 22, 10))  # 00:10 CEST on the 30th: out
    make_escape(team, detected_at=utc(2026, 3, 28, 22, 50))  # 23:50 CET on the 28th: out
    assert escapes_in(team, date(2026, 3, 29), date(2026, 3, 29)) == 2
    assert escapes_in(team, date(2026, 3, 30), date(2026, 3, 30)) == 1
    assert escapes_in(team, date(2026, 3, 28), date(2026, 3, 28)) == 1


def test_the_long_day_when_clocks_go_back_keeps_its_25th_hour(team):
    # 25 Oct 2026 in Berlin runs from 22:00 UTC on the 24th to 23:00 UTC on the 25th.
    make_escape(team, detected_at=utc(2026, 10, 25, 22, 30))  # 23:30 CET on the 25th: in
    make_escape(team, detected_at=utc(2026, 10, 24, 22, 10))  # 00:10 CEST on the 25th: in
    make_escape(team, detected_at=utc(2026, 10, 24, 21, 50))  # 23:50 CEST on the 24th: out
    assert escapes_in(team, date(2026, 10, 25), date(2026, 10, 25)) == 2


def test_a_utc_team_buckets_by_utc_days(other_team):
    make_escape(other_team, detected_at=utc(2026, 11, 20, 23, 30))
    assert escapes_in(other_team, date(2026, 11, 20), date(2026, 11, 20)) == 1
    assert escapes_in(other_team, date(2026, 11, 21), date(2026, 11, 21)) == 0


# --- Weakest stage and containment ----------------------------------------------------------


def test_containment_is_caught_over_caught_plus_escaped(team, stages):
    unit = stages[0]
    release = make_release(team, "1.0", utc(2026, 11, 3, 9))
    report_catches(release, {unit: 50})
    for _ in range(25):
        make_escape(team, detected_at=NOON, stage=unit, release=release)
    stat = team_metrics(team, START, END).by_stage[0]
    assert (stat.caught, stat.escaped) == (50, 25)
    assert stat.containment == pytest.approx(2 / 3)
    assert stat.containment_display == "66.7 %"


def test_the_weakest_stage_is_the_one_with_the_lowest_containment(team, stages):
    unit, integration, e2e = stages
    release = make_release(team, "1.0", utc(2026, 11, 3, 9))
    report_catches(release, {unit: 50, integration: 10, e2e: 100})
    for _ in range(5):
        make_escape(team, detected_at=NOON, stage=unit)  # 50 / 55: 90.9 %
    for _ in range(2):
        make_escape(team, detected_at=NOON, stage=integration)  # 10 / 12: 83.3 %
    for _ in range(9):
        make_escape(team, detected_at=NOON, stage=e2e)  # most escapes, but 100 / 109: 91.7 %
    metrics = team_metrics(team, START, END)
    assert metrics.weakest_stage is not None
    assert metrics.weakest_stage.name == "Integration"
    assert metrics.weakest_stage.containment == pytest.approx(10 / 12)
    assert metrics.weakest_reason == LOWEST_CONTAINMENT


def test_a_leaking_stage_that_reports_no_catches_falls_back_to_most_escapes(team, stages):
    unit, integration, e2e = stages
    release = make_release(team, "1.0", utc(2026, 11, 3, 9))
    report_catches(release, {unit: 50, integration: 10})
    make_escape(team, detected_at=NOON, stage=unit)
    for _ in range(4):
        make_escape(team, detected_at=NOON, stage=e2e)
    metrics = team_metrics(team, START, END)
    assert metrics.by_stage[2].caught is None and metrics.by_stage[2].containment is None
    assert metrics.by_stage[1].containment == 1.0
    assert metrics.weakest_stage is not None
    assert metrics.weakest_stage.name == "E2E"
    assert metrics.weakest_reason == MOST_ESCAPES


def test_no_stage_is_weakest_when_nothing_leaked_past_a_stage(team, stages):
    release = make_release(team, "1.0", utc(2026, 11, 3, 9))
    report_catches(release, {stage: 10 for stage in stages})
    make_escape(team, detected_at=NOON)  # unattributed
    metrics = team_metrics(team, START, END)
    assert [s.containment for s in metrics.stages] == [1.0, 1.0, 1.0]
    assert metrics.weakest_stage is None and metrics.weakest_reason is None


@pytest.mark.parametrize(("weaker", "stronger"), [(0, 2), (2, 0)])
def test_equal_containment_is_broken_by_more_escapes(team, stages, weaker, stronger):
    release = make_release(team, "1.0", utc(2026, 11, 3, 9))
    report_catches(release, {stages[weaker]: 20, stages[stronger]: 10})
    for _ in range(4):
        make_escape(team, detected_at=NOON, stage=stages[weaker])  # 20 / 24
    for _ in range(2):
        make_escape(team, detected_at=NOON, stage=stages[stronger])  # 10 / 12
    metrics = team_metrics(team, START, END)
    assert metrics.weakest_stage is not None
    assert metrics.weakest_stage.name == stages[weaker].name
    assert metrics.weakest_reason == LOWEST_CONTAINMENT


def test_without_catches_the_weakest_stage_is_the_one_with_most_escapes(team, stages):
    unit, integration, _ = stages
    make_escape(team, detected_at=NOON, stage=unit, deficit=timedelta(days=30))
    for _ in range(3):
        make_escape(team, detected_at=NOON, stage=integration)
    for _ in range(7):
        make_escape(team, detected_at=NOON)  # unattributed is not a stage to blame
    metrics = team_metrics(team, START, END)
    assert metrics.weakest_stage is not None
    assert metrics.weakest_stage.name == "Integration"
    assert metrics.weakest_reason == MOST_ESCAPES


@pytest.mark.parametrize(("longer", "shorter"), [(0, 2), (2, 0)])
def test_equal_escapes_are_broken_by_the_longer_median_deficit(team, stages, longer, shorter):
    for _ in range(2):
        make_escape(team, detected_at=NOON, stage=stages[longer], deficit=timedelta(hours=30))
        make_escape(team, detected_at=NOON, stage=stages[shorter], deficit=timedelta(hours=5))
    metrics = team_metrics(team, START, END)
    assert metrics.weakest_stage is not None
    assert metrics.weakest_stage.name == stages[longer].name
    assert metrics.weakest_stage.median_deficit == timedelta(hours=30)
    assert metrics.weakest_reason == MOST_ESCAPES


def test_catches_of_releases_shipped_outside_the_range_are_not_used(team, stages):
    old = make_release(team, "0.9", utc(2026, 10, 1, 9))
    report_catches(old, {stages[0]: 100})
    make_escape(team, detected_at=NOON, stage=stages[0])
    metrics = team_metrics(team, START, END)
    assert metrics.by_stage[0].caught is None
    assert metrics.weakest_reason == MOST_ESCAPES
    assert metrics.release_escape_rates == ()


# --- Escape rate of a release --------------------------------------------------------------


def test_a_releases_escape_rate_counts_all_its_escapes_but_no_early_finds(team, stages):
    unit, integration, e2e = stages
    release = make_release(team, "2.0", utc(2026, 11, 3, 9))
    report_catches(release, {unit: 100, integration: 50, e2e: 30})
    for _ in range(20):
        make_escape(team, detected_at=NOON, release=release, released_at=release.released_at)
    # Found before the release shipped: not an escape, so not in its rate.
    make_escape(
        team, detected_at=utc(2026, 11, 3, 8), release=release, released_at=release.released_at
    )
    # Detected after the range, it still escaped from this release.
    make_escape(team, detected_at=utc(2026, 11, 20, 8), release=release)
    rates = team_metrics(team, START, END).release_escape_rates
    assert [(r.version, r.caught, r.escaped) for r in rates] == [("2.0", 180, 21)]
    assert rates[0].escape_rate == pytest.approx(21 / 201)
    assert release_escape_rate(release) == pytest.approx(21 / 201)


def test_180_caught_and_20_escaped_is_a_ten_percent_escape_rate_90_percent_detection(team, stages):
    release = make_release(team, "2.1", utc(2026, 11, 3, 9))
    report_catches(release, {stages[0]: 180})
    for _ in range(20):
        make_escape(team, detected_at=NOON, release=release)
    assert release_escape_rate(release) == pytest.approx(0.10)
    rate = team_metrics(team, START, END).release_escape_rates[0]
    assert rate.escape_rate_display == "10.0 %"
    assert rate.detection_rate_display == "90.0 %"
    # No stage reported its catches: the rate is unknown, not 100 %.
    unreported = make_release(team, "2.2", utc(2026, 11, 4, 9))
    make_escape(team, detected_at=NOON, release=unreported)
    assert release_escape_rate(unreported) is None


# --- Bounded queries ----------------------------------------------------------------------


@pytest.mark.parametrize("how_many", [3, 40])
def test_team_metrics_issues_four_queries_however_many_escapes(
    team, stages, django_assert_num_queries, how_many
):
    release = make_release(team, "3.0", utc(2026, 11, 3, 9))
    report_catches(release, {stage: 10 for stage in stages})
    for i in range(how_many):
        make_escape(
            team,
            detected_at=NOON,
            stage=stages[i % 3],
            category=Category.values[i % 3],
            release=release,
            deficit=None if i % 5 == 0 else timedelta(hours=i),
        )
    with django_assert_num_queries(4):
        metrics = team_metrics(team, START, END)
    assert metrics.escapes_total == how_many
