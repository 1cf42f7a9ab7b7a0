"""Every write to a retrospective and its board: escapes, phases, whys, actions, closing.

Each service runs in one transaction, takes the retro row lock first (everybody on the board
writes at once, and all of a retro's whys and actions are guarded by that one lock) and
counts the change with `_bump`. A closed retro is read-only: every service refuses it.
Errors are `ValidationError`s, keyed by field where one field is at fault.
"""

import logging
from collections.abc import Collection, Iterable
from datetime import date
from functools import partial
from typing import Any

from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import F, Max
from django.utils import timezone

from audit.models import Action
from audit.services import record
from escapes import services as escape_services
from escapes.models import Category, Escape, PipelineStage, Release
from escapes.selectors import escapes_of_team
from retros import events
from retros.chat_notices import retro_closed_chat, retro_started_chat
from retros.closing import CloseGap, close_gaps
from retros.models import (
    PHASE_ORDER,
    WHY_TEXT_MAX,
    ActionKind,
    EscapeFact,
    Phase,
    PreventativeAction,
    RetroEscape,
    Retrospective,
    RootCauseKind,
    Vote,
    Why,
    WhyRevision,
)
from retros.signals import actions_changed_send, retro_closed_send
from teams.models import Team
from teams.selectors import RuleDenied, can_facilitate, team_member_ids, team_membership

log = logging.getLogger(__name__)

TITLE_MAX = 200
ACTION_DESCRIPTION_MAX = 10_000
# Five Whys rarely need more than five; the cap keeps a runaway chain from nesting the
# board (and its recursive template) without end.
WHY_DEPTH_MAX = 10

CLASSIFY_PHASES: tuple[str, ...] = (Phase.CATEGORIZE, Phase.WHYS, Phase.ACTIONS)
WHY_PHASES: tuple[str, ...] = (Phase.WHYS, Phase.ACTIONS)
ACTION_PHASES: tuple[str, ...] = (Phase.WHYS, Phase.ACTIONS)

CLOSED_MESSAGE = "This retrospective is closed; it is read-only."
WHY_OWNER_MESSAGE = "Only its author or the facilitator can change this why."


# --- Helpers. Each one that reads the board expects the caller to hold the retro row lock.


def _lock(retro: Retrospective) -> Retrospective:
    """Take the retro row lock and refresh `retro` in place; refuse a closed retro.

    Call inside transaction.atomic, before reading anything else of the board.
    """
    retro.refresh_from_db(from_queryset=Retrospective.objects.select_for_update())
    if retro.is_closed:
        raise ValidationError(CLOSED_MESSAGE, code="closed")
    return retro


def action_retro_lock(*, action: PreventativeAction) -> Retrospective | None:
    """Take the row lock of the action's retro (None when the retro is gone), for another
    app's write that must queue behind the board's: the lock order of this module.

    Call inside transaction.atomic.
    """
    return Retrospective.objects.select_for_update().filter(pk=action.retro_id).first()


def _bump(retro: Retrospective, *, escape_id: int | None = None, by: int | None = None) -> None:
    """Count one change of the retro or its board. Call while holding the retro row lock.

    Once the transaction commits, "retro N is at version v" goes to every open board
    (retros/events.py). `escape_id` says the change touched only that escape's card (and the
    counts beside it): the streams then push that card, rendered once (retros/stream.py), and
    a board that is behind re-fetches just that card. `by` is the user the change gives
    something only they see on the card (the controls on a why they wrote): their own boards
    re-fetch the card instead. A rolled-back write publishes nothing; a failed publish is
    logged and never fails the write (boards catch up on reconnect).
    """
    Retrospective.objects.filter(pk=retro.pk).update(version=F("version") + 1)
    retro.refresh_from_db(fields=["version"])
    transaction.on_commit(
        partial(events.publish_version, retro.pk, retro.version, escape_id=escape_id, by=by),
        robust=True,
    )


