"""Pushing preventative actions to the team's tracker as tickets, through an outbox.

Closing a retro writes one `TicketPush` row per action in the closing transaction and queues
`integrations.action_push` on commit (`pushes_queue`). The task calls `action_push`, which
takes a lease on the row, looks for the ticket an earlier try may already have made (its
`leakseal-<uuid>` label), creates and places it otherwise, and records the outcome on the row
and on the action (`retros.services.action_tracker_update`, so every open board shows it).

Exactly one ticket per action, whatever fails:
* the lease keeps two workers (a retried task and the sweep's) from pushing at once;
* an attempt number travels with each task, so a task from an older retry chain (or one
  made stale by a person's Retry) returns without calling the tracker;
* neither tracker has an idempotency key, so every try first searches for its own label:
  a try whose create timed out after the tracker made the ticket adopts it next time.

Transient tracker errors come back as `PushRetry` (the task reschedules itself with the
countdown of `retry_countdown`); permanent ones fail the push at once with the tracker's own
message, which the board shows beside a Retry button (`action_push_retry`).
"""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass
from datetime import UTC, timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Q
from django.urls import reverse
from django.utils import timezone

from config.celery import registered_task
from config.retry import backoff_seconds
from escapes.models import Escape
from integrations.clients import client_for
from integrations.http import TrackerError
from integrations.models import OutboxState, TicketPush, TrackerConnection
from integrations.trackers import Placement, Ticket, TicketDraft, TrackerClient
from notices.chat import chat_notices_enqueue
from notices.models_chat import ChatEvent
from retros.models import Phase, PreventativeAction, PushState, Retrospective, Why
from retros.selectors import action_by_pk, actions_of_retro, retro_of_action, whys_of_action
from retros.services import action_tracker_update

log = logging.getLogger(__name__)

# --- The retry policy (the task applies it; see `retry_countdown`).

MAX_RETRIES = 8  # tries after the first; the task's own max_retries is the same number
MAX_PUSH_AGE = timedelta(hours=1)  # no retry once the push has been pending this long
# Seconds; lowered to half the broker's visibility timeout if smaller. A minute keeps the last
# ticket of a retro from landing long after the others (bench/tracker_push.py: the tail of
# backed-off pushes decides when a retro is fully pushed).
COUNTDOWN_MAX = 60.0
# A push makes at most this many tracker calls: find (a search and, on Azure DevOps, a read),
# sprints or iterations (maybe two pages), create, place, link — with margin.
CALLS_PER_PUSH = 8

# --- The sweep (beat runs `integrations.outbox_sweep` every 30 s).

# A row whose first task has not started after this long lost its enqueue (or its worker).
NEVER_RAN_AFTER = timedelta(minutes=1)
# A retry that is this late did not arrive; anything earlier may still be on its way.
RETRY_LATE_AFTER = timedelta(minutes=2)
SWEEP_BATCH = 500

NO_CONNECTION_MESSAGE = (
    "No tracker is connected to this team: connect Jira or Azure DevOps in the team's "
    "integration settings, then push again."
)


class PushRetry(Exception):
    """A transient failure: try again in `countdown` seconds, as attempt `attempt`."""

    def __init__(self, *, countdown: float, attempt: int, message: str) -> None:
        super().__init__(message)
        self.countdown = countdown
        self.attempt = attempt
        self.message = message


@dataclass(frozen=True)
class Pushed:
    ticket: Ticket
    placement: Placement


# --- Timing.


def lease_length() -> timedelta:
    """Longer than the slowest push can take: every call of it hitting both timeouts."""
    per_call = settings.TRACKER_CONNECT_TIMEOUT + settings.TRACKER_READ_TIMEOUT
    return timedelta(seconds=per_call * CALLS_PER_PUSH + 30)


