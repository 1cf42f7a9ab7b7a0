"""Facilitation endpoints of the board: the timer, the escape in focus, dot voting.

Timer, focus and voting belong to facilitators (team admins and facilitators; others get
403 from `team_view`); votes to every member who may write. Like the other board POSTs,
an htmx request gets the region that changed back, with any refusal rendered inside it.
"""

from collections.abc import Callable
from typing import Any

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.template.loader import render_to_string
from django.views.decorators.http import require_POST

from retros import facilitation
from retros.forms import FocusForm, TimerForm, VotingForm, form_messages
from retros.models import Retrospective
from retros.selectors import get_retro_escape, get_retro_for_team, get_team_escape
from retros.views import (
    _attempt,
    _board_response,
    _board_url,
    _card_html,
    _context,
    _is_htmx,
)
from teams.decorators import team_view
from teams.models import Membership

FACILITATION = "retros/_facilitation.html"


# --- Responses.


def _facilitation_bar(context: dict[str, Any], request: HttpRequest) -> str:
    return render_to_string(f"{FACILITATION}#facilitation_bar", {**context, "oob": True}, request)


def _card_with_bar(
    request: HttpRequest,
    membership: Membership,
    retro: Retrospective,
    escape_id: int,
    errors: list[str],
) -> HttpResponse:
    """The escape's card with what counts it (as for any card), and out of band the
    facilitation bar: it counts the votes left."""
    if not _is_htmx(request):
        for message in errors:
            messages.error(request, message)
        return redirect(_board_url(retro, f"escape-{escape_id}"))
    context = _context(
        membership, retro, error_escape_id=escape_id, card_errors=errors, error_for="vote"
    )
    return HttpResponse(
        _card_html(request, context, escape_id) + _facilitation_bar(context, request)
    )


def _facilitate(
    request: HttpRequest,
    membership: Membership,
    pk: int,
    write: Callable[[Retrospective], object],
    done: str,
) -> HttpResponse:
    retro = get_retro_for_team(membership.team, pk)
    errors = _attempt(lambda: write(retro))
    return _board_response(request, membership, retro, errors, done=done)


def _with_form(
    request: HttpRequest,
    membership: Membership,
    pk: int,
    form: TimerForm | VotingForm,
    write: Callable[[Retrospective, dict[str, Any]], object],
    done: str,
) -> HttpResponse:
    if not form.is_valid():
        retro = get_retro_for_team(membership.team, pk)
        return _board_response(request, membership, retro, form_messages(form))
    return _facilitate(request, membership, pk, lambda r: write(r, form.cleaned_data), done)


# --- Timer.


@require_POST
@team_view(facilitate=True)
def retro_timer_start(request: HttpRequest, membership: Membership, pk: int) -> HttpResponse:
    return _with_form(
        request,
        membership,
        pk,
        TimerForm(request.POST),
        lambda r, d: facilitation.timer_start(retro=r, minutes=d["minutes"]),
        "Timer started.",
    )


@require_POST
@team_view(facilitate=True)
def retro_timer_pause(request: HttpRequest, membership: Membership, pk: int) -> HttpResponse:
    return _facilitate(
        request, membership, pk, lambda r: facilitation.timer_pause(retro=r), "Timer paused."
    )


@require_POST
@team_view(facilitate=True)
def retro_timer_resume(request: HttpRequest, membership: Membership, pk: int) -> HttpResponse:
    return _facilitate(
        request, membership, pk, lambda r: facilitation.timer_resume(retro=r), "Timer resumed."
    )


@require_POST
@team_view(facilitate=True)
def retro_timer_extend(request: HttpRequest, membership: Membership, pk: int) -> HttpResponse:
    return _with_form(
        request,
        membership,
        pk,
        TimerForm(request.POST),
        lambda r, d: facilitation.timer_extend(retro=r, minutes=d["minutes"]),
        "Timer extended.",
    )


@require_POST
@team_view(facilitate=True)
def retro_timer_clear(request: HttpRequest, membership: Membership, pk: int) -> HttpResponse:
    return _facilitate(
        request, membership, pk, lambda r: facilitation.timer_clear(retro=r), "Timer cleared."
    )


# --- Focus.


@require_POST
@team_view(facilitate=True)
def retro_focus(request: HttpRequest, membership: Membership, pk: int) -> HttpResponse:
    """Put an escape in focus on every board; an empty `escape` clears the focus."""
    form = FocusForm(request.POST)
    retro = get_retro_for_team(membership.team, pk)
    if not form.is_valid():
        return _board_response(request, membership, retro, form_messages(form))
    escape_id = form.cleaned_data["escape"]
    # Another team's escape is 404; one of the team that is not on this board is refused.
    escape = get_team_escape(membership.team, escape_id) if escape_id else None
    errors = _attempt(lambda: facilitation.focus_set(retro=retro, escape=escape))
    done = f"“{escape.title}” is in focus." if escape else "No escape in focus."
    return _board_response(request, membership, retro, errors, done=done)


# --- Dot voting.


@require_POST
@team_view(facilitate=True)
def retro_voting_open(request: HttpRequest, membership: Membership, pk: int) -> HttpResponse:
    return _with_form(
        request,
        membership,
        pk,
        VotingForm(request.POST),
        lambda r, d: facilitation.voting_open(retro=r, votes_per_person=d["votes_per_person"]),
        "Voting is open.",
    )


@require_POST
@team_view(facilitate=True)
def retro_voting_close(request: HttpRequest, membership: Membership, pk: int) -> HttpResponse:
    return _facilitate(
        request,
        membership,
        pk,
        lambda r: facilitation.voting_close(retro=r),
        "Voting is closed; the board is ordered by votes.",
    )


@require_POST
@team_view(write=True)
def retro_vote(
    request: HttpRequest, membership: Membership, pk: int, escape_id: int
) -> HttpResponse:
    retro = get_retro_for_team(membership.team, pk)
    escape = get_retro_escape(retro, escape_id)
    errors = _attempt(
        lambda: facilitation.vote_cast(retro=retro, escape=escape, voter=membership.user)
    )
    return _card_with_bar(request, membership, retro, escape.pk, errors)


@require_POST
@team_view(write=True)
def retro_unvote(
    request: HttpRequest, membership: Membership, pk: int, escape_id: int
) -> HttpResponse:
    retro = get_retro_for_team(membership.team, pk)
    escape = get_retro_escape(retro, escape_id)
    errors = _attempt(
        lambda: facilitation.vote_retract(retro=retro, escape=escape, voter=membership.user)
    )
    return _card_with_bar(request, membership, retro, escape.pk, errors)
