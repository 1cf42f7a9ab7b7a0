"""JiraClient against the fake Jira over real HTTP (Cloud, and Data Center where it differs)."""

import base64
import logging
import time
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from integrations.http import TrackerError
from integrations.jira import JiraClient
from integrations.models import TrackerConnection, TrackerKind
from integrations.trackers import Placement, TicketDraft
from tests.fakes import accounts

LABEL = "leakseal-4f1c2a9e-0000-4000-8000-000000000001"
UNAUTHORIZED = "Client must be authenticated to access this resource."


def draft(**overrides) -> TicketDraft:
    values = {
        "title": "Add an E2E test for coupons at checkout",
        "description": "The coupon total was never covered.\nAdd a test at E2E.",
        "label": LABEL,
        "issue_type": "Task",
        "retro_url": "https://leakseal.test/t/checkout/retros/7/",
    }
    values.update(overrides)
    return TicketDraft(**values)


@pytest.fixture
def client(jira_connection) -> JiraClient:
    return JiraClient(jira_connection)


@pytest.fixture
def dc_connection(jira_connection) -> TrackerConnection:
    jira_connection.kind = TrackerKind.JIRA_DC
    jira_connection.account_email = ""
    jira_connection.token = accounts.JIRA_PAT
    jira_connection.save()
    return jira_connection


# --- Check.


def test_check_signs_in_finds_project_board_and_next_sprint(client):
    result = client.check()

    assert result.ok
    assert result.lines == [
        "Signed in as Leakseal Bot",
        "Project SHOP found",
        "Board 1 found",
        "Next ticket goes into sprint SHOP Sprint 15",
    ]
    assert result.placement is not None and result.placement.name == "SHOP Sprint 15"


def test_check_with_a_wrong_token_fails_with_jiras_message(jira_connection, fake_jira):
    jira_connection.token = "not-the-token"

    result = JiraClient(jira_connection).check()

    assert not result.ok
    assert result.lines == [f"Signing in: HTTP 401: {UNAUTHORIZED}"]


def test_check_names_an_unknown_project(jira_connection):
    jira_connection.project = "NOPE"

    result = JiraClient(jira_connection).check()

    assert not result.ok
    assert result.lines[-1] == "Project NOPE: HTTP 404: No project could be found with key 'NOPE'."


def test_check_names_an_issue_type_the_project_does_not_have(jira_connection):
    jira_connection.issue_type = "Epic"

    result = JiraClient(jira_connection).check()

    assert not result.ok
    assert result.lines[-1] == "Issue type Epic is not in project SHOP (it has Task, Bug, Story)"


def test_check_without_a_token_says_so_without_calling_jira(jira_connection, fake_jira):
    jira_connection.token = ""

    result = JiraClient(jira_connection).check()

    assert not result.ok
    assert result.lines == ["Signing in: No API token is set for this Jira connection"]
    assert fake_jira.requests == []


def test_a_missing_board_is_a_permanent_404(jira_connection):
    jira_connection.board_id = 99
    client = JiraClient(jira_connection)

    with pytest.raises(TrackerError) as caught:
        client.next_placement()
    result = client.check()

    assert caught.value.status == 404 and not caught.value.transient
    assert not result.ok
    assert result.lines[-1].startswith("Board 99: HTTP 404: The requested board cannot be viewed")


# --- Authentication.


def test_cloud_signs_in_with_email_and_api_token(client, fake_jira):
    client.check()

    expected = base64.b64encode(f"{accounts.JIRA_EMAIL}:{accounts.JIRA_TOKEN}".encode()).decode()
    assert {r.headers["authorization"] for r in fake_jira.requests} == {f"Basic {expected}"}


def test_data_center_signs_in_with_a_personal_access_token(dc_connection, fake_jira):
    client = JiraClient(dc_connection)

    result = client.check()
    ticket = client.create_ticket(draft(), client.next_placement())

    found = client.find_ticket(LABEL)
    assert result.ok
    assert found is not None and found.key == ticket.key
    assert {r.headers["authorization"] for r in fake_jira.requests} == {
        f"Bearer {accounts.JIRA_PAT}"
    }


