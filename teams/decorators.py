"""`team_view`: the one way a team-scoped view gets its team.

It signs in anonymous users, answers 404 to anyone who is not a member (an outsider cannot
tell a team exists), 403 to a member whose role may not do this, and renders the view in the
team's time zone so that forms read and pages show local times.
"""

from collections.abc import Callable
from functools import wraps
from typing import Any, Concatenate

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.utils import timezone

from teams.models import Membership
from teams.selectors import get_facilitator_membership, get_membership, get_rw_membership

TeamView = Callable[Concatenate[HttpRequest, Membership, ...], HttpResponse]


def team_view(
    *, write: bool = False, facilitate: bool = False
) -> Callable[[TeamView], Callable[..., HttpResponse]]:
    """Wrap a view taking (request, membership, **kwargs); the URL must capture `team`."""

    def decorator(view: TeamView) -> Callable[..., HttpResponse]:
        @wraps(view)
        @login_required
        def wrapper(request: HttpRequest, team: str, *args: Any, **kwargs: Any) -> HttpResponse:
            if facilitate:
                membership = get_facilitator_membership(request.user, team)
            elif write:
                membership = get_rw_membership(request.user, team)
            else:
                membership = get_membership(request.user, team)
            with timezone.override(membership.team.tzinfo):
                return view(request, membership, *args, **kwargs)

        return wrapper

    return decorator
