"""Celery tasks of the evidence app: thin interfaces over evidence/processing.py.

`evidence.process_upload` is queued on commit of an upload (evidence/services.py) and by the
sweep; it takes the upload's id and returns quietly when the upload is gone or done already
(acks_late: a worker that dies mid-way leaves the message to another, and the status check
under a row lock makes a second run a no-op).
"""

import logging

from celery import shared_task

from evidence import processing, retention

log = logging.getLogger(__name__)


@shared_task(name="evidence.process_upload", acks_late=True, ignore_result=True)
def process_upload_task(upload_id: int) -> str:
    """Fold one upload's results into the per-test rows."""
    outcome = processing.upload_process(upload_id)
    log.info("upload %s: %s", upload_id, outcome)
    return outcome


@shared_task(name="evidence.prune", ignore_result=True)
def prune_task() -> dict[str, int]:
    """Drop per-commit, per-day and upload rows past their keep (beat: daily)."""
    return retention.prune()


@shared_task(name="evidence.sweep", ignore_result=True)
def sweep_task() -> int:
    """Queue again the uploads whose task was lost (beat: every 5 minutes)."""
    return retention.sweep()


@shared_task(name="evidence.recount", ignore_result=True)
def recount_task() -> int:
    """Recount the measured catches of the teams that uploaded lately (beat: daily)."""
    return retention.recount()