def escape_boards_changed(*, escape: Escape) -> None:
    """Another app changed what an escape's card shows (evidence/: the tests attached to it):
    every open board the escape is on shows the card again, as after a change of the card.

    Takes those retros' row locks in id order: call it inside the writer's transaction, before
    the writer's own writes (the board's lock order). Nothing is published if it rolls back.
    """
    retros = (
        Retrospective.objects.select_for_update()
        .filter(pk__in=RetroEscape.objects.filter(escape=escape).values("retro_id"))
        .exclude(phase=Phase.CLOSED)
        .order_by("pk")
    )
    for retro in retros:
        _bump(retro, escape_id=escape.pk)


def _require_phase(retro: Retrospective, allowed: Collection[str], doing: str) -> None:
    if retro.phase not in allowed:
        names = " or ".join(Phase(p).label for p in allowed)
        raise ValidationError(
            f"{doing} is possible in the {names} phase; "
            f"this retrospective is in the {Phase(retro.phase).label} phase.",
            code="phase",
        )


def _require_expected_phase(retro: Retrospective, expected: str) -> None:
    """Refuse a phase change made from a page that shows an older phase."""
    if retro.phase != expected:
        raise ValidationError(
            f"The retrospective is already in the {Phase(retro.phase).label} phase "
            "(someone moved it meanwhile); nothing was changed.",
            code="stale",
        )


def _require_in_retro(retro: Retrospective, escape: Escape) -> None:
    if not RetroEscape.objects.filter(retro=retro, escape=escape).exists():
        raise ValidationError({"escape": "This escape is not part of this retrospective."})


def _clean_text(
    value: str | None, *, field: str, max_length: int, required: bool = True
) -> tuple[str, dict[str, str]]:
    """The stripped text and, if it breaks a limit, an error for `field`."""
    text = (value or "").strip()
    if required and not text:
        return text, {field: "This cannot be empty."}
    if len(text) > max_length:
        return text, {field: f"Keep it to {max_length} characters (it has {len(text)})."}
    return text, {}


# --- The retro itself.


@transaction.atomic
@transaction.atomic
def retro_create(
    *,
    team: Team,
    facilitator: User,
    title: str,
    release: Release | None = None,
    escapes: Iterable[Escape] = (),
    anonymous: bool = False,
) -> Retrospective:
    """A retro over a release's escapes, or chosen escapes of the team, or both."""
    clean_title, errors = _clean_text(title, field="title", max_length=TITLE_MAX)
    chosen = list(escapes)
    if release is not None and release.team_id != team.pk:
        errors["release"] = "Unknown release for this team."
    if any(e.team_id != team.pk for e in chosen):
        errors["escapes"] = "Unknown escape for this team."
    if not can_facilitate(team=team, user=facilitator):
        errors["facilitator"] = "The facilitator must be a facilitator or admin of this team."
    if errors:
        raise ValidationError(errors)

    picked: dict[int, Escape] = {}
    if release is not None:
        for escape in escapes_of_team(team.pk).filter(release=release).order_by("detected_at"):
            picked[escape.pk] = escape
    for escape in chosen:
        picked.setdefault(escape.pk, escape)
    if not picked:
        if release is not None and not chosen:
            raise ValidationError({"release": "This release has no escapes; pick escapes."})
        raise ValidationError({"escapes": "Pick a release or at least one escape."})

    retro = Retrospective.objects.create(
        team=team, title=clean_title, facilitator=facilitator, release=release, anonymous=anonymous
    )
    RetroEscape.objects.bulk_create(
        RetroEscape(retro=retro, escape=escape, position=i)
        for i, escape in enumerate(picked.values())
    )
    retro_started_chat(retro)  # the team's chat channels hear of it when this commits
    return retro


