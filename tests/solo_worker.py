"""A real Celery worker (solo pool) on the test database, for tests that need one: it runs
in its own process with the environment a process of the test's own would have, on the
database the test's rows are in (shared_db's copy on SQLite, the test database on
PostgreSQL), and its log is a file the test reads."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from django.conf import settings
from django.db import connection

from tests.facilitation.shared_db import shareable_database

WORKER = ["-m", "celery", "-A", "config", "worker", "--pool", "solo", "-Q", "celery"]
QUIET = ["--without-gossip", "--without-mingle", "--loglevel", "INFO"]


def database_url() -> str | None:
    """The test database as DATABASE_URL, or None for SQLite (the file in the var folder)."""
    if connection.vendor != "postgresql":
        return None
    db = connection.settings_dict
    auth = quote(db["USER"]) + (":" + quote(db["PASSWORD"]) if db["PASSWORD"] else "")
    return f"postgres://{auth}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


@dataclass
class Worker:
    env: dict[str, str]  # for other processes of the test (a web side, a shell)
    base: Path  # the project's folder, their working directory
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text()


@contextmanager
def solo_worker(tmp_path: Path) -> Iterator[Worker]:
    """Within the block a worker takes the tasks the test's processes queue; stopped after.

    Use in `django_db(transaction=True)` tests, whose rows are committed.
    """
    var = tmp_path / "var"
    var.mkdir()
    env = {**os.environ, "LEAKSEAL_VAR_DIR": str(var), "DJANGO_SETTINGS_MODULE": "config.settings"}
    env.pop("DATABASE_URL", None)
    if url := database_url():
        env["DATABASE_URL"] = url
    worker = Worker(env=env, base=Path(settings.BASE_DIR), log_path=tmp_path / "worker.log")
    with shareable_database(var), worker.log_path.open("w") as log:
        process = subprocess.Popen(  # noqa: S603 - our own interpreter and Celery
            [sys.executable, *WORKER, *QUIET],
            cwd=worker.base,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            yield worker
        finally:
            process.terminate()
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
