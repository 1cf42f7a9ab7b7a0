"""The tracker connection form: it parses and checks what an admin typed, per tracker kind.

Secrets are write-only here. The token and webhook-secret inputs are never pre-filled (a
browser would otherwise hold them in the page); left empty they mean "keep the stored one".
A stored token is only kept while the kind and the site (scheme, host, port) stay the same,
so nobody can point a saved connection, or a "Test connection", at another host and have
the stored token sent there.
"""

from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from django import forms
from django.conf import settings

from integrations.models import TrackerConnection, TrackerKind

MAPPED_FIELDS = ("merged_at", "component", "severity", "release")
MAX_QUERY = 2000


def _origin(url: str) -> tuple[str, str]:
    parts = urlsplit(url)
    return parts.scheme.lower(), parts.netloc.lower()


def _secret_input() -> forms.PasswordInput:
    # "new-password" keeps browsers from filling in the admin's own Leakseal password.
    return forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"})


# The connection's fields that are not secrets: the form shows them back and saves them as given.
PLAIN_FIELDS = (
    "kind",
    "base_url",
    "project",
    "board_id",
    "ado_team",
    "issue_type",
    "priority",
    "account_email",
    "webhook_username",
    "webhook_header",
    "intake_enabled",
    "intake_query",
    "intake_label",
)


@dataclass(frozen=True)
class ConnectionValues:
    """A valid form's values. `token`/`webhook_secret` None means: keep the stored one."""

    kind: str
    base_url: str
    project: str
    board_id: int | None
    ado_team: str
    issue_type: str
    priority: str
    account_email: str
    token: str | None
    webhook_secret: str | None
    webhook_username: str
    webhook_header: str
    intake_enabled: bool
    intake_query: str
    intake_label: str
    field_mapping: dict[str, str] = field(default_factory=dict)

    def apply_to(self, connection: TrackerConnection) -> None:
        """Set these values on `connection` (saved or not); the caller saves."""
        for name in PLAIN_FIELDS:
            setattr(connection, name, getattr(self, name))
        connection.field_mapping = dict(self.field_mapping)
        if self.token is not None:
            connection.token = self.token
        if self.webhook_secret is not None:
            connection.webhook_secret = self.webhook_secret


