"""POST /api/v1/teams/<team>/actions/<id>/done and /reopen (issue 12, point 5)."""

from datetime import UTC, datetime

import pytest

from escapes.models import Escape
from retros.models import Phase, PreventativeAction, PushState, RetroEscape, Retrospective


@pytest.fixture
def action(team, facilitator, member, escape, stages):
    retro = Retrospective.objects.create(
        team=team,
        title="Closed retro",
        facilitator=facilitator,
        phase=Phase.CLOSED,
        closed_at=datetime(2026, 11, 20, tzinfo=UTC),
    )
    RetroEscape.objects.create(retro=retro, escape=escape)
    return PreventativeAction.objects.create(
        retro=retro, escape=escape, kind="new_test", stage=stages[0], title="Guard", owner=member
    )


def _path(action, verb="done", team="checkout"):
    return f"/teams/{team}/actions/{action.pk}/{verb}"


def test_a_member_marks_an_action_done_and_reopens_it(member_api, action, escape):
    response = member_api.post(
        _path(action), {"note": "Test merged", "url": "https://ci.example/1"}
    )
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["id"] == action.pk and body["retro_id"] == action.retro_id
    assert body["done_by"] == "mia" and body["done_note"] == "Test merged"
    assert body["done_url"] == "https://ci.example/1" and body["done_at"]
    assert Escape.objects.get(pk=escape.pk).sealed_at is not None
    reopened = member_api.post(_path(action, "reopen"))
    assert reopened.status_code == 200
    assert reopened.json()["done_at"] is None and reopened.json()["done_by"] is None
    again = member_api.post(_path(action, "reopen"))
    assert again.status_code == 409 and "not done" in again.json()["detail"]


def test_the_retro_api_gives_who_marked_it_done(member_api, action):
    member_api.post(_path(action), {"note": "Guarded"})
    detail = member_api.get(f"/teams/checkout/retros/{action.retro_id}").json()
    given = detail["escapes"][0]["actions"][0]
    assert (given["done_by"], given["done_note"]) == ("mia", "Guarded")


def test_a_bad_link_and_a_long_note_are_named(member_api, action):
    response = member_api.post(_path(action), {"note": "x", "url": "javascript:alert(1)"})
    assert response.status_code == 422
    detail = response.json()["detail"]
    assert [item["loc"] for item in detail] == [["body", "url"]]
    long = member_api.post(_path(action), {"note": "x" * 301})
    assert long.status_code == 422 and long.json()["detail"][0]["loc"][-1] == "note"
    unknown = member_api.post(_path(action), {"done": True})
    assert unknown.status_code == 422
    assert PreventativeAction.objects.get(pk=action.pk).done_at is None


def test_an_action_with_a_ticket_is_refused_naming_the_ticket(member_api, action):
    PreventativeAction.objects.filter(pk=action.pk).update(
        tracker="azure_devops", push_state=PushState.PUSHED, external_key="4711"
    )
    response = member_api.post(_path(action))
    assert response.status_code == 409
    assert "Done follows the ticket 4711 in Azure DevOps" in response.json()["detail"]


def test_viewers_get_403_and_outsiders_404(viewer_api, outsider_api, action):
    assert viewer_api.post(_path(action)).status_code == 403
    assert outsider_api.post(_path(action)).status_code == 404
    assert outsider_api.post(_path(action, team="search")).status_code == 404
    assert PreventativeAction.objects.get(pk=action.pk).done_at is None


def test_the_openapi_document_describes_both(db, client):
    paths = client.get("/api/v1/openapi.json").json()["paths"]
    done = paths["/api/v1/teams/{slug}/actions/{action_id}/done"]["post"]
    assert "409" in done["description"] and "requestBody" in done
    assert "/api/v1/teams/{slug}/actions/{action_id}/reopen" in paths
