"""Forms of the escape register. They parse and present; the rules live in escapes.services."""

from collections.abc import Sequence
from typing import Any, cast

from django import forms
from django.conf import settings
from django.core.exceptions import ValidationError
from django.template.defaultfilters import filesizeformat

from escapes.models import (
    TEXT_MAX,
    Category,
    Escape,
    EscapeStatus,
    PipelineStage,
    Release,
    Severity,
)
from escapes.selectors import NONE, EscapeFilters, team_components, team_releases, team_stages
from escapes.services import ESCAPE_FIELDS
from escapes.timespans import DATA_PROBLEM_LABELS
from teams.models import Team

UNKNOWN_STAGE = "Unknown stage for this team."
UNKNOWN_RELEASE = "Unknown release for this team."


# Choices and querysets depend on the team, so they are set per form instance.
MAX_IDS = 200


def _choice(form: forms.Form, name: str) -> forms.ChoiceField:
    return cast(forms.ChoiceField, form.fields[name])


def _model_choice(form: forms.Form, name: str) -> "forms.ModelChoiceField[Any]":
    return cast("forms.ModelChoiceField[Any]", form.fields[name])


class EscapeFilterForm(forms.Form):
    """The register's GET filters. An invalid value is reported and that filter is dropped."""

    q = forms.CharField(label="Search", required=False, max_length=200)
    category = forms.ChoiceField(required=False)
    stage = forms.ModelChoiceField(
        queryset=PipelineStage.objects.none(), required=False, empty_label="Any stage"
    )
    release = forms.ModelChoiceField(
        queryset=Release.objects.none(), required=False, empty_label="Any release"
    )
    severity = forms.ChoiceField(required=False)
    component = forms.ChoiceField(required=False)
    status = forms.ChoiceField(required=False)
    # Set by the dashboard's links (hidden from the register's own form).
    detected_from = forms.DateField(
        label="Detected from", required=False, widget=forms.DateInput(attrs={"type": "date"})
    )
    detected_to = forms.DateField(
        label="Detected until", required=False, widget=forms.DateInput(attrs={"type": "date"})
    )
    problem = forms.ChoiceField(label="Data problem", required=False)
    ids = forms.CharField(
        label="Escapes", required=False, max_length=2000, widget=forms.HiddenInput
    )

    def __init__(self, *args: Any, team: Team | None, **kwargs: Any) -> None:
        data = args[0] if args else kwargs.get("data")
        self.stage_none = False
        if data is not None and data.get("stage") == NONE:
            # "Escapes no stage was named for": not a stage, so not the model field's value.
            self.stage_none = True
            data = data.copy()
            data.pop("stage")
            args = (data, *args[1:]) if args else args
            kwargs = {**kwargs, "data": data} if "data" in kwargs else kwargs
        super().__init__(*args, **kwargs)
        self.fields["q"].widget = forms.TextInput(attrs={"type": "search", "placeholder": "Search"})
        _choice(self, "category").choices = [
            ("", "Any category"),
            *Category.choices,
            (NONE, "No category"),
        ]
        _choice(self, "severity").choices = [("", "Any severity"), *Severity.choices]
        self._team_choices(team)
        _choice(self, "problem").choices = [("", "Any"), *DATA_PROBLEM_LABELS.items()]
        _choice(self, "status").choices = [("", "Any status"), *EscapeStatus.choices]

    def filters(self) -> tuple[EscapeFilters, list[str]]:
        """The valid filters, and one message per ignored invalid one."""
        self.is_valid()
        warnings = [
            f"Ignored the {self.fields[name].label or name} filter: {' '.join(map(str, errors))}"
            for name, errors in self.errors.items()
        ]
        data = {k: v for k, v in self.cleaned_data.items() if v not in (None, "", ())}
        return EscapeFilters(**self._filter_values(data), stage_none=self.stage_none), warnings

    def _team_choices(self, team: Team | None) -> None:
        assert team is not None
        _model_choice(self, "stage").queryset = team_stages(team)
        _model_choice(self, "release").queryset = team_releases(team)
        components = [(c, c) for c in team_components(team)]
        _choice(self, "component").choices = [
            ("", "Any component"),
            *components,
            (NONE, "No component"),
        ]

    def _filter_values(self, data: dict[str, Any]) -> dict[str, Any]:
        return data

    def clean_ids(self) -> tuple[int, ...]:
        raw = self.cleaned_data.get("ids") or ""
        parts = [part.strip() for part in raw.split(",") if part.strip()]
        if not all(part.isdigit() for part in parts):
            raise ValidationError("Give escape ids as numbers separated by commas.")
        if len(parts) > MAX_IDS:
            raise ValidationError(f"At most {MAX_IDS} escape ids.")
        return tuple(int(part) for part in parts)

    @property
    def is_filtered(self) -> bool:
        return self.stage_none or any(self.data.get(name) for name in self.fields)


MAX_RELEASE_CHOICES = 200  # fifty teams have thousands of releases: the newest ones


class _TeamStageChoice(forms.ModelChoiceField):
    def label_from_instance(self, obj: Any) -> str:
        return f"{obj.team.name} · {obj.name}"


