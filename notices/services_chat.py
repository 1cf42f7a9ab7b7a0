"""Connecting, changing and disconnecting a team's chat channels (audited, secrets never)."""

from __future__ import annotations

import logging
from typing import Any

from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from audit.models import Action
from audit.services import record
from notices.models_chat import ChatConnection, ChatKind
from teams.models import Team

log = logging.getLogger(__name__)

AUDITED = ("kind", "name", "channel_id", "events")


def _target(connection: ChatConnection) -> str:
    return f"{ChatKind(connection.kind).label} {connection.name}"


def chat_connection_save(
    *,
    team: Team,
    stored: ChatConnection | None,
    values: dict[str, Any],
    by: User | None,
) -> ChatConnection:
    """Create (stored None) or change a channel. `values` holds the form's cleaned data; an
    empty secret keeps the stored one. Audited in the same transaction: the secret only as
    "set" or "changed"."""
    with transaction.atomic():
        connection = (
            ChatConnection.objects.select_for_update().get(pk=stored.pk, team=team)
            if stored is not None
            else ChatConnection(team=team)
        )
        before = {name: getattr(connection, name) for name in AUDITED} if stored else None
        for name in AUDITED:
            setattr(connection, name, values[name])
        secret_change = None
        if values.get("secret"):
            secret_change = "changed" if stored is not None else "set"
            connection.secret = values["secret"]
        try:
            with transaction.atomic():
                connection.save()
        except IntegrityError:
            raise ValidationError(
                {"name": "Another chat channel of this team has this name."}
            ) from None
        if before is None:
            record(
                team=team,
                actor=by,
                action=Action.CHAT_CONNECTED,
                target=_target(connection),
                changes={
                    **{
                        name: getattr(connection, name)
                        for name in AUDITED
                        if getattr(connection, name)
                    },
                    "secret": "set",
                },
            )
        else:
            changes: dict[str, Any] = {
                name: {"from": before[name], "to": getattr(connection, name)}
                for name in AUDITED
                if before[name] != getattr(connection, name)
            }
            if secret_change:
                changes["secret"] = secret_change
            if changes:
                record(
                    team=team,
                    actor=by,
                    action=Action.CHAT_CHANGED,
                    target=_target(connection),
                    changes=changes,
                )
    log.info("chat channel saved: team=%s id=%s kind=%s", team.slug, connection.pk, connection.kind)
    return connection


def chat_connection_delete(*, connection: ChatConnection, by: User | None) -> None:
    """Forget the channel and its secret. Its notices stay in the delivery log; those not yet
    sent fail with "disconnected" when their turn comes."""
    with transaction.atomic():
        record(
            team=connection.team,
            actor=by,
            action=Action.CHAT_DISCONNECTED,
            target=_target(connection),
            changes={"secret": "cleared"},
        )
        connection.delete()
    log.info("chat channel deleted: team=%s", connection.team.slug)
