"""End to end through a real ASGI server: a change made in another process reaches a stream.

The embedded default has no Redis: a write of the Celery worker or of a management command
publishes into its own process only, and the web process's poller must find it. This starts
uvicorn on a SQLite file of its own, opens a stream over HTTP and bumps the version from a
`manage.py shell` process. With REDIS_URL set the same runs once more on the Redis backend,
and checks that the server holds one pub/sub connection for all its streams.
"""

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.live.conftest import REDIS_URL, parse_block

pytestmark = pytest.mark.processes

BASE_DIR = Path(__file__).resolve().parents[2]

SETUP = """
import json
from django.core.management import call_command
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
from django.contrib.auth.models import User
from django.contrib.sessions.backends.db import SessionStore
from django.utils import timezone
from escapes.models import Escape
from retros import services
from teams.models import Role
from teams.services import membership_set, team_create

def session(user):
    s = SessionStore()
    s[SESSION_KEY] = str(user.pk)
    s[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
    s[HASH_SESSION_KEY] = user.get_session_auth_hash()
    s.create()
    return s.session_key

call_command("migrate", verbosity=0)
team = team_create(name="Live", slug="live", timezone_name="UTC")
other = team_create(name="Other", slug="other", timezone_name="UTC")
fred = User.objects.create_user("fred", password="x")
mia = User.objects.create_user("mia", password="x")
oscar = User.objects.create_user("oscar", password="x")
membership_set(team=team, user=fred, role=Role.FACILITATOR)
membership_set(team=team, user=mia, role=Role.MEMBER)
membership_set(team=other, user=oscar, role=Role.ADMIN)
escape = Escape.objects.create(team=team, title="Leak", detected_at=timezone.now())
retro = services.retro_create(team=team, facilitator=fred, title="Live", escapes=[escape])
print(json.dumps({"retro": retro.pk, "mia": session(mia), "oscar": session(oscar)}))
"""

ADVANCE = """
from retros import services
from retros.models import Retrospective
retro = Retrospective.objects.get(pk={pk})
services.retro_advance(retro=retro, expected_phase="gather", to_phase="categorize")
"""

CLASSIFY = """
from escapes.models import Escape
from retros import services
from retros.models import Retrospective
retro = Retrospective.objects.get(pk={pk})
if retro.phase == "gather":
    services.retro_advance(retro=retro, expected_phase="gather", to_phase="categorize")
escape = Escape.objects.get(title="Leak")
services.retro_escape_classify(retro=retro, escape=escape, category="coverage_gap", stage=None)
"""


