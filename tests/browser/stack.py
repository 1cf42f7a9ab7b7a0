"""A real Leakseal to drive from outside: its own database, uvicorn and a Celery worker.

Used by the browser tests (tests/browser/conftest.py) and the benchmark (bench/live_board.py).
Nothing here touches pytest-django's test database: the processes get a database of their
own, prepared with `migrate` and `seed_demo` exactly as `make run` prepares one.

- Embedded default (no DATABASE_URL): a temporary LEAKSEAL_VAR_DIR holds the SQLite file and
  the file-system broker that the web process and the worker share.
- DATABASE_URL set: a separate PostgreSQL database named after it plus a suffix, created
  here and dropped afterwards; REDIS_URL (if set) is the broker, the cache and the fan-out.
"""

from __future__ import annotations

import email
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import httpx

ROOT = Path(__file__).resolve().parents[2]
DEMO_PASSWORD = "leakseal-demo"  # published demo login (demo/seed_data.py)
EXTRA_PASSWORD = "leakseal-second-engineer"  # for users this module adds
TEAM = "demo"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def own_database_url(base_url: str, suffix: str) -> str:
    """`base_url` with the database name + `suffix`: same server, a database of our own."""
    parts = urlsplit(base_url)
    name = parts.path.lstrip("/") or "leakseal"
    return urlunsplit(parts._replace(path=f"/{name}{suffix}"))


def _maintenance(url: str) -> tuple[str, str]:
    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    return urlunsplit(parts._replace(path="/postgres")), name


def pg_recreate(url: str) -> None:
    import psycopg
    from psycopg import sql

    admin_url, name = _maintenance(url)
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


def pg_drop(url: str) -> None:
    import psycopg
    from psycopg import sql

    admin_url, name = _maintenance(url)
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


class StackError(RuntimeError):
    pass


