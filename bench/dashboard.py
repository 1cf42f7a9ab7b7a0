"""Dashboard benchmark: 1,000,000 escapes over 50 teams and 3 years, on PostgreSQL.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/leakseal_bench \\
    REDIS_URL=redis://127.0.0.1:6379/14 .venv/bin/python bench/dashboard.py
    … bench/dashboard.py --keep       # keep the database for the next run
    … bench/dashboard.py --reuse      # reuse it (and keep it): skips the 1M build

It builds a Leakseal of its own: a database named after DATABASE_URL plus "_dash", `migrate`,
`generate_escapes --teams 50 --escapes 1000000 --years 3 --seed 1 --no-rollups` (timed), then

1. the full rollup recompute (`rollups_recompute_all`, what beat runs), from empty and once
   more with nothing changed, timed in a process of its own with its peak RSS;
2. the incremental recompute after one change: an escape of the largest team changed through
   `escapes.services.escape_update`, its on-commit task run synchronously
   (CELERY_TASK_ALWAYS_EAGER), and the task alone (`escapes.rollup_recompute`);
3. uvicorn on loopback (no Celery worker: nothing is queued while it measures), a manager who
   is a viewer of all 50 teams signed in through the sign-in form, and for several ranges
   and periods N sequential GETs after a warm-up of the team page /t/<team>/dashboard/ (the
   largest team), the all-teams page /dashboard/, and the same through the API
   (/api/v1/teams/<team>/dashboard, /api/v1/dashboard, bearer token). The first request of
   each kind (cold: nothing cached in the process) is reported on its own.

Reported: generation time, recompute times and peak RSS, latency p50/p95/max per scenario
(target: page p95 under 150 ms), peak RSS of the server, database sizes, the machine. It
reports a missed target plainly; the exit status is 1 only when a request failed.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import httpx
import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.live_board import machine, mib, percentile  # noqa: E402
from tests.browser.stack import Stack, own_database_url, pg_drop, pg_recreate  # noqa: E402

MANAGER = "bench-manager"
SESSION_COOKIE = "sessionid"  # Django's default SESSION_COOKIE_NAME, which Leakseal keeps
# Production settings need these; loopback-only values for a throwaway database.
SECRET = "bench-dashboard-secret-key-not-for-production"
FERNET_KEY = "YmVuY2gtZGFzaGJvYXJkLWtleS1ub3Qtc2VjcmV0ISE="
TARGET_P95_MS = 150.0
BUILD_TIMEOUT = 3600  # seconds: the 1M build takes minutes; a hang must still end


# --- Running code against the bench database ----------------------------------------------


@dataclass
class BenchStack(Stack):
    """The shared Stack, but served as deployed: DEBUG off (no SQL recorded per query,
    manifest static files) unless --debug. Plain HTTP on loopback, so no TLS redirect."""

    production: bool = True

    def env(self) -> dict[str, str]:
        env = super().env()
        if self.production:
            env.update(
                DEBUG="0",
                SECRET_KEY=SECRET,
                LEAKSEAL_CREDENTIAL_KEYS=FERNET_KEY,
                ALLOWED_HOSTS="127.0.0.1",
                SECURE_SSL_REDIRECT="0",
                STATIC_ROOT=str(self.var_dir / "static"),
            )
        return env


def run_python(stack: Stack, script: str, *, eager: bool = False, timeout: float = 1800) -> Any:
    """Run `script` with Django set up against the stack's database; the JSON of its last line."""
    env = stack.env()
    if eager:
        env["CELERY_TASK_ALWAYS_EAGER"] = "1"
    prelude = "import json, resource, time\nimport django\ndjango.setup()\n"
    result = subprocess.run(
        [sys.executable, "-c", prelude + script],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"script failed:\n{script}\n{result.stdout}{result.stderr}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def existing_volume(stack: Stack) -> dict[str, int] | None:
    """Teams and escapes already in the bench database, or None when there is none."""
    import psycopg

    try:
        with psycopg.connect(stack.database_url) as conn:
            teams = conn.execute("SELECT count(*) FROM teams_team").fetchone()
            escapes = conn.execute("SELECT count(*) FROM escapes_escape").fetchone()
    except psycopg.Error:
        return None
    return {"teams": teams[0] if teams else 0, "escapes": escapes[0] if escapes else 0}


def build(stack: Stack, cfg: Config) -> dict[str, Any]:
    """A fresh database, migrated, with the generated volume; how long the generation took."""
    pg_recreate(stack.database_url)
    stack.manage("migrate", "--noinput", "-v0")
    argv = [
        sys.executable, "manage.py", "generate_escapes", "--teams", str(cfg.teams),
        "--escapes", str(cfg.escapes), "--years", str(cfg.years), "--seed", str(cfg.seed),
        "--no-rollups",
    ]  # fmt: skip
    started = time.monotonic()
    proc = subprocess.Popen(argv, cwd=ROOT, env=stack.env(), stdout=subprocess.PIPE, text=True)
    peak = 0
    while proc.poll() is None:  # sample its RSS while the progress bar goes to our stderr
        with contextlib.suppress(psutil.NoSuchProcess):
            peak = max(peak, psutil.Process(proc.pid).memory_info().rss)
        time.sleep(0.5)
        if time.monotonic() - started > BUILD_TIMEOUT:
            proc.kill()
            raise RuntimeError(f"generate_escapes did not finish within {BUILD_TIMEOUT} s")
    out = proc.stdout.read() if proc.stdout else ""
    if proc.returncode != 0:
        raise RuntimeError(f"generate_escapes failed:\n{out}")
    return {
        "generate_seconds": round(time.monotonic() - started, 1),
        "generate_output": out.strip(),
        "generate_rss_peak": peak,
    }


# --- Recompute ---------------------------------------------------------------------------

FULL_RECOMPUTE = """
from insights.models import EscapeRollup, ReleaseRollup
from insights.rollups import rollups_recompute_all
rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
EscapeRollup.objects.all().delete()  # from empty, also when --reuse finds them computed
ReleaseRollup.objects.all().delete()
runs = []
for _ in range(2):  # from empty, then again with nothing changed (beat's backstop)
    started = time.monotonic()
    written = rollups_recompute_all()
    runs.append({"seconds": round(time.monotonic() - started, 2), "written": written})
print(json.dumps({
    "runs": runs,
    "rows": EscapeRollup.objects.count(),
    "rss_before": rss_before,
    "rss_peak": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
}))
"""

INCREMENTAL = """
from datetime import timedelta
from django.db.models import Count, F
from escapes.models import Escape
from insights.models import EscapeRollup
from escapes.services import escape_update
from insights.tasks import rollup_recompute_task
from teams.models import Team

team = Team.objects.annotate(n=Count("escapes")).order_by("-n").first()
tz = team.tzinfo
changes, tasks = [], []
escapes = list(
    Escape.objects.filter(
        team=team, merged_at__lte=F("detected_at"), released_at__lte=F("detected_at")
    )
    .order_by("-detected_at")[50:50 + REPEATS]
)
for escape in escapes:
    month = escape.detected_at.astimezone(tz).date().replace(day=1)
    before = EscapeRollup.objects.get(team=team, month=month)
    severity = "critical" if escape.severity != "critical" else "high"
    started = time.monotonic()
    escape_update(escape=escape, data={"severity": severity})  # its task runs on commit
    changes.append(time.monotonic() - started)
    after = EscapeRollup.objects.get(team=team, month=month)
    day = escape.detected_at.astimezone(tz).date().isoformat()
    started = time.monotonic()
    rollup_recompute_task.apply(args=(team.pk, [day]))
    tasks.append(time.monotonic() - started)
print(json.dumps({
    "team": team.slug,
    "team_escapes": team.n,
    "month_escapes": after.escapes,
    "rollup_updated_on_commit": after.digest != before.digest,
    "change_with_task_seconds": changes,
    "task_seconds": tasks,
    "rss_peak": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
}))
"""

MANAGER_SETUP = f"""
from importlib import import_module
from django.conf import settings
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
from django.contrib.auth.models import User
from teams.models import Role, Team
from teams.services import api_token_create, membership_set

user, _ = User.objects.get_or_create(username={MANAGER!r})
# Signed in the way Django's test client's force_login does: the session cookie is sent by
# hand, as a browser behind TLS would (DEBUG off marks it Secure; this is plain loopback).
session = import_module(settings.SESSION_ENGINE).SessionStore()
session[SESSION_KEY] = str(user.pk)
session[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
session[HASH_SESSION_KEY] = user.get_session_auth_hash()
session.save()
for team in Team.objects.all():
    membership_set(team=team, user=user, role=Role.VIEWER)
user.api_tokens.all().delete()
_, raw = api_token_create(user=user, name="dashboard bench")
from django.db.models import Count
largest = Team.objects.annotate(n=Count("escapes")).order_by("-n").first()
print(json.dumps({{"token": raw, "session": session.session_key, "team": largest.slug,
                   "team_escapes": largest.n, "teams": Team.objects.count()}}))
"""


# --- Requests ----------------------------------------------------------------------------


def scenarios(today: date) -> dict[str, dict[str, str]]:
    """Ranges and periods a manager looks at; dates are inclusive, in each team's zone."""
    three_years = (today - timedelta(days=3 * 365)).isoformat()
    return {
        "12 months by month (default)": {},
        "90 days by week": {"start": (today - timedelta(days=89)).isoformat(), "period": "week"},
        "3 years by month": {"start": three_years, "period": "month"},
        "3 years by week": {"start": three_years, "period": "week"},
        "12 months, critical only": {"severity": "critical"},
    }


@dataclass
class Timing:
    cold_ms: float = 0.0
    ms: list[float] = field(default_factory=list)
    statuses: set[int] = field(default_factory=set)
    bytes: int = 0

    def summary(self) -> dict[str, Any]:
        return {
            "cold_ms": round(self.cold_ms, 1),
            "p50_ms": round(percentile(self.ms, 0.50), 1),
            "p95_ms": round(percentile(self.ms, 0.95), 1),
            "max_ms": round(max(self.ms), 1) if self.ms else None,
            "n": len(self.ms),
            "statuses": sorted(self.statuses),
            "kb": round(self.bytes / 1024),
        }


def timed_gets(
    client: httpx.Client,
    url: str,
    params: dict[str, str],
    *,
    warmup: int,
    n: int,
    check: str,
    distinct: bool = False,
) -> Timing:
    """`distinct`: each request ends one day earlier than the one before, so no answer kept by
    the server (insights/dashboard_cache.py, keyed by the query) serves it: every one computed."""
    timing = Timing()
    for i in range(warmup + n):
        asked = dict(params)
        if distinct:
            asked["end"] = (date.today() - timedelta(days=i + 1)).isoformat()
        started = time.perf_counter()
        response = client.get(url, params=asked)
        took = (time.perf_counter() - started) * 1000
        timing.statuses.add(response.status_code)
        if response.status_code != 200 or check not in response.text:
            timing.statuses.add(-1 if response.status_code == 200 else response.status_code)
            print(f"  {url} {params}: HTTP {response.status_code} {response.text[:300]!r}")
        if i == 0:
            timing.cold_ms = took
        if i >= warmup:
            timing.ms.append(took)
            timing.bytes = len(response.content)
    return timing


class RssSampler(threading.Thread):
    def __init__(self, stack: Stack) -> None:
        super().__init__(daemon=True)
        self.stack, self.peak, self.stopping = stack, 0, threading.Event()

    def now(self) -> int:
        total = 0
        for pid in self.stack.web_pids():
            with contextlib.suppress(psutil.NoSuchProcess):
                total += psutil.Process(pid).memory_info().rss
        self.peak = max(self.peak, total)
        return total

    def run(self) -> None:
        while not self.stopping.is_set():
            self.now()
            time.sleep(0.1)


def measure_http(stack: Stack, who: dict[str, Any], cfg: Config) -> dict[str, Any]:
    today = date.today()
    team = who["team"]
    kinds = {
        "team page": (f"/t/{team}/dashboard/", "text/html"),
        "all-teams page": ("/dashboard/", "text/html"),
        "team API": (f"/api/v1/teams/{team}/dashboard", "json"),
        "all-teams API": ("/api/v1/dashboard", "json"),
    }
    rss = RssSampler(stack)
    report: dict[str, Any] = {"rss_idle": rss.now(), "results": {}}
    rss.start()
    with (
        httpx.Client(
            base_url=stack.url,
            timeout=120,
            headers={"Cookie": f"{SESSION_COOKIE}={who['session']}"},
        ) as browser,
        httpx.Client(
            base_url=stack.url,
            timeout=120,
            headers={"Authorization": f"Bearer {who['token']}"},
        ) as api,
    ):
        for kind, (url, _) in kinds.items():
            client = api if "API" in kind else browser
            check = '"periods"' if "API" in kind else "Detection Deficit"
            for name, params in scenarios(today).items():
                print(f"  {kind}: {name} …", flush=True)
                timing = timed_gets(
                    client, url, params, warmup=cfg.warmup, n=cfg.requests, check=check
                )
                report["results"][f"{kind} | {name}"] = timing.summary()
                fresh = timed_gets(
                    client, url, params, warmup=0, n=cfg.requests, check=check, distinct=True
                )
                report["results"][f"{kind} | {name}"]["distinct"] = fresh.summary()
    rss.stopping.set()
    rss.join()
    report["rss_peak"] = rss.peak
    report["rss_after"] = rss.now()
    return report


# --- The run -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Config:
    teams: int
    escapes: int
    years: float
    seed: int
    requests: int
    warmup: int
    repeats: int


def database_sizes(stack: Stack) -> dict[str, str]:
    import psycopg

    with psycopg.connect(stack.database_url) as conn:
        rows = conn.execute(
            "SELECT pg_size_pretty(pg_database_size(current_database())),"
            " pg_size_pretty(pg_total_relation_size('escapes_escape')),"
            " pg_size_pretty(pg_total_relation_size('escapes_escaperollup'))"
        ).fetchone()
    assert rows is not None
    return {"database": rows[0], "escapes table": rows[1], "rollups table": rows[2]}


def print_report(facts: dict[str, str], cfg: Config, r: dict[str, Any]) -> None:
    print("\n## Machine")
    for key, value in facts.items():
        print(f"- {key}: {value}")
    print(f"\n## Volume\n- {cfg.escapes:,} escapes, {cfg.teams} teams, {cfg.years:g} years")
    if "generate_seconds" in r:
        print(
            f"- generate_escapes: {r['generate_seconds']} s, peak RSS "
            f"{mib(r['generate_rss_peak'])}\n  {r['generate_output']}"
        )
    print(f"- sizes: {r['sizes']}")
    full = r["full"]
    print(
        f"\n## Full recompute\n- from empty: "
        f"{full['runs'][0]['seconds']} s ({full['runs'][0]['written']} rows written); "
        f"again with nothing changed: {full['runs'][1]['seconds']} s "
        f"({full['runs'][1]['written']} written); {full['rows']} rollup rows; peak RSS "
        f"{mib(full['rss_peak'])} (after start-up {mib(full['rss_before'])})"
    )
    inc = r["incremental"]
    change, task = inc["change_with_task_seconds"], inc["task_seconds"]
    print(
        f"\n## Incremental recompute ({inc['team']}: {inc['team_escapes']:,} escapes, "
        f"{inc['month_escapes']:,} in the changed month; {len(task)} changes)\n"
        f"- escape_update + its on-commit task: median {percentile(change, 0.5) * 1000:.0f} ms,"
        f" max {max(change) * 1000:.0f} ms; rollup updated on commit: "
        f"{inc['rollup_updated_on_commit']}\n"
        f"- the task alone: median {percentile(task, 0.5) * 1000:.0f} ms, "
        f"max {max(task) * 1000:.0f} ms"
    )
    http = r["http"]
    print(
        f"\n## Latency, ms ({cfg.requests} sequential requests after {cfg.warmup} warm-up of the "
        f"same query; then {cfg.requests} *distinct* queries, each ending a day earlier, so "
        "that every answer is computed)"
    )
    print(
        "| what | range | cold | same: p50 | same: p95 | same: max | distinct: p50 | "
        "distinct: p95 | distinct: max | KiB | statuses |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for key, s in http["results"].items():
        kind, name = key.split(" | ")
        d = s["distinct"]

        def mark(ms: float, kind: str = kind) -> str:
            return f"{ms} ✗" if "page" in kind and ms >= TARGET_P95_MS else f"{ms}"

        print(
            f"| {kind} | {name} | {s['cold_ms']} | {s['p50_ms']} | {mark(s['p95_ms'])} | "
            f"{s['max_ms']} | {d['p50_ms']} | {mark(d['p95_ms'])} | {d['max_ms']} | {s['kb']} | "
            f"{sorted(set(s['statuses']) | set(d['statuses']))} |"
        )
    for label, pick in (("same query", lambda s: s), ("distinct queries", lambda s: s["distinct"])):
        pages = [pick(s)["p95_ms"] for k, s in http["results"].items() if "page" in k]
        met = max(pages) < TARGET_P95_MS
        print(
            f"\nTarget (page p95 < {TARGET_P95_MS:.0f} ms), {label}: "
            f"{'met' if met else 'MISSED'} (worst page p95 {max(pages)} ms)"
        )
    print(
        f"- uvicorn RSS: idle {mib(http['rss_idle'])}, peak {mib(http['rss_peak'])}, "
        f"after {mib(http['rss_after'])}; load average at the end {r['load_at_end']}"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--teams", type=int, default=50)
    parser.add_argument("--escapes", type=int, default=1_000_000)
    parser.add_argument("--years", type=float, default=3.0)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--requests", type=int, default=20, help="per scenario, after warm-up")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=5, help="incremental changes to time")
    parser.add_argument("--web-workers", type=int, default=2)
    parser.add_argument("--debug", action="store_true", help="serve with DEBUG on, as tests do")
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    parser.add_argument(
        "--reuse", action="store_true", help="reuse the database if it holds the volume (keeps it)"
    )
    parser.add_argument("--json", type=Path, help="also write the raw figures here")
    args = parser.parse_args()
    if not os.environ.get("DATABASE_URL", "").startswith("postgres"):
        parser.error("needs DATABASE_URL=postgres://… (the benchmark is of PostgreSQL)")
    if not 1 <= args.requests <= 200 or not 0 <= args.warmup <= 20 or args.escapes > 2_000_000:
        parser.error("bounded runs only: 1-200 requests, 0-20 warm-up, at most 2,000,000 escapes")
    cfg = Config(
        args.teams, args.escapes, args.years, args.seed, args.requests, args.warmup, args.repeats
    )

    with tempfile.TemporaryDirectory(prefix="leakseal-dash-") as tmp:
        stack = BenchStack(
            var_dir=Path(tmp),
            database_url=own_database_url(os.environ["DATABASE_URL"], "_dash"),
            redis_url=os.environ.get("REDIS_URL", ""),
            web_workers=args.web_workers,
            production=not args.debug,
        )
        report: dict[str, Any] = {}
        try:
            have = existing_volume(stack) if args.reuse else None
            if have == {"teams": cfg.teams, "escapes": cfg.escapes}:
                print(f"Reusing {stack.database_url} ({have}) …", flush=True)
                stack.manage("migrate", "--noinput", "-v0")
            else:
                print(f"Building {cfg.escapes:,} escapes in {stack.database_url} …", flush=True)
                report.update(build(stack, cfg))
            if stack.redis_url:
                import redis

                redis.Redis.from_url(stack.redis_url).delete("celery")
            print("Full recompute …", flush=True)
            report["full"] = run_python(stack, FULL_RECOMPUTE)
            print("Incremental recompute …", flush=True)
            script = INCREMENTAL.replace("REPEATS", str(cfg.repeats))
            report["incremental"] = run_python(stack, script, eager=True)
            who = run_python(stack, MANAGER_SETUP)
            report["sizes"] = database_sizes(stack)
            if stack.production:
                stack.manage("collectstatic", "--noinput", "-v0")
            stack.start_web()
            facts = machine(stack)
            print(f"Requests against {stack.url} ({who['team']}) …", flush=True)
            report["http"] = measure_http(stack, who, cfg)
            report["load_at_end"] = " ".join(f"{x:.2f}" for x in os.getloadavg())
        except BaseException:
            print(stack.log_tail(), file=sys.stderr)
            raise
        finally:
            stack.stop()
            if not (args.keep or args.reuse):
                pg_drop(stack.database_url)
    print_report(facts, cfg, report)
    if args.json:
        args.json.write_text(
            json.dumps({"machine": facts, "config": asdict(cfg), **report}, indent=2)
        )
    failed = any(
        s["statuses"] != [200] or s["distinct"]["statuses"] != [200]
        for s in report["http"]["results"].values()
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
