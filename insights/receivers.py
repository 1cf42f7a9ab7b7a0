"""Rollups follow the data: each receiver queues a recompute on commit (see InsightsConfig)."""

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from escapes.models import Escape
from insights.release_rollups import release_rollup_queue
from insights.rollups import rollups_queue
from teams.models import Team


def on_escapes_changed(*, team: Team, detected: Sequence[datetime], **_: Any) -> None:
    rollups_queue(team=team, detected=detected)


def on_releases_changed(*, team_id: int, **_: Any) -> None:
    release_rollup_queue(team_id=team_id)


def on_actions_changed(*, escape: Escape, **_: Any) -> None:
    """The follow-through is counted from the month of the escape the actions belong to."""
    rollups_queue(team=escape.team, detected=[escape.detected_at])
