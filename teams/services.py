"""Writes to teams, memberships and API tokens."""

import secrets
from datetime import timedelta

from django.contrib.auth.models import User
from django.db import transaction
from django.utils import timezone

from audit.models import Action
from audit.services import record
from teams.models import ApiToken, Membership, Role, Team
from teams.signals import team_created


@transaction.atomic
def team_create(*, name: str, slug: str, timezone_name: str = "UTC") -> Team:
    team = Team(name=name, slug=slug, timezone=timezone_name)
    team.full_clean()
    team.save()
    # escapes gives the new team its default pipeline stages, in this transaction.
    team_created.send(sender=Team, team=team)
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
