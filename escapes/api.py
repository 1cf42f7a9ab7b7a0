"""REST endpoints of the escape register: escapes, releases and the stage catches per release.

In the API a stage is named by its name and a release by its version, as a CI script knows
them; both must exist in the team. Every write goes through escapes.services, whose
field-keyed ValidationErrors come back as 422 in ninja's own error shape.
"""

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, Literal

from django.contrib.auth.models import User
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import IntegrityError, transaction
from django.db.models import Count, Prefetch, QuerySet
from django.http import Http404, HttpRequest
from django.shortcuts import get_object_or_404
from ninja import Field, Query, Router, Schema, Status
from ninja.errors import HttpError
from ninja.errors import ValidationError as NinjaValidationError

from config.api_schemas import ErrorOut
from escapes.models import (
    TEXT_MAX,
    CatchSource,
    Category,
    Escape,
    EscapeStatus,
    PipelineStage,
    Release,
    Severity,
    Source,
    StageCatch,
)
from escapes.selectors import EscapeFilters, escapes_for_team, get_escape_for_team
from escapes.services import (
    escape_build,
    escape_create,
    escape_update,
    release_create,
    release_move,
)
from escapes.services import stage_catches_report as stage_catches_report_service
from escapes.signals import escapes_changed_send
from teams.api import (
    ApiInput,
    AwareDatetime,
    Loc,
    PageQuery,
    api_user,
    error_items,
    membership_for,
    unprocessable,
)
from teams.models import Team

router = Router(tags=["escapes"])

BULK_MAX = 500
BODY: Loc = ("body", "payload")


class EscapeOut(Schema):
    id: int
    title: str
    description: str
    merged_at: datetime | None
    released_at: datetime | None
    detected_at: datetime
    resolved_at: datetime | None
    sealed_at: datetime | None
    category: Category | None = Field(description="null until classified")
    stage: str | None = Field(description="Name of the stage that should have caught it")
    severity: Severity
    component: str
    release: str | None = Field(description="Version of the release it shipped in")
    status: EscapeStatus
    tracker_key: str
    tracker_url: str
    source: Source
    external_id: str
    detection_deficit_seconds: float | None = Field(description="detected_at − merged_at")
    time_in_production_seconds: float | None = Field(description="detected_at − released_at")
    data_problems: list[str]
    created_at: datetime
    updated_at: datetime

    @staticmethod
    def resolve_category(obj: Escape) -> str | None:
        return obj.category or None

    @staticmethod
    def resolve_stage(obj: Escape) -> str | None:
        return obj.stage.name if obj.stage else None

    @staticmethod
    def resolve_release(obj: Escape) -> str | None:
        return obj.release.version if obj.release else None

    @staticmethod
    def resolve_detection_deficit_seconds(obj: Escape) -> float | None:
        deficit = obj.detection_deficit
        return None if deficit is None else deficit.total_seconds()

    @staticmethod
    def resolve_time_in_production_seconds(obj: Escape) -> float | None:
        span = obj.time_in_production
        return None if span is None else span.total_seconds()


class EscapePage(Schema):
    count: int
    limit: int
    offset: int
    items: list[EscapeOut]


StageName = Annotated[str, Field(max_length=50, description="A stage name of the team")]
Version = Annotated[str, Field(max_length=64, description="A release version of the team")]


class EscapeIn(ApiInput):
    title: str = Field(min_length=1, max_length=200)
    description: str = Field("", max_length=TEXT_MAX)
    merged_at: AwareDatetime | None = None
    released_at: AwareDatetime | None = None
    detected_at: AwareDatetime
    resolved_at: AwareDatetime | None = None
    category: Category | None = None
    stage: StageName | None = None
    severity: Severity = Severity.MEDIUM
    component: str = Field("", max_length=100)
    release: Version | None = None
    tracker_key: str = Field("", max_length=64)
    tracker_url: str = Field("", max_length=500)
    external_id: str = Field(
        "",
        max_length=128,
        description="Your id for it: sending the same external_id again returns the existing "
        "escape instead of a duplicate.",
    )


class EscapePatch(ApiInput):
    """Only the fields sent are changed; null clears an optional field."""

    title: str | None = Field(None, min_length=1, max_length=200)
    description: str | None = Field(None, max_length=TEXT_MAX)
    merged_at: AwareDatetime | None = None
    released_at: AwareDatetime | None = None
    detected_at: AwareDatetime | None = None
    resolved_at: AwareDatetime | None = None
    category: Category | None = None
    stage: StageName | None = None
    severity: Severity | None = None
    component: str | None = Field(None, max_length=100)
    release: Version | None = None
    tracker_key: str | None = Field(None, max_length=64)
    tracker_url: str | None = Field(None, max_length=500)


