"""Writing the audit trail: `record`, called by the service that makes the change, inside its
transaction, so an entry exists exactly when the change committed; and `entries_prune`."""

from datetime import timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth.models import User
from django.db import models, transaction
from django.utils import timezone

from audit.models import Action, AuditEntry

# A change's key naming one of these is a secret: its value may only say that it changed.
SECRET_WORDS = ("token", "secret", "password", "credential", "pat")
SECRET_VALUES = frozenset({"set", "changed", "cleared"})


class NotInTransaction(RuntimeError):
    pass


def _is_secret(key: str) -> bool:
    words = key.lower().replace("-", "_").split("_")
    return any(word in SECRET_WORDS for word in words)


def _check_no_secret(changes: dict[str, Any]) -> None:
    for key, value in changes.items():
        if _is_secret(key) and value not in SECRET_VALUES:
            raise ValueError(
                f"audit: {key!r} is a secret; record only that it was set, changed or cleared"
            )


def actor_name_of(actor: User | None, fallback: str) -> str:
    if actor is None:
        return fallback
    full = getattr(actor, "get_full_name", lambda: "")()
    username = actor.get_username()
    return f"{full} ({username})" if full and full != username else username


def record(
    *,
    team: models.Model,
    actor: User | None,
    action: Action | str,
    target: str,
    changes: dict[str, Any] | None = None,
    actor_name: str = "Leakseal",
) -> AuditEntry:
    """Write one entry. Call it inside the transaction of the change it records.

    `actor` None: the change was made by Leakseal itself; `actor_name` says how (e.g. "Jira
    intake"). `changes` must hold no secret: a key naming a token, secret, password or
    credential may only have the value "set", "changed" or "cleared".
    """
    if not transaction.get_connection().in_atomic_block:
        raise NotInTransaction(
            "audit.record must run inside the transaction of the change it records"
        )
    if action not in Action.values:
        raise ValueError(f"audit: unknown action {action!r}")
    changes = dict(changes or {})
    _check_no_secret(changes)
    return AuditEntry.objects.create(
        team_id=team.pk,
        actor=actor,
        actor_name=actor_name_of(actor, actor_name)[:150],
        action=action,
        target=target[:300],
        changes=changes,
    )


def retention() -> timedelta:
    return timedelta(days=settings.AUDIT_RETENTION_DAYS)


def entries_prune(*, now: Any = None) -> int:
    """Delete the entries older than AUDIT_RETENTION_DAYS; how many went."""
    cutoff = (now or timezone.now()) - retention()
    deleted, _ = AuditEntry.objects.filter(created_at__lt=cutoff).delete()
    return deleted
