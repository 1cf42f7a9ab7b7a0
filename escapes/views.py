"""The escape register: list, detail, create, edit and CSV import."""

import hashlib
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods

from config import csv_safe
from escapes.csv_import import (
    COLUMNS,
    REQUIRED_COLUMNS,
    CsvImportRefused,
    csv_import,
    csv_preview,
    folds_from,
    template_rows,
)
from escapes.forms import (
    AllEscapeFilterForm,
    CsvConfirmForm,
    CsvUploadForm,
    EscapeFilterForm,
    EscapeForm,
)
from escapes.models import Category, Escape, Severity, Source
from escapes.selectors import (
    escapes_for_teams,
    get_escape_detail,
    get_escape_for_team,
)
from escapes.services import escape_create, escape_update
from teams.decorators import team_view
from teams.models import Membership, Team
from teams.selectors import teams_for_user

PAGE_SIZE = 50


def _partial_request(request: HttpRequest) -> bool:
    """An HTMX swap wants a region; a history restore after a cache miss wants the page."""
    htmx = getattr(request, "htmx", None)
    return bool(htmx) and not htmx.history_restore_request  # type: ignore[union-attr]


def _register(
    request: HttpRequest,
    teams: list[Team],
    form: EscapeFilterForm,
    list_url: str,
    **context: Any,
) -> HttpResponse:
    """The register page (or, for an HTMX swap, its results) of these teams' escapes."""
    filters, warnings = form.filters()
    page = Paginator(escapes_for_teams(teams, filters), PAGE_SIZE).get_page(request.GET.get("page"))
    context |= {
        "list_url": list_url,
        "form": form,
        "page_obj": page,
        "filter_warnings": warnings,
        "is_filtered": form.is_filtered,
    }
    template = "escapes/escape_list.html"
    if _partial_request(request):
        template += "#results"
    return render(request, template, context)


@require_GET
@team_view()
def escape_list(request: HttpRequest, membership: Membership) -> HttpResponse:
    team = membership.team
    form = EscapeFilterForm(request.GET, team=team)
    list_url = reverse("escape_list", kwargs={"team": team.slug})
    return _register(request, [team], form, list_url, team=team, membership=membership)


@require_GET
@login_required
def all_escape_list(request: HttpRequest) -> HttpResponse:
    """The register of every team of the user: where the all-teams dashboard's numbers link."""
    teams = list(teams_for_user(request.user))
    form = AllEscapeFilterForm(request.GET, teams=teams)
    return _register(request, teams, form, reverse("all_escape_list"), team=None)


@require_GET
@team_view()
def escape_detail(request: HttpRequest, membership: Membership, pk: int) -> HttpResponse:
    escape = get_escape_detail(membership.team, pk)
    return render(
        request,
        "escapes/escape_detail.html",
        {"team": membership.team, "membership": membership, "escape": escape},
    )


def _render_form(
    request: HttpRequest, membership: Membership, form: EscapeForm, escape: Escape | None
) -> HttpResponse:
    return render(
        request,
        "escapes/escape_form.html",
        {"team": membership.team, "membership": membership, "form": form, "escape": escape},
    )


@require_http_methods(["GET", "POST"])
@team_view(write=True)
def escape_create_view(request: HttpRequest, membership: Membership) -> HttpResponse:
    team = membership.team
    form = EscapeForm(request.POST if request.method == "POST" else None, team=team)
    if form.is_bound and form.is_valid():
        try:
            escape = escape_create(
                team=team, data=form.service_data(), source=Source.FORM, created_by=membership.user
            )
        except ValidationError as exc:
            form.add_service_errors(exc)
        else:
            messages.success(request, f"Escape “{escape.title}” recorded.")
            return redirect("escape_detail", team=team.slug, pk=escape.pk)
    return _render_form(request, membership, form, None)


