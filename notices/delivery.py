"""Sending one notice: the state machine the `notices.deliver` task runs.

    PENDING --(a worker takes it: committed)--> SENDING --> SENT
                                                   |------> PENDING (transient; attempts + 1,
                                                   |         next_attempt_at = now + backoff)
                                                   |------> FAILED (permanent, or the last try)
                                                   '------> INTERRUPTED (the lease ran out: the
                                                             worker died mid-send; the sweep)

SENDING is committed before the sender runs, so a notice is never sent by two workers, and a
worker that dies mid-send leaves it SENDING: the sweep marks it INTERRUPTED, not PENDING,
because it may have gone out and sending it again would break "at most once".

A retry waits `config.retry.backoff_seconds` (as a ticket push does), at least the service's
Retry-After up to the bound a ticket push obeys (TRACKER_RETRY_AFTER_MAX, default 1 hour; a
longer one is named in the delivery log's error and tried again at the bound): a wait the
broker could hold (NOTICE_COUNTDOWN_MAX) is a task countdown; a longer one is left to the
sweep, which queues a PENDING notice once its next_attempt_at has passed.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from config.celery import registered_task
from config.retry import backoff_seconds, duration_words, retry_after_max
from notices.models import Notice, NoticeState
from notices.senders import SENDERS, Permanent, Transient

log = logging.getLogger(__name__)

LEASE = timedelta(minutes=5)
MAX_ERROR = 1000


def _take(notice_id: int) -> Notice | None:
    """PENDING and due -> SENDING, committed; None if another worker has it or it is not due."""
    with transaction.atomic():
        notice = Notice.objects.select_for_update(skip_locked=True).filter(pk=notice_id).first()
        if notice is None or notice.state != NoticeState.PENDING:
            return None
        now = timezone.now()
        if notice.next_attempt_at and notice.next_attempt_at > now + timedelta(seconds=1):
            return None  # an early task (a duplicate): the right one or the sweep comes later
        notice.state = NoticeState.SENDING
        notice.attempts += 1
        notice.lease_until = now + LEASE
        notice.save(update_fields=["state", "attempts", "lease_until"])
        return notice


def _finish(notice: Notice, **fields: object) -> None:
    fields.setdefault("lease_until", None)
    Notice.objects.filter(pk=notice.pk, state=NoticeState.SENDING).update(**fields)


def deliver(notice_id: int) -> str:
    """Send the notice if it is due; returns what became of it (for the task's log)."""
    notice = _take(notice_id)
    if notice is None:
        return "skipped"
    send = SENDERS.get(notice.channel)
    try:
        if send is None:
            raise Permanent(f"no sender for the {notice.channel} channel")
        result = send(notice) or {}
    except Transient as exc:
        return _after_transient(notice, exc)
    except Permanent as exc:
        _finish(notice, state=NoticeState.FAILED, last_error=exc.message[:MAX_ERROR])
        log.warning("notice %s (%s) failed: %s", notice.pk, notice.channel, exc.message)
        return "failed"
    except Exception as exc:  # a bug in a sender is not the service's fault: try again
        log.exception("notice %s (%s): the sender crashed", notice.pk, notice.channel)
        return _after_transient(notice, Transient(f"{type(exc).__name__}: {exc}"))
    _finish(notice, state=NoticeState.SENT, sent_at=timezone.now(), result=result, last_error="")
    return "sent"


def _after_transient(notice: Notice, exc: Transient) -> str:
    message = exc.message[:MAX_ERROR]
    if notice.attempts >= settings.NOTICE_MAX_ATTEMPTS:
        _finish(
            notice,
            state=NoticeState.FAILED,
            last_error=f"gave up after {notice.attempts} tries: {message}",
        )
        log.warning(
            "notice %s (%s) failed after %s tries: %s",
            notice.pk,
            notice.channel,
            notice.attempts,
            message,
        )
        return "failed"
    wait = backoff_seconds(attempt=notice.attempts, retry_after=exc.retry_after, cap=float("inf"))
    wait = min(wait, max(settings.NOTICE_BACKOFF_MAX, exc.retry_after or 0.0), retry_after_max())
    if exc.retry_after is not None and exc.retry_after > retry_after_max():
        message = (
            f"{message} (asked to wait {duration_words(exc.retry_after)}, longer than the "
            f"{duration_words(retry_after_max())} Leakseal waits at most: tried again then)"
        )[:MAX_ERROR]
    _finish(
        notice,
        state=NoticeState.PENDING,
        last_error=message,
        next_attempt_at=timezone.now() + timedelta(seconds=wait),
    )
    if wait <= settings.NOTICE_COUNTDOWN_MAX:
        registered_task("notices.deliver").apply_async((notice.pk,), countdown=wait)
    return "retry"


def sweep() -> int:
    """Queue due PENDING notices whose task was lost; INTERRUPT senders that died. Returns
    how many notices it queued."""
    now = timezone.now()
    Notice.objects.filter(state=NoticeState.SENDING, lease_until__lt=now).update(
        state=NoticeState.INTERRUPTED,
        lease_until=None,
        last_error="The worker stopped while sending: it may have gone out. Resend to send again.",
    )
    # A PENDING notice's task runs at next_attempt_at; one still due a while later lost it.
    due = list(
        Notice.objects.filter(
            state=NoticeState.PENDING,
            next_attempt_at__lte=now - timedelta(seconds=settings.NOTICE_SWEEP_GRACE),
        ).values_list("pk", flat=True)[:500]
    )
    task = registered_task("notices.deliver")
    for pk in due:
        task.delay(pk)
    return len(due)
