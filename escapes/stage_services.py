"""Writes to a team's pipeline stages and to the per-stage catch counts of a release.

Every write locks the team's stage rows first, so two admins reordering at once queue
instead of interleaving their position updates.
"""

from typing import Literal

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import ProtectedError

from escapes.models import PipelineStage, Release
from escapes.services import stage_catches_report, stage_catches_typed_clear
from escapes.signals import releases_changed_send
from teams.models import Team

STAGE_NAME_MAX = PipelineStage._meta.get_field("name").max_length or 50
DEFAULT_STAGES = ("Unit", "Integration", "E2E")


def stages_create_default(*, team: Team) -> list[PipelineStage]:
    """A new team's stages: Unit, Integration, E2E, in that order."""
    return PipelineStage.objects.bulk_create(
        PipelineStage(team=team, name=name, position=i) for i, name in enumerate(DEFAULT_STAGES)
    )


def stages_create(*, team: Team, names: list[str]) -> list[PipelineStage]:
    """A new team's stages as its creator listed them, in order (at least one).

    Refused as a whole with a ValidationError on `stages` naming the first name at fault.
    """
    clean: list[str] = []
    for raw in names:
        name = " ".join(raw.split())
        if not name:
            continue
        if len(name) > STAGE_NAME_MAX:
            raise ValidationError(
                {
                    "stages": f"“{name[:20]}…” is too long: keep a stage name to "
                    f"{STAGE_NAME_MAX} characters."
                }
            )
        if any(c.casefold() == name.casefold() for c in clean):
            raise ValidationError({"stages": f"“{name}” is listed twice; name each stage once."})
        clean.append(name)
    if not clean:
        raise ValidationError({"stages": "List at least one stage, e.g. Unit."})
    return PipelineStage.objects.bulk_create(
        PipelineStage(team=team, name=name, position=i) for i, name in enumerate(clean)
    )


def _lock_stages(team: Team) -> list[PipelineStage]:
    """The team's stages in order, row-locked; call inside a transaction."""
    return list(
        PipelineStage.objects.select_for_update().filter(team=team).order_by("position", "id")
    )


def _renumber(stages: list[PipelineStage]) -> None:
    """Give the stages positions 0..n-1 in list order, writing only the ones that moved."""
    changed = []
    for index, stage in enumerate(stages):
        if stage.position != index:
            stage.position = index
            changed.append(stage)
    if changed:
        PipelineStage.objects.bulk_update(changed, ["position"])


def _clean_name(
    name: str, *, team: Team, exclude_pk: int | None, locked: list[PipelineStage]
) -> str:
    name = " ".join(name.split())
    if not name:
        raise ValidationError({"name": "A stage needs a name."})
    if len(name) > STAGE_NAME_MAX:
        raise ValidationError({"name": f"Keep the name to {STAGE_NAME_MAX} characters."})
    # Case-insensitive: "e2e" beside "E2E" would split one stage's escapes in two.
    if any(s.name.casefold() == name.casefold() and s.pk != exclude_pk for s in locked):
        raise ValidationError({"name": f"{team.name} already has a stage named “{name}”."})
    return name


def _save_name(stage: PipelineStage) -> None:
    try:
        with transaction.atomic():
            stage.save()
    except IntegrityError:
        # Only reachable if a stage was inserted between our check and our write.
        raise ValidationError({"name": "Another stage already has this name."}) from None


@transaction.atomic
def stage_add(*, team: Team, name: str) -> PipelineStage:
    """Append a stage at the end of the pipeline."""
    locked = _lock_stages(team)
    clean = _clean_name(name, team=team, exclude_pk=None, locked=locked)
    stage = PipelineStage(team=team, name=clean, position=len(locked))
    _save_name(stage)
    return stage


@transaction.atomic
def stage_rename(*, stage: PipelineStage, name: str) -> PipelineStage:
    locked = _lock_stages(stage.team)
    current = next((s for s in locked if s.pk == stage.pk), None)
    if current is None:
        raise ValidationError("This stage no longer exists.")
    current.name = _clean_name(name, team=stage.team, exclude_pk=stage.pk, locked=locked)
    _save_name(current)
    return current


@transaction.atomic
def stage_move(*, stage: PipelineStage, direction: Literal["up", "down"]) -> list[PipelineStage]:
    """Swap the stage with its neighbour; at either end it stays. Returns the new order."""
    if direction not in ("up", "down"):
        raise ValidationError({"direction": "Move a stage up or down."})
    locked = _lock_stages(stage.team)
    index = next((i for i, s in enumerate(locked) if s.pk == stage.pk), None)
    if index is None:
        raise ValidationError("This stage no longer exists.")
    target = index - 1 if direction == "up" else index + 1
    if 0 <= target < len(locked):
        locked[index], locked[target] = locked[target], locked[index]
    _renumber(locked)
    return locked


@transaction.atomic
def stage_delete(*, stage: PipelineStage) -> None:
    """Delete a stage nothing refers to; escapes and actions keep their history otherwise."""
    locked = _lock_stages(stage.team)
    current = next((s for s in locked if s.pk == stage.pk), None)
    if current is None:
        return
    escapes = current.escapes.count()
    actions = current.actions.count()
    if escapes or actions:
        raise ValidationError(_in_use_message(current, escapes=escapes, actions=actions))
    try:
        with transaction.atomic():
            current.delete()  # and the defects it was reported to have caught
            releases_changed_send(team_id=current.team_id)
    except ProtectedError:
        raise ValidationError(
            f"“{current.name}” is still referenced by an escape or an action."
        ) from None
    _renumber([s for s in locked if s.pk != current.pk])


def _in_use_message(stage: PipelineStage, *, escapes: int, actions: int) -> str:
    parts = []
    if escapes:
        parts.append(f"{escapes} escape{'s' if escapes != 1 else ''}")
    if actions:
        parts.append(f"{actions} preventative action{'s' if actions != 1 else ''}")
    return (
        f"“{stage.name}” cannot be deleted: {' and '.join(parts)} refer to it. "
        "Reclassify them first, or rename the stage instead."
    )


@transaction.atomic
def release_catches_set(*, release: Release, counts: dict[PipelineStage, int | None]) -> None:
    """Record typed caught counts per stage; None means "not typed" and clears an earlier
    typed count, which gives the stage back to its measured count, if it has one."""
    reported = {stage: n for stage, n in counts.items() if n is not None}
    cleared = [stage.pk for stage, n in counts.items() if n is None]
    # Cleared first: the recount that reporting announces then sees the stages free.
    if cleared:
        stage_catches_typed_clear(release=release, stage_ids=cleared)
    if reported:
        stage_catches_report(release=release, counts=reported)
