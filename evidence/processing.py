"""The worker's side of an upload: fold a pipeline run's results into per-test rows.

It applies the definitions of docs/metrics.md, "Test evidence: runs, retries, flips,
catches, quarantine", pinned by tests/evidence/test_definitions.py:

- a **run** of a test is all its cases in the upload (`junit.run_results`), at the upload's
  `ran_at`, on its commit;
- **retried**: the run had a failed attempt and then a passing one (counted once per upload);
- **flip**: the test's outcomes on the commit (`CommitResult`, a bit set) gain both passed
  and failed, in one run (a retry) or across runs; counted once per test and commit, on the
  run's UTC day;
- **caught (measured)**: a failure opens at a failing run on a commit (`failing_since`,
  `failing_commit`) when none is open; a later pass, not retried, on a commit on which the
  test never failed, closes it as a `MeasuredCatch`. A pass that is a flip (a re-run of a
  commit it failed on, or a retried pass) closes it with no catch. A failure on a commit it
  also passed on (a flip) opens none. Skipped runs neither open nor close;
- **quarantined by the code**: every run since `skipped_since` was skipped with a message
  (`skip_reason`, the latest message); a passed or failed run, or a skip without a message,
  clears it;
- `DailyResult.commits` counts the commits it passed or failed on (the denominator of
  flakiness), on the day the first such outcome on that commit arrived.

**Order.** Uploads are folded as they arrive, under a lock on the stage. A run older than the
test's latest run (a late upload) adds to the counters, the day's row and the commit's
outcomes (so its flips count) and can move `first_run_at` back and `last_passed_at` forward,
but it does not change the latest outcome, the open failure nor the quarantine: those follow
the newest run, and never go back in time.

Everything happens in one transaction: a file the worker cannot read after all marks the
upload failed with the reason and keeps nothing of it.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from typing import Any

from django.db import connection, transaction
from django.db.models import DateField, DateTimeField, Field, Model
from django.utils import timezone

from evidence import junit
from evidence.catches import measured_catches_refresh
from evidence.models import (
    OUTCOME_BITS,
    UNZIPPED_MAX_BYTES,
    CommitResult,
    DailyResult,
    MeasuredCatch,
    Outcome,
    ResultUpload,
    TrackedTest,
    UploadStatus,
)

log = logging.getLogger(__name__)

BATCH = 2000
UPSERT_BATCH = 5000
PASSED_BIT = OUTCOME_BITS[Outcome.PASSED]
FAILED_BIT = OUTCOME_BITS[Outcome.FAILED]
SKIPPED_BIT = OUTCOME_BITS[Outcome.SKIPPED]
FLIPPED = PASSED_BIT | FAILED_BIT


def test_key(classname: str, name: str) -> str:
    """A test's identity in its stage: sha256 of classname and name."""
    return hashlib.sha256(f"{classname}\0{name}".encode()).hexdigest()


# Keep pytest from collecting the function above when a test module imports it.
test_key.__test__ = False  # type: ignore[attr-defined]


def stage_lock(stage_id: int) -> None:
    """One upload of a stage folded at a time (its tests' rows are read, then written).

    A PostgreSQL advisory lock held until the transaction ends; SQLite writes one
    transaction at a time anyway.
    """
    if connection.vendor != "postgresql":
        return
    digest = hashlib.sha256(f"evidence.stage:{stage_id}".encode()).digest()
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_advisory_xact_lock(%s)", [int.from_bytes(digest[:8], "big", signed=True)]
        )


@dataclass
class Folded:
    """What one upload changed, for the caller and the tests."""

    tests: int = 0
    created: int = 0
    flips: int = 0
    retries: int = 0
    catches: int = 0
    first_fix: datetime | None = None
    # Seconds spent reading the stage's rows, folding in Python, writing (for the log).
    seconds: dict[str, float] = field(default_factory=dict)


