"""Live-board events: "retro N is at version v" and "who is here changed", fanned out to streams.

Writers call `publish` (the retro services do it through `publish_version`, registered with
`transaction.on_commit` in `_bump`) from sync code in any process: a web thread, a Celery
worker, a management command. Readers are the SSE streams of retros/stream.py: each one takes
a `Subscription` from the `Hub` of its event loop, a bounded queue of its own.

Two backends, chosen by settings.REDIS_URL:

* Redis (production). `publish` sends to the channel "leakseal:retro:<id>" with the sync
  client. Each web process holds ONE redis.asyncio pub/sub connection, pattern-subscribed to
  every retro's channel, opened with the process's first stream and closed with its last; if
  Redis drops it reconnects with backoff and then tells every stream to resync. Pub/sub
  ignores Redis's database number, so with a database other than 0 in REDIS_URL the channel
  is "leakseal:<db>:retro:<id>": installations (and test runs) sharing a server stay apart.
* Local (the embedded default: no Redis). An event published in the web process goes straight
  to its hubs (`loop.call_soon_threadsafe`: under ASGI sync views run in worker threads). An
  event raised in another process (the Celery worker, a management command) cannot travel
  that way, so while any retro has a stream open here, a poller reads `id, version` of the
  watched retros every POLL_SECONDS in one query and announces those that advanced. Only
  versions cross processes like this; presence is kept by the one web process anyway.

Versions are absolute, so an event may be late, repeated or dropped without harm: a stream
whose queue overflows (a client too slow to read) or that may have missed events while Redis
was away gets one "resync" instead, re-reads the version and sends it if it is newer.
Nothing is published for a write that rolls back, and a failed publish never fails a write.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import threading
from collections.abc import AsyncIterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import redis
import redis.asyncio as aioredis
from django.conf import settings
from django.db import close_old_connections, connections
from redis.backoff import NoBackoff
from redis.connection import parse_url
from redis.retry import Retry

from retros.models import Retrospective

log = logging.getLogger(__name__)

VERSION = "version"
PRESENCE = "presence"
RESYNC = "resync"  # only from the hub to a stream: "read the version again"
KINDS = frozenset({VERSION, PRESENCE})

# A stream forwards each event as it comes; a backlog this long means the client stopped
# reading, and one resync replaces it.
QUEUE_MAX = 64
# How often the local backend looks for versions bumped by another process.
POLL_SECONDS = 0.25
# How long a new stream waits for the Redis subscription before going on without it.
READY_SECONDS = 2.0
BACKOFF_SECONDS = (0.5, 10.0)  # first and longest wait before reconnecting to Redis
REDIS_IDLE_PING_SECONDS = 30.0


@dataclass(frozen=True)
class Event:
    retro_id: int
    kind: str
    data: Mapping[str, Any] = field(default_factory=dict)


def redis_url() -> str:
    """The Redis server of the live board, or "" for the local backend."""
    return str(getattr(settings, "REDIS_URL", "") or "")


# --- Publishing, from sync code in any process.


def publish(retro_id: int, kind: str, payload: Mapping[str, Any]) -> None:
    """Tell every stream of the retro, in this process or another, about an event.

    Never raises for a transport failure: it is logged, and boards catch up on their own
    (they compare versions whenever their stream resyncs or reconnects).
    """
    if kind not in KINDS:
        raise ValueError(f"Unknown live event kind {kind!r}")
    event = Event(retro_id, kind, dict(payload))
    url = redis_url()
    if url:
        _publish_redis(url, event)
    else:
        _publish_local(event)


def publish_version(
    retro_id: int, version: int, *, escape_id: int | None = None, by: int | None = None
) -> None:
    """Announce "retro N is at version v": what `_bump` registers to run on commit.

    `escape_id` is a hint: the change touched only that escape's card, which the streams
    then push (retros/stream.py); a board that missed a version re-fetches. `by`: the user
    whose own boards re-fetch the card instead of taking the pushed one (see `_bump`); it
    stays between the servers, no stream sends it on.
    """
    payload: dict[str, Any] = {"version": version}
    if escape_id is not None:
        payload["escape"] = escape_id
    if by is not None:
        payload["by"] = by
    publish(retro_id, VERSION, payload)


def channel(retro_id: int, url: str | None = None) -> str:
    return f"{_channel_prefix(url or redis_url())}{retro_id}"


def _channel_prefix(url: str) -> str:
    db = int(parse_url(url).get("db", 0) or 0)
    return "leakseal:retro:" if db == 0 else f"leakseal:{db}:retro:"


_clients: dict[str, redis.Redis] = {}
_clients_lock = threading.Lock()


def sync_client(url: str) -> redis.Redis:
    """One thread-safe client (a connection pool) per process and URL.

    No retries and short timeouts: a publish runs at commit, in the request that wrote, and
    must not hold the answer up for long while Redis is away.
    """
    with _clients_lock:
        client = _clients.get(url)
        if client is None:
            client = redis.Redis.from_url(
                url,
                socket_connect_timeout=1.0,
                socket_timeout=1.0,
                retry=Retry(NoBackoff(), 0),
                health_check_interval=30,
            )
            _clients[url] = client
        return client


def _publish_redis(url: str, event: Event) -> None:
    body = json.dumps({"kind": event.kind, "data": event.data})
    try:
        sync_client(url).publish(channel(event.retro_id, url), body)
    except (redis.RedisError, OSError) as exc:
        log.warning(
            "live %s event of retro %s not published: %s",
            event.kind,
            event.retro_id,
            type(exc).__name__,
        )


# One hub per event loop: under uvicorn, one per process (tests run several loops).
_hubs: dict[asyncio.AbstractEventLoop, Hub] = {}
_hubs_lock = threading.Lock()


def _live_hubs() -> list[Hub]:
    with _hubs_lock:
        for loop in [loop for loop in _hubs if loop.is_closed()]:
            del _hubs[loop]
        return list(_hubs.values())


def _publish_local(event: Event) -> None:
    for hub in _live_hubs():
        hub.deliver_threadsafe(event)


# --- Receiving, in the event loop of the web process.


def get_hub() -> Hub:
    """The hub of the running event loop (under uvicorn: the one of this process)."""
    loop = asyncio.get_running_loop()
    _live_hubs()
    with _hubs_lock:
        hub = _hubs.get(loop)
        if hub is None:
            hub = _hubs[loop] = Hub(loop)
        return hub


class Subscription:
    """One stream's bounded queue of events of one retro."""

    def __init__(self, hub: Hub, retro_id: int, maxsize: int = QUEUE_MAX) -> None:
        self.hub = hub
        self.retro_id = retro_id
        self._queue: asyncio.Queue[Event] = asyncio.Queue(maxsize)
        self._behind = False

    def put(self, event: Event) -> None:
        if self._behind:
            return  # the resync waiting in the queue covers this event too
        try:
            self._queue.put_nowait(event)
        except asyncio.QueueFull:
            # The client stopped reading: forget its backlog rather than grow it, and have
            # it re-read the version once it reads again.
            while not self._queue.empty():
                self._queue.get_nowait()
            self._queue.put_nowait(Event(self.retro_id, RESYNC))
            self._behind = True
            log.info("live stream of retro %s fell behind; resyncing it", self.retro_id)

    async def get(self, timeout: float) -> Event | None:
        """The next event, or None when `timeout` seconds pass without one."""
        try:
            event = await asyncio.wait_for(self._queue.get(), timeout)
        except TimeoutError:
            return None
        if event.kind == RESYNC:
            self._behind = False
        return event

    def starts_at(self, version: int) -> None:
        """Tell the hub which version this stream has sent first (for the local poller)."""
        self.hub.note_version(self.retro_id, version)