class EscapeQuery(PageQuery):
    category: Category | None = None
    stage: str | None = Field(None, description="Stage name")
    release: str | None = Field(None, description="Release version")
    severity: Severity | None = None
    component: str | None = None
    status: EscapeStatus | None = None
    q: str | None = Field(None, max_length=200, description="Search title, text, component, key")
    detected_after: AwareDatetime | None = None
    detected_before: AwareDatetime | None = None


class BulkIn(ApiInput):
    escapes: list[EscapeIn] = Field(min_length=1, max_length=BULK_MAX)


class BulkItemOut(Schema):
    index: int
    status: Literal["created", "existing"]
    escape: EscapeOut


class BulkOut(Schema):
    created: int
    existing: int
    items: list[BulkItemOut]


@dataclass
class TeamRefs:
    """The team's stages by name and the named releases by version, fetched once per request."""

    stages: dict[str, PipelineStage]
    releases: dict[str, Release]

    @classmethod
    def load(cls, team: Team, versions: Iterable[str | None]) -> "TeamRefs":
        wanted = {v for v in versions if v}
        releases = Release.objects.filter(team=team, version__in=wanted) if wanted else []
        return cls(
            stages={s.name: s for s in team.stages.all()},
            releases={r.version: r for r in releases},
        )

    def service_data(self, fields: dict[str, Any]) -> dict[str, Any]:
        """The API's names and values turned into what escapes.services takes."""
        data = dict(fields)
        errors: dict[str, str] = {}
        if data.get("stage") is not None:
            data["stage"] = self.stages.get(data["stage"])
            if data["stage"] is None:
                names = ", ".join(self.stages) or "none"
                errors["stage"] = f"Unknown stage for this team; its stages are: {names}."
        if data.get("release") is not None:
            data["release"] = self.releases.get(data["release"])
            if data["release"] is None:
                errors["release"] = "Unknown release version for this team; create it first."
        if errors:
            raise DjangoValidationError(errors)
        for field in ("category", "severity"):
            if data.get(field) is not None:
                data[field] = str(data[field].value)
        return data


def _find_by_external_id(team: Team, external_ids: Iterable[str]) -> dict[str, Escape]:
    ids = [i for i in external_ids if i]
    if not ids:
        return {}
    found = escapes_for_team(team).filter(source=Source.API, external_id__in=ids)
    return {e.external_id: e for e in found}


def _escape_queryset(team: Team, query: EscapeQuery) -> QuerySet[Escape]:
    errors: list[dict[str, Any]] = []
    stage = release = None
    if query.stage:
        stage = team.stages.filter(name=query.stage).first()
        if stage is None:
            errors.append({"type": "invalid", "loc": ["query", "stage"], "msg": "Unknown stage."})
    if query.release:
        release = Release.objects.filter(team=team, version=query.release).first()
        if release is None:
            errors.append(
                {"type": "invalid", "loc": ["query", "release"], "msg": "Unknown release."}
            )
    if errors:
        raise NinjaValidationError(errors)
    filters = EscapeFilters(
        category=query.category.value if query.category else "",
        stage=stage,
        release=release,
        severity=query.severity.value if query.severity else "",
        component=query.component or "",
        status=query.status.value if query.status else "",
        q=query.q or "",
    )
    qs = escapes_for_team(team, filters)
    if query.detected_after:
        qs = qs.filter(detected_at__gte=query.detected_after)
    if query.detected_before:
        qs = qs.filter(detected_at__lt=query.detected_before)
    return qs


@router.get("/{slug}/escapes", response=EscapePage, summary="The team's escapes, newest first")
def escape_list(request: HttpRequest, slug: str, query: Query[EscapeQuery]) -> dict[str, Any]:
    team = membership_for(request, slug).team
    qs = _escape_queryset(team, query)
    items = list(qs[query.offset : query.offset + query.limit])
    return {"count": qs.count(), "limit": query.limit, "offset": query.offset, "items": items}