def upload_process(upload_id: int) -> str:
    """Fold one upload; "done", "failed", or "skipped" when it is gone or done already."""
    with transaction.atomic():
        upload = (
            ResultUpload.objects.select_for_update()
            .select_related("team", "stage")
            .filter(pk=upload_id)
            .first()
        )
        if upload is None or upload.status != UploadStatus.QUEUED:
            return "skipped"
        clock = time.perf_counter()
        try:
            runs = _read(upload)
        except (junit.JUnitError, junit.TooLarge) as exc:
            _refuse(upload, str(exc))
            return "failed"
        stage_lock(upload.stage_id)
        parsed = time.perf_counter() - clock
        folded = fold(upload, runs)
        log.info(
            "upload %s: %s tests (%s new), %s flips, %s retries, %s catches; %s",
            upload.pk,
            folded.tests,
            folded.created,
            folded.flips,
            folded.retries,
            folded.catches,
            ", ".join(
                f"{what} {secs:.2f} s" for what, secs in {"parse": parsed, **folded.seconds}.items()
            ),
        )
        upload.passed = sum(1 for r in runs if r.outcome == Outcome.PASSED)
        upload.failed = sum(1 for r in runs if r.outcome == Outcome.FAILED)
        upload.skipped = sum(1 for r in runs if r.outcome == Outcome.SKIPPED)
        upload.status = UploadStatus.DONE
        upload.error = ""
        upload.processed_at = timezone.now()
        upload.save(
            update_fields=["passed", "failed", "skipped", "status", "error", "processed_at"]
        )
        upload.files.all().delete()
        # Every processed upload recounts: a run with no catch still makes its stage's count
        # for the release a measured 0 rather than unknown (docs/metrics.md).
        since = min(filter(None, [folded.first_fix, upload.ran_at]))
        team_id, stage_id = upload.team_id, upload.stage_id
        transaction.on_commit(
            lambda: measured_catches_refresh(team_id, {stage_id}, since), robust=True
        )
    return "done"


def _read(upload: ResultUpload) -> list[junit.RunResult]:
    cases: list[junit.CaseResult] = []
    unzipped = 0
    for stored in upload.files.order_by("id"):
        xml = junit.unpack(
            bytes(stored.data), limit=UNZIPPED_MAX_BYTES - unzipped, name=stored.name
        )
        unzipped += len(xml)
        cases.extend(junit.cases(xml, name=stored.name))
    return junit.run_results(cases)


def _refuse(upload: ResultUpload, reason: str) -> None:
    """The worker could not read a file after all: keep nothing of it but the reason."""
    log.warning("upload %s refused by the worker: %s", upload.pk, reason)
    upload.status = UploadStatus.FAILED
    upload.error = reason[:500]
    upload.processed_at = timezone.now()
    upload.save(update_fields=["status", "error", "processed_at"])
    upload.files.all().delete()


