from celery import shared_task
from django.utils import timezone

from notices import delivery, schedule


@shared_task(name="notices.deliver", ignore_result=True)
def deliver_task(notice_id: int) -> str:
    return delivery.deliver(notice_id)


@shared_task(name="notices.sweep", ignore_result=True)
def sweep_task() -> int:
    """Beat, every 30 s: lost tasks, long waits (a Retry-After beyond a countdown), dead workers."""
    return delivery.sweep()


@shared_task(name="notices.tick", ignore_result=True)
def tick_task() -> int:
    """Beat, every 5 minutes: reminders and digests whose local time has come."""
    return schedule.run_all(timezone.now())
