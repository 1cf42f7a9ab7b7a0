"""A team's releases: weekly, at its weekday and hour, what their stages caught, and which
weeks went badly (the weights escapes are drawn to releases by)."""

import random
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from demo.volume.knobs import SHARE_RELEASES_WITH_CATCHES
from demo.volume.plan import Plan
from demo.volume.shapes import TeamShape
from escapes.models import Release, StageCatch
from escapes.release_selectors import releases_of_team


def releases_create(shape: TeamShape, plan: Plan, rng: random.Random) -> list[Release]:
    taken = set(releases_of_team(shape.team.pk).values_list("version", flat=True))
    releases = []
    for at in _weekly_times(shape, plan, rng):
        year, week, _ = at.astimezone(shape.team.tzinfo).isocalendar()
        version = f"{year}.{week:02d}.0"
        while version in taken:  # --into a team that already has this version
            version += "-gen"
        taken.add(version)
        releases.append(Release(team=shape.team, version=version, released_at=at))
    return Release.objects.bulk_create(releases)


def stage_catches_create(
    shape: TeamShape, releases: Sequence[Release], rng: random.Random, *, batch: int
) -> int:
    catches = []
    for release in releases:
        if rng.random() >= SHARE_RELEASES_WITH_CATCHES:
            continue
        for i, stage in enumerate(shape.stages):
            expected = shape.catch_scale * 18 / (i + 1) ** 1.3  # early stages catch the most
            caught = round(expected * rng.gammavariate(2, 0.5))
            catches.append(StageCatch(release=release, stage=stage, caught=caught))
    StageCatch.objects.bulk_create(catches, batch_size=batch)
    return len(catches)


def release_weights(
    shape: TeamShape, releases: Sequence[Release], plan: Plan, rng: random.Random
) -> list[float]:
    """Cumulative weights: a trend over the range, and bad weeks with many more escapes."""
    span = (plan.end - plan.start).total_seconds()
    cum, total = [], 0.0
    for release in releases:
        progress = max(0.0, (release.released_at - plan.start).total_seconds() / span)
        weight = (1 + shape.trend * progress) * rng.gammavariate(2, 0.5)
        if rng.random() < 0.05:
            weight *= 4
        total += weight
        cum.append(total)
    return cum


def _weekly_times(shape: TeamShape, plan: Plan, rng: random.Random) -> list[datetime]:
    """Release times: the team's weekday and hour, local time, a few weeks skipped."""
    tz = shape.team.tzinfo
    day = plan.start.astimezone(tz).date() - timedelta(days=7)  # one before the range
    day += timedelta(days=(shape.release_weekday - day.weekday()) % 7)
    times: list[datetime] = []
    while True:
        hour = shape.release_hour + rng.uniform(-1.5, 1.5)
        local = datetime.combine(day, datetime.min.time(), tz) + timedelta(hours=hour)
        at = local.astimezone(UTC)
        if at > plan.end:
            return times
        # Holidays and release freezes: the last weeks of December, and now and then.
        frozen = (day.month == 12 and day.day > 20) or rng.random() < 0.04
        if not frozen:
            times.append(at)
        day += timedelta(days=7)