@require_http_methods(["GET", "POST"])
@team_view(write=True)
def escape_update_view(request: HttpRequest, membership: Membership, pk: int) -> HttpResponse:
    team = membership.team
    escape = get_escape_for_team(team, pk)
    form = EscapeForm(
        request.POST if request.method == "POST" else None,
        team=team,
        initial=EscapeForm.initial_for(escape),
    )
    if form.is_bound and form.is_valid():
        try:
            escape = escape_update(escape=escape, data=form.service_data(), by=membership.user)
        except ValidationError as exc:
            form.add_service_errors(exc)
        else:
            messages.success(request, "Escape saved.")
            return redirect("escape_detail", team=team.slug, pk=escape.pk)
    return _render_form(request, membership, form, escape)


# --- CSV import ---------------------------------------------------------------------------


def _pending_key(membership: Membership) -> str:
    return f"escape_import:{membership.team_id}"


def _import_page(request: HttpRequest, membership: Membership, **extra: Any) -> HttpResponse:
    context: dict[str, Any] = {
        "team": membership.team,
        "membership": membership,
        "upload_form": CsvUploadForm(),
        "columns": COLUMNS,
        "required_columns": REQUIRED_COLUMNS,
        "categories": Category.choices,
        "severities": Severity.choices,
        "stages": membership.team.stages.all(),
        "max_rows": settings.LEAKSEAL_CSV_MAX_ROWS,
        "max_bytes": settings.DATA_UPLOAD_MAX_MEMORY_SIZE,
        "preview": None,
        **extra,
    }
    return render(request, "escapes/escape_import.html", context)


def _preview_upload(request: HttpRequest, membership: Membership) -> HttpResponse:
    form = CsvUploadForm(request.POST, request.FILES)
    if not form.is_valid():
        return _import_page(request, membership, upload_form=form)
    content: bytes = form.cleaned_data["file"]
    preview = csv_preview(membership.team, content)
    confirm_form = None
    if preview.importable and preview.new_count:
        # Step 2 must import exactly the file previewed: keep it in the user's own session
        # (bounded by the upload limit) and let the form name it by digest only.
        digest = hashlib.sha256(content).hexdigest()
        request.session[_pending_key(membership)] = {
            "digest": digest,
            "content": content.decode("utf-8"),
        }
        confirm_form = CsvConfirmForm(initial={"digest": digest})
    return _import_page(request, membership, preview=preview, confirm_form=confirm_form)


def _import_confirmed(request: HttpRequest, membership: Membership) -> HttpResponse:
    team = membership.team
    form = CsvConfirmForm(request.POST)
    pending = request.session.get(_pending_key(membership))
    if not form.is_valid() or not pending or pending["digest"] != form.cleaned_data["digest"]:
        messages.error(request, "That preview has expired or was replaced: upload the file again.")
        return redirect("escape_import", team=team.slug)
    try:
        result = csv_import(
            team, pending["content"].encode("utf-8"), membership.user, folds_from(request.POST)
        )
    except CsvImportRefused as exc:
        confirm_form = None
        if exc.preview.importable and exc.preview.new_count:  # only a choice is missing
            confirm_form = CsvConfirmForm(initial={"digest": pending["digest"]})
        return _import_page(
            request, membership, preview=exc.preview, refused=True, confirm_form=confirm_form
        )
    del request.session[_pending_key(membership)]
    skipped = result.existing_count + result.duplicate_count
    messages.success(
        request,
        f"Imported {len(result.created)} escape(s)"
        + (f"; skipped {skipped} already imported or repeated row(s)." if skipped else "."),
    )
    return redirect("escape_list", team=team.slug)


@require_http_methods(["GET", "POST"])
@team_view(write=True)
def escape_import(request: HttpRequest, membership: Membership) -> HttpResponse:
    """Step 1 uploads a file and previews it (saving nothing); step 2 imports it."""
    if request.method == "GET":
        return _import_page(request, membership)
    if "digest" in request.POST:
        return _import_confirmed(request, membership)
    return _preview_upload(request, membership)


@require_GET
@team_view()
def escape_import_template(request: HttpRequest, membership: Membership) -> HttpResponse:
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = 'attachment; filename="leakseal-escapes-template.csv"'
    csv_safe.writer(response).writerows(template_rows(membership.team))
    return response
