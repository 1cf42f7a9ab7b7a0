"""`manage.py generate_escapes --teams N --escapes M`: realistic volume for demos and benchmarks.

    manage.py generate_escapes --teams 50 --escapes 1000000 --years 3 --seed 1
    manage.py generate_escapes --into checkout --escapes 5000

What "realistic" means here (each number is a knob below, chosen to look like a busy
organisation, not measured from one):

- Teams gen-001, gen-002, … in a mix of time zones with the default stages, or `--into` one
  existing team. Escapes are spread over the teams unevenly (a lognormal weight per team).
- Every team ships weekly (a fixed weekday, office hours, a few weeks skipped); most releases
  report StageCatch counts. Escapes belong to a release, more of them in a team's bad weeks,
  with a trend over the years.
- Time in production and merge-to-release lead are lognormal, so the Detection Deficit runs
  from hours to weeks with a long tail; weekend detections mostly surface on Monday.
- Data problems as imports bring them: ~8 % without `merged_at`, ~0.5 % merged after they
  were detected (negative deficit), ~0.3 % detected before their release (not an escape).
- Categories, stages, severities and 5-15 components per team are skewed, each team its own
  way; recent escapes are more often unclassified.
- Retros of a team's month hold preventative actions for the more severe resolved escapes;
  an escape is sealed when its action is done, some actions stay open past their due date.

Rows are written with bulk_create in batches, bypassing escapes.services on purpose: the
services refuse exactly the data problems a realistic register contains. The same --seed
(and --end) gives the same data. At the end the dashboards' rollups are recomputed.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import random
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from django.contrib.auth.models import User
from django.core.management.base import BaseCommand, CommandError, CommandParser, OutputWrapper
from django.db import models, reset_queries, transaction
from django.utils import timezone

from escapes.models import Category, Escape, PipelineStage, Release, Severity, Source, StageCatch
from insights.rollups import rollups_recompute_all
from retros.models import (
    ActionKind,
    Phase,
    PreventativeAction,
    PushState,
    Retrospective,
    Tracker,
)
from teams.models import Team
from teams.services import team_create

H = timedelta(hours=1)
D = timedelta(days=1)
TEAM_PREFIX = "gen"
FACILITATOR = "generate-escapes"  # the retros' facilitator; an account nobody can sign in to
MAX_TEAMS = 999
MAX_ESCAPES = 10_000_000
MAX_YEARS = 20

TIMEZONES = (
    "Europe/Berlin",
    "America/New_York",
    "Asia/Kolkata",
    "UTC",
    "America/Los_Angeles",
    "Europe/London",
    "Asia/Tokyo",
    "Australia/Sydney",
    "America/Sao_Paulo",
    "Europe/Warsaw",
)
COMPONENTS = (
    "checkout", "payments", "search", "auth", "catalog", "cart", "notifications", "billing",
    "accounts", "pricing", "inventory", "shipping", "reporting", "api-gateway", "mobile-app",
    "admin", "recommendations", "orders", "ledger", "onboarding", "media", "i18n",
)  # fmt: skip
FAULTS = (
    "timeout under load",
    "wrong currency rounding",
    "500 on empty input",
    "stale cache after deploy",
    "race between two writers",
    "time-zone off by one day",
    "missing translation key",
    "retry creates duplicates",
    "permission check skipped",
    "pagination drops the last item",
    "crash on older clients",
    "config differs from staging",
    "flaky alert silenced",
    "memory leak in worker",
    "wrong default after migration",
)
SEVERITY_WEIGHTS: dict[str, float] = {
    Severity.LOW: 30,
    Severity.MEDIUM: 42,
    Severity.HIGH: 22,
    Severity.CRITICAL: 6,
}
CATEGORY_WEIGHTS: dict[str, float] = {
    Category.COVERAGE_GAP: 50,
    Category.ENVIRONMENT_MISMATCH: 28,
    Category.FLAKINESS: 22,
}
SOURCE_WEIGHTS: dict[str, float] = {
    Source.API: 45,
    Source.JIRA: 25,
    Source.FORM: 15,
    Source.CSV: 10,
    Source.AZURE_DEVOPS: 5,
}
ACTION_KINDS: dict[str, str] = {
    Category.COVERAGE_GAP: ActionKind.NEW_TEST,
    Category.ENVIRONMENT_MISMATCH: ActionKind.ENVIRONMENT_PARITY,
    Category.FLAKINESS: ActionKind.FLAKE_FIX,
}
# Retros are held for the escapes that hurt; the share of each severity that gets an action.
RETRO_SHARE: dict[str, float] = {
    Severity.CRITICAL: 0.8,
    Severity.HIGH: 0.4,
    Severity.MEDIUM: 0.12,
    Severity.LOW: 0.05,
}

SHARE_NO_MERGE = 0.08
SHARE_NEGATIVE = 0.005
SHARE_BEFORE_RELEASE = 0.003
SHARE_RELEASES_WITH_CATCHES = 0.85
RECENT = 21 * D  # younger escapes are often not yet classified in a retro


# --- Options -----------------------------------------------------------------------------


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


def _positive(value: float | None, name: str, *, upper: float) -> None:
    if value is not None and not 0 < value <= upper:
        raise CommandError(f"{name} must be between 1 and {upper:,g}, got {value:g}.")


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
    _positive(options["batch"], "--batch", upper=100_000)
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


def _end_time(value: str) -> datetime:
    """--end: an ISO date or date-time; a date means the end of that day (UTC)."""
    try:
        if len(value) == 10:
            return datetime.combine(date.fromisoformat(value), datetime.max.time(), UTC)
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not an ISO date or date-time.") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


# --- Progress ----------------------------------------------------------------------------


class Progress:
    """A one-line progress bar on stderr; on a non-terminal one line per tenth."""

    def __init__(self, out: OutputWrapper, total: int, *, what: str) -> None:
        self.out, self.total, self.what = out, total, what
        self.done = 0
        self.started = time.monotonic()
        self.tty = out.isatty()
        self._shown = -1.0  # when a tty was last drawn / the last tenth printed

    def add(self, n: int) -> None:
        self.done += n
        share = self.done / self.total if self.total else 1.0
        if self.tty:
            now = time.monotonic()
            if now - self._shown >= 0.2 or self.done >= self.total:
                self._shown = now
                bar = "#" * int(share * 30)
                self.out.write(f"\r[{bar:<30}] {self._status(share)}", ending="")
                self.out.flush()
        elif math.floor(share * 10) > self._shown:
            self._shown = math.floor(share * 10)
            self.out.write(self._status(share))

    def close(self) -> None:
        if self.tty:
            self.out.write("")

    def _status(self, share: float) -> str:
        elapsed = time.monotonic() - self.started
        return f"{share:4.0%} {self.done:,}/{self.total:,} {self.what}, {elapsed:.0f} s"


# --- The shape of one team ---------------------------------------------------------------


def _weighted(rng: random.Random, weights: dict[Any, float], noise: float) -> dict[Any, float]:
    """The base weights, each scaled by a gamma draw: every team skewed its own way."""
    return {k: w * rng.gammavariate(1 / noise, noise) for k, w in weights.items()}


@dataclass
class Choice:
    """Fast repeated weighted choice from fixed weights."""

    values: list[Any]
    cum: list[float]

    @classmethod
    def of(cls, weights: dict[Any, float]) -> Choice:
        values = list(weights)
        cum, total = [], 0.0
        for value in values:
            total += weights[value]
            cum.append(total)
        return cls(values, cum)

    def pick(self, rng: random.Random) -> Any:
        return rng.choices(self.values, cum_weights=self.cum)[0]


@dataclass
class TeamShape:
    team: Team
    stages: list[PipelineStage]
    components: Choice
    categories: Choice
    stage_choice: Choice
    severities: Choice
    sources: Choice
    release_weekday: int
    release_hour: float
    trend: float  # escapes per release at the end relative to the start, minus 1
    catch_scale: float

    @classmethod
    def draw(cls, team: Team, rng: random.Random) -> TeamShape:
        stages = list(team.stages.order_by("position", "id"))
        picked = rng.sample(COMPONENTS, rng.randint(5, 15))
        # Zipf-like: the first components of a team get most of its escapes.
        components = {c: 1 / (i + 1) ** 1.1 for i, c in enumerate(picked)}
        stage_weights: dict[Any, float] = {s: 0.45 / (i + 1) ** 0.7 for i, s in enumerate(stages)}
        stage_weights[None] = 0.05
        return cls(
            team=team,
            stages=stages,
            components=Choice.of(components),
            categories=Choice.of(_weighted(rng, CATEGORY_WEIGHTS, 0.4)),
            stage_choice=Choice.of(_weighted(rng, stage_weights, 0.5)),
            severities=Choice.of(_weighted(rng, SEVERITY_WEIGHTS, 0.2)),
            sources=Choice.of(_weighted(rng, SOURCE_WEIGHTS, 0.5)),
            release_weekday=rng.randrange(4),  # Monday to Thursday; nobody ships on Friday
            release_hour=rng.uniform(9, 16),
            trend=rng.uniform(-0.5, 0.8),
            catch_scale=rng.lognormvariate(0, 0.5),
        )


def split(total: int, parts: int, rng: random.Random) -> list[int]:
    """`total` over `parts` unevenly (lognormal weights), largest remainders rounding."""
    weights = [rng.lognormvariate(0, 0.8) for _ in range(parts)]
    scale = total / sum(weights)
    shares = [w * scale for w in weights]
    counts = [math.floor(s) for s in shares]
    by_remainder = sorted(range(parts), key=lambda i: shares[i] - counts[i], reverse=True)
    for i in by_remainder[: total - sum(counts)]:
        counts[i] += 1
    return counts


# --- Releases and what their stages caught -----------------------------------------------


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


def releases_create(shape: TeamShape, plan: Plan, rng: random.Random) -> list[Release]:
    taken = set(Release.objects.filter(team=shape.team).values_list("version", flat=True))
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


# --- Escapes -----------------------------------------------------------------------------


@dataclass
class ActionPlan:
    created_at: datetime
    done_at: datetime | None
    due_date: date


@dataclass
class Generated:
    escape: Escape
    action: ActionPlan | None = None


@dataclass
class TeamRun:
    shape: TeamShape
    plan: Plan
    rng: random.Random
    releases: list[Release]
    release_cum: list[float]
    serial: int = 0
    retros: dict[tuple[int, int], Retrospective] = field(default_factory=dict)

    def escape(self) -> Generated:
        rng, shape, end = self.rng, self.shape, self.plan.end
        release = rng.choices(self.releases, cum_weights=self.release_cum)[0]
        released = release.released_at
        detected = self._detected(released)
        roll = rng.random()
        if roll < SHARE_BEFORE_RELEASE:
            # Reported against a release it was found before: an import's mistake.
            detected = released - H * rng.lognormvariate(math.log(6), 0.8)
        merged: datetime | None = released - H * min(rng.lognormvariate(math.log(24), 1.0), 1440)
        if roll > 1 - SHARE_NO_MERGE:
            merged = None
        elif roll > 1 - SHARE_NO_MERGE - SHARE_NEGATIVE:
            merged = detected + H * rng.lognormvariate(math.log(10), 1.0)  # the fix's merge
        resolved = None
        if rng.random() < 0.9:
            resolved = detected + H * rng.lognormvariate(math.log(20), 1.2)
            resolved = resolved if resolved <= end else None
        severity = shape.severities.pick(rng)
        category = shape.categories.pick(rng)
        unclassified = 0.6 if end - detected < RECENT else 0.06
        stage = shape.stage_choice.pick(rng)
        if rng.random() < unclassified:
            category, stage = "", None
        component = shape.components.pick(rng)
        self.serial += 1
        escape = Escape(
            team=shape.team,
            title=f"{component}: {rng.choice(FAULTS)} (#{self.serial})",
            merged_at=merged,
            released_at=released,
            detected_at=detected,
            resolved_at=resolved,
            category=category,
            stage=stage,
            severity=severity,
            component=component,
            release=release,
            source=shape.sources.pick(rng),
            created_at=detected + timedelta(minutes=rng.uniform(1, 240)),
        )
        generated = Generated(escape)
        retro = resolved is not None and end - resolved > RECENT
        if retro and resolved is not None and rng.random() < RETRO_SHARE[severity]:
            generated.action = self._action(escape, resolved)
        escape.updated_at = max(
            t for t in (escape.created_at, resolved, escape.sealed_at) if t is not None
        )
        return generated

    def _detected(self, released: datetime) -> datetime:
        """Time in production is lognormal: hours to weeks; weekend finds wait for Monday."""
        rng, end = self.rng, self.plan.end
        detected = released + H * min(rng.lognormvariate(math.log(36), 1.5), 24 * 150)
        if detected > end:
            detected = released + (end - released) * rng.random()
        local = detected.astimezone(self.shape.team.tzinfo)
        if local.weekday() >= 5 and rng.random() < 0.75:
            monday = local.date() + timedelta(days=7 - local.weekday())
            at = datetime.combine(monday, datetime.min.time(), local.tzinfo)
            moved = (at + H * rng.uniform(8, 12)).astimezone(UTC)
            detected = moved if moved <= end else detected
        return detected

    def _action(self, escape: Escape, resolved: datetime) -> ActionPlan:
        """The retro's preventative action; the escape is sealed when it is done."""
        rng, end = self.rng, self.plan.end
        created = min(resolved + D * rng.lognormvariate(math.log(3), 0.6), end)
        due = (created + 21 * D).date()
        done = None
        if rng.random() < 0.8:
            done = created + D * rng.lognormvariate(math.log(14), 0.7)
            done = done if done <= end else None
        escape.sealed_at = done
        return ActionPlan(created_at=created, done_at=done, due_date=due)

    def retro_for(self, at: datetime, facilitator: User) -> Retrospective:
        """The team's retro of that month (created when first needed)."""
        local = at.astimezone(self.shape.team.tzinfo)
        key = (local.year, local.month)
        if key not in self.retros:
            retro = Retrospective(
                team=self.shape.team,
                title=f"Escapes of {local:%B %Y}",
                facilitator=facilitator,
                phase=Phase.CLOSED,
                created_at=at,
                closed_at=min(at + 2 * H, self.plan.end),
            )
            retro.save()
            self.retros[key] = retro
        return self.retros[key]


