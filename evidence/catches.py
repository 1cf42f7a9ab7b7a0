"""Measured "caught before release" per release and stage (docs/metrics.md, "Test evidence").

For a release R and a stage S the measured count is the number of distinct tests of S with a
`MeasuredCatch` that named R (`release_version == R.version`), or that named none and was
fixed after the team's previous release and at or before R's `released_at`. Each test counts
once per release. A stage that ran (a processed `ResultUpload` naming R, or naming none with
`ran_at` in R's window) and caught nothing caught 0, measured; a stage with no upload at all
for R is unknown: no row.

Counts are written through escapes' service (`stage_catches_measured_set`), which never
overwrites a typed count and announces the change (releases_changed, measured), so the
dashboard's rollups follow as they do for typed counts.

Two ways in:
- the worker calls `measured_catches_refresh` after it has folded an upload (catches opened
  or closed, or a run that says a stage ran in a release's window);
- `on_releases_changed` (connected in EvidenceConfig.ready) recounts the releases a new or
  moved release changes the window of, and a release whose typed counts were cleared.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db.models import Case, Count, IntegerField, Q, QuerySet, Value, When

from escapes.release_selectors import releases_of_team
from escapes.selectors import stages_of_team
from escapes.services import stage_catches_measured_set
from evidence.models import MeasuredCatch, ResultUpload, UploadStatus


@dataclass(frozen=True)
class _Release:
    id: int
    version: str
    released_at: datetime


def _team_releases(team_id: int) -> list[_Release]:
    """The team's releases in (released_at, id) order: a window runs from the one before."""
    return [
        _Release(*row)
        for row in releases_of_team(team_id)
        .order_by("released_at", "id")
        .values_list("id", "version", "released_at")
    ]


def measured_catches_refresh(team_id: int, stage_ids: set[int], fixed_since: datetime) -> None:
    """Recount the measured catches of the releases a catch fixed at or after `fixed_since`
    in these stages can count for, and write them as StageCatch rows (source measured).

    Those are the releases at or after `fixed_since` (the first one's window holds it) and
    the releases that catches or uploads of these stages since then named. Run inside the
    caller's transaction."""
    if not stage_ids:
        return
    releases = _team_releases(team_id)
    affected = {r.id for r in releases if r.released_at >= fixed_since}
    named = set(
        MeasuredCatch.objects.filter(
            team_id=team_id, stage_id__in=stage_ids, fixed_at__gte=fixed_since
        )
        .exclude(release_version="")
        .values_list("release_version", flat=True)
        .distinct()
    ) | set(
        ResultUpload.objects.filter(
            team_id=team_id,
            stage_id__in=stage_ids,
            status=UploadStatus.DONE,
            ran_at__gte=fixed_since,
        )
        .exclude(release_version="")
        .values_list("release_version", flat=True)
        .distinct()
    )
    affected |= {r.id for r in releases if r.version in named}
    _recount(team_id, releases, affected, stage_ids)


def on_releases_changed(
    *,
    team_id: int,
    release_ids: Collection[int] = (),
    boundaries: Iterable[datetime] = (),
    measured: bool = False,
    **_: Any,
) -> None:
    """A release was created or moved, or its typed counts changed: recount it, and the
    release after each boundary (its window now starts or ends elsewhere)."""
    if measured or not (release_ids or boundaries):
        return
    releases = _team_releases(team_id)
    affected = set(release_ids)
    times = [r.released_at for r in releases]
    for moment in boundaries:
        # The releases at that moment, and the first one after them.
        start, end = bisect_left(times, moment), bisect_right(times, moment)
        affected |= {r.id for r in releases[start : end + 1]}
    stage_ids = set(stages_of_team(team_id).values_list("id", flat=True))
    _recount(team_id, releases, affected, stage_ids)


def _release_of(releases: list[_Release], affected: set[int], *, time_field: str) -> tuple[Case, Q]:
    """A CASE naming the affected release a catch (or upload) counts for, by its
    release_version or, naming none, by its time; and a filter that narrows the rows to
    those that may count for one of them (team and stage are filtered by the caller)."""
    whens: list[When] = []
    named: list[str] = []
    lows: list[datetime | None] = []
    highs: list[datetime] = []
    for index, release in enumerate(releases):
        if release.id not in affected:
            continue
        lower = releases[index - 1].released_at if index else None
        window = Q(release_version="", **{f"{time_field}__lte": release.released_at})
        if lower is not None:
            window &= Q(**{f"{time_field}__gt": lower})
        whens.append(When(release_version=release.version, then=Value(release.id)))
        whens.append(When(window, then=Value(release.id)))
        named.append(release.version)
        lows.append(lower)
        highs.append(release.released_at)
    span = Q(release_version="", **{f"{time_field}__lte": max(highs)})
    if None not in lows:
        span &= Q(**{f"{time_field}__gt": min(low for low in lows if low is not None)})
    return Case(*whens, default=None, output_field=IntegerField()), Q(
        release_version__in=named
    ) | span


def _recount(
    team_id: int, releases: list[_Release], affected: set[int], stage_ids: Collection[int]
) -> None:
    """Count the affected releases' measured catches per stage (two grouped queries) and
    write them."""
    affected &= {r.id for r in releases}
    if not affected or not stage_ids:
        return
    case, rows = _release_of(releases, affected, time_field="fixed_at")
    catches: QuerySet[MeasuredCatch] = MeasuredCatch.objects.filter(
        rows, team_id=team_id, stage_id__in=stage_ids
    )
    counted = {
        (row["release"], row["stage_id"]): row["n"]
        for row in catches.annotate(release=case)
        .filter(release__isnull=False)
        .values("release", "stage_id")
        .annotate(n=Count("test_id", distinct=True))
    }
    case, rows = _release_of(releases, affected, time_field="ran_at")
    ran = set(
        ResultUpload.objects.filter(
            rows, team_id=team_id, stage_id__in=stage_ids, status=UploadStatus.DONE
        )
        .annotate(release=case)
        .filter(release__isnull=False)
        .values_list("release", "stage_id")
        .distinct()
    )
    counts: dict[tuple[int, int], int | None] = {}
    for release_id in affected:
        for stage_id in stage_ids:
            key = (release_id, stage_id)
            n = counted.get(key)
            counts[key] = n if n else (0 if key in ran else None)
    stage_catches_measured_set(team_id=team_id, counts=counts)
