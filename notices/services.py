"""Writing notices into the outbox, and the delivery log's Resend."""

from __future__ import annotations

import logging
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from config.celery import registered_task
from notices.models import Notice, NoticeState

log = logging.getLogger(__name__)


class NotInTransaction(RuntimeError):
    pass


def _queue_on_commit(notice_id: int) -> None:
    def queue() -> None:
        try:
            registered_task("notices.deliver").delay(notice_id)
        except Exception:  # the broker is down: the sweep queues it again
            log.warning("notice %s: could not queue its delivery; the sweep will", notice_id)

    transaction.on_commit(queue)


def notice_enqueue(
    *,
    team: Any,
    channel: str,
    recipient: str,
    occasion: str,
    kind: str,
    subject: str,
    payload: dict[str, Any] | None = None,
) -> Notice | None:
    """Promise a notice, inside the transaction of what caused it; it is sent after commit.

    Returns None when this recipient has a notice of this occasion on this channel already:
    at most one per recipient and occasion, however often the cause runs.
    """
    if not transaction.get_connection().in_atomic_block:
        raise NotInTransaction("notice_enqueue must run inside the transaction that causes it")
    try:
        with transaction.atomic():  # a savepoint: a duplicate leaves the caller's work intact
            notice = Notice.objects.create(
                team=team,
                channel=str(channel),
                recipient=recipient[:300],
                occasion=occasion[:200],
                kind=kind,
                subject=subject[:300],
                payload=payload or {},
                next_attempt_at=timezone.now(),
            )
    except IntegrityError:
        return None
    _queue_on_commit(notice.pk)
    return notice


@transaction.atomic
def notice_resend(*, notice: Notice) -> Notice:
    """An admin's Resend of a failed or interrupted notice: a new series of tries."""
    locked = Notice.objects.select_for_update().get(pk=notice.pk)
    if locked.state not in (NoticeState.FAILED, NoticeState.INTERRUPTED):
        return locked
    locked.state = NoticeState.PENDING
    locked.attempts = 0
    locked.next_attempt_at = timezone.now()
    locked.save(update_fields=["state", "attempts", "next_attempt_at"])
    _queue_on_commit(locked.pk)
    return locked
