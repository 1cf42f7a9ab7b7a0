"""Django's PostgreSQL backend, and a record of who holds each connection of the pool.

A pool that stays full answers every request 503 (config/errors.py) and says nothing of why.
The usual cause is a connection taken in a thread that never gives it back: a thread that
ended with it (the pool never sees it again) or one that lives on and never closes it (a
thread pool's worker running a sync call outside any request). So every connection taken
from the pool is recorded with the thread that took it, when, and the project's frames of
the call that took it, until Django closes it (gives it back). `holders()` lists them, the
longest held first; the 503's log line carries that list.

ENGINE "config.postgresql" is set only with the pool on (config/settings.py); without the
pool nothing is recorded. `kill -USR1 <web process>` logs the list at any time
(`say_holders_on_signal`, installed by config/asgi.py): the browser tests ask for it after
their last test, when nothing should be held.
"""

from __future__ import annotations

import logging
import signal
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

from django.db.backends.postgresql import base

logger = logging.getLogger(__name__)

HERE = str(Path(__file__).resolve())
PROJECT = str(Path(__file__).resolve().parent.parent.parent)
FRAMES_KEPT = 6


@dataclass(frozen=True)
class Holder:
    thread: threading.Thread
    taken_at: float  # time.monotonic()
    frames: tuple[str, ...]  # the project's own frames of the call, innermost last

    def describe(self, now: float) -> str:
        state = "alive" if self.thread.is_alive() else "ENDED, the connection is lost"
        where = " < ".join(reversed(self.frames)) or "no frame of the project"
        return f"{self.thread.name} ({state}) for {now - self.taken_at:.1f} s, taken at {where}"


_holders: dict[int, Holder] = {}  # id(psycopg connection) -> who took it
_lock = threading.Lock()


def _own_frames() -> tuple[str, ...]:
    """The innermost FRAMES_KEPT frames of the project's own code on this thread's stack
    (a walk of the frames, no source read: it runs at every check-out)."""
    frames: list[str] = []
    frame: FrameType | None = sys._getframe(1)
    while frame is not None and len(frames) < FRAMES_KEPT:
        filename = frame.f_code.co_filename
        if filename.startswith(PROJECT) and "/.venv/" not in filename and filename != HERE:
            path = filename[len(PROJECT) + 1 :]
            frames.append(f"{path}:{frame.f_lineno} {frame.f_code.co_name}")
        frame = frame.f_back
    return tuple(reversed(frames))


def holders() -> list[str]:
    """Who holds the pool's connections now, the longest held first."""
    now = time.monotonic()
    with _lock:
        held = sorted(_holders.values(), key=lambda holder: holder.taken_at)
    return [holder.describe(now) for holder in held]


def say_holders_on_signal() -> None:
    """On SIGUSR1, log who holds the pool's connections ("none" when nobody does)."""

    def say(signum: int, frame: FrameType | None) -> None:
        held = holders()
        lines = "".join(f"\n  held by {holder}" for holder in held) or " none"
        logger.warning("Pool connections held (%d):%s", len(held), lines)

    signal.signal(signal.SIGUSR1, say)


class DatabaseWrapper(base.DatabaseWrapper):
    def get_new_connection(self, conn_params: dict[str, Any]) -> Any:
        connection = super().get_new_connection(conn_params)
        if getattr(connection, "_pool", None) is not None:
            holder = Holder(threading.current_thread(), time.monotonic(), _own_frames())
            with _lock:
                _holders[id(connection)] = holder
        return connection

    def close(self) -> None:
        connection = self.connection
        try:
            super().close()
        finally:
            if connection is not None and self.connection is not connection:
                with _lock:
                    _holders.pop(id(connection), None)
