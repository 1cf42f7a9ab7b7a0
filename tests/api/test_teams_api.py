from teams.models import Role
from teams.services import membership_set, team_create


def test_teams_lists_my_teams_with_my_role(member_api, member, team, other_team):
    membership_set(team=team_create(name="Accounts", slug="accounts"), user=member, role="viewer")
    response = member_api.get("/teams")
    assert response.status_code == 200
    assert response.json() == [
        {"slug": "accounts", "name": "Accounts", "timezone": "UTC", "role": Role.VIEWER},
        {"slug": "checkout", "name": "Checkout", "timezone": "Europe/Berlin", "role": "member"},
    ]


def test_team_detail_has_the_ordered_stages(member_api, team, stages):
    stages[0].position = 9
    stages[0].save()
    response = member_api.get("/teams/checkout")
    assert response.status_code == 200
    body = response.json()
    assert body["role"] == "member"
    assert [s["name"] for s in body["stages"]] == ["Integration", "E2E", "Unit"]


def test_a_viewer_may_read_the_team(viewer_api, team):
    response = viewer_api.get("/teams/checkout")
    assert response.status_code == 200
    assert response.json()["role"] == "viewer"


def test_another_teams_slug_is_404_like_a_missing_one(outsider_api, team, other_team):
    assert outsider_api.get("/teams/search").status_code == 200
    other = outsider_api.get("/teams/checkout")
    missing = outsider_api.get("/teams/no-such-team")
    assert other.status_code == missing.status_code == 404
    assert other.json() == missing.json()


def test_wrong_method_is_405(member_api, team):
    assert member_api.post("/teams/checkout", {}).status_code == 405


def test_a_slug_with_a_nul_byte_is_404_not_500(member_api, team):
    response = member_api.get("/teams/check%00out/escapes")
    assert response.status_code == 404
    assert response.json() == {"detail": "No such team"}
