"""What retros' writes announce, for apps that build on retros (integrations/, insights/).

Sent inside the writing transaction: a receiver that writes (integrations' ticket outbox)
writes in that transaction; one that queues work does it on commit. retros/ never imports
its receivers.
"""

from dataclasses import dataclass

from django.dispatch import Signal

from escapes.models import Escape
from retros.models import Retrospective
from teams.models import Team

# The retro is closing: its phase is CLOSED and the retro row is locked. Receivers may write
# rows that must exist exactly when the close commits (the push outbox).
retro_closed = Signal()

# The preventative actions of `escape` were added, changed, done or deleted.
actions_changed = Signal()


def retro_closed_send(*, retro: Retrospective) -> None:
    retro_closed.send(sender=Retrospective, retro=retro)


def actions_changed_send(*, escape: Escape) -> None:
    actions_changed.send(sender=Retrospective, escape=escape)


@dataclass(frozen=True)
class TrackerTarget:
    """Where a team's preventative actions go as tickets when a retro closes."""

    connected: bool
    tracker: str = ""  # "Jira Cloud", "Azure DevOps"…
    where: str = ""  # "project PAY, the upcoming sprint of board 12"


NO_TRACKER = TrackerTarget(connected=False)

# A question rather than a notice: "where will this team's tickets go?" The app that keeps
# tracker connections (integrations/) answers with a TrackerTarget; nobody answering means
# no tracker is connected.
tracker_target_asked = Signal()


def tracker_target(team: Team) -> TrackerTarget:
    for _receiver, answer in tracker_target_asked.send(sender=Team, team=team):
        if isinstance(answer, TrackerTarget):
            return answer
    return NO_TRACKER


@dataclass(frozen=True)
class SummaryPublishing:
    """Where a closed retro's summary is published outside Leakseal, and how that went."""

    connected: bool  # a Confluence connection is on: an admin may publish again
    where: str = ""  # "space ENG, under “Retrospectives”"
    page_url: str = ""  # the page, once a publish succeeded
    version: int | None = None
    state: str = ""  # the latest publish: "", "waiting", "sending", "sent", "failed"...
    error: str = ""  # its last error, when it has one


NOT_PUBLISHED = SummaryPublishing(connected=False)

# Asked by the summary page: integrations/ (which keeps the Confluence connection and the
# summary pages) answers with a SummaryPublishing; nobody answering means nothing is published.
summary_publishing_asked = Signal()


def summary_publishing(retro: Retrospective) -> SummaryPublishing:
    for _receiver, answer in summary_publishing_asked.send(sender=Retrospective, retro=retro):
        if isinstance(answer, SummaryPublishing):
            return answer
    return NOT_PUBLISHED
