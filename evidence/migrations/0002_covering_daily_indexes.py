"""Covering indexes on PostgreSQL for the flakiness page (issue 14, "p95 under 150 ms").

The flakiness page's window is read from `daily_team_day_noteworthy` alone (index-only scan)
when the index carries the columns it sums, and a flipped test's commits and runs over the
window from `daily_test_day_counts` alone. Both are PostgreSQL's INCLUDE; Django's model
state keeps the plain definition (its name and condition are unchanged), because SQLite has no
INCLUDE and would warn about, or drop, such a definition. SQLite keeps the plain indexes.
"""

from collections.abc import Callable

from django.db import migrations
from django.db.backends.base.schema import BaseDatabaseSchemaEditor
from django.db.migrations.state import StateApps

NOTEWORTHY = "(failures > 0 OR skips > 0 OR retries > 0 OR flips > 0)"

FORWARD = [
    "DROP INDEX IF EXISTS daily_team_day_noteworthy",
    "CREATE INDEX daily_team_day_noteworthy ON evidence_dailyresult (team_id, day) "
    f"INCLUDE (test_id, stage_id, flips, retries, failures) WHERE {NOTEWORTHY}",
    "CREATE INDEX IF NOT EXISTS daily_test_day_counts ON evidence_dailyresult (test_id, day) "
    "INCLUDE (commits, runs)",
]
BACKWARD = [
    "DROP INDEX IF EXISTS daily_test_day_counts",
    "DROP INDEX IF EXISTS daily_team_day_noteworthy",
    f"CREATE INDEX daily_team_day_noteworthy ON evidence_dailyresult (team_id, day) WHERE {NOTEWORTHY}",
]


def _run(statements: list[str]) -> Callable[[StateApps, BaseDatabaseSchemaEditor], None]:
    def run(apps: StateApps, schema_editor: BaseDatabaseSchemaEditor) -> None:
        if schema_editor.connection.vendor != "postgresql":
            return
        for statement in statements:
            schema_editor.execute(statement)

    return run


class Migration(migrations.Migration):
    dependencies = [("evidence", "0001_initial")]

    operations = [migrations.RunPython(_run(FORWARD), _run(BACKWARD), elidable=False)]
