"""The live board's endpoints: a retro's event stream and its presence strip.

`retro_stream` is an async view: under the ASGI server one event loop holds every open
stream, each a small queue (retros/events.py) rather than a thread. The permission checks run
before a single byte is sent: an outsider gets the same 404 as for any page of the team, and a
signed-out browser is sent to sign in.

The stream says "the retro is at version v" and "who is here changed". When a version
changed only one escape's card, it carries that card's new HTML too (`pushed_card`): rendered
once per version and role in this process and sent to every stream of that role, with nothing
of one person in it; board.js puts in the person's own parts and swaps it in. Otherwise, or
after a gap, the page re-fetches its own regions (static/js/board.js). It opens with `retry`
and the current version,
so a browser that comes back after sleep, a lost network or a server restart compares
versions and refreshes once: nothing missed, nothing doubled. A comment every
HEARTBEAT_SECONDS keeps proxies from closing an idle stream and lets the server notice a
client that is gone.
"""

import asyncio
import json
import logging
import weakref
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

from asgiref.sync import sync_to_async
from django.http import Http404, HttpRequest, HttpResponse, StreamingHttpResponse
from django.http.response import HttpResponseBase
from django.shortcuts import render
from django.views.decorators.http import require_GET

from config.threads import release_connections
from retros import events, presence
from retros.models import Retrospective
from retros.selectors import get_retro_for_team
from retros.views import shared_cards_html
from teams.decorators import async_team_view, team_view
from teams.models import Membership
from teams.selectors import team_role

log = logging.getLogger(__name__)

RETRY_MILLISECONDS = 1000
HEARTBEAT_SECONDS = presence.HEARTBEAT_SECONDS
LIVE = "retros/_live.html"
RENDERS_KEPT = 32  # pushed cards kept per event loop, the newest


@dataclass
class Watcher:
    """Who a stream is for: what it may be pushed depends on the role (re-read each heartbeat)."""

    user_id: int
    team_id: int
    role: str


@require_GET
@async_team_view()
async def retro_stream(request: HttpRequest, membership: Membership, pk: int) -> HttpResponseBase:
    try:
        retro = await sync_to_async(get_retro_for_team)(membership.team, pk)  # 404: not this team's
    finally:
        # The session, the user, the membership and the retro were read in this request's
        # thread: give that connection back (to the pool) before the stream starts, which
        # lives as long as the board is open. The stream's rare reads take one and give it
        # back each time (`release_connections`), so an open stream holds none.
        await sync_to_async(release_connections)()
    watcher = Watcher(membership.user_id, membership.team_id, membership.role)
    response = StreamingHttpResponse(_stream(retro.pk, watcher), content_type="text/event-stream")
    response["Cache-Control"] = "no-cache"
    response["X-Accel-Buffering"] = "no"  # nginx: pass each event on at once
    return response


@require_GET
@team_view()
def retro_presence(request: HttpRequest, membership: Membership, pk: int) -> HttpResponse:
    """The presence strip's list: the team's members who have this board open now."""
    retro = get_retro_for_team(membership.team, pk)
    present = presence.strip(retro.pk, membership.team, membership.user)
    return render(request, f"{LIVE}#presence_list", {"retro": retro, "present": present})


def sse(kind: str, data: dict[str, Any], event_id: int | None = None) -> str:
    head = f"id: {event_id}\n" if event_id is not None else ""
    return f"{head}event: {kind}\ndata: {json.dumps(data)}\n\n"


def _version_event(version: int, escape_id: Any = None, html: str | None = None) -> str:
    data: dict[str, Any] = {"version": version}
    if isinstance(escape_id, int):
        data["escape"] = escape_id  # only this escape's card changed (see services._bump)
        if html is not None:
            data["html"] = html  # that card as everyone of this role sees it
    return sse(events.VERSION, data, event_id=version)


async def _stream(retro_id: int, watcher: Watcher) -> AsyncIterator[str]:
    # Subscribe first, read the version second: a change committed after the read is
    # published after it too, and the subscription is already there to receive it.
    async with events.get_hub().subscription(retro_id) as subscription:
        version = await sync_to_async(_read_version)(retro_id)
        if version is None:
            return
        subscription.starts_at(version)
        yield f"retry: {RETRY_MILLISECONDS}\n\n"
        yield _version_event(version)
        user_id = watcher.user_id
        connection = presence.new_connection()
        try:
            await _to_the_end(presence.join, retro_id, user_id, connection)
            yield sse(events.PRESENCE, {})  # draw the strip now
            async for chunk in _forward(subscription, version, watcher, connection):
                yield chunk
        finally:
            # The client went (the server cancels us) or the server stops.
            await _to_the_end(presence.leave, retro_id, user_id, connection)


