"""Reading the audit trail of one team, newest first."""

from django.db import models
from django.db.models import QuerySet

from audit.models import Action, AuditEntry


def audit_entries(*, team: models.Model, action: str = "") -> QuerySet[AuditEntry]:
    entries = AuditEntry.objects.filter(team_id=team.pk)
    if action:
        entries = entries.filter(action=action)
    return entries.order_by("-created_at", "-id")


def action_choices() -> list[tuple[str, str]]:
    return list(Action.choices)
