"""`manage.py prune_audit`: delete audit entries older than AUDIT_RETENTION_DAYS (beat's
`audit.prune` does the same daily)."""

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand

from audit.services import entries_prune


class Command(BaseCommand):
    help = "Delete audit entries older than AUDIT_RETENTION_DAYS."

    def handle(self, *args: Any, **options: Any) -> None:
        deleted = entries_prune()
        self.stdout.write(
            f"Deleted {deleted} audit entr{'y' if deleted == 1 else 'ies'} older than "
            f"{settings.AUDIT_RETENTION_DAYS} days."
        )