def actions_for(run: TeamRun, batch: Sequence[Generated], facilitator: User) -> list[Any]:
    actions = []
    for item in batch:
        plan, escape = item.action, item.escape
        if plan is None:
            continue
        pushed = run.rng.random() < 0.88
        state = PushState.PUSHED if pushed else run.rng.choice([PushState.DRAFT, PushState.FAILED])
        actions.append(
            PreventativeAction(
                retro=run.retro_for(plan.created_at, facilitator),
                escape=escape,
                kind=ACTION_KINDS.get(escape.category, ActionKind.PROCESS_CHANGE),
                stage=escape.stage,
                title=f"Guardrail for {escape.title}"[:200],
                due_date=plan.due_date,
                tracker=Tracker.JIRA if state != PushState.DRAFT else Tracker.NONE,
                push_state=state,
                external_key=f"GEN-{escape.pk}" if pushed else "",
                done_at=plan.done_at,
                created_at=plan.created_at,
                updated_at=plan.done_at or plan.created_at,
            )
        )
    return actions


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


# --- The command -------------------------------------------------------------------------


@dataclass
class Counts:
    teams: int = 0
    releases: int = 0
    catches: int = 0
    escapes: int = 0
    retros: int = 0
    actions: int = 0


def teams_create(plan: Plan, rng: random.Random) -> list[Team]:
    slugs = [f"{TEAM_PREFIX}-{i:03d}" for i in range(1, plan.teams + 1)]
    taken = list(Team.objects.filter(slug__in=slugs).values_list("slug", flat=True))
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


