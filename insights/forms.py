"""The dashboard's query string: its filter form and `query_from`, for the pages and the API.

`query_from` turns the GET parameters into a `DashboardQuery` (insights/dashboard.py), the
bound form and what was ignored and why: an invalid value is reported by field name and falls
back to its default, so the page always shows numbers (the API answers 422 instead,
insights/api.py). The choices offered come from the rollups, read once (`Snapshot`), which the
numbers then reuse.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from django import forms

from escapes.forms import MAX_RELEASE_CHOICES
from escapes.models import Severity
from insights import dashboard as numbers
from insights import release_rollups
from insights.dashboard import DashboardQuery, Period
from teams.models import Team

DEFAULT_MONTHS = 12
# A year of weeks is 53 periods; ten years of either keeps the page and its charts readable
# (and the work bounded) however wide a range someone types.
MAX_PERIODS = {"week": 530, "month": 120}


class DashboardForm(forms.Form):
    """GET filters; an invalid value is reported by field name and falls back to its default."""

    start = forms.DateField(label="From", required=False)
    end = forms.DateField(label="To", required=False)
    period = forms.ChoiceField(
        label="Period", required=False, choices=[("month", "Months"), ("week", "Weeks")]
    )
    component = forms.ChoiceField(label="Component", required=False)
    severity = forms.ChoiceField(label="Severity", required=False)
    release = forms.TypedChoiceField(label="Release", required=False, coerce=int, empty_value=None)

    def __init__(
        self, *args: Any, teams: Sequence[Team], snapshot: numbers.Snapshot, **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        self.teams = tuple(teams)
        self.snapshot = snapshot
        self._field("severity").choices = [("", "Any severity"), *Severity.choices]
        # The components the rollups know: listing the distinct components of a million
        # escapes per page load costs more than every chart (a new one shows once rolled up).
        blocks = snapshot.blocks.values()
        components = sorted({c for block in blocks for c in block.components if c})
        self._field("component").choices = [("", "Any component"), *((c, c) for c in components)]
        # The newest releases (fifty teams have thousands), and the one asked for if older,
        # from the release rollups like the numbers.
        names = {team.pk: team.name for team in self.teams}
        many = len(self.teams) > 1
        releases = snapshot.releases.values()
        newest = release_rollups.newest(release_rollups.everything(releases), MAX_RELEASE_CHOICES)
        asked = str(self.data.get("release") or "")
        if asked.isdigit() and all(r.id != int(asked) for r in newest):
            newest += [r for r in release_rollups.find(releases, int(asked))]
        self._field("release").choices = [
            ("", "Any release"),
            *((r.id, f"{names[r.team_id]} · {r.version}" if many else r.version) for r in newest),
        ]

    def _field(self, name: str) -> forms.ChoiceField:
        choice = self.fields[name]
        assert isinstance(choice, forms.ChoiceField)
        return choice

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        start, end = cleaned.get("start"), cleaned.get("end")
        if start and end and start > end:
            self.add_error("start", "The start date is after the end date.")
        return cleaned


def default_start(end: date) -> date:
    """The first day of the month eleven months before `end`: twelve whole months of periods."""
    months = end.year * 12 + end.month - 1 - (DEFAULT_MONTHS - 1)
    year, month = divmod(months, 12)
    return date(year, month + 1, 1) if year >= 1 else date.min


def _period_count(start: date, end: date, period: Period) -> int:
    if period == "week":
        return (
            (end - timedelta(days=end.weekday())) - (start - timedelta(days=start.weekday()))
        ).days // 7 + 1
    return (end.year - start.year) * 12 + end.month - start.month + 1


@dataclass(frozen=True)
class QueryProblem:
    field: str
    message: str

    def __str__(self) -> str:
        return self.message


def query_from(
    params: Mapping[str, Any], teams: Sequence[Team], *, today: date
) -> tuple[DashboardQuery, DashboardForm, list[QueryProblem]]:
    """The query the parameters ask for, the bound form, and what was ignored and why."""
    form = DashboardForm(params, teams=teams, snapshot=numbers.Snapshot.read(teams))
    form.is_valid()
    good = {k: v for k, v in form.cleaned_data.items() if k not in form.errors}
    problems = [
        QueryProblem(
            name,
            f"{form.fields[name].label or name}: {' '.join(map(str, errors))} "
            "The default is shown.",
        )
        for name, errors in form.errors.items()
        if name in form.fields
    ]
    end: date = good.get("end") or today
    start: date = good.get("start") or default_start(end)
    if start > end:  # only one of them given, on the wrong side of the default
        message = "From: the start date is after the end date. The default range is shown."
        problems.append(QueryProblem("start", message))
        end, start = today, default_start(today)
    period: Period = "week" if good.get("period") == "week" else "month"
    if _period_count(start, end, period) > MAX_PERIODS[period]:
        message = (
            f"From: the range is longer than {MAX_PERIODS[period]} {period}s; the default range "
            "is shown. Choose a shorter range or months."
        )
        problems.append(QueryProblem("start", message))
        end, start = today, default_start(today)
    query = DashboardQuery(
        teams=tuple(teams),
        start=start,
        end=end,
        period=period,
        component=good.get("component") or "",
        severity=good.get("severity") or "",
        release_id=good.get("release"),
    )
    return query, form, problems
