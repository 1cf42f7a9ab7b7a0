"""Real Celery workers pushing tickets to a fake tracker: the harness of the exactly-once tests.

Used by tests/integrations/test_exactly_once.py and bench/tracker_push.py. It builds on
tests/browser/stack.py: a database of its own (PostgreSQL when DATABASE_URL is set, else a
SQLite file in a temporary folder), Redis (REDIS_URL) or the file-system broker, and worker
processes started, killed and stopped here. No web server: a retro is closed by a Python
process of its own (`close`), as a request would, and committed, so the workers see it.

The fake tracker runs in the calling process (a thread, tests/fakes/jira.py); the workers
reach it over loopback through the connection's base URL. What Leakseal recorded is read
straight from the stack's database, so polling costs a query and not a Django start-up.

Settings of the processes: tests/integrations/worker_settings.py (a short Redis visibility
timeout, a broken broker for one process) on top of environment variables (`extra_env`).
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from tests.browser.stack import ROOT, Stack, StackError, _stop, pg_drop, pg_recreate
from tests.fakes import accounts

SETTINGS = "tests.integrations.worker_settings"
# The keys kombu's Redis transport keeps the default queue and its taken messages in.
BROKER_KEYS = ("celery", "unacked", "unacked_index", "unacked_mutex")

WORLD = """
import json
from datetime import timedelta
import django
django.setup()
from django.contrib.auth.models import User
from django.utils import timezone
from escapes.models import Escape
from integrations.models import TrackerConnection, TrackerKind
from retros import services
from retros.models import ActionKind, Phase
from teams.models import Role
from teams.services import membership_set, team_close_rule_set, team_create

spec = json.loads({spec!r})
team = team_create(name=spec["slug"].title(), slug=spec["slug"], timezone_name="UTC")
# The pushes are under test, not the close rule: actions alone let this retro close.
team_close_rule_set(team=team, requires_root_cause=False)
fred = User.objects.create_user(spec["slug"] + "-fred", password=None)
membership_set(team=team, user=fred, role=Role.FACILITATOR)
connection = TrackerConnection(
    team=team, kind=TrackerKind.JIRA_CLOUD, base_url=spec["url"], project=spec["project"],
    board_id=spec["board"], issue_type="Task", account_email=spec["email"],
)
connection.token = spec["token"]
connection.save()
now = timezone.now()
escapes = [
    Escape.objects.create(
        team=team, title=f"Escape {{i + 1}}", merged_at=now - timedelta(days=9),
        detected_at=now - timedelta(days=1),
    )
    for i in range(spec["escapes"])
]
retro = services.retro_create(team=team, facilitator=fred, title="Push", escapes=escapes)
for phase in (Phase.CATEGORIZE, Phase.WHYS, Phase.ACTIONS):
    services.retro_advance(retro=retro, expected_phase=retro.phase, to_phase=phase)
actions = [
    services.action_add(
        retro=retro, escape=escapes[i % len(escapes)], kind=ActionKind.PROCESS_CHANGE,
        stage=None, title=f"Guardrail {{i + 1}}", owner=fred,
    )
    for i in range(spec["actions"])
]
print(json.dumps({{
    "slug": team.slug, "retro": retro.pk, "facilitator": fred.pk,
    "actions": [{{"id": a.pk, "label": a.label}} for a in actions],
}}))
"""

CLOSE = """
import django
django.setup()
from django.contrib.auth.models import User
from retros import services
from retros.models import Retrospective

