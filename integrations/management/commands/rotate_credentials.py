"""`manage.py rotate_credentials`: re-encrypt every stored tracker, Confluence and chat secret
with the newest key.

Put the new key first in LEAKSEAL_CREDENTIAL_KEYS (keeping the old ones after it), run this,
then drop the old keys. It is all or nothing: when one secret cannot be decrypted with any of
the keys, it names the team and changes no row, so no secret is left under a key about to go.
It prints counts, never a secret.
"""

from dataclasses import dataclass
from typing import Any

from cryptography.fernet import InvalidToken
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.db.models import Model

from config import crypto
from integrations.models import ConfluenceConnection, TrackerConnection
from notices.models_chat import ChatConnection

# Each model holding secrets, with its secret columns and how a message names each.
SECRETS: list[tuple[type[Model], dict[str, str]]] = [
    (TrackerConnection, {"token_encrypted": "token", "webhook_secret_encrypted": "webhook secret"}),
    (ConfluenceConnection, {"token_encrypted": "Confluence token"}),
    (ChatConnection, {"secret_encrypted": "chat webhook URL or bot token"}),
]


@dataclass(frozen=True)
class Rotation:
    connections: int
    secrets: int


class UndecryptableSecrets(Exception):
    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


def credentials_rotate() -> Rotation:
    """Re-encrypt every connection's secrets with the newest key, in one transaction."""
    with transaction.atomic():
        rotated: list[tuple[type[Model], Any, dict[str, str]]] = []
        problems: list[str] = []
        for model, fields in SECRETS:
            connections: Any = (
                model._default_manager.select_for_update(of=("self",))
                .select_related("team")
                .order_by("pk")
            )
            for connection in connections:
                values: dict[str, str] = {}
                for column, what in fields.items():
                    stored = getattr(connection, column)
                    if not stored:
                        continue
                    try:
                        values[column] = crypto.rotate(stored)
                    except InvalidToken:
                        problems.append(f"the {what} of team {connection.team.slug!r}")
                rotated.append((model, connection, values))
        if problems:
            raise UndecryptableSecrets(problems)
        for model, connection, values in rotated:
            if values:
                # update(), not save(): a new ciphertext is not a change of the settings, so
                # updated_at stays.
                model._default_manager.filter(pk=connection.pk).update(**values)
    return Rotation(
        connections=sum(1 for _, _, values in rotated if values),
        secrets=sum(len(values) for _, _, values in rotated),
    )


class Command(BaseCommand):
    help = (
        "Re-encrypt every stored tracker, Confluence and chat credential with the newest "
        "LEAKSEAL_CREDENTIAL_KEYS key."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            rotation = credentials_rotate()
        except UndecryptableSecrets as exc:
            raise CommandError(
                "Nothing was changed: no key in LEAKSEAL_CREDENTIAL_KEYS decrypts "
                f"{', '.join(exc.problems)}. Put the key it was encrypted with back into the "
                "list, or have a team admin enter that credential again."
            ) from None
        self.stdout.write(
            self.style.SUCCESS(
                f"Re-encrypted {rotation.secrets} secret(s) of {rotation.connections} "
                "connection(s) with the newest key."
            )
        )
