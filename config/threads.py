"""Database connections taken by threads that serve no request, given back.

Django gives a request's connection back when the request ends (`request_finished`), in the
request's own thread. Under ASGI some sync code runs in the event loop's default executor
instead: Django turns an exception into a response there (`thread_sensitive=False`: the 404
page of a mistyped URL, the debug page of a 500, which reads the user and shows each frame's
variables, querysets evaluated), and so does any `sync_to_async(..., thread_sensitive=False)`.
A connection taken there stays with that thread, which lives as long as the loop: six such
threads (two cores) can hold most of a pool of ten until the process restarts, and every
request is then answered 503 (config/errors.py). `ReleasingExecutor` is that default
executor (set by config/asgi.py): after each call, its thread gives back what it took.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from django.db import connections

_loops: weakref.WeakSet[asyncio.AbstractEventLoop] = weakref.WeakSet()


def release_connections() -> None:
    """Close this thread's database connections (with the pool: give them back to it).
    Inside a transaction (tests) they stay."""
    for connection in connections.all(initialized_only=True):
        if not connection.in_atomic_block:
            connection.close()


def _then_release(fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
    try:
        return fn(*args, **kwargs)
    finally:
        release_connections()


class ReleasingExecutor(ThreadPoolExecutor):
    """A thread pool whose threads give their database connections back after each call."""

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        return super().submit(_then_release, fn, *args, **kwargs)


def release_in_default_executor(loop: asyncio.AbstractEventLoop) -> None:
    """Make `loop`'s default executor a `ReleasingExecutor`, once per loop."""
    if loop not in _loops:
        _loops.add(loop)
        loop.set_default_executor(ReleasingExecutor(thread_name_prefix="leakseal-loop"))