def countdown_cap() -> float:
    """The longest wait between tries.

    A Redis broker redelivers a message that is not acknowledged within its visibility
    timeout, and a task waiting for its countdown counts as not acknowledged: a countdown
    beyond it would run the push twice. Half of it leaves room for the try itself.
    """
    options = getattr(settings, "CELERY_BROKER_TRANSPORT_OPTIONS", None) or {}
    visibility = options.get("visibility_timeout")
    if visibility:
        return min(COUNTDOWN_MAX, float(visibility) / 2)
    return COUNTDOWN_MAX


def retry_countdown(
    *, attempt: int, retry_after: float | None = None, rng: random.Random | None = None
) -> float:
    """Seconds to wait before try `attempt + 1`, after `attempt` tries failed transiently.

    Exponential backoff with full jitter (uniform between 0 and base × factor^(attempt−1)),
    so that many pushes failing together do not come back together; never sooner than the
    tracker's Retry-After; never longer than `countdown_cap()`.
    """
    return backoff_seconds(attempt=attempt, retry_after=retry_after, cap=countdown_cap(), rng=rng)


# --- The ticket's text.


def _retro_url(retro: Retrospective) -> str:
    path = reverse("retro_detail", kwargs={"team": retro.team.slug, "pk": retro.pk})
    return f"{settings.SITE_URL}{path}"


def _chain_to(why: Why, by_id: dict[int, Why]) -> list[Why]:
    chain = [why]
    while chain[-1].parent_id is not None and chain[-1].parent_id in by_id:
        chain.append(by_id[chain[-1].parent_id])
    return list(reversed(chain))


def _why_chains(action: PreventativeAction) -> tuple[str, list[list[Why]]]:
    """The escape's chains in this retro: to each root cause, or to each last why if none."""
    whys = list(whys_of_action(action).order_by("created_at", "id"))
    by_id = {why.pk: why for why in whys}
    roots = [why for why in whys if why.is_root_cause]
    if roots:
        return "Root cause", [_chain_to(why, by_id) for why in roots]
    parents = {why.parent_id for why in whys}
    leaves = [why for why in whys if why.pk not in parents]
    return "Five Whys (no root cause marked)", [_chain_to(why, by_id) for why in leaves]


def _escape_lines(escape: Escape) -> list[str]:
    detected = escape.detected_at.astimezone(UTC)
    lines = [
        f"Escape: {escape.title}",
        f"Detected: {detected:%Y-%m-%d %H:%M} UTC",
        f"Severity: {escape.get_severity_display()}",
    ]
    if escape.component:
        lines.append(f"Component: {escape.component}")
    lines.append(f"Category: {escape.get_category_display() or 'not classified'}")
    stage = escape.stage.name if escape.stage else "not set"
    lines.append(f"Stage that should have caught it: {stage}")
    if escape.tracker_url or escape.tracker_key:
        lines.append(f"Tracker issue: {escape.tracker_key or escape.tracker_url}")
    return lines


def ticket_draft(
    action: PreventativeAction, connection: TrackerConnection | None = None
) -> TicketDraft:
    """The ticket that carries `action`: what it asks, the escape it guards and why.

    Where the escape came from this same tracker, `escape_key` names its issue so the client
    links the two.
    """
    connection = connection or TrackerConnection.objects.get(team_id=action.retro.team_id)
    retro, escape = action.retro, action.escape
    retro_url = _retro_url(retro)
    owner = action.owner.get_username() if action.owner else "nobody"
    lines = [
        f'Preventative action from the retrospective "{retro.title}".',
        "",
        f"Kind: {action.get_kind_display()}",
        f"Stage that gets the guardrail: {action.stage.name if action.stage else 'not set'}",
        f"Owner: {owner}",
    ]
    if action.due_date:
        lines.append(f"Due: {action.due_date:%Y-%m-%d}")
    if action.description:
        lines += ["", action.description]
    lines += ["", *_escape_lines(escape)]
    heading, chains = _why_chains(action)
    for chain in chains:
        lines += ["", f"{heading}:"]
        for depth, why in enumerate(chain, start=1):
            kind = f" [{why.get_root_cause_kind_display()}]" if why.is_root_cause else ""
            lines.append(f"{depth}. Why? {why.text}{kind}")
    # The link back to the retro travels as `retro_url`: each client adds it to the text
    # in its tracker's way (a link in Azure DevOps' HTML, a line in Jira's).
    same_tracker = escape.source == connection.tracker
    # The issue's key where intake kept it (Jira links by key; external_id is Jira's numeric
    # issue id), else its id (an Azure DevOps work item's key and id are one number).
    escape_key = (escape.tracker_key or escape.external_id) if same_tracker else ""
    return TicketDraft(
        title=action.title,
        description="\n".join(lines),
        label=action.label,
        issue_type=connection.issue_type,
        priority=connection.priority,
        escape_key=escape_key,
        retro_url=retro_url,
    )


