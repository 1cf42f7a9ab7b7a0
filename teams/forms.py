"""Forms of the teams pages: a new team, invitations, roles, sign-up."""

import zoneinfo
from typing import Any

from django import forms
from django.core.exceptions import ValidationError

from teams.models import Role, Team

DEFAULT_STAGES_TEXT = "Unit\nIntegration\nE2E"


def _zones() -> list[tuple[str, str]]:
    return [(z, z) for z in sorted(zoneinfo.available_timezones()) if "/" in z or z == "UTC"]


class TeamCreateForm(forms.Form):
    name = forms.CharField(max_length=100, help_text="As people will see it, e.g. Payments.")
    slug = forms.SlugField(
        max_length=50,
        help_text="Short, for the team's addresses: letters, digits and hyphens, e.g. payments.",
    )
    timezone = forms.ChoiceField(
        choices=_zones,
        initial="UTC",
        label="Time zone",
        help_text="Days and weeks on the dashboards are counted in it.",
    )
    stages = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 4}),
        initial=DEFAULT_STAGES_TEXT,
        label="Pipeline stages",
        help_text="One a line, in the order a change passes them. You can change them later.",
    )

    def clean_slug(self) -> str:
        slug: str = self.cleaned_data["slug"].lower()
        if Team.objects.filter(slug=slug).exists():
            raise forms.ValidationError(f"The address /t/{slug}/ is taken: choose another slug.")
        return slug

    def stage_names(self) -> list[str]:
        return [line for line in self.cleaned_data["stages"].splitlines() if line.strip()]


class InviteForm(forms.Form):
    email = forms.EmailField(label="Email address")
    role = forms.ChoiceField(choices=Role.choices, initial=Role.MEMBER)


class RoleForm(forms.Form):
    role = forms.ChoiceField(choices=Role.choices)


class JoinLinkForm(forms.Form):
    allowed = forms.BooleanField(
        required=False, label="People with a retro's join link may create an account"
    )


class SignUpForm(forms.Form):
    """A new account; the password is checked by AUTH_PASSWORD_VALIDATORS in the service."""

    username = forms.CharField(
        max_length=150,
        help_text="What you sign in with: letters, digits and @/./+/-/_ only.",
    )
    name = forms.CharField(max_length=150, label="Your name", help_text="As others see it.")
    password = forms.CharField(
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
        help_text="At least 8 characters, not only digits, not a common password.",
    )
    password_again = forms.CharField(
        strip=False,
        label="Password again",
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
    )

    field_order = ["username", "name", "email", "password", "password_again"]

    def __init__(self, *args: object, with_email: bool = False, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        if with_email:
            self.fields["email"] = forms.EmailField(
                label="Email address", help_text="For signing in and password resets."
            )
            self.order_fields(self.field_order)
        self.fields["username"].widget.attrs["autocomplete"] = "username"

    def account(self) -> dict[str, str]:
        """The new account's fields as the sign-up services take them (valid forms only)."""
        names = ("username", "name", "email", "password")
        return {name: self.cleaned_data[name] for name in names if name in self.fields}

    def clean(self) -> dict[str, object]:
        cleaned = super().clean() or {}
        if (
            cleaned.get("password")
            and cleaned.get("password_again")
            and cleaned["password"] != cleaned["password_again"]
        ):
            self.add_error("password_again", "The two passwords differ: type the same one twice.")
        return cleaned


def add_errors(form: Any, exc: ValidationError, *, aliases: dict[str, str] | None = None) -> None:
    """Put a service's ValidationError on the form, beside the field it names."""
    aliases = aliases or {}
    if not hasattr(exc, "error_dict"):
        form.add_error(None, exc.messages)
        return
    for field, errors in exc.message_dict.items():
        name = aliases.get(field, field)
        form.add_error(name if name in form.fields else None, errors)
