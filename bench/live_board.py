"""Live-board benchmark: one retro, 50 participants holding event streams, others posting whys.

(About 600 lines: one script that builds, drives, measures and tears down a whole stack.)

    .venv/bin/python bench/live_board.py                      # embedded default (SQLite)
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/leakseal_bench \\
    REDIS_URL=redis://127.0.0.1:6379/14 .venv/bin/python bench/live_board.py

It builds a Leakseal of its own (a temporary var dir; with DATABASE_URL a separate database
named after it + "_bench", dropped at the end), adds participants to the demo team, starts
uvicorn and a Celery worker on loopback, signs everybody in through the sign-in form, opens
one Server-Sent Events stream per listener and has a few posters add whys through the
board's own HTTP endpoint at a steady rate. For every post it records the retro version the
post produced (the board fragment in the response shows it) and, per stream, when a version
at least that high arrived. Counts and time are bounded; it stops by itself.

With --refetch every listener does what a browser's board does next (static/js/board.js): it
applies a card pushed with a version one past what it shows, and otherwise re-fetches (only the
changed cards when every version since named its escape, else the whole board); that adds
post-to-everyone-rendered ("every board shows the change").

With --streams N (waves mode) the question is opening many boards at once, a company-wide
retro: N participants open the stream in waves of --wave every --every seconds (as a meeting
link is clicked), signed in by a session made directly in the database (the sign-in form is not
what is measured). Reported: HTTP errors on opening (a 503 is retried after a second, as
board.js reconnects), the opening rate (streams whose first version arrived per second, against
the rate offered), how long an opening took, the peak of PostgreSQL connections to the bench's
database while they opened, then publish-to-each latency of whys posted with all N open.

Reported: post-to-everyone-received latency (p50/p95/p99 over posts; a post is received by
everyone when the slowest of the listening streams has it), the same per delivery, lost
deliveries (a stream that never saw a version >= v), doubled deliveries (one version twice on
one stream), RSS of the uvicorn processes, and the machine.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import re
import shutil
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.browser.stack import TEAM, Stack  # noqa: E402

PASSWORD = "bench-participant-pw"  # loopback-only throwaway accounts of a throwaway database
VERSION_IN_HTML = re.compile(r'data-version="(\d+)"')  # #board's, or the phase bar's
REFUSED = re.compile(r'class="errors card-errors" role="alert"><ul><li>')
BOARD_VERSION = re.compile(r'id="board"[^>]*data-version="(\d+)"')


# --- Setting up.


def add_participants(stack: Stack, count: int, sessions: int = 0) -> dict[str, Any]:
    """`count` members of the demo team; the demo retro's id and escape ids; with `sessions`,
    a signed-in session for the first that many."""
    script = f"""
import json
import django
django.setup()
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
from django.contrib.sessions.backends.db import SessionStore
from django.contrib.auth.hashers import make_password
from django.contrib.auth.models import User
from retros.models import RetroEscape, Retrospective
from teams.models import Role, Team
from teams.services import membership_set

team = Team.objects.get(slug={TEAM!r})
hashed = make_password({PASSWORD!r})  # hashed once: PBKDF2 per user would take a minute
users = User.objects.bulk_create(
    User(username=f"bench{{i:03d}}", password=hashed) for i in range({count})
)
for user in users:
    membership_set(team=team, user=user, role=Role.MEMBER)