class AllEscapeFilterForm(EscapeFilterForm):
    """The filters of the register of every team of the user (the dashboard's links land here).

    Those of a team's register plus the team; stages are named with their team, the release
    list holds the newest MAX_RELEASE_CHOICES releases (and the one asked for), and the
    component is any name (the distinct components of a million escapes cost more than the
    page), "none" for escapes without one.
    """

    team = forms.ChoiceField(label="Team", required=False)
    release = forms.TypedChoiceField(  # type: ignore[assignment]
        label="Release", required=False, coerce=int, empty_value=None
    )
    component = forms.CharField(label="Component", required=False, max_length=100)  # type: ignore[assignment]

    field_order = ["q", "team"]

    def __init__(self, data: Any, *, teams: Sequence[Team]) -> None:
        self.teams = list(teams)
        self.by_slug = {t.slug: t for t in self.teams}
        super().__init__(data, team=None)

    def _team_choices(self, team: Team | None) -> None:
        _choice(self, "team").choices = [("", "Any team"), *((t.slug, t.name) for t in self.teams)]
        stages = PipelineStage.objects.filter(team__in=self.teams).select_related("team")
        self.fields["stage"] = _TeamStageChoice(
            queryset=stages.order_by("team__name", "position", "id"),
            required=False,
            empty_label="Any stage",
        )
        releases = Release.objects.filter(team__in=self.teams).select_related("team")
        newest = list(releases.order_by("-released_at", "-id")[:MAX_RELEASE_CHOICES])
        asked = str(self.data.get("release") or "")
        if asked.isdigit() and all(r.pk != int(asked) for r in newest):
            newest.extend(releases.filter(pk=int(asked)))
        self.releases = {r.pk: r for r in newest}
        _choice(self, "release").choices = [
            ("", "Any release"),
            *((r.pk, f"{r.team.name} · {r.version}") for r in newest),
        ]

    def _filter_values(self, data: dict[str, Any]) -> dict[str, Any]:
        if "team" in data:
            data["team"] = self.by_slug[data["team"]]
        if "release" in data:
            data["release"] = self.releases[data["release"]]
        return data


def _datetime_field(label: str, *, required: bool = False) -> forms.DateTimeField:
    # The browser sends the wall-clock time the user typed; `team_view` has activated the
    # team's time zone, so Django reads it as team-local time.
    return forms.DateTimeField(
        label=label,
        required=required,
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
    )


class EscapeForm(forms.Form):
    title = forms.CharField(max_length=200)
    description = forms.CharField(
        required=False, max_length=TEXT_MAX, widget=forms.Textarea(attrs={"rows": 6})
    )
    detected_at = _datetime_field("Detected at", required=True)
    merged_at = _datetime_field("Merged at (the change that introduced it)")
    released_at = _datetime_field("Released at (reached production)")
    resolved_at = _datetime_field("Resolved at")
    category = forms.ChoiceField(required=False)
    stage = forms.ModelChoiceField(
        queryset=PipelineStage.objects.none(),
        required=False,
        label="Stage that should have caught it",
        empty_label="— not yet attributed —",
        error_messages={"invalid_choice": UNKNOWN_STAGE},
    )
    severity = forms.ChoiceField(choices=Severity.choices, initial=Severity.MEDIUM)
    component = forms.CharField(required=False, max_length=100)
    release = forms.ModelChoiceField(
        queryset=Release.objects.none(),
        required=False,
        empty_label="— none —",
        error_messages={"invalid_choice": UNKNOWN_RELEASE},
    )
    tracker_key = forms.CharField(required=False, max_length=64, label="Tracker key")
    tracker_url = forms.URLField(required=False, max_length=500, label="Tracker URL")

    def __init__(self, *args: Any, team: Team, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        _choice(self, "category").choices = [("", "— not yet classified —"), *Category.choices]
        _model_choice(self, "stage").queryset = team_stages(team)
        _model_choice(self, "release").queryset = team_releases(team)

    @classmethod
    def initial_for(cls, escape: Escape) -> dict[str, Any]:
        return {field: getattr(escape, field) for field in ESCAPE_FIELDS}

    def service_data(self) -> dict[str, Any]:
        return {field: self.cleaned_data.get(field) for field in ESCAPE_FIELDS}

    def add_service_errors(self, exc: ValidationError) -> None:
        """Put a service's ValidationError on the fields it names (the rest on the form)."""
        if not hasattr(exc, "error_dict"):
            self.add_error(None, exc)
            return
        for field, errors in exc.error_dict.items():
            self.add_error(field if field in self.fields else None, errors)


class EscapeQuickForm(EscapeForm):
    """The register's form cut down to what a retro board asks for a new escape: its title,
    when it was detected, how severe it is and its release. The same fields, labels and
    checks as EscapeForm (and the same escape_create rules behind it); the rest is filled in
    later on the escape's page."""

    QUICK_FIELDS = ("title", "detected_at", "severity", "release")

    def __init__(self, *args: Any, team: Team, **kwargs: Any) -> None:
        super().__init__(*args, team=team, **kwargs)
        for name in list(self.fields):
            if name not in self.QUICK_FIELDS:
                del self.fields[name]

    def service_data(self) -> dict[str, Any]:
        return {field: self.cleaned_data.get(field) for field in self.QUICK_FIELDS}


class CsvUploadForm(forms.Form):
    file = forms.FileField(label="CSV file")

    def clean_file(self) -> bytes:
        upload = self.cleaned_data["file"]
        # DATA_UPLOAD_MAX_MEMORY_SIZE does not cover file parts; the import reads the whole
        # file into memory (and the session), so the same bound is applied here.
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        if limit is not None and upload.size > limit:
            raise ValidationError(f"The file is larger than {filesizeformat(limit)}.")
        content: bytes = upload.read()
        return content


class CsvConfirmForm(forms.Form):
    digest = forms.RegexField(regex=r"^[0-9a-f]{64}$", widget=forms.HiddenInput)
