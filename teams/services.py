"""Writes to teams, memberships, accounts made to join a team, and API tokens.

Every change a team admin may want to audit (team creation, a role change, a removal, the
join-link setting, someone joining) is one function here, in one transaction, so that its
record can be written in that same transaction. Invitations are in teams/invitations.py.
"""

import secrets
from datetime import timedelta

from django.contrib.auth.models import User
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from audit.models import Action
from audit.services import record
from teams.models import ApiToken, Membership, Role, Team
from teams.signals import team_created


@transaction.atomic
def team_create(
    *,
    name: str,
    slug: str,
    timezone_name: str = "UTC",
    stages: list[str] | None = None,
    admin: User | None = None,
) -> Team:
    """A team, its pipeline stages (`stages`, or Unit, Integration, E2E) and its first admin.

    Refused with a ValidationError keyed by field (`name`, `slug`, `timezone`, `stages`);
    nothing is written then.
    """
    team = Team(name=name, slug=slug, timezone=timezone_name)
    team.full_clean()  # a taken slug is refused here, naming the slug field
    team.save()
    # escapes gives the new team its pipeline stages, in this transaction (and may refuse).
    team_created.send(sender=Team, team=team, stages=stages)
    if admin is not None:  # created by someone in the web app: the trail's first entry
        Membership.objects.create(team=team, user=admin, role=Role.ADMIN)
        record(
            team=team,
            actor=admin,
            action=Action.TEAM_CREATED,
            target=f"{team.name} ({team.slug})",
            changes={"time zone": team.timezone, "stages": stages or "the default"},
        )
    return team


@transaction.atomic
def team_join_link_sign_up_set(*, team: Team, allowed: bool, by: User | None = None) -> Team:
    """Whether a retro's join link lets a newcomer create an account (or join) as a member."""
    before = team.join_link_sign_up
    team.join_link_sign_up = allowed
    team.save(update_fields=["join_link_sign_up"])
    if before != allowed:
        record(
            team=team,
            actor=by,
            action=Action.JOIN_LINK_SIGN_UP_CHANGED,
            target=team.name,
            changes={"join link sign-up": {"from": before, "to": allowed}},
        )
    return team


def team_close_rule_set(*, team: Team, requires_root_cause: bool) -> Team:
    """Set how strict closing the team's retros is; the next close of any of them obeys it."""
    team.close_requires_root_cause = requires_root_cause
    team.save(update_fields=["close_requires_root_cause"])
    return team


def membership_set(*, team: Team, user: User, role: str) -> Membership:
    if role not in Role.values:
        raise ValueError(f"Unknown role {role!r}; choose one of {', '.join(Role.values)}")
    membership, _ = Membership.objects.update_or_create(
        team=team, user=user, defaults={"role": role}
    )
    return membership


def _lock_admins(team: Team) -> list[Membership]:
    """Take the team's row lock, then return its admins: every change that may leave the team
    without an admin runs under this lock, so two admins demoting each other queue."""
    team_lock(team_id=team.pk)
    return list(Membership.objects.filter(team=team, role=Role.ADMIN).select_related("user"))


def _last_admin_message(membership: Membership, *, by: User, doing: str) -> str:
    if membership.user_id == by.pk:
        return (
            f"You are the only admin of {membership.team.name}, so you cannot {doing} yourself: "
            "make someone else an admin first."
        )
    return (
        f"{membership.user.get_username()} is the only admin of {membership.team.name}: "
        "make someone else an admin first."
    )


@transaction.atomic
def membership_role_change(*, membership: Membership, role: str, by: User) -> Membership:
    """Give a member another role; the team's last admin is never demoted."""
    if role not in Role.values:
        raise ValidationError({"role": f"Choose one of: {', '.join(Role.labels)}."})
    admins = _lock_admins(membership.team)
    current = Membership.objects.select_for_update().filter(pk=membership.pk).first()
    if current is None:
        raise ValidationError(f"{membership.user.get_username()} is no longer a member.")
    if current.role == role:
        return current
    if current.role == Role.ADMIN and len(admins) == 1:
        raise ValidationError({"role": _last_admin_message(current, by=by, doing="demote")})
    before = current.role
    current.role = role
    current.save(update_fields=["role"])
    record(
        team=current.team,
        actor=by,
        action=Action.MEMBER_ROLE_CHANGED,
        target=current.user.get_username(),
        changes={"role": {"from": before, "to": role}},
    )
    return current


@transaction.atomic
def membership_remove(*, membership: Membership, by: User) -> None:
    """Take someone out of the team; the team's last admin is never removed."""
    admins = _lock_admins(membership.team)
    current = Membership.objects.select_for_update().filter(pk=membership.pk).first()
    if current is None:
        return
    if current.role == Role.ADMIN and len(admins) == 1:
        raise ValidationError(_last_admin_message(current, by=by, doing="remove"))
    record(
        team=current.team,
        actor=by,
        action=Action.MEMBER_REMOVED,
        target=current.user.get_username(),
        changes={"role": current.role},
    )
    current.delete()


def email_in_use(email: str) -> bool:
    return User.objects.filter(email__iexact=email.strip()).exists()


