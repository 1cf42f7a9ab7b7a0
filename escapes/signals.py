"""What escapes' writes announce, for apps that build on escapes (insights/) to follow.

Sent by this app's services inside the writing transaction, so a receiver that writes does
so in that transaction, and one that queues work does it with `transaction.on_commit` and
queues nothing when the write rolls back. escapes/ never imports its receivers.
"""

from collections.abc import Iterable
from datetime import datetime

from django.dispatch import Signal

from teams.models import Team

# Escapes of `team` were created, changed or deleted; `detected` holds their detection
# times, the old and the new one of an escape that moved.
escapes_changed = Signal()

# A release of the team with `team_id` was created or moved, or the defects its stages caught
# changed. `release_ids`: the releases concerned (none: some of the team's, e.g. a stage was
# deleted); `boundaries`: the times at which a release now begins or no longer begins a
# window (a new release's time, a moved one's old and new time), so whoever counts per
# window between releases recounts the releases around them; `measured`: the change is a
# recount of measured catches (evidence.catches), which must not start another one.
releases_changed = Signal()


def escapes_changed_send(*, team: Team, detected: Iterable[datetime | None]) -> None:
    escapes_changed.send(sender=Team, team=team, detected=[d for d in detected if d is not None])


def releases_changed_send(
    *,
    team_id: int,
    release_ids: Iterable[int] = (),
    boundaries: Iterable[datetime] = (),
    measured: bool = False,
) -> None:
    releases_changed.send(
        sender=Team,
        team_id=team_id,
        release_ids=list(release_ids),
        boundaries=list(boundaries),
        measured=measured,
    )
