"""CI test results as evidence (docs/design.md, "Test evidence"; definitions in docs/metrics.md).

An upload's cases are not kept: the worker folds them into one row per test (`TrackedTest`),
one per test and UTC day (`DailyResult`), one per test and commit for a month
(`CommitResult`, to see a flip when a pipeline is re-run), and one per defect a stage caught
(`MeasuredCatch`). The raw files live in `ResultFile` only until the worker has read them.
"""

from django.conf import settings
from django.db import models
from django.db.models import Q

from escapes.models import Escape, PipelineStage
from teams.models import Team

# Bounds of one upload (docs/design.md): the body as sent, the XML once unzipped, the cases.
UPLOAD_MAX_BYTES = 25 * 1024 * 1024
UNZIPPED_MAX_BYTES = 200 * 1024 * 1024
UPLOAD_MAX_CASES = 100_000
# How long a test's outcomes per commit are kept (a re-run later than this is not seen as a
# flip); per-day rows are kept for DAILY_KEEP_DAYS. README, "What is kept how long".
COMMIT_KEEP_DAYS = 30
DAILY_KEEP_DAYS = 400


class Outcome(models.TextChoices):
    PASSED = "passed", "Passed"
    FAILED = "failed", "Failed"
    SKIPPED = "skipped", "Skipped"


class UploadStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    DONE = "done", "Processed"
    FAILED = "failed", "Refused"


class ResultUpload(models.Model):
    """One pipeline run's results for one stage: one or several JUnit XML files."""

    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="result_uploads")
    stage = models.ForeignKey(PipelineStage, on_delete=models.CASCADE, related_name="+")
    commit = models.CharField(max_length=64)
    branch = models.CharField(max_length=200, blank=True)
    run_url = models.URLField(max_length=500, blank=True)
    # The release the run built, as CI names it (a version that may not exist in Leakseal yet).
    release_version = models.CharField(max_length=64, blank=True)
    # The component the run tested, when a pipeline tests one component.
    component = models.CharField(max_length=100, blank=True)
    # sha256 of the run's identity (run URL, stage, commit) and its files' contents: the same
    # run uploaded twice finds this row and counts once.
    identity = models.CharField(max_length=64)
    status = models.CharField(max_length=16, choices=UploadStatus.choices, default="queued")
    error = models.CharField(max_length=500, blank=True)
    cases = models.PositiveIntegerField(default=0)
    passed = models.PositiveIntegerField(default=0)
    failed = models.PositiveIntegerField(default=0)
    skipped = models.PositiveIntegerField(default=0)
    # When the run ran: the earliest suite timestamp in its files, else when it was received.
    ran_at = models.DateTimeField()
    received_at = models.DateTimeField(auto_now_add=True)
    processed_at = models.DateTimeField(null=True, blank=True)
    uploaded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )

    class Meta:
        ordering = ["-received_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["team", "identity"], name="upload_unique_identity")
        ]
        indexes = [
            models.Index(fields=["team", "-received_at"], name="upload_team_received"),
            # Whether a stage ran in a release's window: its measured count is 0, not unknown.
            models.Index(fields=["team", "stage", "ran_at"], name="upload_team_stage_ran"),
        ]


class ResultFile(models.Model):
    """An uploaded file's bytes (gzip-compressed), deleted once the worker has read them."""

    upload = models.ForeignKey(ResultUpload, on_delete=models.CASCADE, related_name="files")
    name = models.CharField(max_length=255)
    data = models.BinaryField()


