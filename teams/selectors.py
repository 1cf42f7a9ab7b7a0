"""Permission-checked reads of teams: a user only ever sees the teams they belong to.

Everything team-scoped starts from `get_membership`; a team the user is not a member of
is indistinguishable from one that does not exist (404).
"""

from django.contrib.auth.models import AnonymousUser, User
from django.core.exceptions import PermissionDenied
from django.db.models import Case, F, IntegerField, QuerySet, Value, When
from django.http import Http404

from teams.models import Invitation, Membership, Role, Team


class RuleDenied(PermissionDenied):
    """Refused by a rule about one object (a why someone else wrote), not by the role: the
    403 page shows this message instead of what the role can do."""


def teams_for_user(user: User | AnonymousUser) -> QuerySet[Team]:
    """The user's teams, each with `my_role` (their role in it) and its tracker connection."""
    if not user.is_authenticated:
        return Team.objects.none()
    return (
        Team.objects.filter(memberships__user=user)
        # The annotation reuses the filter's join, so it is this user's membership's role.
        .annotate(my_role=F("memberships__role"))
        .select_related("tracker_connection")
        .order_by("name")
    )


def get_membership(user: User | AnonymousUser, team_slug: str) -> Membership:
    """The user's membership of the team, or 404 for outsiders and unknown teams alike."""
    if not user.is_authenticated:
        raise Http404("No such team")
    membership = (
        Membership.objects.select_related("team", "user")
        .filter(user=user, team__slug=team_slug)
        .first()
    )
    if membership is None:
        raise Http404("No such team")
    return membership


def get_rw_membership(user: User | AnonymousUser, team_slug: str) -> Membership:
    """Like `get_membership`, but a viewer gets 403: they may see the team, not change it."""
    membership = get_membership(user, team_slug)
    if not membership.can_write:
        raise PermissionDenied("Viewers cannot change this team's data.")
    return membership


def get_admin_membership(user: User | AnonymousUser, team_slug: str) -> Membership:
    """Like `get_membership`, but only a team admin gets through; other members get 403."""
    membership = get_membership(user, team_slug)
    if not membership.is_admin:
        raise PermissionDenied("Only an admin of this team can do this.")
    return membership


def get_facilitator_membership(user: User | AnonymousUser, team_slug: str) -> Membership:
    membership = get_membership(user, team_slug)
    if not membership.can_facilitate:
        raise PermissionDenied("Only a facilitator or admin of this team can do this.")
    return membership


def teams_all() -> QuerySet[Team]:
    """Every team, for the backstops and checks that go over all of them (not for a page)."""
    return Team.objects.all()


def team_member_ids(team: Team) -> set[int]:
    return set(Membership.objects.filter(team=team).values_list("user_id", flat=True))


def team_membership(*, team_id: int, user: User) -> Membership | None:
    """The user's membership of the team, or None: for a service that checks a role."""
    return Membership.objects.filter(team_id=team_id, user=user).first()


def team_role(*, team_id: int, user_id: int) -> str | None:
    """The user's role in the team, or None if they are not in it (one small query: what a
    live board's stream re-reads at each heartbeat)."""
    return (
        Membership.objects.filter(team_id=team_id, user_id=user_id)
        .values_list("role", flat=True)
        .first()
    )


def can_facilitate(*, team: Team, user: User) -> bool:
    """Whether the user is a facilitator or an admin of the team."""
    return Membership.objects.filter(
        team=team, user=user, role__in=[Role.ADMIN, Role.FACILITATOR]
    ).exists()


def team_members(team: Team) -> QuerySet[Membership]:
    """The team's memberships with their users, admins first, then by username."""
    order = Case(
        *(When(role=role, then=Value(i)) for i, role in enumerate(Role.values)),
        output_field=IntegerField(),
    )
    return (
        Membership.objects.filter(team=team)
        .select_related("user")
        .order_by(order, "user__username")
    )


def team_invitations(team: Team) -> QuerySet[Invitation]:
    """The team's invitations still open to the admin: pending or expired (to resend)."""
    return (
        Invitation.objects.filter(
            team=team, accepted_at__isnull=True, revoked_at__isnull=True, replaced_by__isnull=True
        )
        .select_related("invited_by")
        .order_by("-created_at")
    )