def _place_escape(
    retro: Retrospective, escape: Escape, *, proposed_by: User | None = None
) -> RetroEscape:
    """Put the escape last on the board: kept, or proposed by `proposed_by` (who is not
    stored in an anonymous retro). Call while holding the retro row lock, in Gather."""
    if escape.team_id != retro.team_id:
        raise ValidationError({"escape": "Unknown escape for this team."})
    if RetroEscape.objects.filter(retro=retro, escape=escape).exists():
        raise ValidationError({"escape": f"“{escape.title}” is already in this retrospective."})
    last = RetroEscape.objects.filter(retro=retro).aggregate(last=Max("position"))["last"]
    return RetroEscape.objects.create(
        retro=retro,
        escape=escape,
        position=0 if last is None else last + 1,
        proposed=proposed_by is not None,
        proposed_by=None if retro.anonymous else proposed_by,
    )


@transaction.atomic
def retro_add_escape(*, retro: Retrospective, escape: Escape) -> RetroEscape:
    """A facilitator puts an escape on the board, kept (members propose: retros/gather.py)."""
    _lock(retro)
    _require_phase(retro, [Phase.GATHER], "Adding escapes")
    item = _place_escape(retro, escape)
    _bump(retro)
    return item


@transaction.atomic
def retro_remove_escape(*, retro: Retrospective, escape: Escape) -> None:
    _lock(retro)
    _require_phase(retro, [Phase.GATHER], "Removing escapes")
    _require_in_retro(retro, escape)
    if RetroEscape.objects.filter(retro=retro).count() == 1:
        raise ValidationError({"escape": "A retrospective needs at least one escape."})
    # Whys and actions survive a reopen back to Gather; removing the escape would lose them.
    has_work = (
        Why.objects.filter(retro=retro, escape=escape).exists()
        or PreventativeAction.objects.filter(retro=retro, escape=escape).exists()
    )
    if has_work:
        raise ValidationError(
            {"escape": f"“{escape.title}” already has whys or actions here; delete them first."}
        )
    RetroEscape.objects.filter(retro=retro, escape=escape).delete()
    # Its dots go with it, or they would keep counting against their voters' allowance; and
    # its facts, gathered for discussing it here. The escape stays in the team's register.
    Vote.objects.filter(retro=retro, escape=escape).delete()
    EscapeFact.objects.filter(retro=retro, escape=escape).delete()
    _bump(retro)


@transaction.atomic
def retro_advance(*, retro: Retrospective, expected_phase: str, to_phase: str) -> Retrospective:
    """Move one phase forward. `expected_phase` is the phase the facilitator's page showed."""
    _lock(retro)
    _require_expected_phase(retro, expected_phase)
    if to_phase == Phase.CLOSED:
        raise ValidationError(
            {"to_phase": "Close the retrospective with Close: it checks every escape's action."}
        )
    if to_phase not in PHASE_ORDER or PHASE_ORDER.index(to_phase) != retro.phase_index + 1:
        raise ValidationError({"to_phase": "Phases move forward one step at a time."})
    if retro.phase == Phase.GATHER:
        _require_no_proposals(retro)
    retro.phase = to_phase
    retro.save(update_fields=["phase"])
    _bump(retro)
    return retro


def _require_no_proposals(retro: Retrospective) -> None:
    """Refuse to leave Gather while a member's proposal waits for Keep or Remove: moving on
    would decide it without anyone looking at it."""
    waiting = [
        item.escape.title
        for item in RetroEscape.objects.filter(retro=retro, proposed=True)
        .select_related("escape")
        .order_by("position", "id")
    ]
    if waiting:
        names = ", ".join(f"“{title}”" for title in waiting)
        raise ValidationError(
            f"Keep or remove each proposed escape before moving on: {names}.",
            code="proposals_waiting",
        )