@dataclass
class Stack:
    """One Leakseal: web (uvicorn, ASGI) and worker (Celery, solo pool) on a database of its own."""

    var_dir: Path
    database_url: str = ""  # "" = the embedded SQLite file in var_dir
    redis_url: str = ""  # "" = file-system broker in var_dir, local-memory cache
    port: int = field(default_factory=free_port)
    web_workers: int = 1
    access_log: bool = False  # uvicorn's access log, as docker-compose.yml runs it
    settings_module: str = "config.settings"
    extra_env: dict[str, str] = field(default_factory=dict)  # settings of this stack only
    web: subprocess.Popen[bytes] | None = None
    worker: subprocess.Popen[bytes] | None = None
    _logs: list[Path] = field(default_factory=list)

    @classmethod
    def from_environment(cls, var_dir: Path, *, suffix: str, web_workers: int = 1) -> Stack:
        """PostgreSQL (+ Redis) when DATABASE_URL is set, else the embedded default."""
        base = os.environ.get("DATABASE_URL", "")
        return cls(
            var_dir=var_dir,
            database_url=own_database_url(base, suffix) if base else "",
            redis_url=os.environ.get("REDIS_URL", "") if base else "",
            web_workers=web_workers,
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def mail_dir(self) -> Path:
        return self.var_dir / "mail"

    def sent_emails(self) -> list[str]:
        """Every email the stack has sent, as raw text, oldest first."""
        if not self.mail_dir.exists():
            return []
        files = sorted(self.mail_dir.glob("*.log"), key=lambda f: f.stat().st_mtime_ns)
        messages: list[str] = []
        for file in files:
            # The file backend writes one file per connection, each message ending in a rule.
            messages.extend(m for m in file.read_text().split("-" * 79) if m.strip())
        return messages

    def latest_email_to(self, address: str) -> str:
        """The decoded body of the latest email sent to `address` (links are wrapped in the
        raw text, which is quoted-printable)."""
        for raw in reversed(self.sent_emails()):
            message = email.message_from_string(raw.strip())
            if message["To"] == address:
                payload = message.get_payload(decode=True)
                assert isinstance(payload, bytes)
                return payload.decode(message.get_content_charset() or "utf-8")
        raise AssertionError(f"no email to {address} among {len(self.sent_emails())}")

    @property
    def kind(self) -> str:
        db = "PostgreSQL" if self.database_url else "SQLite"
        broker = "Redis" if self.redis_url else "file-system broker"
        return f"{db} + {broker}"

    def env(self) -> dict[str, str]:
        env = {
            k: v
            for k, v in os.environ.items()
            if k not in {"DATABASE_URL", "REDIS_URL", "CELERY_TASK_ALWAYS_EAGER"}
        }
        env.update(
            LEAKSEAL_VAR_DIR=str(self.var_dir),
            DJANGO_SETTINGS_MODULE=self.settings_module,
            DEBUG="1",
            SITE_URL=self.url,
            LOG_LEVEL="WARNING",
            PYTHONUNBUFFERED="1",
            # Django's file backend instead of the console: the same sending code, and a test
            # reads what was sent (`sent_emails`).
            EMAIL_BACKEND="django.core.mail.backends.filebased.EmailBackend",
            EMAIL_FILE_PATH=str(self.mail_dir),
        )
        if self.database_url:
            env["DATABASE_URL"] = self.database_url
        if self.redis_url:
            env["REDIS_URL"] = self.redis_url
        return {**env, **self.extra_env}

    # --- Preparing the database.

    def manage(self, *args: str, extra_env: dict[str, str] | None = None) -> str:
        """Run `manage.py ARGS` against this stack's database; its stdout, or StackError."""
        result = subprocess.run(  # noqa: S603 - our own interpreter and manage.py
            [sys.executable, "manage.py", *args],
            cwd=ROOT,
            env={**self.env(), **(extra_env or {})},
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        if result.returncode != 0:
            raise StackError(f"manage.py {' '.join(args)} failed:\n{result.stdout}{result.stderr}")
        return result.stdout

    def prepare(self, extra_members: tuple[str, ...] = ("engineer2",)) -> None:
        """A fresh database with the demo team and `extra_members` as members of it."""
        self.var_dir.mkdir(parents=True, exist_ok=True)
        if self.database_url:
            pg_recreate(self.database_url)
        else:
            (self.var_dir / "leakseal.sqlite3").unlink(missing_ok=True)
        if self.redis_url:
            # The Redis database is the browser tests' own (scripts/pytest_both.sh): what an
            # earlier run left there would meet this fresh database. Tasks in the queue would
            # act on it, and the cache would still hold its sign-in lockouts (15 minutes: a
            # second run within them found the test account locked) and its rendered cards.
            import redis

            redis.Redis.from_url(self.redis_url).flushdb()
        # One interpreter for all three commands: Django starts once instead of three times.
        script = (
            "import django; django.setup()\n"
            "from django.core.management import call_command\n"
            "call_command('migrate', interactive=False, verbosity=0)\n"
            "call_command('seed_demo')\n"
            f"for name in {list(extra_members)!r}:\n"
            f"    call_command('add_member', {TEAM!r}, name, 'member', create_user=True)\n"
        )
        self.python(script, extra_env={"LEAKSEAL_PASSWORD": EXTRA_PASSWORD})

    def python(self, script: str, *, extra_env: dict[str, str] | None = None) -> str:
        """Run a Python script with Django's settings for this stack; its stdout."""
        result = subprocess.run(  # noqa: S603 - our own interpreter and script
            [sys.executable, "-c", script],
            cwd=ROOT,
            env={**self.env(), **(extra_env or {})},
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        if result.returncode != 0:
            raise StackError(f"script failed:\n{script}\n{result.stdout}{result.stderr}")
        return result.stdout

    def drop(self) -> None:
        if self.database_url:
            pg_drop(self.database_url)

    # --- Processes.

    def _spawn(self, name: str, argv: list[str]) -> subprocess.Popen[bytes]:
        log = self.var_dir / f"{name}.log"
        self._logs.append(log)
        with log.open("ab") as out:
            # A session of its own, so that stopping it also stops the children it forks.
            return subprocess.Popen(  # noqa: S603 - fixed argv of our own interpreter
                argv,
                cwd=ROOT,
                env=self.env(),
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def start(self) -> None:
        self.start_worker()
        self.start_web()

    def start_worker(self) -> None:
        argv = [
            sys.executable, "-m", "celery", "-A", "config", "worker",
            "--pool", "solo", "--loglevel", "INFO", "-n", f"leakseal-{self.port}@%h",
            "--without-mingle", "--without-gossip",
        ]  # fmt: skip
        self.worker = self._spawn("worker", argv)
        self._wait_for_log(self.worker, self.var_dir / "worker.log", " ready.", what="worker")

    def start_web(self) -> None:
        argv = [
            sys.executable, "-m", "uvicorn", "config.asgi:application",
            "--host", "127.0.0.1", "--port", str(self.port),
            # Open event streams never end by themselves; a restart must not wait for them.
            "--timeout-graceful-shutdown", "1",
        ]  # fmt: skip
        if not self.access_log:
            argv.append("--no-access-log")
        if self.web_workers > 1:
            argv += ["--workers", str(self.web_workers)]
        self.web = self._spawn("web", argv)
        self._wait_for_http(self.web)

    def stop_web(self) -> None:
        _stop(self.web)
        self.web = None

    def restart_web(self) -> None:
        """Stop the web server (SIGTERM, as a deploy does) and start it on the same port."""
        self.stop_web()
        self.start_web()

    def stop(self) -> None:
        _stop(self.web)
        # An idle worker's warm shutdown waits ~4 s for the broker's poll loop; this throwaway
        # one may be killed after a second.
        _stop(self.worker, grace=1.0)
        self.web = self.worker = None

    def web_pids(self) -> list[int]:
        """The uvicorn processes: the server and, with --workers, its children."""
        import psutil

        if self.web is None:
            return []
        parent = psutil.Process(self.web.pid)
        return [parent.pid, *(c.pid for c in parent.children(recursive=True))]

    def log_tail(self, lines: int = 40) -> str:
        text = []
        for log in dict.fromkeys(self._logs):
            if log.exists():
                tail = log.read_text(errors="replace").splitlines()[-lines:]
                text.append(f"--- {log.name} ---\n" + "\n".join(tail))
        return "\n".join(text)

    def pool_holders(self, timeout: float = 10) -> list[str]:
        """Who holds the web process's pooled database connections now: it logs them on
        SIGUSR1 (config/postgresql/base.py). Empty without the pool (SQLite)."""
        if not self.database_url or self.web is None or self.web_workers != 1:
            return []
        log = self.var_dir / "web.log"
        marker = "Pool connections held ("
        said = log.read_text(errors="replace").count(marker)
        os.kill(self.web.pid, signal.SIGUSR1)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            text = log.read_text(errors="replace")
            if text.count(marker) > said:
                block = text[text.rindex(marker) :].splitlines()
                held = []
                for line in block[1:]:
                    if not line.startswith("  held by "):
                        break
                    held.append(line.strip())
                return held
            time.sleep(0.1)
        raise StackError(
            f"the web process did not say who holds its connections\n{self.log_tail()}"
        )

    def pool_report(self) -> str:
        """The web server's first account of a full pool: its figures and who held each
        connection (config/errors.py `_pool_stats`), or "" if the pool never ran dry."""
        for log in dict.fromkeys(self._logs):
            if not log.exists():
                continue
            lines = log.read_text(errors="replace").splitlines()
            for at, line in enumerate(lines):
                if "No database connection came free" in line:
                    held = [x for x in lines[at + 1 : at + 12] if x.startswith("  held by")]
                    return "\n".join([line, *held])
        return ""

    def _wait_for_http(self, proc: subprocess.Popen[bytes], timeout: float = 40) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise StackError(f"uvicorn exited with {proc.returncode}\n{self.log_tail()}")
            try:
                if httpx.get(f"{self.url}/accounts/login/", timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        raise StackError(f"uvicorn did not answer within {timeout} s\n{self.log_tail()}")

    def _wait_for_log(
        self, proc: subprocess.Popen[bytes], log: Path, marker: str, *, what: str
    ) -> None:
        deadline = time.monotonic() + 40
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise StackError(f"{what} exited with {proc.returncode}\n{self.log_tail()}")
            if log.exists() and marker in log.read_text(errors="replace"):
                return
            time.sleep(0.1)
        raise StackError(f"{what} did not become ready\n{self.log_tail()}")


def _stop(proc: subprocess.Popen[bytes] | None, grace: float = 10.0) -> None:
    if proc is None or proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    except ProcessLookupError:
        pass
