"""What `generate()` writes besides the drawn rows' own batches: the teams, the retros'
facilitator, the rows with their given times, and the dashboards' rollups."""

import contextlib
import time
from collections.abc import Iterator, Sequence

from django.contrib.auth.models import User
from django.core.management.base import CommandError
from django.db import models

from demo.volume.draws import Generated
from demo.volume.knobs import FACILITATOR, TEAM_PREFIX, TIMEZONES
from demo.volume.plan import Plan
from escapes.models import Escape
from insights.rollups import rollups_recompute_all
from retros.models import PreventativeAction
from teams.models import Team
from teams.selectors import teams_all
from teams.services import team_create


def teams_of(plan: Plan) -> list[Team]:
    """The --into team, or --teams new ones."""
    if not plan.into:
        return teams_create(plan)
    team = teams_all().filter(slug=plan.into).first()
    if team is None:
        raise CommandError(f"Unknown team {plan.into!r}; create it first (create_team).")
    return [team]


def teams_create(plan: Plan) -> list[Team]:
    """Teams gen-001 … in turn through the time zones, each with its default stages."""
    slugs = [f"{TEAM_PREFIX}-{i:03d}" for i in range(1, plan.teams + 1)]
    taken = list(teams_all().filter(slug__in=slugs).values_list("slug", flat=True))
    if taken:
        raise CommandError(
            f"Team {taken[0]} already exists; use --into {taken[0]} to add to it, "
            "or start from an empty database."
        )
    return [
        team_create(
            name=f"Generated team {i:03d}",
            slug=slug,
            timezone_name=TIMEZONES[(i - 1) % len(TIMEZONES)],
        )
        for i, slug in enumerate(slugs, start=1)
    ]


def facilitator_user() -> User:
    user, created = User.objects.get_or_create(username=FACILITATOR)
    if created:
        user.set_unusable_password()
        user.save(update_fields=["password"])
    return user


def escapes_write(batch: Sequence[Generated]) -> None:
    Escape.objects.bulk_create([g.escape for g in batch])  # sets pks (RETURNING)


def actions_write(actions: list[PreventativeAction]) -> None:
    PreventativeAction.objects.bulk_create(actions)


@contextlib.contextmanager
def given_times(*model_classes: type[models.Model]) -> Iterator[None]:
    """Let bulk_create keep the created_at/updated_at we set: a register built today must
    still look three years old. Only this command's process writes while it runs."""
    fields = [
        f
        for m in model_classes
        for f in m._meta.concrete_fields
        if isinstance(f, models.DateField) and (f.auto_now or f.auto_now_add)
    ]
    saved = [(f, f.auto_now, f.auto_now_add) for f in fields]
    for f in fields:
        f.auto_now = f.auto_now_add = False
    try:
        yield
    finally:
        for f, auto_now, auto_now_add in saved:
            f.auto_now, f.auto_now_add = auto_now, auto_now_add


def rollups_recompute() -> str:
    """The dashboards read rollups, not escapes: bring every team's up to date."""
    started = time.monotonic()
    written = rollups_recompute_all()
    return f"rollups: {written:,} months written in {time.monotonic() - started:.1f} s"