@transaction.atomic
def retro_reopen(
    *, retro: Retrospective, expected_phase: str, by: User | None = None
) -> Retrospective:
    """Go back one phase. A closed retro is final and stays closed."""
    _lock(retro)
    _require_expected_phase(retro, expected_phase)
    if retro.phase_index == 0:
        raise ValidationError("The retrospective is already in its first phase.")
    before = retro.phase
    retro.phase = PHASE_ORDER[retro.phase_index - 1]
    retro.save(update_fields=["phase"])
    _bump(retro)
    record(
        team=retro.team,
        actor=by,
        action=Action.RETRO_REOPENED,
        target=_audit_target(retro),
        changes={"phase": {"from": before, "to": retro.phase}},
    )
    return retro


def _audit_target(retro: Retrospective) -> str:
    return f"Retro #{retro.pk} “{retro.title}”"


def retro_close_gaps(retro: Retrospective) -> list[CloseGap]:
    """The retro's escapes, in board order, that keep it from closing under its team's rule.

    Call while holding the retro row lock: the rule is read afresh, so a change an admin
    made since the page was loaded applies.
    """
    retro.team.refresh_from_db(fields=["close_requires_root_cause"])
    with_action = set(
        PreventativeAction.objects.filter(retro=retro).values_list("escape_id", flat=True)
    )
    with_root_cause = set(
        Why.objects.filter(retro=retro)
        .exclude(root_cause_kind="")
        .values_list("escape_id", flat=True)
    )
    items = RetroEscape.objects.filter(retro=retro).select_related("escape")
    return close_gaps(
        [item.escape for item in items.order_by("position", "id")],
        with_action=with_action,
        with_root_cause=with_root_cause,
        requires_root_cause=retro.team.close_requires_root_cause,
    )


@transaction.atomic
def retro_close(*, retro: Retrospective, by: User) -> Retrospective:
    """Close the retro; refused, naming each escape, while one lacks what the team's rule
    asks for: a preventative action, and a root cause where the team requires one."""
    _lock(retro)
    _require_phase(retro, [Phase.ACTIONS], "Closing")
    gaps = retro_close_gaps(retro)
    if gaps:
        raise ValidationError([gap.error() for gap in gaps])
    before = retro.phase
    retro.phase = Phase.CLOSED
    retro.closed_at = timezone.now()
    retro.save(update_fields=["phase", "closed_at"])
    _bump(retro)
    record(
        team=retro.team,
        actor=by,
        action=Action.RETRO_CLOSED,
        target=_audit_target(retro),
        changes={"phase": {"from": before, "to": retro.phase}},
    )
    # Each action becomes a ticket: integrations writes its outbox rows in this transaction
    # and queues their pushes on commit.
    retro_closed_send(retro=retro)
    retro_closed_chat(retro)
    log.info("retro %s closed by user %s", retro.pk, by.pk)
    return retro


# --- Categorize.


@transaction.atomic
def retro_escape_classify(
    *, retro: Retrospective, escape: Escape, category: str, stage: PipelineStage | None
) -> Escape:
    """Set the escape's category and the stage that should have caught it, from the board."""
    _lock(retro)
    _require_phase(retro, CLASSIFY_PHASES, "Categorizing")
    _require_in_retro(retro, escape)
    if category not in Category.values:
        raise ValidationError({"category": "Choose a category."})
    classified = escape_services.escape_classify(escape=escape, category=category, stage=stage)
    _bump(retro, escape_id=escape.pk)
    return classified


# --- Five Whys.


def _fresh_why(why: Why) -> Why:
    """Re-read the why under the retro lock; it may have been deleted meanwhile."""
    fresh = Why.objects.filter(pk=why.pk, retro_id=why.retro_id).first()
    if fresh is None:
        raise ValidationError("This why was deleted meanwhile.", code="gone")
    return fresh


def _depth(parent: Why) -> int:
    """How many whys deep a child of `parent` would sit (its chain's length)."""
    parents = dict(
        Why.objects.filter(retro_id=parent.retro_id, escape_id=parent.escape_id).values_list(
            "pk", "parent_id"
        )
    )
    depth, current = 2, parents.get(parent.pk)
    while current is not None:
        depth, current = depth + 1, parents.get(current)
    return depth


