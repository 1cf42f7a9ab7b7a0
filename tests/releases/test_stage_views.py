from datetime import timedelta

import pytest
from django.utils import timezone

from escapes.models import Escape, PipelineStage, StageCatch
from escapes.services import stage_catches_report
from retros.models import ActionKind, PreventativeAction, Retrospective
from tests.conftest import client_for

pytestmark = pytest.mark.django_db

LIST = "/t/checkout/stages/"
ADD = "/t/checkout/stages/new/"


def url(stage: PipelineStage, verb: str) -> str:
    return f"/t/checkout/stages/{stage.pk}/{verb}/"


def names(team) -> list[str]:
    return list(team.stages.order_by("position").values_list("name", flat=True))


def positions(team) -> list[int]:
    return list(team.stages.order_by("position").values_list("position", flat=True))


# --- viewing ---------------------------------------------------------------------------


def test_member_sees_the_stages_in_order_without_edit_controls(member, stages):
    response = client_for(member).get(LIST)
    assert response.status_code == 200
    assert [row["stage"].name for row in response.context["rows"]] == ["Unit", "Integration", "E2E"]
    assert b"Add a stage" not in response.content
    assert b"Only a team admin can change them." in response.content


def test_admin_sees_edit_controls_and_usage(owner, escape, stages):
    escape.stage = stages[1]
    escape.save()
    response = client_for(owner).get(LIST)
    assert b"Add a stage" in response.content
    usage = {r["stage"].name: r["stage"].escape_count for r in response.context["rows"]}
    assert usage == {"Unit": 0, "Integration": 1, "E2E": 0}


def test_viewer_may_view_stages(viewer, stages):
    assert client_for(viewer).get(LIST).status_code == 200


def test_outsider_cannot_see_the_stages(outsider, stages):
    assert client_for(outsider).get(LIST).status_code == 404


def test_stage_list_refuses_post(owner):
    assert client_for(owner).post(LIST).status_code == 405


# --- adding and renaming ------------------------------------------------------------------


def test_admin_adds_a_stage_at_the_end(owner, team, stages):
    response = client_for(owner).post(ADD, {"new-name": "  Contract  "})
    assert response.status_code == 302
    assert response.headers["Location"] == LIST
    assert names(team) == ["Unit", "Integration", "E2E", "Contract"]
    assert positions(team) == [0, 1, 2, 3]


def test_htmx_add_returns_the_stages_region(owner, team, stages):
    response = client_for(owner).post(ADD, {"new-name": "Smoke"}, headers={"HX-Request": "true"})
    assert response.status_code == 200
    assert b'id="stages"' in response.content
    assert b"<html" not in response.content
    assert "Stage “Smoke” added.".encode() in response.content


@pytest.mark.parametrize("name", ["E2E", "e2e", " unit "])
def test_a_duplicate_stage_name_is_a_field_error(owner, team, stages, name):
    response = client_for(owner).post(ADD, {"new-name": name})
    assert response.status_code == 200
    assert "already has a stage named" in response.context["add_form"].errors["name"][0]
    assert team.stages.count() == 3


@pytest.mark.parametrize("name", ["", "   ", "x" * 51])
def test_a_blank_or_long_stage_name_is_refused(owner, team, stages, name):
    response = client_for(owner).post(ADD, {"new-name": name})
    assert "name" in response.context["add_form"].errors
    assert team.stages.count() == 3


def test_admin_renames_a_stage(owner, team, stages):
    unit = stages[0]
    response = client_for(owner).post(url(unit, "rename"), {f"s{unit.pk}-name": "Unit tests"})
    assert response.status_code == 302
    assert names(team) == ["Unit tests", "Integration", "E2E"]


def test_renaming_to_a_different_case_of_itself_is_allowed(owner, team, stages):
    client_for(owner).post(url(stages[2], "rename"), {f"s{stages[2].pk}-name": "e2e"})
    assert names(team) == ["Unit", "Integration", "e2e"]


def test_renaming_onto_another_stage_shows_the_error_on_that_row(owner, team, stages):
    unit = stages[0]
    response = client_for(owner).post(
        url(unit, "rename"), {f"s{unit.pk}-name": "Integration"}, headers={"HX-Request": "true"}
    )
    assert response.status_code == 200
    row = next(r for r in response.context["rows"] if r["stage"].pk == unit.pk)
    assert row["form"].errors["name"] == ["Checkout already has a stage named “Integration”."]
    assert "stage named “Integration”".encode() in response.content
    assert names(team) == ["Unit", "Integration", "E2E"]


# --- moving --------------------------------------------------------------------------------


def test_admin_moves_a_stage_up_and_down(owner, team, stages):
    client = client_for(owner)
    client.post(url(stages[2], "move"), {"direction": "up"})
    assert names(team) == ["Unit", "E2E", "Integration"]
    client.post(url(stages[0], "move"), {"direction": "down"})
    assert names(team) == ["E2E", "Unit", "Integration"]
    assert positions(team) == [0, 1, 2]


