"""Status flows back and escapes flow in through the polls (integrations/sync.py).

Every tracker call goes over real HTTP to the fake Jira or Azure DevOps, which check each
exchange against the vendor's spec; the tickets are made by the real client, as a push does.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.utils import timezone

from escapes.models import Escape, Release, Severity, Source
from integrations import sync
from integrations.clients import client_for
from integrations.models import TrackerConnection
from integrations.tasks_sync import poll_connection_task
from integrations.trackers import TicketDraft
from retros.models import ActionKind, Phase, PreventativeAction, PushState, Retrospective
from retros.services import action_tracker_update
from teams.models import Team
from tests.fakes import accounts

# --- Helpers shared with test_webhooks.py.


@dataclass
class Side:
    """One tracker as a test drives it: the fake, the team's connection, its vocabulary."""

    name: str
    fake: Any
    connection: TrackerConnection
    done: str  # a status name that is done
    working: str  # one that is not
    # The connection's field mapping for the mapped-intake tests, and the issue fields that
    # carry a value for each (Jira: field id → JSON value; Azure DevOps: reference name).
    mapping: dict[str, str]

    def escape_issue(self, *, title: str, label: str | None = None, **fields: Any) -> str:
        """An issue reported in the tracker, labelled (tagged) `label`, default "escape"."""
        if self.name == "jira":
            fields["summary"] = title
            if label is not None:
                fields["labels"] = [label]
        else:
            fields["title"] = title
            if label is not None:
                fields["tags"] = label
        return str(self.fake.add_escape_issue(**fields))

    def edit(self, key: str, *, title: str, **fields: Any) -> None:
        """Somebody edits the issue in the tracker (its updated time moves on)."""
        with self.fake.lock:
            if self.name == "jira":
                issue = self.fake.issues[key]
                if "priority" in fields:
                    fields["priority"] = {"name": fields["priority"]}
                for name in ("components", "fixVersions"):
                    if name in fields:
                        fields[name] = [{"name": value} for value in fields[name]]
                issue.fields.update({"summary": title, **fields})
                issue.updated = datetime.now(UTC)
                return
            item = self.fake.item(key)
            item.fields.update({"System.Title": title, **fields})
            self.fake._touch(item)

    def mapped_fields(
        self, *, merged_at: datetime, component: str, severity: str, release: str
    ) -> dict[str, Any]:
        stamp = merged_at.astimezone(UTC)
        if self.name == "jira":
            # FakeJira.add_escape_issue takes names; it stores them in Jira's JSON shape.
            return {
                self.mapping["merged_at"]: stamp.strftime("%Y-%m-%dT%H:%M:%S.000+0000"),
                "components": [component],
                "priority": severity,
                "fixVersions": [release],
            }
        return {
            self.mapping["merged_at"]: stamp.isoformat().replace("+00:00", "Z"),
            self.mapping["component"]: component,
            self.mapping["severity"]: severity,
            self.mapping["release"]: release,
        }

    def severity_word(self, ours: str) -> str:
        """How the tracker writes one of our severities."""
        if self.name == "jira":
            return {"critical": "Highest", "high": "High", "medium": "Medium", "low": "Low"}[ours]
        return {"critical": "1 - Critical", "high": "2 - High", "medium": "3 - Medium"}.get(
            ours, "4 - Low"
        )

    def query_rule(self) -> str:
        if self.name == "jira":
            return f"project = {accounts.JIRA_PROJECT} AND labels = prod-bug"
        return "[System.Tags] CONTAINS 'prod-bug'"


JIRA_MAPPING = {
    "merged_at": "customfield_10100",
    "component": "components",
    "severity": "priority",
    "release": "fixVersions",
}
AZURE_MAPPING = {
    "merged_at": "Custom.MergedAt",
    "component": "Custom.Component",
    "severity": "Microsoft.VSTS.Common.Severity",
    "release": "Custom.FoundInRelease",
}


def side_for(name: str, request: pytest.FixtureRequest) -> Side:
    if name == "jira":
        return Side(
            "jira",
            request.getfixturevalue("fake_jira"),
            request.getfixturevalue("jira_connection"),
            done="Done",
            working="In Progress",
            mapping=JIRA_MAPPING,
        )
    return Side(
        "azure",
        request.getfixturevalue("fake_azure"),
        request.getfixturevalue("azure_connection"),
        done="Done",
        working="Active",
        mapping=AZURE_MAPPING,
    )


