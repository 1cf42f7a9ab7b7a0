"""GET /api/v1/teams/{slug}/dashboard and /api/v1/dashboard: the page's numbers as JSON."""

import pytest

from insights import dashboard as numbers
from teams.models import Role
from teams.services import membership_set
from tests.api.conftest import ApiClient, api_for
from tests.dashboard.test_dashboard_views import RANGE, build_dataset

pytestmark = pytest.mark.skipif(
    not hasattr(numbers, "dashboard"), reason="insights.dashboard.dashboard() is not written yet"
)


@pytest.fixture
def dataset(team):
    return build_dataset(team)


def test_the_team_dashboard_is_json_with_durations_in_seconds(member_api, team, dataset):
    response = member_api.get(f"/teams/{team.slug}/dashboard", RANGE)
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["query"]["teams"] == ["checkout"] and body["query"]["period"] == "month"
    january, february, march = body["periods"]
    assert january["label"] == "2026-01"
    assert january["deficit"] == {
        "n": 2,
        "known": 2,
        "mean": 36 * 3600.0,
        "median": 36 * 3600.0,
        "p90": 45.6 * 3600,
    }
    assert february["deficit"]["n"] == 2 and february["deficit"]["known"] == 0
    assert march["deficit"]["n"] == 0 and sum(march["categories"].values()) == 0
    assert body["problems"]["negative_deficit"] == [dataset["d"].pk]
    assert body["total"]["n"] == 4 and body["total"]["known"] == 2
    assert "computed_at" in body and "stale_teams" in body


def test_week_periods_and_filters_reach_the_api(member_api, team, dataset):
    body = member_api.get(
        f"/teams/{team.slug}/dashboard", {**RANGE, "period": "week", "severity": "high"}
    ).json()
    assert body["periods"][0]["label"] == "2026-W01"
    assert sum(p["deficit"]["n"] for p in body["periods"]) == 1


def test_a_viewer_may_read_the_team_dashboard(viewer_api, team):
    assert viewer_api.get(f"/teams/{team.slug}/dashboard").status_code == 200


def test_another_teams_dashboard_is_404(outsider_api, team):
    assert outsider_api.get(f"/teams/{team.slug}/dashboard").status_code == 404


def test_without_a_token_the_dashboard_is_401(team):
    assert ApiClient(None).get(f"/teams/{team.slug}/dashboard").status_code == 401
    assert ApiClient(None).get("/dashboard").status_code == 401


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"start": "2026-03-01", "end": "2026-01-01"}, "start"),
        ({"period": "fortnight"}, "period"),
        ({"release": "999999"}, "release"),
    ],
)
def test_a_bad_parameter_is_422_naming_it(member_api, team, params, field):
    response = member_api.get(f"/teams/{team.slug}/dashboard", params)
    assert response.status_code == 422
    assert [item["loc"][-1] for item in response.json()["detail"]] == [field]


def test_the_all_teams_dashboard_covers_only_the_users_teams(team, other_team, member, dataset):
    api = api_for(member)
    assert api.get("/dashboard", RANGE).json()["query"]["teams"] == ["checkout"]
    membership_set(team=other_team, user=member, role=Role.VIEWER)
    body = api.get("/dashboard", RANGE).json()
    assert sorted(body["query"]["teams"]) == ["checkout", "search"]
    assert body["total"]["n"] == 4
