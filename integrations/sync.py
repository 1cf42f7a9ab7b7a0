"""What comes back from the tracker: ticket status, escapes, and the webhooks that carry both.

Two ways in, one code path each:

* status — a preventative action's ticket moved or was finished. `ticket_status_apply` records
  it on the action and seals (or unseals) its escape. A webhook delivery re-reads the ticket
  and applies it within the request; `status_poll` does the same for every open ticket.
* intake — an issue or work item matching the team's escape rule becomes an Escape (or updates
  the one it already is): `escape_intake`, from a webhook or from `intake_poll`.

Deliveries can repeat and arrive late (specs/README.md), so nothing here trusts a delivery's
body for state: it names the issue, and we re-read the issue from the tracker. Every write is
idempotent — applying the same state twice changes nothing — so a delivery that is processed
twice (two copies racing past the WebhookDelivery check) still changes nothing twice.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from typing import Any

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import dateparse, timezone

from escapes.models import TEXT_MAX, Escape, Severity
from escapes.release_selectors import releases_of_team
from escapes.selectors import escapes_of_team
from escapes.services import (
    ESCAPE_FIELDS,
    escape_build,
    escape_create,
    escape_update,
)
from integrations.clients import client_for
from integrations.http import TrackerError
from integrations.models import (
    ConnectionEvent,
    OutboxState,
    TicketPush,
    TrackerConnection,
    WebhookDelivery,
)
from integrations.trackers import RemoteIssue, Ticket, TrackerClient
from retros.models import DUPLICATE_NOTE, PreventativeAction, PushState
from retros.selectors import action_by_pk, actions_of_team
from retros.services import action_retro_lock, action_tracker_update

log = logging.getLogger(__name__)

# The intake poll asks for issues changed since its last run minus this much: a change made
# while the previous poll was running, or stamped by a tracker clock a little behind ours, is
# still seen. Re-reading an issue twice is harmless (escape_intake is idempotent).
INTAKE_OVERLAP = timedelta(minutes=5)
# A webhook for an issue under a query rule (JQL/WIQL) cannot be matched locally: we ask the
# tracker for the rule's issues changed in this window and look for the delivered one.
WEBHOOK_SEARCH_WINDOW = timedelta(minutes=15)


# --- Status: a preventative action's ticket.


@transaction.atomic
def ticket_status_apply(*, action: PreventativeAction, ticket: Ticket) -> PreventativeAction | None:
    """Record the ticket's status on its action; a done ticket seals the escape.

    - done: `done_at` is set the first time (when Leakseal learned it: the tracker's own
      resolution time is not part of a Ticket) and kept on every later report;
    - not done after done (reopened in the tracker): `done_at` is cleared, and the escape is
      unsealed only when no other action of it is still done — an escape is sealed while at
      least one of its guardrails is in place.
    - the sprint follows the ticket when the tracker names one; a ticket taken out of every
      sprint keeps the last one here (a client that cannot see the sprint field says "" too).

    Idempotent: the same ticket state twice writes nothing the second time. None when the
    action is gone.
    """
    # Lock order as in retros.services (retro, then action and escape), so that a retro edit
    # racing with a status update waits instead of deadlocking.
    action_retro_lock(action=action)
    fresh = action_by_pk(action.pk).select_related("escape").first()
    if fresh is None:
        return None
    fields: dict[str, Any] = {"external_status": ticket.status[:100]}
    if ticket.sprint:
        fields["sprint"] = ticket.sprint[:200]
    if ticket.done and fresh.done_at is None:
        fields["done_at"] = timezone.now()
    elif not ticket.done and fresh.done_at is not None:
        fields["done_at"] = None
    # action_tracker_update seals or unseals the escape when `done_at` changed (the one rule,
    # shared with marking done in Leakseal: retros.services.action_seal_follow) and queues the
    # escape's rollup for the follow-through.
    return action_tracker_update(action_id=fresh.pk, **fields)


def _open_actions(connection: TrackerConnection) -> list[PreventativeAction]:
    """The team's pushed actions whose ticket is not done yet, in this connection's tracker."""
    return list(
        actions_of_team(connection.team_id)
        .filter(
            push_state=PushState.PUSHED,
            done_at__isnull=True,
            tracker__in=[connection.tracker, ""],
        )
        .exclude(external_key="")
        .order_by("pk")
    )


def status_poll(*, connection: TrackerConnection) -> int:
    """Re-read every open ticket of the team; the backstop for missed webhooks.

    Returns how many tickets were read. A ticket the tracker cannot give (deleted, no
    permission, tracker down) is logged and skipped; the next poll tries again.
    """
    client = client_for(connection)
    started = timezone.now()
    read = 0
    for action in _open_actions(connection):
        try:
            ticket = client.ticket(action.external_key)
        except TrackerError as exc:
            log.info(
                "status poll of connection %s: ticket %s not read: %s",
                connection.pk,
                action.external_key,
                exc,
            )
            if exc.transient:
                break  # the tracker is down or throttling us: stop; the next poll resumes
            continue
        ticket_status_apply(action=action, ticket=ticket)
        read += 1
    TrackerConnection.objects.filter(pk=connection.pk).update(last_status_poll_at=started)
    return read


# --- Duplicates: two tickets carrying one action's label.

# A duplicate can only be made around the push (a lost create answer, a search lagging behind
# it), so the sync looks at the actions pushed this recently, on every poll.
DUPLICATE_WATCH = timedelta(days=1)


def _recently_pushed(connection: TrackerConnection) -> list[PreventativeAction]:
    since = timezone.now() - DUPLICATE_WATCH
    pushed_ids = TicketPush.objects.filter(
        connection=connection, state=OutboxState.DONE, updated_at__gte=since
    ).values_list("action_id", flat=True)
    return list(
        actions_of_team(connection.team_id)
        .filter(pk__in=pushed_ids, push_state=PushState.PUSHED)
        .exclude(external_key="")
        .order_by("pk")
    )


@transaction.atomic
def _duplicate_record(
    *, connection: TrackerConnection, action: PreventativeAction, extra: str, kept: str
) -> bool:
    """Log the duplicate on the connection and tell it on the action; False if logged before."""
    word = "issue" if connection.is_jira else "work item"
    message = (
        f"{DUPLICATE_NOTE}two tickets carry the label of “{action.title}”: {word} {extra} "
        f"was made besides {kept} and is linked to it as its duplicate; close {extra} in the "
        "tracker."
    )
    _, created = ConnectionEvent.objects.get_or_create(
        connection=connection,
        subject=f"duplicate:{extra}"[:200],
        defaults={"action": action, "message": message},
    )
    if not created:
        return False
    fresh = action_by_pk(action.pk).first()
    if fresh is not None:
        shown = f"{fresh.last_error} {message}".strip() if fresh.last_error else message
        action_tracker_update(action_id=fresh.pk, last_error=shown[:2000])
    log.warning("connection %s: %s", connection.pk, message)
    return True


def duplicates_check(*, connection: TrackerConnection) -> int:
    """Find the recently pushed actions whose label is on more than one ticket.

    The ticket recorded on the action is kept (the oldest if it is not among them); each extra
    one is linked to it as a duplicate in the tracker, logged on the connection and told on
    the action. Returns how many new duplicates were found. A transient tracker error stops
    the check (the next poll resumes); a link the tracker refuses is still reported.
    """
    client = client_for(connection)
    found = 0
    try:
        for action in _recently_pushed(connection):
            found += _duplicates_of(connection, client, action)
    except TrackerError as exc:
        if not exc.transient:
            raise
        log.info("duplicate check of connection %s stopped: %s", connection.pk, exc)
    return found


def _duplicates_of(
    connection: TrackerConnection, client: TrackerClient, action: PreventativeAction
) -> int:
    """Link and report the extra tickets of one action; how many were new."""
    found = 0
    tickets = client.find_tickets(action.label)
    if len(tickets) < 2:
        return 0
    keys = [ticket.key for ticket in tickets]
    kept = action.external_key if action.external_key in keys else keys[0]
    logged = set(
        ConnectionEvent.objects.filter(
            connection=connection, subject__in=[f"duplicate:{key}" for key in keys]
        ).values_list("subject", flat=True)
    )
    for extra in keys:
        if extra == kept or f"duplicate:{extra}" in logged:
            continue
        try:
            client.link_duplicate(extra, kept)
        except TrackerError as exc:
            if exc.transient:
                raise
            log.warning(
                "connection %s: could not link %s to %s as duplicate: %s",
                connection.pk,
                extra,
                kept,
                exc.message,
            )
        if _duplicate_record(connection=connection, action=action, extra=extra, kept=kept):
            found += 1
    return found


# --- Intake: issues that match the team's escape rule become escapes.

# Tracker words for severity → ours. Jira priorities (Highest, High, Medium, Low, Lowest; older
# schemes Blocker, Critical, Major, Minor, Trivial) and Azure DevOps' Severity values
# ("1 - Critical" … "4 - Low") once their number prefix is dropped.
SEVERITY_WORDS: dict[str, str] = {
    "blocker": Severity.CRITICAL,
    "critical": Severity.CRITICAL,
    "highest": Severity.CRITICAL,
    "urgent": Severity.CRITICAL,
    "high": Severity.HIGH,
    "major": Severity.HIGH,
    "medium": Severity.MEDIUM,
    "normal": Severity.MEDIUM,
    "moderate": Severity.MEDIUM,
    "low": Severity.LOW,
    "lowest": Severity.LOW,
    "minor": Severity.LOW,
    "trivial": Severity.LOW,
}
# A bare number: Azure DevOps' Microsoft.VSTS.Common.Priority (1 highest … 4 lowest).
SEVERITY_NUMBERS: dict[str, str] = {
    "1": Severity.CRITICAL,
    "2": Severity.HIGH,
    "3": Severity.MEDIUM,
    "4": Severity.LOW,
}
_NUMBER_PREFIX = re.compile(r"^\s*\d+\s*-\s*")


def _plain(value: Any) -> str | None:
    """A field's value as text: the first of a list, the value/name of an object."""
    if isinstance(value, list):
        return _plain(value[0]) if value else None
    if isinstance(value, dict):
        for key in ("value", "name", "displayName", "key"):
            if value.get(key) not in (None, ""):
                return _plain(value[key])
        return None
    if isinstance(value, bool) or value is None:
        return None
    text = str(value).strip()
    return text or None


