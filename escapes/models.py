from datetime import timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxLengthValidator
from django.db import models
from django.db.models import Q

from teams.models import Team


class PipelineStage(models.Model):
    """One of the team's ordered test stages (default: Unit, Integration, E2E)."""

    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="stages")
    name = models.CharField(max_length=50)
    position = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ["team", "position", "id"]
        constraints = [
            models.UniqueConstraint(fields=["team", "name"], name="stage_unique_team_name")
        ]

    def __str__(self) -> str:
        return self.name


def validate_release_version(value: str) -> None:
    """The version is a path segment of the API (/releases/{version}/stage-catches): a "/"
    would make its stage catches unreachable. Checked wherever a release is saved through a
    form or full_clean (the app's, the API's, the Django admin's)."""
    if "/" in value:
        raise ValidationError(
            f"A version cannot contain “/” ({value.strip()!r}); use “-” or “.”.", code="slash"
        )


class Release(models.Model):
    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="releases")
    version = models.CharField(max_length=64, validators=[validate_release_version])
    released_at = models.DateTimeField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-released_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["team", "version"], name="release_unique_team_version")
        ]

    def __str__(self) -> str:
        return self.version


class CatchSource(models.TextChoices):
    TYPED = "typed", "Typed"
    MEASURED = "measured", "Measured"


class StageCatch(models.Model):
    """Defects a stage caught before a release shipped: the denominator of containment."""

    release = models.ForeignKey(Release, on_delete=models.CASCADE, related_name="stage_catches")
    stage = models.ForeignKey(PipelineStage, on_delete=models.CASCADE, related_name="catches")
    caught = models.PositiveIntegerField()
    # Typed by a person or measured from CI test results (evidence.catches); a typed count
    # is never overwritten by a measured one.
    source = models.CharField(max_length=16, choices=CatchSource.choices, default="typed")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["release", "stage"], name="catch_unique_release_stage")
        ]


class Category(models.TextChoices):
    COVERAGE_GAP = "coverage_gap", "Coverage Gap"
    ENVIRONMENT_MISMATCH = "environment_mismatch", "Environment Mismatch"
    FLAKINESS = "flakiness", "Flakiness / False Negative"


class Severity(models.TextChoices):
    CRITICAL = "critical", "Critical"
    HIGH = "high", "High"
    MEDIUM = "medium", "Medium"
    LOW = "low", "Low"


class Source(models.TextChoices):
    FORM = "form", "Form"
    CSV = "csv", "CSV import"
    API = "api", "API"
    JIRA = "jira", "Jira"
    AZURE_DEVOPS = "azure_devops", "Azure DevOps"


class EscapeStatus(models.TextChoices):
    OPEN = "open", "Open"
    RESOLVED = "resolved", "Resolved"
    SEALED = "sealed", "Sealed"


TEXT_MAX = 10_000


class EscapeQuerySet(models.QuerySet["Escape"]):
    def with_status(self, status: str) -> "EscapeQuerySet":
        if status == EscapeStatus.OPEN:
            return self.filter(resolved_at__isnull=True, sealed_at__isnull=True)
        if status == EscapeStatus.RESOLVED:
            return self.filter(resolved_at__isnull=False, sealed_at__isnull=True)
        if status == EscapeStatus.SEALED:
            return self.filter(sealed_at__isnull=False)
        return self


class Escape(models.Model):
    """A defect found in production. All times are UTC; see docs/metrics.md for the metrics."""

    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="escapes")
    title = models.CharField(max_length=200)
    description = models.TextField(blank=True, validators=[MaxLengthValidator(TEXT_MAX)])
    merged_at = models.DateTimeField(null=True, blank=True)
    released_at = models.DateTimeField(null=True, blank=True)
    detected_at = models.DateTimeField()
    resolved_at = models.DateTimeField(null=True, blank=True)
    category = models.CharField(max_length=32, choices=Category.choices, blank=True)
    stage = models.ForeignKey(
        PipelineStage,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="escapes",
        help_text="The stage that should have caught it.",
    )
    severity = models.CharField(max_length=16, choices=Severity.choices, default=Severity.MEDIUM)
    component = models.CharField(max_length=100, blank=True)
    release = models.ForeignKey(
        Release, on_delete=models.SET_NULL, null=True, blank=True, related_name="escapes"
    )
    tracker_key = models.CharField(max_length=64, blank=True)
    tracker_url = models.URLField(max_length=500, blank=True)
    source = models.CharField(max_length=16, choices=Source.choices, default=Source.FORM)
    # Identity in the source: a CSV row's key or content digest, an API client's id, a
    # tracker issue id. Re-importing the same thing finds the same escape.
    external_id = models.CharField(max_length=128, blank=True)
    sealed_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = EscapeQuerySet.as_manager()

    class Meta:
        ordering = ["-detected_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["team", "source", "external_id"],
                condition=~Q(external_id=""),
                name="escape_unique_external_id",
            )
        ]
        indexes = [
            models.Index(fields=["team", "detected_at"], name="escape_team_detected"),
            # The register of all the user's teams, newest first (fifty teams, a million rows).
            models.Index(fields=["-detected_at", "-id"], name="escape_detected_desc"),
            models.Index(fields=["team", "category"], name="escape_team_category"),
            models.Index(fields=["team", "stage"], name="escape_team_stage"),
        ]

    def __str__(self) -> str:
        return self.title

    @property
    def detection_deficit(self) -> timedelta | None:
        """detected_at − merged_at; None when the merge time is unknown."""
        if self.merged_at is None:
            return None
        return self.detected_at - self.merged_at

    @property
    def time_in_production(self) -> timedelta | None:
        """detected_at − released_at; None when the release time is unknown."""
        if self.released_at is None:
            return None
        return self.detected_at - self.released_at

    @property
    def status(self) -> str:
        if self.sealed_at is not None:
            return EscapeStatus.SEALED
        if self.resolved_at is not None:
            return EscapeStatus.RESOLVED
        return EscapeStatus.OPEN

    @property
    def data_problems(self) -> list[str]:
        problems = []
        deficit = self.detection_deficit
        if deficit is not None and deficit < timedelta(0):
            problems.append("detected before it was merged")
        in_prod = self.time_in_production
        if in_prod is not None and in_prod < timedelta(0):
            problems.append("detected before its release: not an escape")
        if self.merged_at is None:
            problems.append("merge time unknown")
        return problems
