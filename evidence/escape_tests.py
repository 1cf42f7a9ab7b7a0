"""An escape's tests: what its stage's tests of its component did in the weeks before it shipped.

The retro board, the escape's page and the retro summary show, per escape, the tests of the
escape's stage and component that were flaky (flipped or retried), skipped or quarantined in
the WINDOW_DAYS before the escape's release (the release's `released_at`, else the escape's
own `released_at`, else when it was detected), each with its history in that window: "the
test existed but was ignored" is shown, not argued (issue 14, point 4; the definitions are
docs/metrics.md, "Test evidence").

A test is the escape's when it is of the escape's stage and, if the escape names a component,
its `component` is that component (case-insensitive) or the component's name appears in its
classname or file path ("checkout" matches tests/checkout/test_cart.py and
com.acme.checkout.CartIT). Without a component every test of the stage qualifies.

Reads (`escape_tests`) take a fixed number of queries whatever the volume: the candidates are
aggregated in SQL from the noteworthy `DailyResult` rows (partial index
daily_team_day_noteworthy: the WHERE repeats its condition), the team's quarantine list and
the tests skipped with a reason; at most PANEL_LIMIT are listed, with the count of the rest.

Writes: members who write attach one of the team's tests to an escape classified
Flakiness / False Negative, or detach it; each is audited and announced to every open board
the escape is on.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.db.models import Sum
from django.shortcuts import get_object_or_404

from audit.models import Action
from audit.services import record
from escapes.models import Category, Escape
from escapes.selectors import get_escape_for_team
from evidence.models import DailyResult, EscapeTest, ResultUpload, TrackedTest
from retros import services as retro_services
from teams.models import Team

WINDOW_DAYS = 28
PANEL_LIMIT = 20

NOT_FLAKINESS_MESSAGE = (
    "Tests can be attached to an escape classified as Flakiness / False Negative; "
    "classify it first."
)


@dataclass
class TestHistory:
    """One test and what it did in the window (all counts are the window's)."""

    test: TrackedTest
    runs: int = 0
    passes: int = 0
    failures: int = 0
    skips: int = 0
    retries: int = 0
    flips: int = 0
    commits: int = 0
    quarantine_reason: str = ""
    quarantined_since: datetime | None = None
    attached: bool = False

    @property
    def flakiness(self) -> float | None:
        """Flipped commits ÷ commits it ran on in the window (docs/metrics.md, "Flakiness")."""
        return self.flips / self.commits if self.commits else None

    @property
    def flakiness_text(self) -> str:
        value = self.flakiness
        return "—" if value is None else f"{value * 100:.0f} %"

    @property
    def quarantined(self) -> bool:
        return self.quarantined_since is not None

    @property
    def reasons(self) -> list[str]:
        """Why it is listed, in words: flaky, retried, skipped, quarantined."""
        out = []
        if self.flips:
            out.append("flaky")
        if self.retries:
            out.append("retried")
        if self.quarantined:
            out.append("quarantined")
        elif self.skips:
            out.append("skipped")
        return out


@dataclass
class EscapeTests:
    """The panel of one escape."""

    escape: Escape
    window_start: date
    window_end: datetime
    window_from: str  # what the window ends at: "release 2.4", "release time", "detection"
    needs_stage: bool = False
    has_uploads: bool = True
    tests: list[TestHistory] = field(default_factory=list)
    more: int = 0  # candidates beyond the ones listed
    attached: list[TestHistory] = field(default_factory=list)

    @property
    def offer_attach(self) -> bool:
        return self.escape.category == Category.FLAKINESS


def window_of(escape: Escape) -> tuple[datetime, str]:
    """When the window ends, and what that moment is, in words."""
    if escape.release is not None:
        return escape.release.released_at, f"release {escape.release.version}"
    if escape.released_at is not None:
        return escape.released_at, "its release time"
    return escape.detected_at, "its detection"


def _like(component: str) -> str:
    escaped = component.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


# The noteworthy days of the team in the window (the partial index's condition, repeated so
# the planner uses it), of the stage; the team's quarantine list; the tests skipped with a
# reason since before the window's end. Of those, the tests of the component (any, when the
# component is "") not attached to the escape (those are listed apart): one statement, the
# first `limit` and the count of them all.
CANDIDATES_SQL = """
    WITH w AS (
        SELECT d.test_id, SUM(d.flips) AS flips, SUM(d.retries) AS retries,
               SUM(d.skips) AS skips
        FROM evidence_dailyresult d
        WHERE d.team_id = %(team)s AND d.day >= %(start)s AND d.day <= %(end_day)s
          AND (d.failures > 0 OR d.skips > 0 OR d.retries > 0 OR d.flips > 0)
          AND d.stage_id = %(stage)s
        GROUP BY d.test_id
        HAVING SUM(d.flips) > 0 OR SUM(d.retries) > 0 OR SUM(d.skips) > 0
    ),
    cand AS (
        SELECT test_id AS id FROM w
        UNION
        SELECT q.test_id FROM evidence_quarantine q
          JOIN evidence_trackedtest qt ON qt.id = q.test_id
         WHERE qt.team_id = %(team)s AND qt.stage_id = %(stage)s AND q.added_at < %(end)s
        UNION
        SELECT s.id FROM evidence_trackedtest s
         WHERE s.team_id = %(team)s AND s.skipped_since IS NOT NULL
           AND s.skipped_since < %(end)s AND s.stage_id = %(stage)s
    )
    -- MATERIALIZED keeps the component's LIKEs on the candidates' rows (a few hundred, found
    -- by id) rather than on every test of the team.
    , x AS MATERIALIZED (
        SELECT t.id, t.component, t.classname, t.file, t.last_run_at,
               COALESCE(w.flips, 0) AS flips, COALESCE(w.retries, 0) AS retries,
               COALESCE(w.skips, 0) AS skips,
               CASE WHEN q.id IS NOT NULL OR t.skipped_since IS NOT NULL THEN 1 ELSE 0 END
                 AS quarantined
          FROM cand
          JOIN evidence_trackedtest t ON t.id = cand.id
          LEFT JOIN w ON w.test_id = t.id
          LEFT JOIN evidence_quarantine q ON q.test_id = t.id
         WHERE t.id NOT IN (
               SELECT a.test_id FROM evidence_escapetest a WHERE a.escape_id = %(escape)s)
    )
    SELECT x.id, COUNT(*) OVER () AS total
      FROM x
     WHERE (%(component)s = ''
            OR LOWER(x.component) = %(component)s
            OR LOWER(x.classname) LIKE %(pattern)s ESCAPE '\\'
            OR LOWER(x.file) LIKE %(pattern)s ESCAPE '\\')
     ORDER BY x.flips DESC, x.retries DESC, x.quarantined DESC, x.skips DESC,
              x.last_run_at DESC, x.id
     LIMIT %(limit)s
"""


# For this one statement (SET LOCAL: its transaction only). With PostgreSQL's default
# random_page_cost of 4 (spinning disks) the planner reads every row of the window through the
# `daily_day` index (a year of 20,000 tests: 580,000 rows, ~100 ms) rather than the few
# noteworthy ones through `daily_team_day_noteworthy` (~29,000, ~10 ms); 1.1 is the usual
# value for SSDs. No JIT: compiling costs more than the whole query.
PLANNER_SETTINGS = "SET LOCAL random_page_cost = 1.1; SET LOCAL jit = off"


def escape_tests(escape: Escape, *, limit: int = PANEL_LIMIT) -> EscapeTests:
    """The escape's panel: its candidate tests with their history, and its attached tests.

    `escape` comes with its release and stage (get_escape_for_team selects them). At most five
    queries: the candidates, the attached tests, the listed tests' rows, their window counts
    and, when nothing is listed, whether the team ever uploaded.
    """
    end, end_words = window_of(escape)
    start = (end - timedelta(days=WINDOW_DAYS)).date()
    panel = EscapeTests(escape=escape, window_start=start, window_end=end, window_from=end_words)

    ranked: list[int] = []
    if escape.stage_id is None:
        panel.needs_stage = True
    else:
        component = escape.component.strip()
        params: dict[str, Any] = {
            "team": escape.team_id,
            "escape": escape.pk,
            "stage": escape.stage_id,
            "start": start,
            "end_day": end.date(),
            "end": end,
            "component": component.lower(),
            "pattern": _like(component),
            "limit": limit,
        }
        with transaction.atomic(), connection.cursor() as cursor:
            if connection.vendor == "postgresql":
                cursor.execute(PLANNER_SETTINGS)
            cursor.execute(CANDIDATES_SQL, params)
            rows = cursor.fetchall()
        ranked = [row[0] for row in rows]
        panel.more = max(0, int(rows[0][1]) - len(rows)) if rows else 0

    attached_ids = list(
        EscapeTest.objects.filter(escape=escape)
        .order_by("added_at", "id")
        .values_list("test_id", flat=True)
    )
    wanted = list(dict.fromkeys([*ranked, *attached_ids]))
    tests = (
        {
            t.pk: t
            for t in TrackedTest.objects.filter(pk__in=wanted).select_related("quarantine", "stage")
        }
        if wanted
        else {}
    )
    counts: dict[int, dict[str, Any]] = (
        {
            row["test_id"]: dict(row)
            for row in DailyResult.objects.filter(
                test_id__in=wanted, day__gte=start, day__lte=end.date()
            )
            .values("test_id")
            .annotate(
                runs=Sum("runs"),
                passes=Sum("passes"),
                failures=Sum("failures"),
                skips=Sum("skips"),
                retries=Sum("retries"),
                flips=Sum("flips"),
                commits=Sum("commits"),
            )
            .order_by()
        }
        if wanted
        else {}
    )

    def history(test_id: int) -> TestHistory | None:
        test = tests.get(test_id)
        if test is None:
            return None
        got: dict[str, Any] = counts.get(test_id, {})
        item = TestHistory(
            test=test,
            runs=got.get("runs") or 0,
            passes=got.get("passes") or 0,
            failures=got.get("failures") or 0,
            skips=got.get("skips") or 0,
            retries=got.get("retries") or 0,
            flips=got.get("flips") or 0,
            commits=got.get("commits") or 0,
            attached=test_id in attached_ids,
        )
        quarantine = getattr(test, "quarantine", None)
        if quarantine is not None and quarantine.added_at < end:
            item.quarantine_reason, item.quarantined_since = quarantine.reason, quarantine.added_at
        elif test.skipped_since is not None and test.skipped_since < end:
            item.quarantine_reason, item.quarantined_since = test.skip_reason, test.skipped_since
        return item

    panel.tests = [h for h in map(history, ranked) if h is not None]
    panel.attached = [h for h in map(history, attached_ids) if h is not None]
    if not panel.tests and not panel.attached:
        panel.has_uploads = ResultUpload.objects.filter(team_id=escape.team_id).exists()
    return panel


# --- Writes.


def _target(escape: Escape, test: TrackedTest) -> str:
    return f"escape #{escape.pk} “{escape.title}”: test {test}"[:300]


def _require_same_team(escape: Escape, test: TrackedTest) -> None:
    if test.team_id != escape.team_id:
        raise ValidationError({"test": "That test is not one of this team's."})


@transaction.atomic
def escape_test_attach(*, escape: Escape, test: TrackedTest, by: User) -> EscapeTest:
    """Attach `test` to the escape: it existed and did not stop the leak. Attaching it again
    changes nothing."""
    _require_same_team(escape, test)
    attached = EscapeTest.objects.filter(escape=escape, test=test).first()
    if attached is not None:
        return attached
    # The boards' locks first (their lock order), then the escape as it is now.
    retro_services.escape_boards_changed(escape=escape)
    fresh = get_escape_for_team(escape.team, escape.pk)
    if fresh.category != Category.FLAKINESS:
        raise ValidationError(NOT_FLAKINESS_MESSAGE, code="category")
    link, created = EscapeTest.objects.get_or_create(
        escape=fresh, test=test, defaults={"added_by": by}
    )
    if created:
        record(
            team=escape.team,
            actor=by,
            action=Action.ESCAPE_TEST_ATTACHED,
            target=_target(fresh, test),
            changes={"escape": fresh.pk, "test": test.pk, "stage": test.stage.name},
        )
    return link


@transaction.atomic
def escape_test_detach(*, escape: Escape, test: TrackedTest, by: User) -> bool:
    """Detach `test` from the escape; False when it was not attached (nothing changes)."""
    _require_same_team(escape, test)
    fresh = get_escape_for_team(escape.team, escape.pk)
    if not EscapeTest.objects.filter(escape=fresh, test=test).exists():
        return False
    retro_services.escape_boards_changed(escape=fresh)
    deleted, _ = EscapeTest.objects.filter(escape=fresh, test=test).delete()
    if deleted:
        record(
            team=escape.team,
            actor=by,
            action=Action.ESCAPE_TEST_DETACHED,
            target=_target(fresh, test),
            changes={"escape": fresh.pk, "test": test.pk, "stage": test.stage.name},
        )
    return bool(deleted)


def get_test_for_team(team: Team, pk: int) -> TrackedTest:
    """The team's tracked test, or 404 (another team's is indistinguishable from none)."""
    return get_object_or_404(TrackedTest.objects.select_related("stage"), team=team, pk=pk)
