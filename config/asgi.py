import asyncio
import gc
import os
from typing import Any

from django.core.asgi import get_asgi_application

from config import log_redaction, threads
from config.postgresql import base as database

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

django_application = get_asgi_application()


async def application(scope: dict[str, Any], receive: Any, send: Any) -> None:
    # Sync code Django runs outside the request's thread gives its connections back
    # (config/threads.py): the loop's default executor, set before the first request uses it.
    threads.release_in_default_executor(asyncio.get_running_loop())
    await django_application(scope, receive, send)


# After Django's LOGGING and uvicorn's own logging set-up (which ran before this import): the
# links that are credentials never reach the access log or Django's request log.
log_redaction.install()

# `kill -USR1` logs who holds the database pool's connections (config/postgresql/base.py).
database.say_holders_on_signal()

# Everything loaded so far (Django, the apps, their libraries: ~100,000 objects) lives as long
# as the process. Frozen, the collector stops walking it: a full collection took 45-60 ms here,
# a pause that landed on whichever request triggered it (Python docs, gc.freeze).
gc.freeze()