def closed_retro(team: Team, facilitator: User) -> Retrospective:
    return Retrospective.objects.create(
        team=team,
        title="Release retro",
        facilitator=facilitator,
        phase=Phase.CLOSED,
        closed_at=timezone.now(),
    )


def new_escape(team: Team, title: str = "Checkout times out") -> Escape:
    now = timezone.now()
    return Escape.objects.create(
        team=team,
        title=title,
        merged_at=now - timedelta(days=12),
        detected_at=now - timedelta(days=8),
    )


def pushed_action(
    connection: TrackerConnection, retro: Retrospective, escape: Escape, title: str = "Guard it"
) -> PreventativeAction:
    """An action whose ticket the real client made in the fake, recorded as a push does."""
    action = PreventativeAction.objects.create(
        retro=retro, escape=escape, kind=ActionKind.NEW_TEST, title=title
    )
    client = client_for(connection)
    placement = client.next_placement()
    ticket = client.create_ticket(
        TicketDraft(
            title=title,
            description="So it does not leak again",
            label=action.label,
            issue_type=connection.issue_type,
        ),
        placement,
    )
    client.place(ticket, placement)
    updated = action_tracker_update(
        action_id=action.pk,
        tracker=connection.tracker,
        push_state=PushState.PUSHED,
        external_key=ticket.key,
        external_url=ticket.url,
        sprint=placement.name,
        external_status=ticket.status,
    )
    assert updated is not None
    return updated


def fresh(obj: Any) -> Any:
    obj.refresh_from_db()
    return obj


# --- Fixtures.


@pytest.fixture(params=["jira", "azure"])
def side(request: pytest.FixtureRequest) -> Side:
    return side_for(request.param, request)


@pytest.fixture
def retro(team: Team, owner: User) -> Retrospective:
    return closed_retro(team, owner)


# --- Status.


def test_the_status_poll_picks_up_a_done_ticket_and_seals_the_escape(side: Side, retro):
    escape = new_escape(retro.team)
    action = pushed_action(side.connection, retro, escape)
    version = fresh(retro).version
    side.fake.set_status(action.external_key, side.working, done=False)

    assert sync.status_poll(connection=side.connection) == 1
    action = fresh(action)
    assert action.external_status == side.working
    assert action.done_at is None
    assert fresh(escape).sealed_at is None
    assert fresh(retro).version > version, "open boards hear of the new status"

    side.fake.set_status(action.external_key, side.done, done=True)
    sync.status_poll(connection=side.connection)
    action = fresh(action)
    escape = fresh(escape)
    assert action.external_status == side.done
    assert action.done_at is not None
    assert escape.sealed_at == action.done_at
    assert escape.status == "sealed"
    assert fresh(side.connection).last_status_poll_at is not None


def test_a_done_ticket_is_not_read_again_and_keeps_its_done_time(side: Side, retro):
    action = pushed_action(side.connection, retro, new_escape(retro.team))
    side.fake.set_status(action.external_key, side.done, done=True)
    sync.status_poll(connection=side.connection)
    done_at = fresh(action).done_at
    reads = len(side.fake.requests)

    assert sync.status_poll(connection=side.connection) == 0
    assert len(side.fake.requests) == reads
    assert fresh(action).done_at == done_at


def test_a_reopened_ticket_clears_done_and_unseals_only_when_no_other_guardrail_is_done(
    side: Side, retro
):
    escape = new_escape(retro.team)
    first = pushed_action(side.connection, retro, escape, "Contract test")
    second = pushed_action(side.connection, retro, escape, "Parity check")
    client = client_for(side.connection)
    for action in (first, second):
        side.fake.set_status(action.external_key, side.done, done=True)
        sync.ticket_status_apply(action=action, ticket=client.ticket(action.external_key))
    sealed_at = fresh(escape).sealed_at
    assert sealed_at is not None

    side.fake.set_status(first.external_key, side.working, done=False)
    sync.ticket_status_apply(action=first, ticket=client.ticket(first.external_key))
    assert fresh(first).done_at is None
    assert fresh(escape).sealed_at == sealed_at, "the other guardrail is still in place"

    side.fake.set_status(second.external_key, side.working, done=False)
    sync.ticket_status_apply(action=second, ticket=client.ticket(second.external_key))
    assert fresh(escape).sealed_at is None
    assert fresh(escape).status == "open"