# --- Queueing.


def _enqueue(push_id: int, attempt: int) -> None:
    """Queue the push task; a broker that is down leaves the row to the sweep."""
    try:
        registered_task("integrations.action_push").delay(push_id, attempt)
    except Exception:
        log.warning("push %s: could not queue its task; the outbox sweep will", push_id)


def _reset_outbox(action: PreventativeAction, connection: TrackerConnection) -> TicketPush:
    """The action's outbox row, pending from scratch. Call inside a transaction."""
    push, _ = TicketPush.objects.update_or_create(
        action=action,
        defaults={
            "connection": connection,
            "state": OutboxState.PENDING,
            "attempts": 0,
            "next_attempt_at": None,
            "leased_until": None,
            "last_error": "",
            "first_queued_at": timezone.now(),
        },
    )
    action_tracker_update(
        action_id=action.pk,
        tracker=connection.tracker,
        push_state=PushState.QUEUED,
        last_error="",
    )
    push_id = push.pk
    transaction.on_commit(lambda: _enqueue(push_id, 0))
    return push


def pushes_queue(*, retro: Retrospective) -> list[TicketPush]:
    """An outbox row and, on commit, a push task for each action of the closing retro.

    Call inside retro_close's transaction, holding the retro lock. Without a tracker
    connection the actions stay drafts: there is nowhere to push them.
    """
    connection = TrackerConnection.objects.filter(team_id=retro.team_id).first()
    if connection is None:
        return []
    actions = actions_of_retro(retro).exclude(push_state=PushState.PUSHED)
    return [_reset_outbox(action, connection) for action in actions.order_by("created_at", "id")]


@transaction.atomic
def action_push_retry(*, action: PreventativeAction) -> TicketPush:
    """Push a failed (or stuck, or never pushed) action of a closed retro again."""
    retro = retro_of_action(action)
    if retro.phase != Phase.CLOSED:
        raise ValidationError("Tickets are pushed when the retrospective closes.")
    fresh = action_by_pk(action.pk).first()
    if fresh is None:
        raise ValidationError("This action was deleted meanwhile.", code="gone")
    if fresh.push_state == PushState.PUSHED:
        raise ValidationError(f"This action is already in the tracker as {fresh.external_key}.")
    connection = TrackerConnection.objects.filter(team_id=retro.team_id).first()
    if connection is None:
        raise ValidationError(NO_CONNECTION_MESSAGE, code="no_connection")
    push = TicketPush.objects.select_for_update().filter(action=fresh).first()
    if push is not None and push.leased_until and push.leased_until > timezone.now():
        raise ValidationError("This action is being pushed right now; wait for the outcome.")
    return _reset_outbox(fresh, connection)


