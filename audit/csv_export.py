"""The audit trail as CSV: one row per entry, newest first.

Targets and changes carry text people typed (escape titles, project names), so a cell that a
spreadsheet would read as a formula is quoted as text, as in insights/dashboard_csv.py.
"""

import csv
import json
from collections.abc import Iterable
from typing import Any, Protocol

from django.core.serializers.json import DjangoJSONEncoder

from audit.models import AuditEntry

HEADER = ("time_utc", "actor", "action", "action_label", "target", "changes")
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


class Writable(Protocol):
    def write(self, content: str, /) -> Any: ...


def cell(value: object) -> str:
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(FORMULA_START) else text


def write_csv(out: Writable, entries: Iterable[AuditEntry]) -> None:
    writer = csv.writer(out)
    writer.writerow(HEADER)
    for entry in entries:
        writer.writerow(
            (
                entry.created_at.isoformat(),
                cell(entry.actor_name),
                entry.action,
                entry.get_action_display(),
                cell(entry.target),
                cell(json.dumps(entry.changes, cls=DjangoJSONEncoder, ensure_ascii=False)),
            )
        )
