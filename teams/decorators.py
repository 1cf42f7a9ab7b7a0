"""`team_view`: the one way a team-scoped view gets its team.

It signs in anonymous users, answers 404 to anyone who is not a member (an outsider cannot
tell a team exists), 403 to a member whose role may not do this, and renders the view in the
team's time zone so that forms read and pages show local times.
"""

from collections.abc import Callable, Coroutine
from functools import wraps
from typing import Any, Concatenate

from asgiref.sync import sync_to_async
from django.contrib.auth.decorators import login_required
from django.contrib.auth.models import AnonymousUser, User
from django.http import HttpRequest, HttpResponse
from django.http.response import HttpResponseBase
from django.utils import timezone

from teams.models import Membership
from teams.selectors import (
    get_admin_membership,
    get_facilitator_membership,
    get_membership,
    get_rw_membership,
)

TeamView = Callable[Concatenate[HttpRequest, Membership, ...], HttpResponse]
AsyncResponse = Coroutine[Any, Any, HttpResponseBase]
AsyncTeamView = Callable[Concatenate[HttpRequest, Membership, ...], AsyncResponse]


def _membership_for(
    user: User | AnonymousUser, team: str, *, write: bool, facilitate: bool, admin: bool = False
) -> Membership:
    if admin:
        return get_admin_membership(user, team)
    if facilitate:
        return get_facilitator_membership(user, team)
    if write:
        return get_rw_membership(user, team)
    return get_membership(user, team)


def team_view(
    *, write: bool = False, facilitate: bool = False, admin: bool = False
) -> Callable[[TeamView], Callable[..., HttpResponse]]:
    """Wrap a view taking (request, membership, **kwargs); the URL must capture `team`.

    `write` lets every member but viewers in, `facilitate` facilitators and admins, `admin`
    team admins only.
    """

    def decorator(view: TeamView) -> Callable[..., HttpResponse]:
        @wraps(view)
        @login_required
        def wrapper(request: HttpRequest, team: str, *args: Any, **kwargs: Any) -> HttpResponse:
            membership = _membership_for(
                request.user, team, write=write, facilitate=facilitate, admin=admin
            )
            with timezone.override(membership.team.tzinfo):
                return view(request, membership, *args, **kwargs)

        return wrapper

    return decorator


def async_team_view(
    *, write: bool = False, facilitate: bool = False
) -> Callable[[AsyncTeamView], Callable[..., AsyncResponse]]:
    """`team_view` for an async view: the same answers, the database read off the event loop."""

    def decorator(view: AsyncTeamView) -> Callable[..., AsyncResponse]:
        @wraps(view)
        @login_required
        async def wrapper(
            request: HttpRequest, team: str, *args: Any, **kwargs: Any
        ) -> HttpResponseBase:
            user = await request.auser()
            membership = await sync_to_async(_membership_for)(
                user, team, write=write, facilitate=facilitate
            )
            with timezone.override(membership.team.tzinfo):
                return await view(request, membership, *args, **kwargs)

        return wrapper

    return decorator