class TrackedTest(models.Model):
    """A test case as CI names it (classname and name), in one of the team's stages."""

    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="tracked_tests")
    stage = models.ForeignKey(PipelineStage, on_delete=models.CASCADE, related_name="+")
    classname = models.CharField(max_length=500, blank=True)
    name = models.CharField(max_length=500)
    file = models.CharField(max_length=500, blank=True)
    # sha256 of classname and name: the identity (names can be longer than an index allows).
    key = models.CharField(max_length=64)
    # The component of the upload that last ran it, if the pipeline said.
    component = models.CharField(max_length=100, blank=True)
    first_run_at = models.DateTimeField()
    last_run_at = models.DateTimeField()
    last_outcome = models.CharField(max_length=16, choices=Outcome.choices)
    last_passed_at = models.DateTimeField(null=True, blank=True)
    # All-time counts (the per-day rows hold the windows).
    runs = models.PositiveIntegerField(default=0)
    failures = models.PositiveIntegerField(default=0)
    skips = models.PositiveIntegerField(default=0)
    retries = models.PositiveIntegerField(default=0)
    flips = models.PositiveIntegerField(default=0)
    # The open failure: the first commit it failed on since it last passed on another commit.
    failing_since = models.DateTimeField(null=True, blank=True)
    failing_commit = models.CharField(max_length=64, blank=True)
    # Skipped with a reason on its latest runs: quarantined by the code, since when and why.
    skipped_since = models.DateTimeField(null=True, blank=True)
    skip_reason = models.CharField(max_length=300, blank=True)

    class Meta:
        ordering = ["classname", "name"]
        constraints = [
            models.UniqueConstraint(fields=["team", "stage", "key"], name="test_unique_key")
        ]
        indexes = [
            models.Index(fields=["team", "-flips"], name="test_team_flips"),
            models.Index(
                fields=["team", "skipped_since"],
                condition=Q(skipped_since__isnull=False),
                name="test_team_skipped",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.classname}::{self.name}" if self.classname else self.name


class DailyResult(models.Model):
    """One test's runs on one UTC day. Kept DAILY_KEEP_DAYS."""

    test = models.ForeignKey(TrackedTest, on_delete=models.CASCADE, related_name="days")
    # The test's team and stage again, so a team's window is read without a join.
    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="+")
    stage = models.ForeignKey(PipelineStage, on_delete=models.CASCADE, related_name="+")
    day = models.DateField()
    runs = models.PositiveIntegerField(default=0)
    passes = models.PositiveIntegerField(default=0)
    failures = models.PositiveIntegerField(default=0)
    skips = models.PositiveIntegerField(default=0)
    # Pipeline runs in which it failed and then passed (docs/metrics.md, "Retried").
    retries = models.PositiveIntegerField(default=0)
    # Commits on which it both passed and failed, counted the day the second outcome came.
    flips = models.PositiveIntegerField(default=0)
    # Distinct commits it ran on this day.
    commits = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["test", "day"], name="daily_unique_day")]
        indexes = [
            # The flakiness page and the escape's test panel read only the days on which
            # something happened besides passing: a small part of a year's rows.
            models.Index(
                fields=["team", "day"],
                condition=Q(failures__gt=0) | Q(skips__gt=0) | Q(retries__gt=0) | Q(flips__gt=0),
                name="daily_team_day_noteworthy",
            ),
            models.Index(fields=["day"], name="daily_day"),
        ]


class CommitResult(models.Model):
    """The outcomes a test had on one commit (a bit set of OUTCOME_BITS). Kept COMMIT_KEEP_DAYS."""

    test = models.ForeignKey(TrackedTest, on_delete=models.CASCADE, related_name="+")
    commit = models.CharField(max_length=64)
    outcomes = models.PositiveSmallIntegerField(default=0)
    first_seen_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["test", "commit"], name="commit_unique_test")
        ]
        indexes = [models.Index(fields=["first_seen_at"], name="commit_first_seen")]


OUTCOME_BITS = {Outcome.PASSED: 1, Outcome.FAILED: 2, Outcome.SKIPPED: 4}


class MeasuredCatch(models.Model):
    """A defect a stage caught: a test failed on a commit, then passed on a later commit.

    It counts for the release it was fixed before (docs/metrics.md, "Caught before release").
    """

    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="+")
    stage = models.ForeignKey(PipelineStage, on_delete=models.CASCADE, related_name="+")
    test = models.ForeignKey(TrackedTest, on_delete=models.CASCADE, related_name="catches")
    failed_at = models.DateTimeField()
    failed_commit = models.CharField(max_length=64)
    fixed_at = models.DateTimeField()
    fixed_commit = models.CharField(max_length=64)
    # The release the fixing run named, if it named one.
    release_version = models.CharField(max_length=64, blank=True)

    class Meta:
        indexes = [models.Index(fields=["team", "stage", "fixed_at"], name="catch_team_fixed")]


class Quarantine(models.Model):
    """A test the team has set aside on purpose: its failures are known and not blocking."""

    test = models.OneToOneField(TrackedTest, on_delete=models.CASCADE, related_name="quarantine")
    reason = models.CharField(max_length=300)
    added_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    added_at = models.DateTimeField(auto_now_add=True)


class EscapeTest(models.Model):
    """A test attached to an escape in the retro: it existed and did not stop the leak."""

    escape = models.ForeignKey(Escape, on_delete=models.CASCADE, related_name="attached_tests")
    test = models.ForeignKey(TrackedTest, on_delete=models.CASCADE, related_name="+")
    added_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    added_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["escape", "test"], name="escape_test_unique")
        ]
