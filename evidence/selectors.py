"""Reads for the team's test evidence pages (docs/metrics.md, "Test evidence").

Every function here runs a fixed number of queries whatever the volume: the windows are read
from `DailyResult`, and the flakiness page only from its noteworthy rows through the partial
index `daily_team_day_noteworthy` (the filter below repeats the index's condition exactly, so
PostgreSQL can use it), aggregated in SQL.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

from django.db import connection
from django.db.models import Count, Q, QuerySet, Sum
from django.utils import timezone

from escapes.models import PipelineStage, Release
from escapes.selectors import team_releases, team_stages
from evidence.models import DailyResult, MeasuredCatch, Quarantine, ResultUpload, TrackedTest
from teams.models import Team

WINDOWS = (7, 30, 90)
DEFAULT_WINDOW = 30
FLAKIEST_LIMIT = 50
QUARANTINE_LIMIT = 50
# "Retried to green before a release that leaked": the releases looked at, the days before each.
LEAKY_RELEASES_LIMIT = 5
BEFORE_RELEASE_DAYS = 7
RETRIED_PER_STAGE_LIMIT = 10
STRIP_DAYS = 90
CATCHES_LIMIT = 10

# Exactly the condition of the partial index daily_team_day_noteworthy (evidence/models.py).
NOTEWORTHY = Q(failures__gt=0) | Q(skips__gt=0) | Q(retries__gt=0) | Q(flips__gt=0)


def flakiness(flips: int, commits: int) -> float | None:
    """Flipped commits ÷ commits it passed or failed on; None without any."""
    if not commits:
        return None
    return min(flips / commits, 1.0)


def has_uploads(team: Team) -> bool:
    return ResultUpload.objects.filter(team=team).exists()


@dataclass
class FlakyRow:
    test: TrackedTest
    flips: int
    retries: int
    failures: int
    runs: int
    commits: int

    @property
    def flakiness(self) -> float | None:
        return flakiness(self.flips, self.commits)


def _noteworthy(team: Team, start: date, end: date, stage: PipelineStage | None) -> QuerySet:
    rows = DailyResult.objects.filter(team=team, day__gte=start, day__lte=end).filter(NOTEWORTHY)
    if stage is not None:
        rows = rows.filter(stage=stage)
    return rows


def flakiest_tests(
    team: Team, start: date, end: date, stage: PipelineStage | None = None
) -> list[FlakyRow]:
    """The tests with the most flips in the window (ties: the higher flakiness, then the
    latest run), at most FLAKIEST_LIMIT. Three queries."""
    # Aggregated in SQL. The noteworthy rows are read through the partial index (its condition
    # verbatim, with literal zeros); a flipped test's commits over the window come from all its
    # days, read through the unique (test, day) index.
    daily = DailyResult._meta.db_table
    tests_table = TrackedTest._meta.db_table
    params: list[int | date] = [team.pk, start, end]
    stage_sql = ""
    if stage is not None:
        stage_sql = " AND d.stage_id = %s"
        params.append(stage.pk)
    # Only the tests that can make the list get their commits counted: those with at least
    # as many flips as the FLAKIEST_LIMIT-th (the rest lose on flips alone). MATERIALIZED keeps
    # PostgreSQL from inlining a CTE and so counting a test's commits more than once.
    params += [FLAKIEST_LIMIT - 1, start, end, FLAKIEST_LIMIT]
    sql = f"""
        WITH agg AS MATERIALIZED (
            SELECT d.test_id, SUM(d.flips) AS flips, SUM(d.retries) AS retries,
                   SUM(d.failures) AS failures
            FROM {daily} d
            WHERE d.team_id = %s AND d.day >= %s AND d.day <= %s
              AND (d.failures > 0 OR d.skips > 0 OR d.retries > 0 OR d.flips > 0){stage_sql}
            GROUP BY d.test_id
            HAVING SUM(d.flips) > 0
        ), candidates AS MATERIALIZED (
            SELECT agg.test_id, agg.flips, agg.retries, agg.failures FROM agg
            WHERE agg.flips >= COALESCE(
                (SELECT a.flips FROM agg a ORDER BY a.flips DESC LIMIT 1 OFFSET %s), 0)
        ), counted AS MATERIALIZED (
            SELECT c.test_id, c.flips, c.retries, c.failures,
                   (SELECT COALESCE(SUM(x.commits), 0) FROM {daily} x
                    WHERE x.test_id = c.test_id AND x.day >= %s AND x.day <= %s) AS commits,
                   (SELECT t.last_run_at FROM {tests_table} t WHERE t.id = c.test_id) AS last_run
            FROM candidates c
        )
        SELECT k.test_id, k.flips, k.retries, k.failures, k.commits
        FROM counted k
        ORDER BY k.flips DESC,
                 CAST(k.flips AS REAL) / COALESCE(NULLIF(k.commits, 0), 1) DESC,
                 k.last_run DESC, k.test_id
        LIMIT %s
    """  # noqa: S608 (only the models' table names and a fixed clause are put in; values are parameters)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        ranked = [
            {
                "test_id": test_id,
                "flip_sum": int(flips),
                "retry_sum": int(retries),
                "failure_sum": int(failures),
                "commit_sum": int(commits),
            }
            for test_id, flips, retries, failures, commits in cursor.fetchall()
        ]
    if not ranked:
        return []
    ids = [row["test_id"] for row in ranked]
    runs = dict(
        DailyResult.objects.filter(test_id__in=ids, day__gte=start, day__lte=end)
        .order_by()
        .values("test_id")
        .annotate(total=Sum("runs"))
        .values_list("test_id", "total")
    )
    tests = TrackedTest.objects.select_related("stage", "quarantine").in_bulk(ids)
    return [
        FlakyRow(
            test=tests[row["test_id"]],
            flips=row["flip_sum"],
            retries=row["retry_sum"],
            failures=row["failure_sum"],
            runs=runs.get(row["test_id"], 0) or 0,
            commits=row["commit_sum"] or 0,
        )
        for row in ranked
        if row["test_id"] in tests
    ]


@dataclass
class QuarantineRow:
    test: TrackedTest
    since: datetime
    reason: str
    who: str  # a person's name, or "skipped in the code"
    listed: bool  # on the team's list (else: skipped with a reason)


@dataclass
class Quarantined:
    rows: list[QuarantineRow]
    listed_total: int
    skipped_total: int

    @property
    def total(self) -> int:
        return self.listed_total + self.skipped_total

    @property
    def shown_all(self) -> bool:
        return len(self.rows) >= self.total


def quarantined(team: Team, stage: PipelineStage | None = None) -> Quarantined:
    """The team's quarantine list and the tests skipped with a reason, longest first. At most
    four queries."""
    listed = Quarantine.objects.filter(test__team=team)
    skipped = TrackedTest.objects.filter(team=team, skipped_since__isnull=False).exclude(
        skip_reason=""
    )
    if stage is not None:
        listed = listed.filter(test__stage=stage)
        skipped = skipped.filter(stage=stage)
    # A test both on the list and skipped shows once, as listed.
    skipped = skipped.filter(quarantine__isnull=True)
    listed_rows = [
        QuarantineRow(
            test=entry.test,
            since=entry.added_at,
            reason=entry.reason,
            who=_name(entry.added_by),
            listed=True,
        )
        for entry in listed.select_related("test__stage", "added_by").order_by("added_at", "pk")[
            :QUARANTINE_LIMIT
        ]
    ]
    skipped_rows = [
        QuarantineRow(
            test=test,
            since=test.skipped_since,  # type: ignore[arg-type]
            reason=test.skip_reason,
            who="",
            listed=False,
        )
        for test in skipped.select_related("stage").order_by("skipped_since", "pk")[
            :QUARANTINE_LIMIT
        ]
    ]
    rows = sorted(listed_rows + skipped_rows, key=lambda row: row.since)[:QUARANTINE_LIMIT]
    # Counted only when a list was cut at the limit.
    listed_total = len(listed_rows) if len(listed_rows) < QUARANTINE_LIMIT else listed.count()
    skipped_total = len(skipped_rows) if len(skipped_rows) < QUARANTINE_LIMIT else skipped.count()
    return Quarantined(rows=rows, listed_total=listed_total, skipped_total=skipped_total)


def _name(user: object) -> str:
    if user is None:
        return "someone no longer here"
    full = user.get_full_name()  # type: ignore[attr-defined]
    return full or user.get_username()  # type: ignore[attr-defined]


@dataclass
class RetriedTest:
    test: TrackedTest
    retries: int


@dataclass
class LeakyRelease:
    release: Release
    escapes: int
    start: date
    end: date
    stages: list[tuple[PipelineStage, list[RetriedTest], int]] = field(default_factory=list)


def retried_before_leaky_releases(
    team: Team, start: date, end: date, stage: PipelineStage | None = None
) -> list[LeakyRelease]:
    """Per stage, the tests retried to green in the BEFORE_RELEASE_DAYS days before each of the
    team's releases that leaked (has escapes), released in the window; the newest releases
    first, at most LEAKY_RELEASES_LIMIT. Three queries."""
    releases = list(
        team_releases(team)
        .filter(released_at__date__gte=start, released_at__date__lte=end)
        .annotate(escape_count=Count("escapes"))
        .filter(escape_count__gt=0)
        .order_by("-released_at", "-pk")[:LEAKY_RELEASES_LIMIT]
    )
    if not releases:
        return []
    leaky = []
    spans = Q()
    for release in releases:
        last = release.released_at.astimezone(UTC).date()
        first = last - timedelta(days=BEFORE_RELEASE_DAYS - 1)
        leaky.append(
            LeakyRelease(
                release=release,
                escapes=release.escape_count,
                start=first,
                end=last,
            )
        )
        spans |= Q(day__gte=first, day__lte=last)
    first_day = min(item.start for item in leaky)
    last_day = max(item.end for item in leaky)
    # Noteworthy rows with a retry on any of those days: one row per test and day.
    rows = list(
        _noteworthy(team, first_day, last_day, stage)
        .filter(spans, retries__gt=0)
        .order_by()
        .values_list("test_id", "stage_id", "day", "retries")
    )
    per_release: list[dict[int, dict[int, int]]] = []
    ids: set[int] = set()
    for item in leaky:
        by_stage: dict[int, dict[int, int]] = {}
        for test_id, stage_id, day, retries in rows:
            if item.start <= day <= item.end:
                tests = by_stage.setdefault(stage_id, {})
                tests[test_id] = tests.get(test_id, 0) + retries
        per_release.append(by_stage)
    # Only the tests shown are read.
    for by_stage in per_release:
        for tests in by_stage.values():
            top = sorted(tests.items(), key=lambda kv: (-kv[1], kv[0]))[:RETRIED_PER_STAGE_LIMIT]
            ids.update(test_id for test_id, _ in top)
    tests_by_id = TrackedTest.objects.select_related("stage").in_bulk(list(ids))
    stages = {s.pk: s for s in team_stages(team)} if rows else {}
    for item, by_stage in zip(leaky, per_release, strict=True):
        for stage_id in sorted(by_stage, key=lambda pk: (stages[pk].position, pk)):
            tests = by_stage[stage_id]
            top = sorted(tests.items(), key=lambda kv: (-kv[1], kv[0]))[:RETRIED_PER_STAGE_LIMIT]
            item.stages.append(
                (
                    stages[stage_id],
                    [RetriedTest(tests_by_id[pk], n) for pk, n in top if pk in tests_by_id],
                    len(tests),
                )
            )
    return leaky


# --- One test's page ---


@dataclass
class StripDay:
    day: date
    runs: int = 0
    passes: int = 0
    failures: int = 0
    skips: int = 0
    retries: int = 0
    flips: int = 0

    @property
    def state(self) -> str:
        if not self.runs:
            return "none"
        if self.flips or self.retries or (self.failures and self.passes):
            return "flaky"
        if self.failures:
            return "failed"
        if self.passes:
            return "passed"
        return "skipped"

    @property
    def words(self) -> str:
        if not self.runs:
            return "no runs"
        parts = [f"{self.runs} run{'s' if self.runs != 1 else ''}"]
        for count, word in (
            (self.passes, "passed"),
            (self.failures, "failed"),
            (self.skips, "skipped"),
            (self.retries, "retried"),
            (self.flips, "flipped"),
        ):
            if count:
                parts.append(f"{count} {word}")
        return ", ".join(parts)


@dataclass
class TestHistory:
    test: TrackedTest
    strip: list[StripDay]
    window_flips: int
    window_commits: int
    catches: list[MeasuredCatch]

    @property
    def passes(self) -> int:
        return max(self.test.runs - self.test.failures - self.test.skips, 0)

    @property
    def flakiness(self) -> float | None:
        return flakiness(self.window_flips, self.window_commits)

    @property
    def quarantine(self) -> Quarantine | None:
        try:
            return self.test.quarantine
        except Quarantine.DoesNotExist:
            return None


def test_for(team: Team, pk: int) -> TrackedTest | None:
    return (
        TrackedTest.objects.select_related("stage", "quarantine", "quarantine__added_by")
        .filter(team=team, pk=pk)
        .first()
    )


def test_named(team: Team, name: str) -> TrackedTest | None:
    """The team's first test (by stage) of this name, e.g. for the demo's quarantine list."""
    return TrackedTest.objects.filter(team=team, name=name).order_by("stage__position").first()


def test_history(test: TrackedTest) -> TestHistory:
    """A test's last STRIP_DAYS days (flakiness over them too) and latest catches. Two
    queries."""
    end = utc_today()
    start = end - timedelta(days=STRIP_DAYS - 1)
    days = {
        row.day: row
        for row in DailyResult.objects.filter(test=test, day__gte=start, day__lte=end).only(
            "day", "runs", "passes", "failures", "skips", "retries", "flips", "commits"
        )
    }
    strip = []
    flips = commits = 0
    for offset in range(STRIP_DAYS):
        day = start + timedelta(days=offset)
        row = days.get(day)
        if row is None:
            strip.append(StripDay(day))
            continue
        flips += row.flips
        commits += row.commits
        strip.append(
            StripDay(
                day,
                runs=row.runs,
                passes=row.passes,
                failures=row.failures,
                skips=row.skips,
                retries=row.retries,
                flips=row.flips,
            )
        )
    catches = list(test.catches.order_by("-fixed_at", "-pk")[:CATCHES_LIMIT])
    return TestHistory(
        test=test, strip=strip, window_flips=flips, window_commits=commits, catches=catches
    )


def utc_today() -> date:
    return timezone.now().astimezone(UTC).date()


def window_range(window: int) -> tuple[date, date]:
    """The UTC days of a window of `window` days ending today, both included."""
    end = utc_today()
    return end - timedelta(days=window - 1), end


def uploads(team: Team) -> QuerySet[ResultUpload]:
    return (
        ResultUpload.objects.filter(team=team)
        .select_related("stage")
        .order_by("-received_at", "-pk")
    )
