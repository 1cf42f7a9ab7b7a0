"""The metric core: one definition of each number of docs/metrics.md, for every page and the API.

Pure functions over plain values do the arithmetic; `team_metrics` fetches only the columns
it needs (a fixed number of queries however many escapes there are) and hands them over.

Choices this module makes where docs/metrics.md leaves room:

- A date range is a pair of inclusive local dates in the team's time zone; an escape is in
  it when its `detected_at` falls between local midnight of `start` and local midnight of
  the day after `end`.
- Stage catches (the containment denominator) come from releases whose `released_at` falls
  in the range; the escapes a stage let through are the range's escapes attributed to it.
  The weakest stage is judged by containment only when it is known for every stage that
  let an escape through; otherwise by the number of escapes.
- Each span is judged on its own: an escape detected before it was merged still counts and
  still has a time in production; only its deficit is left out. An escape detected before
  its release is no escape at all: it is left out of every count, and only listed as a
  data problem (not also as "merge time unknown" or "negative deficit").
- A release's escape rate counts all of its escapes, whenever they were detected.
"""

import math
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Literal, NamedTuple
from zoneinfo import ZoneInfo

from django.db.models import Count, F
from django.utils import timezone

from escapes.models import Category, Release
from escapes.release_selectors import (
    escapes_of_releases,
    stage_catches_of_release,
    stage_catches_of_team,
)
from escapes.selectors import escapes_of_team, stages_of_team
from escapes.timespans import DATA_PROBLEM_LABELS, NO_VALUE, format_duration, local_midnight_in_utc
from teams.models import Team

UNCLASSIFIED = "unclassified"
UNATTRIBUTED = "Unattributed"
LOWEST_CONTAINMENT = "lowest containment"
MOST_ESCAPES = "most escapes"
DEFAULT_RANGE_DAYS = 90


# --- Durations --------------------------------------------------------------------------


@dataclass(frozen=True)
class DurationSummary:
    """Mean, median and P90 of a set of durations; all None when there are none."""

    n: int
    mean: timedelta | None
    median: timedelta | None
    p90: timedelta | None

    @property
    def mean_display(self) -> str:
        return format_duration(self.mean)

    @property
    def median_display(self) -> str:
        return format_duration(self.median)

    @property
    def p90_display(self) -> str:
        return format_duration(self.p90)


EMPTY_SUMMARY = DurationSummary(n=0, mean=None, median=None, p90=None)


def percentile_cont(sorted_values: Sequence[timedelta], fraction: float) -> timedelta:
    """Linear interpolation between closest ranks, exactly as PostgreSQL's percentile_cont."""
    if not sorted_values:
        raise ValueError("percentile of no values")
    if not 0 <= fraction <= 1:
        raise ValueError(f"fraction must be within [0, 1], got {fraction}")
    pos = fraction * (len(sorted_values) - 1)
    lower = math.floor(pos)
    if lower >= len(sorted_values) - 1:
        return sorted_values[-1]
    low, high = sorted_values[lower], sorted_values[lower + 1]
    return low + (high - low) * (pos - lower)


def mean_median_p90(values: Iterable[timedelta]) -> DurationSummary:
    ordered = sorted(values)
    if not ordered:
        return EMPTY_SUMMARY
    return DurationSummary(
        n=len(ordered),
        mean=sum(ordered, timedelta()) / len(ordered),
        median=percentile_cont(ordered, 0.5),
        p90=percentile_cont(ordered, 0.9),
    )


def format_percent(value: float | None) -> str:
    """A fraction as a percentage with one decimal: 0.6667 -> "66.7 %"."""
    return NO_VALUE if value is None else f"{value * 100:.1f} %"


# --- Ratios -----------------------------------------------------------------------------


def containment(caught: int, escaped: int) -> float | None:
    """caught ÷ (caught + escaped); None when the stage saw no defects at all."""
    total = caught + escaped
    return caught / total if total else None


def escape_rate(escaped: int, caught: int) -> float | None:
    """escapes ÷ (escapes + defects caught before release); None with no defects at all."""
    total = escaped + caught
    return escaped / total if total else None


def release_escape_rate(release: Release) -> float | None:
    """The release's escape rate, or None when no stage reported what it caught."""
    catches = list(stage_catches_of_release(release).values_list("caught", flat=True))
    if not catches:
        return None
    return escape_rate(_release_escape_counts([release.pk]).get(release.pk, 0), sum(catches))


