"""What escapes does when teams announce a change (connected in EscapesConfig)."""

from typing import Any

from escapes.stage_services import stages_create_default
from teams.models import Team


def on_team_created(*, team: Team, **_: Any) -> None:
    stages_create_default(team=team)
