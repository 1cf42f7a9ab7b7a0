"""The Retry button of a preventative action's ticket push (on the board and the summary).

Any member who can write may retry, on a closed retro too: the push happens after closing.
For htmx the answer is the action's escape card, as every board POST answers
(retros/views_cards.py); without JavaScript a redirect back to the page the button was on.
"""

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.urls import reverse
from django.views.decorators.http import require_POST

from integrations.push import action_push_retry
from retros.selectors import get_action_for_team
from retros.views import _card_response
from teams.decorators import team_view
from teams.models import Membership


@require_POST
@team_view(write=True)
def action_push_retry_view(
    request: HttpRequest, membership: Membership, action_id: int
) -> HttpResponse:
    action = get_action_for_team(membership.team, action_id)
    retro = action.retro
    errors: list[str] = []
    try:
        action_push_retry(action=action)
    except ValidationError as exc:
        errors = list(exc.messages)
    if request.POST.get("return_to") == "summary":
        for message in errors:
            messages.error(request, message)
        summary = reverse("retro_summary", kwargs={"team": membership.team.slug, "pk": retro.pk})
        return redirect(f"{summary}#escape-{action.escape_id}")
    return _card_response(request, membership, retro, action.escape_id, errors)
