"""No pooled connection in time: a 503 with Retry-After, not a 500, and the session kept.

A burst larger than the pool waits up to DB_POOL_TIMEOUT for a connection
(config/settings.py); past that psycopg_pool raises `PoolTimeout`, which Django wraps in its
`OperationalError`. The timeout is a real one from a real pool of one connection, that one taken;
the page and the stream then fail to get theirs where they would: reading
the membership. The session cookie must survive (a session that could not be read is not
an empty one), and the board's stream reconnects by itself after a 503 (static/js/board.js).
"""

import asyncio
import json
import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any, cast

import httpx
import pytest
from asgiref.sync import async_to_sync
from django.conf import settings as django_settings
from django.db import DEFAULT_DB_ALIAS, OperationalError, connections
from django.test import AsyncClient
from django.urls import reverse
from psycopg_pool import ConnectionPool, PoolTimeout

from config import errors
from config.errors import BUSY_RETRY_AFTER_SECONDS, pool_exhausted, server_error
from config.postgresql import base as database
from teams import decorators
from tests.conftest import client_for

pytestmark = pytest.mark.processes

ROOT = Path(__file__).resolve().parents[2]


def real_pool_timeout() -> OperationalError:
    """Django's OperationalError from a real PoolTimeout (a pool of one, its one taken)."""

    pool = ConnectionPool("", min_size=0, max_size=1, timeout=0.2, open=True)
    try:
        # Its one connection is out (held by another request): counted as the pool counts
        # it, so that no server is needed and the test runs on SQLite too.
        pool._nconns = 1
        pool.getconn()
    except PoolTimeout as timeout:
        try:
            raise OperationalError(str(timeout)) from timeout
        except OperationalError as wrapped:
            return wrapped
    finally:
        pool.close(timeout=0)
    raise AssertionError("the pool gave a connection it does not have")


@pytest.fixture
def pool_runs_dry(monkeypatch):
    error = real_pool_timeout()

    def membership_for(*args, **kwargs):
        raise error

    monkeypatch.setattr(decorators, "_membership_for", membership_for)
    monkeypatch.setattr(decorators, "get_membership", membership_for)
    return error


def test_the_timeout_is_recognised_through_djangos_wrapping():
    assert pool_exhausted(real_pool_timeout())
    assert not pool_exhausted(OperationalError("server closed the connection unexpectedly"))
    assert not pool_exhausted(RuntimeError("a bug"))


def test_a_page_answers_503_with_retry_after_and_keeps_the_session(member, team, pool_runs_dry):
    client = client_for(member)
    response = client.get(reverse("retro_list", kwargs={"team": team.slug}))
    assert response.status_code == 503
    assert response["Retry-After"] == str(BUSY_RETRY_AFTER_SECONDS)
    assert "busy" in response.content.decode()
    assert "sessionid" not in response.cookies  # neither deleted nor rewritten


def test_the_stream_answers_503_with_retry_after(retro, member, pool_runs_dry):
    client = AsyncClient()
    async_to_sync(client.aforce_login)(member)
    url = reverse("retro_stream", kwargs={"team": retro.team.slug, "pk": retro.pk})
    response = async_to_sync(client.get)(url)
    assert response.status_code == 503
    assert response["Retry-After"] == str(BUSY_RETRY_AFTER_SECONDS)
    assert "sessionid" not in response.cookies


def test_the_api_answers_a_json_503_when_the_pool_runs_dry(rf):
    request = rf.get("/api/v1/teams/checkout/escapes")
    try:
        raise real_pool_timeout()
    except OperationalError:
        response = server_error(request)
    assert response.status_code == 503 and response["Content-Type"] == "application/json"
    assert response["Retry-After"] == str(BUSY_RETRY_AFTER_SECONDS)
    assert "Try again in a few seconds" in json.loads(response.content)["detail"]


def test_the_500_handler_answers_503_for_a_timeout_in_a_middleware(rf):
    request = rf.get("/")
    try:
        raise real_pool_timeout()
    except OperationalError:
        assert sys.exc_info()[1] is not None
        response = server_error(request)
    assert response.status_code == 503
    assert response["Retry-After"] == str(BUSY_RETRY_AFTER_SECONDS)
    try:
        raise RuntimeError("a bug")
    except RuntimeError:
        assert server_error(request).status_code == 500


# --- The pool's settings (config/settings.py), read as a server process would read them.

SHOW_POOL = (
    "import django, json; django.setup(); from django.conf import settings; "
    "d = settings.DATABASES['default']; "
    "print(json.dumps([d.get('OPTIONS', {}).get('pool'), d['CONN_MAX_AGE']]))"
)


def settings_with(tmp_path, **env: str) -> subprocess.CompletedProcess[str]:
    full = {
        **{k: v for k, v in os.environ.items() if not k.startswith("DB_")},
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "LEAKSEAL_VAR_DIR": str(tmp_path),
        "DATABASE_URL": "postgres://leakseal@db.invalid:5432/leakseal",  # never connected to
        **env,
    }
    return subprocess.run(  # noqa: S603 - our own interpreter
        [sys.executable, "-c", SHOW_POOL],
        cwd=ROOT,
        env=full,
        capture_output=True,
        text=True,
        check=False,
    )


