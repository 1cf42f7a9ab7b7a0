"""The push as people see it: states on the board and the summary, and the Retry button."""

import pytest
from django.urls import reverse

from integrations.models import OutboxState, TicketPush
from retros.models import PushState
from retros.services import action_tracker_update
from tests.conftest import client_for
from tests.integrations.pushing import close, ready_retro
from tests.retros.conftest import make_escape

# Tasks run where they are queued (see the fixture in test_push.py).
pytestmark = pytest.mark.usefixtures("eager")

REFUSAL = "TF401320: Rule Error for field Area Path."


@pytest.fixture
def failed_retro(
    team,
    facilitator,
    member,
    stages,
    escape,
    azure_connection,
    fake_azure,
    django_capture_on_commit_callbacks,
):
    """A closed retro whose one action the tracker refused."""
    retro = ready_retro(team, facilitator, member, stages, [escape])
    fake_azure.fail(
        "POST",
        r"/_apis/wit/workitems/\$",
        status=400,
        body={"message": REFUSAL, "typeKey": "RuleValidationException"},
    )
    close(retro, django_capture_on_commit_callbacks)
    assert retro.actions.get().push_state == PushState.FAILED
    return retro


def retry_url(action) -> str:
    return reverse("action_push_retry", kwargs={"team": "checkout", "action_id": action.pk})


def board(user, retro) -> str:
    url = reverse("retro_detail", kwargs={"team": "checkout", "pk": retro.pk})
    response = client_for(user).get(url)
    assert response.status_code == 200
    return response.content.decode()


def summary(user, retro) -> str:
    url = reverse("retro_summary", kwargs={"team": "checkout", "pk": retro.pk})
    response = client_for(user).get(url)
    assert response.status_code == 200
    return response.content.decode()


# --- The Retry button.


def test_retry_pushes_a_failed_action_and_answers_its_card(
    failed_retro, member, fake_azure, django_capture_on_commit_callbacks
):
    action = failed_retro.actions.get()

    with django_capture_on_commit_callbacks(execute=True):
        response = client_for(member).post(retry_url(action), HTTP_HX_REQUEST="true")

    assert response.status_code == 200
    html = response.content.decode()
    assert f'id="escape-{action.escape_id}"' in html
    assert "Queued" in html and REFUSAL not in html
    action.refresh_from_db()
    [ticket] = fake_azure.tickets()
    assert (action.push_state, action.external_key) == (PushState.PUSHED, ticket["key"])
    assert TicketPush.objects.get(action=action).state == OutboxState.DONE


def test_retry_without_javascript_goes_back_to_the_page_it_came_from(
    failed_retro, member, django_capture_on_commit_callbacks
):
    action = failed_retro.actions.get()
    client = client_for(member)

    response = client.post(retry_url(action))
    assert response.status_code == 302
    assert response["Location"].startswith(
        reverse("retro_detail", kwargs={"team": "checkout", "pk": failed_retro.pk})
    )

    action_tracker_update(action_id=action.pk, push_state=PushState.FAILED, last_error="x")
    response = client.post(retry_url(action), {"return_to": "summary"})
    assert response.status_code == 302
    assert response["Location"].startswith(
        reverse("retro_summary", kwargs={"team": "checkout", "pk": failed_retro.pk})
    )


def test_a_refused_retry_says_why_in_the_card(failed_retro, member, azure_connection):
    azure_connection.delete()
    action = failed_retro.actions.get()

    response = client_for(member).post(retry_url(action), HTTP_HX_REQUEST="true")

    assert response.status_code == 200
    assert "No tracker is connected" in response.content.decode()
    action.refresh_from_db()
    assert action.push_state == PushState.FAILED


def test_retry_answers_only_post(failed_retro, member):
    response = client_for(member).get(retry_url(failed_retro.actions.get()))
    assert response.status_code == 405


def test_a_viewer_may_not_retry(failed_retro, viewer, fake_azure):
    response = client_for(viewer).post(retry_url(failed_retro.actions.get()))
    assert response.status_code == 403
    assert failed_retro.actions.get().push_state == PushState.FAILED


def test_an_outsider_does_not_find_the_action(failed_retro, outsider):
    response = client_for(outsider).post(retry_url(failed_retro.actions.get()))
    assert response.status_code == 404