def test_applying_the_same_ticket_twice_changes_nothing_the_second_time(side: Side, retro):
    escape = new_escape(retro.team)
    action = pushed_action(side.connection, retro, escape)
    side.fake.set_status(action.external_key, side.done, done=True)
    ticket = client_for(side.connection).ticket(action.external_key)
    sync.ticket_status_apply(action=action, ticket=ticket)
    before = (fresh(action).done_at, fresh(action).updated_at, fresh(escape).updated_at)
    version = fresh(retro).version

    sync.ticket_status_apply(action=action, ticket=ticket)
    assert (fresh(action).done_at, fresh(action).updated_at, fresh(escape).updated_at) == before
    assert fresh(retro).version == version


# --- Intake.


def test_the_intake_poll_takes_in_issues_with_the_escape_label(side: Side):
    side.connection.intake_enabled = True
    side.connection.intake_label = "escape"
    side.connection.save()
    key = side.escape_issue(title="Saved cards fail at checkout")
    side.escape_issue(title="Not an escape", label="feature")

    assert sync.intake_poll(connection=side.connection) == 1
    escape = Escape.objects.get(team=side.connection.team)
    assert escape.title == "Saved cards fail at checkout"
    assert escape.source == (Source.JIRA if side.name == "jira" else Source.AZURE_DEVOPS)
    assert escape.tracker_key == key
    assert escape.tracker_url.startswith(side.fake.url)
    assert escape.detected_at is not None
    assert fresh(side.connection).last_intake_poll_at is not None


def test_the_intake_poll_with_a_query_rule_maps_fields_and_updates_on_a_later_poll(
    side: Side, caplog
):
    team = side.connection.team
    release = Release.objects.create(
        team=team, version="2026.11.1", released_at=timezone.now() - timedelta(days=3)
    )
    side.connection.intake_enabled = True
    side.connection.intake_query = side.query_rule()
    side.connection.field_mapping = side.mapping
    side.connection.save()
    merged = (timezone.now() - timedelta(days=6)).replace(microsecond=0)
    key = side.escape_issue(
        title="Refund sent twice",
        label="prod-bug",
        **side.mapped_fields(
            merged_at=merged,
            component="payments",
            severity=side.severity_word("high"),
            release=release.version,
        ),
    )
    side.escape_issue(title="Only labelled escape")  # the default label, not the query

    assert sync.intake_poll(connection=side.connection) == 1
    escape = Escape.objects.get(team=team)
    assert (escape.title, escape.tracker_key) == ("Refund sent twice", key)
    assert escape.merged_at == merged
    assert escape.component == "payments"
    assert escape.severity == Severity.HIGH
    assert escape.release == release
    assert escape.released_at == release.released_at

    # Edited in the tracker: the next poll updates the same escape.
    edit_fields = side.mapped_fields(
        merged_at=merged,
        component="checkout",
        severity=side.severity_word("critical"),
        release=release.version,
    )
    side.edit(key, title="Refund sent twice on retry", **edit_fields)
    sync.intake_poll(connection=side.connection)
    escape = Escape.objects.get(team=team)
    assert escape.title == "Refund sent twice on retry"
    assert escape.component == "checkout"
    assert escape.severity == Severity.CRITICAL


def test_a_bad_mapped_value_is_left_out_and_the_rest_kept(side: Side, caplog):
    team = side.connection.team
    side.connection.intake_enabled = True
    side.connection.intake_label = "escape"
    side.connection.field_mapping = side.mapping
    side.connection.save()
    merged_tomorrow = timezone.now() + timedelta(days=1)  # merged after it was detected
    side.escape_issue(
        title="Stock goes negative",
        **side.mapped_fields(
            merged_at=merged_tomorrow,
            component="inventory",
            severity="Sev-X",  # no severity of ours
            release="0.0.0-unknown",  # no such release in Leakseal
        ),
    )
    with caplog.at_level(logging.INFO, logger="integrations.sync"):
        assert sync.intake_poll(connection=side.connection) == 1

    escape = Escape.objects.get(team=team)
    assert escape.title == "Stock goes negative"
    assert escape.component == "inventory"
    assert escape.merged_at is None
    assert escape.severity == Severity.MEDIUM  # the default
    assert escape.release is None
    logged = caplog.text
    assert "left out merged_at" in logged
    assert "left out severity" in logged and "Sev-X" in logged
    assert "left out release" in logged
    assert accounts.JIRA_TOKEN not in logged and accounts.ADO_PAT not in logged


