"""Presence: who has a live stream open to a retro right now.

The stream (retros/stream.py) calls `join` when it opens, `heartbeat` with every heartbeat it
sends and `leave` when it ends; a "presence" event is published whenever the set of people
present changes, and boards re-fetch their presence strip. A person with two tabs open counts
once and leaves when their last tab does.

Presence shows attendance, not authorship: the strip names the people on the board even in an
anonymous retro, whose whys and votes stay unattributed.

Backends, as for events (settings.REDIS_URL):

* Redis: a sorted set per retro, "leakseal:presence:<id>", one member "<user id>:<connection>"
  per open stream, scored with the moment it expires. A heartbeat pushes that moment on; a
  process that dies without saying goodbye leaves members that expire after TTL_SECONDS, are
  pruned by the next join, heartbeat or read, and announced then.
* Local: the open streams per user and retro, in this process. The embedded default runs one
  web process, which holds every stream.

Every function here is sync and never raises for a Redis failure (it is logged): presence is
a courtesy, and a board without it still works.
"""

import logging
import threading
import time
import uuid
from collections import defaultdict

import redis
from django.contrib.auth.models import User

from retros import events
from teams.models import Team

log = logging.getLogger(__name__)

HEARTBEAT_SECONDS = 15.0  # the stream's heartbeat; see retros/stream.py
TTL_SECONDS = 3 * HEARTBEAT_SECONDS  # two missed heartbeats, and the stream counts as gone

# retro id -> user id -> that user's open connections to it
_local: defaultdict[int, dict[int, set[str]]] = defaultdict(dict)
_local_lock = threading.Lock()


def new_connection() -> str:
    """An id for one stream's presence, to pass to `join`, `heartbeat` and `leave`."""
    return uuid.uuid4().hex


def _key(retro_id: int) -> str:
    return f"leakseal:presence:{retro_id}"


def _member(user_id: int, connection: str) -> str:
    return f"{user_id}:{connection}"


def _user_ids(members: list[bytes]) -> list[int]:
    """The distinct users of members "<user id>:<connection>", in order of first appearance."""
    seen: dict[int, None] = {}
    for member in members:
        head = member.split(b":", 1)[0]
        if head.isdigit():
            seen.setdefault(int(head), None)
    return list(seen)


def _announce(retro_id: int) -> None:
    events.publish(retro_id, events.PRESENCE, {})


def join(retro_id: int, user_id: int, connection: str) -> None:
    """Count a stream of the user on the retro."""
    url = events.redis_url()
    if not url:
        with _local_lock:
            connections = _local[retro_id].setdefault(user_id, set())
            changed = not connections
            connections.add(connection)
    else:
        changed = _redis_join(url, retro_id, user_id, connection)
    if changed:
        _announce(retro_id)


def heartbeat(retro_id: int, user_id: int, connection: str) -> None:
    """Keep the stream's presence alive (Redis); prune and announce streams that died."""
    url = events.redis_url()
    if url and _redis_heartbeat(url, retro_id, user_id, connection):
        _announce(retro_id)


def leave(retro_id: int, user_id: int, connection: str) -> None:
    """Uncount the stream; a connection that never joined (or already left) changes nothing."""
    url = events.redis_url()
    if not url:
        with _local_lock:
            users = _local.get(retro_id, {})
            connections = users.get(user_id, set())
            changed = connection in connections and len(connections) == 1
            connections.discard(connection)
            if not connections:
                users.pop(user_id, None)
            if not users:
                _local.pop(retro_id, None)
    else:
        changed = _redis_leave(url, retro_id, user_id, connection)
    if changed:
        _announce(retro_id)


def present_user_ids(retro_id: int) -> list[int]:
    url = events.redis_url()
    if not url:
        with _local_lock:
            return list(_local.get(retro_id, {}))
    try:
        pipe = events.sync_client(url).pipeline(transaction=True)
        pipe.zremrangebyscore(_key(retro_id), "-inf", time.time())
        pipe.zrange(_key(retro_id), 0, -1)
        _, members = pipe.execute()
    except (redis.RedisError, OSError) as exc:
        log.warning("presence of retro %s unreadable: %s", retro_id, type(exc).__name__)
        return []
    return _user_ids(members)


def present_users(retro_id: int, team: Team) -> list[User]:
    """The team's members present on the retro, by name (one query)."""
    ids = present_user_ids(retro_id)
    if not ids:
        return []
    users = User.objects.filter(pk__in=ids, is_active=True, memberships__team=team).distinct()
    return sorted(users, key=_by_name)


def strip(
    retro_id: int, team: Team, me: User, *, arriving: bool = False
) -> list[dict[str, object]]:
    """The presence strip's names, `me` marked. `arriving`: the board page being rendered for
    `me`, whose stream opens next; they are listed already, so the strip does not grow (and
    move the board under their finger) when their own arrival is announced."""
    users = present_users(retro_id, team)
    if arriving and all(user.pk != me.pk for user in users):
        users = sorted([*users, me], key=_by_name)
    return [{"name": display_name(user), "me": user.pk == me.pk} for user in users]


def _by_name(user: User) -> tuple[str, int]:
    return (display_name(user).casefold(), user.pk)


def display_name(user: User) -> str:
    return user.get_full_name() or user.get_username()


# --- Redis. Each change runs as one MULTI/EXEC, so two tabs closing at once still agree on
# who left last.


def _redis_join(url: str, retro_id: int, user_id: int, connection: str) -> bool:
    now, key = time.time(), _key(retro_id)
    try:
        pipe = events.sync_client(url).pipeline(transaction=True)
        pipe.zremrangebyscore(key, "-inf", now)
        pipe.zrange(key, 0, -1)
        pipe.zadd(key, {_member(user_id, connection): now + TTL_SECONDS})
        pipe.expire(key, int(TTL_SECONDS) + 1)
        pruned, before, _, _ = pipe.execute()
    except (redis.RedisError, OSError) as exc:
        log.warning("presence join on retro %s failed: %s", retro_id, type(exc).__name__)
        return False
    return bool(pruned) or user_id not in _user_ids(before)


def _redis_heartbeat(url: str, retro_id: int, user_id: int, connection: str) -> bool:
    now, key = time.time(), _key(retro_id)
    try:
        pipe = events.sync_client(url).pipeline(transaction=True)
        pipe.zremrangebyscore(key, "-inf", now)
        pipe.zadd(key, {_member(user_id, connection): now + TTL_SECONDS})
        pipe.expire(key, int(TTL_SECONDS) + 1)
        pruned, added, _ = pipe.execute()
    except (redis.RedisError, OSError) as exc:
        log.warning("presence heartbeat on retro %s failed: %s", retro_id, type(exc).__name__)
        return False
    # `added`: this stream had expired (a long pause) and is back.
    return bool(pruned) or bool(added)


def _redis_leave(url: str, retro_id: int, user_id: int, connection: str) -> bool:
    now, key = time.time(), _key(retro_id)
    try:
        pipe = events.sync_client(url).pipeline(transaction=True)
        pipe.zrem(key, _member(user_id, connection))
        pipe.zremrangebyscore(key, "-inf", now)
        pipe.zrange(key, 0, -1)
        removed, pruned, after = pipe.execute()
    except (redis.RedisError, OSError) as exc:
        log.warning("presence leave on retro %s failed: %s", retro_id, type(exc).__name__)
        return False
    return bool(pruned) or (bool(removed) and user_id not in _user_ids(after))
