"""CI test results benchmark: a team's year of 200,000 test cases a day, on PostgreSQL.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/leakseal_bench \\
    REDIS_URL=redis://127.0.0.1:6379/8 .venv/bin/python bench/ci_results.py
    … bench/ci_results.py --keep       # keep the database for the next run
    … bench/ci_results.py --reuse      # reuse it (and keep it): skips the build

It builds a Leakseal of its own: a database named after DATABASE_URL plus "_ci_results",
`migrate`, then one team ("ci-bench") with a year of test evidence written by set-based SQL
(INSERT … SELECT generate_series, foreign-key triggers and secondary indexes off while it
loads, rebuilt after, then VACUUM ANALYZE), as the worker would have left it:

- 20,000 tracked tests in Unit (70 %), Integration (22.5 %) and E2E (7.5 %), named as pytest,
  Maven Failsafe and Playwright name them, in 24 components (the component is in the path);
- one `DailyResult` per test and day for 365 days (7.3M rows), 9-11 runs a test a day on
  3-5 commits: 200,000 cases a day. Most days all pass; 2 % of the tests are flaky (on 15 % of
  days 1-2 failures retried to green, a flip each); 1 % fail in spells (3 days every 60, fixed
  on a later commit: a measured catch each); 1 % are skipped with a reason since a day in the
  year (quarantined by the code), 40 of the flaky ones are on the team's quarantine list; a
  one-off failure on 0.05 % of the other test-days;
- one `CommitResult` per test and commit for the last 30 days (~2.4M rows);
- a release every 14 days (26), two escapes each with a component and a stage (a third of them
  Flakiness / False Negative, with two of the component's flaky tests attached), the measured
  catches and the measured caught-before-release counts, 90 days of upload records.

Then uvicorn (DEBUG off, --web-workers) and a Celery worker on loopback, and it measures

1. uploads: a 20,000-case JUnit XML file (pytest style, the Unit stage's tests plus new ones
   up to 20,000, a few failures, retries and skips) sent by `POST /api/v1/teams/<team>/
   test-results` with an API token, --uploads times on different commits, as XML and again
   gzip-compressed: the time to the 202 answer;
2. processing: from the 202 until `GET <url>` says done (polled every 50 ms), each upload
   waited for before the next; the server's own processed_at − received_at beside it;
3. pages, signed in with a session cookie, after --warmup requests: the flakiness page
   /t/<team>/tests/, a test's page /t/<team>/tests/<id>/ (the same flaky test, and then a
   different test each request), the escape's test panel /t/<team>/escapes/<id>/tests/ (the
   latest Flakiness escape, and then each escape in turn): p50/p95/max of --requests each.

Targets (issue 14): 202 in under 1 s, processed in under 10 s, pages p95 under 150 ms. It
reports a missed target plainly; the exit status is 1 only when a request failed.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import random
import shutil
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from xml.sax.saxutils import quoteattr

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.dashboard import BenchStack, RssSampler, Timing, run_python  # noqa: E402
from bench.live_board import machine, mib, percentile  # noqa: E402
from tests.browser.stack import own_database_url, pg_drop, pg_recreate  # noqa: E402

TEAM = "ci-bench"
USER = "ci-bench-member"
SESSION_COOKIE = "sessionid"
STAGES = ("Unit", "Integration", "E2E")
DAYS = 365
COMMIT_DAYS = 30
TARGET_ANSWER_S = 1.0
TARGET_PROCESSED_S = 10.0
TARGET_P95_MS = 150.0
PROCESS_TIMEOUT = 180.0  # seconds a single upload may take before the run calls it failed
COMPONENTS = (
    "billing", "checkout", "search", "catalog", "accounts", "auth", "notifications",
    "payments", "shipping", "inventory", "pricing", "reports", "admin", "api", "orders",
    "cart", "reviews", "recommendations", "media", "exports", "imports", "scheduling",
    "messaging", "settings",
)  # fmt: skip
VERBS = (
    "creates", "updates", "deletes", "rejects", "rounds", "retries", "caches", "validates",
    "renders", "sorts", "filters", "exports", "imports", "merges", "splits", "refunds",
    "schedules", "notifies", "parses", "signs",
)  # fmt: skip
NOUNS = (
    "invoice", "order", "total", "discount", "address", "token", "session", "payload",
    "report", "line_item", "currency", "tax", "cart", "user", "password", "webhook", "page",
    "query", "batch", "receipt",
)  # fmt: skip
KINDS = ("Service", "Repository", "Controller", "Validator", "Serializer", "Client", "Handler")


# --- The volume --------------------------------------------------------------------------

SETUP = f"""
from datetime import datetime, time as dtime, timedelta, UTC
from importlib import import_module
from django.conf import settings
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
from django.contrib.auth.models import User
from escapes.models import Escape, PipelineStage, Release
from teams.models import Role
from teams.services import api_token_create, membership_set, team_create

COMPONENTS = {COMPONENTS!r}
today = datetime.now(UTC).date()
start = today - timedelta(days={DAYS} - 1)
team = team_create(name="CI bench", slug={TEAM!r}, stages={list(STAGES)!r})
stages = {{s.name: s.pk for s in PipelineStage.objects.filter(team=team)}}
user = User.objects.create_user(username={USER!r}, email="ci-bench@example.com")
membership_set(team=team, user=user, role=Role.MEMBER)
releases, escapes = [], []
titles = ("Totals off by a cent after the rounding change", "Search shows archived items",
          "Webhook retried forever on 410", "Session lost after password reset",
          "Export misses the last page", "Discount applied twice on re-submit")