def _severity(text: str) -> str | None:
    lowered = text.strip().lower()
    if lowered in Severity.values:
        return lowered
    if lowered in SEVERITY_NUMBERS:
        return SEVERITY_NUMBERS[lowered]
    return SEVERITY_WORDS.get(_NUMBER_PREFIX.sub("", lowered))


def _datetime(text: str) -> datetime | None:
    """An ISO date-time (Jira's "2023-06-16T11:51:05.291+0000" too) or a date, in UTC."""
    try:
        parsed = dateparse.parse_datetime(text)
        if parsed is None:
            day = dateparse.parse_date(text)
            parsed = datetime.combine(day, time()) if day else None
    except ValueError:
        return None
    if parsed is not None and timezone.is_naive(parsed):
        parsed = parsed.replace(tzinfo=UTC)
    return parsed


def _mapped(
    connection: TrackerConnection, issue: RemoteIssue, notes: list[str]
) -> list[tuple[str, Any]]:
    """(escape field, value) for each mapped tracker field the issue has a usable value in."""
    mapping = connection.field_mapping if isinstance(connection.field_mapping, dict) else {}
    values: list[tuple[str, Any]] = []
    for target in ("merged_at", "component", "severity", "release"):
        source = mapping.get(target)
        if not source or not isinstance(source, str):
            continue
        text = _plain(issue.fields.get(source))
        if text is None:
            continue  # absent or empty in the tracker: leave ours as it is
        if target == "merged_at":
            when = _datetime(text)
            if when is None:
                notes.append(f"merged_at: {source} is not a date-time")
                continue
            values.append((target, when))
        elif target == "component":
            values.append((target, text[:100]))
        elif target == "severity":
            severity = _severity(text)
            if severity is None:
                notes.append(f"severity: no severity of ours for {source} {text!r}")
                continue
            values.append((target, severity))
        else:
            # Only a release Leakseal already knows: its time drives "time in production" and
            # the "detected before release" rule, and a version name alone does not give it.
            release = releases_of_team(connection.team_id).filter(version=text).first()
            if release is None:
                notes.append(f"release: no release {text!r} in Leakseal")
                continue
            values.append((target, release))
    return values