# The demo's open retro (it has a closed one too, read-only: a why posted there is refused).
retro = Retrospective.objects.filter(team=team).exclude(phase="closed").order_by("pk").first()
escapes = list(RetroEscape.objects.filter(retro=retro).values_list("escape_id", flat=True))
sessions = []
for user in users[:{sessions}]:
    store = SessionStore()
    store[SESSION_KEY] = str(user.pk)
    store[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
    store[HASH_SESSION_KEY] = user.get_session_auth_hash()
    store.create()
    sessions.append(store.session_key)
print(json.dumps({{"retro": retro.pk, "escapes": escapes, "phase": retro.phase,
                  "sessions": sessions}}))
"""
    return dict(json.loads(stack.python(script).strip().splitlines()[-1]))


async def sign_in(client: httpx.AsyncClient, username: str) -> None:
    page = await client.get("/accounts/login/")
    page.raise_for_status()
    response = await client.post(
        "/accounts/login/",
        data={
            "username": username,
            "password": PASSWORD,
            "csrfmiddlewaretoken": client.cookies["csrftoken"],
        },
    )
    if response.status_code != 302 or "sessionid" not in client.cookies:
        raise RuntimeError(f"sign-in of {username} failed: {response.status_code}")


# --- Listening.


@dataclass
class Listener:
    name: str
    first_seen: dict[int, float] = field(default_factory=dict)  # version -> monotonic time
    doubled: int = 0
    events: int = 0
    connects: int = 0
    errors: list[str] = field(default_factory=list)
    # --refetch: what a browser does next, re-fetching the board on a newer version.
    rendered: dict[int, float] = field(default_factory=dict)  # board version -> time
    announced: int = 0
    hints: dict[int, int | None] = field(default_factory=dict)  # version -> escape it changed
    full_fetches: int = 0
    card_fetches: int = 0
    pushed: int = 0  # cards applied from the stream, without a request
    pushed_bytes: int = 0
    fetching: bool = False
    fetcher: asyncio.Task[None] | None = None
    closing: bool = False  # the run is over: what the stream does now is not measured
    # Waves mode: when the stream was asked for, and when its first version arrived.
    requested: float = 0.0
    opened: float | None = None
    headers: dict[str, str] = field(default_factory=dict)  # its session cookie (waves mode)

    def saw(self, version: int, at: float) -> None:
        if self.opened is None:
            self.opened = at
        self.events += 1
        self.announced = max(self.announced, version)
        if version in self.first_seen:
            self.doubled += 1
        else:
            self.first_seen[version] = at

    def received_at(self, version: int) -> float | None:
        """When this stream first had a version >= `version`."""
        return _first_at_least(self.first_seen, version)

    def rendered_at(self, version: int) -> float | None:
        return _first_at_least(self.rendered, version)


def _first_at_least(seen: dict[int, float], version: int) -> float | None:
    times = [t for v, t in seen.items() if v >= version]
    return min(times) if times else None


def version_of(data: str) -> tuple[int, int | None, str | None] | None:
    """What a "version" event carries: {"version": n, "escape": id?, "html": card?}
    (retros/stream.py)."""
    try:
        value = json.loads(data)
    except ValueError:
        return None
    if isinstance(value, dict) and isinstance(value.get("version"), int):
        escape, html = value.get("escape"), value.get("html")
        return (
            int(value["version"]),
            escape if isinstance(escape, int) else None,
            html if isinstance(html, str) else None,
        )
    return None


def apply_pushed(listener: Listener, version: int, html: str | None) -> bool:
    """What board.js does with a pushed card: swap it in when the board is one version behind
    and no fetch is under way (here: check it is the card answer, at least that version)."""
    known = max(listener.rendered, default=0)
    if html is None or listener.fetching or version != known + 1:
        return False
    found = BOARD_VERSION.search(html)
    if "data-cards" not in html or not found or int(found.group(1)) < version:
        return False
    listener.rendered.setdefault(version, time.monotonic())
    listener.pushed += 1
    listener.pushed_bytes += len(html.encode())
    return True


async def listen(
    client: httpx.AsyncClient,
    url: str,
    listener: Listener,
    ready: asyncio.Event,
    refresh_url: str = "",
) -> None:
    """Hold the stream open, recording every version ping; reconnect if it drops."""
    while True:
        try:
            headers = {"Accept": "text/event-stream", **listener.headers}
            async with client.stream("GET", url, headers=headers) as r:
                if r.status_code != 200:
                    listener.errors.append(f"HTTP {r.status_code}")
                    await asyncio.sleep(1)
                    continue
                listener.connects += 1
                ready.set()
                kind, data = "message", []
                async for line in r.aiter_lines():
                    if line.startswith("event:"):
                        kind = line[6:].strip()
                    elif line.startswith("data:"):
                        data.append(line[5:].lstrip())
                    elif line == "":
                        event = version_of("\n".join(data)) if kind == "version" else None
                        if event is not None:
                            version, listener.hints[version], html = event
                            listener.saw(version, time.monotonic())
                            if refresh_url and apply_pushed(listener, version, html):
                                pass
                            elif refresh_url and not listener.fetching:
                                listener.fetching = True
                                listener.fetcher = asyncio.create_task(
                                    refetch(client, refresh_url, listener)
                                )
                        kind, data = "message", []
        except (httpx.TransportError, httpx.StreamError) as exc:
            if listener.closing:
                return
            listener.errors.append(type(exc).__name__)
            await asyncio.sleep(0.5)


def changed_cards(listener: Listener, known: int, target: int) -> list[int] | None:
    """The escapes versions (known, target] changed, if each one said; as board.js does."""
    ids = [listener.hints.get(version) for version in range(known + 1, target + 1)]
    if not ids or None in ids or len(set(ids)) > 5:
        return None
    return list(dict.fromkeys(i for i in ids if i is not None))


async def refetch(client: httpx.AsyncClient, url: str, listener: Listener) -> None:
    """Re-fetch the board until it shows the newest announced version, as board.js does:
    only the changed cards when every version since the last fetch named its escape."""
    try:
        while (known := max(listener.rendered, default=0)) < listener.announced:
            target = listener.announced
            cards = changed_cards(listener, known, target) if known else None
            query = "?" + "&".join(f"escape={i}" for i in cards) if cards else ""
            response = await client.get(url + query, headers={"HX-Request": "true"})
            found = BOARD_VERSION.search(response.text)
            if response.status_code != 200 or not found:
                listener.errors.append(f"refetch HTTP {response.status_code}")
                return
            if cards:
                listener.card_fetches += 1
                listener.rendered.setdefault(target, time.monotonic())
            else:
                listener.full_fetches += 1
                listener.rendered.setdefault(int(found.group(1)), time.monotonic())
    except httpx.TransportError as exc:
        listener.errors.append(f"refetch {type(exc).__name__}")
    finally:
        listener.fetching = False


# --- Posting.


@dataclass
class Post:
    poster: str
    started: float
    version: int | None = None
    status: int = 0
    took: float = 0.0
    error: str = ""


async def post_why(
    client: httpx.AsyncClient, retro_id: int, escape_id: int, text: str, post: Post
) -> None:
    try:
        response = await client.post(
            f"/t/{TEAM}/retros/{retro_id}/escapes/{escape_id}/whys/",
            data={"text": text},
            headers={
                "X-CSRFToken": client.cookies["csrftoken"],
                "HX-Request": "true",
                "Referer": f"{client.base_url}/t/{TEAM}/retros/{retro_id}/",
            },
        )
    except httpx.TransportError as exc:  # counted as a failed post (status 0), not a crash
        post.took = time.monotonic() - post.started
        post.error = type(exc).__name__
        return
    post.took = time.monotonic() - post.started
    post.status = response.status_code
    found = [int(v) for v in VERSION_IN_HTML.findall(response.text)]
    refused = REFUSED.search(response.text)  # a 200 card with the reason: not a post
    post.version = max(found) if found and not refused else None


async def run_posts(
    posters: list[httpx.AsyncClient], retro: dict[str, Any], total: int, seconds: float
) -> list[Post]:
    """`total` posts spread evenly over `seconds`, round-robin over the posters."""
    interval = seconds / total
    start = time.monotonic()
    posts: list[Post] = []
    tasks = []
    for i in range(total):
        await asyncio.sleep(max(0.0, start + i * interval - time.monotonic()))
        client = posters[i % len(posters)]
        escape_id = retro["escapes"][i % len(retro["escapes"])]
        post = Post(poster=str(i % len(posters)), started=time.monotonic())
        posts.append(post)
        text = f"Bench why {i}: the check that would have caught it ran only nightly."
        tasks.append(asyncio.create_task(post_why(client, retro["retro"], escape_id, text, post)))
    await asyncio.gather(*tasks)
    return posts


# --- Measuring.


class RssSampler:
    def __init__(self, stack: Stack) -> None:
        self.stack = stack
        self.peak = 0

    def now(self) -> int:
        total = 0
        for pid in self.stack.web_pids():
            with contextlib.suppress(psutil.NoSuchProcess):
                total += psutil.Process(pid).memory_info().rss
        self.peak = max(self.peak, total)
        return total

    async def sample(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            self.now()
            await asyncio.sleep(0.25)


def percentile(values: list[float], q: float) -> float:
    """Linear interpolation between closest ranks (PostgreSQL percentile_cont)."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    pos = (len(ordered) - 1) * q
    low = int(pos)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


def machine(stack: Stack) -> dict[str, str]:
    cpu = "unknown"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    mem_kb = 0
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            mem_kb = int(line.split()[1])
    facts = {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "nproc": str(os.cpu_count()),
        "cpu": cpu,
        "memory": f"{mem_kb / 1024 / 1024:.1f} GiB",
        "os": platform.platform(),
        "python": platform.python_version(),
        "stack": stack.kind,
        "web processes": str(stack.web_workers),
        "settings": stack.settings_module,
        # Other work on the machine competes for the same two cores; say how much there was.
        "load average at start": " ".join(f"{x:.2f}" for x in os.getloadavg()),
    }
    if stack.database_url:
        import psycopg

        with psycopg.connect(stack.database_url) as conn:
            row = conn.execute("SHOW server_version").fetchone()
            facts["postgresql"] = str(row[0]) if row else "?"
    else:
        import sqlite3

        facts["sqlite"] = sqlite3.sqlite_version
    if stack.redis_url:
        import redis

        facts["redis"] = str(redis.Redis.from_url(stack.redis_url).info("server")["redis_version"])
    return facts


# --- The run.


@dataclass
class Settings:
    listeners: int
    posters: int
    posts: int
    seconds: float
    drain: float
    refetch: bool = False


async def post_and_measure(
    report: dict[str, Any],
    cfg: Settings | Waves,
    rss: RssSampler,
    retro: dict[str, Any],
    posters: list[httpx.AsyncClient],
    listeners: list[Listener],
    streams: list[asyncio.Task[Any]],
) -> None:
    """Post the whys while every stream listens, then close the streams and add what was
    measured to `report`: memory, load, the client's own CPU, and who saw which change when."""
    stop = asyncio.Event()
    sampler = asyncio.create_task(rss.sample(stop))
    posts = await run_posts(posters, retro, cfg.posts, cfg.seconds)
    await asyncio.sleep(cfg.drain)
    stop.set()
    await sampler
    for listener in listeners:
        listener.closing = True
    for task in streams:
        task.cancel()
    await asyncio.gather(*streams, return_exceptions=True)
    report["rss_after"] = rss.now()
    report["rss_peak"] = rss.peak
    report["load_average_at_end"] = " ".join(f"{x:.2f}" for x in os.getloadavg())
    cpu = psutil.Process().cpu_times()
    report["bench_client_cpu_seconds"] = round(cpu.user + cpu.system, 1)
    report.update(analyse(posts, listeners))


async def drive(stack: Stack, retro: dict[str, Any], cfg: Settings) -> dict[str, Any]:
    limits = httpx.Limits(max_connections=4, max_keepalive_connections=4)
    timeout = httpx.Timeout(30.0, read=None)
    clients = [
        httpx.AsyncClient(base_url=stack.url, limits=limits, timeout=timeout)
        for _ in range(cfg.listeners + cfg.posters)
    ]
    rss = RssSampler(stack)
    report: dict[str, Any] = {"rss_before": rss.now()}
    try:
        started = time.monotonic()
        gate = asyncio.Semaphore(4)

        async def signed_in(client: httpx.AsyncClient, i: int) -> None:
            async with gate:
                await sign_in(client, f"bench{i:03d}")

        await asyncio.gather(*(signed_in(c, i) for i, c in enumerate(clients)))
        report["sign_in_seconds"] = time.monotonic() - started

        stream_url = f"/t/{TEAM}/retros/{retro['retro']}/stream/"
        listeners = [Listener(name=f"bench{i:03d}") for i in range(cfg.listeners)]
        readies = [asyncio.Event() for _ in listeners]
        board_url = f"/t/{TEAM}/retros/{retro['retro']}/" if cfg.refetch else ""
        streams = [
            asyncio.create_task(listen(clients[i], stream_url, listeners[i], readies[i], board_url))
            for i in range(cfg.listeners)
        ]
        await asyncio.wait_for(asyncio.gather(*(r.wait() for r in readies)), timeout=60)
        await asyncio.sleep(1.0)  # let every stream take its first ping
        if cfg.refetch:
            # A browser opens the board with it rendered; here each listener fetches it first,
            # and the posts start once every one has it (else the first pushes meet fetches
            # still under way and measure the start, not the steady state).
            for _ in range(600):
                if all(listener.rendered and not listener.fetching for listener in listeners):
                    break
                await asyncio.sleep(0.1)
        report["rss_streams_open"] = rss.now()

        posters = clients[cfg.listeners :]
        await post_and_measure(report, cfg, rss, retro, posters, listeners, streams)
    finally:
        await asyncio.gather(*(c.aclose() for c in clients), return_exceptions=True)
    return report


@dataclass
class Waves:
    streams: int
    wave: int
    every: float
    posters: int
    posts: int
    seconds: float
    drain: float


def connections_to(database_url: str) -> int:
    """PostgreSQL's connections to the bench's database now (pg_stat_activity)."""
    import psycopg

    name = database_url.rsplit("/", 1)[1]
    with psycopg.connect(database_url.rsplit("/", 1)[0] + "/postgres", autocommit=True) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = %s", (name,)
        ).fetchone()
    return int(row[0]) if row else 0


