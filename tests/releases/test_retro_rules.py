"""The team's retro rules: how strict closing is, set by an admin on the stages page."""

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from teams.models import Team
from teams.services import team_create
from tests.conftest import client_for

pytestmark = pytest.mark.django_db

PAGE = "/t/checkout/stages/"
RULES = "/t/checkout/retro-rules/"
HX = {"HX-Request": "true"}
STRICT = "Closing needs a preventative action and a root cause for every escape."
LENIENT = "Closing needs a preventative action for every escape."


def strict(team: Team) -> bool:
    team.refresh_from_db()
    return team.close_requires_root_cause


def test_an_admin_sees_the_rule_and_its_form_on_the_stages_page(owner, team):
    html = client_for(owner).get(PAGE).content.decode()
    assert 'id="retro-rules"' in html
    assert STRICT in html
    assert f'action="{RULES}"' in html
    assert 'name="requires_root_cause" id="id_requires_root_cause" checked' in html


@pytest.mark.parametrize("persona", ["facilitator", "member", "viewer"])
def test_other_members_read_the_rule_without_a_form(persona, team, request):
    html = client_for(request.getfixturevalue(persona)).get(PAGE).content.decode()
    assert STRICT in html
    assert RULES not in html
    assert "Only a team admin can change it." in html


def test_an_admin_relaxes_the_rule_without_javascript(owner, team):
    response = client_for(owner).post(RULES, {}, follow=True)
    assert response.redirect_chain == [(PAGE, 302)]
    assert not strict(team)
    html = response.content.decode()
    assert "Retro rules saved." in html
    assert LENIENT in html and STRICT not in html
    assert 'name="requires_root_cause" id="id_requires_root_cause">' in html  # unticked


def test_an_admin_sets_the_rule_with_htmx_and_gets_the_region_back(owner, team):
    team.close_requires_root_cause = False
    team.save()

    response = client_for(owner).post(RULES, {"requires_root_cause": "on"}, headers=HX)

    html = response.content.decode()
    assert response.status_code == 200
    assert html.lstrip().startswith('<section id="retro-rules"')
    assert "<html" not in html
    assert "Retro rules saved." in html
    assert STRICT in html and LENIENT not in html
    assert 'name="requires_root_cause" id="id_requires_root_cause" checked' in html
    assert strict(team)


@pytest.mark.parametrize("persona", ["facilitator", "member", "viewer"])
def test_only_an_admin_may_change_the_rule(persona, team, request):
    response = client_for(request.getfixturevalue(persona)).post(RULES, {})
    assert response.status_code == 403
    assert strict(team)


def test_an_outsider_does_not_find_the_rules(outsider, team):
    assert client_for(outsider).post(RULES, {}).status_code == 404
    assert strict(team)


def test_the_rules_answer_only_post(owner, team):
    assert client_for(owner).get(RULES).status_code == 405
    assert strict(team)


@pytest.mark.django_db(transaction=True)
def test_teams_from_before_the_rule_keep_closing_on_actions_and_new_teams_are_strict():
    before = [("teams", "0001_initial")]
    after = [("teams", "0002_team_close_requires_root_cause")]
    executor = MigrationExecutor(connection)
    executor.migrate(before)
    old_team = executor.loader.project_state(before).apps.get_model("teams", "Team")
    old_team.objects.create(name="Old", slug="old", timezone="UTC")

    executor = MigrationExecutor(connection)
    executor.migrate(after)
    executor.loader.build_graph()
    executor.migrate(executor.loader.graph.leaf_nodes())

    assert Team.objects.get(slug="old").close_requires_root_cause is False
    assert team_create(name="New", slug="new").close_requires_root_cause is True