@transaction.atomic
def why_add(
    *,
    retro: Retrospective,
    escape: Escape,
    parent: Why | None = None,
    text: str,
    author: User | None,
) -> Why:
    _lock(retro)
    _require_phase(retro, WHY_PHASES, "Adding whys")
    _require_in_retro(retro, escape)
    clean, errors = _clean_text(text, field="text", max_length=WHY_TEXT_MAX)
    if errors:
        raise ValidationError(errors)
    if parent is not None:
        parent = Why.objects.filter(pk=parent.pk, retro=retro, escape=escape).first()
        if parent is None:
            raise ValidationError({"parent": "That why belongs to another escape or retro."})
        if parent.is_root_cause:
            raise ValidationError(
                {"parent": "That why is marked as the root cause; unmark it first to dig deeper."}
            )
        if _depth(parent) > WHY_DEPTH_MAX:
            raise ValidationError({"parent": f"A chain stops at {WHY_DEPTH_MAX} whys."})
    # In an anonymous retro the author is not even stored: nobody can find it later.
    why = Why.objects.create(
        retro=retro,
        escape=escape,
        parent=parent,
        text=clean,
        author=None if retro.anonymous else author,
    )
    _bump(retro, escape_id=escape.pk, by=why.author_id)
    return why


def _require_may_change(retro: Retrospective, why: Why, by: User) -> None:
    """Refuse an edit or a delete by anyone but the why's author or a facilitator or admin."""
    membership = team_membership(team_id=retro.team_id, user=by)
    if membership is None or not why.changeable_by(membership):
        raise RuleDenied(WHY_OWNER_MESSAGE)


@transaction.atomic
def why_edit(*, why: Why, text: str, expected_revision: int, by: User) -> Why:
    """Change a why's text unless someone changed it since `expected_revision`.

    The text it replaces is kept as a `WhyRevision`, with who wrote it and when, so the
    board can show "edited by" and the earlier versions.
    """
    retro = _lock(why.retro)
    _require_phase(retro, WHY_PHASES, "Editing whys")
    fresh = _fresh_why(why)
    _require_may_change(retro, fresh, by)
    clean, errors = _clean_text(text, field="text", max_length=WHY_TEXT_MAX)
    if errors:
        raise ValidationError(errors)
    if fresh.revision != expected_revision:
        raise ValidationError(
            {
                "text": ValidationError(
                    "Someone changed this why while you were editing. It now reads: "
                    "“%(newer)s”. Your text was not saved; edit again if it should still change.",
                    code="stale",
                    params={"newer": fresh.text},
                )
            }
        )
    if clean == fresh.text:
        return fresh
    # Safe without a unique-violation retry: every write to the retro's whys holds its lock.
    WhyRevision.objects.create(
        why=fresh,
        revision=fresh.revision,
        text=fresh.text,
        written_by_id=fresh.edited_by_id if fresh.edited_at else fresh.author_id,
        written_at=fresh.edited_at or fresh.created_at,
    )
    fresh.text = clean
    fresh.revision += 1
    # As with the author, an anonymous retro does not store who edited.
    fresh.edited_by = None if retro.anonymous else by
    fresh.edited_at = timezone.now()
    fresh.save(update_fields=["text", "revision", "edited_by", "edited_at", "updated_at"])
    _bump(retro, escape_id=why.escape_id)
    return fresh


@transaction.atomic
def why_delete(*, why: Why, by: User) -> None:
    retro = _lock(why.retro)
    _require_phase(retro, WHY_PHASES, "Deleting whys")
    fresh = _fresh_why(why)
    _require_may_change(retro, fresh, by)
    if fresh.children.exists():
        raise ValidationError("This why has answers under it; delete those first.")
    fresh.delete()
    _bump(retro, escape_id=why.escape_id)


