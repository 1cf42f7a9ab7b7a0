"""Forms of the retro pages. They parse POSTs; the rules live in retros.services.

The board renders its own inputs from `Board` (one query for the stages and members of
the whole board); these forms only read what comes back.
"""

from typing import Any, cast

from django import forms
from django.contrib.auth.models import User

from escapes.models import Category, Escape, PipelineStage, Release
from escapes.release_selectors import releases_of_team
from escapes.selectors import escapes_of_team, stages_of_team
from retros.models import (
    FACT_TEXT_MAX,
    FACT_URL_MAX,
    WHY_TEXT_MAX,
    ActionKind,
    FactKind,
    Phase,
    RootCauseKind,
)
from retros.services import ACTION_DESCRIPTION_MAX, TITLE_MAX
from teams.models import Team


def _model_field(form: forms.Form, name: str) -> "forms.ModelChoiceField[Any]":
    return cast("forms.ModelChoiceField[Any]", form.fields[name])


class RetroCreateForm(forms.Form):
    title = forms.CharField(max_length=TITLE_MAX)
    release = forms.ModelChoiceField(
        queryset=Release.objects.none(),
        required=False,
        empty_label="— none: pick escapes below —",
        help_text="Takes every escape of that release.",
    )
    escapes = forms.ModelMultipleChoiceField(queryset=Escape.objects.none(), required=False)
    anonymous = forms.BooleanField(
        required=False, help_text="Nobody, not even the facilitator, sees who wrote a why."
    )

    def __init__(self, *args: Any, team: Team, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        _model_field(self, "release").queryset = releases_of_team(team.pk)
        _model_field(self, "escapes").queryset = escapes_of_team(team.pk)


class PhaseForm(forms.Form):
    # The phase the page showed: a click on a stale page must not move the retro twice.
    expected_phase = forms.ChoiceField(choices=Phase.choices)
    to_phase = forms.ChoiceField(choices=Phase.choices, required=False)


class EscapePickForm(forms.Form):
    escape = forms.IntegerField(min_value=1, error_messages={"required": "Choose an escape."})


class ClassifyForm(forms.Form):
    category = forms.ChoiceField(choices=Category.choices)
    stage = forms.ModelChoiceField(
        queryset=PipelineStage.objects.none(),
        label="Stage that should have caught it",
        error_messages={"invalid_choice": "Unknown stage for this team."},
    )

    def __init__(self, *args: Any, team: Team, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        _model_field(self, "stage").queryset = stages_of_team(team.pk)


class WhyAddForm(forms.Form):
    text = forms.CharField(label="Why?", max_length=WHY_TEXT_MAX)
    parent = forms.IntegerField(required=False, min_value=1)


class WhyEditForm(forms.Form):
    text = forms.CharField(label="Why?", max_length=WHY_TEXT_MAX)
    revision = forms.IntegerField(min_value=1)


class RootCauseForm(forms.Form):
    kind = forms.ChoiceField(
        choices=RootCauseKind.choices,
        error_messages={
            "invalid_choice": "Choose process failure or automation shortfall.",
            "required": "Choose process failure or automation shortfall.",
        },
    )


class ActionForm(forms.Form):
    kind = forms.ChoiceField(choices=ActionKind.choices)
    stage = forms.ModelChoiceField(
        queryset=PipelineStage.objects.none(),
        required=False,
        error_messages={"invalid_choice": "Unknown stage for this team."},
    )
    title = forms.CharField(max_length=TITLE_MAX)
    description = forms.CharField(
        required=False, max_length=ACTION_DESCRIPTION_MAX, widget=forms.Textarea
    )
    owner = forms.ModelChoiceField(
        queryset=User.objects.none(),
        error_messages={
            "invalid_choice": "The owner must be a member of this team.",
            "required": "Every preventative action needs an owner.",
        },
    )
    due_date = forms.DateField(required=False)

    def __init__(self, *args: Any, team: Team, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        _model_field(self, "stage").queryset = stages_of_team(team.pk)
        _model_field(self, "owner").queryset = User.objects.filter(memberships__team=team)

    def service_kwargs(self) -> dict[str, Any]:
        data = self.cleaned_data
        return {name: data[name] for name in self.fields}


class FactForm(forms.Form):
    # The web address is text here: retros.gather checks it (http or https only) with one
    # message for every way in, where a URLField would guess a scheme for "example.com".
    kind = forms.ChoiceField(
        choices=FactKind.choices,
        error_messages={"invalid_choice": "Choose what kind of fact this is."},
    )
    text = forms.CharField(
        label="What it shows",
        max_length=FACT_TEXT_MAX,
        error_messages={"required": "Say what the fact is or what the link shows."},
    )
    url = forms.CharField(label="Link", required=False, max_length=FACT_URL_MAX)


def form_messages(form: forms.Form) -> list[str]:
    """Each error of a bound form as one line naming its field."""
    lines: list[str] = []
    for name, errors in form.errors.items():
        field = form.fields.get(name)
        label = field.label if field and field.label else name.replace("_", " ").capitalize()
        prefix = "" if name == "__all__" else f"{label}: "
        lines.extend(prefix + str(error) for error in errors)
    return lines


# --- Facilitation (retros/views_facilitation.py). Bounds are checked by the services in
# retros/facilitation.py, so a refusal reads the same from every entry point.


class TimerForm(forms.Form):
    minutes = forms.IntegerField(
        error_messages={"required": "Choose how many minutes.", "invalid": "Enter whole minutes."},
    )


class FocusForm(forms.Form):
    # Empty clears the focus.
    escape = forms.IntegerField(required=False, min_value=1)


class VotingForm(forms.Form):
    votes_per_person = forms.IntegerField(
        label="Votes per person",
        error_messages={
            "required": "Choose how many votes each person has.",
            "invalid": "Enter a whole number of votes.",
        },
    )
