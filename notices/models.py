"""The notices outbox: one row per message to send, written in the transaction that caused it.

A row is a promise: "tell this recipient about this occasion, once". The unique constraint on
(channel, recipient, occasion) makes a second promise of the same a no-op, so whatever runs
twice (a scheduled tick, a retried task, a retro closed again) sends nothing twice.
"""

from django.db import models


class Channel(models.TextChoices):
    EMAIL = "email", "Email"
    SLACK = "slack", "Slack"
    TEAMS = "teams", "Microsoft Teams"
    CONFLUENCE = "confluence", "Confluence"


class NoticeState(models.TextChoices):
    PENDING = "pending", "Waiting"  # for its task, or for its retry's time
    SENDING = "sending", "Sending"  # a worker is sending it (committed before the send)
    SENT = "sent", "Sent"
    FAILED = "failed", "Failed"  # a permanent refusal, or retries exhausted
    # The worker stopped mid-send: it may have gone out. Never re-sent by itself (at most
    # once); an admin may resend it from the delivery log.
    INTERRUPTED = "interrupted", "Interrupted"


class Notice(models.Model):
    # None: about several teams (a manager's digest for all their teams).
    team = models.ForeignKey(
        "teams.Team", on_delete=models.CASCADE, null=True, blank=True, related_name="notices"
    )
    channel = models.CharField(max_length=16, choices=Channel.choices)
    # An email address, a chat connection's id, or "space:KEY" for Confluence.
    recipient = models.CharField(max_length=300)
    occasion = models.CharField(max_length=200)  # what happened, e.g. "action-due:12:2026-12-05"
    kind = models.CharField(max_length=32)  # reminder, digest, retro_started, ...
    subject = models.CharField(max_length=300)  # one line for the delivery log
    payload = models.JSONField(default=dict)  # what the sender needs; never a secret
    state = models.CharField(
        max_length=16, choices=NoticeState.choices, default=NoticeState.PENDING
    )
    attempts = models.PositiveSmallIntegerField(default=0)
    last_error = models.TextField(blank=True)
    next_attempt_at = models.DateTimeField(null=True, blank=True)  # PENDING: not before
    lease_until = models.DateTimeField(null=True, blank=True)  # SENDING: the worker's deadline
    result = models.JSONField(default=dict, blank=True)  # what the sender returned
    created_at = models.DateTimeField(auto_now_add=True)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["channel", "recipient", "occasion"], name="notice_once_per_occasion"
            )
        ]
        indexes = [
            models.Index(fields=["state", "next_attempt_at"], name="notice_due"),
            models.Index(fields=["team", "-created_at"], name="notice_log"),
        ]
        ordering = ["-created_at", "-pk"]

    def __str__(self) -> str:
        return f"{self.channel} to {self.recipient}: {self.subject}"


class NoticePreferences(models.Model):
    """What one person wants to hear (their "Your settings" page); no row means the defaults:
    reminders on, no digest."""

    user = models.OneToOneField(
        "auth.User", on_delete=models.CASCADE, related_name="notice_preferences"
    )
    mute_reminders = models.BooleanField(
        "Mute reminders about my preventative actions", default=False
    )
    # A weekly digest of every team the person belongs to, whichever teams they join later.
    digest_all_teams = models.BooleanField("Weekly digest of all my teams", default=False)
    # Or of these teams, each its own digest (only teams they belong to count when sending).
    digest_teams = models.ManyToManyField("teams.Team", blank=True, related_name="+")
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"notice preferences of {self.user}"


# The team's chat channels (notices/models_chat.py), registered with this app's models.
from notices.models_chat import ChatConnection, ChatEvent, ChatKind  # noqa: E402, F401