class Hub:
    """The streams of one event loop, and the one feeder that brings them events.

    The feeder is the Redis listener or the local poller; it runs while any stream is open.
    Every method runs in the loop's thread except `deliver_threadsafe`.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self._subscriptions: dict[int, set[Subscription]] = {}
        # Local poller: the version each watched retro is known to its streams at.
        self._seen: dict[int, int] = {}
        self._feeder: asyncio.Task[None] | None = None
        self._ready = asyncio.Event()
        self._resync_when_ready = False

    @contextlib.asynccontextmanager
    async def subscription(self, retro_id: int) -> AsyncIterator[Subscription]:
        """Subscribe to a retro's events; ready once events published from now on arrive."""
        subscription = Subscription(self, retro_id)
        self._subscriptions.setdefault(retro_id, set()).add(subscription)
        self._start_feeder()
        try:
            if not self._ready.is_set():
                try:
                    await asyncio.wait_for(self._ready.wait(), READY_SECONDS)
                except TimeoutError:
                    # Redis is slow or away: go on, and resync everyone once it answers.
                    self._resync_when_ready = True
            yield subscription
        finally:
            self._unsubscribe(subscription)

    @property
    def watched(self) -> list[int]:
        return list(self._subscriptions)

    def subscriber_count(self, retro_id: int | None = None) -> int:
        if retro_id is not None:
            return len(self._subscriptions.get(retro_id, ()))
        return sum(len(subs) for subs in self._subscriptions.values())

    def deliver(self, event: Event) -> None:
        if event.kind == VERSION and event.retro_id in self._seen:
            version = int(event.data.get("version", 0))
            self._seen[event.retro_id] = max(self._seen[event.retro_id], version)
        for subscription in list(self._subscriptions.get(event.retro_id, ())):
            subscription.put(event)

    def deliver_threadsafe(self, event: Event) -> None:
        with contextlib.suppress(RuntimeError):  # the loop is closed: nobody listens there
            self.loop.call_soon_threadsafe(self.deliver, event)

    def resync_all(self) -> None:
        for retro_id, subscriptions in list(self._subscriptions.items()):
            for subscription in list(subscriptions):
                subscription.put(Event(retro_id, RESYNC))

    def note_version(self, retro_id: int, version: int) -> None:
        # The lowest version any stream started from: the poller announces anything newer.
        if retro_id in self._subscriptions:
            self._seen[retro_id] = min(self._seen.get(retro_id, version), version)

    def _unsubscribe(self, subscription: Subscription) -> None:
        subscriptions = self._subscriptions.get(subscription.retro_id)
        if subscriptions is not None:
            subscriptions.discard(subscription)
            if not subscriptions:
                del self._subscriptions[subscription.retro_id]
                self._seen.pop(subscription.retro_id, None)
        if not self._subscriptions and self._feeder is not None:
            self._feeder.cancel()
            self._feeder = None
            self._ready.clear()

    def _start_feeder(self) -> None:
        if self._feeder is not None and not self._feeder.done():
            return
        url = redis_url()
        if url:
            self._feeder = self.loop.create_task(self._listen(url), name="leakseal-live-redis")
        else:
            self._feeder = self.loop.create_task(self._poll(), name="leakseal-live-poller")

    # --- The Redis listener.

    async def _listen(self, url: str) -> None:
        delay = BACKOFF_SECONDS[0]
        reconnecting = False
        while True:
            client = aioredis.Redis.from_url(
                url,
                socket_connect_timeout=2.0,
                socket_keepalive=True,
                client_name=f"leakseal-hub-{os.getpid()}",
            )
            pubsub = client.pubsub()
            try:
                await pubsub.psubscribe(_channel_prefix(url) + "*")
                while True:
                    message = await pubsub.get_message(timeout=REDIS_IDLE_PING_SECONDS)
                    if message is None:
                        await pubsub.ping()  # a dead connection shows up as an error
                    elif message["type"] == "psubscribe":
                        if reconnecting or self._resync_when_ready:
                            self.resync_all()
                        self._resync_when_ready = reconnecting = False
                        delay = BACKOFF_SECONDS[0]
                        self._ready.set()
                    elif message["type"] == "pmessage":
                        self._on_redis_message(message["channel"], message["data"])
            except (redis.RedisError, OSError) as exc:
                self._ready.clear()
                reconnecting = True
                log.warning(
                    "live events: Redis pub/sub lost (%s); reconnecting in %.1f s",
                    type(exc).__name__,
                    delay,
                )
            except Exception:
                # Anything else (a bug of ours or of the client) must not leave every stream
                # of this process deaf, and silently: a task's exception is only logged once
                # the task is forgotten. Logged with its traceback; then the same reconnect.
                self._ready.clear()
                reconnecting = True
                log.exception(
                    "live events: the Redis listener failed; reconnecting in %.1f s", delay
                )
            finally:
                with contextlib.suppress(Exception):
                    await pubsub.aclose()
                    await client.aclose()
            await asyncio.sleep(delay)
            delay = min(delay * 2, BACKOFF_SECONDS[1])

    def _on_redis_message(self, channel_name: bytes | str, data: bytes | str) -> None:
        try:
            name = channel_name.decode() if isinstance(channel_name, bytes) else channel_name
            retro_id = int(name.rsplit(":", 1)[1])
            body = json.loads(data)
            kind, payload = body["kind"], body.get("data") or {}
        except (ValueError, KeyError, TypeError, IndexError, UnicodeDecodeError):
            log.warning("live events: ignored a malformed message")
            return
        if kind in KINDS and isinstance(payload, dict):
            self.deliver(Event(retro_id, kind, payload))

    # --- The local poller.

    async def _poll(self) -> None:
        self._ready.set()
        # One thread of its own, so the poller holds one database connection, not one per
        # thread of the default executor; closed when the last stream of this loop ends.
        executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="leakseal-live-poll")
        failing = False
        try:
            while True:
                await asyncio.sleep(POLL_SECONDS)
                watched = self.watched
                if not watched:
                    continue
                try:
                    rows = await self.loop.run_in_executor(executor, _read_versions, watched)
                except Exception as exc:
                    if not failing:
                        log.warning("live events: polling versions failed: %s", exc)
                    failing = True
                    continue
                failing = False
                self._announce_advanced(rows)
        finally:
            with contextlib.suppress(Exception):
                await self.loop.run_in_executor(executor, connections.close_all)
            executor.shutdown(wait=False)

    def _announce_advanced(self, rows: list[tuple[int, int]]) -> None:
        for retro_id, version in rows:
            if retro_id not in self._subscriptions:
                continue
            seen = self._seen.get(retro_id)
            if seen is None:
                # No stream has said where it started yet; it will say, and we go from there.
                self._seen[retro_id] = version
            elif version > seen:
                self.deliver(Event(retro_id, VERSION, {"version": version}))


def _read_versions(retro_ids: list[int]) -> list[tuple[int, int]]:
    close_old_connections()  # honours CONN_MAX_AGE and drops a broken connection
    return list(Retrospective.objects.filter(pk__in=retro_ids).values_list("pk", "version"))