def _messages(exc: ValidationError) -> str:
    if hasattr(exc, "error_dict"):
        return "; ".join(f"{f}: {' '.join(m)}" for f, m in exc.message_dict.items())
    return "; ".join(exc.messages)


def _check(connection: TrackerConnection, existing: Escape | None, data: dict[str, Any]) -> None:
    """Validate `data` as the escape would be after it is applied (ValidationError if not)."""
    state = {f: getattr(existing, f) for f in ESCAPE_FIELDS} if existing else {}
    state.update(data)
    escape_build(team=connection.team, data=state)


def _aware(value: datetime | None) -> datetime | None:
    if value is not None and timezone.is_naive(value):
        return value.replace(tzinfo=UTC)
    return value


def escape_intake(*, connection: TrackerConnection, issue: RemoteIssue) -> Escape:
    """Create or update the team's escape for a tracker issue that matches its escape rule.

    The issue's own fields (title, description, created → detected, resolved, link) and the
    connection's field mapping (merged_at, component, severity, release) go through the same
    validation as a form. A mapped value that is unusable or would make the escape invalid
    (merged after it was detected, an unknown severity, a release Leakseal does not have) is
    left out — the rest is kept — and the reason logged at info. Fields the tracker does not
    give (category, stage, …) stay as the retro set them. Raises ValidationError only when
    the issue itself cannot be an escape (e.g. created in the future).
    """
    team = connection.team
    existing = (
        escapes_of_team(team.pk)
        .filter(source=connection.tracker, external_id=issue.external_id)
        .first()
    )
    detected_at = _aware(issue.created_at) or (existing.detected_at if existing else None)
    data: dict[str, Any] = {
        "title": (issue.title or issue.key or "Untitled")[:200],
        "description": (issue.description or "")[:TEXT_MAX],
        "detected_at": detected_at or timezone.now(),
        "tracker_key": issue.key[:64],
    }
    _check(connection, existing, data)
    notes: list[str] = []
    optional: list[tuple[str, Any]] = [("resolved_at", _aware(issue.resolved_at))]
    if issue.url:
        optional.append(("tracker_url", issue.url))
    optional.extend(_mapped(connection, issue, notes))
    for field, value in optional:
        try:
            _check(connection, existing, {**data, field: value})
        except ValidationError as exc:
            notes.append(f"{field}: {_messages(exc)}")
            continue
        data[field] = value
    for note in notes:
        log.info("intake of %s for connection %s: left out %s", issue.key, connection.pk, note)
    if existing is None:
        try:
            with transaction.atomic():
                return escape_create(
                    team=team, data=data, source=connection.tracker, external_id=issue.external_id
                )
        except IntegrityError:
            # A webhook and the poll took the same new issue at once: the other one created
            # it; update that one instead.
            existing = escapes_of_team(team.pk).get(
                source=connection.tracker, external_id=issue.external_id
            )
    changed = {field: value for field, value in data.items() if getattr(existing, field) != value}
    if not changed:
        return existing
    return escape_update(
        escape=existing, data=changed, via=f"{connection.get_kind_display()} intake"
    )