class ConnectionForm(forms.Form):
    kind = forms.ChoiceField(label="Tracker", choices=TrackerKind.choices)
    base_url = forms.URLField(
        label="Site or organization URL",
        max_length=300,
        assume_scheme="https",
        help_text="Jira: https://acme.atlassian.net or your Data Center URL. "
        "Azure DevOps: https://dev.azure.com/your-organization.",
    )
    project = forms.CharField(
        max_length=200, help_text="Jira project key (e.g. SHOP) or Azure DevOps project name."
    )
    board_id = forms.IntegerField(
        label="Jira board id",
        required=False,
        min_value=1,
        help_text="The number in the board's URL (rapidView=…). Without a board, new tickets "
        "go to the backlog.",
    )
    ado_team = forms.CharField(label="Azure DevOps team", max_length=200, required=False)
    issue_type = forms.CharField(
        label="Issue or work-item type", max_length=100, initial="Task", help_text="e.g. Task"
    )
    priority = forms.CharField(
        max_length=100,
        required=False,
        help_text="Jira: a priority name (e.g. High). Azure DevOps: 1 to 4. Empty: the default.",
    )
    account_email = forms.EmailField(
        label="Account email (Jira Cloud)", required=False, max_length=254
    )
    token = forms.CharField(
        label="API token / personal access token",
        required=False,
        strip=True,
        max_length=1000,
        widget=_secret_input(),
    )
    webhook_secret = forms.CharField(
        label="Webhook secret",
        required=False,
        strip=True,
        max_length=500,
        widget=_secret_input(),
        help_text="Jira: the secret you gave the webhook (it signs deliveries). Azure DevOps: "
        "the password of the service hook's basic authentication, or the header's value.",
    )
    webhook_username = forms.CharField(
        label="Service hook user name (Azure DevOps)", max_length=100, required=False
    )
    webhook_header = forms.CharField(
        label="Service hook header name (Azure DevOps, instead of a user name)",
        max_length=100,
        required=False,
    )
    intake_enabled = forms.BooleanField(label="Take escapes in from the tracker", required=False)
    intake_query = forms.CharField(
        label="Escape query (JQL or WIQL)",
        required=False,
        max_length=MAX_QUERY,
        widget=forms.Textarea(attrs={"rows": 3}),
    )
    intake_label = forms.CharField(
        label="Escape label (Jira) or tag (Azure DevOps)", max_length=100, required=False
    )
    map_merged_at = forms.CharField(label="Merged-at field", max_length=100, required=False)
    map_component = forms.CharField(label="Component field", max_length=100, required=False)
    map_severity = forms.CharField(label="Severity field", max_length=100, required=False)
    map_release = forms.CharField(label="Release field", max_length=100, required=False)

    # The page's sections, in order: (legend, field names).
    FIELDSETS = (
        (
            "Tracker",
            ("kind", "base_url", "project", "board_id", "ado_team", "issue_type", "priority"),
        ),
        ("Sign-in", ("account_email", "token")),
        ("Webhooks", ("webhook_secret", "webhook_username", "webhook_header")),
        ("Escape intake", ("intake_enabled", "intake_query", "intake_label")),
        ("Field mapping", tuple(f"map_{name}" for name in MAPPED_FIELDS)),
    )

    def __init__(self, *args: Any, stored: TrackerConnection | None = None, **kwargs: Any) -> None:
        if stored is not None and "data" not in kwargs and not args:
            kwargs.setdefault("initial", initial_from(stored))
        super().__init__(*args, **kwargs)
        self.stored = stored

    def fieldsets(self) -> list[tuple[str, list[forms.BoundField]]]:
        return [(legend, [self[name] for name in names]) for legend, names in self.FIELDSETS]

    def clean_base_url(self) -> str:
        url: str = self.cleaned_data["base_url"]
        parts = urlsplit(url)
        if parts.username or parts.password:
            raise forms.ValidationError(
                "Leave credentials out of the URL; they go into the token fields."
            )
        if parts.query or parts.fragment:
            raise forms.ValidationError("Enter the site or organization URL without ?… or #….")
        # Tokens travel in every request's headers: only DEBUG (development, the fakes of the
        # test suite) may talk plain http.
        if parts.scheme != "https" and not settings.DEBUG:
            raise forms.ValidationError(
                "Use an https:// URL: the token would otherwise cross the network unencrypted."
            )
        return url.rstrip("/")

    def _can_keep_stored_token(self, kind: str, base_url: str) -> bool:
        stored = self.stored
        return bool(
            stored is not None
            and stored.token_encrypted
            and stored.kind == kind
            and _origin(stored.base_url) == _origin(base_url)
        )

    def _can_keep_webhook_secret(self, kind: str) -> bool:
        # A Jira HMAC secret is no Azure DevOps password: a new kind starts without one.
        stored = self.stored
        return bool(stored is not None and stored.webhook_secret_encrypted and stored.kind == kind)

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        kind = data.get("kind")
        base_url = data.get("base_url")
        if not kind or not base_url:
            return data
        if not data.get("token") and not self._can_keep_stored_token(kind, base_url):
            self.add_error("token", self._token_missing(kind))
        if kind == TrackerKind.JIRA_CLOUD and not data.get("account_email"):
            self.add_error(
                "account_email", "Jira Cloud signs in with an account email and an API token."
            )
        if kind == TrackerKind.AZURE_DEVOPS:
            if not data.get("ado_team"):
                self.add_error(
                    "ado_team", "Name the Azure DevOps team whose iterations tickets go into."
                )
            self._clean_service_hook(data)
        if data.get("intake_enabled") and not (
            data.get("intake_query") or data.get("intake_label")
        ):
            self.add_error(
                "intake_query", "Escape intake needs a query, or a label or tag, to find escapes."
            )
        return data

    def _token_missing(self, kind: str) -> str:
        what = {
            TrackerKind.JIRA_CLOUD: "Jira Cloud needs an API token",
            TrackerKind.JIRA_DC: "Jira Data Center needs a personal access token",
            TrackerKind.AZURE_DEVOPS: "Azure DevOps needs a personal access token (PAT)",
        }[TrackerKind(kind)]
        if self.stored is not None and self.stored.token_encrypted:
            return (
                f"{what}: enter it again, because the tracker or its site changed and the "
                "stored token is only ever sent to the site it was entered for."
            )
        return f"{what}."

    def _clean_service_hook(self, data: dict[str, Any]) -> None:
        user, header = data.get("webhook_username"), data.get("webhook_header")
        if user and header:
            self.add_error(
                "webhook_header", "Use either basic authentication (a user name) or a header."
            )
            return
        has_secret = bool(data.get("webhook_secret")) or self._can_keep_webhook_secret(data["kind"])
        if (user or header) and not has_secret:
            self.add_error(
                "webhook_secret",
                "Enter the service hook's password or header value that goes with "
                + ("the user name." if user else "the header."),
            )
        elif data.get("webhook_secret") and not (user or header):
            self.add_error(
                "webhook_username",
                "Name the user (basic authentication) or the header the service hook sends "
                "with this secret.",
            )

    def values(self) -> ConnectionValues:
        """The cleaned values, with what does not belong to the chosen kind left out."""
        data = self.cleaned_data
        kind = data["kind"]
        is_jira = kind != TrackerKind.AZURE_DEVOPS
        return ConnectionValues(
            kind=kind,
            base_url=data["base_url"],
            project=data["project"],
            board_id=data["board_id"] if is_jira else None,
            ado_team="" if is_jira else data["ado_team"],
            issue_type=data["issue_type"],
            priority=data["priority"],
            account_email=data["account_email"] if kind == TrackerKind.JIRA_CLOUD else "",
            token=data["token"] or None,
            webhook_secret=data["webhook_secret"]
            or (None if self._can_keep_webhook_secret(kind) else ""),
            webhook_username="" if is_jira else data["webhook_username"],
            webhook_header="" if is_jira else data["webhook_header"],
            intake_enabled=data["intake_enabled"],
            intake_query=data["intake_query"],
            intake_label=data["intake_label"],
            field_mapping={
                name: data[f"map_{name}"] for name in MAPPED_FIELDS if data[f"map_{name}"]
            },
        )


def initial_from(connection: TrackerConnection) -> dict[str, Any]:
    """The form's initial values from a saved connection: everything but the secrets."""
    initial: dict[str, Any] = {name: getattr(connection, name) for name in PLAIN_FIELDS}
    mapping = connection.field_mapping if isinstance(connection.field_mapping, dict) else {}
    for name in MAPPED_FIELDS:
        initial[f"map_{name}"] = mapping.get(name, "")
    return initial
