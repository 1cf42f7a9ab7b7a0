"""What integrations does when retros announce a change (connected in IntegrationsConfig)."""

from typing import Any

from integrations.confluence_publish import publishing_of, summary_publish_queue
from integrations.models import TrackerConnection
from integrations.push import pushes_queue
from integrations.selectors import connection_for_team
from retros.models import Retrospective
from retros.signals import SummaryPublishing, TrackerTarget
from teams.models import Team


def on_retro_closed(*, retro: Retrospective, **_: Any) -> None:
    """The closing retro's actions get their outbox rows in the close's transaction, and its
    summary its Confluence notice when the team publishes there."""
    pushes_queue(retro=retro)
    summary_publish_queue(retro=retro)


def on_summary_publishing_asked(*, retro: Retrospective, **_: Any) -> SummaryPublishing:
    """Whether the retro's summary is published to Confluence, where, and how it went."""
    return publishing_of(retro)


def on_tracker_target_asked(*, team: Team, **_: Any) -> TrackerTarget | None:
    """Where the team's tickets will go: its connection's project and upcoming sprint."""
    connection = connection_for_team(team)
    return target_of(connection) if connection else None


def target_of(connection: TrackerConnection) -> TrackerTarget:
    if connection.is_jira:
        sprint = (
            f"the upcoming sprint of board {connection.board_id}"
            if connection.board_id
            else "the backlog (no board set for sprints)"
        )
        where = f"project {connection.project}, {sprint}"
    else:
        team = connection.ado_team or f"{connection.project}'s default team"
        where = f"project {connection.project}, the next iteration of {team}"
    return TrackerTarget(connected=True, tracker=connection.get_kind_display(), where=where)
