from celery import shared_task

from audit.services import entries_prune


@shared_task(name="audit.prune", ignore_result=True)
def prune_task() -> int:
    """Beat, daily: forget audit entries older than AUDIT_RETENTION_DAYS."""
    return entries_prune()