def test_moving_past_either_end_changes_nothing(owner, team, stages):
    client = client_for(owner)
    client.post(url(stages[0], "move"), {"direction": "up"})
    client.post(url(stages[2], "move"), {"direction": "down"})
    assert names(team) == ["Unit", "Integration", "E2E"]


def test_moving_heals_gaps_and_ties_in_positions(owner, team, stages):
    PipelineStage.objects.filter(pk=stages[0].pk).update(position=5)
    PipelineStage.objects.filter(pk=stages[1].pk).update(position=5)
    PipelineStage.objects.filter(pk=stages[2].pk).update(position=9)
    client_for(owner).post(url(stages[2], "move"), {"direction": "up"})
    assert names(team) == ["Unit", "E2E", "Integration"]
    assert positions(team) == [0, 1, 2]


def test_a_bad_direction_is_refused(owner, team, stages):
    response = client_for(owner).post(url(stages[1], "move"), {"direction": "sideways"})
    assert response.status_code == 200
    assert response.context["error"] == "Move a stage up or down."
    assert names(team) == ["Unit", "Integration", "E2E"]


# --- deleting ------------------------------------------------------------------------------


def test_admin_deletes_an_unused_stage_and_the_rest_close_up(owner, team, stages, release):
    stage_catches_report(release=release, counts={stages[1]: 4})
    response = client_for(owner).post(url(stages[1], "delete"))
    assert response.status_code == 302
    assert names(team) == ["Unit", "E2E"]
    assert positions(team) == [0, 1]
    assert not StageCatch.objects.exists()


def test_a_stage_an_escape_refers_to_cannot_be_deleted(owner, team, stages, escape):
    escape.stage = stages[0]
    escape.save()
    response = client_for(owner).post(url(stages[0], "delete"))
    assert response.status_code == 200
    assert response.context["error"].startswith("“Unit” cannot be deleted: 1 escape refer")
    assert "“Unit” cannot be deleted".encode() in response.content
    assert names(team) == ["Unit", "Integration", "E2E"]


def test_a_stage_an_action_refers_to_cannot_be_deleted(owner, facilitator, team, stages, escape):
    retro = Retrospective.objects.create(team=team, title="R", facilitator=facilitator)
    PreventativeAction.objects.create(
        retro=retro, escape=escape, kind=ActionKind.NEW_TEST, stage=stages[2], title="Add a test"
    )
    response = client_for(owner).post(url(stages[2], "delete"), headers={"HX-Request": "true"})
    assert "1 preventative action refer" in response.context["error"]
    assert names(team) == ["Unit", "Integration", "E2E"]


# --- who may change stages --------------------------------------------------------------


@pytest.mark.parametrize("persona", ["facilitator", "member", "viewer"])
def test_only_an_admin_changes_stages(persona, request, team, stages):
    client = client_for(request.getfixturevalue(persona))
    assert client.post(ADD, {"new-name": "Smoke"}).status_code == 403
    assert client.post(url(stages[0], "rename"), {f"s{stages[0].pk}-name": "U"}).status_code == 403
    assert client.post(url(stages[0], "move"), {"direction": "down"}).status_code == 403
    assert client.post(url(stages[0], "delete")).status_code == 403
    assert names(team) == ["Unit", "Integration", "E2E"]


def test_outsider_cannot_change_stages(outsider, team, stages):
    client = client_for(outsider)
    assert client.post(ADD, {"new-name": "Smoke"}).status_code == 404
    assert client.post(url(stages[0], "delete")).status_code == 404
    assert names(team) == ["Unit", "Integration", "E2E"]


def test_admin_cannot_touch_another_teams_stage(owner, other_team, stages):
    theirs = other_team.stages.first()
    client = client_for(owner)
    assert client.post(f"/t/checkout/stages/{theirs.pk}/delete/").status_code == 404
    assert client.post(f"/t/checkout/stages/{theirs.pk}/rename/", {}).status_code == 404
    assert client.post(f"/t/checkout/stages/{theirs.pk}/move/", {}).status_code == 404
    assert other_team.stages.count() == 3


@pytest.mark.parametrize("verb", ["rename", "move", "delete"])
def test_stage_writes_refuse_get(owner, stages, verb):
    assert client_for(owner).get(url(stages[0], verb)).status_code == 405


def test_add_refuses_get(owner):
    assert client_for(owner).get(ADD).status_code == 405


def test_stage_list_renders_with_many_escapes(owner, team, stages):
    now = timezone.now()
    for i in range(5):
        Escape.objects.create(
            team=team, title=f"L{i}", detected_at=now - timedelta(hours=i), stage=stages[0]
        )
    response = client_for(owner).get(LIST)
    assert response.context["rows"][0]["stage"].escape_count == 5
