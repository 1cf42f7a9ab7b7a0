"""Celery tasks of the retro board: thin interfaces that take ids and call a service."""

import logging
from datetime import datetime

from celery import shared_task

from retros import facilitation
from retros.models import Retrospective

log = logging.getLogger(__name__)


@shared_task(name="retros.timer_expire", ignore_result=True)
def retro_timer_expire_task(retro_id: int, ends_at: str) -> bool:
    """Tell every board that the timer scheduled to end at `ends_at` (ISO) is up.

    Queued by the timer services with `eta=ends_at`. Returns quietly when the retro is gone
    or its timer was paused, extended, restarted or cleared meanwhile: a newer task (if any)
    carries the new end.
    """
    retro = Retrospective.objects.filter(pk=retro_id).first()
    if retro is None:
        return False
    expired = facilitation.timer_expire(retro=retro, ends_at=datetime.fromisoformat(ends_at))
    if expired:
        log.info("retro %s: timer ended at %s", retro_id, ends_at)
    return expired
