"""Where an action's ticket stands reads the same on the board, the summary page, its Markdown
and the escape page: all four word it with `PreventativeAction.ticket_state`."""

import html

import pytest
from django.urls import reverse

from retros.models import PreventativeAction, PushState, TicketState
from retros.services import action_tracker_update
from tests.conftest import client_for
from tests.retros.conftest import add_action

pytestmark = pytest.mark.django_db

NOT_PUSHED = TicketState("Not pushed", "No tracker was connected when the retrospective closed.")
DRAFT = TicketState(
    "Draft", "Becomes a ticket when the retrospective closes, if a tracker is connected."
)

# Tracker fields to record on a closed retro's action -> what every page must say.
STATES: dict[str, tuple[dict[str, str], TicketState]] = {
    "no tracker": ({}, NOT_PUSHED),
    "queued": ({"push_state": PushState.QUEUED}, TicketState("Queued")),
    "queued after a failed try": (
        {"push_state": PushState.QUEUED, "last_error": "Jira answered 503; trying again."},
        TicketState("Queued", "Jira answered 503; trying again."),
    ),
    "pushing": (
        {"push_state": PushState.PUSHING},
        TicketState(
            "Pushing…", "A worker is on it; should it stop, another takes over within a minute."
        ),
    ),
    "pushed": (
        {"push_state": PushState.PUSHED, "external_key": "SHOP-12", "sprint": "Sprint 42"},
        TicketState("Pushed"),
    ),
    "pushed to the backlog": (
        {
            "push_state": PushState.PUSHED,
            "external_key": "SHOP-13",
            "last_error": "No future or active sprint; the ticket goes to the backlog.",
        },
        TicketState(
            "Pushed",
            "Placement warning: No future or active sprint; the ticket goes to the backlog.",
            "warning",
        ),
    ),
    "failed": (
        {"push_state": PushState.FAILED, "last_error": "Field 'priority' is required."},
        TicketState("Push failed", "Field 'priority' is required.", "error"),
    ),
    "failed without a message": (
        {"push_state": PushState.FAILED},
        TicketState("Push failed", "The tracker refused the ticket.", "error"),
    ),
}


def four_places(user, action: PreventativeAction) -> dict[str, str]:
    """The board, the summary, the Markdown and the escape page, as text to search."""
    team, retro = action.retro.team.slug, action.retro_id
    client = client_for(user)
    pages = {
        "board": reverse("retro_detail", kwargs={"team": team, "pk": retro}),
        "summary": reverse("retro_summary", kwargs={"team": team, "pk": retro}),
        "markdown": reverse("retro_summary_markdown", kwargs={"team": team, "pk": retro}),
        "escape page": reverse("escape_detail", kwargs={"team": team, "pk": action.escape_id}),
    }
    found = {}
    for place, url in pages.items():
        response = client.get(url)
        assert response.status_code == 200, place
        text = response.content.decode()
        found[place] = text if place == "markdown" else html.unescape(text)
    return found


@pytest.mark.parametrize("name", list(STATES))
def test_every_page_words_a_closed_retros_ticket_the_same(closed_retro, escape, viewer, name):
    fields, expected = STATES[name]
    action = closed_retro.actions.get(escape=escape)
    if fields:
        action_tracker_update(action_id=action.pk, **fields)
    action = PreventativeAction.objects.select_related("retro__team").get(pk=action.pk)

    assert action.ticket_state == expected
    for place, text in four_places(viewer, action).items():
        assert expected.label in text, (place, expected.label)
        assert expected.note in text, (place, expected.note)
        if fields.get("external_key"):
            assert fields["external_key"] in text, place
    assert "Draft" not in four_places(viewer, action)["markdown"]


def test_a_draft_reads_the_same_before_the_retro_closes(whys_retro, escape, member, stages):
    action = add_action(whys_retro, escape, member, stages[0])
    action = PreventativeAction.objects.select_related("retro__team").get(pk=action.pk)

    assert action.ticket_state == DRAFT
    for place, text in four_places(member, action).items():
        assert DRAFT.label in text and DRAFT.note in text, place
        assert NOT_PUSHED.label not in text, place


def test_the_markdown_puts_the_state_with_its_key_sprint_and_status(closed_retro, escape, viewer):
    action = closed_retro.actions.get(escape=escape)
    action_tracker_update(
        action_id=action.pk,
        push_state=PushState.PUSHED,
        external_key="SHOP-12",
        sprint="Sprint 42",
        external_status="In Progress",
    )
    action = PreventativeAction.objects.select_related("retro__team").get(pk=action.pk)

    markdown = four_places(viewer, action)["markdown"]

    assert "tracker: Pushed · SHOP-12 · Sprint 42 · In Progress\n" in markdown
