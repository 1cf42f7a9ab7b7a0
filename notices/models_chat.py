"""A team's chat channels: where retro and follow-through notices are posted.

The webhook URL or bot token is a secret (whoever has it can post into the channel): it is
stored encrypted (config.crypto), never shown again after saving, never logged, and never put
in a notice's payload: a chat notice names its connection by id (recipient = str(pk)) and the
sender reads the secret from here when it sends.
"""

from django.db import models

from config.crypto import decrypt, encrypt


class ChatKind(models.TextChoices):
    SLACK_WEBHOOK = "slack_webhook", "Slack incoming webhook"
    SLACK_BOT = "slack_bot", "Slack bot (token and channel id)"
    TEAMS_WEBHOOK = "teams_webhook", "Microsoft Teams workflow"


class ChatEvent(models.TextChoices):
    RETRO_STARTED = "retro_started", "A retro started"
    RETRO_CLOSED = "retro_closed", "A retro closed"
    PUSH_FAILED = "push_failed", "A ticket push failed"
    # The value keeps its first name (channels store it); the message now covers actions due
    # in two days and due today as well as overdue ones (retros/chat_reminders.py).
    ACTION_OVERDUE = "action_overdue", "Actions due soon, due today or overdue (daily at 09:00)"


class ChatConnection(models.Model):
    team = models.ForeignKey(
        "teams.Team", on_delete=models.CASCADE, related_name="chat_connections"
    )
    kind = models.CharField(max_length=16, choices=ChatKind.choices)
    name = models.CharField(max_length=80)  # "#payments-retros": how the team recognises it
    # The webhook URL (webhooks) or the xoxb- token (bot), encrypted.
    secret_encrypted = models.TextField()
    channel_id = models.CharField(max_length=40, blank=True)  # the bot's channel, e.g. C0123ABCD
    events = models.JSONField(default=list)  # ChatEvent values this channel gets
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name", "pk"]
        constraints = [
            models.UniqueConstraint(fields=["team", "name"], name="chat_connection_name_per_team")
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.name}"

    @property
    def secret(self) -> str:
        return decrypt(self.secret_encrypted)

    @secret.setter
    def secret(self, value: str) -> None:
        self.secret_encrypted = encrypt(value)

    @property
    def channel(self) -> str:
        """The notices channel its messages go out on."""
        return "teams" if self.kind == ChatKind.TEAMS_WEBHOOK else "slack"

    def event_labels(self) -> list[str]:
        return [ChatEvent(e).label for e in self.events or [] if e in ChatEvent.values]

    def gets(self, event: str) -> bool:
        return event in (self.events or [])
