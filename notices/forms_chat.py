"""The form of a team's chat channel: which kind, its name, the URL or token, the events."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django import forms

from notices.chat import (
    slack_channel_problem,
    slack_token_problem,
    slack_webhook_problem,
    teams_webhook_problem,
)
from notices.models_chat import ChatConnection, ChatEvent, ChatKind


class ChatConnectionForm(forms.Form):
    kind = forms.ChoiceField(label="Kind", choices=ChatKind.choices)
    name = forms.CharField(
        label="Name",
        max_length=80,
        help_text="How your team recognises the channel, e.g. #payments-retros.",
    )
    # A secret: never rendered back into the page (render_value=False), even after an error.
    secret = forms.CharField(
        label="Webhook URL or bot token",
        required=False,
        strip=True,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "off"}),
        help_text=(
            "Slack webhook: https://hooks.slack.com/services/…; Slack bot: its xoxb- token; "
            "Teams: the workflow's https URL."
        ),
    )
    channel_id = forms.CharField(
        label="Slack channel id (bot only)",
        max_length=40,
        required=False,
        help_text="e.g. C0123ABCD, from the channel's details. Invite the bot to the channel.",
    )
    events = forms.MultipleChoiceField(
        label="Notices posted there",
        choices=ChatEvent.choices,
        widget=forms.CheckboxSelectMultiple,
        required=False,
    )

    def __init__(self, *args: Any, stored: ChatConnection | None = None, **kwargs: Any) -> None:
        self.stored = stored
        if stored is not None and "initial" not in kwargs:
            kwargs["initial"] = {
                "kind": stored.kind,
                "name": stored.name,
                "channel_id": stored.channel_id,
                "events": list(stored.events),
            }
        elif "initial" not in kwargs:
            kwargs["initial"] = {"events": [e.value for e in ChatEvent]}
        super().__init__(*args, **kwargs)
        if stored is not None:
            self.fields["secret"].help_text = "A secret is stored. Leave empty to keep it."

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        kind = data.get("kind")
        secret = data.get("secret", "")
        channel_id = (data.get("channel_id") or "").strip()
        keeps = self.stored is not None and kind == self.stored.kind and not secret
        if not secret and not keeps:
            self.add_error(
                "secret",
                "Enter the bot token." if kind == ChatKind.SLACK_BOT else "Enter the webhook URL.",
            )
        elif secret:
            checks: dict[str, Callable[[str], str | None]] = {
                ChatKind.SLACK_WEBHOOK: slack_webhook_problem,
                ChatKind.SLACK_BOT: slack_token_problem,
                ChatKind.TEAMS_WEBHOOK: teams_webhook_problem,
            }
            check = checks.get(str(kind or ""))
            problem = check(secret) if check else None
            if problem:
                self.add_error("secret", problem)
        if kind == ChatKind.SLACK_BOT:
            problem = (
                slack_channel_problem(channel_id)
                if channel_id
                else ("A bot posts into the channel with this id: enter it.")
            )
            if problem:
                self.add_error("channel_id", problem)
        else:
            channel_id = ""  # a webhook's channel is part of its URL
        data["channel_id"] = channel_id
        return data
