import asyncio
import gc
import os
from typing import Any

from asgiref.sync import ThreadSensitiveContext, sync_to_async
from django.core.asgi import get_asgi_application

from config import log_redaction, threads
from config.postgresql import base as database

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

django_application = get_asgi_application()


async def application(scope: dict[str, Any], receive: Any, send: Any) -> None:
    # Sync code Django runs outside the request's thread gives its connections back
    # (config/threads.py): the loop's default executor, set before the first request uses it.
    threads.release_in_default_executor(asyncio.get_running_loop())
    # And the request's own thread gives back what it still holds when the request ends,
    # however it ended: Django does it on `request_finished`, which a request that ends in an
    # exception (a client gone while the answer was sent, say) never sends, and the thread
    # then ends with the connection, lost to the pool for good. The outermost context decides
    # the request's thread (Django's own, inside, then uses the same).
    async with ThreadSensitiveContext():
        try:
            await django_application(scope, receive, send)
        finally:
            await sync_to_async(threads.release_connections)()


# After Django's LOGGING and uvicorn's own logging set-up (which ran before this import): the
# links that are credentials never reach the access log or Django's request log.
log_redaction.install()

# `kill -USR1` logs who holds the database pool's connections (config/postgresql/base.py).
database.say_holders_on_signal()

# Everything loaded so far (Django, the apps, their libraries: ~100,000 objects) lives as long
# as the process. Frozen, the collector stops walking it: a full collection took 45-60 ms here,
# a pause that landed on whichever request triggered it (Python docs, gc.freeze).
gc.freeze()