def _batches[T](items: list[T], size: int = BATCH) -> Iterator[list[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _bits(run: junit.RunResult) -> int:
    bits = OUTCOME_BITS[Outcome(run.outcome)]
    if run.retried:  # a failed attempt, then a passing one
        bits |= FLIPPED
    return bits


def fold(upload: ResultUpload, runs: Iterable[junit.RunResult]) -> Folded:
    """Apply the runs to the stage's tests, days, commit outcomes and catches (in bulk).

    Reads: the stage's tests by key, then their rows of this commit and this day, a query per
    BATCH. Writes: one upsert per table (`_upsert`, INSERT … ON CONFLICT DO UPDATE, sent with
    executemany: the ORM's bulk_create spends most of its time building 20,000 rows' SQL).
    """
    at = upload.ran_at
    day = at.astimezone(UTC).date()
    commit = upload.commit
    by_key = {test_key(r.classname, r.name): r for r in runs}
    keys = list(by_key)
    result = Folded(tests=len(keys))

    clock = time.perf_counter()
    tests: dict[str, TestRow] = {}
    for chunk in _batches(keys):
        for values in TrackedTest.objects.filter(
            team_id=upload.team_id, stage_id=upload.stage_id, key__in=chunk
        ).values_list(*TEST_ROW):
            test = TestRow(*values)
            tests[test.key] = test
    ids = [t.pk for t in tests.values() if t.pk is not None]
    # This commit's outcomes and this day's counts of the tests that exist (new ones have none).
    commit_bits: dict[int, int] = {}
    day_counts: dict[int, list[int]] = {}
    for id_chunk in _batches(ids):
        commit_bits.update(
            CommitResult.objects.filter(test_id__in=id_chunk, commit=commit).values_list(
                "test_id", "outcomes"
            )
        )
        for test_id, *counts in DailyResult.objects.filter(
            test_id__in=id_chunk, day=day
        ).values_list("test_id", *DAY_COUNTS):
            day_counts[test_id] = counts

    result.seconds["read rows"] = time.perf_counter() - clock
    clock = time.perf_counter()
    new_keys: list[str] = []
    catches: list[MeasuredCatch] = []
    commit_rows: dict[str, int] = {}  # key → the commit's outcomes after this run
    day_rows: dict[str, list[int]] = {}  # key → the day's counts after this run
    for key, run in by_key.items():
        if key in tests:
            test = tests[key]
        else:
            test = tests[key] = TestRow(
                pk=None,
                key=key,
                classname=run.classname,
                name=run.name,
                file=run.file,
                component=upload.component,
                first_run_at=at,
                last_run_at=at,
                last_outcome=run.outcome,
            )
            new_keys.append(key)
        outcome = run.outcome
        old_bits = commit_bits.get(test.pk, 0) if test.pk else 0
        bits = old_bits | _bits(run)
        flip = bits & FLIPPED == FLIPPED and old_bits & FLIPPED != FLIPPED
        commit_rows[key] = bits
        counts = (day_counts.get(test.pk) if test.pk else None) or [0] * len(DAY_COUNTS)
        day_rows[key] = [
            counts[0] + 1,  # runs
            counts[1] + (outcome == Outcome.PASSED),
            counts[2] + (outcome == Outcome.FAILED),
            counts[3] + (outcome == Outcome.SKIPPED),
            counts[4] + run.retried,
            counts[5] + flip,
            # commits it passed or failed on: counted when the commit first gets either
            counts[6] + (bool(bits & FLIPPED) and not old_bits & FLIPPED),
        ]

        test.runs += 1
        test.failures += outcome == Outcome.FAILED
        test.skips += outcome == Outcome.SKIPPED
        test.retries += run.retried
        test.flips += flip
        result.flips += flip
        result.retries += run.retried
        if at < test.first_run_at:
            test.first_run_at = at
        if outcome == Outcome.PASSED and (test.last_passed_at is None or at > test.last_passed_at):
            test.last_passed_at = at
        if at < test.last_run_at:
            continue  # a late run: counted, but the latest state stays the newest run's
        test.last_run_at = at
        test.last_outcome = outcome
        test.file = run.file or test.file
        test.component = upload.component or test.component
        catch = _failure_state(test, run, bits, upload)
        if catch is not None:
            catches.append(catch)
        _skip_state(test, run, at)
    result.created = len(new_keys)
    result.seconds["fold"] = time.perf_counter() - clock
    clock = time.perf_counter()

    _upsert(
        TrackedTest,
        ["team", "stage", "key", "classname", "name", *TEST_STATE],
        [
            [upload.team_id, upload.stage_id, t.key, t.classname, t.name]
            + [getattr(t, name) for name in TEST_STATE]
            for t in tests.values()
        ],
        conflict=["team", "stage", "key"],
        update=TEST_STATE,
    )
    for chunk in _batches(new_keys):
        for test_id, key in TrackedTest.objects.filter(
            team_id=upload.team_id, stage_id=upload.stage_id, key__in=chunk
        ).values_list("id", "key"):
            tests[key].pk = test_id
    _upsert(
        CommitResult,
        ["test", "commit", "outcomes", "first_seen_at"],
        [[tests[key].pk, commit, bits, at] for key, bits in commit_rows.items()],
        conflict=["test", "commit"],
        update=["outcomes"],
    )
    _upsert(
        DailyResult,
        ["test", "team", "stage", "day", *DAY_COUNTS],
        [
            [tests[key].pk, upload.team_id, upload.stage_id, day, *counts]
            for key, counts in day_rows.items()
        ],
        conflict=["test", "day"],
        update=DAY_COUNTS,
    )
    if catches:
        MeasuredCatch.objects.bulk_create(catches, batch_size=BATCH)
        result.catches = len(catches)
        result.first_fix = min(c.fixed_at for c in catches)
    result.seconds["write"] = time.perf_counter() - clock
    return result


@dataclass(slots=True)
class TestRow:
    """A TrackedTest's fields the fold reads and writes (a model instance each costs more)."""

    pk: int | None
    key: str
    classname: str
    name: str
    file: str
    component: str
    first_run_at: datetime
    last_run_at: datetime
    last_outcome: str
    last_passed_at: datetime | None = None
    runs: int = 0
    failures: int = 0
    skips: int = 0
    retries: int = 0
    flips: int = 0
    failing_since: datetime | None = None
    failing_commit: str = ""
    skipped_since: datetime | None = None
    skip_reason: str = ""


TestRow.__test__ = False  # type: ignore[attr-defined]
TEST_ROW = [f.name if f.name != "pk" else "id" for f in fields(TestRow)]

DAY_COUNTS = ["runs", "passes", "failures", "skips", "retries", "flips", "commits"]
TEST_STATE = [
    "file",
    "component",
    "first_run_at",
    "last_run_at",
    "last_outcome",
    "last_passed_at",
    "runs",
    "failures",
    "skips",
    "retries",
    "flips",
    "failing_since",
    "failing_commit",
    "skipped_since",
    "skip_reason",
]


def _upsert(
    model: type[Model],
    fields: list[str],
    rows: list[list[Any]],
    *,
    conflict: list[str],
    update: list[str],
) -> None:
    """INSERT … ON CONFLICT (conflict) DO UPDATE SET update = excluded.…, in bulk.

    PostgreSQL: the rows are COPYed into a temporary table and inserted from it in one
    statement (tens of thousands of rows a second, where a statement with 30,000 parameters
    takes most of a second to bind). SQLite: a multi-row VALUES per batch.
    """
    if not rows:
        return
    meta = model._meta
    quote = connection.ops.quote_name
    table = quote(meta.db_table)
    columns = ", ".join(quote(_column(model, f)) for f in fields)
    on_conflict = (
        f"ON CONFLICT ({', '.join(quote(_column(model, f)) for f in conflict)}) DO UPDATE SET "
        + ", ".join(
            f"{quote(_column(model, f))} = excluded.{quote(_column(model, f))}" for f in update
        )
    )
    # Every name below comes from the model's meta; every value is a parameter or COPY data.
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            staging = quote(f"staging_{meta.db_table}")
            cursor.execute(
                f"CREATE TEMPORARY TABLE {staging} ON COMMIT DROP AS "  # noqa: S608
                f"SELECT {columns} FROM {table} WITH NO DATA"
            )
            with cursor.cursor.copy(f"COPY {staging} ({columns}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
            cursor.execute(
                f"INSERT INTO {table} ({columns}) SELECT {columns} FROM {staging} "  # noqa: S608
                f"{on_conflict}"
            )
            cursor.execute(f"DROP TABLE {staging}")
            return
        adapters = [_adapter(meta.get_field(f)) for f in fields]
        one_row = f"({', '.join(['%s'] * len(fields))})"
        # At most ~30,000 parameters a statement (SQLite's limit is 32,766).
        per_statement = max(1, min(UPSERT_BATCH, 30_000 // len(fields)))
        for chunk in _batches(rows, per_statement):
            params = [
                adapt(value) if adapt else value
                for row in chunk
                for adapt, value in zip(adapters, row, strict=True)
            ]
            cursor.execute(
                f"INSERT INTO {table} ({columns}) "  # noqa: S608
                f"VALUES {', '.join([one_row] * len(chunk))} {on_conflict}",
                params,
            )


def _column(model: type[Model], name: str) -> str:
    field = model._meta.get_field(name)
    assert isinstance(field, Field) and field.column
    return field.column


def _adapter(field: Any) -> Any:
    """How a value of this field goes to the database (times and days vary by vendor).

    Memoised per upsert: most rows carry the same few times (the run's).
    """
    ops = connection.ops
    if isinstance(field, DateTimeField):
        adapt = ops.adapt_datetimefield_value
    elif isinstance(field, DateField):
        adapt = ops.adapt_datefield_value
    else:
        return None
    seen: dict[Any, Any] = {}

    def adapted(value: Any) -> Any:
        if value not in seen:
            seen[value] = adapt(value)
        return seen[value]

    return adapted


def _failure_state(
    test: TestRow, run: junit.RunResult, bits: int, upload: ResultUpload
) -> MeasuredCatch | None:
    """Open or close the test's failure; the catch when a pass closes it as a fix."""
    flipped_here = bits & FLIPPED == FLIPPED  # it both passed and failed on this commit
    if run.outcome == Outcome.FAILED:
        if test.failing_since is None and not flipped_here:
            test.failing_since = upload.ran_at
            test.failing_commit = upload.commit
        return None
    if run.outcome != Outcome.PASSED or test.failing_since is None:
        return None
    catch = None
    if not run.retried and not flipped_here and upload.commit != test.failing_commit:
        assert test.pk is not None, "a failure is open on a test that exists"
        catch = MeasuredCatch(
            team_id=upload.team_id,
            stage_id=upload.stage_id,
            test_id=test.pk,
            failed_at=test.failing_since,
            failed_commit=test.failing_commit,
            fixed_at=upload.ran_at,
            fixed_commit=upload.commit,
            release_version=upload.release_version,
        )
    test.failing_since = None
    test.failing_commit = ""
    return catch


def _skip_state(test: TestRow, run: junit.RunResult, at: datetime) -> None:
    """Quarantined by the code while every latest run is skipped with a message."""
    if run.outcome == Outcome.SKIPPED and run.message:
        if test.skipped_since is None:
            test.skipped_since = at
        test.skip_reason = run.message[:300]
    else:
        test.skipped_since = None
        test.skip_reason = ""
