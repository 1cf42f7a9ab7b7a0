"""What escapes does when teams announce a change (connected in EscapesConfig)."""

from typing import Any

from escapes.stage_services import stages_create, stages_create_default
from teams.models import Team


def on_team_created(*, team: Team, stages: list[str] | None = None, **_: Any) -> None:
    """The stages its creator listed (web form), else Unit, Integration, E2E."""
    if stages is None:
        stages_create_default(team=team)
    else:
        stages_create(team=team, names=stages)
