"""Every write to escapes, releases and stage results.

Validation lives here so that a form, a CSV row, the API and a tracker webhook all refuse
the same bad input with the same message. Errors are `ValidationError`s keyed by field.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from audit.models import Action
from audit.services import record
from escapes.models import (
    CatchSource,
    Category,
    Escape,
    PipelineStage,
    Release,
    Severity,
    Source,
    StageCatch,
)
from escapes.signals import escapes_changed_send, releases_changed_send
from teams.models import Team

# Clocks drift; a time a few minutes ahead of ours is not "in the future".
FUTURE_TOLERANCE = timedelta(minutes=5)

ESCAPE_FIELDS = (
    "title",
    "description",
    "merged_at",
    "released_at",
    "detected_at",
    "resolved_at",
    "category",
    "stage",
    "severity",
    "component",
    "release",
    "tracker_key",
    "tracker_url",
)


@dataclass(frozen=True)
class EscapeTimes:
    merged_at: datetime | None
    released_at: datetime | None
    detected_at: datetime | None
    resolved_at: datetime | None


def validate_escape_times(times: EscapeTimes, *, now: datetime | None = None) -> None:
    """Raise a ValidationError naming each time that cannot be right.

    A defect detected before its release is not an escape (docs/metrics.md), and one detected
    before the change that introduced it was merged is a data error.
    """
    now = now or timezone.now()
    errors: dict[str, list[str]] = {}
    for field in ("merged_at", "released_at", "detected_at", "resolved_at"):
        value = getattr(times, field)
        if value is not None and value > now + FUTURE_TOLERANCE:
            errors.setdefault(field, []).append("This time is in the future.")
    detected = times.detected_at
    if detected is None:
        errors.setdefault("detected_at", []).append("The detection time is required.")
    else:
        if times.merged_at is not None and detected < times.merged_at:
            errors.setdefault("detected_at", []).append(
                "Detected before the change was merged: check both times."
            )
        if times.released_at is not None and detected < times.released_at:
            errors.setdefault("detected_at", []).append(
                "Detected before its release reached production: that is not an escape."
            )
        if times.resolved_at is not None and times.resolved_at < detected:
            errors.setdefault("resolved_at", []).append("Resolved before it was detected.")
    if times.merged_at and times.released_at and times.released_at < times.merged_at:
        errors.setdefault("released_at", []).append("Released before the change was merged.")
    if errors:
        raise ValidationError(errors)


def _check_team_refs(team: Team, data: dict[str, Any]) -> None:
    errors: dict[str, str] = {}
    stage = data.get("stage")
    if stage is not None and stage.team_id != team.pk:
        errors["stage"] = "Unknown stage for this team."
    release = data.get("release")
    if release is not None and release.team_id != team.pk:
        errors["release"] = "Unknown release for this team."
    if data.get("category") and data["category"] not in Category.values:
        errors["category"] = f"Unknown category; choose one of {', '.join(Category.values)}."
    if data.get("severity") and data["severity"] not in Severity.values:
        errors["severity"] = f"Unknown severity; choose one of {', '.join(Severity.values)}."
    if errors:
        raise ValidationError(errors)


def _validated(escape: Escape) -> Escape:
    """Run field validation (lengths, URL) and the time rules on an unsaved state."""
    if escape.released_at is None and escape.release is not None:
        escape.released_at = escape.release.released_at
    errors: dict[str, list[str]] = {}
    try:
        escape.full_clean(exclude=["team", "stage", "release", "created_by"])
    except ValidationError as exc:
        errors.update(exc.message_dict)
    try:
        validate_escape_times(
            EscapeTimes(
                escape.merged_at, escape.released_at, escape.detected_at, escape.resolved_at
            )
        )
    except ValidationError as exc:
        for field, messages in exc.message_dict.items():
            errors.setdefault(field, []).extend(
                m for m in messages if m not in errors.get(field, [])
            )
    if errors:
        raise ValidationError(errors)
    return escape


def escape_build(
    *,
    team: Team,
    data: dict[str, Any],
    source: str = Source.FORM,
    external_id: str = "",
    created_by: User | None = None,
) -> Escape:
    """An unsaved, validated escape: for previews (CSV) and for `escape_create`."""
    unknown = set(data) - set(ESCAPE_FIELDS)
    if unknown:
        raise ValidationError({f: "Unknown field." for f in sorted(unknown)})
    _check_team_refs(team, data)
    escape = Escape(team=team, source=source, external_id=external_id, created_by=created_by)
    for field, value in data.items():
        setattr(escape, field, "" if value is None and field in _TEXT_FIELDS else value)
    return _validated(escape)


_TEXT_FIELDS = {"description", "category", "component", "tracker_key", "tracker_url"}


def escape_create(
    *,
    team: Team,
    data: dict[str, Any],
    source: str = Source.FORM,
    external_id: str = "",
    created_by: User | None = None,
    announce: bool = True,
) -> Escape:
    """Save a new escape. `announce=False`: the caller sends escapes_changed once for a batch."""
    escape = escape_build(
        team=team, data=data, source=source, external_id=external_id, created_by=created_by
    )
    escape.save()
    if announce:
        escapes_changed_send(team=team, detected=[escape.detected_at])
    return escape


# The fields the numbers are built from (insights/ keeps rollups of them): a change to one of
# these is announced as escapes_changed, with the old and the new detection time.
COUNTED_FIELDS = (
    "merged_at",
    "released_at",
    "detected_at",
    "category",
    "stage_id",
    "severity",
    "component",
    "release_id",
    "sealed_at",
)


# The times an audit entry is written for when they change (audit.Action.ESCAPE_TIMES_EDITED).
TIME_FIELDS = ("merged_at", "released_at", "detected_at", "resolved_at")


def _target(escape: Escape) -> str:
    return f"Escape #{escape.pk} “{escape.title}”"


@transaction.atomic
def escape_update(
    *, escape: Escape, data: dict[str, Any], by: User | None = None, via: str = "Leakseal"
) -> Escape:
    """Apply a partial update; nothing is written unless every field is valid.

    A change of its times is written to the team's audit trail, as made by `by` (or, without
    one, by `via`: e.g. "Jira intake").
    """
    unknown = set(data) - set(ESCAPE_FIELDS)
    if unknown:
        raise ValidationError({f: "Unknown field." for f in sorted(unknown)})
    _check_team_refs(escape.team, data)
    locked = Escape.objects.select_for_update().select_related("team").get(pk=escape.pk)
    before = {f: getattr(locked, f) for f in COUNTED_FIELDS}
    times_before = {f: getattr(locked, f) for f in TIME_FIELDS}
    for field, value in data.items():
        setattr(locked, field, "" if value is None and field in _TEXT_FIELDS else value)
    _validated(locked)
    locked.save()
    if any(getattr(locked, f) != value for f, value in before.items()):
        escapes_changed_send(team=locked.team, detected=[before["detected_at"], locked.detected_at])
    # The times the edit set: a release given sets released_at when the escape had none, but
    # a released_at filled in on a save that named neither is no one's edit.
    edited = set(data) | ({"released_at"} if "release" in data else set())
    times = {
        field: {"from": old, "to": getattr(locked, field)}
        for field, old in times_before.items()
        if field in edited and getattr(locked, field) != old
    }
    if times:
        record(
            team=locked.team,
            actor=by,
            actor_name=via,
            action=Action.ESCAPE_TIMES_EDITED,
            target=_target(locked),
            changes=times,
        )
    return locked


@transaction.atomic
def escape_delete(*, escape: Escape, by: User | None = None) -> None:
    """Delete the escape (and what hangs on it: its retro items, whys, actions), announce it to
    the rollups and write what it was to the team's audit trail."""
    locked = Escape.objects.select_for_update().select_related("team").get(pk=escape.pk)
    record(
        team=locked.team,
        actor=by,
        action=Action.ESCAPE_DELETED,
        target=_target(locked),
        changes={
            "title": locked.title,
            "detected_at": locked.detected_at,
            **{f: getattr(locked, f) for f in ("merged_at", "released_at", "resolved_at")},
            "source": locked.source,
        },
    )
    team, detected = locked.team, locked.detected_at
    locked.delete()
    escapes_changed_send(team=team, detected=[detected])