services.retro_close(
    retro=Retrospective.objects.get(pk={retro}), by=User.objects.get(pk={facilitator})
)
print("closed")
"""

SEND = """
import django
django.setup()
from config.celery import app
app.send_task({name!r})
"""

ACTIONS_SQL = """
SELECT a.id, a.push_state, a.external_key, a.sprint, a.last_error, p.state, p.attempts
FROM retros_preventativeaction a LEFT JOIN integrations_ticketpush p ON p.action_id = a.id
WHERE a.retro_id = {param} ORDER BY a.id
"""

AGE_SQL = """
UPDATE integrations_ticketpush SET first_queued_at = {param}
WHERE action_id IN (SELECT id FROM retros_preventativeaction WHERE retro_id = {param})
"""


@dataclass(frozen=True)
class World:
    """A team connected to a fake Jira, and its retro in the actions phase."""

    slug: str
    retro: int
    facilitator: int
    actions: list[dict[str, Any]]  # {"id", "label"} per action, in creation order

    @property
    def labels(self) -> list[str]:
        return [a["label"] for a in self.actions]


@dataclass(frozen=True)
class ActionRow:
    """What Leakseal shows of one action's push."""

    id: int
    push_state: str
    external_key: str
    sprint: str
    last_error: str
    outbox_state: str | None
    attempts: int | None


