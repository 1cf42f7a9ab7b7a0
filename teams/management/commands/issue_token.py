"""`manage.py issue_token USERNAME [--name NAME]`: create a personal API token.

Only the raw token goes to stdout, so a script can capture it
(`TOKEN=$(manage.py issue_token ci-bot --name "CI")`); the note about it goes to stderr.
"""

from typing import Any

from django.contrib.auth.models import User
from django.core.management.base import BaseCommand, CommandError, CommandParser

from teams.services import api_token_create


class Command(BaseCommand):
    help = "Create a personal API token for a user and print it (it is shown only this once)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username")
        parser.add_argument("--name", default="", help="What uses it (default: “issued by CLI”).")

    def handle(self, *args: Any, username: str, name: str, **options: Any) -> None:
        user = User.objects.filter(username=username).first()
        if user is None:
            raise CommandError(f"No user named {username!r}.")
        if not user.is_active:
            raise CommandError(f"{username!r} is inactive; a token of theirs would not work.")
        name = name.strip() or "issued by CLI"
        if len(name) > 100:
            raise CommandError("--name is at most 100 characters.")
        token, raw = api_token_create(user=user, name=name)
        self.stdout.write(raw)
        self.stderr.write(f"Token {token.prefix}… “{token.name}” for {username}; shown only once.")