@transaction.atomic
def why_mark_root_cause(*, why: Why, kind: str) -> Why:
    """Mark the last why of a branch as its root cause, classified by `kind`."""
    retro = _lock(why.retro)
    _require_phase(retro, WHY_PHASES, "Marking a root cause")
    fresh = _fresh_why(why)
    if kind not in RootCauseKind.values:
        raise ValidationError(
            {"kind": "Choose whether it is a process failure or an automation shortfall."}
        )
    if fresh.children.exists():
        raise ValidationError(
            "Only the last why of a chain can be its root cause; this one has answers under it."
        )
    # The text revision is left alone: marking does not conflict with a text edit.
    fresh.root_cause_kind = kind
    fresh.save(update_fields=["root_cause_kind", "updated_at"])
    _bump(retro, escape_id=why.escape_id)
    return fresh


@transaction.atomic
def why_unmark_root_cause(*, why: Why) -> Why:
    retro = _lock(why.retro)
    _require_phase(retro, WHY_PHASES, "Unmarking a root cause")
    fresh = _fresh_why(why)
    if fresh.root_cause_kind:
        fresh.root_cause_kind = ""
        fresh.save(update_fields=["root_cause_kind", "updated_at"])
        _bump(retro, escape_id=why.escape_id)
    return fresh


# --- Preventative actions.


def _clean_action(
    team: Team,
    *,
    kind: str,
    stage: PipelineStage | None,
    title: str,
    description: str,
    owner: User | None,
    due_date: date | None,
    previous_due_date: date | None = None,
) -> dict[str, Any]:
    """The action's fields, cleaned; a ValidationError naming every field at fault."""
    clean_title, errors = _clean_text(title, field="title", max_length=TITLE_MAX)
    clean_description, description_errors = _clean_text(
        description, field="description", max_length=ACTION_DESCRIPTION_MAX, required=False
    )
    errors.update(description_errors)
    if kind not in ActionKind.values:
        errors["kind"] = "Choose what kind of guardrail this is."
    if stage is not None and stage.team_id != team.pk:
        errors["stage"] = "Unknown stage for this team."
    elif stage is None and kind == ActionKind.NEW_TEST:
        errors["stage"] = "A new test needs the stage it will run in."
    if owner is None:
        errors["owner"] = "Every preventative action needs an owner."
    elif owner.pk not in team_member_ids(team):
        errors["owner"] = "The owner must be a member of this team."
    # An action whose date has passed may keep it; a new or moved date must lie ahead.
    today = timezone.localdate(timezone=team.tzinfo)
    if due_date is not None and due_date != previous_due_date and due_date < today:
        errors["due_date"] = "The due date is in the past."
    if errors:
        raise ValidationError(errors)
    return {
        "kind": kind,
        "stage": stage,
        "title": clean_title,
        "description": clean_description,
        "owner": owner,
        "due_date": due_date,
    }


@transaction.atomic
def action_add(
    *,
    retro: Retrospective,
    escape: Escape,
    kind: str,
    stage: PipelineStage | None,
    title: str,
    description: str = "",
    owner: User | None,
    due_date: date | None = None,
    created_by: User | None = None,
) -> PreventativeAction:
    _lock(retro)
    _require_phase(retro, ACTION_PHASES, "Adding preventative actions")
    _require_in_retro(retro, escape)
    fields = _clean_action(
        retro.team,
        kind=kind,
        stage=stage,
        title=title,
        description=description,
        owner=owner,
        due_date=due_date,
    )
    action = PreventativeAction.objects.create(
        retro=retro, escape=escape, created_by=created_by, **fields
    )
    _bump(retro, escape_id=escape.pk)
    _follow_through_changed(escape)
    return action


