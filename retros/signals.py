"""What retros' writes announce, for apps that build on retros (integrations/, insights/).

Sent inside the writing transaction: a receiver that writes (integrations' ticket outbox)
writes in that transaction; one that queues work does it on commit. retros/ never imports
its receivers.
"""

from django.dispatch import Signal

from escapes.models import Escape
from retros.models import Retrospective

# The retro is closing: its phase is CLOSED and the retro row is locked. Receivers may write
# rows that must exist exactly when the close commits (the push outbox).
retro_closed = Signal()

# The preventative actions of `escape` were added, changed, done or deleted.
actions_changed = Signal()


def retro_closed_send(*, retro: Retrospective) -> None:
    retro_closed.send(sender=Retrospective, retro=retro)


def actions_changed_send(*, escape: Escape) -> None:
    actions_changed.send(sender=Retrospective, escape=escape)
