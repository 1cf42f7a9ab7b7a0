import pytest

from retros.models import (
    ActionKind,
    Phase,
    PreventativeAction,
    PushState,
    RetroEscape,
    Retrospective,
    RootCauseKind,
    Why,
)


def make_retro(team, facilitator, escapes, *, anonymous=False, title="Retro of 2026.11.1"):
    retro = Retrospective.objects.create(
        team=team, title=title, facilitator=facilitator, anonymous=anonymous, phase=Phase.WHYS
    )
    for position, escape in enumerate(escapes):
        RetroEscape.objects.create(retro=retro, escape=escape, position=position)
    return retro


@pytest.fixture
def retro(team, facilitator, member, escape, stages):
    retro = make_retro(team, facilitator, [escape])
    first = Why.objects.create(
        retro=retro, escape=escape, text="The gateway was slow", author=member
    )
    Why.objects.create(
        retro=retro,
        escape=escape,
        parent=first,
        text="No latency test in staging",
        author=facilitator,
        root_cause_kind=RootCauseKind.AUTOMATION_SHORTFALL,
    )
    PreventativeAction.objects.create(
        retro=retro,
        escape=escape,
        kind=ActionKind.NEW_TEST,
        stage=stages[1],
        title="Latency injection test",
        owner=member,
        push_state=PushState.PUSHED,
        external_key="CHK-42",
        sprint="Sprint 48",
    )
    return retro


def test_retro_list(member_api, retro):
    response = member_api.get("/teams/checkout/retros")
    assert response.status_code == 200
    body = response.json()
    assert body["count"] == 1
    item = body["items"][0]
    assert item["title"] == "Retro of 2026.11.1"
    assert item["phase"] == "whys"
    assert item["facilitator"] == "fred"
    assert item["escape_count"] == 1


def test_retro_detail_has_escapes_whys_and_actions(member_api, retro, escape):
    response = member_api.get(f"/teams/checkout/retros/{retro.pk}")
    assert response.status_code == 200
    body = response.json()
    assert (body["phase"], body["version"], body["anonymous"]) == ("whys", 1, False)
    [item] = body["escapes"]
    assert item["id"] == escape.pk
    assert item["category"] is None
    assert [w["text"] for w in item["whys"]] == [
        "The gateway was slow",
        "No latency test in staging",
    ]
    assert [w["author"] for w in item["whys"]] == ["mia", "fred"]
    assert item["whys"][1]["parent_id"] == item["whys"][0]["id"]
    assert item["whys"][0]["parent_id"] is None  # null values are still sent
    assert item["whys"][1]["root_cause_kind"] == "automation_shortfall"
    [action] = item["actions"]
    assert action["push_state"] == "pushed"
    assert action["external_key"] == "CHK-42"
    assert action["stage"] == "Integration"
    assert action["owner"] == "mia"


def test_an_anonymous_retro_hides_who_wrote_each_why(member_api, retro):
    retro.anonymous = True
    retro.save()
    PreventativeAction.objects.update(owner=None)  # so "mia" could only come from a why
    response = member_api.get(f"/teams/checkout/retros/{retro.pk}")
    assert response.status_code == 200
    whys = response.json()["escapes"][0]["whys"]
    assert len(whys) == 2
    assert all("author" not in w for w in whys)
    assert b"mia" not in response.content


def test_retro_list_issues_a_bounded_number_of_queries(
    member_api, team, facilitator, escape, django_assert_max_num_queries
):
    member_api.get("/teams/checkout/retros")  # the token's first use writes last_used_at
    for n in (3, 30):
        Retrospective.objects.all().delete()
        for i in range(n):
            make_retro(team, facilitator, [escape], title=f"Retro {i}")
        with django_assert_max_num_queries(5):
            assert len(member_api.get("/teams/checkout/retros", {"limit": 50}).json()["items"]) == n


def test_retro_detail_issues_a_bounded_number_of_queries(
    member_api, team, facilitator, member, escape, django_assert_max_num_queries
):
    member_api.get("/teams")
    for n in (3, 30):
        Retrospective.objects.all().delete()
        retro = make_retro(team, facilitator, [escape])
        for i in range(n):
            Why.objects.create(retro=retro, escape=escape, text=f"why {i}", author=member)
            PreventativeAction.objects.create(
                retro=retro, escape=escape, kind=ActionKind.FLAKE_FIX, title=f"a{i}", owner=member
            )
        # The earlier versions of all whys at once, and all facts at once.
        with django_assert_max_num_queries(9):
            body = member_api.get(f"/teams/checkout/retros/{retro.pk}").json()
        assert len(body["escapes"][0]["whys"]) == n


def test_viewer_reads_retros(viewer_api, retro):
    assert viewer_api.get(f"/teams/checkout/retros/{retro.pk}").status_code == 200


def test_outsider_gets_404_for_another_teams_retro(outsider_api, other_team, retro):
    assert outsider_api.get("/teams/checkout/retros").status_code == 404
    assert outsider_api.get(f"/teams/checkout/retros/{retro.pk}").status_code == 404
    assert outsider_api.get(f"/teams/search/retros/{retro.pk}").status_code == 404


def test_retros_are_read_only(member_api, retro):
    assert member_api.post("/teams/checkout/retros", {"title": "x"}).status_code == 405
    assert (
        member_api.patch(f"/teams/checkout/retros/{retro.pk}", {"phase": "closed"}).status_code
        == 405
    )
    retro.refresh_from_db()
    assert retro.phase == Phase.WHYS