for n in range(1, {DAYS} // 14 + 1):
    at = datetime.combine(start + timedelta(days=14 * n - 1), dtime(10), tzinfo=UTC)
    releases.append(Release(team=team, version=f"2026.{{n}}", released_at=at))
Release.objects.bulk_create(releases)
for n, release in enumerate(Release.objects.filter(team=team).order_by("released_at")):
    for k in range(2):
        i = 2 * n + k
        escapes.append(Escape(
            team=team, title=titles[i % len(titles)], release=release,
            component=COMPONENTS[(7 * i) % len(COMPONENTS)],
            stage_id=stages[{list(STAGES)!r}[i % 3]],
            category="flakiness" if i % 3 == 0 else ("coverage_gap", "environment_mismatch")[i % 2],
            severity=("critical", "high", "medium", "low")[i % 4],
            merged_at=release.released_at - timedelta(days=2),
            released_at=release.released_at,
            detected_at=min(release.released_at + timedelta(days=1 + i % 5),
                            datetime.now(UTC) - timedelta(hours=1)),
        ))
Escape.objects.bulk_create(escapes)
print(json.dumps({{"team": team.pk, "stages": stages, "user": user.pk}}))
"""

SIGN_IN = f"""
from importlib import import_module
from django.conf import settings
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
from django.contrib.auth.models import User
from teams.services import api_token_create

user = User.objects.get(username={USER!r})
# Signed in the way Django's test client's force_login does (bench/dashboard.py says why).
session = import_module(settings.SESSION_ENGINE).SessionStore()
session[SESSION_KEY] = str(user.pk)
session[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"  # as a password sign-in
session[HASH_SESSION_KEY] = user.get_session_auth_hash()
session.save()
user.api_tokens.all().delete()
_, raw = api_token_create(user=user, name="ci results bench")
# The volume's keys must be the worker's, or an upload would create its tests anew.
from evidence.models import TrackedTest
try:
    from evidence.processing import test_key
except ImportError:
    test_key = None
test = TrackedTest.objects.filter(team__slug={TEAM!r}).order_by("id").first()
same = None if test_key is None or test is None else test_key(test.classname, test.name) == test.key
print(json.dumps({{"token": raw, "session": session.session_key, "keys_match": same}}))
"""

# A test's kind from its id: 0 passes, 1 flaky, 2 fails in spells, 3 skipped since some day.
KIND_FUNCTION = """
CREATE FUNCTION pg_temp.kind(bigint) RETURNS int LANGUAGE sql IMMUTABLE AS $$
  SELECT CASE WHEN h < 200 THEN 1 WHEN h < 300 THEN 2 WHEN h < 400 THEN 3 ELSE 0 END
  FROM (SELECT (hashint8($1)::bigint + 2147483648) % 10000 AS h) x
$$;
CREATE FUNCTION pg_temp.sha(text) RETURNS text LANGUAGE sql IMMUTABLE AS $$
  SELECT left(encode(sha256(convert_to($1, 'UTF8')), 'hex'), 40)
$$;
"""

TESTS = """
INSERT INTO evidence_trackedtest (team_id, stage_id, classname, name, file, key, component,
  first_run_at, last_run_at, last_outcome, last_passed_at, runs, failures, skips, retries, flips,
  failing_since, failing_commit, skipped_since, skip_reason)
SELECT %(team)s, stage_id, classname, name, file,
  encode(sha256(convert_to(classname, 'UTF8') || '\\x00'::bytea || convert_to(name, 'UTF8')),
         'hex'), comp,
  %(start)s::date + time '06:00', now(), 'passed', now(), 0, 0, 0, 0, 0, NULL, '', NULL, ''
FROM (
  SELECT g, stage_id, comp,
    CASE stage_id
      WHEN %(unit)s THEN format('tests.unit.%%s.test_%%s.Test%%s%%s', comp, mod, initcap(noun),
                                kind)
      WHEN %(integration)s THEN format('com.acme.%%s.%%s%%sIT', comp,
                                       replace(initcap(mod), '_', ''), kind)
      ELSE format('e2e/%%s/%%s.spec.ts', comp, mod) END AS classname,
    CASE stage_id
      WHEN %(unit)s THEN format('test_%%s_%%s[case-%%s]', verb, noun, g)
      WHEN %(integration)s THEN format('should%%s%%sWhen%%s', initcap(verb),
                                       replace(initcap(noun), '_', ''), g)
      ELSE format('%%s › %%s › user %%s the %%s (%%s)', comp, mod, verb, noun, g) END AS name,
    CASE stage_id
      WHEN %(unit)s THEN format('tests/unit/%%s/test_%%s.py', comp, mod)
      WHEN %(integration)s THEN format('src/test/java/com/acme/%%s/%%s%%sIT.java', comp,
                                       replace(initcap(mod), '_', ''), kind)
      ELSE format('e2e/%%s/%%s.spec.ts', comp, mod) END AS file
  FROM (
    SELECT g,
      CASE WHEN g <= %(n)s * 0.7 THEN %(unit)s WHEN g <= %(n)s * 0.925 THEN %(integration)s
           ELSE %(e2e)s END AS stage_id,
      (%(components)s::text[])[1 + g %% %(ncomp)s] AS comp,
      (%(nouns)s::text[])[1 + (g / %(ncomp)s) %% 20] AS mod,
      (%(kinds)s::text[])[1 + (g / 480) %% 7] AS kind,
      (%(verbs)s::text[])[1 + (g * 7) %% 20] AS verb,
      (%(nouns)s::text[])[1 + (g * 13 / 3) %% 20] AS noun
    FROM generate_series(1, %(n)s) g
  ) s
) n
ORDER BY g
"""

# Per test and day: runs 9-11 on 3-5 commits; what else happened depends on the test's kind.
# Written day by day, as the worker writes them: a day's rows lie together in the table.
DAILY = """
INSERT INTO evidence_dailyresult (test_id, team_id, stage_id, day, runs, passes, failures,
  skips, retries, flips, commits)
SELECT id, team_id, stage_id, %(start)s::date + d, runs, runs - failures - skips, failures,
  skips, retries, flips, commits
FROM (
  SELECT id, team_id, stage_id, d, runs, commits,
    CASE k WHEN 1 THEN CASE WHEN r < 1500 THEN 1 + r %% 2 ELSE 0 END
           WHEN 2 THEN CASE WHEN (d + id) %% 60 < 3 THEN runs ELSE 0 END
           WHEN 3 THEN 0
           ELSE CASE WHEN r < 5 THEN 1 ELSE 0 END END AS failures,
    CASE WHEN k = 3 AND d >= %(days)s - 30 - id %% 300 THEN runs ELSE 0 END AS skips,
    CASE WHEN k = 1 AND r < 1500 THEN 1 ELSE 0 END AS retries,
    CASE WHEN k = 1 AND r < 1500 THEN 1 + r %% 2 ELSE 0 END AS flips
  FROM (
    SELECT id, team_id, stage_id, d, k, r, 9 + r %% 3 AS runs, 3 + (r / 3) %% 3 AS commits
    FROM (
      SELECT t.id, t.team_id, t.stage_id, t.k, d,
        ((hashint8(t.id * 1000 + d)::bigint + 2147483648) %% 10000)::int AS r
      FROM (SELECT id, team_id, stage_id, pg_temp.kind(id) AS k FROM evidence_trackedtest
            WHERE team_id = %(team)s) t
      CROSS JOIN generate_series(0, %(days)s - 1) d
      OFFSET 0
    ) w
  ) x
) y
ORDER BY d, id
"""

# The same commits for every test of the team on a day: pipelines run the whole stage.
COMMITS = """
INSERT INTO evidence_commitresult (test_id, commit, outcomes, first_seen_at)
SELECT dr.test_id, pg_temp.sha('commit-' || dr.day || '-' || k),
  CASE WHEN dr.skips > 0 THEN 4 WHEN dr.passes = 0 THEN 2 WHEN k <= dr.flips THEN 3
       WHEN dr.failures > dr.flips AND k = dr.commits THEN 2 ELSE 1 END,
  dr.day + make_interval(hours => 2 + 4 * k)
FROM evidence_dailyresult dr CROSS JOIN LATERAL generate_series(1, dr.commits) k
WHERE dr.team_id = %(team)s AND dr.day > %(today)s::date - %(commit_days)s
ORDER BY dr.day, k, dr.test_id
"""

TOTALS = """
UPDATE evidence_trackedtest t SET runs = a.runs, failures = a.failures, skips = a.skips,
  retries = a.retries, flips = a.flips
FROM (SELECT test_id, sum(runs) runs, sum(failures) failures, sum(skips) skips,
             sum(retries) retries, sum(flips) flips
      FROM evidence_dailyresult WHERE team_id = %(team)s GROUP BY test_id) a
WHERE a.test_id = t.id;

UPDATE evidence_trackedtest t SET
  last_run_at = now() - make_interval(mins => (id %% 180)::int),
  last_passed_at = now() - make_interval(mins => (id %% 180)::int)
WHERE team_id = %(team)s;

-- Skipped with a reason since a day in the year: quarantined by the code.
UPDATE evidence_trackedtest SET last_outcome = 'skipped',
  skipped_since = %(start)s::date + (%(days)s - 30 - id %% 300)::int + time '07:00',
  skip_reason = format('flaky on CI since the queue change, see ACME-%%s', 1000 + id %% 900),
  last_passed_at = %(start)s::date + (%(days)s - 31 - id %% 300)::int + time '18:00'
WHERE team_id = %(team)s AND pg_temp.kind(id) = 3;

-- Failing now: in a spell that started (days - 1 + id) %% 60 days ago.
UPDATE evidence_trackedtest SET last_outcome = 'failed',
  failing_since = %(start)s::date + (%(days)s - 1 - (%(days)s - 1 + id) %% 60)::int + time '06:00',
  failing_commit = pg_temp.sha('commit-' || (%(start)s::date + (%(days)s - 1
                                             - (%(days)s - 1 + id) %% 60)::int) || '-1'),
  last_passed_at = %(start)s::date + (%(days)s - 2 - (%(days)s - 1 + id) %% 60)::int + time '20:00'
WHERE team_id = %(team)s AND pg_temp.kind(id) = 2 AND (%(days)s - 1 + id) %% 60 < 3;

-- Each spell that ended: a catch, failed on its first day, fixed on the day after it.
INSERT INTO evidence_measuredcatch (team_id, stage_id, test_id, failed_at, failed_commit,
  fixed_at, fixed_commit, release_version)
SELECT t.team_id, t.stage_id, t.id, %(start)s::date + d + time '06:00',
  pg_temp.sha('commit-' || (%(start)s::date + d) || '-1'),
  %(start)s::date + d + 3 + time '06:00',
  pg_temp.sha('commit-' || (%(start)s::date + d + 3) || '-1'), ''
FROM evidence_trackedtest t CROSS JOIN generate_series(0, %(days)s - 4) d
WHERE t.team_id = %(team)s AND pg_temp.kind(t.id) = 2 AND (d + t.id) %% 60 = 0;

-- Caught before release, measured: distinct tests with a catch fixed since the release before.
INSERT INTO escapes_stagecatch (release_id, stage_id, caught, source, updated_at)
SELECT r.id, c.stage_id, count(DISTINCT c.test_id), 'measured', now()
FROM (SELECT id, released_at,
             lag(released_at) OVER (ORDER BY released_at) AS previous
      FROM escapes_release WHERE team_id = %(team)s) r
JOIN evidence_measuredcatch c ON c.team_id = %(team)s AND c.fixed_at <= r.released_at
  AND (r.previous IS NULL OR c.fixed_at > r.previous)
GROUP BY r.id, c.stage_id;

-- The team's quarantine list: 40 of the flaky tests.
INSERT INTO evidence_quarantine (test_id, reason, added_by_id, added_at)
SELECT id, format('Known flaky (ACME-%%s): timing-dependent, fix planned', 2000 + id %% 500),
  %(user)s, now() - make_interval(days => (id %% 200)::int)
FROM evidence_trackedtest WHERE team_id = %(team)s AND pg_temp.kind(id) = 1
ORDER BY id LIMIT 40;

-- Flakiness escapes: two flaky tests of their component and stage attached.
INSERT INTO evidence_escapetest (escape_id, test_id, added_by_id, added_at)
SELECT e.id, t.id, %(user)s, e.detected_at + interval '1 day'
FROM escapes_escape e
CROSS JOIN LATERAL (
  SELECT id FROM evidence_trackedtest t WHERE t.team_id = e.team_id
    AND t.stage_id = e.stage_id AND t.component = e.component AND pg_temp.kind(t.id) = 1
  ORDER BY id LIMIT 2) t
WHERE e.team_id = %(team)s AND e.category = 'flakiness';

-- 90 days of upload records: three runs a day per stage.
INSERT INTO evidence_resultupload (team_id, stage_id, commit, branch, run_url, release_version,
  component, identity, status, error, cases, passed, failed, skipped, ran_at, received_at,
  processed_at, uploaded_by_id)
SELECT %(team)s, s.id, pg_temp.sha('commit-' || (%(today)s::date - d) || '-' || k), 'main',
  format('https://ci.example.com/acme/app/runs/%%s', 100000 + d * 10 + k), '', '',
  encode(sha256(convert_to(s.id || '-' || d || '-' || k, 'UTF8')), 'hex'), 'done', '',
  n.c, n.c - 3, 2, 1, (%(today)s::date - d) + make_interval(hours => 2 + 4 * k),
  (%(today)s::date - d) + make_interval(hours => 2 + 4 * k, mins => 9),
  (%(today)s::date - d) + make_interval(hours => 2 + 4 * k, mins => 9, secs => 6), %(user)s
FROM escapes_pipelinestage s
CROSS JOIN generate_series(1, 90) d CROSS JOIN generate_series(1, 3) k
CROSS JOIN LATERAL (SELECT count(*) * 3 AS c FROM evidence_trackedtest t
                    WHERE t.stage_id = s.id) n
WHERE s.team_id = %(team)s;
"""

EVIDENCE_TABLES = (
    "evidence_trackedtest", "evidence_dailyresult", "evidence_commitresult",
    "evidence_measuredcatch", "evidence_quarantine", "evidence_escapetest",
    "evidence_resultupload", "escapes_escape", "escapes_release", "escapes_stagecatch",
)  # fmt: skip


def statements(sql: str) -> list[str]:
    """The statements of a script (psycopg sends one statement per execute with parameters)."""
    return [s.strip() for s in sql.split(";\n") if s.strip()]


def without_indexes(conn: Any, table: str) -> list[str]:
    """Drop `table`'s unique constraints and secondary indexes; the statements that restore them."""
    restore = []
    for name, definition in conn.execute(
        "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint"
        " WHERE conrelid = %s::regclass AND contype = 'u'",
        (table,),
    ).fetchall():
        conn.execute(f'ALTER TABLE {table} DROP CONSTRAINT "{name}"')
        restore.append(f'ALTER TABLE {table} ADD CONSTRAINT "{name}" {definition}')
    for name, definition in conn.execute(
        "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = %s"
        " AND indexname NOT LIKE '%%_pkey'",
        (table,),
    ).fetchall():
        conn.execute(f'DROP INDEX "{name}"')
        restore.insert(0, definition)
    return restore


def test_key(classname: str, name: str) -> str:
    """The worker's identity of a test (evidence.processing.test_key), as TESTS writes it."""
    import hashlib

    return hashlib.sha256(f"{classname}\0{name}".encode()).hexdigest()


def build(stack: BenchStack, cfg: Config) -> dict[str, Any]:
    """A fresh database, migrated, with the year of evidence; how long each part took."""
    import psycopg

    pg_recreate(stack.database_url)
    stack.manage("migrate", "--noinput", "-v0")
    who = run_python(stack, SETUP)
    today = datetime.now(UTC).date()
    params = {
        "team": who["team"],
        "user": who["user"],
        "unit": who["stages"]["Unit"],
        "integration": who["stages"]["Integration"],
        "e2e": who["stages"]["E2E"],
        "n": cfg.tests,
        "days": DAYS,
        "commit_days": COMMIT_DAYS,
        "start": today - timedelta(days=DAYS - 1),
        "today": today,
        "components": list(COMPONENTS),
        "ncomp": len(COMPONENTS),
        "nouns": list(NOUNS),
        "verbs": list(VERBS),
        "kinds": list(KINDS),
    }
    took: dict[str, float] = {}
    started = time.monotonic()
    with psycopg.connect(stack.database_url, autocommit=True) as conn:
        conn.execute("SET maintenance_work_mem = '1GB'")
        conn.execute("SET work_mem = '256MB'")
        conn.execute("SET synchronous_commit = off")
        for statement in statements(KIND_FUNCTION):
            conn.execute(statement)

        def step(name: str, sql: str) -> None:
            began = time.monotonic()
            for statement in statements(sql):
                conn.execute(statement, params)
            took[name] = round(time.monotonic() - began, 1)
            print(f"  {name}: {took[name]} s", flush=True)

        step("tests", TESTS)
        # Consistent by construction: no foreign-key trigger per row, indexes built once after.
        conn.execute("SET session_replication_role = replica")
        restore = without_indexes(conn, "evidence_dailyresult")
        restore += without_indexes(conn, "evidence_commitresult")
        step("daily rows", DAILY)
        step("commit rows", COMMITS)
        began = time.monotonic()
        for statement in restore:
            conn.execute(statement)
        took["indexes"] = round(time.monotonic() - began, 1)
        print(f"  indexes: {took['indexes']} s", flush=True)
        conn.execute("SET session_replication_role = origin")
        step("totals, catches, quarantine, uploads", TOTALS)
        began = time.monotonic()
        for table in EVIDENCE_TABLES:
            conn.execute(f"VACUUM ANALYZE {table}")
        took["vacuum analyze"] = round(time.monotonic() - began, 1)
        print(f"  vacuum analyze: {took['vacuum analyze']} s", flush=True)
    return {"build_seconds": round(time.monotonic() - started, 1), "build_steps": took}


def volume(stack: BenchStack) -> dict[str, Any] | None:
    """What the bench database holds, or None when there is no bench team in it."""
    import psycopg

    try:
        with psycopg.connect(stack.database_url) as conn:
            row = conn.execute("SELECT id FROM teams_team WHERE slug = %s", (TEAM,)).fetchone()
            if row is None:
                return None
            counts = {
                table: conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]  # type: ignore[index]
                for table in EVIDENCE_TABLES[:7]
            }
            sizes: dict[str, str] = dict(
                conn.execute(
                    "SELECT 'database', pg_size_pretty(pg_database_size(current_database()))"
                    " UNION ALL SELECT relname, pg_size_pretty(pg_total_relation_size(oid))"
                    " FROM pg_class WHERE relname IN"
                    " ('evidence_dailyresult', 'evidence_commitresult', 'evidence_trackedtest')"
                ).fetchall()
            )
            noteworthy = conn.execute(
                "SELECT count(*) FROM evidence_dailyresult WHERE failures > 0 OR skips > 0"
                " OR retries > 0 OR flips > 0"
            ).fetchone()
            per_day = conn.execute(
                "SELECT avg(s) FROM (SELECT sum(runs) s FROM evidence_dailyresult GROUP BY day) x"
            ).fetchone()
    except psycopg.Error:
        return None
    return {
        "team": row[0],
        "rows": counts,
        "sizes": sizes,
        "noteworthy_days": noteworthy[0] if noteworthy else 0,
        "cases_per_day": round(float(per_day[0])) if per_day and per_day[0] else 0,
    }


# --- The upload ----------------------------------------------------------------------------


def junit_file(stack: BenchStack, cases: int, seed: int) -> tuple[bytes, dict[str, int]]:
    """A pytest-style JUnit XML file of `cases` test cases: the Unit stage's tests and then new
    ones, a few failing (some retried to green, as pytest-rerunfailures writes them) and the
    quarantined ones skipped with their reason."""
    import psycopg

    with psycopg.connect(stack.database_url) as conn:
        known = conn.execute(
            "SELECT t.classname, t.name, t.file, t.skip_reason FROM evidence_trackedtest t"
            " JOIN escapes_pipelinestage s ON s.id = t.stage_id JOIN teams_team m"
            " ON m.id = t.team_id WHERE m.slug = %s AND s.name = 'Unit' ORDER BY t.id LIMIT %s",
            (TEAM, cases),
        ).fetchall()
    rows = [(c, n, f, r) for c, n, f, r in known]
    for g in range(len(rows), cases):
        comp, noun = COMPONENTS[g % len(COMPONENTS)], NOUNS[(g * 3) % len(NOUNS)]
        rows.append(
            (
                f"tests.unit.{comp}.test_{noun}_v2.Test{noun.title()}",
                f"test_{VERBS[g % len(VERBS)]}_{noun}[new-{g}]",
                f"tests/unit/{comp}/test_{noun}_v2.py",
                "",
            )
        )
    rng = random.Random(seed)
    failing = set(rng.sample(range(len(rows)), 20))
    retried = set(rng.sample(sorted(failing), 5))
    counts = {"cases": 0, "failures": 0, "skipped": 0, "retried": len(retried)}
    body: list[str] = []
    for i, (classname, name, file, reason) in enumerate(rows):
        attrs = f"classname={quoteattr(classname)} name={quoteattr(name)} file={quoteattr(file)}"
        took = f'time="{rng.uniform(0.001, 0.4):.3f}"'
        if reason:
            body.append(
                f'<testcase {attrs} {took}><skipped type="pytest.skip" '
                f"message={quoteattr(reason)}/></testcase>"
            )
            counts["skipped"] += 1
        elif i in failing:
            body.append(
                f'<testcase {attrs} {took}><failure message="AssertionError: assert 41 == 42">'
                f"def {name.split('[')[0]}():\n&gt;       assert total == 42\n"
                "E       AssertionError: assert 41 == 42\n</failure></testcase>"
            )
            counts["failures"] += 1
            if i in retried:  # rerun: the same test written again, passing
                body.append(f"<testcase {attrs} {took}/>")
                counts["cases"] += 1
        else:
            body.append(f"<testcase {attrs} {took}/>")
        counts["cases"] += 1
    stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")
    xml = (
        '<?xml version="1.0" encoding="utf-8"?>\n<testsuites name="pytest tests">'
        f'<testsuite name="pytest" errors="0" failures="{counts["failures"]}" '
        f'skipped="{counts["skipped"]}" tests="{counts["cases"]}" time="812.4" '
        f'timestamp="{stamp}" hostname="runner-7">\n' + "\n".join(body) + "\n</testsuite>"
        "</testsuites>\n"
    )
    return xml.encode(), counts


@dataclass
class Upload:
    commit: str
    gzip: bool
    bytes: int
    answer_s: float = 0.0
    status_code: int = 0
    processed_s: float | None = None
    final: str = ""
    server_s: float | None = None
    polls: int = 0
    answer: dict[str, Any] = field(default_factory=dict)
    counts: str = ""  # passed / failed / skipped, as the done upload says


def upload_one(api: httpx.Client, data: bytes, *, commit: str, zipped: bool, n: int) -> Upload:
    body = gzip.compress(data) if zipped else data
    upload = Upload(commit=commit, gzip=zipped, bytes=len(body))
    form = {
        "stage": "Unit",
        "commit": commit,
        "branch": "main",
        "run_url": f"https://ci.example.com/acme/app/runs/bench-{commit[:12]}",
        "release": "",
        "component": "",
    }
    name = "junit.xml.gz" if zipped else "junit.xml"
    kind = "application/gzip" if zipped else "application/xml"
    started = time.perf_counter()
    response = api.post(
        f"/api/v1/teams/{TEAM}/test-results", data=form, files={"file": (name, body, kind)}
    )
    answered = time.perf_counter()
    upload.answer_s = answered - started
    upload.status_code = response.status_code
    if response.status_code != 202:
        upload.final = f"HTTP {response.status_code}: {response.text[:300]}"
        return upload
    upload.answer = response.json()
    url = upload.answer.get("url", "")
    while time.perf_counter() - answered < PROCESS_TIMEOUT:
        poll = api.get(url)
        upload.polls += 1
        state = poll.json() if poll.status_code == 200 else {}
        status = state.get("status")
        if status in {"done", "failed"}:
            upload.processed_s = time.perf_counter() - answered
            upload.counts = (
                f"{state.get('passed')} / {state.get('failed')} / {state.get('skipped')}"
            )
            upload.final = status if status == "done" else f"failed: {poll.text[:300]}"
            return upload
        if poll.status_code != 200:
            upload.final = f"poll HTTP {poll.status_code}: {poll.text[:300]}"
            return upload
        time.sleep(0.05)
    upload.final = f"not done after {PROCESS_TIMEOUT:.0f} s"
    print(f"  upload {n}: {upload.final}", flush=True)
    return upload


def server_times(stack: BenchStack, ids: list[int]) -> dict[int, float]:
    """processed_at − received_at of each upload, as the server recorded them."""
    import psycopg

    with psycopg.connect(stack.database_url) as conn:
        rows = conn.execute(
            "SELECT id, extract(epoch FROM processed_at - received_at) FROM"
            " evidence_resultupload WHERE id = ANY(%s) AND processed_at IS NOT NULL",
            (ids,),
        ).fetchall()
    return {pk: float(s) for pk, s in rows}


def measure_uploads(stack: BenchStack, token: str, cfg: Config) -> dict[str, Any]:
    data, counts = junit_file(stack, cfg.cases, cfg.seed)
    print(
        f"  file: {counts['cases']:,} cases ({len(data) / 1024 / 1024:.1f} MiB,"
        f" gzip {len(gzip.compress(data)) / 1024:.0f} KiB), {counts['failures']} failures"
        f" ({counts['retried']} retried), {counts['skipped']} skipped",
        flush=True,
    )
    uploads: list[Upload] = []
    with httpx.Client(
        base_url=stack.url, timeout=120, headers={"Authorization": f"Bearer {token}"}
    ) as api:
        for zipped in (False, True):
            for i in range(cfg.uploads):
                commit = test_key(f"bench-{time.time_ns()}", str(i))[:40]
                upload = upload_one(api, data, commit=commit, zipped=zipped, n=len(uploads) + 1)
                uploads.append(upload)
                print(
                    f"  upload {len(uploads)} ({'gzip' if zipped else 'xml'}): 202 in "
                    f"{upload.answer_s * 1000:.0f} ms, {upload.final or '?'} after "
                    f"{'—' if upload.processed_s is None else round(upload.processed_s, 2)} s",
                    flush=True,
                )
    done = server_times(stack, [u.answer["id"] for u in uploads if "id" in u.answer])
    for u in uploads:
        u.server_s = done.get(u.answer.get("id", -1))
    return {"file": {**counts, "bytes": len(data)}, "uploads": [asdict(u) for u in uploads]}


# --- The pages ----------------------------------------------------------------------------


def timed_gets(client: httpx.Client, urls: list[str], *, warmup: int, n: int) -> Timing:
    """GET the urls in turn: `warmup` requests not counted, then `n` timed ones."""
    timing = Timing()
    for i in range(warmup + n):
        url = urls[i % len(urls)]
        started = time.perf_counter()
        response = client.get(url)
        took = (time.perf_counter() - started) * 1000
        timing.statuses.add(response.status_code)
        if response.status_code != 200:
            print(f"  {url}: HTTP {response.status_code} {response.text[:200]!r}", flush=True)
        if i == 0:
            timing.cold_ms = took
        if i >= warmup:
            timing.ms.append(took)
            timing.bytes = len(response.content)
    return timing


PAGE_TARGETS = """
SELECT
  (SELECT id FROM evidence_trackedtest WHERE team_id = %(team)s ORDER BY flips DESC, id LIMIT 1),
  (SELECT array_agg(id) FROM (SELECT id FROM evidence_trackedtest WHERE team_id = %(team)s
                              ORDER BY hashint8(id) LIMIT %(n)s) x),
  (SELECT id FROM escapes_escape WHERE team_id = %(team)s AND category = 'flakiness'
   ORDER BY released_at DESC LIMIT 1),
  (SELECT array_agg(id ORDER BY released_at DESC) FROM escapes_escape
   WHERE team_id = %(team)s),
  (SELECT id FROM escapes_pipelinestage WHERE team_id = %(team)s AND name = 'Unit')
"""


def measure_pages(stack: BenchStack, session: str, cfg: Config) -> dict[str, Any]:
    import psycopg

    with psycopg.connect(stack.database_url) as conn:
        team = conn.execute("SELECT id FROM teams_team WHERE slug = %s", (TEAM,)).fetchone()
        row = conn.execute(PAGE_TARGETS, {"team": team[0] if team else 0, "n": cfg.requests})
        flakiest, tests, escape, escapes, unit = row.fetchone() or (None, [], None, [], None)
    pages = {
        "flakiness page (30 days, all stages: the default)": [f"/t/{TEAM}/tests/"],
        "flakiness page, 90 days": [f"/t/{TEAM}/tests/?window=90"],
        "flakiness page, Unit, 90 days": [f"/t/{TEAM}/tests/?stage={unit}&window=90"],
        "a test's page (the flakiest)": [f"/t/{TEAM}/tests/{flakiest}/"],
        f"a test's page ({len(tests)} different tests)": [f"/t/{TEAM}/tests/{t}/" for t in tests],
        "escape's test panel (latest Flakiness escape)": [f"/t/{TEAM}/escapes/{escape}/tests/"],
        f"escape's test panel ({len(escapes)} escapes in turn)": [
            f"/t/{TEAM}/escapes/{e}/tests/" for e in escapes
        ],
        "uploads page": [f"/t/{TEAM}/tests/uploads/"],
    }
    rss = RssSampler(stack)
    report: dict[str, Any] = {"rss_idle": rss.now(), "results": {}}
    rss.start()
    with httpx.Client(
        base_url=stack.url, timeout=120, headers={"Cookie": f"{SESSION_COOKIE}={session}"}
    ) as browser:
        for name, urls in pages.items():
            print(f"  {name} …", flush=True)
            timing = timed_gets(browser, urls, warmup=cfg.warmup, n=cfg.requests)
            report["results"][name] = {"url": urls[0], **timing.summary()}
    rss.stopping.set()
    rss.join()
    report["rss_peak"] = rss.peak
    return report


# --- The run -----------------------------------------------------------------------------


def _spin() -> None:
    while True:
        pass


def busy(n: int) -> list[Any]:
    """`n` processes that each keep a core busy: the machine shared with other work."""
    import multiprocessing

    procs = [multiprocessing.Process(target=_spin, daemon=True) for _ in range(n)]
    for proc in procs:
        proc.start()
    return procs


@dataclass(frozen=True)
class Config:
    tests: int
    cases: int
    uploads: int
    requests: int
    warmup: int
    seed: int


def seconds(values: list[float]) -> str:
    if not values:
        return "—"
    return f"{percentile(values, 0.5):.2f} / {max(values):.2f} s"


def print_report(facts: dict[str, str], cfg: Config, r: dict[str, Any]) -> None:
    print("\n## Machine")
    for key, value in facts.items():
        print(f"- {key}: {value}")
    v = r["volume"]
    print(
        f"\n## Volume\n- {v['rows']['evidence_trackedtest']:,} tests, "
        f"{v['rows']['evidence_dailyresult']:,} daily rows ({v['noteworthy_days']:,} with a "
        f"failure, skip, retry or flip), {v['rows']['evidence_commitresult']:,} commit rows, "
        f"{v['rows']['evidence_measuredcatch']:,} catches, {v['rows']['evidence_quarantine']} "
        f"quarantined, {v['rows']['evidence_resultupload']:,} upload records; "
        f"{v['cases_per_day']:,} cases a day on average"
    )
    print(f"- sizes: {v['sizes']}")
    if "build_seconds" in r:
        print(f"- built in {r['build_seconds']} s: {r['build_steps']}")
    if "uploads" in r:
        print_uploads(r["uploads"])
    if "pages" in r:
        print_pages(cfg, r["pages"])
    print(f"- load average at the end {r['load_at_end']}")


def print_uploads(up: dict[str, Any]) -> None:
    f = up["file"]
    print(
        f"\n## Uploads: {f['cases']:,} cases ({f['bytes'] / 1024 / 1024:.1f} MiB of XML), "
        f"{f['failures']} failures ({f['retried']} retried), {f['skipped']} skipped"
    )
    print(
        "| # | body | 202 answer | processed (202 → done seen) | server: received → processed"
        " | result | passed / failed / skipped |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for i, u in enumerate(up["uploads"], 1):
        body = f"{'gzip' if u['gzip'] else 'XML'}, {u['bytes'] / 1024:.0f} KiB"
        proc = "—" if u["processed_s"] is None else f"{u['processed_s']:.2f} s"
        server = "—" if u["server_s"] is None else f"{u['server_s']:.2f} s"
        print(
            f"| {i} | {body} | {u['answer_s'] * 1000:.0f} ms | {proc} | {server} | {u['final']} | "
            f"{u['counts']} |"
        )
    for zipped in (False, True):
        these = [u for u in up["uploads"] if u["gzip"] == zipped]
        answers = [u["answer_s"] for u in these]
        processed = [u["processed_s"] for u in these if u["processed_s"] is not None]
        ok = (
            bool(answers)
            and max(answers) < TARGET_ANSWER_S
            and len(processed) == len(these)
            and max(processed) < TARGET_PROCESSED_S
        )
        print(
            f"- {'gzip' if zipped else 'XML'}: 202 p50/max {seconds(answers)}, processed "
            f"p50/max {seconds(processed)}: target (<{TARGET_ANSWER_S:.0f} s, "
            f"<{TARGET_PROCESSED_S:.0f} s) {'met' if ok else 'MISSED'}"
        )


def print_pages(cfg: Config, pages: dict[str, Any]) -> None:
    print(f"\n## Pages, ms ({cfg.requests} sequential requests after {cfg.warmup} warm-up)")
    print("| page | cold | p50 | p95 | max | KiB | statuses |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for name, s in pages["results"].items():
        p95 = f"{s['p95_ms']}" + (" ✗" if s["p95_ms"] >= TARGET_P95_MS else "")
        print(
            f"| {name} | {s['cold_ms']} | {s['p50_ms']} | {p95} | {s['max_ms']} | {s['kb']} | "
            f"{s['statuses']} |"
        )
    worst = max(s["p95_ms"] for s in pages["results"].values())
    failed = [name for name, s in pages["results"].items() if s["statuses"] != [200]]
    verdict = "met" if worst < TARGET_P95_MS else "MISSED"
    if failed:
        verdict = f"not measured: {', '.join(failed)} answered other than 200"
    print(f"\nTarget (page p95 < {TARGET_P95_MS:.0f} ms): {verdict} (worst p95 {worst} ms)")
    print(f"- uvicorn RSS: idle {mib(pages['rss_idle'])}, peak {mib(pages['rss_peak'])}")


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--tests", type=int, default=20_000)
    parser.add_argument("--cases", type=int, default=20_000, help="test cases in the upload")
    parser.add_argument("--uploads", type=int, default=5, help="of each kind (XML, gzip)")
    parser.add_argument("--requests", type=int, default=100, help="per page, after warm-up")
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--web-workers", type=int, default=2)
    parser.add_argument("--build-only", action="store_true", help="build the volume, then stop")
    parser.add_argument(
        "--only", choices=("uploads", "pages"), help="measure only the uploads or only the pages"
    )
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    parser.add_argument(
        "--reuse", action="store_true", help="reuse the database if it holds the team (keeps it)"
    )
    parser.add_argument("--json", type=Path, help="also write the raw figures here")
    parser.add_argument("--logs", type=Path, help="copy the server's and worker's logs here")
    parser.add_argument(
        "--busy", type=int, default=0, help="processes kept spinning while it measures (0-8)"
    )
    args = parser.parse_args()
    if not os.environ.get("DATABASE_URL", "").startswith("postgres"):
        parser.error("needs DATABASE_URL=postgres://… (the benchmark is of PostgreSQL)")
    if not (100 <= args.tests <= 100_000 and 1 <= args.cases <= 100_000):
        parser.error("bounded runs only: 100-100,000 tests, 1-100,000 cases")
    if not 0 <= args.busy <= 8:
        parser.error("--busy: 0-8 processes")
    if not (1 <= args.uploads <= 20 and 1 <= args.requests <= 1000 and 0 <= args.warmup <= 50):
        parser.error("bounded runs only: 1-20 uploads, 1-1,000 requests, 0-50 warm-up")
    cfg = Config(args.tests, args.cases, args.uploads, args.requests, args.warmup, args.seed)

    with tempfile.TemporaryDirectory(prefix="leakseal-ci-") as tmp:
        stack = BenchStack(
            var_dir=Path(tmp),
            database_url=own_database_url(os.environ["DATABASE_URL"], "_ci_results"),
            redis_url=os.environ.get("REDIS_URL", ""),
            web_workers=args.web_workers,
        )
        report: dict[str, Any] = {}
        facts: dict[str, str] = {}
        spinning: list[Any] = []
        keep = args.keep or args.reuse or args.build_only
        try:
            if args.reuse and volume(stack) is not None:
                print(f"Reusing {stack.database_url} …", flush=True)
                stack.manage("migrate", "--noinput", "-v0")
            else:
                print(f"Building a year of {cfg.tests:,} tests in {stack.database_url} …")
                report.update(build(stack, cfg))
            report["volume"] = volume(stack)
            print(json.dumps(report, indent=1, default=str), flush=True)
            if args.build_only:
                return 0
            if stack.redis_url:
                import redis

                redis.Redis.from_url(stack.redis_url).delete("celery")
            who = run_python(stack, SIGN_IN)
            if who["keys_match"] is False:
                print("WARNING: the volume's test keys are not evidence.processing.test_key's")
            report["keys_match"] = who["keys_match"]
            stack.manage("collectstatic", "--noinput", "-v0")
            stack.start_worker()
            stack.start_web()
            spinning = busy(args.busy)
            facts = machine(stack)
            facts["busy processes while measuring"] = str(args.busy)
            if args.only != "pages":
                print(f"Uploads to {stack.url} …", flush=True)
                report["uploads"] = measure_uploads(stack, who["token"], cfg)
            if args.only != "uploads":
                print("Pages …", flush=True)
                report["pages"] = measure_pages(stack, who["session"], cfg)
            report["volume"] = volume(stack)
            report["load_at_end"] = " ".join(f"{x:.2f}" for x in os.getloadavg())
        except BaseException:
            print(stack.log_tail(), file=sys.stderr)
            raise
        finally:
            for proc in spinning:
                proc.terminate()
            stack.stop()
            if args.logs:
                args.logs.mkdir(parents=True, exist_ok=True)
                for log in Path(tmp).glob("*.log"):
                    shutil.copy(log, args.logs / log.name)
            if not keep:
                pg_drop(stack.database_url)
    print_report(facts, cfg, report)
    if args.json:
        args.json.write_text(
            json.dumps({"machine": facts, "config": asdict(cfg), **report}, indent=2, default=str)
        )
    uploads = report.get("uploads", {}).get("uploads", [])
    pages = report.get("pages", {}).get("results", {})
    failed = any(u["final"] != "done" for u in uploads) or any(
        s["statuses"] != [200] for s in pages.values()
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
