"""Celery tasks of the status and intake sync: thin interfaces over integrations/sync.py.

`integrations.poll_all` runs from beat every 300 s (config/settings.py) and queues one
`integrations.poll_connection` per connection, so a slow or unreachable tracker delays only
its own team. Both return quietly when their row is gone.
"""

import logging

from celery import shared_task

from integrations import sync
from integrations.models import TrackerConnection

log = logging.getLogger(__name__)


@shared_task(name="integrations.poll_connection", ignore_result=True)
def poll_connection_task(connection_id: int) -> bool:
    """Both polls (ticket status, escape intake) of one connection."""
    connection = TrackerConnection.objects.select_related("team").filter(pk=connection_id).first()
    if connection is None:
        return False
    sync.connection_poll(connection=connection)
    return True


@shared_task(name="integrations.poll_all", ignore_result=True)
def poll_all_task() -> int:
    """Queue the poll of every connection (beat: every 300 s)."""
    ids = list(TrackerConnection.objects.order_by("pk").values_list("pk", flat=True))
    for connection_id in ids:
        poll_connection_task.delay(connection_id)
    return len(ids)