def _release_escape_counts(release_ids: Sequence[int]) -> dict[int, int]:
    """Escapes per release; a defect detected before its release is not one."""
    rows = (
        escapes_of_releases(release_ids)
        .exclude(released_at__gt=F("detected_at"))
        .order_by()
        .values("release_id")
        .annotate(n=Count("id"))
        .values_list("release_id", "n")
    )
    return dict(rows)


# --- Date ranges ------------------------------------------------------------------------


@dataclass(frozen=True)
class DateRange:
    """Inclusive local dates in a team's time zone."""

    start: date
    end: date
    tz: ZoneInfo

    def __post_init__(self) -> None:
        if self.start > self.end:
            raise ValueError(f"range starts ({self.start}) after it ends ({self.end})")

    @property
    def start_utc(self) -> datetime:
        return local_midnight_in_utc(self.start, self.tz)

    @property
    def end_utc(self) -> datetime:
        """Exclusive: local midnight after `end`."""
        if self.end == date.max:
            return datetime.max.replace(tzinfo=UTC)
        return local_midnight_in_utc(self.end + timedelta(days=1), self.tz)

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1


def default_range(team: Team, *, now: datetime | None = None) -> DateRange:
    """The last 90 local days of the team, today included."""
    today = (now or timezone.now()).astimezone(team.tzinfo).date()
    return DateRange(today - timedelta(days=DEFAULT_RANGE_DAYS - 1), today, team.tzinfo)


# --- Per-escape classification -----------------------------------------------------------


class EscapeRow(NamedTuple):
    id: int
    merged_at: datetime | None
    released_at: datetime | None
    detected_at: datetime
    category: str
    stage_id: int | None


ESCAPE_ROW_FIELDS = ("id", "merged_at", "released_at", "detected_at", "category", "stage_id")


@dataclass(frozen=True)
class DataProblem:
    kind: str
    label: str
    escape_ids: tuple[int, ...]

    @property
    def count(self) -> int:
        return len(self.escape_ids)


@dataclass(frozen=True)
class DataProblems:
    """Escape ids per kind of data problem, ascending."""

    negative_deficit: tuple[int, ...] = ()
    detected_before_release: tuple[int, ...] = ()
    missing_merged_at: tuple[int, ...] = ()

    @property
    def counts(self) -> dict[str, int]:
        return {
            "negative_deficit": len(self.negative_deficit),
            "detected_before_release": len(self.detected_before_release),
            "missing_merged_at": len(self.missing_merged_at),
        }

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    @property
    def kinds(self) -> tuple[DataProblem, ...]:
        return tuple(
            DataProblem(kind, label, getattr(self, kind))
            for kind, label in DATA_PROBLEM_LABELS.items()
        )


def split_escapes(rows: Iterable[EscapeRow]) -> tuple[list[EscapeRow], DataProblems]:
    """The real escapes, and the data problems found on the way."""
    valid: list[EscapeRow] = []
    before_release: list[int] = []
    negative: list[int] = []
    missing: list[int] = []
    for row in rows:
        if row.released_at is not None and row.detected_at < row.released_at:
            before_release.append(row.id)
            continue
        valid.append(row)
        if row.merged_at is None:
            missing.append(row.id)
        elif row.detected_at < row.merged_at:
            negative.append(row.id)
    problems = DataProblems(
        negative_deficit=tuple(sorted(negative)),
        detected_before_release=tuple(sorted(before_release)),
        missing_merged_at=tuple(sorted(missing)),
    )
    return valid, problems


def deficits_of(rows: Iterable[EscapeRow]) -> list[timedelta]:
    """Known, non-negative detection deficits (detected_at − merged_at)."""
    spans = (r.detected_at - r.merged_at for r in rows if r.merged_at is not None)
    return [span for span in spans if span >= timedelta(0)]


def times_in_production_of(rows: Iterable[EscapeRow]) -> list[timedelta]:
    """Known, non-negative times in production before detection (detected_at − released_at)."""
    spans = (r.detected_at - r.released_at for r in rows if r.released_at is not None)
    return [span for span in spans if span >= timedelta(0)]


# --- Categories and stages -----------------------------------------------------------------


@dataclass(frozen=True)
class CategoryCount:
    key: str
    label: str
    count: int


def count_by_category(rows: Iterable[EscapeRow]) -> tuple[CategoryCount, ...]:
    """All three categories and "unclassified", zeros included, in the order of `Category`."""
    counts = Counter(r.category if r.category in Category.values else UNCLASSIFIED for r in rows)
    result = [CategoryCount(c.value, str(c.label), counts[c.value]) for c in Category]
    result.append(CategoryCount(UNCLASSIFIED, "Unclassified", counts[UNCLASSIFIED]))
    return tuple(result)