def team_generate(
    team: Team, *, index: int, count: int, plan: Plan, progress: Progress, counts: Counts
) -> None:
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
        left = count
        while left:
            batch = [run.escape() for _ in range(min(plan.batch, left))]
            Escape.objects.bulk_create([g.escape for g in batch])  # sets pks (RETURNING)
            actions = actions_for(run, batch, facilitator)
            PreventativeAction.objects.bulk_create(actions)
            # With DEBUG on (`make run`) Django keeps every query's SQL; a million rows of
            # INSERTs would hold hundreds of MB.
            reset_queries()
            counts.escapes += len(batch)
            counts.actions += len(actions)
            left -= len(batch)
            progress.add(len(batch))
        counts.retros += len(run.retros)


def rollups_recompute() -> str:
    """The dashboards read rollups, not escapes: bring every team's up to date."""
    started = time.monotonic()
    written = rollups_recompute_all()
    return f"rollups: {written:,} months written in {time.monotonic() - started:.1f} s"


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
            "--end", type=_end_time, help="Newest detection time, ISO (default: now)."
        )
        parser.add_argument(
            "--no-rollups", action="store_true", help="Skip the rollup recompute at the end."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        plan = plan_of(options, now=timezone.now())
        started = time.monotonic()
        if plan.into:
            team = Team.objects.filter(slug=plan.into).first()
            if team is None:
                raise CommandError(f"Unknown team {plan.into!r}; create it first (create_team).")
            teams = [team]
        else:
            teams = teams_create(plan, random.Random(plan.seed))
        counts = Counts(teams=len(teams))
        per_team = split(plan.escapes, len(teams), random.Random(f"{plan.seed}:split"))
        progress = Progress(self.stderr, plan.escapes, what="escapes")
        for index, (team, count) in enumerate(zip(teams, per_team, strict=True)):
            team_generate(
                team, index=index, count=count, plan=plan, progress=progress, counts=counts
            )
        progress.close()
        took = time.monotonic() - started
        self.stdout.write(
            f"Generated {counts.escapes:,} escapes in {counts.teams} team(s): "
            f"{counts.releases:,} releases, {counts.catches:,} stage catches, "
            f"{counts.retros:,} retros, {counts.actions:,} preventative actions "
            f"in {took:.1f} s ({counts.escapes / max(took, 1e-9):,.0f} escapes/s), "
            f"seed {plan.seed}."
        )
        if options["no_rollups"]:
            self.stdout.write("rollups: skipped (--no-rollups)")
        else:
            self.stdout.write(rollups_recompute())
