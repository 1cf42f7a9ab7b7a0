"""`manage.py seed_demo`: the "Payments Platform" demo team that `make run` opens on.

The steps are `demo.seed.seed()`; the team's content is `demo/seed_data.py`.
"""

from typing import Any

from django.core.management.base import BaseCommand

from demo.seed import seed
from demo.seed_data import DEMO_PASSWORD, DEMO_SLUG, DEMO_TEAM, DEMO_USERS


class Command(BaseCommand):
    help = "Load the demo team (slug 'demo') with releases, escapes and a retro in progress."

    def handle(self, *args: Any, **options: Any) -> None:
        if not seed():
            self.stdout.write("demo data already present")
            return
        self.stdout.write(self.style.SUCCESS(f"Demo team “{DEMO_TEAM}” loaded (slug {DEMO_SLUG})."))
        self.stdout.write(f"Sign in with any of these (password: {DEMO_PASSWORD}):")
        for username, role, *_ in DEMO_USERS:
            extra = ", Django superuser" if username == "admin" else ""
            self.stdout.write(f"  {username:<12} {role}{extra}")
