"""Webhook deliveries from Jira and Azure DevOps: verified, deduplicated, applied.

The bodies are the fakes' `webhook_body()`, shaped like the captured deliveries in
tests/fakes/specs/*_trimmed.json; the status they announce is re-read from the fake over HTTP.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
from typing import Any

import pytest
from django.test import Client, override_settings
from django.urls import reverse

from escapes.models import Escape
from integrations.models import TrackerConnection, WebhookDelivery
from tests.fakes import accounts
from tests.integrations.test_sync import (
    Side,
    closed_retro,
    fresh,
    new_escape,
    pushed_action,
    side_for,
)


def signature(body: bytes, secret: str = accounts.JIRA_WEBHOOK_SECRET) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def url_of(connection: TrackerConnection) -> str:
    name = "webhook_jira" if connection.is_jira else "webhook_azure"
    return reverse(name, kwargs={"token": connection.webhook_token})


def deliver(
    connection: TrackerConnection, body: bytes, headers: dict[str, str] | None = None
) -> Any:
    """POST a delivery as the tracker would, proven the way the connection expects."""
    if headers is None:
        if connection.is_jira:
            headers = {"X-Hub-Signature": signature(body)}
        else:
            headers = {"Authorization": basic(accounts.ADO_HOOK_USER, accounts.ADO_HOOK_PASSWORD)}
    return Client().post(
        url_of(connection), data=body, content_type="application/json", headers=headers
    )


def body_of(side: Side, key: str, event: str | None = None) -> bytes:
    if event is None:
        event = "jira:issue_updated" if side.name == "jira" else "workitem.updated"
    return json.dumps(side.fake.webhook_body(key, event)).encode()


@pytest.fixture(params=["jira", "azure"])
def side(request: pytest.FixtureRequest) -> Side:
    return side_for(request.param, request)


@pytest.fixture
def retro(team, owner):
    return closed_retro(team, owner)


# --- Status.


def test_a_delivery_for_a_done_ticket_marks_the_action_done_and_seals_the_escape(side: Side, retro):
    escape = new_escape(retro.team)
    action = pushed_action(side.connection, retro, escape)
    side.fake.set_status(action.external_key, side.done, done=True)

    response = deliver(side.connection, body_of(side, action.external_key))
    assert response.status_code == 200, response.content
    assert response.json()["result"] == f"ticket {action.external_key} is {side.done}"
    action = fresh(action)
    assert action.done_at is not None
    assert action.external_status == side.done
    escape = fresh(escape)
    assert escape.sealed_at == action.done_at
    assert escape.status == "sealed"


def test_the_same_delivery_again_changes_nothing_twice(side: Side, retro):
    escape = new_escape(retro.team)
    action = pushed_action(side.connection, retro, escape)
    side.fake.set_status(action.external_key, side.done, done=True)
    body = body_of(side, action.external_key)
    assert deliver(side.connection, body).status_code == 200
    done_at, sealed_at = fresh(action).done_at, fresh(escape).sealed_at
    version = fresh(retro).version
    requests_before = len(side.fake.requests)

    response = deliver(side.connection, body)
    assert response.status_code == 200
    assert response.json()["result"].startswith("duplicate")
    assert fresh(action).done_at == done_at
    assert fresh(escape).sealed_at == sealed_at
    assert fresh(retro).version == version
    assert WebhookDelivery.objects.filter(connection=side.connection).count() == 1
    assert len(side.fake.requests) == requests_before, "a repeated delivery costs no tracker call"


def test_a_late_delivery_re_reads_the_ticket_instead_of_trusting_its_body(side: Side, retro):
    action = pushed_action(side.connection, retro, new_escape(retro.team))
    side.fake.set_status(action.external_key, side.working, done=False)
    stale = body_of(side, action.external_key)  # says "working"
    side.fake.set_status(action.external_key, side.done, done=True)

    assert deliver(side.connection, stale).status_code == 200
    assert fresh(action).external_status == side.done
    assert fresh(action).done_at is not None


def test_jira_deliveries_with_the_same_webhook_identifier_count_once(
    fake_jira, jira_connection, retro
):
    action = pushed_action(jira_connection, retro, new_escape(retro.team))
    first = json.dumps(fake_jira.webhook_body(action.external_key)).encode()
    headers = {"X-Hub-Signature": signature(first), "X-Atlassian-Webhook-Identifier": "77"}
    assert deliver(jira_connection, first, headers).status_code == 200
    fake_jira.set_status(action.external_key, "Done", done=True)
    # Jira retries delivery 77; the body differs (its timestamp), the identifier does not.
    retried = json.dumps(fake_jira.webhook_body(action.external_key)).encode()
    assert first != retried
    headers = {"X-Hub-Signature": signature(retried), "X-Atlassian-Webhook-Identifier": "77"}

    response = deliver(jira_connection, retried, headers)
    assert response.json()["result"].startswith("duplicate")
    assert WebhookDelivery.objects.get(connection=jira_connection).delivery_id == "77"
    assert fresh(action).done_at is None, "the second copy of delivery 77 was not applied"


def test_a_tracker_outage_answers_503_and_the_redelivery_is_applied(side: Side, retro):
    action = pushed_action(side.connection, retro, new_escape(retro.team))
    side.fake.set_status(action.external_key, side.done, done=True)
    body = body_of(side, action.external_key)
    side.fake.fail("GET", r".*", status=503, times=None)

    response = deliver(side.connection, body)
    assert response.status_code == 503
    assert "Could not read the issue" in response.json()["error"]
    assert fresh(action).done_at is None
    assert not WebhookDelivery.objects.exists(), "not recorded: the redelivery must be applied"

    side.fake.faults.clear()
    assert deliver(side.connection, body).status_code == 200
    assert fresh(action).done_at is not None


def test_a_ticket_the_tracker_refuses_to_show_answers_502_and_changes_nothing(side: Side, retro):
    action = _pushed_done(side, retro)
    side.fake.fail("GET", r".*", status=404, times=None)

    response = deliver(side.connection, body_of(side, action.external_key))
    assert response.status_code == 502
    assert "HTTP 404" in response.json()["error"]
    assert "Retry-After" not in response
    _nothing_changed(side, action)


# --- Intake.


def test_an_intake_delivery_creates_an_escape_and_a_later_edit_updates_it(side: Side):
    side.connection.intake_enabled = True
    side.connection.intake_label = "escape"
    side.connection.save()
    key = side.escape_issue(title="Gift cards rejected at checkout")
    created = "jira:issue_created" if side.name == "jira" else "workitem.created"

    response = deliver(side.connection, body_of(side, key, created))
    assert response.status_code == 200, response.content
    escape = Escape.objects.get(team=side.connection.team)
    assert escape.title == "Gift cards rejected at checkout"
    assert escape.tracker_key == key

    side.edit(key, title="Gift cards rejected at checkout after 18:00")
    response = deliver(side.connection, body_of(side, key))
    assert response.status_code == 200
    assert Escape.objects.filter(team=side.connection.team).count() == 1
    assert fresh(escape).title == "Gift cards rejected at checkout after 18:00"


def test_an_issue_without_the_intake_label_is_not_taken_in(side: Side):
    side.connection.intake_enabled = True
    side.connection.intake_label = "escape"
    side.connection.save()
    key = side.escape_issue(title="A feature request", label="feature")

    response = deliver(side.connection, body_of(side, key))
    assert response.status_code == 200
    assert "intake label" in response.json()["result"]
    assert not Escape.objects.exists()


def test_under_a_query_rule_a_delivery_is_taken_in_only_when_the_tracker_matches_it(side: Side):
    side.connection.intake_enabled = True
    side.connection.intake_query = side.query_rule()  # label/tag prod-bug
    side.connection.save()
    matching = side.escape_issue(title="Prices off by a cent", label="prod-bug")
    other = side.escape_issue(title="Labelled escape, but not the query")

    assert deliver(side.connection, body_of(side, other)).status_code == 200
    assert not Escape.objects.exists()
    assert deliver(side.connection, body_of(side, matching)).status_code == 200
    assert Escape.objects.get(team=side.connection.team).tracker_key == matching


def test_intake_deliveries_are_ignored_while_intake_is_off(side: Side):
    key = side.escape_issue(title="Not taken")
    response = deliver(side.connection, body_of(side, key))
    assert response.status_code == 200
    assert "intake is off" in response.json()["result"]
    assert not Escape.objects.exists()


# --- Refusals: nothing changes.


def _pushed_done(side: Side, retro):
    action = pushed_action(side.connection, retro, new_escape(retro.team))
    side.fake.set_status(action.external_key, side.done, done=True)
    return action


def _nothing_changed(side: Side, action) -> None:
    assert fresh(action).done_at is None
    assert not WebhookDelivery.objects.exists()


@pytest.mark.parametrize(
    ("case", "headers"),
    [
        ("unsigned", {}),
        ("tampered", {"X-Hub-Signature": signature(b'{"webhookEvent": "other"}')}),
        ("wrong secret", "wrong-secret"),
        ("not sha256", {"X-Hub-Signature": "sha1=abc"}),
    ],
)
def test_a_jira_delivery_that_is_not_signed_right_is_refused(
    case, headers, fake_jira, jira_connection, retro, caplog, request
):
    side = side_for("jira", request)
    action = _pushed_done(side, retro)
    body = body_of(side, action.external_key)
    if headers == "wrong-secret":
        headers = {"X-Hub-Signature": signature(body, "another-secret")}
    reads = len(fake_jira.requests)

    with caplog.at_level(logging.INFO):
        response = deliver(jira_connection, body, headers)
    assert response.status_code == 401, case
    assert response.json()["error"]
    _nothing_changed(side, action)
    assert len(fake_jira.requests) == reads
    assert accounts.JIRA_WEBHOOK_SECRET not in caplog.text + response.content.decode()


@pytest.mark.parametrize(
    ("case", "authorization", "status"),
    [
        ("right", basic(accounts.ADO_HOOK_USER, accounts.ADO_HOOK_PASSWORD), 200),
        ("wrong password", basic(accounts.ADO_HOOK_USER, "guess"), 401),
        ("wrong user", basic("mallory", accounts.ADO_HOOK_PASSWORD), 401),
        ("not base64", "Basic !!!", 401),
        ("missing", None, 401),
    ],
)
def test_azure_deliveries_need_the_subscriptions_basic_credentials(
    case, authorization, status, fake_azure, azure_connection, retro, request
):
    side = side_for("azure", request)
    action = _pushed_done(side, retro)
    headers = {"Authorization": authorization} if authorization else {}

    response = deliver(azure_connection, body_of(side, action.external_key), headers)
    assert response.status_code == status, case
    if status == 200:
        assert fresh(action).done_at is not None
    else:
        _nothing_changed(side, action)


@pytest.mark.parametrize(
    ("case", "headers", "status"),
    [
        ("right header", {"X-Leakseal-Hook": accounts.ADO_HOOK_PASSWORD}, 200),
        ("wrong header", {"X-Leakseal-Hook": "guess"}, 401),
        (
            "basic instead of the header",
            {"Authorization": basic(accounts.ADO_HOOK_USER, accounts.ADO_HOOK_PASSWORD)},
            401,
        ),
    ],
)
def test_azure_deliveries_in_header_mode_need_the_header(
    case, headers, status, fake_azure, azure_connection, retro, request
):
    azure_connection.webhook_header = "X-Leakseal-Hook"
    azure_connection.save()
    side = side_for("azure", request)
    action = _pushed_done(side, retro)

    response = deliver(azure_connection, body_of(side, action.external_key), headers)
    assert response.status_code == status, case
    if status != 200:
        _nothing_changed(side, action)


def test_a_connection_without_a_webhook_secret_refuses_every_delivery(jira_connection):
    jira_connection.webhook_secret = ""
    jira_connection.save()
    body = b'{"webhookEvent": "jira:issue_updated"}'
    response = deliver(jira_connection, body, {"X-Hub-Signature": signature(body, "")})
    assert response.status_code == 401
    assert "no webhook secret" in response.json()["error"]


def test_an_unknown_token_is_not_found(db):
    for name in ("webhook_jira", "webhook_azure"):
        url = reverse(name, kwargs={"token": "no-such-token"})
        response = Client().post(url, data=b"{}", content_type="application/json")
        assert response.status_code == 404


def test_a_jira_token_does_not_open_the_azure_endpoint(jira_connection):
    url = reverse("webhook_azure", kwargs={"token": jira_connection.webhook_token})
    assert Client().post(url, data=b"{}", content_type="application/json").status_code == 404


def test_webhooks_take_only_post(jira_connection, azure_connection_of_other_team):
    for connection in (jira_connection, azure_connection_of_other_team):
        assert Client().get(url_of(connection)).status_code == 405
        assert Client().put(url_of(connection)).status_code == 405


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"{not json", "not valid JSON"),
        (b"[1, 2]", "must be a JSON object"),
        (b"\xff\xfe", "not UTF-8"),
        (b'{"issue": {}}', "no webhookEvent"),
    ],
)
def test_a_signed_body_that_is_not_a_delivery_is_a_400_naming_the_problem(
    body, message, jira_connection
):
    response = deliver(jira_connection, body)
    assert response.status_code == 400
    assert message in response.json()["error"]
    assert not WebhookDelivery.objects.exists()


def test_an_azure_body_without_an_event_type_is_a_400(azure_connection):
    response = deliver(azure_connection, b'{"resource": {"id": 1}}')
    assert response.status_code == 400
    assert "no eventType" in response.json()["error"]


def test_a_delivery_for_another_project_is_ignored(fake_jira, jira_connection):
    jira_connection.intake_enabled = True
    jira_connection.intake_label = "escape"
    jira_connection.save()
    fake_jira.projects["OPS"] = {"id": "10001", "name": "Ops"}
    key = fake_jira.add_escape_issue(project="OPS", summary="Pager storm")
    body = json.dumps(fake_jira.webhook_body(key)).encode()

    response = deliver(jira_connection, body)
    assert response.status_code == 200
    assert "project OPS" in response.json()["result"]
    assert not Escape.objects.exists()


# --- Fixture plumbing.


@pytest.fixture
def azure_connection_of_other_team(other_team, fake_azure) -> TrackerConnection:
    connection = TrackerConnection(
        team=other_team,
        kind="azure_devops",
        base_url=f"{fake_azure.url}/{accounts.ADO_ORG}",
        project=accounts.ADO_PROJECT,
        webhook_username=accounts.ADO_HOOK_USER,
    )
    connection.webhook_secret = accounts.ADO_HOOK_PASSWORD
    connection.save()
    return connection


@pytest.mark.parametrize("debug", [False, True], ids=["debug-off", "debug-on"])
def test_an_oversized_webhook_body_is_a_json_413(jira_connection, settings, debug):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1024 * 1024
    with override_settings(DEBUG=debug):
        response = deliver(jira_connection, b'{"x": "' + b"a" * 2_000_000 + b'"}')
    assert response.status_code == 413
    assert response["Content-Type"] == "application/json"
    assert "over 1 MB" in response.json()["error"]
    assert not WebhookDelivery.objects.exists()
