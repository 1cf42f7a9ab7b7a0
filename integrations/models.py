"""A team's tracker connection, the push outbox and the record of webhook deliveries.

Secrets (API tokens, PATs, webhook secrets) are stored encrypted (config/crypto.py) and
only ever decrypted in the process that talks to the tracker; no page or log shows them.
"""

import secrets

from django.db import models

from config import crypto
from retros.models import PreventativeAction
from teams.models import Team


class TrackerKind(models.TextChoices):
    JIRA_CLOUD = "jira_cloud", "Jira Cloud"
    JIRA_DC = "jira_dc", "Jira Data Center"
    AZURE_DEVOPS = "azure_devops", "Azure DevOps"


def _webhook_token() -> str:
    return secrets.token_urlsafe(24)


class TrackerConnection(models.Model):
    """How a team's tickets reach its tracker, and how escapes come back from it."""

    team = models.OneToOneField(Team, on_delete=models.CASCADE, related_name="tracker_connection")
    kind = models.CharField(max_length=16, choices=TrackerKind.choices)
    # Jira: the site URL (https://acme.atlassian.net, https://jira.acme.internal).
    # Azure DevOps: the organization URL (https://dev.azure.com/acme).
    base_url = models.URLField(max_length=300)
    project = models.CharField(max_length=200, help_text="Jira project key or Azure DevOps project")
    board_id = models.PositiveIntegerField(null=True, blank=True, help_text="Jira board")
    ado_team = models.CharField(max_length=200, blank=True, help_text="Azure DevOps team")
    issue_type = models.CharField(max_length=100, default="Task")
    priority = models.CharField(max_length=100, blank=True)
    # Jira Cloud signs in with an email and an API token; Jira Data Center and Azure DevOps
    # with a token alone (a personal access token).
    account_email = models.EmailField(blank=True)
    token_encrypted = models.TextField(blank=True)
    # Jira: the secret of the webhook's HMAC (X-Hub-Signature). Azure DevOps: the password of
    # the service hook's Basic credentials (user `webhook_username`), or the value of the
    # header named `webhook_header` when that is set instead.
    webhook_secret_encrypted = models.TextField(blank=True)
    webhook_username = models.CharField(max_length=100, blank=True)
    webhook_header = models.CharField(max_length=100, blank=True)
    # The unguessable part of this connection's webhook URL: it routes a delivery to its
    # connection; the signature or credentials then prove it.
    webhook_token = models.CharField(max_length=64, unique=True, default=_webhook_token)
    # Escape intake: which issues are escapes (a JQL/WIQL query, or a label/tag) and which of
    # their fields give merged-at, component, severity and release.
    intake_enabled = models.BooleanField(default=False)
    intake_query = models.TextField(blank=True)
    intake_label = models.CharField(max_length=100, blank=True)
    field_mapping = models.JSONField(default=dict, blank=True)
    last_intake_poll_at = models.DateTimeField(null=True, blank=True)
    last_status_poll_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"{self.get_kind_display()} for {self.team}"

    @property
    def is_jira(self) -> bool:
        return self.kind in (TrackerKind.JIRA_CLOUD, TrackerKind.JIRA_DC)

    @property
    def tracker(self) -> str:
        """The PreventativeAction.tracker / Escape.source value of this connection."""
        return "jira" if self.is_jira else "azure_devops"

    # Secrets: set in clear, stored encrypted, read back only where a tracker call needs them.
    @property
    def token(self) -> str:
        return crypto.decrypt(self.token_encrypted) if self.token_encrypted else ""

    @token.setter
    def token(self, value: str) -> None:
        self.token_encrypted = crypto.encrypt(value) if value else ""

    @property
    def webhook_secret(self) -> str:
        if not self.webhook_secret_encrypted:
            return ""
        return crypto.decrypt(self.webhook_secret_encrypted)

    @webhook_secret.setter
    def webhook_secret(self, value: str) -> None:
        self.webhook_secret_encrypted = crypto.encrypt(value) if value else ""


class OutboxState(models.TextChoices):
    PENDING = "pending", "Pending"
    DONE = "done", "Done"
    FAILED = "failed", "Failed"


class TicketPush(models.Model):
    """The outbox row of one action's ticket: written in the transaction that closes the retro.

    A task is queued for it on commit; if that enqueue is lost (the broker was down) the
    periodic sweep finds the pending row and queues it again. `leased_until` keeps two
    workers from pushing the same action at once; `attempts` counts tries for the backoff.
    """

    action = models.OneToOneField(PreventativeAction, on_delete=models.CASCADE, related_name="push")
    connection = models.ForeignKey(
        TrackerConnection, on_delete=models.SET_NULL, null=True, related_name="pushes"
    )
    state = models.CharField(
        max_length=16, choices=OutboxState.choices, default=OutboxState.PENDING
    )
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    leased_until = models.DateTimeField(null=True, blank=True)
    first_queued_at = models.DateTimeField(auto_now_add=True)
    last_error = models.TextField(blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        indexes = [models.Index(fields=["state", "next_attempt_at"])]

    def __str__(self) -> str:
        return f"push of action {self.action_id} ({self.state})"


class WebhookDelivery(models.Model):
    """One accepted webhook delivery, so a repeated one changes nothing twice."""

    connection = models.ForeignKey(
        TrackerConnection, on_delete=models.CASCADE, related_name="deliveries"
    )
    # The tracker's delivery id where it sends one, else the SHA-256 of the raw body.
    delivery_id = models.CharField(max_length=128)
    event = models.CharField(max_length=100, blank=True)
    received_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["connection", "delivery_id"], name="webhook_delivery_once"
            )
        ]
