"""`manage.py create_team NAME SLUG [--timezone Europe/Berlin]`: a team with the default stages."""

from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser

from teams.models import Team
from teams.services import team_create


class Command(BaseCommand):
    help = "Create a team with the default pipeline stages (Unit, Integration, E2E)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("name", help="Display name, e.g. 'Payments Platform'.")
        parser.add_argument("slug", help="Short identifier used in URLs, e.g. 'payments'.")
        parser.add_argument(
            "--timezone",
            default="UTC",
            help="IANA time zone for days and weeks on the dashboards (default UTC).",
        )

    def handle(self, *args: Any, name: str, slug: str, timezone: str, **options: Any) -> None:
        # Checked up front so the message names the slug rather than Django's generic one.
        if Team.objects.filter(slug=slug).exists():
            raise CommandError(f"A team with the slug {slug!r} already exists; choose another.")
        try:
            team = team_create(name=name, slug=slug, timezone_name=timezone)
        except ValidationError as exc:
            raise CommandError(_describe(exc)) from None
        self.stdout.write(team.slug)


def _describe(exc: ValidationError) -> str:
    if not hasattr(exc, "error_dict"):
        return " ".join(exc.messages)
    labels = {"name": "Name", "slug": "Slug", "timezone": "--timezone"}
    return "; ".join(
        f"{labels.get(field, field)}: {' '.join(messages)}"
        for field, messages in exc.message_dict.items()
    )
