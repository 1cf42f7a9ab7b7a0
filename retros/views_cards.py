"""The board's escape cards: classification, Five Whys (with the blameless check), actions.

Each POST validates a form and calls one service; for htmx the answer is the card that
changed, with any error inside it (see retros/views.py for the board's conventions).
"""

from typing import Any

from django.http import HttpRequest, HttpResponse, QueryDict
from django.views.decorators.http import require_POST

from retros import services
from retros.blameless import BlamelessReview
from retros.blameless import review as blameless_review
from retros.forms import (
    ActionForm,
    ClassifyForm,
    RootCauseForm,
    WhyAddForm,
    WhyEditForm,
    form_messages,
)
from retros.models import Retrospective
from retros.selectors import (
    get_action_for_retro,
    get_retro_escape,
    get_retro_for_team,
    get_why_for_retro,
    team_member_names,
)
from retros.views import (
    ActionDraft,
    _attempt,
    _board_page,
    _card_response,
    _is_htmx,
)
from teams.decorators import team_view
from teams.models import Membership
from teams.selectors import RuleDenied


@require_POST
@team_view(write=True)
def retro_classify(
    request: HttpRequest, membership: Membership, pk: int, escape_id: int
) -> HttpResponse:
    retro = get_retro_for_team(membership.team, pk)
    escape = get_retro_escape(retro, escape_id)
    form = ClassifyForm(request.POST, team=membership.team)
    if not form.is_valid():
        return _card_response(
            request, membership, retro, escape.pk, form_messages(form), error_for="classify"
        )
    data = form.cleaned_data
    errors = _attempt(
        lambda: services.retro_escape_classify(
            retro=retro, escape=escape, category=data["category"], stage=data["stage"]
        )
    )
    return _card_response(request, membership, retro, escape.pk, errors, error_for="classify")


@require_POST
@team_view(write=True)
def retro_why_add(
    request: HttpRequest, membership: Membership, pk: int, escape_id: int
) -> HttpResponse:
    retro = get_retro_for_team(membership.team, pk)
    escape = get_retro_escape(retro, escape_id)
    data = _with_suggestion(request.POST)
    form = WhyAddForm(data)
    errors: list[str] = []
    held, review = False, None
    if not form.is_valid():
        errors = form_messages(form)
    else:
        text, parent_id = form.cleaned_data["text"], form.cleaned_data["parent"]
        parent = get_why_for_retro(retro, parent_id) if parent_id else None
        held, review = _blameless_hold(data, membership, text)
        if not held:
            errors = _attempt(
                lambda: services.why_add(
                    retro=retro, escape=escape, parent=parent, text=text, author=membership.user
                )
            )
    draft = {"parent": data.get("parent", ""), "text": data.get("text", "")}
    extra = (
        {"draft_for": "why_add", "why_draft": draft, "blameless": review} if errors or held else {}
    )
    if held and not _is_htmx(request):
        return _held_page(request, membership, retro, escape.pk, extra)
    return _card_response(request, membership, retro, escape.pk, errors, **extra)


def _held_page(
    request: HttpRequest,
    membership: Membership,
    retro: Retrospective,
    escape_id: int,
    extra: dict[str, Any],
) -> HttpResponse:
    """The whole board with a why held back for the blameless check, for a plain POST:
    a redirect would lose the draft and the suggestion."""
    return _board_page(request, membership, retro, error_escape_id=escape_id, **extra)


def _with_suggestion(post: QueryDict) -> QueryDict:
    """The POST with the suggestion as its text when "Use suggestion" was pressed."""
    suggestion = post.get("use_suggestion")
    if suggestion is None:
        return post
    data = post.copy()
    data["text"] = suggestion
    return data


def _blameless_hold(
    data: QueryDict, membership: Membership, text: str
) -> tuple[bool, BlamelessReview | None]:
    """Whether to hold a why back instead of saving it, and the review to show with it.

    A why that points at a person is held with a system-focused suggestion. "Use
    suggestion" only fills the field (the author reads it before posting); "Post anyway"
    saves the text as it is.
    """
    if "use_suggestion" in data:
        return True, None
    if data.get("post_anyway") == "1":
        return False, None
    review = blameless_review(text, team_member_names(membership.team))
    return review is not None, review