async def _forward(
    subscription: events.Subscription, sent: int, watcher: Watcher, connection: str
) -> AsyncIterator[str]:
    """The hub's events as SSE, each version once and only ever upwards, and heartbeats."""
    retro_id, user_id = subscription.retro_id, watcher.user_id
    clock = asyncio.get_running_loop().time
    beat_at = clock() + HEARTBEAT_SECONDS
    while True:
        event = await subscription.get(max(0.0, beat_at - clock()))
        # On time even on a busy board: presence expires without it (Redis).
        if clock() >= beat_at:
            yield ": ping\n\n"
            await _to_the_end(presence.heartbeat, retro_id, user_id, connection)
            beat_at = clock() + HEARTBEAT_SECONDS
            # The stream carries the board's content now: someone taken off the team stops
            # getting it, and a new role gets its own controls.
            role = await sync_to_async(_role_of)(watcher.team_id, user_id)
            if role is None:
                return
            watcher.role = role
        if event is None:
            continue
        if event.kind == events.VERSION:
            version = int(event.data.get("version", 0))
            if version > sent:
                sent = version
                escape = event.data.get("escape")
                # Their own why's controls are theirs alone: the author's boards re-fetch.
                if isinstance(escape, int) and event.data.get("by") != user_id:
                    yield await pushed_card(retro_id, version, escape, watcher.role)
                else:
                    yield _version_event(version, escape)
        elif event.kind == events.PRESENCE:
            yield sse(events.PRESENCE, {})
        elif event.kind == events.RESYNC:
            current = await sync_to_async(_read_version)(retro_id)
            if current is None:
                return
            if current > sent:
                sent = current
                yield _version_event(current)
            yield sse(events.PRESENCE, {})


_renders: weakref.WeakKeyDictionary[
    asyncio.AbstractEventLoop, OrderedDict[tuple[int, int, int, str], asyncio.Task[str]]
] = weakref.WeakKeyDictionary()


async def pushed_card(retro_id: int, version: int, escape_id: int, role: str) -> str:
    """The version event with the escape's card (and the phase bar, overview and close region)
    as everyone of `role` sees it at `version` or later; without it if it cannot be rendered
    (the board then re-fetches).

    Rendered and encoded once per version, escape and role in this event loop (under uvicorn,
    this process), however many streams send it: the first starts it, the others await it.
    """
    loop = asyncio.get_running_loop()
    renders = _renders.setdefault(loop, OrderedDict())
    key = (retro_id, version, escape_id, role)
    task = renders.get(key)
    if task is None:
        task = loop.create_task(_render_event(retro_id, version, escape_id, role))
        renders[key] = task
        while len(renders) > RENDERS_KEPT:
            renders.popitem(last=False)
    return await asyncio.shield(task)  # a stream that goes does not cancel it for the others


async def _render_event(retro_id: int, version: int, escape_id: int, role: str) -> str:
    html = await sync_to_async(_render_cards)(retro_id, escape_id, role)
    return _version_event(version, escape_id, html)


def _render_cards(retro_id: int, escape_id: int, role: str) -> str | None:
    try:
        retro = Retrospective.objects.select_related("team").filter(pk=retro_id).first()
        return shared_cards_html(retro, role, [escape_id]) if retro else None
    except Http404:
        return None  # the escape left the board meanwhile
    except Exception:
        log.exception("live board: the card of escape %s could not be rendered", escape_id)
        return None
    finally:
        release_connections()


def _role_of(team_id: int, user_id: int) -> str | None:
    role = team_role(team_id=team_id, user_id=user_id)
    release_connections()
    return role


def _read_version(retro_id: int) -> int | None:
    version = Retrospective.objects.filter(pk=retro_id).values_list("version", flat=True).first()
    release_connections()
    return version


async def _to_the_end(func: Callable[..., None], *args: Any) -> None:
    """Run a presence call in a worker thread (it may talk to Redis), to its end.

    A stream cancelled half-way through `join` must still finish joining, or the `leave`
    that follows could run first and leave a ghost behind.
    """
    task = asyncio.ensure_future(sync_to_async(func, thread_sensitive=False)(*args))
    try:
        await asyncio.shield(task)
    except asyncio.CancelledError:
        await task
        raise
