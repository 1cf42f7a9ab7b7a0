"""Reads of the escape register, always scoped to one team, with their joins done up front."""

from dataclasses import dataclass

from django.db.models import Prefetch, Q, QuerySet
from django.shortcuts import get_object_or_404

from escapes.models import Escape, EscapeQuerySet, PipelineStage, Release
from retros.models import PreventativeAction, RetroEscape
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


def escapes_for_team(team: Team, filters: EscapeFilters | None = None) -> EscapeQuerySet:
    """The team's escapes, newest detection first, ready to render as register rows."""
    qs = Escape.objects.filter(team=team).select_related("stage", "release")
    if filters is None:
        return qs
    if filters.category:
        qs = qs.filter(category=filters.category)
    if filters.stage is not None:
        qs = qs.filter(stage=filters.stage)
    if filters.release is not None:
        qs = qs.filter(release=filters.release)
    if filters.severity:
        qs = qs.filter(severity=filters.severity)
    if filters.component:
        qs = qs.filter(component=filters.component)
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


def team_components(team: Team) -> list[str]:
    """The distinct, non-empty components the team's escapes name, for the filter select."""
    return list(
        Escape.objects.filter(team=team)
        .exclude(component="")
        .order_by("component")
        .values_list("component", flat=True)
        .distinct()
    )


def team_stages(team: Team) -> QuerySet[PipelineStage]:
    return PipelineStage.objects.filter(team=team).order_by("position", "id")


def team_releases(team: Team) -> QuerySet[Release]:
    return Release.objects.filter(team=team).order_by("-released_at", "-id")


def get_escape_for_team(team: Team, pk: int) -> Escape:
    """The team's escape, or 404: an escape id of another team is indistinguishable from none."""
    return get_object_or_404(
        Escape.objects.select_related("team", "stage", "release", "created_by"), team=team, pk=pk
    )


def get_escape_detail(team: Team, pk: int) -> Escape:
    """Like `get_escape_for_team`, with the retros it is in and its actions prefetched."""
    qs = Escape.objects.select_related("team", "stage", "release", "created_by").prefetch_related(
        Prefetch(
            "retro_items",
            queryset=RetroEscape.objects.select_related("retro").order_by("-retro__created_at"),
        ),
        Prefetch(
            "actions",
            queryset=PreventativeAction.objects.select_related("retro", "stage", "owner"),
        ),
    )
    return get_object_or_404(qs, team=team, pk=pk)
