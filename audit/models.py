"""The audit trail: who changed what in a team, when, and what it was before (docs/design.md).

`audit` is the lowest app: every other app may call `audit.services.record`, and it imports
none of them (the team and the actor are referenced by name, "teams.Team" and the user model).
"""

from typing import Any

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import models
from django.utils import timezone
from django.utils.dateparse import parse_datetime


class Action(models.TextChoices):
    # The team and its members (teams/): written by the team, invitation and member services.
    TEAM_CREATED = "team_created", "Team created"
    JOIN_LINK_SIGN_UP_CHANGED = "join_link_sign_up_changed", "Join-link sign-up changed"
    MEMBER_INVITED = "member_invited", "Member invited"
    INVITATION_RESENT = "invitation_resent", "Invitation resent"
    INVITATION_REVOKED = "invitation_revoked", "Invitation revoked"
    MEMBER_ADDED = "member_added", "Member added"
    MEMBER_ROLE_CHANGED = "member_role_changed", "Role changed"
    MEMBER_REMOVED = "member_removed", "Member removed"
    # API tokens (teams/): one entry in each team of the token's owner.
    TOKEN_REVOKED = "token_revoked", "API token revoked"
    # The tracker connection (integrations/).
    TRACKER_CONNECTED = "tracker_connected", "Tracker connected"
    TRACKER_CHANGED = "tracker_changed", "Tracker connection changed"
    TRACKER_DISCONNECTED = "tracker_disconnected", "Tracker disconnected"
    WEBHOOK_SECRET_ROTATED = "webhook_secret_rotated", "Webhook secret rotated"
    # The team's chat channels (notices/).
    CHAT_CONNECTED = "chat_connected", "Chat channel connected"
    CHAT_CHANGED = "chat_changed", "Chat channel changed"
    CHAT_DISCONNECTED = "chat_disconnected", "Chat channel disconnected"
    # The Confluence connection and the retro summaries published there (integrations/).
    CONFLUENCE_CONNECTED = "confluence_connected", "Confluence connected"
    CONFLUENCE_CHANGED = "confluence_changed", "Confluence connection changed"
    CONFLUENCE_DISCONNECTED = "confluence_disconnected", "Confluence disconnected"
    SUMMARY_REPUBLISHED = "summary_republished", "Retro summary published again"
    # Escapes (escapes/).
    ESCAPE_TIMES_EDITED = "escape_times_edited", "Escape times edited"
    ESCAPE_DELETED = "escape_deleted", "Escape deleted"
    RELEASE_MOVED = "release_moved", "Release time corrected"
    # Tests attached to an escape in the retro (evidence/escape_tests.py).
    ESCAPE_TEST_ATTACHED = "escape_test_attached", "Test attached to an escape"
    ESCAPE_TEST_DETACHED = "escape_test_detached", "Test detached from an escape"
    # Retrospectives (retros/).
    RETRO_CLOSED = "retro_closed", "Retro closed"
    RETRO_REOPENED = "retro_reopened", "Retro reopened (back one phase)"
    ACTION_MARKED_DONE = "action_marked_done", "Action marked done"
    ACTION_REOPENED = "action_reopened", "Action reopened (not done)"
    # CI test evidence (evidence/): the team's quarantine list.
    TEST_QUARANTINED = "test_quarantined", "Test quarantined"
    TEST_UNQUARANTINED = "test_unquarantined", "Test taken out of quarantine"


class AuditEntry(models.Model):
    team = models.ForeignKey("teams.Team", on_delete=models.CASCADE, related_name="audit_entries")
    # The actor's account, and their name as it was: the entry keeps saying who it was after
    # the account is renamed or deleted. No account: a change made by Leakseal itself (a
    # tracker's intake), named in `actor_name`.
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    actor_name = models.CharField(max_length=150)
    action = models.CharField(max_length=32, choices=Action.choices)
    target = models.CharField(max_length=300)
    # What changed: {"field": {"from": old, "to": new}} or {"field": value}; a secret only
    # ever as "set", "changed" or "cleared" (audit.services.record refuses anything else).
    changes = models.JSONField(default=dict, blank=True, encoder=DjangoJSONEncoder)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["team", "-created_at", "-id"], name="audit_team_time"),
            models.Index(
                fields=["team", "action", "-created_at", "-id"], name="audit_team_action_time"
            ),
            models.Index(fields=["created_at"], name="audit_created"),
        ]
        verbose_name_plural = "audit entries"

    def __str__(self) -> str:
        return f"{self.created_at:%Y-%m-%d %H:%M} {self.actor_name} {self.action} {self.target}"

    def change_lines(self) -> list[tuple[str, str]]:
        """(what, how it changed) per change, for the page: times in the current zone."""
        changes = self.changes if isinstance(self.changes, dict) else {}
        lines = []
        for field, value in changes.items():
            label = str(field).replace("_", " ")
            if isinstance(value, dict) and set(value) <= {"from", "to"} and value:
                text = f"{_shown(value.get('from'))} → {_shown(value.get('to'))}"
            else:
                text = _shown(value)
            lines.append((label, text))
        return lines


def _shown(value: Any) -> str:
    if value is None or value == "":
        return "—"
    if isinstance(value, bool):  # a setting: "off → on", not Python's "False → True"
        return "on" if value else "off"
    if isinstance(value, str) and (moment := _moment(value)) is not None:
        return timezone.localtime(moment).strftime("%Y-%m-%d %H:%M")
    if isinstance(value, dict):
        return ", ".join(f"{k}: {v}" for k, v in value.items())
    if isinstance(value, list):
        return ", ".join(map(str, value))
    return str(value)


def _moment(text: str) -> Any:
    try:
        moment = parse_datetime(text)
    except ValueError:
        return None
    return moment if moment is not None and timezone.is_aware(moment) else None
