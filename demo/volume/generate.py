"""`generate()`: the steps of `manage.py generate_escapes` (the design is in __init__)."""

import random
import time
from dataclasses import dataclass

from django.contrib.auth.models import User
from django.core.management.base import OutputWrapper
from django.db import reset_queries, transaction

from demo.volume.draws import TeamRun, actions_for
from demo.volume.plan import Plan
from demo.volume.progress import Progress
from demo.volume.releases import release_weights, releases_create, stage_catches_create
from demo.volume.shapes import TeamShape, split
from demo.volume.writers import (
    actions_write,
    escapes_write,
    facilitator_user,
    given_times,
    rollups_recompute,
    teams_of,
)
from escapes.models import Escape
from retros.models import PreventativeAction, Retrospective
from teams.models import Team


@dataclass
class Counts:
    teams: int = 0
    releases: int = 0
    catches: int = 0
    escapes: int = 0
    retros: int = 0
    actions: int = 0

    def summary(self, *, took: float, seed: int) -> str:
        return (
            f"Generated {self.escapes:,} escapes in {self.teams} team(s): "
            f"{self.releases:,} releases, {self.catches:,} stage catches, "
            f"{self.retros:,} retros, {self.actions:,} preventative actions "
            f"in {took:.1f} s ({self.escapes / max(took, 1e-9):,.0f} escapes/s), "
            f"seed {seed}."
        )


def generate(plan: Plan, *, out: OutputWrapper, err: OutputWrapper, rollups: bool) -> None:
    """The teams; per team its releases, stage catches, escapes in batches, retros and
    actions; then the rollups. A summary line on `out`, the progress bar on `err`."""
    started = time.monotonic()
    teams = teams_of(plan)
    counts = Counts(teams=len(teams))
    per_team = split(plan.escapes, len(teams), random.Random(f"{plan.seed}:split"))
    progress = Progress(err, plan.escapes, what="escapes")
    for index, (team, count) in enumerate(zip(teams, per_team, strict=True)):
        team_generate(team, index=index, count=count, plan=plan, progress=progress, counts=counts)
    progress.close()
    out.write(counts.summary(took=time.monotonic() - started, seed=plan.seed))
    out.write(rollups_recompute() if rollups else "rollups: skipped (--no-rollups)")


def team_generate(
    team: Team, *, index: int, count: int, plan: Plan, progress: Progress, counts: Counts
) -> None:
    """One team, in one transaction: releases, stage catches, then `count` escapes."""
    # One generator per team, seeded by the seed and the team's place: a team's data does
    # not depend on how many escapes the other teams got.
    rng = random.Random(f"{plan.seed}:{index}")
    shape = TeamShape.draw(team, rng)
    facilitator = facilitator_user()
    with transaction.atomic(), given_times(Escape, PreventativeAction, Retrospective):
        releases = releases_create(shape, plan, rng)
        counts.releases += len(releases)
        counts.catches += stage_catches_create(shape, releases, rng, batch=plan.batch)
        if not releases or not count:
            return
        run = TeamRun(shape, plan, rng, releases, release_weights(shape, releases, plan, rng))
        escapes_in_batches(run, count, facilitator=facilitator, progress=progress, counts=counts)
        counts.retros += len(run.retros)


def escapes_in_batches(
    run: TeamRun, count: int, *, facilitator: User, progress: Progress, counts: Counts
) -> None:
    """--batch escapes at a time, each batch followed by the actions its retros agreed."""
    left = count
    while left:
        batch = [run.escape() for _ in range(min(run.plan.batch, left))]
        escapes_write(batch)
        actions = actions_for(run, batch, facilitator)
        actions_write(actions)
        # With DEBUG on (`make run`) Django keeps every query's SQL; a million rows of
        # INSERTs would hold hundreds of MB.
        reset_queries()
        counts.escapes += len(batch)
        counts.actions += len(actions)
        left -= len(batch)
        progress.add(len(batch))
