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
  a try whose create timed out after the tracker made the ticket adopts it next time;
* both trackers' searches lag behind their creates (eventually consistent), so a create
  whose answer was lost is not repeated until the search has had TRACKER_SEARCH_LAG seconds
  to show its ticket (`create_sent_at`); whatever still slips through, two tickets with one
  label, the status sync finds and links as duplicates (integrations/sync.py).

Transient tracker errors come back as `PushRetry` (the task reschedules itself with the
countdown of `retry_countdown`), except a Retry-After longer than a countdown may be (half
the broker's visibility timeout): that wait is obeyed up to TRACKER_RETRY_AFTER_MAX, with no
task waiting; `rate_limited_until` holds its end and the sweep queues the push then, while
the action says "Waiting for Jira's rate limit until HH:MM". Permanent ones fail the push at
once with the tracker's own message, which the board shows beside a Retry button
(`action_push_retry`).
"""

from __future__ import annotations

import logging
import random
import threading
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import DatabaseError, transaction
from django.db import connection as db_connection
from django.db.models import Q
from django.urls import reverse
from django.utils import timezone

from config.celery import registered_task
from config.retry import backoff_seconds, duration_words, retry_after_max
from escapes.models import Escape
from integrations.clients import client_for
from integrations.http import TrackerError
from integrations.models import OutboxState, TicketPush, TrackerConnection
from integrations.trackers import Placement, Ticket, TicketDraft, TrackerClient
from notices.chat import chat_notices_enqueue
from notices.models_chat import ChatEvent
from retros.chat_notices import retro_tickets_chat
from retros.models import Phase, PreventativeAction, PushState, Retrospective, Why
from retros.selectors import action_by_pk, actions_of_retro, retro_of_action, whys_of_action
from retros.services import action_retro_lock, action_tracker_update

log = logging.getLogger(__name__)

# --- The retry policy (the task applies it; see `retry_countdown`).

MAX_RETRIES = 8  # tries after the first; the task's own max_retries is the same number
# No retry once the push has been pending this long, the rate-limit waits it obeyed aside.
MAX_PUSH_AGE = timedelta(hours=1)
# Seconds; lowered to half the broker's visibility timeout if smaller. A minute keeps the last
# ticket of a retro from landing long after the others (bench/tracker_push.py: the tail of
# backed-off pushes decides when a retro is fully pushed).
COUNTDOWN_MAX = 60.0
# A worker's hold on a push: short, and renewed every LEASE_RENEW_EVERY seconds while its
# tracker calls run (`_LeaseKept`), so a push whose worker died is free again within
# LEASE and the sweep (every 30 s) queues it: it resumes within a minute of the death.
LEASE = timedelta(seconds=20)
LEASE_RENEW_EVERY = 5.0

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
    """How long a lease lasts unless the worker holding it renews it (it does, every
    LEASE_RENEW_EVERY seconds, for as long as its tracker calls run)."""
    return LEASE


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
            "rate_limited_until": None,
            "rate_limit_waited": timedelta(0),
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
    if fresh.done_at is not None:
        # Marked done in Leakseal (retros/follow_through.py): a ticket now would be an open
        # one whose status would reopen the action. Reopen it first to push it.
        raise ValidationError(
            "This action was marked done in Leakseal; reopen it first to push it.", code="done"
        )
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
    or its worker died before the first try), or its scheduled retry is well overdue. A push
    that waited out a tracker's long Retry-After has no task at all: it is queued once the
    wait is over. A row a worker is on (a live lease) is left alone. `next_attempt_at` is
    moved to now, so the next sweeps wait for this task instead of queueing it again and again.
    """
    now = timezone.now()
    lease_free = Q(leased_until__isnull=True) | Q(leased_until__lt=now)
    never_ran = Q(next_attempt_at__isnull=True, first_queued_at__lt=now - NEVER_RAN_AFTER)
    overdue = Q(next_attempt_at__lt=now - RETRY_LATE_AFTER)
    waited = Q(rate_limited_until__lte=now)
    # A lease that ran out: a live worker renews its lease, so its worker died mid-push.
    orphaned = Q(leased_until__lt=now)
    due = never_ran | overdue | waited | orphaned
    rows = list(
        TicketPush.objects.filter(state=OutboxState.PENDING)
        .filter(lease_free)
        .filter(due)
        .order_by("first_queued_at")
        .values_list("pk", "attempts", "leased_until", "action_id")[:SWEEP_BATCH]
    )
    queued = 0
    for push_id, attempts, leased_until, action_id in rows:
        # Only the sweep that moves the row queues it: two beats running at once do not.
        with transaction.atomic():
            claimed = (
                TicketPush.objects.filter(pk=push_id, state=OutboxState.PENDING, attempts=attempts)
                .filter(lease_free)
                .filter(due)
                .update(next_attempt_at=now, rate_limited_until=None, leased_until=None)
            )
            if claimed and leased_until is not None:
                log.warning("push %s: its worker stopped mid-push; queued again", push_id)
                action_tracker_update(
                    action_id=action_id,
                    push_state=PushState.QUEUED,
                    last_error=f"Waiting for a worker: the one pushing it stopped; queued "
                    f"again at {_team_time(push_id, now)}.",
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
    # A task that turns up while the tracker's rate limit lasts (a redelivered one) leaves:
    # the sweep queues the push when the wait is over.
    not_waiting = Q(rate_limited_until__isnull=True) | Q(
        rate_limited_until__lte=now + timedelta(seconds=1)
    )
    if rows.filter(lease_free).filter(not_waiting).update(leased_until=now + lease_length()):
        return ""
    push = TicketPush.objects.filter(pk=push_id).first()
    if push is None:
        return "gone"
    if push.state != OutboxState.PENDING:
        return str(push.state)
    if attempt is not None and push.attempts != attempt:
        return "stale"
    if push.rate_limited_until is not None and push.rate_limited_until > now:
        return "rate limited"
    return "busy"


class _LeaseKept:
    """Renews the push's lease from a thread while the tracker calls run, every
    LEASE_RENEW_EVERY seconds; stops when the block ends or the lease is no longer this
    worker's (it ran out and another took it: then this worker's outcome is the one that
    lands last, as before heartbeats)."""

    def __init__(self, push_id: int, until: datetime | None) -> None:
        self.push_id = push_id
        self.until = until
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._renew, name=f"push-{push_id}-lease")
        self.thread.daemon = True

    def __enter__(self) -> _LeaseKept:
        if self.until is not None:
            self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.done.set()
        if self.thread.is_alive():
            self.thread.join(timeout=LEASE_RENEW_EVERY)

    def _renew(self) -> None:
        try:
            while not self.done.wait(LEASE_RENEW_EVERY):
                try:
                    until = timezone.now() + lease_length()
                    renewed = TicketPush.objects.filter(
                        pk=self.push_id, state=OutboxState.PENDING, leased_until=self.until
                    ).update(leased_until=until)
                except DatabaseError as exc:
                    # A blip (a dropped connection, a busy SQLite): the lease still has a few
                    # ticks left, so try again at the next one instead of letting it lapse.
                    log.warning(
                        "push %s: could not renew its lease (%s); trying again", self.push_id, exc
                    )
                    db_connection.close()
                    continue
                if not renewed:
                    if not self.done.is_set():
                        log.warning("push %s: its lease is no longer this worker's", self.push_id)
                    return
                self.until = until
        except Exception:
            log.exception("push %s: could not renew its lease", self.push_id)
        finally:
            db_connection.close()  # this thread's own connection


def _team_time(push_id: int, when: datetime) -> str:
    """`when` as HH:MM:SS in the push's team's time zone."""
    zone_name = (
        TicketPush.objects.filter(pk=push_id)
        .values_list("action__retro__team__timezone", flat=True)
        .first()
    )
    return f"{when.astimezone(ZoneInfo(zone_name or 'UTC')):%H:%M:%S}"


def push_waits_for_worker(*, push_id: int) -> float | None:
    """A task found another worker's lease on the push: in practice the worker died mid-push
    (reject_on_worker_lost hands its message on at once). Tell the action, and return the
    seconds until the task should come back (None: no lease any more, nothing to wait for).
    """
    left = lease_left(push_id=push_id)
    if left is None:
        return None
    action_id = TicketPush.objects.filter(pk=push_id).values_list("action_id", flat=True).first()
    if action_id is not None:
        at = _team_time(push_id, timezone.now() + timedelta(seconds=left))
        with transaction.atomic():
            action_tracker_update(
                action_id=action_id,
                push_state=PushState.QUEUED,
                last_error=f"Waiting for a worker: if the one pushing it stopped, another "
                f"takes over at {at}.",
            )
    return min(left + 1, countdown_cap())


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


class SearchLagging(Exception):
    """A create whose answer was lost is too recent for the search to have shown its ticket."""

    def __init__(self, *, sent_at: datetime, remaining: float) -> None:
        super().__init__(f"create sent at {sent_at:%H:%M:%S} UTC")
        self.sent_at = sent_at
        self.remaining = remaining


# A create answered by none of these may have made the ticket: no answer at all (a timeout,
# a dropped connection), or a gateway's 502/504 for a tracker that may have acted meanwhile.
AMBIGUOUS_STATUSES = frozenset({None, 502, 504})


def search_lag() -> timedelta:
    return timedelta(seconds=float(getattr(settings, "TRACKER_SEARCH_LAG", 60.0)))


def _create_sent(push_id: int, at: datetime | None) -> None:
    """Note (committed at once) that a create is on its way, or that it was answered."""
    TicketPush.objects.filter(pk=push_id).update(create_sent_at=at)


def _push_ticket(
    client: TrackerClient,
    draft: TicketDraft,
    *,
    push_id: int | None = None,
    create_sent_at: datetime | None = None,
) -> Pushed:
    """Find the ticket an earlier try made, else create it; either way in its sprint.

    `create_sent_at`: when an earlier try sent a create that was never answered. Until the
    search has had `search_lag()` to show that ticket, nothing is created (SearchLagging).
    """
    existing = client.find_ticket(draft.label)
    if existing is not None:
        if existing.sprint:
            return Pushed(existing, Placement(name=existing.sprint))
        placement = client.next_placement()
        if placement.ref:
            client.place(existing, placement)
        return Pushed(existing, placement)
    if create_sent_at is not None:
        seen_by = create_sent_at + search_lag()
        remaining = (seen_by - timezone.now()).total_seconds()
        if remaining > 0:
            raise SearchLagging(sent_at=create_sent_at, remaining=remaining)
    placement = client.next_placement()
    if push_id is not None:
        # Before the request leaves: a worker killed while it is out leaves the mark too.
        _create_sent(push_id, timezone.now())
    try:
        ticket = client.create_ticket(draft, placement)
    except TrackerError as exc:
        if push_id is not None and exc.status not in AMBIGUOUS_STATUSES:
            _create_sent(push_id, None)  # the tracker's own answer: it made nothing
        raise
    if placement.ref:
        client.place(ticket, placement)
    return Pushed(ticket, placement)


@transaction.atomic
def _mark_done(push: TicketPush, pushed: Pushed) -> None:
    TicketPush.objects.filter(pk=push.pk).update(
        state=OutboxState.DONE,
        leased_until=None,
        last_error="",
        create_sent_at=None,
        updated_at=timezone.now(),
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
    _tickets_chat_when_settled(push.action_id)


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
    _tickets_chat_when_settled(action_id)


def _tickets_chat_when_settled(action_id: int) -> None:
    """Once no action of the retro still waits for its ticket, post the tickets to chat.

    Call in the transaction that settles a push (done or failed for good), after its outbox
    row is written. Two workers may settle a retro's last two pushes at the same moment; were
    each to check with only its own write visible, each would see the other push pending and
    neither would post. So the check runs under the retro's row lock: every settlement takes
    it after writing its own push (`action_tracker_update` takes it too, in that same order),
    so they queue on it, and the last to get it sees every other settlement committed (each
    statement of a READ COMMITTED transaction reads what committed before it began). The
    retro row rather than the sibling pushes' rows: each worker already holds its own push's
    row, so locking the siblings' would deadlock two workers on each other's, and it would
    hold up their lease renewals. Should two settlements both see the retro settled (a Retry
    settling after the notice went), the notice's occasion is unique per channel: one post.
    """
    action = action_by_pk(action_id).first()
    retro = action_retro_lock(action=action) if action is not None else None
    if retro is None:
        return
    waiting = Q(push__isnull=True) | Q(push__state=OutboxState.PENDING)
    if actions_of_retro(retro).filter(waiting).exists():
        return
    retro_tickets_chat(retro)


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


def _wait_note(push: TicketPush, message: str, retry_after: float | None, until: datetime) -> str:
    """What the action says while the push waits for its next try."""
    if retry_after is None:
        return f"Will try again: {message}"
    connection = push.connection
    tracker = connection.tracker_name if connection is not None else "the tracker"
    zone = ZoneInfo(connection.team.timezone) if connection is not None else UTC
    local = until.astimezone(zone)
    when = (
        f"{local:%H:%M}"
        if local.date() == timezone.now().astimezone(zone).date()
        else (f"{local:%H:%M} on {local:%d %b}")
    )
    note = f"Waiting for {tracker}'s rate limit until {when}"
    if retry_after > retry_after_max():
        note += (
            f": {tracker} asked to wait {duration_words(retry_after)}, longer than the "
            f"{duration_words(retry_after_max())} Leakseal waits at most"
        )
    return f"{note}. ({message})"


def _too_old(push: TicketPush, now: datetime) -> bool:
    """Pending longer than MAX_PUSH_AGE, not counting the rate limits it waited out."""
    return now - push.first_queued_at - push.rate_limit_waited > MAX_PUSH_AGE


def _after_transient(push: TicketPush, message: str, retry_after: float | None) -> str:
    """Schedule the next try, or give up once the bounds are reached.

    A wait a task countdown may hold raises PushRetry; a longer Retry-After (up to
    TRACKER_RETRY_AFTER_MAX) sets `rate_limited_until` and returns "rate limited": the sweep
    queues the push once it has passed.
    """
    now = timezone.now()
    attempt = push.attempts + 1
    if attempt > MAX_RETRIES or _too_old(push, now):
        given_up = f"{message} (gave up after {attempt} tries)"
        _mark_failed(push.pk, push.action_id, given_up, attempts=attempt)
        log.warning("push %s failed for good: %s", push.pk, given_up)
        return "failed"
    long_wait = retry_after is not None and retry_after > countdown_cap()
    if long_wait:
        countdown = min(float(retry_after or 0.0), retry_after_max())
    else:
        countdown = retry_countdown(attempt=attempt, retry_after=retry_after)
    until = now + timedelta(seconds=countdown)
    with transaction.atomic():
        TicketPush.objects.filter(pk=push.pk).update(
            attempts=attempt,
            next_attempt_at=until,
            rate_limited_until=until if long_wait else None,
            rate_limit_waited=push.rate_limit_waited
            + (timedelta(seconds=countdown) if long_wait else timedelta(0)),
            leased_until=None,
            last_error=message,
            updated_at=now,
        )
        action_tracker_update(
            action_id=push.action_id,
            push_state=PushState.QUEUED,
            last_error=_wait_note(push, message, retry_after, until),
        )
    if long_wait:
        log.info("push %s: rate limited; the sweep queues it at %s", push.pk, until.isoformat())
        return "rate limited"
    raise PushRetry(countdown=countdown, attempt=attempt, message=message)


def _await_search(push: TicketPush, lagging: SearchLagging) -> str:
    """Try again once the search has had its time to show the ticket; create nothing now.

    The wait counts as a try, as it does for the task's own retry bound (with the default
    lag and countdown cap it is one try). Past the bounds, the push fails like any other.
    """
    now = timezone.now()
    attempt = push.attempts + 1
    message = (
        f"The tracker did not answer the create sent at {lagging.sent_at:%H:%M:%S} UTC; "
        "waiting for its search to show whether the ticket was made before making it again"
    )
    if attempt > MAX_RETRIES or _too_old(push, now):
        return _after_transient(push, message, None)
    countdown = min(max(lagging.remaining, 1.0), countdown_cap())
    with transaction.atomic():
        TicketPush.objects.filter(pk=push.pk).update(
            attempts=attempt,
            next_attempt_at=now + timedelta(seconds=countdown),
            leased_until=None,
            last_error=message,
            updated_at=now,
        )
        action_tracker_update(
            action_id=push.action_id, push_state=PushState.QUEUED, last_error=message
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
        with _LeaseKept(push.pk, push.leased_until):
            pushed = _push_ticket(
                client_for(connection),
                ticket_draft(action, connection),
                push_id=push.pk,
                create_sent_at=push.create_sent_at,
            )
    except SearchLagging as lagging:
        return _await_search(push, lagging)
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
