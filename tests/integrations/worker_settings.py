"""Settings of the worker processes that tests/integrations/worker.py starts.

config.settings, plus what a test of the push must be able to shorten or break from the
environment without touching the production module:

- LEAKSEAL_TEST_BROKER_URL: the broker of this process alone (a closed port: "Redis is down
  at the moment the retro closes"), while REDIS_URL still serves the cache and live events.
- LEAKSEAL_TEST_VISIBILITY_TIMEOUT: Redis' visibility timeout, seconds, so a message taken by
  a worker that was killed comes back within a test instead of an hour; kombu then looks for
  such messages every second instead of every 100.
"""

import os

from config.settings import *  # noqa: F403
from config.settings import CELERY_BROKER_TRANSPORT_OPTIONS, REDIS_URL

if os.environ.get("LEAKSEAL_TEST_BROKER_URL"):
    CELERY_BROKER_URL = os.environ["LEAKSEAL_TEST_BROKER_URL"]
    # Fail the enqueue fast: the outbox's sweep is what must bring the push back.
    CELERY_BROKER_CONNECTION_TIMEOUT = 1
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        **CELERY_BROKER_TRANSPORT_OPTIONS,
        "max_retries": 1,
        "socket_connect_timeout": 1,
    }

if REDIS_URL and os.environ.get("LEAKSEAL_TEST_VISIBILITY_TIMEOUT"):
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        **CELERY_BROKER_TRANSPORT_OPTIONS,
        "visibility_timeout": float(os.environ["LEAKSEAL_TEST_VISIBILITY_TIMEOUT"]),
        "unacked_restore_interval": 1,
        "unacked_restore_throttle": 1,
    }