def _own_ticket_keys(connection: TrackerConnection) -> set[str]:
    return set(
        actions_of_team(connection.team_id)
        .exclude(external_key="")
        .values_list("external_key", flat=True)
    )


def _is_own_ticket(issue: RemoteIssue, own_keys: set[str]) -> bool:
    """Leakseal's own preventative tickets are never escapes, even if a query rule matches them."""
    if issue.key in own_keys or issue.external_id in own_keys:
        return True
    labels = issue.fields.get("labels") or issue.fields.get("System.Tags") or []
    if isinstance(labels, str):
        labels = labels.split(";")
    return any(str(label).strip().startswith("leakseal-") for label in labels)


def _intake_each(connection: TrackerConnection, issues: list[RemoteIssue]) -> int:
    own = _own_ticket_keys(connection)
    taken = 0
    for issue in issues:
        if _is_own_ticket(issue, own):
            continue
        try:
            escape_intake(connection=connection, issue=issue)
        except ValidationError as exc:
            log.info(
                "intake of %s for connection %s: not an escape: %s",
                issue.key,
                connection.pk,
                _messages(exc),
            )
            continue
        taken += 1
    return taken


def intake_poll(*, connection: TrackerConnection) -> int:
    """Take in the issues matching the escape rule changed since the last poll (a little before).

    Returns how many became or updated escapes. `last_intake_poll_at` moves only when the
    search succeeded, so a tracker outage is caught up by the next poll.
    """
    if not connection.intake_enabled:
        return 0
    started = timezone.now()
    since = connection.last_intake_poll_at
    issues = client_for(connection).search_escapes(since - INTAKE_OVERLAP if since else None)
    taken = _intake_each(connection, issues)
    TrackerConnection.objects.filter(pk=connection.pk).update(last_intake_poll_at=started)
    return taken