def account_create(*, username: str, name: str, email: str, password: str) -> User:
    """A new account, checked like Django's sign-up: a free, valid username, a password that
    passes AUTH_PASSWORD_VALIDATORS, an address no other account has. Call inside a
    transaction. Errors are keyed `username`, `email`, `password`."""
    username = username.strip()
    user = User(username=username, first_name=" ".join(name.split()), email=email.strip())
    errors: dict[str, list[str]] = {}
    try:
        user.full_clean(exclude=["password"])
    except ValidationError as exc:
        errors.update(exc.message_dict)
    if User.objects.filter(username__iexact=username).exclude(username=username).exists():
        errors.setdefault("username", []).append("A user with that username already exists.")
    if email_in_use(email):
        errors.setdefault("email", []).append(
            "An account with this address exists already: sign in with it instead."
        )
    try:
        validate_password(password, user)
    except ValidationError as exc:
        errors["password"] = exc.messages
    if errors:
        raise ValidationError(errors)
    user.set_password(password)
    user.save()
    return user


@transaction.atomic
def team_join_by_link(*, team: Team, user: User) -> tuple[Membership, bool]:
    """Join the team from a retro's join link, as a member, when the team allows it.

    Never changes an existing membership (a viewer who opens the link stays a viewer): the
    link cannot raise anyone's role. Returns the membership and whether it is new.
    """
    locked = team_lock(team_id=team.pk)
    if locked is None or not locked.join_link_sign_up:
        raise ValidationError("This team does not let people join from a retro's link.")
    membership, created = Membership.objects.get_or_create(
        team=locked, user=user, defaults={"role": Role.MEMBER}
    )
    if created:
        record(
            team=locked,
            actor=user,
            action=Action.MEMBER_ADDED,
            target=user.get_username(),
            changes={"role": Role.MEMBER, "via": "a retro's join link"},
        )
    return membership, created


@transaction.atomic
def team_join_by_sso(
    *, slug: str, user: User, role: str, group: str
) -> tuple[Membership, bool] | None:
    """Join the team as OIDC_TEAMS maps the person's group, at a single sign-on.

    Never changes an existing membership: the team's admins manage roles in Leakseal, and a
    sign-on must not undo a demotion. Returns the membership and whether it is new, or None
    when no team has that slug.
    """
    locked = Team.objects.select_for_update().filter(slug=slug).first()
    if locked is None:
        return None
    membership, created = Membership.objects.get_or_create(
        team=locked, user=user, defaults={"role": role}
    )
    if created:
        record(
            team=locked,
            actor=user,
            action=Action.MEMBER_ADDED,
            target=user.get_username(),
            changes={"role": role, "via": f"single sign-on, group {group}"},
        )
    return membership, created


@transaction.atomic
def team_sign_up_by_link(
    *, team: Team, username: str, name: str, email: str, password: str
) -> tuple[User, Membership]:
    """Create an account from a retro's join link and make it a member of the team."""
    if not Team.objects.filter(pk=team.pk, join_link_sign_up=True).exists():
        raise ValidationError("This team does not let people join from a retro's link.")
    user = account_create(username=username, name=name, email=email, password=password)
    membership, _ = team_join_by_link(team=team, user=user)
    return user, membership


def api_token_create(*, user: User, name: str) -> tuple[ApiToken, str]:
    """Create a token and return it with its raw value, which is never stored or shown again."""
    raw = "lks_" + secrets.token_urlsafe(32)
    token = ApiToken.objects.create(
        user=user, name=name, prefix=raw[:10], digest=ApiToken.digest_of(raw)
    )
    return token, raw


@transaction.atomic
def api_token_revoke(*, token: ApiToken, by: User | None = None) -> None:
    """Revoke the token; each team of its owner's gets an audit entry (it opened all of them)."""
    locked = ApiToken.objects.select_for_update().select_related("user").get(pk=token.pk)
    if locked.revoked_at is not None:
        token.revoked_at = locked.revoked_at
        return
    locked.revoked_at = token.revoked_at = timezone.now()
    locked.save(update_fields=["revoked_at"])
    owner = locked.user
    memberships = Membership.objects.filter(user=owner).select_related("team").order_by("team_id")
    for membership in memberships:
        record(
            team=membership.team,
            actor=by,
            actor_name=owner.get_username(),
            action=Action.TOKEN_REVOKED,
            target=f"API token “{locked.name}” of {owner.get_username()}",
            changes={"revoked_at": locked.revoked_at},
        )


# A token used many times a second must not write a row each time; a minute is precise
# enough for "last used" on the tokens page.
TOKEN_USE_RESOLUTION = timedelta(minutes=1)


def api_token_mark_used(*, token: ApiToken) -> None:
    now = timezone.now()
    if token.last_used_at is None or now - token.last_used_at >= TOKEN_USE_RESOLUTION:
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
        token.last_used_at = now


def team_lock(*, team_id: int) -> Team | None:
    """Take the team's row lock (None when the team is gone). Call inside transaction.atomic.

    Other apps serialise their per-team work on it: the rollup recomputes, a connection's
    settings.
    """
    return Team.objects.select_for_update().filter(pk=team_id).first()
