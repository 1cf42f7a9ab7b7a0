"""A team's tracker connection, the push outbox and the record of webhook deliveries.

Secrets (API tokens, PATs, webhook secrets) are stored encrypted (config/crypto.py) and
only ever decrypted in the process that talks to the tracker; no page or log shows them.
"""

import secrets
from datetime import timedelta

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

    @property
    def tracker_name(self) -> str:
        """The tracker as people name it in a sentence: "Jira" or "Azure DevOps"."""
        return "Jira" if self.is_jira else "Azure DevOps"

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
    # Set while the push waits out a tracker's Retry-After longer than a task countdown may
    # be: no task is queued for it; the sweep queues one once this time has passed.
    rate_limited_until = models.DateTimeField(null=True, blank=True)
    # The time spent waiting out trackers' Retry-Afters: MAX_PUSH_AGE does not count it, so
    # an hour's rate limit obeyed does not use up the push's own time to succeed.
    rate_limit_waited = models.DurationField(default=timedelta(0))
    leased_until = models.DateTimeField(null=True, blank=True)
    first_queued_at = models.DateTimeField(auto_now_add=True)
    last_error = models.TextField(blank=True)
    # When the last create was sent whose answer never came (a timeout, a dropped connection):
    # the ticket may exist without the search showing it yet. Until TRACKER_SEARCH_LAG has
    # passed, a retry only searches; after it, the label search decides.
    create_sent_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        indexes = [models.Index(fields=["state", "next_attempt_at"])]

    def __str__(self) -> str:
        return f"push of action {self.action_id} ({self.state})"


class ConnectionEvent(models.Model):
    """A line of the connection's log, shown on its page: what the sync found that a person
    must know (two tickets carrying one action's label, and what was done about it)."""

    connection = models.ForeignKey(
        TrackerConnection, on_delete=models.CASCADE, related_name="events"
    )
    action = models.ForeignKey(
        PreventativeAction, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    # What the line is about, so a finding is logged once (e.g. "duplicate:SHOP-12").
    subject = models.CharField(max_length=200)
    message = models.TextField()
    at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["connection", "subject"], name="connection_event_once")
        ]
        indexes = [models.Index(fields=["connection", "-at"])]

    def __str__(self) -> str:
        return f"{self.subject} on connection {self.connection_id}"


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


class ConfluenceDeployment(models.TextChoices):
    CLOUD = "cloud", "Confluence Cloud"
    DATA_CENTER = "data_center", "Confluence Data Center"


class ConfluenceConnection(models.Model):
    """Where a team's closed retros are published: a space and a parent page in Confluence.

    Cloud signs in with an account email and an API token (Basic); Data Center with a personal
    access token (Bearer). The token is stored encrypted and never shown again.
    """

    team = models.OneToOneField(
        Team, on_delete=models.CASCADE, related_name="confluence_connection"
    )
    deployment = models.CharField(max_length=16, choices=ConfluenceDeployment.choices)
    # Cloud: the site (https://acme.atlassian.net; /wiki is added). Data Center: the base URL
    # with its context path if it has one (https://wiki.acme.internal/confluence).
    base_url = models.URLField(max_length=300)
    account_email = models.EmailField(blank=True)
    token_encrypted = models.TextField(blank=True)
    space_key = models.CharField(max_length=255)
    # The parent page, as found on the server when the connection was saved.
    parent_id = models.CharField(max_length=40)
    parent_title = models.CharField(max_length=255)
    enabled = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"{self.get_deployment_display()} space {self.space_key} for {self.team}"

    @property
    def cloud(self) -> bool:
        return self.deployment == ConfluenceDeployment.CLOUD

    @property
    def where(self) -> str:
        return f"space {self.space_key}, under “{self.parent_title}”"

    @property
    def token(self) -> str:
        return crypto.decrypt(self.token_encrypted) if self.token_encrypted else ""

    @token.setter
    def token(self, value: str) -> None:
        self.token_encrypted = crypto.encrypt(value) if value else ""


class SummaryPage(models.Model):
    """The Confluence page of one closed retro's summary, and how often it was published.

    Written when a publish is promised (close, or an admin's "Publish again": `publishes` is
    the number of that promise, part of its notice's occasion) and when one succeeds (the
    page's id, address and version).
    """

    retro = models.OneToOneField(
        "retros.Retrospective", on_delete=models.CASCADE, related_name="summary_page"
    )
    publishes = models.PositiveIntegerField(default=0)
    space_key = models.CharField(max_length=255, blank=True)
    page_id = models.CharField(max_length=40, blank=True)
    url = models.URLField(max_length=500, blank=True)
    version = models.PositiveIntegerField(null=True, blank=True)
    published_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"summary page of retro {self.retro_id}"