def _follow_through_changed(escape: Escape) -> None:
    """The follow-through numbers count actions: announce that this escape's changed."""
    actions_changed_send(escape=escape)


def _fresh_action(action: PreventativeAction) -> PreventativeAction:
    fresh = PreventativeAction.objects.filter(pk=action.pk, retro_id=action.retro_id).first()
    if fresh is None:
        raise ValidationError("This action was deleted meanwhile.", code="gone")
    return fresh


@transaction.atomic
def action_update(
    *,
    action: PreventativeAction,
    kind: str,
    stage: PipelineStage | None,
    title: str,
    description: str = "",
    owner: User | None,
    due_date: date | None = None,
) -> PreventativeAction:
    retro = _lock(action.retro)
    _require_phase(retro, ACTION_PHASES, "Editing preventative actions")
    fresh = _fresh_action(action)
    fields = _clean_action(
        retro.team,
        kind=kind,
        stage=stage,
        title=title,
        description=description,
        owner=owner,
        due_date=due_date,
        previous_due_date=fresh.due_date,
    )
    for name, value in fields.items():
        setattr(fresh, name, value)
    fresh.save(update_fields=[*fields, "updated_at"])
    _bump(retro, escape_id=action.escape_id)
    _follow_through_changed(action.escape)
    return fresh


@transaction.atomic
def action_delete(*, action: PreventativeAction) -> None:
    retro = _lock(action.retro)
    _require_phase(retro, ACTION_PHASES, "Deleting preventative actions")
    _fresh_action(action).delete()
    _bump(retro, escape_id=action.escape_id)
    _follow_through_changed(action.escape)


# --- The tracker's side of an action (integrations/): allowed on a closed retro.

TRACKER_FIELDS = frozenset(
    {
        "tracker",
        "push_state",
        "external_key",
        "external_url",
        "sprint",
        "external_status",
        "last_error",
        "done_at",
    }
)


@transaction.atomic
def action_tracker_update(*, action_id: int, **fields: Any) -> PreventativeAction | None:
    """Record what happened to an action's ticket: its push state, key, link, sprint, status.

    The one write a closed retro still takes (its tickets live on in the tracker), so it does
    not go through `_lock`. It bumps the retro's version, so every open board and actions list
    shows the push live. None when the action is gone.
    """
    unknown = set(fields) - TRACKER_FIELDS
    if unknown:
        raise ValueError(f"Not a tracker field of an action: {sorted(unknown)}")
    retro_id = (
        PreventativeAction.objects.filter(pk=action_id).values_list("retro_id", flat=True).first()
    )
    if retro_id is None:
        return None
    retro = Retrospective.objects.select_for_update().get(pk=retro_id)
    action = PreventativeAction.objects.filter(pk=action_id).first()
    if action is None:
        return None
    changed = [name for name, value in fields.items() if getattr(action, name) != value]
    if not changed:
        return action
    for name in changed:
        setattr(action, name, fields[name])
    action.save(update_fields=[*changed, "updated_at"])
    _bump(retro, escape_id=action.escape_id)
    if "done_at" in changed:
        action_seal_follow(action=action)
    if {"push_state", "done_at"} & set(changed):
        _follow_through_changed(action.escape)
    return action


def action_seal_follow(*, action: PreventativeAction) -> None:
    """Seal or unseal the action's escape after its `done_at` changed, whoever said so (the
    tracker's status, or a member marking it done in Leakseal).

    An escape is sealed while at least one of its guardrails is in place: a done action seals
    it (once; a later call keeps the first time), and an action no longer done unseals it only
    when no other action of it is still done. Call inside the transaction, holding the retro
    row lock.
    """
    if action.done_at is not None:
        escape_services.escape_seal(escape=action.escape, at=action.done_at)
    elif not PreventativeAction.objects.filter(
        escape_id=action.escape_id, done_at__isnull=False
    ).exists():
        escape_services.escape_unseal(escape=action.escape)