def manage(env: dict[str, str], code: str) -> str:
    result = subprocess.run(  # noqa: S603 - the test's own code
        [sys.executable, "manage.py", "shell", "-c", code],
        cwd=BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# Seconds to wait for what another process did to reach the stream: an outcome, not a speed.
WAIT = 15.0

BACKENDS = [
    "local",
    pytest.param("redis", marks=pytest.mark.skipif(not REDIS_URL, reason="REDIS_URL unset")),
]


class Site:
    """A Leakseal of its own: a SQLite file, the demo users and retro, uvicorn on a free port."""

    def __init__(self, folder: Path, backend: str) -> None:
        env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL"}}
        env.update(LEAKSEAL_VAR_DIR=str(folder), DEBUG="1", PYTHONUNBUFFERED="1")
        if backend == "redis":
            env["REDIS_URL"] = REDIS_URL
        self.env = env
        self.ids = json.loads(manage(env, SETUP).strip().splitlines()[-1])
        port = free_port()
        self.base = f"http://127.0.0.1:{port}"
        self.log_path = folder / "uvicorn.log"
        command = [
            *(sys.executable, "-m", "uvicorn", "config.asgi:application"),
            *("--host", "127.0.0.1", "--port", str(port), "--timeout-graceful-shutdown", "1"),
        ]
        with self.log_path.open("w") as log:
            self.server = subprocess.Popen(  # noqa: S603 - our own server
                command, cwd=BASE_DIR, env=env, stdout=log, stderr=subprocess.STDOUT
            )
        for _ in range(150):
            try:
                httpx.get(self.base + "/accounts/login/", timeout=1)
                return
            except httpx.TransportError:
                assert self.server.poll() is None, self.log_path.read_text()
                time.sleep(0.1)

    def stop(self) -> None:
        self.server.terminate()
        try:
            self.server.wait(10)
        except subprocess.TimeoutExpired:
            self.server.kill()
            self.server.wait()


@pytest.fixture(scope="module")
def sites(tmp_path_factory) -> Iterator[dict[str, Site]]:
    # Started on first use and kept for the module. Not a parametrized fixture: pytest would
    # reorder the whole suite around its parameters.
    started: dict[str, Site] = {}
    yield started
    for site in started.values():
        site.stop()


@pytest.fixture(params=BACKENDS)
def site(request, sites, tmp_path_factory) -> Site:
    backend = request.param
    if backend not in sites:
        sites[backend] = Site(tmp_path_factory.mktemp(f"live-{backend}"), backend)
    return sites[backend]


class Stream:
    """An open text/event-stream over HTTP, read block by block."""

    def __init__(self, response: httpx.Response) -> None:
        self.response = response
        self.lines = response.iter_lines()

    def next(self):
        block: list[str] = []
        for line in self.lines:
            if line == "" and block:
                return parse_block("\n".join(block))
            if line != "":
                block.append(line)
        raise AssertionError("the stream ended")

    def next_event(self, kind: str, *, within: float | None = None):
        """The next `kind` event; with `within`, an AssertionError if the stream (which sends
        heartbeats meanwhile) has none within that many seconds."""
        deadline = None if within is None else time.monotonic() + within
        while (message := self.next()).event != kind:
            if deadline is not None and time.monotonic() > deadline:
                raise AssertionError(f"no {kind} event within {within} s")
        return message


def open_stream(client: httpx.Client, site: Site, session: str):
    url = f"{site.base}/t/live/retros/{site.ids['retro']}/stream/"
    client.cookies.set("sessionid", session)
    return client.stream("GET", url, timeout=httpx.Timeout(10.0))


def test_a_change_made_in_another_process_reaches_an_open_stream(site: Site):
    with httpx.Client() as client, open_stream(client, site, site.ids["mia"]) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        stream = Stream(response)
        assert stream.next().retry == 1000
        first = stream.next_event("version")
        stream.next_event("presence")

        manage(site.env, ADVANCE.format(pk=site.ids["retro"]))
        # A generous wait for the outcome; how fast it comes is bench/'s to measure.
        bumped = stream.next_event("version", within=WAIT)

    assert bumped.data == {"version": first.data["version"] + 1}


def test_a_card_changed_in_another_process_is_rendered_by_the_web_process(site: Site):
    """With Redis the worker's (here: a shell's) change to one card comes with its escape, and
    the web process holding the stream renders the card and pushes it. The embedded default's
    poller knows only versions: the board re-fetches."""
    with httpx.Client() as client, open_stream(client, site, site.ids["mia"]) as response:
        stream = Stream(response)
        stream.next_event("version")
        manage(site.env, CLASSIFY.format(pk=site.ids["retro"]))
        while "escape" not in (event := stream.next_event("version", within=WAIT)).data:
            if "REDIS_URL" not in site.env:
                break
    if "REDIS_URL" in site.env:
        assert "Coverage Gap" in event.data["html"] and 'id="escape-' in event.data["html"]
    else:
        assert set(event.data) == {"version"}


def test_an_outsider_gets_404_and_not_a_byte_of_the_stream(site: Site):
    with httpx.Client() as client, open_stream(client, site, site.ids["oscar"]) as response:
        body = response.read()
    assert response.status_code == 404
    assert not response.headers["content-type"].startswith("text/event-stream")
    assert b"retry:" not in body and b"event:" not in body


def test_the_server_holds_one_redis_subscription_for_all_its_streams(site: Site):
    if "REDIS_URL" not in site.env:
        pytest.skip("the embedded default has no Redis")
    import redis

    with (
        httpx.Client() as a,
        httpx.Client() as b,
        httpx.Client() as c,
        open_stream(a, site, site.ids["mia"]) as one,
        open_stream(b, site, site.ids["mia"]) as two,
        open_stream(c, site, site.ids["mia"]) as three,
    ):
        # Each reader kept until the end: a reader dropped closes its stream (its line
        # iterator's close reaches httpx, which closes the connection), and with the last
        # stream gone the hub lets go of Redis. (Dropped at once, the three streams closed
        # within milliseconds, and under load before the first look: "no connection".)
        streams = [Stream(response) for response in (one, two, three)]
        for stream in streams:
            stream.next_event("version")
        # A stream waits at most a couple of seconds for the subscription before it starts
        # (a busy machine can take longer), so give the hub's connection time to show up.
        name = f"leakseal-hub-{site.server.pid}"
        deadline = time.monotonic() + 15
        while True:
            clients = redis.Redis.from_url(REDIS_URL).client_list(_type="pubsub")
            names = [conn.get("name", "") for conn in clients]
            if names.count(name) >= 1 or time.monotonic() > deadline:
                break
            time.sleep(0.1)
    assert names.count(name) == 1, (clients, site.log_path.read_text()[-3000:])