def escape_seal(*, escape: Escape, at: datetime) -> Escape:
    """Mark the escape sealed (a guardrail against it is done), once: a later call keeps `at`.

    Call inside a transaction. A small write of its own because Escape's `sealed_at` is not one
    of the fields escape_update takes (no form may set it).
    """
    locked = Escape.objects.select_for_update().get(pk=escape.pk)
    if locked.sealed_at is None:
        locked.sealed_at = at
        locked.save(update_fields=["sealed_at", "updated_at"])
        # Re-escapes are counted from sealed times.
        escapes_changed_send(team=locked.team, detected=[locked.detected_at])
    return locked


def escape_unseal(*, escape: Escape) -> Escape:
    """Undo `escape_seal`: its guardrail was reopened. Call inside a transaction."""
    locked = Escape.objects.select_for_update().get(pk=escape.pk)
    if locked.sealed_at is not None:
        locked.sealed_at = None
        locked.save(update_fields=["sealed_at", "updated_at"])
        escapes_changed_send(team=locked.team, detected=[locked.detected_at])
    return locked


def escape_classify(*, escape: Escape, category: str, stage: PipelineStage | None) -> Escape:
    return escape_update(escape=escape, data={"category": category, "stage": stage})


def release_create(*, team: Team, version: str, released_at: datetime) -> Release:
    _check_release_time(released_at)
    release = Release(team=team, version=version.strip(), released_at=released_at)
    release.full_clean()
    release.save()
    releases_changed_send(team_id=team.pk, release_ids=[release.pk], boundaries=[released_at])
    return release