def test_postgresql_gets_a_pool_by_default_sized_by_the_environment(tmp_path):
    default = settings_with(tmp_path)
    assert default.returncode == 0, default.stderr
    assert json.loads(default.stdout.splitlines()[-1]) == [
        {"min_size": 1, "max_size": 10, "timeout": 10},
        0,
    ]
    sized = settings_with(
        tmp_path, DB_POOL_MIN_SIZE="2", DB_POOL_MAX_SIZE="30", DB_POOL_TIMEOUT="5"
    )
    assert json.loads(sized.stdout.splitlines()[-1])[0] == {
        "min_size": 2,
        "max_size": 30,
        "timeout": 5,
    }
    off = settings_with(tmp_path, DB_POOL="0", DB_CONN_MAX_AGE="60")
    assert json.loads(off.stdout.splitlines()[-1]) == [None, 60]


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"DB_CONN_MAX_AGE": "60"}, "DB_CONN_MAX_AGE must be 0 while the connection pool is on"),
        ({"DB_POOL_MIN_SIZE": "20"}, "DB_POOL_MIN_SIZE (20) must be between 0 and DB_POOL_MAX"),
        ({"DB_POOL_MAX_SIZE": "0", "DB_POOL_MIN_SIZE": "0"}, "which must be at least 1"),
        ({"DB_POOL_TIMEOUT": "0"}, "DB_POOL_TIMEOUT must be at least 1 second, got 0"),
        ({"DB_POOL_MAX_SIZE": "ten"}, "DB_POOL_MAX_SIZE must be an integer, got 'ten'"),
    ],
)
def test_a_pool_setting_that_cannot_work_is_refused_by_name(tmp_path, env, message):
    result = settings_with(tmp_path, **env)
    assert result.returncode != 0
    assert message in result.stderr


# The pool is PostgreSQL's (DATABASE_URL, config/settings.py): these run on CI's PostgreSQL path.
needs_the_pool = pytest.mark.skipif(
    not django_settings.DATABASES["default"].get("OPTIONS", {}).get("pool"),
    reason="the pool is PostgreSQL's (DATABASE_URL)",
)

# --- Who holds the pool's connections (config/postgresql/base.py), said with the 503.


@needs_the_pool
@pytest.mark.django_db(transaction=True)
def test_the_pool_records_who_holds_each_connection_until_it_is_given_back():
    taken, let_go = threading.Event(), threading.Event()
    wrappers = []

    def take_and_keep() -> None:
        wrappers.append(connections[DEFAULT_DB_ALIAS])
        wrappers[0].ensure_connection()
        taken.set()
        let_go.wait(10)

    thread = threading.Thread(target=take_and_keep, name="keeps-its-connection")
    thread.start()
    try:
        assert taken.wait(10)
        [held] = [line for line in database.holders() if "keeps-its-connection" in line]
        assert "keeps-its-connection (alive)" in held
        assert "tests/live/test_pool_busy.py" in held and "take_and_keep" in held
    finally:
        let_go.set()
        thread.join(10)
    [held] = [line for line in database.holders() if "keeps-its-connection" in line]
    assert "keeps-its-connection (ENDED, the connection is lost)" in held

    wrappers[0].inc_thread_sharing()  # give it back from here, as the thread never did
    wrappers[0].close()
    assert not [line for line in database.holders() if "keeps-its-connection" in line]


def _get_then_look(path: str, session: str) -> tuple[int, list[str]]:
    """GET `path` through the web process's ASGI application (config/asgi.py) in an event loop
    of its own; the answer's status and who holds pooled connections once it is answered,
    while the loop (a server's) still lives, as its default executor's threads do."""
    from config.asgi import application

    here = threading.current_thread().name

    async def get_then_look() -> tuple[int, list[str]]:
        transport = httpx.ASGITransport(app=cast(Any, application))  # Django's ASGI types
        async with httpx.AsyncClient(
            transport=transport, base_url="http://testserver", cookies={"sessionid": session}
        ) as http:
            response = await http.get(path)
        return response.status_code, [h for h in database.holders() if not h.startswith(here)]

    return asyncio.run(get_then_look())


@needs_the_pool
@pytest.mark.django_db(transaction=True)
def test_a_connection_taken_outside_the_requests_thread_goes_back_to_the_pool(
    member, team, settings
):
    """A mistyped URL of a team, signed in: Django renders the 404 in the loop's default
    executor (config/threads.py), which reads the user and the membership there."""
    settings.DEBUG = False  # with DEBUG, Django's own 404 page; without, ours (errors.py)
    session = client_for(member).cookies["sessionid"].value
    status, held = _get_then_look(f"/t/{team.slug}/no-such-page/", session)
    assert status == 404
    assert held == []


@needs_the_pool
@pytest.mark.django_db(transaction=True)
def test_a_pool_timeout_in_a_middleware_under_debug_leaves_no_connection_held(
    member, team, settings, monkeypatch
):
    """Under DEBUG (`make run`, the browser tests) Django's 500 page for a middleware's
    exception is rendered in the default executor, and it reads the signed-in user there: a
    burst that made one middleware wait too long for the pool took one more connection for
    good each time, until none was left."""
    settings.DEBUG = True
    error = real_pool_timeout()

    async def times_out(self, request):
        raise error

    monkeypatch.setattr(errors.RefusalPagesMiddleware, "__acall__", times_out)
    session = client_for(member).cookies["sessionid"].value
    status, held = _get_then_look(f"/t/{team.slug}/", session)
    assert status == 500  # Django's debug page: the 503 is DEBUG=0's (errors.server_error)
    assert held == []