@dataclass
class WorkerStack(Stack):
    """A database, a broker and Celery workers: no web server."""

    settings_module: str = SETTINGS
    extra_env: dict[str, str] = field(default_factory=dict)
    workers: list[subprocess.Popen[bytes]] = field(default_factory=list)
    # True while the running workers have settings of a test's own (start_workers' extra_env).
    custom_workers: bool = False
    _started: int = 0

    def env(self) -> dict[str, str]:
        return {**super().env(), **self.extra_env}

    def prepare(self, extra_members: tuple[str, ...] = ()) -> None:
        """A fresh, migrated, empty database and an empty queue."""
        self.var_dir.mkdir(parents=True, exist_ok=True)
        if self.database_url:
            pg_recreate(self.database_url)
        else:
            (self.var_dir / "leakseal.sqlite3").unlink(missing_ok=True)
        self.flush_broker()
        self.python(
            "import django; django.setup()\n"
            "from django.core.management import call_command\n"
            "call_command('migrate', interactive=False, verbosity=0)\n"
        )

    def flush_broker(self) -> None:
        """Tasks of an earlier run would act on this fresh database: drop them."""
        if self.redis_url:
            import redis

            redis.Redis.from_url(self.redis_url).delete(*BROKER_KEYS)

    def drop(self) -> None:
        self.flush_broker()
        if self.database_url:
            pg_drop(self.database_url)

    # --- Workers.

    def start_workers(
        self, count: int = 1, *, concurrency: int = 1, extra_env: dict[str, str] | None = None
    ) -> None:
        """`count` worker processes (a solo pool for one task at a time, else prefork)."""
        pool = ["--pool", "solo"] if concurrency == 1 else ["--concurrency", str(concurrency)]
        env = {**self.env(), **(extra_env or {})}
        started = []
        for _ in range(count):
            self._started += 1
            name = f"worker-{self._started}"
            argv = [
                sys.executable, "-m", "celery", "-A", "config", "worker", *pool,
                "--loglevel", "INFO", "-n", f"{name}-{self.port}@%h",
                "--without-mingle", "--without-gossip",
            ]  # fmt: skip
            log = self.var_dir / f"{name}.log"
            self._logs.append(log)
            with log.open("ab") as out:
                proc = subprocess.Popen(  # noqa: S603 - fixed argv of our own interpreter
                    argv, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
                    start_new_session=True,  # so a kill reaches the pool's children too
                )  # fmt: skip
            started.append((proc, log))
        self.custom_workers = self.custom_workers or bool(extra_env)
        for proc, log in started:
            self.workers.append(proc)
            self._wait_for_log(proc, log, " ready.", what=log.stem)

    def kill_workers(self) -> None:
        """SIGKILL, as the OOM killer or a lost machine does: no goodbye, no ack, no reject."""
        for proc in self.workers:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)
        self.workers = []
        self.custom_workers = False

    def stop(self) -> None:
        for proc in self.workers:
            _stop(proc, grace=5.0)
        self.workers = []
        self.custom_workers = False
        super().stop()

    def send_task(self, name: str) -> None:
        """Queue the task `name` (no arguments) as beat would."""
        self.python(SEND.format(name=name))

    # --- The data a scenario acts on.

    def world(self, tracker_url: str, *, slug: str, actions: int = 1) -> World:
        spec = {
            "slug": slug,
            "url": tracker_url,
            "project": accounts.JIRA_PROJECT,
            "board": accounts.JIRA_BOARD,
            "email": accounts.JIRA_EMAIL,
            "token": accounts.JIRA_TOKEN,
            "actions": actions,
            "escapes": min(actions, 10),
        }
        out = self.python(WORLD.format(spec=json.dumps(spec)))
        return World(**json.loads(out.strip().splitlines()[-1]))

    def close(self, world: World, *, broker_url: str = "") -> subprocess.CompletedProcess[str]:
        """Close the retro in a process of its own, whose broker may be `broker_url`."""
        env = {**self.env(), **({"LEAKSEAL_TEST_BROKER_URL": broker_url} if broker_url else {})}
        return subprocess.run(  # noqa: S603 - our own interpreter and script
            [sys.executable, "-c", CLOSE.format(retro=world.retro, facilitator=world.facilitator)],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    # --- What Leakseal recorded.

    @contextmanager
    def db(self) -> Iterator[Any]:
        if self.database_url:
            import psycopg

            with psycopg.connect(self.database_url, autocommit=True) as pg:
                yield pg
        else:
            lite = sqlite3.connect(self.var_dir / "leakseal.sqlite3", timeout=20)
            try:
                yield lite
            finally:
                lite.close()

    def rows(self, world: World) -> list[ActionRow]:
        param = "%s" if self.database_url else "?"
        with self.db() as conn:
            found = conn.execute(ACTIONS_SQL.format(param=param), (world.retro,)).fetchall()
        return [ActionRow(*row) for row in found]

    def age_outbox(self, world: World, *, seconds: float) -> None:
        """Date the retro's outbox rows `seconds` back: time passing, without the sleep."""
        then = datetime.now(UTC) - timedelta(seconds=seconds)
        param = "%s" if self.database_url else "?"
        # Django keeps SQLite datetimes as naive UTC text.
        value: Any = then if self.database_url else then.replace(tzinfo=None).isoformat(" ")
        with self.db() as conn:
            conn.execute(AGE_SQL.format(param=param), (value, world.retro))
            if not self.database_url:
                conn.commit()

    def wait_for(
        self, world: World, done: Callable[[list[ActionRow]], bool], *, timeout: float = 60
    ) -> list[ActionRow]:
        """The rows once `done(rows)`; StackError with the rows and the logs after `timeout`."""
        deadline = time.monotonic() + timeout
        while True:
            rows = self.rows(world)
            if done(rows):
                return rows
            for proc in self.workers:
                if proc.poll() is not None:
                    raise StackError(f"a worker exited with {proc.returncode}\n{self.log_tail()}")
            if time.monotonic() > deadline:
                raise StackError(f"not done within {timeout} s: {rows}\n{self.log_tail(80)}")
            time.sleep(0.1)

    def wait_until_pushed(self, world: World, *, timeout: float = 60) -> list[ActionRow]:
        return self.wait_for(
            world,
            lambda rows: bool(rows) and all(r.push_state == "pushed" for r in rows),
            timeout=timeout,
        )


def worker_stack(var_dir: Path, *, suffix: str, extra_env: dict[str, str]) -> WorkerStack:
    """PostgreSQL when DATABASE_URL is set (a database of its own), Redis when REDIS_URL is."""
    from tests.browser.stack import own_database_url

    base = os.environ.get("DATABASE_URL", "")
    return WorkerStack(
        var_dir=var_dir,
        database_url=own_database_url(base, suffix) if base else "",
        redis_url=os.environ.get("REDIS_URL", ""),
        extra_env=extra_env,
    )


def tickets_by_label(tickets: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """The fake's tickets under each leakseal-<uuid> label they carry."""
    found: dict[str, list[dict[str, Any]]] = {}
    for ticket in tickets:
        for label in ticket.get("labels") or []:
            if label.startswith("leakseal-"):
                found.setdefault(label, []).append(ticket)
    return found
