"""Celery tasks of the ticket push: thin interfaces over integrations/push.py.

`integrations.action_push` is queued on commit by the retro close (and by Retry, and by the
sweep); on a transient failure it reschedules itself with the service's countdown. Both
tasks take ids and return quietly when their row is gone.
"""

import logging

from celery import shared_task
from celery.app.task import Task
from celery.exceptions import MaxRetriesExceededError

from integrations import push

log = logging.getLogger(__name__)


@shared_task(
    name="integrations.action_push",
    bind=True,
    acks_late=True,
    max_retries=push.MAX_RETRIES,
    ignore_result=True,
)
def action_push_task(self: Task, push_id: int, attempt: int | None = None) -> str:
    """Push one action's ticket; `attempt` is the tries the row had when this was queued."""
    try:
        outcome = push.action_push(push_id=push_id, attempt=attempt)
        if outcome == "busy":
            # Another worker holds the lease: the one that was killed mid-push, whose message
            # the broker handed on. Come back when the lease runs out instead of dropping it
            # and waiting for the sweep.
            # The action says it waits for a worker meanwhile.
            wait = push.push_waits_for_worker(push_id=push_id)
            if wait is not None:
                raise self.retry(args=(push_id, attempt), countdown=wait, max_retries=None)
        return outcome
    except push.PushRetry as retry:
        log.info(
            "push %s: try %s failed (%s); again in %.0f s",
            push_id,
            retry.attempt,
            retry.message,
            retry.countdown,
        )
        try:
            raise self.retry(args=(push_id, retry.attempt), countdown=retry.countdown) from retry
        except MaxRetriesExceededError:
            # The service bounds its tries first; this only fires if the two disagree.
            push.action_push_give_up(push_id=push_id, message=retry.message)
            return "failed"


@shared_task(name="integrations.outbox_sweep", ignore_result=True)
def outbox_sweep_task() -> int:
    """Queue the pushes whose task was lost (beat: every 30 s)."""
    return push.outbox_sweep()