def test_a_wrong_token_is_a_permanent_401_with_jiras_message(jira_connection):
    jira_connection.token = "not-the-token"

    with pytest.raises(TrackerError) as caught:
        JiraClient(jira_connection).find_ticket(LABEL)

    assert caught.value.status == 401
    assert not caught.value.transient
    assert str(caught.value) == f"HTTP 401: {UNAUTHORIZED}"


def test_the_token_is_in_no_error_and_no_log_line(jira_connection, fake_jira, caplog):
    caplog.set_level(logging.DEBUG)
    fake_jira.fail("POST", r"/issue$", status=400)
    client = JiraClient(jira_connection)

    with pytest.raises(TrackerError) as caught:
        client.create_ticket(draft(), Placement(name=""))
    client.find_ticket(LABEL)

    assert caplog.text  # the library did log its requests
    for secret in (accounts.JIRA_TOKEN, base64.b64encode(accounts.JIRA_TOKEN.encode()).decode()):
        assert secret not in caplog.text
        assert secret not in str(caught.value)
    assert caught.value.__cause__ is None


# --- Tickets.


def test_create_ticket_and_place_it_in_the_next_sprint(client, fake_jira):
    placement = client.next_placement()

    ticket = client.create_ticket(draft(priority="High"), placement)
    client.place(ticket, placement)

    assert ticket.key == "SHOP-1"
    assert ticket.url == f"{fake_jira.url}/browse/SHOP-1"
    assert ticket.sprint == "SHOP Sprint 15"
    [created] = fake_jira.tickets()
    assert created["summary"] == "Add an E2E test for coupons at checkout"
    assert created["labels"] == [LABEL]
    assert created["issuetype"] == "Task" and created["priority"] == "High"
    assert created["description"].endswith(
        "Retrospective: https://leakseal.test/t/checkout/retros/7/"
    )
    assert created["sprint"] == fake_jira.sprint_named("SHOP Sprint 15").id


def test_ticket_title_is_made_acceptable_to_jira(client, fake_jira):
    client.create_ticket(draft(title="Flaky\npayment test   " + "x" * 300), Placement(name=""))

    [created] = fake_jira.tickets()
    assert created["summary"].startswith("Flaky payment test x")
    assert len(created["summary"]) == 255


def test_create_ticket_links_it_to_the_escape_issue(client, fake_jira):
    escape_key = fake_jira.add_escape_issue()

    ticket = client.create_ticket(draft(escape_key=escape_key), Placement(name=""))

    [link] = fake_jira.issue(ticket.key)["links"]
    assert link["type"]["name"] == "Relates"
    assert link["inwardIssue"] == {"key": escape_key}


def test_a_link_that_fails_does_not_undo_the_ticket(client, fake_jira):
    ticket = client.create_ticket(draft(escape_key="SHOP-404"), Placement(name=""))

    assert fake_jira.issue(ticket.key)["links"] == []
    assert len(fake_jira.calls("POST", r"/issueLink$")) == 1


def test_placing_in_the_backlog_calls_nothing(client, fake_jira):
    ticket = client.create_ticket(draft(), Placement(name="", warning="backlog"))
    before = len(fake_jira.requests)

    client.place(ticket, Placement(name="", warning="backlog"))

    assert len(fake_jira.requests) == before
    assert fake_jira.tickets()[0]["sprint"] is None


def test_find_ticket_finds_only_the_ticket_with_its_label(client):
    assert client.find_ticket(LABEL) is None

    ticket = client.create_ticket(draft(), Placement(name=""))

    found = client.find_ticket(LABEL)
    assert found is not None and found.key == ticket.key and found.status == "To Do"
    assert client.find_ticket("leakseal-another") is None


