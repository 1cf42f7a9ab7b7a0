"""The Confluence connection form: the deployment, its URL and credentials, the space and the
parent page. The token is write-only: never rendered back; left empty it keeps the stored one,
but only while the deployment and the site (scheme, host, port) stay the same, so nobody can
point a saved connection at another host and have the stored token sent there.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

from django import forms
from django.conf import settings

from integrations.models import ConfluenceConnection, ConfluenceDeployment

SPACE_KEY = re.compile(r"^~?[A-Za-z0-9_-]{1,255}$")


def _origin(url: str) -> tuple[str, str]:
    parts = urlsplit(url)
    return parts.scheme.lower(), parts.netloc.lower()


class ConfluenceForm(forms.Form):
    deployment = forms.ChoiceField(label="Deployment", choices=ConfluenceDeployment.choices)
    base_url = forms.URLField(
        label="Site URL",
        max_length=300,
        assume_scheme="https",
        help_text="Cloud: https://your-site.atlassian.net. Data Center: the address people open "
        "Confluence at, with its path if it has one (https://wiki.example.com/confluence).",
    )
    account_email = forms.EmailField(
        label="Account email (Cloud only)",
        required=False,
        help_text="The Atlassian account the API token belongs to.",
    )
    token = forms.CharField(
        label="API token (Cloud) or personal access token (Data Center)",
        required=False,
        strip=True,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
        help_text="Stored encrypted and never shown again.",
    )
    space_key = forms.CharField(
        label="Space key",
        max_length=255,
        help_text="The short key of the space, e.g. ENG (in the space's URL: /spaces/ENG/).",
    )
    parent = forms.CharField(
        label="Parent page",
        max_length=255,
        help_text="Its exact title in that space, or its id (the number in the page's URL). "
        "Each retro's summary becomes a child page of it.",
    )
    enabled = forms.BooleanField(
        label="Publish each retro's summary when it closes",
        required=False,
        initial=True,
    )

    def __init__(
        self, *args: Any, stored: ConfluenceConnection | None = None, **kwargs: Any
    ) -> None:
        self.stored = stored
        if stored is not None and "initial" not in kwargs:
            kwargs["initial"] = {
                "deployment": stored.deployment,
                "base_url": stored.base_url,
                "account_email": stored.account_email,
                "space_key": stored.space_key,
                "parent": stored.parent_title or stored.parent_id,
                "enabled": stored.enabled,
            }
        super().__init__(*args, **kwargs)
        if stored is not None and stored.token_encrypted:
            self.fields["token"].help_text = (
                "A token is stored (encrypted). Leave empty to keep it, as long as the "
                "deployment and the site stay the same."
            )

    def clean_base_url(self) -> str:
        url: str = self.cleaned_data["base_url"]
        parts = urlsplit(url)
        if parts.username or parts.password:
            raise forms.ValidationError("Leave credentials out of the URL; the token goes below.")
        if parts.query or parts.fragment:
            raise forms.ValidationError("Enter the site URL without ?… or #….")
        # The token travels in every request's headers: only DEBUG (development, the fakes of
        # the test suite) may talk plain http.
        if parts.scheme != "https" and not settings.DEBUG:
            raise forms.ValidationError(
                "Use an https:// URL: the token would otherwise cross the network unencrypted."
            )
        return url.rstrip("/")

    def clean_space_key(self) -> str:
        key = self.cleaned_data["space_key"].strip()
        if not SPACE_KEY.match(key):
            raise forms.ValidationError(
                "A space key is letters and digits (personal spaces start with ~), "
                "e.g. ENG — not the space's name."
            )
        return key

    def clean_parent(self) -> str:
        return " ".join(self.cleaned_data["parent"].split())

    def keeps_stored_token(self, deployment: str, base_url: str) -> bool:
        stored = self.stored
        return bool(
            stored is not None
            and stored.token_encrypted
            and stored.deployment == deployment
            and _origin(stored.base_url) == _origin(base_url)
        )

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        deployment = data.get("deployment")
        base_url = data.get("base_url") or ""
        if deployment == ConfluenceDeployment.CLOUD:
            if not data.get("account_email"):
                self.add_error(
                    "account_email", "Confluence Cloud signs in with the account's email: enter it."
                )
        else:
            data["account_email"] = ""
        keeps = self.keeps_stored_token(str(deployment or ""), base_url)
        if not data.get("token") and deployment and base_url and not keeps:
            self.add_error(
                "token",
                "Enter the API token."
                if deployment == ConfluenceDeployment.CLOUD
                else "Enter the personal access token.",
            )
        return data

    def candidate(self, team: Any) -> ConfluenceConnection:
        """An unsaved connection with these values (the stored token where it is kept)."""
        data = self.cleaned_data
        connection = ConfluenceConnection(
            team=team,
            deployment=data["deployment"],
            base_url=data["base_url"],
            account_email=data["account_email"],
            space_key=data["space_key"],
            enabled=data["enabled"],
        )
        if data.get("token"):
            connection.token = data["token"]
        elif self.stored is not None:
            connection.token_encrypted = self.stored.token_encrypted
        return connection
