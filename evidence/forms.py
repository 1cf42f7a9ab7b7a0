"""Forms of the team's test evidence pages."""

from __future__ import annotations

from django import forms

from escapes.models import PipelineStage
from escapes.selectors import team_stages
from evidence.quarantine import REASON_MAX
from evidence.selectors import DEFAULT_WINDOW, WINDOWS
from teams.models import Team


class FlakinessFilterForm(forms.Form):
    """The flakiness page's stage and window (UTC days ending today)."""

    stage = forms.ModelChoiceField(
        queryset=PipelineStage.objects.none(), required=False, empty_label="All stages"
    )
    window = forms.TypedChoiceField(
        label="Window",
        choices=[(days, f"Last {days} days") for days in WINDOWS],
        coerce=int,
        required=False,
        empty_value=DEFAULT_WINDOW,  # type: ignore[arg-type]
    )

    def __init__(self, *args: object, team: Team, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.fields["window"].initial = DEFAULT_WINDOW
        stage_field = self.fields["stage"]
        assert isinstance(stage_field, forms.ModelChoiceField)
        stage_field.queryset = team_stages(team)


class QuarantineForm(forms.Form):
    reason = forms.CharField(
        label="Reason",
        max_length=REASON_MAX,
        help_text="Why its failures are known and not blocking, e.g. a ticket.",
        error_messages={"required": "Say why the test is quarantined: the reason is required."},
    )