def test_ticket_reports_status_done_and_sprint(client, fake_jira):
    placement = client.next_placement()
    ticket = client.create_ticket(draft(), placement)
    client.place(ticket, placement)

    fresh = client.ticket(ticket.key)
    fake_jira.set_status(ticket.key, "In Review", done=False)
    reviewing = client.ticket(ticket.key)
    fake_jira.set_status(ticket.key, "Shipped", done=True)
    shipped = client.ticket(ticket.key)

    assert (fresh.status, fresh.done, fresh.sprint) == ("To Do", False, "SHOP Sprint 15")
    assert (reviewing.status, reviewing.done) == ("In Review", False)
    assert (shipped.status, shipped.done) == ("Shipped", True)


def test_an_unknown_ticket_is_a_permanent_404(client):
    with pytest.raises(TrackerError) as caught:
        client.ticket("SHOP-999")

    assert caught.value.status == 404 and not caught.value.transient


# --- Placement.


def test_placement_prefers_the_first_future_sprint(client, fake_jira):
    fake_jira.set_sprints(
        [("Old", "closed"), ("Now", "active"), ("Next", "future"), ("Later", "future")]
    )

    placement = client.next_placement()

    assert placement == Placement(name="Next", ref=str(fake_jira.sprint_named("Next").id))


def test_placement_falls_back_to_the_active_sprint(client, fake_jira):
    fake_jira.set_sprints([("Old", "closed"), ("Now", "active")])

    placement = client.next_placement()

    assert placement == Placement(name="Now", ref=str(fake_jira.sprint_named("Now").id))


def test_placement_without_future_or_active_sprint_is_the_backlog_with_a_warning(client, fake_jira):
    fake_jira.set_sprints([("Old", "closed")])

    placement = client.next_placement()

    assert placement == Placement(
        name="",
        ref="",
        warning="No future or active sprint on board 1: the ticket goes to the backlog",
    )
    assert client.check().lines[-1] == placement.warning


def test_placement_reads_every_page_of_sprints(client, fake_jira):
    fake_jira.set_sprints([(f"Sprint {n}", "active") for n in range(60)] + [("Next", "future")])

    assert client.next_placement().name == "Next"
    assert len(fake_jira.calls("GET", r"/board/1/sprint$")) == 2


# --- Failures.


def test_a_server_error_is_transient(client, fake_jira):
    fake_jira.fail("POST", r"/rest/api/2/issue$", status=500)

    with pytest.raises(TrackerError) as caught:
        client.create_ticket(draft(), Placement(name=""))

    assert caught.value.transient and caught.value.status == 500
    assert fake_jira.tickets() == []


def test_rate_limiting_is_transient_with_retry_after_and_not_retried(client, fake_jira):
    fake_jira.fail("POST", r"/rest/api/2/issue$", status=429, retry_after="7")

    with pytest.raises(TrackerError) as caught:
        client.create_ticket(draft(), Placement(name=""))

    assert caught.value.transient and caught.value.status == 429
    assert caught.value.retry_after == 7
    assert len(fake_jira.calls("POST", r"/rest/api/2/issue$")) == 1


def test_a_stalled_answer_is_a_transient_timeout_and_the_issue_exists(client, fake_jira, settings):
    settings.TRACKER_READ_TIMEOUT = 0.5
    # The answer comes only after a long stall (the fake's thread sleeps on after the test).
    stall = 15
    fake_jira.fail("POST", r"/rest/api/2/issue$", stall_after_handling=stall)
    client = JiraClient(client.connection)

    started = time.monotonic()
    with pytest.raises(TrackerError) as caught:
        client.create_ticket(draft(), Placement(name=""))

    assert caught.value.transient and caught.value.status is None
    assert str(caught.value) == "The tracker did not answer in time"
    # It gave up at its read timeout and did not wait for the stalled answer; how soon is
    # not timed here (a busy machine is slow), only that it was long before the answer.
    assert time.monotonic() - started < stall
    assert len(fake_jira.tickets()) == 1
    assert client.find_ticket(LABEL) is not None  # what a retried push looks for first


