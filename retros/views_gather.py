"""Contributing in Gather (retros/gather.py): escapes proposed or recorded from the board,
kept by the facilitator, and facts on an escape's card.

Like the other board POSTs, each validates a form and calls one service; for htmx the answer
is the region that changed (the whole board when an escape joins it, the card for a fact)
with any refusal inside it, next to the field at fault. Without JavaScript a refused new
escape or fact renders the board with the form and its errors; everything else redirects back.
"""

from typing import Any

from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_POST

from retros import gather
from retros.forms import FactForm, form_messages
from retros.selectors import (
    get_fact_for_retro,
    get_retro_escape,
    get_retro_for_team,
)
from retros.views import (
    BOARD,
    _attempt,
    _board_page,
    _board_response,
    _card_response,
    _context,
    _escape_picked,
    _is_htmx,
    new_escape_form,
)
from teams.decorators import team_view
from teams.models import Membership


def _done(membership: Membership, title: str) -> str:
    if membership.can_facilitate:
        return f"“{title}” is on the board."
    return f"You proposed “{title}”; the facilitator keeps or removes it."


@require_POST
@team_view(write=True)
def retro_escape_propose(request: HttpRequest, membership: Membership, pk: int) -> HttpResponse:
    """An escape of the team's register onto the board: proposed, or kept for a facilitator."""
    return _escape_picked(
        request,
        membership,
        pk,
        lambda retro, escape: gather.retro_propose_escape(
            retro=retro, escape=escape, by=membership.user
        ),
        done=lambda escape: _done(membership, escape.title),
    )


@require_POST
@team_view(write=True)
def retro_escape_new(request: HttpRequest, membership: Membership, pk: int) -> HttpResponse:
    """A new escape of the register, recorded from the board and put on it."""
    retro = get_retro_for_team(membership.team, pk)
    form = new_escape_form(membership, retro, request.POST)
    if form.is_valid():
        try:
            escape = gather.retro_new_escape(
                retro=retro, data=form.service_data(), by=membership.user
            )
        except ValidationError as exc:
            form.add_service_errors(exc)
        else:
            return _board_response(request, membership, retro, done=_done(membership, escape.title))
    # Refused: the board again, with what was typed and each error beside its field.
    refused: dict[str, Any] = {"new_escape_form": form, "new_escape_open": True}
    if _is_htmx(request):
        return render(request, f"{BOARD}#board", _context(membership, retro, **refused))
    return _board_page(request, membership, retro, **refused)


@require_POST
@team_view(facilitate=True)
def retro_escape_keep(
    request: HttpRequest, membership: Membership, pk: int, escape_id: int
) -> HttpResponse:
    retro = get_retro_for_team(membership.team, pk)
    escape = get_retro_escape(retro, escape_id)
    errors = _attempt(lambda: gather.retro_keep_escape(retro=retro, escape=escape))
    return _card_response(request, membership, retro, escape.pk, errors, error_for="keep")


# --- Facts.


def _field_errors(form: FactForm, exc: ValidationError | None) -> dict[str, list[str]]:
    """The form's and the service's errors by field, for the messages beside each field;
    "other" holds those of no field (the form shows them above its button)."""
    errors: dict[str, list[str]] = {
        name: [str(message) for message in found] for name, found in form.errors.items()
    }
    if exc is not None:
        found = exc.message_dict if hasattr(exc, "error_dict") else {"other": exc.messages}
        for name, texts in found.items():
            key = name if name in FactForm.base_fields else "other"
            errors.setdefault(key, []).extend(texts)
    return errors


@require_POST
@team_view(write=True)
def retro_fact_add(
    request: HttpRequest, membership: Membership, pk: int, escape_id: int
) -> HttpResponse:
    retro = get_retro_for_team(membership.team, pk)
    escape = get_retro_escape(retro, escape_id)
    form = FactForm(request.POST)
    refusal: ValidationError | None = None
    card_errors: list[str] = []
    if form.is_valid():
        data = form.cleaned_data
        try:
            gather.fact_add(
                retro=retro,
                escape=escape,
                kind=data["kind"],
                text=data["text"],
                url=data["url"],
                author=membership.user,
            )
        except ValidationError as exc:
            refusal = exc
            card_errors = list(exc.messages)
    else:
        card_errors = form_messages(form)
    if not card_errors:
        return _card_response(request, membership, retro, escape.pk)
    extra: dict[str, Any] = {
        "error_for": "fact",
        "draft_for": "fact_add",
        "fact_errors": _field_errors(form, refusal),
        "fact_draft": {name: request.POST.get(name, "") for name in ("kind", "text", "url")},
    }
    if not _is_htmx(request):
        # The whole board, so the errors stand beside their fields (a redirect loses them).
        return _board_page(
            request, membership, retro, error_escape_id=escape.pk, card_errors=card_errors, **extra
        )
    return _card_response(request, membership, retro, escape.pk, card_errors, **extra)


@require_POST
@team_view(write=True)
def retro_fact_delete(
    request: HttpRequest, membership: Membership, pk: int, fact_id: int
) -> HttpResponse:
    retro = get_retro_for_team(membership.team, pk)
    fact = get_fact_for_retro(retro, fact_id)
    errors = _attempt(lambda: gather.fact_delete(fact=fact, by=membership.user))
    return _card_response(
        request,
        membership,
        retro,
        fact.escape_id,
        errors,
        error_for="fact_delete",
        error_target=fact.pk,
    )