def outbox_sweep() -> int:
    """Queue the pending pushes whose task was lost. Returns how many it queued.

    Lost means: never started a minute after it was written (the enqueue failed on commit,
    or its worker died before the first try), or its scheduled retry is well overdue. A row
    a worker is on (a live lease) is left alone. `next_attempt_at` is moved to now, so the
    next sweeps wait for this task instead of queueing it again and again.
    """
    now = timezone.now()
    lease_free = Q(leased_until__isnull=True) | Q(leased_until__lt=now)
    never_ran = Q(next_attempt_at__isnull=True, first_queued_at__lt=now - NEVER_RAN_AFTER)
    overdue = Q(next_attempt_at__lt=now - RETRY_LATE_AFTER)
    rows = list(
        TicketPush.objects.filter(state=OutboxState.PENDING)
        .filter(lease_free)
        .filter(never_ran | overdue)
        .order_by("first_queued_at")
        .values_list("pk", "attempts")[:SWEEP_BATCH]
    )
    queued = 0
    for push_id, attempts in rows:
        # Only the sweep that moves the row queues it: two beats running at once do not.
        claimed = (
            TicketPush.objects.filter(pk=push_id, state=OutboxState.PENDING, attempts=attempts)
            .filter(lease_free)
            .filter(never_ran | overdue)
            .update(next_attempt_at=now)
        )
        if claimed:
            _enqueue(push_id, attempts)
            queued += 1
    if queued:
        log.info("outbox sweep queued %s push(es)", queued)
    return queued


# --- The push itself.


def _take_lease(push_id: int, attempt: int | None) -> str:
    """Empty when this worker holds the push now, else why it should leave it alone."""
    now = timezone.now()
    rows = TicketPush.objects.filter(pk=push_id, state=OutboxState.PENDING)
    if attempt is not None:
        rows = rows.filter(attempts=attempt)
    lease_free = Q(leased_until__isnull=True) | Q(leased_until__lt=now)
    if rows.filter(lease_free).update(leased_until=now + lease_length()):
        return ""
    push = TicketPush.objects.filter(pk=push_id).first()
    if push is None:
        return "gone"
    if push.state != OutboxState.PENDING:
        return str(push.state)
    if attempt is not None and push.attempts != attempt:
        return "stale"
    return "busy"


def lease_left(*, push_id: int) -> float | None:
    """Seconds until another worker's lease on a pending push runs out (None: no lease)."""
    until = (
        TicketPush.objects.filter(pk=push_id, state=OutboxState.PENDING)
        .values_list("leased_until", flat=True)
        .first()
    )
    if until is None:
        return None
    return max(0.0, (until - timezone.now()).total_seconds())


def _push_ticket(client: TrackerClient, draft: TicketDraft) -> Pushed:
    """Find the ticket an earlier try made, else create it; either way in its sprint."""
    existing = client.find_ticket(draft.label)
    if existing is not None:
        if existing.sprint:
            return Pushed(existing, Placement(name=existing.sprint))
        placement = client.next_placement()
        if placement.ref:
            client.place(existing, placement)
        return Pushed(existing, placement)
    placement = client.next_placement()
    ticket = client.create_ticket(draft, placement)
    if placement.ref:
        client.place(ticket, placement)
    return Pushed(ticket, placement)


@transaction.atomic
def _mark_done(push: TicketPush, pushed: Pushed) -> None:
    TicketPush.objects.filter(pk=push.pk).update(
        state=OutboxState.DONE, leased_until=None, last_error="", updated_at=timezone.now()
    )
    # A pushed action's last_error holds the placement's warning ("no sprint: backlog"),
    # the one thing about a successful push a person must still see.
    action_tracker_update(
        action_id=push.action_id,
        push_state=PushState.PUSHED,
        external_key=pushed.ticket.key,
        external_url=pushed.ticket.url,
        sprint=pushed.placement.name or "Backlog",
        external_status=pushed.ticket.status,
        last_error=pushed.placement.warning,
    )


@transaction.atomic
def _mark_failed(
    push_id: int, action_id: int, message: str, *, attempts: int | None = None
) -> None:
    counted = {} if attempts is None else {"attempts": attempts}
    TicketPush.objects.filter(pk=push_id).update(
        state=OutboxState.FAILED,
        leased_until=None,
        last_error=message,
        updated_at=timezone.now(),
        **counted,
    )
    action_tracker_update(action_id=action_id, push_state=PushState.FAILED, last_error=message)
    _push_failed_chat(push_id, action_id, message)


