"""Accounts that single sign-on creates, and the teams a group claim joins them to."""

from __future__ import annotations

import logging
from typing import Any

from django.conf import settings
from django.contrib.auth.models import User
from django.db import IntegrityError, transaction

from teams.services import team_join_by_sso

logger = logging.getLogger("leakseal.signin")


def _free_username(email: str) -> str:
    """The address itself, or with a number when someone already uses it as a username."""
    base = email[:140]
    name, n = base, 1
    while User.objects.filter(username__iexact=name).exists():
        n += 1
        name = f"{base}-{n}"
    return name


def sso_user_create(claims: dict[str, Any]) -> User:
    """The account of someone signing in with SSO for the first time: no usable password."""
    email = claims["email"]
    first = str(claims.get("given_name") or "")[:150]
    last = str(claims.get("family_name") or "")[:150]
    if not (first or last):
        first = str(claims.get("name") or "")[:150]
    for _ in range(3):  # two first sign-ins at once may pick the same free username
        try:
            with transaction.atomic():
                user = User(username=_free_username(email), email=email)
                user.first_name, user.last_name = first, last
                user.set_unusable_password()
                user.save()
                return user
        except IntegrityError:
            continue
    raise IntegrityError(f"no free username for {email}")


def sso_teams_join(user: User, groups: list[str]) -> None:
    """Add the memberships OIDC_TEAMS maps the person's groups to; change none."""
    for group in groups:
        for slug, role in settings.OIDC_TEAMS.get(group, []):
            if team_join_by_sso(slug=slug, user=user, role=role, group=group) is None:
                logger.warning("OIDC_TEAMS maps group %r to team %r: no such team", group, slug)
