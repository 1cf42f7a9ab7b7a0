"""Reads behind the releases and stages pages, scoped to one team with their joins up front."""

from collections.abc import Collection
from dataclasses import dataclass, field

from django.db.models import Count, OuterRef, QuerySet
from django.http import Http404

from escapes.models import Escape, EscapeQuerySet, PipelineStage, Release, StageCatch
from escapes.selectors import stages_of_team
from teams.models import Team


@dataclass(frozen=True)
class ReleaseRow:
    """A release with its escape count and the defects each stage caught before it shipped."""

    release: Release
    escapes: int
    caught: list[int | None]  # one per stage, in pipeline order; None = not reported
    # Per stage, where its count came from: "typed", "measured" (CI test results) or None.
    sources: list[str | None] = field(default_factory=list)

    @property
    def stages(self) -> list[tuple[int | None, str | None]]:
        """(caught, source) per stage, in pipeline order."""
        return list(zip(self.caught, self.sources or [None] * len(self.caught), strict=True))

    @property
    def caught_total(self) -> int | None:
        known = [n for n in self.caught if n is not None]
        return sum(known) if known else None

    @property
    def escape_rate(self) -> float | None:
        """escapes ÷ (escapes + caught before release), docs/metrics.md; None without counts."""
        caught = self.caught_total
        if caught is None or self.escapes + caught == 0:
            return None
        return self.escapes / (self.escapes + caught)

    @property
    def escape_rate_percent(self) -> float | None:
        rate = self.escape_rate
        return None if rate is None else rate * 100


def stages_for_team(team: Team) -> list[PipelineStage]:
    return list(stages_of_team(team.pk))


def stages_with_usage(team: Team) -> QuerySet[PipelineStage]:
    """Stages in order, each with how many escapes and actions refer to it."""
    return (
        PipelineStage.objects.filter(team=team)
        .annotate(
            escape_count=Count("escapes", distinct=True),
            action_count=Count("actions", distinct=True),
        )
        .order_by("position", "id")
    )


def get_stage_for_team(team: Team, pk: int) -> PipelineStage:
    stage = PipelineStage.objects.select_related("team").filter(team=team, pk=pk).first()
    if stage is None:
        raise Http404("No such stage")
    return stage


def release_rows(team: Team, stages: list[PipelineStage]) -> list[ReleaseRow]:
    releases = (
        Release.objects.filter(team=team)
        .annotate(escape_count=Count("escapes"))
        .prefetch_related("stage_catches")
        .order_by("-released_at", "-id")
    )
    return [_row(release, stages) for release in releases]


def _row(release: Release, stages: list[PipelineStage]) -> ReleaseRow:
    by_stage = {c.stage_id: c for c in release.stage_catches.all()}
    found = [by_stage.get(stage.pk) for stage in stages]
    return ReleaseRow(
        release=release,
        escapes=release.escape_count,  # type: ignore[attr-defined]
        caught=[None if c is None else c.caught for c in found],
        sources=[None if c is None else c.source for c in found],
    )


def get_release_for_team(team: Team, pk: int) -> Release:
    release = (
        Release.objects.filter(team=team, pk=pk)
        .select_related("team")
        .annotate(escape_count=Count("escapes"))
        .prefetch_related("stage_catches")
        .first()
    )
    if release is None:
        raise Http404("No such release")
    return release


def release_row(release: Release, stages: list[PipelineStage]) -> ReleaseRow:
    """The row of a release fetched by `get_release_for_team`."""
    return _row(release, stages)


def release_escapes(release: Release) -> QuerySet[Escape]:
    return release.escapes.select_related("stage").order_by("-detected_at", "-id")


def releases_of_team(team_id: int | OuterRef) -> QuerySet[Release]:
    """Every release of the team, for another app to filter or read (an OuterRef works too)."""
    return Release.objects.filter(team_id=team_id)


def stage_catches_of_team(team_id: int) -> QuerySet[StageCatch]:
    """What each stage caught before each release of the team, for another app to read."""
    return StageCatch.objects.filter(release__team_id=team_id)


def stage_catches_of_release(release: Release) -> QuerySet[StageCatch]:
    return StageCatch.objects.filter(release=release)


def escapes_of_releases(release_ids: Collection[int]) -> EscapeQuerySet:
    """The escapes of these releases (the caller's, of one team: it scopes)."""
    return Escape.objects.filter(release_id__in=release_ids)
