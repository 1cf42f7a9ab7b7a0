"""Duration summaries: the worked examples of docs/metrics.md and percentile_cont's properties."""

import statistics
from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from insights.metrics import (
    containment,
    escape_rate,
    format_duration,
    format_percent,
    mean_median_p90,
    percentile_cont,
)


def hours(*values: float) -> list[timedelta]:
    return [timedelta(hours=v) for v in values]


def in_hours(value: timedelta | None) -> float:
    assert value is not None
    return value.total_seconds() / 3600


def test_median_of_one_to_four_hours_is_two_and_a_half_hours():
    summary = mean_median_p90(hours(1, 2, 3, 4))
    assert summary.n == 4
    assert in_hours(summary.median) == pytest.approx(2.5)
    assert in_hours(summary.mean) == pytest.approx(2.5)


def test_one_long_tail_moves_the_mean_and_p90_but_not_the_median():
    summary = mean_median_p90(hours(100, 3, 1, 4, 2))  # order must not matter
    assert summary.n == 5
    assert in_hours(summary.mean) == pytest.approx(22)
    assert in_hours(summary.median) == pytest.approx(3)
    assert in_hours(summary.p90) == pytest.approx(61.6)


def test_no_durations_summarise_to_n_zero_and_nothing_else():
    summary = mean_median_p90([])
    assert (summary.n, summary.mean, summary.median, summary.p90) == (0, None, None, None)
    assert summary.mean_display == "—"


def test_a_single_duration_is_its_own_mean_median_and_p90():
    summary = mean_median_p90(hours(7))
    assert summary.n == 1
    assert summary.mean == summary.median == summary.p90 == timedelta(hours=7)


def test_percentile_cont_reaches_both_ends():
    values = hours(1, 2, 3)
    assert percentile_cont(values, 0) == timedelta(hours=1)
    assert percentile_cont(values, 1) == timedelta(hours=3)
    with pytest.raises(ValueError):
        percentile_cont(values, 1.5)
    with pytest.raises(ValueError):
        percentile_cont([], 0.5)


durations = st.lists(
    st.integers(min_value=0, max_value=3 * 365 * 24 * 3600).map(lambda s: timedelta(seconds=s)),
    min_size=1,
    max_size=60,
)


@given(durations)
def test_median_and_p90_lie_between_the_smallest_and_largest(values):
    summary = mean_median_p90(values)
    assert summary.median is not None and summary.p90 is not None and summary.mean is not None
    assert min(values) <= summary.median <= summary.p90 <= max(values)
    assert min(values) <= summary.mean <= max(values)


def reference_percentile_cont(seconds: list[float], fraction: float) -> float:
    """R type 7 / PostgreSQL percentile_cont, as implemented by the standard library."""
    cut_points = statistics.quantiles(seconds, n=10, method="inclusive")
    return {0.5: cut_points[4], 0.9: cut_points[8]}[fraction]


@given(durations.filter(lambda values: len(values) >= 2))
def test_median_and_p90_match_a_reference_percentile_cont(values):
    summary = mean_median_p90(values)
    seconds = [v.total_seconds() for v in values]
    assert summary.median is not None and summary.p90 is not None and summary.mean is not None
    assert summary.median.total_seconds() == pytest.approx(
        reference_percentile_cont(seconds, 0.5), abs=1e-5
    )
    assert summary.p90.total_seconds() == pytest.approx(
        reference_percentile_cont(seconds, 0.9), abs=1e-5
    )
    assert summary.mean.total_seconds() == pytest.approx(statistics.fmean(seconds), abs=1e-5)


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (None, "—"),
        (timedelta(0), "0 min"),
        (timedelta(seconds=20), "< 1 min"),
        (timedelta(minutes=12), "12 min"),
        (timedelta(hours=3), "3 h"),
        (timedelta(hours=2, minutes=30), "2 h 30 min"),
        (timedelta(hours=23, minutes=59, seconds=50), "1 d"),
        (timedelta(days=2, hours=4), "2 d 4 h"),
        (timedelta(hours=61.6), "2 d 14 h"),
    ],
)
def test_durations_read_in_at_most_two_units(value, text):
    assert format_duration(value) == text


def test_a_stage_that_caught_50_while_25_escaped_contains_two_thirds():
    assert containment(50, 25) == pytest.approx(50 / 75)
    assert format_percent(containment(50, 25)) == "66.7 %"
    assert containment(0, 0) is None


def test_180_caught_and_20_escaped_is_a_ten_percent_escape_rate():
    rate = escape_rate(escaped=20, caught=180)
    assert rate == pytest.approx(0.10)
    assert rate is not None and 1 - rate == pytest.approx(0.90)
    assert escape_rate(escaped=0, caught=0) is None
