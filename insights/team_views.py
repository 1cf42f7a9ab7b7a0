"""The team page: who the team is and how its pipeline leaks, over a range of local dates."""

from datetime import date
from typing import cast

from django import forms
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET
from django_htmx.middleware import HtmxDetails

from insights.metrics import DateRange, default_range, team_metrics
from teams.decorators import team_view
from teams.models import Membership, Team


class HtmxHttpRequest(HttpRequest):
    """What django-htmx's middleware makes of every request (its documented typing recipe)."""

    htmx: HtmxDetails


class RangeForm(forms.Form):
    """Inclusive local dates; either may be left out and falls back to the default range."""

    start = forms.DateField(required=False)
    end = forms.DateField(required=False)

    def clean(self) -> dict[str, date | None]:
        cleaned = super().clean() or {}
        start, end = cleaned.get("start"), cleaned.get("end")
        if start and end and start > end:
            raise forms.ValidationError("The start date is after the end date.")
        return cleaned


def _range_from(request: HttpRequest, team: Team) -> tuple[DateRange, list[str]]:
    """The range the GET parameters ask for, or the default one and what was wrong."""
    default = default_range(team)
    if not (request.GET.get("start") or request.GET.get("end")):
        return default, []
    form = RangeForm(request.GET)
    if not form.is_valid():
        names = {"start": "From: ", "end": "To: "}
        problems = [
            f"{names.get(field, '')}{error}"
            for field, errors in form.errors.items()
            for error in errors
        ]
        return default, problems
    end = form.cleaned_data["end"] or default.end
    try:
        start = form.cleaned_data["start"] or end - (default.end - default.start)
    except OverflowError:  # an end date in the first days of year 1
        start = date.min
    if start > end:
        return default, ["The start date is after the end date."]
    return DateRange(start, end, team.tzinfo), []


@require_GET
@team_view()
def team_home(request: HttpRequest, membership: Membership) -> HttpResponse:
    team = membership.team
    date_range, range_problems = _range_from(request, team)
    context = {
        "team": team,
        "membership": membership,
        "metrics": team_metrics(team, date_range.start, date_range.end),
        "range_problems": range_problems,
    }
    template = "insights/team_home.html"
    if cast(HtmxHttpRequest, request).htmx:
        template += "#results"
    return render(request, template, context)