def _push_failed_chat(push_id: int, action_id: int, message: str) -> None:
    """Tell the team's chat channels, in the failing transaction: once per failure of a push
    (a Retry that fails again is a new occasion: its attempt count or time differ)."""
    action = action_by_pk(action_id).select_related("retro__team").first()
    push = TicketPush.objects.filter(pk=push_id).first()
    if action is None or push is None:
        return
    retro = action.retro
    chat_notices_enqueue(
        team=retro.team,
        occasion=f"push-failed:{action.pk}:{push.attempts}:{push.updated_at:%Y%m%dT%H%M%S.%f}",
        kind=ChatEvent.PUSH_FAILED,
        subject=f"Ticket push failed: {action.title}"[:300],
        payload={
            "title": f"A ticket could not be made: {action.title}",
            "lines": [
                f"The preventative action “{action.title}” of the retro “{retro.title}” "
                f"has no ticket: the tracker refused it for good.",
                f"Why: {message}",
                "Fix the tracker connection, then press Retry push on the retro.",
            ],
            "link": {"text": "Open the retro", "url": _retro_url(retro)},
        },
    )


def _after_transient(push: TicketPush, message: str, retry_after: float | None) -> str:
    """Schedule the next try (raising PushRetry), or give up once the bounds are reached."""
    now = timezone.now()
    attempt = push.attempts + 1
    if attempt > MAX_RETRIES or now - push.first_queued_at > MAX_PUSH_AGE:
        given_up = f"{message} (gave up after {attempt} tries)"
        _mark_failed(push.pk, push.action_id, given_up, attempts=attempt)
        log.warning("push %s failed for good: %s", push.pk, given_up)
        return "failed"
    countdown = retry_countdown(attempt=attempt, retry_after=retry_after)
    with transaction.atomic():
        TicketPush.objects.filter(pk=push.pk).update(
            attempts=attempt,
            next_attempt_at=now + timedelta(seconds=countdown),
            leased_until=None,
            last_error=message,
            updated_at=now,
        )
        action_tracker_update(
            action_id=push.action_id,
            push_state=PushState.QUEUED,
            last_error=f"Will try again: {message}",
        )
    raise PushRetry(countdown=countdown, attempt=attempt, message=message)


def action_push(*, push_id: int, attempt: int | None = None) -> str:
    """Make the action's one ticket. Returns "done", "failed", or why it did nothing.

    `attempt` is the number of tries the queuing side saw on the row; a task carrying an
    older number is from a superseded chain and leaves. Raises PushRetry on a transient
    failure, with the countdown the task must wait.
    """
    refused = _take_lease(push_id, attempt)
    if refused:
        return refused
    push = TicketPush.objects.select_related("connection").get(pk=push_id)
    action = (
        action_by_pk(push.action_id)
        .select_related("retro__team", "escape__stage", "stage", "owner")
        .first()
    )
    if action is None:  # the cascade removes the row with it; a race at most
        return "gone"
    connection = push.connection
    if connection is None:
        _mark_failed(push.pk, action.pk, NO_CONNECTION_MESSAGE)
        return "failed"
    action_tracker_update(action_id=action.pk, push_state=PushState.PUSHING)
    try:
        pushed = _push_ticket(client_for(connection), ticket_draft(action, connection))
    except TrackerError as exc:
        if exc.transient:
            return _after_transient(push, exc.message, exc.retry_after)
        _mark_failed(push.pk, action.pk, exc.message)
        log.warning("push %s failed: %s", push.pk, exc.message)
        return "failed"
    except Exception as exc:
        # A bug of ours or a client's: retried within the same bounds, never left "pushing".
        log.exception("push %s: unexpected error", push.pk)
        return _after_transient(push, f"Unexpected error: {type(exc).__name__}", None)
    _mark_done(push, pushed)
    log.info("push %s: action %s is %s", push.pk, action.pk, pushed.ticket.key)
    return "done"


def action_push_give_up(*, push_id: int, message: str) -> None:
    """Fail a push whose task ran out of retries (the task's own bound, as a backstop)."""
    push = TicketPush.objects.filter(pk=push_id, state=OutboxState.PENDING).first()
    if push is not None:
        _mark_failed(push.pk, push.action_id, message)