@require_POST
@team_view(write=True)
def retro_why_edit(
    request: HttpRequest, membership: Membership, pk: int, why_id: int
) -> HttpResponse:
    retro = get_retro_for_team(membership.team, pk)
    why = get_why_for_retro(retro, why_id)
    if not why.changeable_by(membership):
        # Before the blameless check, which would otherwise hold someone else's why for review.
        raise RuleDenied(services.WHY_OWNER_MESSAGE)
    data = _with_suggestion(request.POST)
    form = WhyEditForm(data)
    errors: list[str] = []
    held, review = False, None
    if not form.is_valid():
        errors = form_messages(form)
    else:
        text, revision = form.cleaned_data["text"], form.cleaned_data["revision"]
        held, review = _blameless_hold(data, membership, text)
        if not held:
            errors = _attempt(
                lambda: services.why_edit(
                    why=why, text=text, expected_revision=revision, by=membership.user
                )
            )
    extra: dict[str, Any] = {}
    if errors:
        # A refused edit reopens with what was typed, under the why's current revision.
        extra = {"edit_why_id": why.pk, "edit_text": data.get("text", "")}
    elif held:
        # Held back, it keeps the revision the author started from: "Post anyway" must not
        # overwrite a change made meanwhile.
        extra = {
            "edit_why_id": why.pk,
            "edit_text": data.get("text", ""),
            "edit_revision": data.get("revision", ""),
            "blameless": review,
        }
        if not _is_htmx(request):
            return _held_page(request, membership, retro, why.escape_id, extra)
    return _card_response(
        request, membership, retro, why.escape_id, errors, **extra, **_at_why(why.pk)
    )


@require_POST
@team_view(write=True)
def retro_why_delete(
    request: HttpRequest, membership: Membership, pk: int, why_id: int
) -> HttpResponse:
    retro = get_retro_for_team(membership.team, pk)
    why = get_why_for_retro(retro, why_id)
    errors = _attempt(lambda: services.why_delete(why=why, by=membership.user))
    return _card_response(request, membership, retro, why.escape_id, errors, **_at_why(why.pk))


@require_POST
@team_view(write=True)
def retro_why_mark_root_cause(
    request: HttpRequest, membership: Membership, pk: int, why_id: int
) -> HttpResponse:
    retro = get_retro_for_team(membership.team, pk)
    why = get_why_for_retro(retro, why_id)
    form = RootCauseForm(request.POST)
    if form.is_valid():
        kind = form.cleaned_data["kind"]
        errors = _attempt(lambda: services.why_mark_root_cause(why=why, kind=kind))
    else:
        errors = form_messages(form)
    return _card_response(request, membership, retro, why.escape_id, errors, **_at_why(why.pk))


@require_POST
@team_view(write=True)
def retro_why_unmark_root_cause(
    request: HttpRequest, membership: Membership, pk: int, why_id: int
) -> HttpResponse:
    retro = get_retro_for_team(membership.team, pk)
    why = get_why_for_retro(retro, why_id)
    errors = _attempt(lambda: services.why_unmark_root_cause(why=why))
    return _card_response(request, membership, retro, why.escape_id, errors, **_at_why(why.pk))


@require_POST
@team_view(write=True)
def retro_action_add(
    request: HttpRequest, membership: Membership, pk: int, escape_id: int
) -> HttpResponse:
    retro = get_retro_for_team(membership.team, pk)
    escape = get_retro_escape(retro, escape_id)
    form = ActionForm(request.POST, team=membership.team)
    if form.is_valid():
        fields = form.service_kwargs()
        errors = _attempt(
            lambda: services.action_add(
                retro=retro, escape=escape, created_by=membership.user, **fields
            )
        )
    else:
        errors = form_messages(form)
    extra = (
        {"draft_for": "action_add", "action_draft": ActionDraft.from_post(request.POST)}
        if errors
        else {}
    )
    return _card_response(request, membership, retro, escape.pk, errors, **extra)


@require_POST
@team_view(write=True)
def retro_action_edit(
    request: HttpRequest, membership: Membership, pk: int, action_id: int
) -> HttpResponse:
    retro = get_retro_for_team(membership.team, pk)
    action = get_action_for_retro(retro, action_id)
    form = ActionForm(request.POST, team=membership.team)
    if form.is_valid():
        fields = form.service_kwargs()
        errors = _attempt(lambda: services.action_update(action=action, **fields))
    else:
        errors = form_messages(form)
    extra = (
        {"edit_action_id": action.pk, "action_draft": ActionDraft.from_post(request.POST)}
        if errors
        else {}
    )
    return _card_response(
        request, membership, retro, action.escape_id, errors, **extra, **_at_action(action.pk)
    )


@require_POST
@team_view(write=True)
def retro_action_delete(
    request: HttpRequest, membership: Membership, pk: int, action_id: int
) -> HttpResponse:
    retro = get_retro_for_team(membership.team, pk)
    action = get_action_for_retro(retro, action_id)
    errors = _attempt(lambda: services.action_delete(action=action))
    return _card_response(
        request, membership, retro, action.escape_id, errors, **_at_action(action.pk)
    )


# A refusal is shown beside the control that caused it (templates/retros/retro_detail.html):
# `error_for` names the kind of control, `error_target` the why or action it belongs to.


def _at_why(why_id: int) -> dict[str, Any]:
    return {"error_for": "why", "error_target": why_id}


def _at_action(action_id: int) -> dict[str, Any]:
    return {"error_for": "action", "error_target": action_id}
