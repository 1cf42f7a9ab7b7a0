"""The options of `generate_escapes`, checked into a `Plan`, with plain words for what is wrong."""

import argparse
import random
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from django.core.management.base import CommandError

from demo.volume.knobs import MAX_BATCH, MAX_ESCAPES, MAX_TEAMS, MAX_YEARS


@dataclass(frozen=True, kw_only=True)
class Plan:
    teams: int  # teams to create; 0 with --into
    into: str
    escapes: int
    years: float
    seed: int
    batch: int
    end: datetime  # the newest detection time

    @property
    def start(self) -> datetime:
        return self.end - timedelta(days=365.25 * self.years)


def plan_of(options: dict[str, Any], *, now: datetime) -> Plan:
    """Check the options and say plainly what is wrong with them."""
    teams, into = options["teams"], options["into"] or ""
    if bool(teams) == bool(into):
        raise CommandError("Give either --teams N (new teams) or --into SLUG (an existing team).")
    _positive(teams, "--teams", upper=MAX_TEAMS)
    if options["escapes"] is None:
        raise CommandError("--escapes M is required: how many escapes to generate in total.")
    if not 0 <= options["escapes"] <= MAX_ESCAPES:
        raise CommandError(f"--escapes must be between 0 and {MAX_ESCAPES:,}.")
    _positive(options["years"], "--years", upper=MAX_YEARS)
    _positive(options["batch"], "--batch", upper=MAX_BATCH)
    end = options["end"] or now
    if end > now:
        raise CommandError("--end is in the future; escapes are detected in the past.")
    seed = (
        options["seed"] if options["seed"] is not None else random.SystemRandom().randrange(2**31)
    )
    return Plan(
        teams=teams or 0,
        into=into,
        escapes=options["escapes"],
        years=options["years"],
        seed=seed,
        batch=options["batch"],
        end=end,
    )


def end_time(value: str) -> datetime:
    """--end: an ISO date or date-time; a date means the end of that day (UTC)."""
    try:
        if len(value) == 10:
            return datetime.combine(date.fromisoformat(value), datetime.max.time(), UTC)
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not an ISO date or date-time.") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _positive(value: float | None, name: str, *, upper: float) -> None:
    if value is not None and not 0 < value <= upper:
        raise CommandError(f"{name} must be between 1 and {upper:,g}, got {value:g}.")
