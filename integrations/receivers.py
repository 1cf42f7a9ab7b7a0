"""What integrations does when retros announce a change (connected in IntegrationsConfig)."""

from typing import Any

from integrations.push import pushes_queue
from retros.models import Retrospective


def on_retro_closed(*, retro: Retrospective, **_: Any) -> None:
    """The closing retro's actions get their outbox rows in the close's transaction."""
    pushes_queue(retro=retro)