def test_another_teams_action_is_not_found_under_this_team(
    failed_retro, member, other_team, outsider
):
    stages = list(other_team.stages.order_by("position"))
    theirs = ready_retro(other_team, outsider, outsider, stages, [make_escape(other_team)])
    response = client_for(member).post(retry_url(theirs.actions.get()))
    assert response.status_code == 404


# --- The states on the board and the summary.


def test_the_board_shows_a_failure_with_the_trackers_message_and_a_retry_button(
    failed_retro, member, viewer
):
    action = failed_retro.actions.get()
    page = board(member, failed_retro)
    assert "Push failed" in page
    assert REFUSAL in page
    assert retry_url(action) in page
    assert retry_url(action) not in board(viewer, failed_retro), "viewers cannot retry"


def test_the_board_shows_queued_pushing_and_pushed_with_key_link_and_sprint(
    failed_retro, member, viewer
):
    action = failed_retro.actions.get()

    action_tracker_update(action_id=action.pk, push_state=PushState.QUEUED, last_error="")
    assert "Queued" in board(member, failed_retro)
    assert retry_url(action) not in board(member, failed_retro)

    action_tracker_update(action_id=action.pk, push_state=PushState.PUSHING)
    assert "Pushing…" in board(member, failed_retro)

    action_tracker_update(
        action_id=action.pk,
        push_state=PushState.PUSHED,
        external_key="4711",
        external_url="https://dev.azure.com/acme/Shop/_workitems/edit/4711",
        sprint="Sprint 42",
    )
    page = board(viewer, failed_retro)
    assert "Pushed" in page
    assert 'href="https://dev.azure.com/acme/Shop/_workitems/edit/4711"' in page
    assert "Sprint 42" in page
    assert retry_url(action) not in board(member, failed_retro)


def test_the_board_warns_when_the_ticket_went_to_the_backlog(
    team,
    facilitator,
    member,
    stages,
    escape,
    azure_connection,
    fake_azure,
    django_capture_on_commit_callbacks,
):
    fake_azure.set_iterations([("Shop\\Sprint 40", "past")])
    retro = ready_retro(team, facilitator, member, stages, [escape])
    close(retro, django_capture_on_commit_callbacks)

    page = board(member, retro)
    assert "Placement warning" in page
    assert "goes to the backlog" in page
    assert "Backlog" in summary(member, retro)


def test_the_board_says_when_no_tracker_is_connected(
    team, facilitator, member, stages, escape, django_capture_on_commit_callbacks
):
    retro = ready_retro(team, facilitator, member, stages, [escape])
    close(retro, django_capture_on_commit_callbacks)

    assert "No tracker was connected when the retrospective closed." in board(member, retro)


def test_the_summary_shows_the_failure_and_its_message(failed_retro, member):
    page = summary(member, failed_retro)
    assert "Push failed" in page
    assert REFUSAL in page


# --- Before closing: where the tickets will go (issue 10, point 6).


@pytest.fixture
def open_retro(team, facilitator, member, stages, escape):
    return ready_retro(team, facilitator, member, stages, [escape])


def _tracker_line(html: str) -> str:
    start = html.index('class="tracker-target"')
    return " ".join(html[start : html.index("</p>", start)].split())


def test_before_closing_the_board_says_no_tracker_is_connected(open_retro, member, owner):
    line = _tracker_line(board(member, open_retro))
    assert "No tracker connected:" in line and "stay in Leakseal as drafts" in line
    assert "Connect Jira or Azure DevOps" not in line, "only an admin can connect one"
    assert "Connect Jira or Azure DevOps" in _tracker_line(board(owner, open_retro))


def test_before_closing_the_board_names_the_jira_project_and_board(
    open_retro, member, jira_connection
):
    line = _tracker_line(board(member, open_retro))
    assert "becomes a ticket in <strong>Jira Cloud</strong>" in line
    assert f"project {jira_connection.project}" in line
    assert f"the upcoming sprint of board {jira_connection.board_id}" in line
    assert jira_connection.token not in board(member, open_retro)


def test_before_closing_the_board_names_the_azure_devops_project_and_team(
    open_retro, member, azure_connection
):
    line = _tracker_line(board(member, open_retro))
    assert "becomes a ticket in <strong>Azure DevOps</strong>" in line
    assert (
        f"project {azure_connection.project}, the next iteration of {azure_connection.ado_team}"
        in line
    )
