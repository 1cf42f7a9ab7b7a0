"""The team's test evidence pages: flakiness, a test's history, uploads, CI setup."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from escapes.models import PipelineStage
from escapes.selectors import team_stages
from evidence import selectors
from evidence.ci_snippets import curl_line, snippets
from evidence.forms import FlakinessFilterForm, QuarantineForm
from evidence.models import TrackedTest
from evidence.quarantine import quarantine_add, quarantine_remove
from teams.decorators import team_view
from teams.models import Membership, Team

UPLOADS_PAGE_SIZE = 50


@require_GET
@team_view()
def flakiness(request: HttpRequest, membership: Membership) -> HttpResponse:
    team = membership.team
    data = request.GET.copy() if request.GET else None
    if data is not None and not data.get("window"):
        data["window"] = str(selectors.DEFAULT_WINDOW)  # so the select shows the window used
    form = FlakinessFilterForm(data, team=team)
    stage: PipelineStage | None = None
    window = selectors.DEFAULT_WINDOW
    if form.is_bound and form.is_valid():
        stage = form.cleaned_data["stage"]
        window = form.cleaned_data["window"] or selectors.DEFAULT_WINDOW
    start, end = selectors.window_range(window)
    context: dict[str, object] = {
        "team": team,
        "membership": membership,
        "form": form,
        "window": window,
        "stage": stage,
        "start": start,
        "end": end,
        "has_uploads": selectors.has_uploads(team),
        "before_days": selectors.BEFORE_RELEASE_DAYS,
        "limit": selectors.FLAKIEST_LIMIT,
    }
    if context["has_uploads"]:
        context["flakiest"] = selectors.flakiest_tests(team, start, end, stage)
        context["quarantined"] = selectors.quarantined(team, stage)
        context["leaky"] = selectors.retried_before_leaky_releases(team, start, end, stage)
    template = "evidence/flakiness.html"
    if getattr(request, "htmx", False):
        template += "#results"
    return render(request, template, context)


def _test_or_404(team: Team, pk: int) -> TrackedTest:
    test = selectors.test_for(team, pk)
    if test is None:
        raise Http404("No such test in this team.")
    return test


def _detail(
    request: HttpRequest,
    membership: Membership,
    test: TrackedTest,
    form: QuarantineForm | None = None,
) -> HttpResponse:
    context = {
        "team": membership.team,
        "membership": membership,
        "history": selectors.test_history(test),
        "test": test,
        "form": form or QuarantineForm(),
        "strip_days": selectors.STRIP_DAYS,
    }
    return render(request, "evidence/test_detail.html", context)


@require_GET
@team_view()
def test_detail(request: HttpRequest, membership: Membership, pk: int) -> HttpResponse:
    return _detail(request, membership, _test_or_404(membership.team, pk))


@require_POST
@team_view(write=True)
def quarantine_add_view(request: HttpRequest, membership: Membership, pk: int) -> HttpResponse:
    test = _test_or_404(membership.team, pk)
    form = QuarantineForm(request.POST)
    if form.is_valid():
        try:
            quarantine_add(test=test, reason=form.cleaned_data["reason"], by=_user(request))
        except ValidationError as error:
            form.add_error("reason", error)
    if not form.is_valid():
        return _detail(request, membership, test, form=form)
    messages.success(request, f"{test} is quarantined.")
    return redirect("test_detail", team=membership.team.slug, pk=test.pk)


@require_POST
@team_view(write=True)
def quarantine_remove_view(request: HttpRequest, membership: Membership, pk: int) -> HttpResponse:
    test = _test_or_404(membership.team, pk)
    if quarantine_remove(test=test, by=_user(request)):
        messages.success(request, f"{test} is no longer quarantined.")
    else:
        messages.info(request, f"{test} was not on the quarantine list.")
    return redirect("test_detail", team=membership.team.slug, pk=test.pk)


def _user(request: HttpRequest) -> User | None:
    user = request.user
    return user if isinstance(user, User) else None


@require_GET
@team_view()
def upload_list(request: HttpRequest, membership: Membership) -> HttpResponse:
    team = membership.team
    page = Paginator(selectors.uploads(team), UPLOADS_PAGE_SIZE).get_page(request.GET.get("page"))
    context = {"team": team, "membership": membership, "page_obj": page}
    template = "evidence/uploads.html"
    if getattr(request, "htmx", False):
        template += "#results"
    return render(request, template, context)


@require_GET
@team_view()
def ci_setup(request: HttpRequest, membership: Membership) -> HttpResponse:
    team = membership.team
    url = request.build_absolute_uri(f"/api/v1/teams/{team.slug}/test-results")
    stages = list(team_stages(team))
    first = stages[0].name if stages else "Unit"
    context = {
        "team": team,
        "membership": membership,
        "url": url,
        "stages": stages,
        "curl": curl_line(url, first),
        "snippets": snippets(url, first),
        "tokens_url": reverse("token_list"),
    }
    return render(request, "evidence/setup.html", context)
