"""What the dashboards read: compact per-team rollups of escapes and releases.

Derived data only: every row can be rebuilt from escapes/ and retros/ (beat does so hourly),
so nothing here is a source of truth and nothing outside insights/ writes it.
"""

from django.db import models

from teams.models import Team


class EscapeRollup(models.Model):
    """One team's escapes detected in one local calendar month, as compact columns.

    Kept by insights/rollups.py (on commit of every change, and by beat as a backstop) and
    read by insights/dashboard.py instead of scanning escapes; the layout is described in
    insights/rollup_layout.py.
    """

    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="+")
    month = models.DateField(help_text="The 1st of the month, in the team's local time.")
    # The zone the escapes were bucketed in: rows of another zone than the team's are stale.
    timezone = models.CharField(max_length=64)
    escapes = models.PositiveIntegerField(help_text="Rows in `columns`, data problems included.")
    columns = models.BinaryField()
    meta = models.JSONField(default=dict)
    # sha1 of columns and meta: readers cache decoded rows by it, and the full recompute
    # rewrites only the rows whose digest changed.
    digest = models.CharField(max_length=40)
    computed_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["team", "month"], name="rollup_unique_team_month")
        ]

    def __str__(self) -> str:
        return f"{self.team_id} {self.month:%Y-%m}"


class ReleaseRollup(models.Model):
    """One team's releases and the defects its stages caught before each, as compact columns.

    Kept by insights/release_rollups.py (on commit of a new release or caught counts, and with
    the team's escape rollups by beat) and read by insights/dashboard.py, so that a dashboard
    of fifty teams reads no release or stage-catch rows.
    """

    team = models.OneToOneField(Team, on_delete=models.CASCADE, primary_key=True, related_name="+")
    releases = models.PositiveIntegerField()
    columns = models.BinaryField()
    meta = models.JSONField(default=dict)
    digest = models.CharField(max_length=40)
    computed_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"{self.team_id}: {self.releases} releases"