# Where a caught count came from (docs/metrics.md, "Typed and measured counts"): measured from
# CI test results, typed by a person, or both (a sum over releases or stages of each kind).
CaughtSource = Literal["measured", "typed", "both"]
CAUGHT_SOURCE_LABELS: dict[str, str] = {
    "measured": "measured",
    "typed": "typed",
    "both": "measured and typed",
}


def caught_source(measured: Iterable[bool]) -> CaughtSource | None:
    """The source of a sum of counts, from whether each was measured; None: no count."""
    kinds = set(measured)
    if not kinds:
        return None
    if len(kinds) == 2:
        return "both"
    return "measured" if True in kinds else "typed"


@dataclass(frozen=True)
class StageStat:
    """A stage (or "Unattributed", stage_id None) and the escapes it should have caught."""

    stage_id: int | None
    name: str
    escaped: int
    caught: int | None
    containment: float | None
    median_deficit: timedelta | None
    # The mean and P90 of the same deficits, shown beside the median (docs/metrics.md).
    mean_deficit: timedelta | None = None
    p90_deficit: timedelta | None = None
    caught_source: CaughtSource | None = None  # None where nothing was reported

    @property
    def caught_source_display(self) -> str:
        return CAUGHT_SOURCE_LABELS[self.caught_source] if self.caught_source else NO_VALUE

    @property
    def median_deficit_display(self) -> str:
        return format_duration(self.median_deficit)

    @property
    def mean_deficit_display(self) -> str:
        return format_duration(self.mean_deficit)

    @property
    def p90_deficit_display(self) -> str:
        return format_duration(self.p90_deficit)

    @property
    def containment_display(self) -> str:
        return format_percent(self.containment)


def stage_stats(
    rows: Sequence[EscapeRow],
    stages: Sequence[tuple[int, str]],
    caught_by_stage: Mapping[int, int],
    sources: Mapping[int, CaughtSource] | None = None,
) -> tuple[StageStat, ...]:
    """Every stage in pipeline order, then "Unattributed"; zeros included.

    `caught_by_stage` holds only stages whose catches were reported: a missing stage has
    caught None (unknown), which is not the same as 0.
    """
    known = {stage_id for stage_id, _ in stages}
    by_stage: dict[int | None, list[EscapeRow]] = defaultdict(list)
    for row in rows:
        by_stage[row.stage_id if row.stage_id in known else None].append(row)
    result = []
    for stage_id, name in [*stages, (None, UNATTRIBUTED)]:
        escaped = by_stage.get(stage_id, [])
        caught = caught_by_stage.get(stage_id) if stage_id is not None else None
        deficit = mean_median_p90(deficits_of(escaped))
        result.append(
            StageStat(
                stage_id=stage_id,
                name=name,
                escaped=len(escaped),
                caught=caught,
                containment=None if caught is None else containment(caught, len(escaped)),
                median_deficit=deficit.median,
                mean_deficit=deficit.mean,
                p90_deficit=deficit.p90,
                caught_source=(sources or {}).get(stage_id)
                if stage_id and caught is not None
                else None,
            )
        )
    return tuple(result)


def _longer_median_first(stat: StageStat) -> float:
    """Sort key: the longer median deficit first; an unknown median last."""
    return -stat.median_deficit.total_seconds() if stat.median_deficit is not None else math.inf


def weakest_stage(stats: Sequence[StageStat]) -> tuple[StageStat | None, str | None]:
    """The leakiest stage and why it was picked; (None, None) when no stage let one through.

    Lowest containment when it is known for every stage that let an escape through (were
    one of them unknown, the comparison would favour the stages that report nothing);
    otherwise the most escapes. Ties: more escapes, then the longer median deficit, then
    the earlier stage.
    """
    candidates = [s for s in stats if s.stage_id is not None]
    leaking = [s for s in candidates if s.escaped > 0]
    if not leaking:
        return None, None
    if all(s.containment is not None for s in leaking):
        contained = [s for s in candidates if s.containment is not None]
        pick = min(contained, key=lambda s: (s.containment, -s.escaped, _longer_median_first(s)))
        return pick, LOWEST_CONTAINMENT
    return min(leaking, key=lambda s: (-s.escaped, _longer_median_first(s))), MOST_ESCAPES


# --- Releases ---------------------------------------------------------------------------