def test_leakseals_own_tickets_are_never_taken_in_as_escapes(side: Side, retro):
    pushed_action(side.connection, retro, new_escape(retro.team))
    side.connection.intake_enabled = True
    # A rule broad enough to match our own ticket too.
    side.connection.intake_query = (
        f"project = {accounts.JIRA_PROJECT}"
        if side.name == "jira"
        else f"[System.TeamProject] = '{accounts.ADO_PROJECT}'"
    )
    side.connection.save()
    side.escape_issue(title="A real escape")

    sync.intake_poll(connection=side.connection)
    intake = Escape.objects.filter(team=retro.team).exclude(source=Source.FORM)
    assert [e.title for e in intake] == ["A real escape"]


def test_another_teams_connection_never_touches_this_teams_escapes(side: Side, other_team: Team):
    side.connection.intake_enabled = True
    side.connection.intake_label = "escape"
    side.connection.save()
    key = side.escape_issue(title="Search returns stale prices")
    sync.intake_poll(connection=side.connection)
    ours = Escape.objects.get(team=side.connection.team)
    before = (ours.title, ours.updated_at)

    # The other team connects the same project of the same tracker.
    other = TrackerConnection.objects.get(pk=side.connection.pk)
    other.pk = None
    other.team = other_team
    other.webhook_token = "other-team-token"
    other.last_intake_poll_at = None
    other.save()
    side.edit(key, title="Renamed in the tracker")
    sync.intake_poll(connection=other)

    ours = fresh(ours)
    assert (ours.title, ours.updated_at) == before
    theirs = Escape.objects.get(team=other_team)
    assert theirs.pk != ours.pk
    assert theirs.title == "Renamed in the tracker"


def test_intake_is_off_until_enabled(side: Side):
    side.escape_issue(title="Ignored")
    assert sync.intake_poll(connection=side.connection) == 0
    assert not Escape.objects.filter(team=side.connection.team).exists()


def test_a_tracker_outage_stops_the_poll_quietly_and_the_next_one_catches_up(side: Side):
    side.connection.intake_enabled = True
    side.connection.intake_label = "escape"
    side.connection.save()
    side.escape_issue(title="Seen after the outage")
    side.fake.fail("POST", r".*", status=503, times=None)
    side.fake.fail("GET", r".*", status=503, times=None)

    assert poll_connection_task.apply(args=(side.connection.pk,)).get() is True
    assert not Escape.objects.filter(team=side.connection.team).exists()
    assert fresh(side.connection).last_intake_poll_at is None

    side.fake.faults.clear()
    assert poll_connection_task.apply(args=(side.connection.pk,)).get() is True
    assert Escape.objects.filter(team=side.connection.team).count() == 1


def test_the_poll_task_of_a_deleted_connection_returns_quietly(db):
    assert poll_connection_task.apply(args=(987654,)).get() is False


def test_severity_words_of_both_trackers_map_to_ours():
    assert sync._severity("Highest") == Severity.CRITICAL
    assert sync._severity("Blocker") == Severity.CRITICAL
    assert sync._severity("Major") == Severity.HIGH
    assert sync._severity("2 - High") == Severity.HIGH
    assert sync._severity("3 - Medium") == Severity.MEDIUM
    assert sync._severity("4") == Severity.LOW
    assert sync._severity("Trivial") == Severity.LOW
    assert sync._severity("Sev-X") is None


def test_jira_times_and_dates_read_as_utc():
    assert sync._datetime("2023-06-16T11:51:05.291+0000") == datetime(
        2023, 6, 16, 11, 51, 5, 291000, tzinfo=UTC
    )
    assert sync._datetime("2023-06-16") == datetime(2023, 6, 16, tzinfo=UTC)
    assert sync._datetime("next tuesday") is None


def test_poll_all_polls_every_teams_connection(
    fake_jira, jira_connection, fake_azure, other_team, owner, retro
):
    theirs = TrackerConnection(
        team=other_team,
        kind="azure_devops",
        base_url=f"{fake_azure.url}/{accounts.ADO_ORG}",
        project=accounts.ADO_PROJECT,
        ado_team=accounts.ADO_TEAM,
        intake_enabled=True,
        intake_label="escape",
    )
    theirs.token = accounts.ADO_PAT
    theirs.save()
    action = pushed_action(jira_connection, retro, new_escape(retro.team))
    fake_jira.set_status(action.external_key, "Done", done=True)
    fake_azure.add_escape_issue(title="Their escape")

    assert sync.poll_all() == 2
    assert fresh(action).done_at is not None
    assert Escape.objects.get(team=other_team).title == "Their escape"
    assert not Escape.objects.filter(team=retro.team, source=Source.AZURE_DEVOPS).exists()
