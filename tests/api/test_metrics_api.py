from datetime import timedelta

import pytest
from django.utils import timezone

from escapes.models import Escape, Release, StageCatch


@pytest.fixture
def four_escapes(team, stages):
    """Deficits of 1, 2, 3 and 4 hours at the Unit stage: median 2.5 h (docs/metrics.md)."""
    detected = timezone.now() - timedelta(days=2)
    for hours in (1, 2, 3, 4):
        Escape.objects.create(
            team=team,
            title=f"{hours} h deficit",
            merged_at=detected - timedelta(hours=hours),
            detected_at=detected,
            stage=stages[0],
        )
    Escape.objects.create(
        team=team, title="merge unknown", detected_at=detected, category="flakiness"
    )


def test_metrics_over_a_date_range(member_api, team, stages, four_escapes):
    today = timezone.now().astimezone(team.tzinfo).date()
    start = (today - timedelta(days=7)).isoformat()
    response = member_api.get("/teams/checkout/metrics", {"start": start, "end": today.isoformat()})
    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["start"], body["end"], body["timezone"]) == (
        start,
        today.isoformat(),
        "Europe/Berlin",
    )
    assert body["escapes_total"] == 5
    assert (body["deficit_known"], body["deficit_of"]) == (4, 5)
    deficit = body["detection_deficit"]
    assert deficit["n"] == 4
    assert deficit["median_hours"] == pytest.approx(2.5)
    assert deficit["median_seconds"] == pytest.approx(2.5 * 3600)
    assert deficit["mean_hours"] == pytest.approx(2.5)
    assert deficit["p90_hours"] == pytest.approx(3.7)
    unit = next(s for s in body["by_stage"] if s["name"] == "Unit")
    assert (unit["escaped"], unit["unattributed"], unit["caught"]) == (4, False, None)
    # Per stage, the mean and P90 stand beside the median (docs/metrics.md: 1, 2, 3, 4 h).
    assert unit["mean_deficit_hours"] == pytest.approx(2.5)
    assert unit["median_deficit_hours"] == pytest.approx(2.5)
    assert unit["p90_deficit_hours"] == pytest.approx(3.7)
    assert unit["mean_deficit_seconds"] == pytest.approx(2.5 * 3600)
    assert unit["p90_deficit_seconds"] == pytest.approx(3.7 * 3600)
    e2e = next(s for s in body["by_stage"] if s["name"] == "E2E")
    assert (e2e["mean_deficit_seconds"], e2e["p90_deficit_hours"]) == (None, None)
    assert body["weakest_stage"] == "Unit"
    counts = {c["key"]: c["count"] for c in body["by_category"]}
    assert counts == {
        "coverage_gap": 0,
        "environment_mismatch": 0,
        "flakiness": 1,
        "unclassified": 4,
    }
    assert len(body["data_problems"]["missing_merged_at"]) == 1


def test_containment_from_reported_stage_catches(member_api, team, stages):
    """A stage that caught 50 while 25 escaped it has containment 50 ÷ 75."""
    released = timezone.now() - timedelta(days=3)
    release = Release.objects.create(team=team, version="5.0", released_at=released)
    StageCatch.objects.create(release=release, stage=stages[0], caught=50)
    for i in range(25):
        Escape.objects.create(
            team=team,
            title=f"e{i}",
            detected_at=released + timedelta(hours=1),
            stage=stages[0],
            release=release,
        )
    body = member_api.get("/teams/checkout/metrics").json()
    unit = next(s for s in body["by_stage"] if s["name"] == "Unit")
    assert unit["containment"] == pytest.approx(50 / 75)
    assert unit["caught_source"] == "typed"
    integration = next(s for s in body["by_stage"] if s["name"] == "Integration")
    assert (integration["caught"], integration["caught_source"]) == (None, None)
    [rate] = body["release_escape_rates"]
    assert (rate["version"], rate["escaped"], rate["caught"]) == ("5.0", 25, 50)
    assert rate["escape_rate"] == pytest.approx(25 / 75)


def test_metrics_default_to_the_last_90_days(member_api, team, frozen_clock):
    body = member_api.get("/teams/checkout/metrics").json()
    today = timezone.now().astimezone(team.tzinfo).date()
    assert body["end"] == today.isoformat()
    assert body["start"] == (today - timedelta(days=89)).isoformat()
    assert body["escapes_total"] == 0
    assert body["detection_deficit"]["median_hours"] is None


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"start": "2026-03-10", "end": "2026-03-01"}, "start"),
        ({"start": "2026-02-30"}, "start"),
        ({"end": "yesterday"}, "end"),
    ],
)
def test_bad_ranges_are_422(member_api, team, params, field):
    response = member_api.get("/teams/checkout/metrics", params)
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["query", field]


@pytest.mark.parametrize(
    "params", [{"end": "0001-01-02"}, {"start": "0001-01-01", "end": "9999-12-31"}]
)
def test_ranges_at_the_ends_of_the_calendar_do_not_fail(member_api, escape, params):
    response = member_api.get("/teams/checkout/metrics", params)
    assert response.status_code == 200
    assert response.json()["escapes_total"] == (1 if "start" in params else 0)


def test_viewer_reads_metrics(viewer_api, team):
    assert viewer_api.get("/teams/checkout/metrics").status_code == 200


def test_outsider_gets_404_for_metrics(outsider_api, team):
    assert outsider_api.get("/teams/checkout/metrics").status_code == 404


def test_measured_counts_give_containment_and_say_so(member_api, team, stages):
    released = timezone.now() - timedelta(days=3)
    release = Release.objects.create(team=team, version="5.1", released_at=released)
    StageCatch.objects.create(release=release, stage=stages[1], caught=3, source="measured")
    Escape.objects.create(
        team=team, title="e", detected_at=released + timedelta(hours=1), stage=stages[1]
    )
    body = member_api.get("/teams/checkout/metrics").json()
    integration = next(s for s in body["by_stage"] if s["name"] == "Integration")
    assert integration["caught_source"] == "measured"
    assert integration["containment"] == pytest.approx(3 / 4)
