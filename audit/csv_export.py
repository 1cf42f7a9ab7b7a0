"""The audit trail as CSV: one row per entry, newest first.

Targets and changes carry text people typed (escape titles, project names), so a cell that a
spreadsheet would read as a formula is quoted as text by config/csv_safe.py, which writes
every CSV the app writes.
"""

import json
from collections.abc import Iterable

from django.core.serializers.json import DjangoJSONEncoder

from audit.models import AuditEntry
from config import csv_safe

HEADER = ("time_utc", "actor", "action", "action_label", "target", "changes")


def write_csv(out: csv_safe.Writable, entries: Iterable[AuditEntry]) -> None:
    writer = csv_safe.writer(out)
    writer.writerow(HEADER)
    for entry in entries:
        writer.writerow(
            (
                entry.created_at.isoformat(),
                entry.actor_name,
                entry.action,
                entry.get_action_display(),
                entry.target,
                json.dumps(entry.changes, cls=DjangoJSONEncoder, ensure_ascii=False),
            )
        )
