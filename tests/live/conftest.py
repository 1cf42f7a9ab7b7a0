"""Helpers for the live board's tests: running async code, reading an event stream.

Async scenarios run through asgiref's `async_to_sync` from the (sync) test, so the view's
thread-sensitive database calls come back to the test's thread and see its transaction.
"""

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import pytest
from django.conf import settings as django_settings

from retros import events, presence, services
from retros.models import Retrospective

REDIS_URL = django_settings.REDIS_URL


def in_own_loop[T](scenario: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run a scenario that needs no test database in a thread and event loop of its own.

    (Scenarios that do need it use `async_to_sync`, which sends their database calls back to
    the test's thread and transaction.)
    """
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, scenario()).result()


@dataclass
class Message:
    """One block of a text/event-stream: an event, a bare `retry`, or a comment."""

    event: str = ""
    data: Any = None
    id: str | None = None
    retry: int | None = None
    comment: str | None = None


def parse_block(block: str) -> Message:
    message, data = Message(), []
    for line in block.split("\n"):
        field, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if field == "":
            message.comment = value
        elif field == "event":
            message.event = value
        elif field == "data":
            data.append(value)
        elif field == "id":
            message.id = value
        elif field == "retry":
            message.retry = int(value)
    if data:
        message.data = json.loads("\n".join(data))
    return message


class StreamReader:
    """Reads an event stream block by block, as a browser would."""

    def __init__(self, response: Any) -> None:
        self.chunks: AsyncIterator[bytes | str] = aiter(response.streaming_content)
        self.buffer = ""
        self.pending: asyncio.Future[bytes | str] | None = None

    async def next(self, timeout: float = 5.0) -> Message | None:
        """The next block, or None if none comes within `timeout` seconds."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while "\n\n" not in self.buffer:
            if self.pending is None:
                self.pending = asyncio.ensure_future(anext(self.chunks))
            done, _ = await asyncio.wait({self.pending}, timeout=max(0, deadline - loop.time()))
            if not done:
                return None
            chunk = self.pending.result()
            self.pending = None
            self.buffer += chunk.decode() if isinstance(chunk, bytes) else chunk
        block, self.buffer = self.buffer.split("\n\n", 1)
        return parse_block(block)

    async def next_event(self, kind: str, timeout: float = 5.0) -> Message | None:
        """The next event of `kind`, skipping others; None if none comes in time."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while (left := deadline - loop.time()) > 0:
            message = await self.next(left)
            if message is None:
                return None
            if message.event == kind:
                return message
        return None

    async def expect(self, kind: str, timeout: float = 5.0) -> Message:
        message = await self.next_event(kind, timeout)
        assert message is not None, f"no {kind} event within {timeout} s"
        return message

    async def disconnect(self) -> None:
        """What the ASGI server does when the browser goes: cancel the read in progress."""
        while True:
            if self.pending is None:
                self.pending = asyncio.ensure_future(anext(self.chunks))
            await asyncio.sleep(0.05)  # let it reach its wait for the next event
            if not self.pending.done():
                break
            self.pending = None  # it read a chunk meanwhile: read on, then cancel
        self.pending.cancel()
        with contextlib.suppress(asyncio.CancelledError, StopAsyncIteration):
            await self.pending
        self.pending = None


@pytest.fixture
def local_backend(settings):
    """The embedded default, whatever the suite runs on."""
    settings.REDIS_URL = ""


@pytest.fixture
def published(monkeypatch) -> list[tuple[int, str, dict]]:
    """Every event published, instead of sending it."""
    sent: list[tuple[int, str, dict]] = []
    monkeypatch.setattr(
        events, "publish", lambda retro_id, kind, payload: sent.append((retro_id, kind, payload))
    )
    return sent


@pytest.fixture(autouse=True)
def _no_presence_left(settings):
    """Each test starts and must end with nobody present (local backend)."""
    presence._local.clear()
    yield
    leftovers = {k: v for k, v in presence._local.items() if v}
    presence._local.clear()
    assert not leftovers, f"presence left behind: {leftovers}"


@pytest.fixture
def retro(team, facilitator, escape) -> Retrospective:
    return services.retro_create(
        team=team, facilitator=facilitator, title="Live retro", escapes=[escape]
    )