@router.post(
    "/{slug}/escapes",
    response={200: EscapeOut, 201: EscapeOut},
    summary="Report an escape (200 with the existing one if its external_id was seen before)",
)
def escape_create_api(request: HttpRequest, slug: str, payload: EscapeIn) -> Status[Escape]:
    team = membership_for(request, slug, write=True).team
    existing = _find_by_external_id(team, [payload.external_id])
    if payload.external_id in existing:
        return Status(200, existing[payload.external_id])
    refs = TeamRefs.load(team, [payload.release])
    try:
        with transaction.atomic():
            escape = escape_create(
                team=team,
                data=refs.service_data(payload.model_dump(exclude={"external_id"})),
                source=Source.API,
                external_id=payload.external_id,
                created_by=api_user(request),
            )
    except DjangoValidationError as exc:
        raise unprocessable(exc, BODY) from None
    except IntegrityError:
        # Another request with the same external_id won the race: it is the same escape.
        raced = _find_by_external_id(team, [payload.external_id]).get(payload.external_id)
        if raced is None:
            raise
        return Status(200, raced)
    return Status(201, escape)


@router.get("/{slug}/escapes/{int:escape_id}", response=EscapeOut)
def escape_detail(request: HttpRequest, slug: str, escape_id: int) -> Escape:
    team = membership_for(request, slug).team
    return get_escape_for_team(team, escape_id)


@router.patch("/{slug}/escapes/{int:escape_id}", response=EscapeOut, summary="Change an escape")
def escape_patch(request: HttpRequest, slug: str, escape_id: int, payload: EscapePatch) -> Escape:
    team = membership_for(request, slug, write=True).team
    escape = get_escape_for_team(team, escape_id)
    fields = payload.model_dump(exclude_unset=True)
    refs = TeamRefs.load(team, [fields.get("release")])
    try:
        updated = escape_update(escape=escape, data=refs.service_data(fields), by=api_user(request))
    except DjangoValidationError as exc:
        raise unprocessable(exc, BODY) from None
    return get_escape_for_team(team, updated.pk)


@router.post(
    "/{slug}/escapes/bulk",
    response={200: BulkOut, 201: BulkOut, 409: ErrorOut},
    summary=f"Report up to {BULK_MAX} escapes at once: all are saved, or none",
)
def escape_bulk(request: HttpRequest, slug: str, payload: BulkIn) -> Status[dict[str, Any]]:
    team = membership_for(request, slug, write=True).team
    try:
        results = _bulk_create(team, payload.escapes, api_user(request))
    except IntegrityError:
        raise HttpError(
            409, "Another request reported some of these escapes at the same time; send again."
        ) from None
    created = sum(1 for status, _ in results if status == "created")
    items = [{"index": i, "status": s, "escape": e} for i, (s, e) in enumerate(results)]
    body = {"created": created, "existing": len(results) - created, "items": items}
    return Status(201 if created else 200, body)


def _bulk_create(team: Team, items: list[EscapeIn], user: User) -> list[tuple[str, Escape]]:
    """Create every new item or none: any error rolls the whole batch back."""
    existing = _find_by_external_id(team, (item.external_id for item in items))
    refs = TeamRefs.load(team, (item.release for item in items))
    errors: list[dict[str, Any]] = []
    first_index: dict[str, int] = {}
    results: list[tuple[str, Escape]] = []
    with transaction.atomic():
        for index, item in enumerate(items):
            loc = (*BODY, "escapes", index)
            if item.external_id in existing:
                results.append(("existing", existing[item.external_id]))
                continue
            if item.external_id and item.external_id in first_index:
                msg = f"Same external_id as item {first_index[item.external_id]}."
                errors.append({"type": "invalid", "loc": [*loc, "external_id"], "msg": msg})
                continue
            if item.external_id:
                first_index[item.external_id] = index
            kwargs: dict[str, Any] = {
                "team": team,
                "source": Source.API,
                "external_id": item.external_id,
                "created_by": user,
            }
            try:
                data = refs.service_data(item.model_dump(exclude={"external_id"}))
                # Once the batch is doomed, only validate the rest so every error is reported.
                if errors:
                    escape_build(data=data, **kwargs)
                else:
                    created = escape_create(data=data, announce=False, **kwargs)
                    results.append(("created", created))
            except DjangoValidationError as exc:
                errors.extend(error_items(exc, loc))
        if errors:
            raise NinjaValidationError(errors)  # inside the atomic block: rolls back
        # One recompute for the whole batch, on commit.
        escapes_changed_send(
            team=team, detected=[e.detected_at for s, e in results if s == "created"]
        )
    return results


# --- Releases and what each stage caught before them.


class ReleaseOut(Schema):
    version: str
    released_at: datetime
    escapes: int = Field(description="Escapes attributed to this release")
    stage_catches: dict[str, int] = Field(
        description="Defects each stage caught before the release shipped, by stage name"
    )
    stage_catch_sources: dict[str, CatchSource] = Field(
        description="Where each of those counts came from, by stage name: measured from CI "
        "test results, or typed (by a person, or reported through stage-catches)"
    )


