"""Reads of the escape register, scoped to the user's teams, with their joins done up front."""

from collections import defaultdict
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import date, timedelta

from django.db.models import F, OuterRef, Q, QuerySet
from django.shortcuts import get_object_or_404

from escapes.models import Escape, EscapeQuerySet, PipelineStage, Release
from escapes.timespans import local_midnight_in_utc
from teams.models import Team


@dataclass(frozen=True)
class EscapeFilters:
    """Validated filters of the register; None (or "") means "do not filter on this"."""

    category: str = ""
    stage: PipelineStage | None = None
    release: Release | None = None
    severity: str = ""
    component: str = ""
    status: str = ""
    q: str = ""
    # From the dashboard's links: "none" for category/component, no stage, a detection range
    # in the team's local dates, a kind of data problem, or the ids of the escapes behind a number.
    stage_none: bool = False
    detected_from: date | None = None
    detected_to: date | None = None
    problem: str = ""
    ids: tuple[int, ...] = ()
    team: Team | None = None  # the register of every team of the user: one of them


def escapes_for_team(team: Team, filters: EscapeFilters | None = None) -> EscapeQuerySet:
    """The team's escapes, newest detection first, ready to render as register rows."""
    return escapes_for_teams([team], filters)


def escapes_for_teams(
    teams: Sequence[Team], filters: EscapeFilters | None = None
) -> EscapeQuerySet:
    """The escapes of these teams (the user's: the caller scopes), filtered, newest first.

    Detection dates are local dates, each in its own team's time zone: teams are grouped by
    zone, so fifty teams in ten zones are ten windows.
    """
    qs = Escape.objects.filter(team__in=list(teams)).select_related("team", "stage", "release")
    if filters is None:
        return qs
    if filters.detected_from is not None or filters.detected_to is not None:
        qs = qs.filter(_detected_between(teams, filters.detected_from, filters.detected_to))
    if filters.team is not None:
        qs = qs.filter(team=filters.team)
    if filters.category:
        qs = qs.filter(category="" if filters.category == NONE else filters.category)
    if filters.stage is not None:
        qs = qs.filter(stage=filters.stage)
    if filters.stage_none:
        qs = qs.filter(stage__isnull=True)
    if filters.release is not None:
        qs = qs.filter(release=filters.release)
    if filters.severity:
        qs = qs.filter(severity=filters.severity)
    if filters.component:
        qs = qs.filter(component="" if filters.component == NONE else filters.component)
    if filters.problem:
        qs = qs.filter(PROBLEMS[filters.problem])
    if filters.ids:
        qs = qs.filter(pk__in=filters.ids)
    if filters.status:
        qs = qs.with_status(filters.status)
    if filters.q:
        qs = qs.filter(
            Q(title__icontains=filters.q)
            | Q(description__icontains=filters.q)
            | Q(component__icontains=filters.q)
            | Q(tracker_key__icontains=filters.q)
        )
    return qs


def _detected_between(teams: Sequence[Team], start: date | None, end: date | None) -> Q:
    """Detected on these local dates (inclusive; None: open), each team in its own zone."""
    by_zone: dict[str, list[Team]] = defaultdict(list)
    for team in teams:
        by_zone[team.timezone].append(team)
    window = Q(pk__in=[])
    lowers, uppers = [], []
    for zone_teams in by_zone.values():
        tz = zone_teams[0].tzinfo
        bounds = Q(team__in=zone_teams)
        if start is not None:
            lowers.append(local_midnight_in_utc(start, tz))
            bounds &= Q(detected_at__gte=lowers[-1])
        if end is not None:
            uppers.append(local_midnight_in_utc(end + timedelta(days=1), tz))
            bounds &= Q(detected_at__lt=uppers[-1])
        window |= bounds
    # The union of the zones' windows as one range too, which an index on detected_at can use.
    if lowers:
        window &= Q(detected_at__gte=min(lowers))
    if uppers:
        window &= Q(detected_at__lt=max(uppers))
    return window


NONE = "none"  # the filter value for "no category" / "no component"

# The register's view of insights.metrics.split_escapes: an escape detected before its release
# is that problem only.
_BEFORE_RELEASE = Q(released_at__isnull=False, released_at__gt=F("detected_at"))
PROBLEMS = {
    "negative_deficit": Q(merged_at__isnull=False, merged_at__gt=F("detected_at"))
    & ~_BEFORE_RELEASE,
    "detected_before_release": _BEFORE_RELEASE,
    "missing_merged_at": Q(merged_at__isnull=True) & ~_BEFORE_RELEASE,
}


def team_components(team: Team) -> list[str]:
    """The distinct, non-empty components the team's escapes name, for the filter select."""
    return list(
        Escape.objects.filter(team=team)
        .exclude(component="")
        .order_by("component")
        .values_list("component", flat=True)
        .distinct()
    )


def escapes_of_team(team_id: int | OuterRef) -> EscapeQuerySet:
    """Every escape of the team, for another app to filter or aggregate (any OuterRef to a
    team's pk works too, for an Exists)."""
    return Escape.objects.filter(team_id=team_id)


def stages_of_team(team_id: int) -> QuerySet[PipelineStage]:
    """The team's stages in pipeline order: the one definition of that order."""
    return PipelineStage.objects.filter(team_id=team_id).order_by("position", "id")


def stages_of_teams(team_ids: Collection[int]) -> QuerySet[PipelineStage]:
    return PipelineStage.objects.filter(team_id__in=team_ids)


def team_stages(team: Team) -> QuerySet[PipelineStage]:
    return stages_of_team(team.pk)


def team_releases(team: Team) -> QuerySet[Release]:
    return Release.objects.filter(team=team).order_by("-released_at", "-id")


def get_escape_for_team(team: Team, pk: int) -> Escape:
    """The team's escape, or 404: an escape id of another team is indistinguishable from none."""
    return get_object_or_404(
        Escape.objects.select_related("team", "stage", "release", "created_by"), team=team, pk=pk
    )


def get_escape_detail(team: Team, pk: int) -> Escape:
    """Like `get_escape_for_team`, with the retros it is in and its actions prefetched."""
    # By relation names: retros builds on escapes, so escapes does not import its models.
    qs = Escape.objects.select_related("team", "stage", "release", "created_by").prefetch_related(
        "retro_items__retro", "actions__retro", "actions__stage", "actions__owner"
    )
    return get_object_or_404(qs, team=team, pk=pk)


def sealed_forerunners(team_id: int, escapes: Sequence[Escape]) -> dict[int, Escape]:
    """escape id -> the earlier escape that makes it a re-escape (docs/metrics.md, "Re-escapes"):
    of the same team, with the same non-empty component and the same category, sealed before
    this one was detected; the first sealed of them. Escapes that are no re-escape are absent.

    One query whatever the number of escapes (none when none has a component and category).
    The dashboard counts the same pattern from its rollups (insights/rollup_blocks.py).
    """
    keyed = [e for e in escapes if e.component and e.category]
    if not keyed:
        return {}
    candidates = list(
        escapes_of_team(team_id)
        .filter(
            sealed_at__isnull=False,
            sealed_at__lt=max(e.detected_at for e in keyed),
            component__in={e.component for e in keyed},
            category__in={e.category for e in keyed},
        )
        .order_by("sealed_at", "id")
    )
    found: dict[int, Escape] = {}
    for escape in keyed:
        for earlier in candidates:
            if (
                earlier.pk != escape.pk
                and earlier.component == escape.component
                and earlier.category == escape.category
                and earlier.sealed_at is not None
                and earlier.sealed_at < escape.detected_at
            ):
                found[escape.pk] = earlier
                break
    return found
