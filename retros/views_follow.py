"""Marking an action done in Leakseal, and reopening it (retros/follow_through.py).

The forms sit on an action wherever it shows after its retro closed: its card on the board and
the summary, and the panel of earlier actions on a newer retro's board. For htmx the answer is
the action's follow-through block (templates/retros/_action_follow.html), with a refusal inside
it; the boards showing the action update from the live stream. Without JavaScript the POST
redirects back to the page it came from (`return_to`, a path of this site) with a message.
"""

from typing import Any

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from retros import follow_through
from retros.models import PreventativeAction
from retros.selectors import get_action_for_team
from retros.views import _attempt, _is_htmx
from teams.decorators import team_view
from teams.models import Membership

FOLLOW = "retros/_action_follow.html"


def _answer(
    request: HttpRequest,
    membership: Membership,
    action: PreventativeAction,
    errors: list[str],
    done: str,
    **extra: Any,
) -> HttpResponse:
    if _is_htmx(request):
        fresh = get_action_for_team(membership.team, action.pk)
        context = {
            "team": membership.team,
            "membership": membership,
            "action": fresh,
            "follow_errors": errors,
            "return_to": request.POST.get("return_to", ""),
            **extra,
        }
        return render(request, FOLLOW, context)
    for message in errors:
        messages.error(request, message)
    if not errors:
        messages.success(request, done)
    back = request.POST.get("return_to", "")
    if not url_has_allowed_host_and_scheme(
        back, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ) or not back.startswith("/"):
        back = reverse(
            "retro_summary", kwargs={"team": membership.team.slug, "pk": action.retro_id}
        )
    return redirect(back)


@require_POST
@team_view(write=True)
def action_done(request: HttpRequest, membership: Membership, action_id: int) -> HttpResponse:
    action = get_action_for_team(membership.team, action_id)
    note, url = request.POST.get("note", ""), request.POST.get("url", "")
    errors = _attempt(
        lambda: follow_through.action_mark_done(
            action=action, by=membership.user, note=note, url=url
        )
    )
    draft = {"follow_draft": {"note": note, "url": url}} if errors else {}
    return _answer(request, membership, action, errors, f"“{action.title}” is done.", **draft)


@require_POST
@team_view(write=True)
def action_reopen(request: HttpRequest, membership: Membership, action_id: int) -> HttpResponse:
    action = get_action_for_team(membership.team, action_id)
    errors = _attempt(lambda: follow_through.action_mark_undone(action=action, by=membership.user))
    return _answer(request, membership, action, errors, f"“{action.title}” is open again.")