def _check_release_time(released_at: datetime) -> None:
    if released_at > timezone.now() + FUTURE_TOLERANCE:
        raise ValidationError({"released_at": "This time is in the future."})


@transaction.atomic
def release_move(
    *, release: Release, released_at: datetime, by: User | None = None, via: str = "Leakseal"
) -> Release:
    """Correct when a release reached production, in the team's audit trail. The windows
    between releases move with it: the measured catches of it and its neighbours are
    recounted (releases_changed)."""
    _check_release_time(released_at)
    locked = Release.objects.select_for_update().select_related("team").get(pk=release.pk)
    before = locked.released_at
    if before == released_at:
        return locked
    locked.released_at = released_at
    locked.save(update_fields=["released_at"])
    record(
        team=locked.team,
        actor=by,
        actor_name=via,
        action=Action.RELEASE_MOVED,
        target=f"Release {locked.version}",
        changes={"released_at": {"from": before, "to": released_at}},
    )
    releases_changed_send(
        team_id=locked.team_id, release_ids=[locked.pk], boundaries=[before, released_at]
    )
    return locked


@transaction.atomic
def stage_catches_report(*, release: Release, counts: dict[PipelineStage, int]) -> list[StageCatch]:
    """Record how many defects each stage caught before the release, as typed counts: they
    replace earlier counts, measured ones too, and no measured recount overwrites them."""
    errors = {}
    for stage, caught in counts.items():
        if stage.team_id != release.team_id:
            errors[stage.name] = "Unknown stage for this team."
        elif caught < 0:
            errors[stage.name] = "A count cannot be negative."
    if errors:
        raise ValidationError(errors)
    result = []
    for stage, caught in counts.items():
        catch, _ = StageCatch.objects.update_or_create(
            release=release,
            stage=stage,
            defaults={"caught": caught, "source": CatchSource.TYPED},
        )
        result.append(catch)
    releases_changed_send(team_id=release.team_id, release_ids=[release.pk])
    return result


@transaction.atomic
def stage_catches_typed_clear(*, release: Release, stage_ids: list[int]) -> int:
    """Drop the typed counts of these stages: the measured count, if any, takes over (the
    recount follows releases_changed). Measured rows stay. Returns how many were dropped."""
    dropped, _ = StageCatch.objects.filter(
        release=release, stage_id__in=stage_ids, source=CatchSource.TYPED
    ).delete()
    if dropped:
        releases_changed_send(team_id=release.team_id, release_ids=[release.pk])
    return dropped


def stage_catches_measured_set(*, team_id: int, counts: dict[tuple[int, int], int | None]) -> int:
    """Write measured counts, by (release id, stage id), of releases of the team: a number
    writes or updates the measured row, None deletes it (unknown). A typed row is left as it
    is, also one typed meanwhile (the writes are conditional on the source). Sends
    releases_changed (measured) when something changed; returns how many rows changed.
    Call inside the caller's transaction."""
    if not counts:
        return 0
    release_ids = {r for r, _ in counts}
    stage_ids = {s for _, s in counts}
    if Release.objects.filter(pk__in=release_ids).exclude(team_id=team_id).exists():
        raise ValueError("Measured counts for another team's release.")
    if PipelineStage.objects.filter(pk__in=stage_ids).exclude(team_id=team_id).exists():
        raise ValueError("Measured counts for another team's stage.")
    existing = {
        (r, s): (pk, caught, source)
        for pk, r, s, caught, source in StageCatch.objects.filter(
            release_id__in=release_ids, stage_id__in=stage_ids
        ).values_list("pk", "release_id", "stage_id", "caught", "source")
    }
    measured = StageCatch.objects.filter(source=CatchSource.MEASURED)
    create, drop, changed = [], [], 0
    for key, n in counts.items():
        row = existing.get(key)
        if row is not None and row[2] != CatchSource.MEASURED:
            continue  # typed: never overwritten
        if n is None:
            if row is not None:
                drop.append(row[0])
        elif row is None:
            create.append(
                StageCatch(release_id=key[0], stage_id=key[1], caught=n, source="measured")
            )
        elif row[1] != n:
            changed += measured.filter(pk=row[0]).update(caught=n, updated_at=timezone.now())
    if drop:
        changed += measured.filter(pk__in=drop).delete()[0]
    if create:
        # A typed row written since the read above wins: the measured one is not inserted.
        StageCatch.objects.bulk_create(create, ignore_conflicts=True)
        changed += len(create)
    if changed:
        releases_changed_send(team_id=team_id, release_ids=sorted(release_ids), measured=True)
    return changed
