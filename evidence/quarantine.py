"""The team's quarantine list: tests set aside on purpose, each with a reason (docs/metrics.md,
"Quarantined"). Every change is written to the team's audit trail."""

from __future__ import annotations

from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.db import transaction

from audit.models import Action
from audit.services import record
from evidence.models import Quarantine, TrackedTest

REASON_MAX = Quarantine._meta.get_field("reason").max_length or 300


def _clean_reason(reason: str) -> str:
    reason = " ".join(reason.split())
    if not reason:
        raise ValidationError("Say why the test is quarantined: the reason is required.")
    if len(reason) > REASON_MAX:
        raise ValidationError(
            f"The reason is {len(reason)} characters long; keep it to {REASON_MAX}."
        )
    return reason


def quarantine_add(*, test: TrackedTest, reason: str, by: User | None) -> Quarantine:
    """Put a test on its team's quarantine list, or change the reason it is there for."""
    reason = _clean_reason(reason)
    with transaction.atomic():
        entry = Quarantine.objects.select_for_update().filter(test=test).first()
        if entry is None:
            entry = Quarantine.objects.create(test=test, reason=reason, added_by=by)
            changes: dict[str, object] = {"reason": reason, "stage": test.stage.name}
        elif entry.reason == reason:
            return entry
        else:
            changes = {"reason": {"from": entry.reason, "to": reason}}
            entry.reason = reason
            entry.save(update_fields=["reason"])
        record(
            team=test.team,
            actor=by,
            action=Action.TEST_QUARANTINED,
            target=str(test),
            changes=changes,
        )
    return entry


def quarantine_remove(*, test: TrackedTest, by: User | None) -> bool:
    """Take a test off its team's quarantine list; False if it was not on it."""
    with transaction.atomic():
        entry = Quarantine.objects.select_for_update().filter(test=test).first()
        if entry is None:
            return False
        reason = entry.reason
        entry.delete()
        record(
            team=test.team,
            actor=by,
            action=Action.TEST_UNQUARANTINED,
            target=str(test),
            changes={"reason": reason, "stage": test.stage.name},
        )
    return True
