"""`manage.py generate_escapes --teams N --escapes M`: realistic volume for demos and benchmarks.

    manage.py generate_escapes --teams 50 --escapes 1000000 --years 3 --seed 1
    manage.py generate_escapes --into checkout --escapes 5000

The same --seed (and --end) gives the same data. The steps are `demo.volume.generate`;
what "realistic" means, and where each part lives, is in `demo/volume/__init__.py`.
"""

from typing import Any

from django.core.management.base import BaseCommand, CommandParser
from django.utils import timezone

from demo.volume.generate import generate
from demo.volume.plan import end_time, plan_of


class Command(BaseCommand):
    help = "Generate realistic teams, releases and escapes for demos and benchmarks."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--teams", type=int, help="Create teams gen-001 … gen-N.")
        parser.add_argument("--into", metavar="SLUG", help="Add to this existing team instead.")
        parser.add_argument("--escapes", type=int, help="Escapes in total, over all teams.")
        parser.add_argument("--years", type=float, default=3.0, help="Span of time (default 3).")
        parser.add_argument("--seed", type=int, help="Same seed (and --end), same data.")
        parser.add_argument("--batch", type=int, default=2000, help="Rows per INSERT.")
        parser.add_argument(
            "--end", type=end_time, help="Newest detection time, ISO (default: now)."
        )
        parser.add_argument(
            "--no-rollups", action="store_true", help="Skip the rollup recompute at the end."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        plan = plan_of(options, now=timezone.now())
        generate(plan, out=self.stdout, err=self.stderr, rollups=not options["no_rollups"])
