"""An action marked done in Leakseal counts in the dashboard's follow-through like one whose
ticket is done (issue 12, point 5; docs/metrics.md "Follow-through")."""

import re

import pytest
from django.urls import reverse

from escapes.models import Escape
from insights.rollups import rollups_recompute_team
from insights.tasks import rollup_recompute_task
from retros import follow_through
from retros.models import PreventativeAction
from tests.conftest import client_for
from tests.dashboard import run_when_queued
from tests.retros.conftest import closed_retro_of

pytestmark = pytest.mark.django_db


def _done_cell(html: str) -> str:
    row = re.search(r"<th scope=\"row\">Done</th><td class=\"num\">([^<]*)</td>", html)
    assert row, "the follow-through table has a Done row"
    return row.group(1)


def test_an_action_marked_done_in_leakseal_counts_as_done_on_the_dashboard(
    team, facilitator, member, stages, escape, monkeypatch, django_capture_on_commit_callbacks
):
    closed_retro = closed_retro_of(team, facilitator, member, stages, [escape])
    worker = run_when_queued(monkeypatch, rollup_recompute_task)
    rollups_recompute_team(team_id=closed_retro.team_id)
    page = reverse("team_dashboard", kwargs={"team": "checkout"})
    assert _done_cell(client_for(member).get(page).content.decode()) == "0"

    action = PreventativeAction.objects.get(retro=closed_retro, escape=escape)
    with django_capture_on_commit_callbacks(execute=True):
        follow_through.action_mark_done(action=action, by=member, note="Merged")

    assert worker, "marking done queues the escape's rollup, as a done ticket does"
    assert Escape.objects.get(pk=escape.pk).sealed_at is not None
    assert _done_cell(client_for(member).get(page).content.decode()) == "1"

    with django_capture_on_commit_callbacks(execute=True):
        follow_through.action_mark_undone(action=action, by=member)
    assert _done_cell(client_for(member).get(page).content.decode()) == "0"
