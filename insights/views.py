"""The managers' dashboard pages and their CSV download, for one team or every team of the user.

The numbers come from `insights.dashboard.dashboard`; the query string is parsed by
insights/forms.py (`query_from`), and the charts and tables are built, rendered and kept by
insights/dashboard_page.py (`numbers_html`). The CSV is written by insights/dashboard_csv.py.
"""

from __future__ import annotations

from collections.abc import Sequence

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET

from insights import dashboard as numbers
from insights import dashboard_csv
from insights.dashboard import Dashboard
from insights.dashboard_page import numbers_html, weakest_text
from insights.forms import DashboardForm, QueryProblem, query_from
from insights.freshness import freshness
from teams.decorators import team_view
from teams.models import Membership, Team
from teams.selectors import teams_for_user


def _board(
    request: HttpRequest, teams: Sequence[Team]
) -> tuple[Dashboard, DashboardForm, list[QueryProblem]]:
    query, form, problems = query_from(request.GET, teams, today=timezone.localdate())
    return numbers.dashboard(query, form.snapshot), form, problems


def _render(
    request: HttpRequest,
    teams: Sequence[Team],
    *,
    team: Team | None,
    membership: Membership | None,
    csv_url: str,
) -> HttpResponse:
    if not teams:
        return render(request, "insights/dashboard.html", {"teams": teams, "board": None})
    board, form, problems = _board(request, teams)
    context = {
        "team": team,
        "membership": membership,
        "teams": teams,
        "board": board,
        "numbers": numbers_html(board, team=team),
        "form": form,
        "query": board.query,
        "query_problems": [p.message for p in problems],
        "weakest_text": weakest_text(board),
        "stale_teams": [t.name for t in teams if t.slug in board.stale_teams],
        "freshness": freshness(teams),
        "csv_url": csv_url + ("?" + request.GET.urlencode() if request.GET else ""),
        "api_path": (
            f"/api/v1/teams/{team.slug}/dashboard" if team is not None else "/api/v1/dashboard"
        ),
    }
    return render(request, "insights/dashboard.html", context)


def _csv(request: HttpRequest, teams: Sequence[Team], name: str) -> HttpResponse:
    board, _, problems = _board(request, teams)
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    stamp = f"{board.query.start:%Y%m%d}-{board.query.end:%Y%m%d}"
    response["Content-Disposition"] = (
        f'attachment; filename="leakseal-dashboard-{name}-{stamp}.csv"'
    )
    notes = [p.message for p in problems]
    dashboard_csv.write(response, board, notes=notes, fresh=freshness(teams))
    return response


@require_GET
@team_view()
def team_dashboard(request: HttpRequest, membership: Membership) -> HttpResponse:
    team = membership.team
    return _render(
        request,
        [team],
        team=team,
        membership=membership,
        csv_url=reverse("team_dashboard_csv", kwargs={"team": team.slug}),
    )


@require_GET
@team_view()
def team_dashboard_csv(request: HttpRequest, membership: Membership) -> HttpResponse:
    return _csv(request, [membership.team], membership.team.slug)


@require_GET
@login_required
def all_dashboard(request: HttpRequest) -> HttpResponse:
    teams = list(teams_for_user(request.user))
    return _render(request, teams, team=None, membership=None, csv_url=reverse("dashboard_csv"))


@require_GET
@login_required
def all_dashboard_csv(request: HttpRequest) -> HttpResponse:
    return _csv(request, list(teams_for_user(request.user)), "all-teams")
