"""Many boards opened at once, on PostgreSQL: streams wait for a pooled connection, hold none.

A real stack (uvicorn on a database of its own) with a pool of at most POOL_MAX connections;
STREAMS participants open the board's event stream all at once. Every stream must open (200,
the current version first), and PostgreSQL must never see more than POOL_MAX connections to the
stack's database: not during the burst (openings wait for the pool instead of each opening a
connection, issue 13 point 11) and not while all the streams stay open (an open stream holds
none). Without the pool the burst alone opens one connection per opening.

PostgreSQL only: SQLite has no connections to count.
"""

import asyncio
import json
import os
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import psycopg
import pytest

from tests.browser.stack import TEAM, Stack, own_database_url
from tests.live.conftest import parse_block

BASE = os.environ.get("DATABASE_URL", "")
pytestmark = [
    pytest.mark.processes,
    pytest.mark.skipif(
        not BASE.startswith("postgres"), reason="PostgreSQL only (DATABASE_URL unset)"
    ),
]

STREAMS = 60
POOL_MAX = 10
OPEN_WITHIN = 60.0  # seconds for all of them on a loaded two-core machine: an outcome bound

PARTICIPANTS = """
import json
import django
django.setup()
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
from django.contrib.auth.models import User
from django.contrib.sessions.backends.db import SessionStore
from retros.models import Retrospective
from teams.models import Role, Team
from teams.services import membership_set

team = Team.objects.get(slug={team!r})
users = User.objects.bulk_create(User(username=f"many{{i:03d}}") for i in range({count}))
sessions = []
for user in users:
    membership_set(team=team, user=user, role=Role.MEMBER)
    s = SessionStore()
    s[SESSION_KEY] = str(user.pk)
    s[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
    s[HASH_SESSION_KEY] = user.get_session_auth_hash()
    s.create()
    sessions.append(s.session_key)
retro = Retrospective.objects.filter(team=team).order_by("pk").first()
print(json.dumps({{"retro": retro.pk, "sessions": sessions}}))
"""


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    folder: Path = tmp_path_factory.mktemp("many-streams")
    stack = Stack(
        var_dir=folder,
        database_url=own_database_url(BASE, "_manystreams"),
        redis_url=os.environ.get("REDIS_URL", ""),
        extra_env={"DB_POOL_MIN_SIZE": "1", "DB_POOL_MAX_SIZE": str(POOL_MAX)},
    )
    stack.prepare(extra_members=())
    try:
        stack.start_web()  # no worker: nothing here needs one, and its pool would count too
        yield stack
    finally:
        stack.stop()
        stack.drop()


def connections_to(database_url: str) -> int:
    name = database_url.rsplit("/", 1)[1]
    maintenance = database_url.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(maintenance, autocommit=True) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = %s", (name,)
        ).fetchone()
    return int(row[0]) if row else 0


async def open_stream(
    client: httpx.AsyncClient, url: str, session: str, opened: asyncio.Event, ready: list[int]
) -> tuple[int, int | None]:
    """Open one stream, read up to the first version, keep it open until `opened` is set."""
    async with client.stream("GET", url, cookies={"sessionid": session}) as response:
        if response.status_code != 200:
            await response.aread()
            ready.append(response.status_code)
            return response.status_code, None
        buffer, version = "", None
        async for chunk in response.aiter_text():
            buffer += chunk
            while "\n\n" in buffer and version is None:
                block, buffer = buffer.split("\n\n", 1)
                message = parse_block(block)
                if message.event == "version":
                    version = int(message.data["version"])
            if version is not None:
                break
        ready.append(response.status_code)
        await opened.wait()  # every stream stays open while the connections are counted
        return response.status_code, version


def test_a_burst_of_streams_waits_for_the_pool_and_open_streams_hold_no_connection(stack):
    ids = json.loads(
        stack.python(PARTICIPANTS.format(team=TEAM, count=STREAMS)).strip().splitlines()[-1]
    )
    url = f"{stack.url}/t/{TEAM}/retros/{ids['retro']}/stream/"
    peak = 0

    async def scenario() -> tuple[list[tuple[int, int | None]], int, float]:
        nonlocal peak
        opened = asyncio.Event()
        ready: list[int] = []
        limits = httpx.Limits(max_connections=STREAMS + 5)
        async with httpx.AsyncClient(timeout=OPEN_WITHIN, limits=limits) as client:
            started = time.monotonic()
            tasks = [
                asyncio.create_task(open_stream(client, url, session, opened, ready))
                for session in ids["sessions"]
            ]
            sampling = True

            async def sample() -> None:
                nonlocal peak
                while sampling:
                    count = await asyncio.to_thread(connections_to, stack.database_url)
                    peak = max(peak, count)
                    await asyncio.sleep(0.05)

            sampler = asyncio.create_task(sample())
            # All open (each has its first version and waits on `opened`) or refused.
            deadline = started + OPEN_WITHIN
            while len(ready) < STREAMS and time.monotonic() < deadline:
                if any(task.done() and task.exception() for task in tasks):
                    break
                await asyncio.sleep(0.05)
            took = time.monotonic() - started
            await asyncio.sleep(1.0)  # let the last openings' connections settle back
            while_open = await asyncio.to_thread(connections_to, stack.database_url)
            sampling = False
            await sampler
            opened.set()
            results = await asyncio.gather(*tasks)
        return results, while_open, took

    results, while_open, took = asyncio.run(scenario())
    statuses = [status for status, _ in results]
    assert statuses == [200] * STREAMS, (statuses, stack.log_tail())
    assert all(version is not None for _, version in results)
    assert took < OPEN_WITHIN
    assert peak <= POOL_MAX, f"{peak} connections during the burst, pool max {POOL_MAX}"
    assert while_open <= POOL_MAX, f"{while_open} connections with {STREAMS} streams open"
    log = stack.log_tail(400)
    assert "Traceback" not in log and "too many clients" not in log, log