async def drive_waves(stack: Stack, retro: dict[str, Any], cfg: Waves) -> dict[str, Any]:
    """Open cfg.streams streams in waves, then post whys with all of them open."""
    timeout = httpx.Timeout(60.0, read=None)
    # One client for every stream, each request with its own session cookie: a connection
    # per stream, as N browsers would have.
    streams_client = httpx.AsyncClient(
        base_url=stack.url,
        limits=httpx.Limits(max_connections=cfg.streams + 10, max_keepalive_connections=0),
        timeout=timeout,
    )
    posters = [httpx.AsyncClient(base_url=stack.url, timeout=timeout) for _ in range(cfg.posters)]
    rss = RssSampler(stack)
    report: dict[str, Any] = {"rss_before": rss.now()}
    peak_connections = 0
    sampling = True

    async def sample_connections() -> None:
        nonlocal peak_connections
        while sampling and stack.database_url:
            count = await asyncio.to_thread(connections_to, stack.database_url)
            peak_connections = max(peak_connections, count)
            await asyncio.sleep(0.1)

    try:
        for i, client in enumerate(posters):
            await sign_in(client, f"bench{cfg.streams + i:03d}")
        stream_url = f"/t/{TEAM}/retros/{retro['retro']}/stream/"
        listeners = [
            Listener(name=f"bench{i:03d}", headers={"Cookie": f"sessionid={session}"})
            for i, session in enumerate(retro["sessions"])
        ]
        report["connections_before"] = (
            connections_to(stack.database_url) if stack.database_url else None
        )
        sampler = asyncio.create_task(sample_connections())
        started = time.monotonic()
        tasks = []
        for first in range(0, cfg.streams, cfg.wave):
            await asyncio.sleep(
                max(0.0, started + first // cfg.wave * cfg.every - time.monotonic())
            )
            for listener in listeners[first : first + cfg.wave]:
                listener.requested = time.monotonic()
                tasks.append(
                    asyncio.create_task(
                        listen(streams_client, stream_url, listener, asyncio.Event())
                    )
                )
        offered_until = time.monotonic()
        deadline = started + 300
        while time.monotonic() < deadline and any(ls.opened is None for ls in listeners):
            await asyncio.sleep(0.1)
        opened = [ls.opened for ls in listeners if ls.opened is not None]
        all_open = max(opened) if opened else time.monotonic()
        report["opened"] = len(opened)
        report["opening_seconds"] = round(all_open - started, 1)
        report["offered_per_second"] = round(cfg.wave / cfg.every, 1)
        report["offered_seconds"] = round(offered_until - started, 1)
        report["opening_rate"] = round(len(opened) / max(0.001, all_open - started), 1)
        report["open_ms"] = summary([ls.opened - ls.requested for ls in listeners if ls.opened])
        report["opening_errors"] = sum(len(ls.errors) for ls in listeners)
        report["opening_error_kinds"] = sorted({e for ls in listeners for e in ls.errors})
        await asyncio.sleep(2.0)  # every stream past its first events
        sampling = False
        await sampler
        report["peak_connections_while_opening"] = peak_connections
        report["connections_all_open"] = (
            connections_to(stack.database_url) if stack.database_url else None
        )
        report["rss_streams_open"] = rss.now()

        await post_and_measure(report, cfg, rss, retro, posters, listeners, tasks)
    finally:
        sampling = False
        clients = [streams_client, *posters]
        await asyncio.gather(*(c.aclose() for c in clients), return_exceptions=True)
    return report


def print_waves_report(facts: dict[str, str], cfg: Waves, report: dict[str, Any]) -> None:
    print("\n## Machine")
    for key, value in facts.items():
        print(f"- {key}: {value}")
    print(
        f"\n## Load\n- {cfg.streams} streams opened in waves of {cfg.wave} every {cfg.every} s "
        f"(offered {report['offered_per_second']}/s over {report['offered_seconds']} s); then "
        f"{cfg.posts} whys over {cfg.seconds:.0f} s from {cfg.posters} posters"
    )
    print("\n## Opening")
    print(
        f"- opened {report['opened']}/{cfg.streams} in {report['opening_seconds']} s: "
        f"{report['opening_rate']} streams/s"
    )
    print(
        f"- errors on opening: {report['opening_errors']} {report['opening_error_kinds']} "
        "(each retried after 1 s, as board.js does)"
    )
    print(f"- request to first version, per stream (ms): {report['open_ms']}")
    print(
        f"- PostgreSQL connections to the bench database: {report['connections_before']} "
        f"before, peak {report['peak_connections_while_opening']} while opening, "
        f"{report['connections_all_open']} with all {report['opened']} open"
    )
    print("\n## Publish to each (ms, from the post's start to each stream's receipt)")
    print(f"- delivery_ms: {report['delivery_ms']}")
    print(f"- everyone_ms: {report['everyone_ms']}")
    print(f"- post_response_ms: {report['post_response_ms']}")
    print(
        f"- posts ok: {report['posts_ok']}/{report['posts']} (statuses "
        f"{report['post_statuses']} {report['post_errors']}); deliveries expected "
        f"{report['deliveries_expected']}, "
        f"lost {report['lost']}, doubled {report['doubled']}, stream reconnects "
        f"{report['stream_reconnects']} {report['stream_errors']}"
    )
    print(
        f"- load average at the end: {report['load_average_at_end']}; this client used "
        f"{report['bench_client_cpu_seconds']} s of CPU"
    )
    print(
        f"- uvicorn RSS: before {mib(report['rss_before'])}, streams open "
        f"{mib(report['rss_streams_open'])}, peak {mib(report['rss_peak'])}, "
        f"after {mib(report['rss_after'])}"
    )


def raise_open_files_limit(streams: int) -> str:
    """Each stream is a socket in this client and one in the server: lift the soft limit of
    open files to the hard one (inherited by the server), and say what it is."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and (hard == resource.RLIM_INFINITY or soft < hard):
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        soft = hard
    if soft != resource.RLIM_INFINITY and soft < streams * 2 + 200:
        raise SystemExit(
            f"{streams} streams need about {streams * 2 + 200} open files; the limit is "
            f"{soft} (ulimit -n): raise the hard limit"
        )
    return "unlimited" if soft == resource.RLIM_INFINITY else str(soft)


def latencies(
    posts: list[Post], listeners: list[Listener], *, rendered: bool = False
) -> tuple[list[float], list[float], int]:
    """Per post (slowest listener), per delivery, and how many deliveries never came."""
    per_post: list[float] = []
    per_delivery: list[float] = []
    lost = 0
    for post in posts:
        if post.version is None:
            continue
        slowest = 0.0
        for listener in listeners:
            got = listener.rendered_at if rendered else listener.received_at
            at = got(post.version)
            if at is None:
                lost += 1
                continue
            latency = at - post.started
            per_delivery.append(latency)
            slowest = max(slowest, latency)
        per_post.append(slowest)
    return per_post, per_delivery, lost


def spreads(posts: list[Post], listeners: list[Listener]) -> list[float]:
    """Per post: from the first stream that had it to the last, the fan-out alone."""
    out = []
    for post in posts:
        if post.version is None:
            continue
        times = [t for t in (ls.received_at(post.version) for ls in listeners) if t is not None]
        if times:
            out.append(max(times) - min(times))
    return out


def analyse(posts: list[Post], listeners: list[Listener]) -> dict[str, Any]:
    per_post, per_delivery, lost = latencies(posts, listeners)
    took = [p.took for p in posts]
    extra: dict[str, Any] = {}
    if any(listener.rendered for listener in listeners):
        shown, _, not_shown = latencies(posts, listeners, rendered=True)
        extra = {
            "everyone_rendered_ms": summary(shown),
            "not_rendered": not_shown,
            "refetches": {
                "whole_board": sum(listener.full_fetches for listener in listeners),
                "cards_only": sum(listener.card_fetches for listener in listeners),
            },
            "pushed_applied": sum(listener.pushed for listener in listeners),
            "pushed_kib_mean": round(
                sum(listener.pushed_bytes for listener in listeners)
                / max(1, sum(listener.pushed for listener in listeners))
                / 1024,
                1,
            ),
        }
    return {
        **extra,
        "posts": len(posts),
        "posts_ok": sum(1 for p in posts if p.status == 200 and p.version is not None),
        "post_statuses": sorted({p.status for p in posts}),
        "post_errors": sorted({p.error for p in posts if p.error}),
        "post_response_ms": summary(took),
        "everyone_ms": summary(per_post),
        "delivery_ms": summary(per_delivery),
        "fanout_spread_ms": summary(spreads(posts, listeners)),
        "deliveries_expected": len(listeners) * sum(1 for p in posts if p.version is not None),
        "lost": lost,
        "doubled": sum(listener.doubled for listener in listeners),
        "events_received": sum(listener.events for listener in listeners),
        "stream_reconnects": sum(max(0, listener.connects - 1) for listener in listeners),
        "stream_errors": sorted({e for listener in listeners for e in listener.errors}),
    }


def summary(seconds: list[float]) -> dict[str, float]:
    if not seconds:
        return {}
    return {
        "p50": round(percentile(seconds, 0.50) * 1000, 1),
        "p95": round(percentile(seconds, 0.95) * 1000, 1),
        "p99": round(percentile(seconds, 0.99) * 1000, 1),
        "max": round(max(seconds) * 1000, 1),
        "mean": round(statistics.fmean(seconds) * 1000, 1),
    }


def mib(n: int) -> str:
    return f"{n / 1024 / 1024:.0f} MiB"


def print_report(facts: dict[str, str], cfg: Settings, report: dict[str, Any]) -> None:
    print("\n## Machine")
    for key, value in facts.items():
        print(f"- {key}: {value}")
    print(
        f"\n## Load\n- {cfg.listeners} listening streams, {cfg.posters} posters, "
        f"{cfg.posts} whys over {cfg.seconds:.0f} s ({cfg.posts / cfg.seconds:.1f}/s)"
        + (", listeners apply pushed cards or re-fetch, as boards do" if cfg.refetch else "")
    )
    print(f"- sign-in of {cfg.listeners + cfg.posters} users: {report['sign_in_seconds']:.1f} s")
    print("\n## Results (ms)")
    keys = ("everyone_ms", "delivery_ms", "fanout_spread_ms", "post_response_ms")
    for key in (*keys, "everyone_rendered_ms"):
        if key in report:
            print(f"- {key}: {report[key]}")
    if "not_rendered" in report:
        print(f"- board re-fetches that never showed a post's version: {report['not_rendered']}")
        fetches = report["refetches"]
        print(
            f"- re-fetches: {fetches['cards_only']} of changed cards only, "
            f"{fetches['whole_board']} of the whole board; pushed cards applied: "
            f"{report['pushed_applied']} (mean {report['pushed_kib_mean']} KiB)"
        )
    print(
        f"- posts ok: {report['posts_ok']}/{report['posts']} (statuses {report['post_statuses']})"
    )
    print(
        f"- deliveries expected {report['deliveries_expected']}, lost {report['lost']}, "
        f"doubled {report['doubled']}, events received {report['events_received']}, "
        f"stream reconnects {report['stream_reconnects']} {report['stream_errors']}"
    )
    print(
        f"- load average at the end: {report['load_average_at_end']}; this client used "
        f"{report['bench_client_cpu_seconds']} s of CPU"
    )
    print(
        f"- uvicorn RSS: before {mib(report['rss_before'])}, streams open "
        f"{mib(report['rss_streams_open'])}, peak {mib(report['rss_peak'])}, "
        f"after {mib(report['rss_after'])}"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--listeners", type=int, default=50)
    parser.add_argument("--posters", type=int, default=4)
    parser.add_argument("--posts", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=40.0)
    parser.add_argument("--drain", type=float, default=5.0, help="wait after the last post")
    parser.add_argument(
        "--web-workers",
        type=int,
        default=0,
        help="uvicorn --workers (default: 2 with Redis, else 1)",
    )
    parser.add_argument(
        "--refetch",
        action="store_true",
        help="listeners also show each newer version, as boards do: apply a pushed card, "
        "else re-fetch",
    )
    parser.add_argument(
        "--streams",
        type=int,
        default=0,
        help="waves mode: open this many streams in waves (--wave, --every), then post",
    )
    parser.add_argument("--wave", type=int, default=50, help="waves mode: streams per wave")
    parser.add_argument("--every", type=float, default=0.5, help="waves mode: seconds apart")
    parser.add_argument("--json", type=Path, help="also write the raw figures here")
    parser.add_argument("--logs", type=Path, help="keep the server's logs in this folder")
    parser.add_argument(
        "--settings",
        default="config.settings",
        help="DJANGO_SETTINGS_MODULE of the server, for experiments",
    )
    args = parser.parse_args()
    if args.streams:
        return main_waves(args, parser)
    cfg = Settings(args.listeners, args.posters, args.posts, args.seconds, args.drain, args.refetch)
    if not 1 <= cfg.listeners <= 200 or not 1 <= cfg.posts <= 5000 or cfg.seconds > 600:
        parser.error("bounded runs only: 1-200 listeners, 1-5000 posts, at most 600 s")

    with tempfile.TemporaryDirectory(prefix="leakseal-bench-") as tmp:
        stack = Stack.from_environment(Path(tmp), suffix="_bench")
        stack.web_workers = args.web_workers or (2 if stack.redis_url else 1)
        stack.settings_module = args.settings
        print(f"Preparing {stack.kind} ({stack.web_workers} web process(es)) …", flush=True)
        stack.prepare(extra_members=())
        retro = add_participants(stack, cfg.listeners + cfg.posters)
        try:
            stack.start()
            facts = machine(stack)
            print(f"Running against {stack.url}: retro {retro['retro']} …", flush=True)
            report = asyncio.run(drive(stack, retro, cfg))
        except BaseException:
            print(stack.log_tail(), file=sys.stderr)
            raise
        finally:
            stack.stop()
            stack.drop()
            if args.logs:
                args.logs.mkdir(parents=True, exist_ok=True)
                for log in Path(tmp).glob("*.log"):
                    shutil.copy(log, args.logs / log.name)
    print_report(facts, cfg, report)
    if args.json:
        args.json.write_text(json.dumps({"machine": facts, "load": vars(cfg), **report}, indent=2))
    lost_or_doubled = report["lost"] or report["doubled"]
    return 1 if lost_or_doubled or report["posts_ok"] < report["posts"] else 0


def main_waves(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    cfg = Waves(
        args.streams, args.wave, args.every, args.posters, args.posts, args.seconds, args.drain
    )
    if not 1 <= cfg.streams <= 2000 or not 1 <= cfg.wave <= cfg.streams or cfg.every <= 0:
        parser.error("bounded runs only: 1-2000 streams, 1 <= --wave <= --streams, --every > 0")
    if not 1 <= cfg.posts <= 5000 or cfg.seconds > 600:
        parser.error("bounded runs only: 1-5000 posts, at most 600 s")
    files = raise_open_files_limit(cfg.streams)
    with tempfile.TemporaryDirectory(prefix="leakseal-bench-") as tmp:
        stack = Stack.from_environment(Path(tmp), suffix="_bench")
        stack.web_workers = args.web_workers or (2 if stack.redis_url else 1)
        stack.settings_module = args.settings
        print(f"Preparing {stack.kind} ({stack.web_workers} web process(es)) …", flush=True)
        stack.prepare(extra_members=())
        retro = add_participants(stack, cfg.streams + cfg.posters, sessions=cfg.streams)
        try:
            stack.start()
            facts = machine(stack)
            facts["open files limit (ulimit -n)"] = files
            facts["pool"] = (
                "DB_POOL_MAX_SIZE="
                + os.environ.get("DB_POOL_MAX_SIZE", "10 (default)")
                + " per process"
                if stack.database_url and os.environ.get("DB_POOL", "1") != "0"
                else "none"
            )
            print(f"Running against {stack.url}: retro {retro['retro']} …", flush=True)
            report = asyncio.run(drive_waves(stack, retro, cfg))
            report["server_log_errors"] = sum(
                log.read_text(errors="replace").count("Traceback")
                for log in Path(tmp).glob("*.log")
            )
        except BaseException:
            print(stack.log_tail(), file=sys.stderr)
            raise
        finally:
            stack.stop()
            stack.drop()
            if args.logs:
                args.logs.mkdir(parents=True, exist_ok=True)
                for log in Path(tmp).glob("*.log"):
                    shutil.copy(log, args.logs / log.name)
    print_waves_report(facts, cfg, report)
    print(f"- tracebacks in the server's logs: {report['server_log_errors']}")
    if args.json:
        args.json.write_text(json.dumps({"machine": facts, "load": vars(cfg), **report}, indent=2))
    failed = report["opening_errors"] or report["opened"] < cfg.streams or report["lost"]
    return 1 if failed or report["doubled"] or report["posts_ok"] < report["posts"] else 0


if __name__ == "__main__":
    sys.exit(main())
