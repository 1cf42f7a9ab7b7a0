"""`manage.py add_member SLUG USERNAME ROLE [--create-user] [--email E]`.

With --create-user the password comes from LEAKSEAL_PASSWORD, so that it never appears in
the shell history or the process list; without it one is generated and printed once.
"""

import os
import secrets
from typing import Any

from django.contrib.auth.models import User
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.core.validators import validate_email
from django.db import transaction

from teams.models import Role, Team
from teams.services import membership_set

PASSWORD_ENV = "LEAKSEAL_PASSWORD"  # noqa: S105 - the variable's name, not a password


class Command(BaseCommand):
    help = "Add a user to a team with a role (admin, facilitator, member, viewer)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("slug", help="The team's slug.")
        parser.add_argument("username")
        parser.add_argument("role", help=f"One of: {', '.join(Role.values)}.")
        parser.add_argument(
            "--create-user",
            action="store_true",
            help=f"Create the user; the password is read from ${PASSWORD_ENV} or generated.",
        )
        parser.add_argument("--email", default="", help="E-mail address of a created user.")

    def handle(
        self,
        *args: Any,
        slug: str,
        username: str,
        role: str,
        create_user: bool,
        email: str,
        **options: Any,
    ) -> None:
        if role not in Role.values:
            raise CommandError(f"Unknown role {role!r}; choose one of {', '.join(Role.values)}.")
        team = Team.objects.filter(slug=slug).first()
        if team is None:
            raise CommandError(f"No team with the slug {slug!r}.")
        generated = ""
        with transaction.atomic():
            if create_user:
                user, generated = self._create_user(username, email)
            else:
                found = User.objects.filter(username=username).first()
                if found is None:
                    raise CommandError(
                        f"No user named {username!r}; add --create-user to create one."
                    )
                user = found
            membership_set(team=team, user=user, role=role)
        self.stdout.write(f"{user.username} is now {role} of {team.slug}.")
        if generated:
            self.stdout.write(f"Generated password for {user.username} (shown once): {generated}")

    def _create_user(self, username: str, email: str) -> tuple[User, str]:
        if User.objects.filter(username=username).exists():
            raise CommandError(f"A user named {username!r} already exists; drop --create-user.")
        if email:
            try:
                validate_email(email)
            except ValidationError:
                raise CommandError(f"{email!r} is not a valid e-mail address.") from None
        user = User(username=username, email=email)
        try:
            user.full_clean(exclude=["password"])
        except ValidationError as exc:
            raise CommandError(" ".join(exc.messages)) from None
        password = os.environ.get(PASSWORD_ENV, "")
        generated = ""
        if password:
            try:
                validate_password(password, user)
            except ValidationError as exc:
                raise CommandError(
                    f"${PASSWORD_ENV} is too weak: {' '.join(exc.messages)}"
                ) from None
        else:
            password = generated = secrets.token_urlsafe(15)
        user.set_password(password)
        user.save()
        return user, generated
