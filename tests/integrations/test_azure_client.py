"""AzureClient against the fake Azure DevOps over real HTTP (tests/fakes/azure.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from integrations.azure import AzureClient, ado_priority, html_text, plain_text
from integrations.clients import client_for
from integrations.http import TrackerError
from integrations.trackers import Placement, TicketDraft
from tests.fakes import accounts

CREATE = r"/_apis/wit/workitems/\$"


def draft(**overrides: str) -> TicketDraft:
    values = {
        "title": "Add an E2E test for saved-card checkout",
        "description": "Saved cards failed in production.\nCover it in E2E <before> release.",
        "label": "leakseal-0b5e6c8e-1111-4c5e-9f00-2a2b3c4d5e6f",
        "issue_type": "Task",
        **overrides,
    }
    return TicketDraft(**values)


@pytest.fixture
def client(azure_connection) -> AzureClient:
    made = client_for(azure_connection)
    assert isinstance(made, AzureClient)
    return made


def next_sprint() -> Placement:
    return Placement(name="Sprint 42", ref="Shop\\Sprint 42")


# --- check()


def test_check_proves_credentials_project_team_and_names_the_next_iteration(client):
    result = client.check()

    assert result.ok
    assert result.lines == [
        "Signed in to acme",
        "Project Shop, team Shop Team found",
        "Work item type Task exists",
        "Next work item goes into iteration Shop\\Sprint 42",
    ]
    assert result.placement == Placement(name="Sprint 42", ref="Shop\\Sprint 42")


def test_check_with_a_bad_pat_says_so_without_raising_or_showing_the_pat(
    azure_connection, fake_azure
):
    azure_connection.token = "not-the-pat"
    result = AzureClient(azure_connection).check()

    assert not result.ok
    assert "refused the personal access token" in result.lines[-1]
    assert "HTTP 401" in result.lines[-1]
    assert not any("not-the-pat" in line or accounts.ADO_PAT in line for line in result.lines)


def test_check_of_an_unknown_team_reports_azure_devops_message(azure_connection, fake_azure):
    azure_connection.ado_team = "Nobody"
    result = AzureClient(azure_connection).check()

    assert not result.ok
    assert result.lines == ["HTTP 404: The team with id Nobody does not exist."]


def test_check_of_an_unknown_project_reports_azure_devops_message(azure_connection, fake_azure):
    azure_connection.project = "Shopp"
    result = AzureClient(azure_connection).check()

    assert not result.ok
    assert "TF200016: The following project does not exist: Shopp" in result.lines[-1]


def test_check_of_an_unknown_work_item_type_fails_after_signing_in(azure_connection, fake_azure):
    azure_connection.issue_type = "Chore"
    result = AzureClient(azure_connection).check()

    assert not result.ok
    assert result.lines[0] == "Signed in to acme"
    assert "Work item type Chore does not exist" in result.lines[-1]


def test_check_of_an_unreachable_organization_is_a_line_not_an_exception(azure_connection):
    azure_connection.base_url = "http://127.0.0.1:9/acme"  # discard port: nothing listens
    result = AzureClient(azure_connection).check()

    assert not result.ok
    assert result.lines == ["Could not connect to the tracker"]


def test_check_warns_when_the_ticket_would_go_to_the_backlog(client, fake_azure):
    fake_azure.set_iterations([("Shop\\Sprint 40", "past")])
    result = client.check()

    assert result.ok
    assert result.lines[-1] == (
        "Team Shop Team has no current or future iteration: the work item goes to the backlog"
    )


# --- next_placement()


def test_placement_is_the_earliest_future_iteration_by_start_date(client, fake_azure):
    fake_azure.set_iterations(
        [
            ("Shop\\Sprint 9", "future", "2031-03-01"),
            ("Shop\\Sprint 7", "current", "2030-01-01"),
            ("Shop\\Sprint 8", "future", "2031-02-01"),
        ]
    )

    assert client.next_placement() == Placement(name="Sprint 8", ref="Shop\\Sprint 8")


def test_placement_without_a_future_iteration_is_the_current_one_with_a_warning(client, fake_azure):
    fake_azure.set_iterations([("Shop\\Sprint 40", "past"), ("Shop\\Sprint 41", "current")])
    placement = client.next_placement()

    assert placement.ref == "Shop\\Sprint 41"
    assert "no future iteration" in placement.warning


def test_placement_without_any_iteration_is_the_backlog_with_a_warning(client, fake_azure):
    fake_azure.set_iterations([])
    placement = client.next_placement()

    assert (placement.name, placement.ref) == ("", "")
    assert "backlog" in placement.warning


# --- create_ticket() / find_ticket() / place()


def test_create_ticket_puts_the_work_item_into_the_iteration_with_its_tag(client, fake_azure):
    ticket = client.create_ticket(draft(priority="High"), next_sprint())

    [made] = fake_azure.tickets()
    assert made["key"] == ticket.key
    assert made["labels"] == ["leakseal-0b5e6c8e-1111-4c5e-9f00-2a2b3c4d5e6f"]
    assert made["title"] == "Add an E2E test for saved-card checkout"
    assert made["sprint"] == "Shop\\Sprint 42"
    assert made["priority"] == 2
    assert made["area"] == "Shop"
    assert made["type"] == "Task"
    assert made["description"] == (
        "Saved cards failed in production.<br>Cover it in E2E &lt;before&gt; release."
    )
    assert ticket.url == f"{fake_azure.url}/acme/Shop/_workitems/edit/{ticket.key}"
    assert (ticket.status, ticket.done, ticket.sprint) == ("New", False, "Shop\\Sprint 42")


def test_create_ticket_sends_json_patch_with_api_version_and_basic_pat(client, fake_azure):
    client.create_ticket(draft(), next_sprint())

    [request] = fake_azure.calls("POST", CREATE)
    assert request.path == "/acme/Shop/_apis/wit/workitems/$Task"
    assert request.query["api-version"] == ["7.1"]
    assert request.headers["content-type"] == "application/json-patch+json"
    assert request.headers["authorization"] == "Basic OmFkby1wYXQtM0tk"  # ":" + ADO_PAT
    assert {op["op"] for op in request.json()} == {"add"}
    assert all(r.query.get("api-version") == ["7.1"] for r in fake_azure.requests)


def test_create_ticket_links_the_escape_work_item_as_related(client, fake_azure):
    escape_id = fake_azure.add_escape_issue(title="Saved cards fail")
    ticket = client.create_ticket(
        draft(escape_key=escape_id, retro_url="https://leakseal.test/retros/7/"), next_sprint()
    )

    [made] = fake_azure.tickets()
    [relation] = made["relations"]
    assert relation["rel"] == "System.LinkTypes.Related"
    assert relation["url"].endswith(f"/_apis/wit/workItems/{escape_id}")
    assert 'Retrospective: <a href="https://leakseal.test/retros/7/">' in made["description"]
    assert ticket.key != escape_id


def test_create_ticket_into_the_backlog_leaves_the_iteration_to_azure_devops(client, fake_azure):
    ticket = client.create_ticket(draft(), Placement(name="", warning="backlog"))

    assert fake_azure.tickets()[0]["sprint"] is None
    assert ticket.sprint == ""


def test_priority_of_the_connection_is_used_when_the_draft_has_none(azure_connection, fake_azure):
    azure_connection.priority = "4"
    AzureClient(azure_connection).create_ticket(draft(), next_sprint())

    assert fake_azure.tickets()[0]["priority"] == 4


def test_an_unknown_priority_is_a_permanent_error_before_any_call(client, fake_azure):
    with pytest.raises(TrackerError) as caught:
        client.create_ticket(draft(priority="Urgent!!"), next_sprint())

    assert not caught.value.transient
    assert "Priority 'Urgent!!' is not 1-4" in caught.value.message
    assert fake_azure.calls("POST", CREATE) == []


def test_an_unknown_iteration_is_a_permanent_error_with_azure_devops_message(client, fake_azure):
    with pytest.raises(TrackerError) as caught:
        client.create_ticket(draft(), Placement(name="Gone", ref="Shop\\Sprint 1"))

    assert not caught.value.transient
    assert caught.value.status == 400
    assert "TF401347: Invalid tree name" in caught.value.message
    assert fake_azure.tickets() == []


def test_an_unknown_work_item_type_is_permanent(client, fake_azure):
    with pytest.raises(TrackerError) as caught:
        client.create_ticket(draft(issue_type="Chore"), next_sprint())

    assert (caught.value.transient, caught.value.status) == (False, 400)
    assert "Work item type Chore does not exist" in caught.value.message


def test_find_ticket_finds_the_earlier_try_by_its_tag_only(client, fake_azure):
    fake_azure.add_escape_issue(tags="escape; leakseal-other")
    assert client.find_ticket(draft().label) is None

    made = client.create_ticket(draft(), next_sprint())
    found = client.find_ticket(draft().label)

    assert found == made
    [query] = fake_azure.calls("POST", r"/wit/wiql$")[-1:]
    assert "[System.Tags] CONTAINS 'leakseal-0b5e6c8e" in query.json()["query"]
    assert "[System.TeamProject] = 'Shop'" in query.json()["query"]


def test_place_moves_an_earlier_ticket_out_of_the_backlog(client, fake_azure):
    made = client.create_ticket(draft(), Placement(name=""))
    client.place(made, next_sprint())

    assert fake_azure.tickets()[0]["sprint"] == "Shop\\Sprint 42"
    assert client.ticket(made.key).sprint == "Shop\\Sprint 42"


def test_place_leaves_a_ticket_that_is_already_in_a_sprint(client, fake_azure):
    made = client.create_ticket(draft(), Placement(name="Sprint 41", ref="Shop\\Sprint 41"))
    client.place(made, next_sprint())

    assert fake_azure.calls("PATCH", r"/wit/workitems/") == []
    assert fake_azure.tickets()[0]["sprint"] == "Shop\\Sprint 41"


# --- ticket()


@pytest.mark.parametrize(
    ("state", "done"), [("Active", False), ("Resolved", False), ("Closed", True), ("Done", True)]
)
def test_ticket_reports_the_state_and_whether_it_is_done(client, fake_azure, state, done):
    made = client.create_ticket(draft(), next_sprint())
    fake_azure.set_status(made.key, state, done=done)

    ticket = client.ticket(made.key)

    assert (ticket.status, ticket.done) == (state, done)


def test_ticket_of_a_deleted_work_item_is_a_permanent_404(client):
    with pytest.raises(TrackerError) as caught:
        client.ticket("999")

    assert (caught.value.transient, caught.value.status) == (False, 404)
    assert "TF401232: Work item 999 does not exist" in caught.value.message


# --- search_escapes() / remote_issue()


def test_search_escapes_finds_tagged_work_items_with_their_fields(client, fake_azure):
    key = fake_azure.add_escape_issue(
        title="Refunds double-post",
        description="<div>Refund twice<br>then &amp; again</div>",
        **{"Custom.MergedAt": "2024-05-01T10:00:00Z"},
    )
    fake_azure.add_escape_issue(title="Not an escape", tags="chore")
    client.create_ticket(draft(), next_sprint())  # Leakseal's own: not an escape

    [issue] = client.search_escapes(None)

    assert (issue.key, issue.external_id) == (key, key)
    assert issue.title == "Refunds double-post"
    assert issue.description == "Refund twice\nthen & again"
    assert issue.fields["Custom.MergedAt"] == "2024-05-01T10:00:00Z"
    assert issue.url.endswith(f"/_workitems/edit/{key}")
    assert issue.created_at is not None and issue.resolved_at is None


def test_search_escapes_since_only_returns_what_changed_since(client, fake_azure):
    old = fake_azure.add_escape_issue(title="old")
    fake_azure.item(old).fields["System.ChangedDate"] = "2020-01-01T00:00:00.000Z"
    new = fake_azure.add_escape_issue(title="new")

    found = client.search_escapes(datetime.now(UTC) - timedelta(hours=1))

    assert [issue.key for issue in found] == [new]
    [query] = fake_azure.calls("POST", r"/wit/wiql$")
    assert query.query["timePrecision"] == ["true"]


def test_search_escapes_uses_the_connection_wiql_condition(azure_connection, fake_azure):
    fake_azure.add_escape_issue(title="tagged only")
    wanted = fake_azure.add_escape_issue(title="prod bug", tags="prod", state="Active")
    azure_connection.intake_query = (
        "[System.WorkItemType] = 'Bug' AND [System.Tags] CONTAINS 'prod' "
        "AND [System.State] <> 'Removed'"
    )

    found = AzureClient(azure_connection).search_escapes(None)

    assert [issue.key for issue in found] == [wanted]


def test_search_escapes_with_a_wiql_azure_devops_cannot_run_is_permanent(
    azure_connection, fake_azure
):
    azure_connection.intake_query = "[System.Tags] LIKE 'x'"

    with pytest.raises(TrackerError) as caught:
        AzureClient(azure_connection).search_escapes(None)

    assert (caught.value.transient, caught.value.status) == (False, 400)
    assert "TF51006" in caught.value.message


def test_search_escapes_with_the_intake_tag_of_the_connection(azure_connection, fake_azure):
    fake_azure.add_escape_issue(title="default tag")
    wanted = fake_azure.add_escape_issue(title="custom tag", tags="leak")
    azure_connection.intake_label = "leak"

    assert [i.key for i in AzureClient(azure_connection).search_escapes(None)] == [wanted]


def test_remote_issue_reads_one_work_item_with_resolution_time(client, fake_azure):
    key = fake_azure.add_escape_issue(title="Cart empties")
    fake_azure.set_status(key, "Closed", done=True)

    issue = client.remote_issue(key)

    assert issue.title == "Cart empties"
    assert issue.fields["System.State"] == "Closed"
    assert issue.resolved_at is not None


# --- Failures: transient or permanent, never a bare requests exception, never the PAT.


def test_a_bad_pat_is_a_permanent_401(azure_connection, fake_azure):
    azure_connection.token = "wrong"

    with pytest.raises(TrackerError) as caught:
        AzureClient(azure_connection).create_ticket(draft(), next_sprint())

    assert (caught.value.transient, caught.value.status) == (False, 401)
    assert "wrong" not in str(caught.value) and accounts.ADO_PAT not in str(caught.value)
    assert fake_azure.tickets() == []


def test_a_server_error_is_transient(client, fake_azure):
    fake_azure.fail("POST", CREATE, status=500)

    with pytest.raises(TrackerError) as caught:
        client.create_ticket(draft(), next_sprint())

    assert (caught.value.transient, caught.value.status) == (True, 500)
    assert fake_azure.tickets() == []


def test_rate_limiting_is_transient_with_retry_after(client, fake_azure):
    fake_azure.fail("POST", r"/wit/wiql$", status=429, retry_after="17")

    with pytest.raises(TrackerError) as caught:
        client.find_ticket(draft().label)

    assert (caught.value.transient, caught.value.retry_after) == (True, 17.0)


def test_a_stall_after_creating_is_transient_and_the_retry_finds_the_item(
    client, fake_azure, settings
):
    settings.TRACKER_READ_TIMEOUT = 0.5
    fake_azure.fail("POST", CREATE, stall_after_handling=3)

    with pytest.raises(TrackerError) as caught:
        client.create_ticket(draft(), next_sprint())

    assert caught.value.transient
    assert caught.value.message == "The tracker did not answer in time"
    [made] = fake_azure.tickets()
    assert client.find_ticket(draft().label).key == made["key"]


# --- Formatting helpers.


def test_priority_names_map_to_azure_devops_numbers():
    assert [ado_priority(p) for p in ("", "1", "Critical", "high", "Medium", "low")] == [
        None,
        1,
        1,
        2,
        3,
        4,
    ]
    with pytest.raises(ValueError, match="not 1-4"):
        ado_priority("5")


def test_description_html_round_trips_as_text():
    assert html_text("a < b\r\nc & d") == "a &lt; b<br>c &amp; d"
    assert plain_text(html_text("a < b\nc & d")) == "a < b\nc & d"
