"""Releases (with the defects each stage caught before them) and the team's pipeline stages.

Without HTMX every form posts and redirects; with HTMX the page's region is re-rendered.
Errors re-render the form with the field and the problem, never a 500 or a half-save.
"""

from typing import Any

from django import forms
from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST
from django_htmx.http import HttpResponseClientRedirect
from django_htmx.middleware import HtmxDetails

from escapes import services, stage_services
from escapes.models import CatchSource, PipelineStage, Release
from escapes.release_selectors import (
    get_release_for_team,
    get_stage_for_team,
    release_escapes,
    release_row,
    release_rows,
    stages_for_team,
    stages_with_usage,
)
from teams.decorators import team_view
from teams.models import Membership
from teams.services import team_close_rule_set

# PositiveIntegerField's ceiling on PostgreSQL; above it the database would refuse the row.
CATCH_MAX = 2_147_483_647


class ReleaseForm(forms.Form):
    version = forms.CharField(max_length=64, strip=True)
    released_at = forms.DateTimeField(
        label="Released at",
        # Read as wall-clock time in the team's zone, which `team_view` has activated.
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
    )


class ReleaseTimeForm(forms.Form):
    released_at = forms.DateTimeField(
        label="Released at",
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
    )


class CatchesForm(forms.Form):
    """One optional typed count per stage. A blank box means nobody typed one: the stage's
    count is then the one measured from CI test results, if any (docs/metrics.md)."""

    def __init__(self, *args: Any, stages: list[PipelineStage], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.stages = stages
        for stage in stages:
            self.fields[self.field_name(stage)] = forms.IntegerField(
                label=stage.name, required=False, min_value=0, max_value=CATCH_MAX
            )

    @staticmethod
    def field_name(stage: PipelineStage) -> str:
        return f"stage_{stage.pk}"

    def counts(self) -> dict[PipelineStage, int | None]:
        return {stage: self.cleaned_data.get(self.field_name(stage)) for stage in self.stages}


class StageNameForm(forms.Form):
    name = forms.CharField(max_length=stage_services.STAGE_NAME_MAX, strip=True)


class StageMoveForm(forms.Form):
    direction = forms.ChoiceField(choices=[("up", "Up"), ("down", "Down")])


class CloseRuleForm(forms.Form):
    # A checkbox: left out of the POST when unticked, so the form is always valid.
    requires_root_cause = forms.BooleanField(
        required=False, label="Closing also needs a root cause for every escape"
    )


def _add_errors(
    form: forms.Form, exc: ValidationError, renames: dict[str, str] | None = None
) -> None:
    """Put a service's ValidationError on the form: by field where the form has it."""
    renames = renames or {}
    if not hasattr(exc, "error_dict"):
        for message in exc.messages:
            form.add_error(None, message)
        return
    for key, errors in exc.error_dict.items():
        for error in errors:
            field = renames.get(key, key)
            for message in error.messages:
                form.add_error(field if field in form.fields else None, message)


def _is_htmx(request: HttpRequest) -> bool:
    """An HTMX swap; a history restore needs the whole page, so it does not count."""
    htmx: HtmxDetails | None = getattr(request, "htmx", None)
    return bool(htmx) and not (htmx and htmx.history_restore_request)


def _rerender(request: HttpRequest, template: str, partial: str, context: dict) -> HttpResponse:
    if _is_htmx(request):
        return render(request, f"{template}#{partial}", context)
    return render(request, template, context)


def _done(request: HttpRequest, url: str) -> HttpResponse:
    return HttpResponseClientRedirect(url) if _is_htmx(request) else redirect(url)


# --- Releases ---------------------------------------------------------------------------


def _release_list_context(membership: Membership, form: ReleaseForm) -> dict[str, Any]:
    stages = stages_for_team(membership.team)
    return {
        "team": membership.team,
        "membership": membership,
        "stages": stages,
        "rows": release_rows(membership.team, stages),
        "form": form,
    }


def _new_release_form() -> ReleaseForm:
    return ReleaseForm(
        initial={"released_at": timezone.localtime().replace(second=0, microsecond=0)}
    )


@require_GET
@team_view()
def release_list(request: HttpRequest, membership: Membership) -> HttpResponse:
    context = _release_list_context(membership, _new_release_form())
    return _rerender(request, "escapes/release_list.html", "releases", context)


@require_POST
@team_view(write=True)
def release_create(request: HttpRequest, membership: Membership) -> HttpResponse:
    form = ReleaseForm(request.POST)
    if form.is_valid():
        try:
            release = services.release_create(
                team=membership.team,
                version=form.cleaned_data["version"],
                released_at=form.cleaned_data["released_at"],
            )
        except ValidationError as exc:
            _add_errors(form, _version_taken(exc, form.cleaned_data["version"]))
        else:
            url = reverse("release_detail", kwargs={"team": membership.team.slug, "pk": release.pk})
            return _done(request, url)
    context = _release_list_context(membership, form)
    return _rerender(request, "escapes/release_list.html", "release_form", context)


def _version_taken(exc: ValidationError, version: str) -> ValidationError:
    """The model reports a duplicate (team, version) as a non-field error; it is the version's."""
    if not hasattr(exc, "error_dict"):
        return exc
    errors: dict[str, list[ValidationError | str]] = {}
    for key, items in exc.error_dict.items():
        for item in items:
            if getattr(item, "code", None) == "unique_together":
                errors.setdefault("version", []).append(f"Release {version} already exists.")
            else:
                errors.setdefault(key, []).append(item)
    return ValidationError(errors)


RELEASE_ESCAPES_SHOWN = 50


def _release_detail_context(
    membership: Membership,
    release: Release,
    form: CatchesForm | None = None,
    time_form: ReleaseTimeForm | None = None,
) -> dict[str, Any]:
    stages = stages_for_team(membership.team)
    row = release_row(release, stages)
    if form is None:
        # Only typed counts fill the boxes: saving the form unchanged keeps measured ones so.
        initial = {
            CatchesForm.field_name(s): n if source == CatchSource.TYPED else None
            for s, (n, source) in zip(stages, row.stages, strict=True)
        }
        form = CatchesForm(stages=stages, initial=initial)
    lines = [
        {"stage": s, "caught": n, "source": source, "field": form[CatchesForm.field_name(s)]}
        for s, (n, source) in zip(stages, row.stages, strict=True)
    ]
    return {
        "team": membership.team,
        "membership": membership,
        "release": release,
        "row": row,
        "lines": lines,
        # The newest few and a count: the page must not grow with the escapes (issue 13).
        "escapes": list(release_escapes(release)[:RELEASE_ESCAPES_SHOWN]),
        "escape_count": release_escapes(release).count(),
        "form": form,
        "time_form": time_form or ReleaseTimeForm(initial={"released_at": release.released_at}),
    }


@require_GET
@team_view()
def release_detail(request: HttpRequest, membership: Membership, pk: int) -> HttpResponse:
    release = get_release_for_team(membership.team, pk)
    context = _release_detail_context(membership, release)
    return render(request, "escapes/release_detail.html", context)


@require_POST
@team_view(write=True)
def release_catches(request: HttpRequest, membership: Membership, pk: int) -> HttpResponse:
    release = get_release_for_team(membership.team, pk)
    stages = stages_for_team(membership.team)
    data = request.POST.copy()
    clear = data.get("clear", "")
    # "Clear typed count" beside a stage: its box counts as emptied, the others as sent.
    cleared = next((s for s in stages if str(s.pk) == clear), None)
    if cleared is not None:
        data[CatchesForm.field_name(cleared)] = ""
    form = CatchesForm(data, stages=stages)
    if form.is_valid():
        try:
            stage_services.release_catches_set(release=release, counts=form.counts())
        except ValidationError as exc:
            by_name = {s.name: CatchesForm.field_name(s) for s in stages}
            _add_errors(form, exc, renames=by_name)
        else:
            url = reverse("release_detail", kwargs={"team": membership.team.slug, "pk": pk})
            notice = (
                f"Typed count of {cleared.name} cleared."
                if cleared is not None
                else "Caught counts saved."
            )
            if not _is_htmx(request):
                messages.success(request, notice)
                return redirect(url)
            fresh = get_release_for_team(membership.team, pk)
            context = _release_detail_context(membership, fresh)
            context["saved"] = notice
            return render(request, "escapes/release_detail.html#catches", context)
    context = _release_detail_context(membership, release, form)
    return _rerender(request, "escapes/release_detail.html", "catches", context)


@require_POST
@team_view(write=True)
def release_time(request: HttpRequest, membership: Membership, pk: int) -> HttpResponse:
    """Correct when the release reached production (read in the team's time zone)."""
    release = get_release_for_team(membership.team, pk)
    form = ReleaseTimeForm(request.POST)
    if form.is_valid():
        before = release.released_at
        try:
            services.release_move(
                release=release, released_at=form.cleaned_data["released_at"], by=membership.user
            )
        except ValidationError as exc:
            _add_errors(form, exc)
        else:
            moved = timezone.localtime(form.cleaned_data["released_at"])
            notice = (
                f"Release time corrected from {timezone.localtime(before):%Y-%m-%d %H:%M} to "
                f"{moved:%Y-%m-%d %H:%M}; the measured catches of this release and its "
                "neighbours are counted again."
                if before != form.cleaned_data["released_at"]
                else "The release time was already that."
            )
            messages.success(request, notice)
            return redirect("release_detail", team=membership.team.slug, pk=pk)
    context = _release_detail_context(membership, release, time_form=form)
    return render(request, "escapes/release_detail.html", context)


# --- Pipeline stages --------------------------------------------------------------------


def _require_admin(membership: Membership) -> None:
    if not membership.is_admin:
        raise PermissionDenied("Only a team admin can change the pipeline stages.")


def _stage_context(
    membership: Membership,
    *,
    add_form: StageNameForm | None = None,
    bound: tuple[int, StageNameForm] | None = None,
    notice: str = "",
    error: str = "",
) -> dict[str, Any]:
    """The stages page; `bound` keeps the rename form that failed, with its errors."""
    rows = []
    for stage in stages_with_usage(membership.team):
        if bound is not None and bound[0] == stage.pk:
            form = bound[1]
        else:
            form = StageNameForm(prefix=f"s{stage.pk}", initial={"name": stage.name})
        rows.append({"stage": stage, "form": form})
    return {
        "team": membership.team,
        "membership": membership,
        "rows": rows,
        "add_form": add_form or StageNameForm(prefix="new"),
        "notice": notice,
        "error": error,
        "rule_form": _close_rule_form(membership),
    }


def _close_rule_form(membership: Membership) -> CloseRuleForm:
    return CloseRuleForm(initial={"requires_root_cause": membership.team.close_requires_root_cause})


def _stage_page(request: HttpRequest, membership: Membership, **kwargs: Any) -> HttpResponse:
    context = _stage_context(membership, **kwargs)
    return _rerender(request, "escapes/stage_list.html", "stages", context)


def _stage_done(request: HttpRequest, membership: Membership, notice: str) -> HttpResponse:
    if _is_htmx(request):
        return _stage_page(request, membership, notice=notice)
    messages.success(request, notice)
    return redirect("stage_list", team=membership.team.slug)


@require_GET
@team_view()
def stage_list(request: HttpRequest, membership: Membership) -> HttpResponse:
    return _stage_page(request, membership)


@require_POST
@team_view(write=True)
def stage_add(request: HttpRequest, membership: Membership) -> HttpResponse:
    _require_admin(membership)
    form = StageNameForm(request.POST, prefix="new")
    if form.is_valid():
        try:
            stage = stage_services.stage_add(team=membership.team, name=form.cleaned_data["name"])
        except ValidationError as exc:
            _add_errors(form, exc)
        else:
            return _stage_done(request, membership, f"Stage “{stage.name}” added.")
    return _stage_page(request, membership, add_form=form)


@require_POST
@team_view(write=True)
def stage_rename(request: HttpRequest, membership: Membership, pk: int) -> HttpResponse:
    _require_admin(membership)
    stage = get_stage_for_team(membership.team, pk)
    form = StageNameForm(request.POST, prefix=f"s{stage.pk}")
    if form.is_valid():
        try:
            renamed = stage_services.stage_rename(stage=stage, name=form.cleaned_data["name"])
        except ValidationError as exc:
            _add_errors(form, exc)
        else:
            return _stage_done(request, membership, f"Stage renamed to “{renamed.name}”.")
    return _stage_page(request, membership, bound=(stage.pk, form))


@require_POST
@team_view(write=True)
def stage_move(request: HttpRequest, membership: Membership, pk: int) -> HttpResponse:
    _require_admin(membership)
    stage = get_stage_for_team(membership.team, pk)
    form = StageMoveForm(request.POST)
    if not form.is_valid():
        return _stage_page(request, membership, error="Move a stage up or down.")
    stage_services.stage_move(stage=stage, direction=form.cleaned_data["direction"])
    return _stage_done(
        request, membership, f"Stage “{stage.name}” moved {form.cleaned_data['direction']}."
    )


@require_POST
@team_view(write=True)
def stage_delete(request: HttpRequest, membership: Membership, pk: int) -> HttpResponse:
    _require_admin(membership)
    stage = get_stage_for_team(membership.team, pk)
    try:
        stage_services.stage_delete(stage=stage)
    except ValidationError as exc:
        return _stage_page(request, membership, error=" ".join(exc.messages))
    return _stage_done(request, membership, f"Stage “{stage.name}” deleted.")


# --- Retro rules: the team's settings live on this page, beside its stages.


@require_POST
@team_view(admin=True)
def close_rule(request: HttpRequest, membership: Membership) -> HttpResponse:
    """How strict closing a retro is for the team: actions only, or root causes too."""
    form = CloseRuleForm(request.POST)
    form.is_valid()
    team = team_close_rule_set(
        team=membership.team, requires_root_cause=form.cleaned_data["requires_root_cause"]
    )
    notice = "Retro rules saved."  # the section under it says the rule now in force
    if not _is_htmx(request):
        messages.success(request, notice)
        return redirect("stage_list", team=team.slug)
    context = {
        "team": team,
        "membership": membership,
        "rule_form": _close_rule_form(membership),
        "rule_notice": notice,
    }
    return render(request, "escapes/stage_list.html#retro_rules", context)