def test_no_connection_is_transient(jira_connection):
    jira_connection.base_url = "http://127.0.0.1:9"

    with pytest.raises(TrackerError) as caught:
        JiraClient(jira_connection).ticket("SHOP-1")

    assert caught.value.transient
    assert str(caught.value) == "Could not connect to the tracker"


def test_field_errors_are_permanent_and_name_the_field(client):
    with pytest.raises(TrackerError) as caught:
        client.create_ticket(draft(title="  ", issue_type="Epic"), Placement(name=""))

    assert not caught.value.transient and caught.value.status == 400
    assert "summary: You must specify a summary of the issue." in str(caught.value)
    assert "issuetype: Specify a valid issue type" in str(caught.value)


def test_an_unknown_priority_is_a_permanent_error(jira_connection):
    jira_connection.priority = "Urgent"

    with pytest.raises(TrackerError) as caught:
        JiraClient(jira_connection).create_ticket(draft(), Placement(name=""))

    assert str(caught.value) == "HTTP 400: priority: Priority name 'Urgent' is not valid"


# --- Escape intake.


def test_search_escapes_finds_issues_with_the_intake_label_in_the_project(
    jira_connection, fake_jira
):
    jira_connection.intake_label = "escape"
    client = JiraClient(jira_connection)
    escape = fake_jira.add_escape_issue(summary="Refunds fail for gift cards")
    fake_jira.add_escape_issue(labels=["feature"])
    fake_jira.add_escape_issue(project="OPS")
    client.create_ticket(draft(), Placement(name=""))

    found = client.search_escapes(None)

    assert [issue.key for issue in found] == [escape]
    assert found[0].title == "Refunds fail for gift cards"
    assert found[0].url == f"{fake_jira.url}/browse/{escape}"


def test_search_escapes_since_reads_times_in_the_jira_users_time_zone(jira_connection, fake_jira):
    jira_connection.intake_label = "escape"
    client = JiraClient(jira_connection)
    now = datetime.now(UTC)
    recent = fake_jira.add_escape_issue(updated=now - timedelta(minutes=10))
    fake_jira.add_escape_issue(updated=now - timedelta(hours=3))

    since_20_minutes = client.search_escapes(now - timedelta(minutes=20))
    since_5_minutes = client.search_escapes(now - timedelta(minutes=5))

    assert [issue.key for issue in since_20_minutes] == [recent]
    assert since_5_minutes == []
    [search] = fake_jira.calls("GET", r"/search/jql$")[:1]
    assert 'updated >= "' in search.query["jql"][0]


def test_search_escapes_uses_the_teams_jql(jira_connection, fake_jira):
    jira_connection.intake_query = "issuetype = Bug AND labels = escape ORDER BY created DESC"
    client = JiraClient(jira_connection)
    bug = fake_jira.add_escape_issue(issuetype="Bug")
    fake_jira.add_escape_issue(issuetype="Task")

    assert [issue.key for issue in client.search_escapes(None)] == [bug]
    jql = fake_jira.calls("GET", r"/search/jql$")[0].query["jql"][0]
    assert jql == (
        '(issuetype = Bug AND labels = escape) AND project = "SHOP" ORDER BY updated ASC'
    )


def test_search_escapes_reads_every_page(jira_connection, fake_jira):
    jira_connection.intake_label = "escape"
    for n in range(105):
        fake_jira.add_escape_issue(summary=f"Escape {n}")

    found = JiraClient(jira_connection).search_escapes(None)

    assert len({issue.key for issue in found}) == 105
    assert len(fake_jira.calls("GET", r"/search/jql$")) == 2


def test_data_center_searches_the_v2_search(dc_connection, fake_jira):
    dc_connection.intake_label = "escape"
    for n in range(105):
        fake_jira.add_escape_issue(summary=f"Escape {n}")

    found = JiraClient(dc_connection).search_escapes(datetime.now(UTC) - timedelta(days=1))

    assert len(found) == 105
    assert len(fake_jira.calls("GET", r"^/rest/api/2/search$")) == 2
    assert fake_jira.calls("GET", r"/search/jql$") == []