class ReleasePage(Schema):
    count: int
    limit: int
    offset: int
    items: list[ReleaseOut]


class ReleaseIn(ApiInput):
    version: str = Field(min_length=1, max_length=64)
    released_at: AwareDatetime


class ReleasePatch(ApiInput):
    released_at: AwareDatetime = Field(
        description="When the release reached production: the windows between releases move, "
        "and the measured catches of it and its neighbours are counted again"
    )


Caught = Annotated[int, Field(ge=0, le=1_000_000_000)]


class StageCatchesIn(ApiInput):
    counts: dict[str, Caught] = Field(
        min_length=1,
        description="Defects caught before the release, by stage name: typed counts, which "
        "replace earlier counts, measured ones too",
        examples=[{"Unit": 50, "Integration": 25}],
    )


def _releases(team: Team) -> QuerySet[Release]:
    catches = StageCatch.objects.select_related("stage").order_by("stage__position", "stage_id")
    return (
        Release.objects.filter(team=team)
        .annotate(escape_count=Count("escapes"))
        .prefetch_related(Prefetch("stage_catches", queryset=catches))
        .order_by("-released_at", "-id")
    )


def _release_out(release: Release) -> dict[str, Any]:
    return {
        "version": release.version,
        "released_at": release.released_at,
        "escapes": release.escape_count,  # type: ignore[attr-defined]
        "stage_catches": {c.stage.name: c.caught for c in release.stage_catches.all()},
        "stage_catch_sources": {c.stage.name: c.source for c in release.stage_catches.all()},
    }


@router.get("/{slug}/releases", response=ReleasePage, summary="The team's releases, newest first")
def release_list(request: HttpRequest, slug: str, page: Query[PageQuery]) -> dict[str, Any]:
    team = membership_for(request, slug).team
    qs = _releases(team)
    items = [_release_out(r) for r in qs[page.offset : page.offset + page.limit]]
    return {"count": qs.count(), "limit": page.limit, "offset": page.offset, "items": items}


@router.post(
    "/{slug}/releases", response={201: ReleaseOut, 409: ErrorOut}, summary="Record a release"
)
def release_create_api(
    request: HttpRequest, slug: str, payload: ReleaseIn
) -> Status[dict[str, Any]]:
    team = membership_for(request, slug, write=True).team
    duplicate = HttpError(409, f"Release {payload.version!r} already exists in this team.")
    if Release.objects.filter(team=team, version=payload.version).exists():
        raise duplicate
    try:
        with transaction.atomic():
            release = release_create(
                team=team, version=payload.version, released_at=payload.released_at
            )
    except DjangoValidationError as exc:
        raise unprocessable(exc, BODY) from None
    except IntegrityError:
        raise duplicate from None
    return Status(201, _release_out(_releases(team).get(pk=release.pk)))


def _team_release(team: Team, version: str) -> Release:
    if "\x00" in version:  # no release has one, and PostgreSQL cannot even look for it
        raise Http404("No such release")
    return get_object_or_404(Release, team=team, version=version)


@router.patch(
    "/{slug}/releases/{version}",
    response=ReleaseOut,
    summary="Correct when a release reached production",
)
def release_patch(
    request: HttpRequest, slug: str, version: str, payload: ReleasePatch
) -> dict[str, Any]:
    team = membership_for(request, slug, write=True).team
    release = _team_release(team, version)
    try:
        release_move(release=release, released_at=payload.released_at, by=api_user(request))
    except DjangoValidationError as exc:
        raise unprocessable(exc, BODY) from None
    return _release_out(_releases(team).get(pk=release.pk))


@router.post(
    "/{slug}/releases/{version}/stage-catches",
    response=ReleaseOut,
    summary="Report how many defects each stage caught before a release shipped",
)
def stage_catches_report(
    request: HttpRequest, slug: str, version: str, payload: StageCatchesIn
) -> dict[str, Any]:
    team = membership_for(request, slug, write=True).team
    release = _team_release(team, version)
    stages = {s.name: s for s in team.stages.all()}
    unknown = [name for name in payload.counts if name not in stages]
    if unknown:
        names = ", ".join(stages) or "none"
        msg = f"Unknown stage for this team; its stages are: {names}."
        raise NinjaValidationError(
            [{"type": "invalid", "loc": [*BODY, "counts", n], "msg": msg} for n in unknown]
        )
    counts = {stages[name]: caught for name, caught in payload.counts.items()}
    try:
        stage_catches_report_service(release=release, counts=counts)
    except DjangoValidationError as exc:
        raise unprocessable(exc, (*BODY, "counts")) from None
    return _release_out(_releases(team).get(pk=release.pk))