def connection_poll(*, connection: TrackerConnection) -> None:
    """Both polls of one connection; a tracker error is logged, never raised."""
    try:
        status_poll(connection=connection)
        duplicates_check(connection=connection)
        intake_poll(connection=connection)
    except TrackerError as exc:
        log.info("poll of connection %s stopped: %s", connection.pk, exc)


def poll_all() -> int:
    """Poll every connection in this process (the task fans out one task per connection)."""
    connections = list(TrackerConnection.objects.select_related("team").order_by("pk"))
    for connection in connections:
        connection_poll(connection=connection)
    return len(connections)


# --- Webhooks: a verified delivery names an issue; we re-read it and apply it.


class BadDelivery(ValueError):
    """The body is not a delivery we can read; the message says what is wrong (HTTP 400)."""


@dataclass(frozen=True)
class Delivery:
    delivery_id: str
    event: str
    key: str  # Jira issue key, Azure DevOps work item id ("" when the event has no issue)
    external_id: str  # Jira issue id, Azure DevOps work item id
    project: str  # "" when the body does not say
    labels: tuple[str, ...]


def _json_object(body: bytes) -> dict[str, Any]:
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise BadDelivery("The body is not UTF-8 text.") from None
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise BadDelivery(f"The body is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise BadDelivery("The body must be a JSON object.")
    return data


def _digest(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _jira_delivery(body: bytes, headers: Mapping[str, str]) -> Delivery:
    data = _json_object(body)
    event = data.get("webhookEvent")
    if not isinstance(event, str) or not event:
        raise BadDelivery("The body has no webhookEvent: not a Jira webhook delivery.")
    issue = _dict(data.get("issue"))
    fields = _dict(issue.get("fields"))
    labels = fields.get("labels") if isinstance(fields.get("labels"), list) else []
    key = issue.get("key")
    return Delivery(
        delivery_id=headers.get("X-Atlassian-Webhook-Identifier") or _digest(body),
        event=event[:100],
        key=key if isinstance(key, str) else "",
        external_id=str(issue.get("id") or ""),
        project=str(_dict(fields.get("project")).get("key") or ""),
        labels=tuple(str(label) for label in labels or []),
    )


def _azure_delivery(body: bytes) -> Delivery:
    data = _json_object(body)
    event = data.get("eventType")
    if not isinstance(event, str) or not event:
        raise BadDelivery("The body has no eventType: not an Azure DevOps service hook delivery.")
    resource = _dict(data.get("resource"))
    # workitem.updated: the resource is the update, `workItemId` the item and `revision` its
    # state after it; workitem.created/deleted/restored/commented: the resource is the item.
    item_id = resource.get("workItemId") if "workItemId" in resource else resource.get("id")
    fields = _dict(_dict(resource.get("revision")).get("fields")) or _dict(resource.get("fields"))
    tags = fields.get("System.Tags")
    key = str(item_id) if event.startswith("workitem.") and item_id is not None else ""
    return Delivery(
        delivery_id=str(data.get("id") or "")[:128] or _digest(body),
        event=event[:100],
        key=key,
        external_id=key,
        project=str(fields.get("System.TeamProject") or ""),
        labels=tuple(t.strip() for t in tags.split(";") if t.strip())
        if isinstance(tags, str)
        else (),
    )


def delivery_parse(
    *, connection: TrackerConnection, body: bytes, headers: Mapping[str, str]
) -> Delivery:
    """Read a verified delivery's body (raises BadDelivery naming what is wrong)."""
    return _jira_delivery(body, headers) if connection.is_jira else _azure_delivery(body)


def _find_action(connection: TrackerConnection, key: str) -> PreventativeAction | None:
    return (
        actions_of_team(connection.team_id)
        .filter(
            external_key=key,
            tracker__in=[connection.tracker, ""],
        )
        .order_by("pk")
        .first()
    )


def _has_label(connection: TrackerConnection, labels: tuple[str, ...]) -> bool:
    wanted = connection.intake_label.strip().lower()
    return bool(wanted) and wanted in (label.lower() for label in labels)


def _intake_from_webhook(connection: TrackerConnection, delivery: Delivery) -> str:
    if not connection.intake_enabled:
        return "ignored: not a Leakseal ticket, and escape intake is off"
    known = (
        escapes_of_team(connection.team_id)
        .filter(source=connection.tracker, external_id=delivery.external_id)
        .exists()
    )
    client = client_for(connection)
    # A label/tag rule is checked on the body's labels; a query rule (JQL/WIQL) cannot be run
    # here, so the tracker is asked for the rule's recently changed issues. An issue that is
    # already an escape is simply re-read: it matched once, later edits update it.
    if known or (not connection.intake_query.strip() and _has_label(connection, delivery.labels)):
        issues = [client.remote_issue(delivery.key)]
    elif connection.intake_query.strip():
        since = timezone.now() - WEBHOOK_SEARCH_WINDOW
        issues = [
            issue
            for issue in client.search_escapes(since)
            if delivery.key in (issue.key, issue.external_id)
        ]
        if not issues:
            return "ignored: the issue does not match the intake query"
    else:
        return "ignored: the issue does not carry the intake label"
    taken = _intake_each(connection, issues)
    return f"escape {delivery.key} taken in" if taken else f"ignored: {delivery.key} not taken in"


def _process(connection: TrackerConnection, delivery: Delivery) -> str:
    if not delivery.key:
        return f"ignored: {delivery.event} names no issue"
    if delivery.event in ("jira:issue_deleted", "workitem.deleted"):
        # A deleted issue keeps its escape (and a deleted ticket its action): history stays.
        return f"ignored: {delivery.event}"
    if delivery.project and delivery.project.lower() != connection.project.lower():
        return f"ignored: project {delivery.project} is not {connection.project}"
    action = _find_action(connection, delivery.key)
    if action is not None:
        ticket = client_for(connection).ticket(delivery.key)
        ticket_status_apply(action=action, ticket=ticket)
        return f"ticket {delivery.key} is {ticket.status or 'unknown'}"
    return _intake_from_webhook(connection, delivery)


def webhook_accept(
    *, connection: TrackerConnection, body: bytes, headers: Mapping[str, str]
) -> str:
    """Process a verified delivery; returns what was done, in a few words.

    Raises BadDelivery for a body we cannot read and TrackerError when the re-read failed —
    then no WebhookDelivery is recorded, so the tracker's redelivery (or the poll) retries it.
    The delivery is recorded after it was applied: a copy arriving later changes nothing and
    costs no tracker call.
    """
    delivery = delivery_parse(connection=connection, body=body, headers=headers)
    seen = WebhookDelivery.objects.filter(connection=connection, delivery_id=delivery.delivery_id)
    if seen.exists():
        return "duplicate: already processed"
    outcome = _process(connection, delivery)
    try:
        with transaction.atomic():
            WebhookDelivery.objects.create(
                connection=connection, delivery_id=delivery.delivery_id, event=delivery.event
            )
    except IntegrityError:
        return "duplicate: processed concurrently"
    return outcome