@dataclass(frozen=True)
class ReleaseEscapeRate:
    release_id: int
    version: str
    released_at: datetime
    escaped: int
    caught: int

    @property
    def escape_rate(self) -> float | None:
        return escape_rate(self.escaped, self.caught)

    @property
    def detection_rate(self) -> float | None:
        rate = self.escape_rate
        return None if rate is None else 1 - rate

    @property
    def escape_rate_display(self) -> str:
        return format_percent(self.escape_rate)

    @property
    def detection_rate_display(self) -> str:
        return format_percent(self.detection_rate)


class CatchRow(NamedTuple):
    release_id: int
    version: str
    released_at: datetime
    stage_id: int
    caught: int
    source: str = "typed"  # escapes.models.CatchSource: typed, or measured from CI results


def release_escape_rates(
    catches: Sequence[CatchRow], escapes_by_release: Mapping[int, int]
) -> tuple[ReleaseEscapeRate, ...]:
    """One row per release with reported catches, newest release first."""
    releases: dict[int, tuple[str, datetime]] = {}
    caught: Counter[int] = Counter()
    for row in catches:
        releases[row.release_id] = (row.version, row.released_at)
        caught[row.release_id] += row.caught
    rates = [
        ReleaseEscapeRate(rid, version, at, escapes_by_release.get(rid, 0), caught[rid])
        for rid, (version, at) in releases.items()
    ]
    return tuple(sorted(rates, key=lambda r: (r.released_at, r.release_id), reverse=True))


# --- The team's metrics -----------------------------------------------------------------


@dataclass(frozen=True)
class TeamMetrics:
    range: DateRange
    escapes_total: int
    deficit: DurationSummary
    deficit_known: int
    deficit_of: int
    time_in_production: DurationSummary
    by_category: tuple[CategoryCount, ...]
    by_stage: tuple[StageStat, ...]
    weakest_stage: StageStat | None
    weakest_reason: str | None
    data_problems: DataProblems
    release_escape_rates: tuple[ReleaseEscapeRate, ...]

    @property
    def stages(self) -> tuple[StageStat, ...]:
        """The team's own stages, without "Unattributed"."""
        return tuple(s for s in self.by_stage if s.stage_id is not None)


def build_team_metrics(
    date_range: DateRange,
    rows: Iterable[EscapeRow],
    stages: Sequence[tuple[int, str]],
    catches: Sequence[CatchRow],
    escapes_by_release: Mapping[int, int],
) -> TeamMetrics:
    """All of a team's metrics from plain rows; no database access."""
    valid, problems = split_escapes(rows)
    deficit = mean_median_p90(deficits_of(valid))
    caught_by_stage: Counter[int] = Counter()
    measured: dict[int, list[bool]] = defaultdict(list)
    for catch in catches:
        caught_by_stage[catch.stage_id] += catch.caught
        measured[catch.stage_id].append(catch.source == "measured")
    sources = {sid: src for sid, m in measured.items() if (src := caught_source(m))}
    by_stage = stage_stats(valid, stages, caught_by_stage, sources)
    weakest, reason = weakest_stage(by_stage)
    return TeamMetrics(
        range=date_range,
        escapes_total=len(valid),
        deficit=deficit,
        deficit_known=deficit.n,
        deficit_of=len(valid),
        time_in_production=mean_median_p90(times_in_production_of(valid)),
        by_category=count_by_category(valid),
        by_stage=by_stage,
        weakest_stage=weakest,
        weakest_reason=reason,
        data_problems=problems,
        release_escape_rates=release_escape_rates(catches, escapes_by_release),
    )


def team_metrics(team: Team, start: date, end: date) -> TeamMetrics:
    """The team's metrics over the inclusive local dates [start, end]; at most 4 queries.

    Raises ValueError when start is after end.
    """
    date_range = DateRange(start, end, team.tzinfo)
    lower, upper = date_range.start_utc, date_range.end_utc
    stages = list(stages_of_team(team.pk).values_list("id", "name"))
    in_range = escapes_of_team(team.pk).filter(detected_at__gte=lower, detected_at__lt=upper)
    rows = [EscapeRow(*values) for values in in_range.order_by().values_list(*ESCAPE_ROW_FIELDS)]
    catches = [
        CatchRow(*values)
        for values in stage_catches_of_team(team.pk)
        .filter(release__released_at__gte=lower, release__released_at__lt=upper)
        .order_by()
        .values_list(
            "release_id", "release__version", "release__released_at", "stage_id", "caught", "source"
        )
    ]
    release_ids = sorted({c.release_id for c in catches})
    escapes_by_release = _release_escape_counts(release_ids) if release_ids else {}
    return build_team_metrics(date_range, rows, stages, catches, escapes_by_release)