def test_jql_jira_rejects_is_a_permanent_error_with_its_message(jira_connection):
    jira_connection.intake_query = "colour = red"

    with pytest.raises(TrackerError) as caught:
        JiraClient(jira_connection).search_escapes(None)

    assert not caught.value.transient and caught.value.status == 400
    assert "Field 'colour' does not exist" in str(caught.value)


def test_search_escapes_without_a_rule_is_a_permanent_error(client):
    with pytest.raises(TrackerError) as caught:
        client.search_escapes(None)

    assert not caught.value.transient
    assert "JQL query or a label" in str(caught.value)


def test_remote_issue_carries_times_and_raw_fields(client, fake_jira):
    created = datetime(2024, 5, 2, 9, 30, tzinfo=UTC)
    resolved = datetime(2024, 5, 3, 17, 0, tzinfo=UTC)
    key = fake_jira.add_escape_issue(
        summary="Tax rounding in EU carts",
        description="Seen by 40 customers",
        created=created,
        resolutiondate=resolved,
        components=["payments"],
        customfield_10100="2024-04-28T10:00:00.000+0000",
    )

    issue = client.remote_issue(key)

    assert issue.key == key and issue.external_id == fake_jira.issue(key)["id"]
    assert (issue.title, issue.description) == ("Tax rounding in EU carts", "Seen by 40 customers")
    assert issue.created_at == created and issue.resolved_at == resolved
    assert issue.fields["customfield_10100"] == "2024-04-28T10:00:00.000+0000"
    assert issue.fields["components"][0]["name"] == "payments"


# --- The fake itself.


def test_the_fake_rejects_and_records_a_request_its_spec_does_not_allow(fake_jira):
    auth = (accounts.JIRA_EMAIL, accounts.JIRA_TOKEN)

    wrong_body = httpx.post(
        f"{fake_jira.url}/rest/agile/1.0/sprint/2/issue",
        json={"issues": "SHOP-1", "sprint": 2},
        auth=auth,
    )
    no_such_operation = httpx.get(f"{fake_jira.url}/rest/api/2/issue/SHOP-1/nonsense", auth=auth)

    assert wrong_body.status_code == 500 and no_such_operation.status_code == 500
    assert len(fake_jira.violations) == 2
    assert "POST /rest/agile/1.0/sprint/{sprintId}/issue request body" in fake_jira.violations[0]
    fake_jira.violations.clear()


def test_the_fake_answers_without_credentials_as_jira_does(fake_jira):
    answer = httpx.get(f"{fake_jira.url}/rest/api/2/myself")

    assert answer.status_code == 401
    assert answer.json() == {"errorMessages": [UNAUTHORIZED], "errors": {}}


def test_sprint_name_reads_the_cloud_and_the_data_center_shapes():
    from integrations.jira import sprint_name

    cloud = [{"id": 1, "name": "SHOP Sprint 14", "state": "closed"}, {"id": 2, "name": "SHOP 15"}]
    data_center = [
        "com.atlassian.greenhopper.service.sprint.Sprint@1a2b[id=3,rapidViewId=1,state=ACTIVE,"
        "name=SHOP Sprint 16,startDate=2024-05-06T08:00:00.000Z,sequence=3,goal=]"
    ]

    assert sprint_name(cloud) == "SHOP 15"
    assert sprint_name(data_center) == "SHOP Sprint 16"
    assert sprint_name(None) == ""


def test_the_fakes_webhook_body_has_the_shape_jira_sends(fake_jira):
    key = fake_jira.add_escape_issue()
    fake_jira.set_status(key, "Done", done=True)

    body = fake_jira.webhook_body(key, "jira:issue_updated")

    assert body["webhookEvent"] == "jira:issue_updated"
    assert body["issue"]["key"] == key
    assert body["issue"]["fields"]["status"]["statusCategory"]["key"] == "done"
    assert body["issue"]["fields"]["labels"] == ["escape"]
    assert body["changelog"]["items"][0]["toString"] == "Done"
    assert body["changelog"]["items"][0]["fromString"] == "To Do"
