"""REST endpoints of retrospectives: where a retro stands and what it decided (read-only), and
the follow-through of its actions: marking one done in Leakseal, or reopening it.

An anonymous retro stays anonymous here too: its whys and facts carry no author at all. Votes are
only ever counts per escape, in every retro: who voted is never given.
"""

from collections import defaultdict
from datetime import date, datetime
from typing import Any
from uuid import UUID

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.models import Count, QuerySet
from django.http import Http404, HttpRequest
from ninja import Field, Query, Router, Schema
from ninja.errors import HttpError

from config.api_schemas import ErrorOut
from escapes.models import Category, Severity
from retros.follow_through import action_mark_done, action_mark_undone
from retros.models import (
    DONE_NOTE_MAX,
    DONE_URL_MAX,
    ActionKind,
    EscapeFact,
    FactKind,
    Phase,
    PreventativeAction,
    PushState,
    RetroEscape,
    Retrospective,
    RootCauseKind,
    Vote,
    VotingState,
    Why,
    WhyRevision,
)
from retros.selectors import facts_of_retro, get_action_for_team, why_history
from teams.api import ApiInput, PageQuery, api_user, membership_for, unprocessable
from teams.models import Team

router = Router(tags=["retros"])


class RetroOut(Schema):
    id: int
    title: str
    phase: Phase
    version: int = Field(description="Incremented by every change to the retro")
    anonymous: bool
    facilitator: str
    release: str | None
    escape_count: int
    created_at: datetime
    closed_at: datetime | None


class RetroPage(Schema):
    count: int
    limit: int
    offset: int
    items: list[RetroOut]


class WhyRevisionOut(Schema):
    revision: int = Field(
        description="The why's revision that read this text (1: as first written)"
    )
    text: str
    written_by: str | None = Field(
        None, description="Username of who wrote this text; absent when the retro is anonymous"
    )
    written_at: datetime


class WhyOut(Schema):
    id: int
    parent_id: int | None = Field(description="The why this one answers; null for the first")
    text: str
    root_cause_kind: RootCauseKind | None = Field(description="Set on a root cause")
    author: str | None = Field(None, description="Username; absent when the retro is anonymous")
    created_at: datetime
    revision: int = Field(description="1 until the text is edited; each edit adds one")
    edited_at: datetime | None = Field(description="When the text was last edited; null if never")
    edited_by: str | None = Field(
        None,
        description="Username of who edited the text last; null if never edited, "
        "absent when the retro is anonymous",
    )
    revisions: list[WhyRevisionOut] = Field(
        description="The earlier texts, newest first; empty if never edited"
    )


class FactOut(Schema):
    id: int
    kind: FactKind
    text: str
    url: str = Field(description="The link (http or https); empty for a timeline note without one")
    author: str | None = Field(None, description="Username; absent when the retro is anonymous")
    created_at: datetime


class ActionOut(Schema):
    id: int
    uuid: UUID
    kind: ActionKind
    stage: str | None
    title: str
    description: str
    owner: str | None
    due_date: date | None
    tracker: str | None
    push_state: PushState
    external_key: str
    external_url: str
    sprint: str
    external_status: str
    last_error: str
    done_at: datetime | None
    done_by: str | None = Field(
        None,
        description="Username of who marked it done in Leakseal; null when not done or "
        "done in the tracker",
    )
    done_note: str = Field("", description="What was put in place, said when marking it done")
    done_url: str = Field("", description="A link to the guardrail, given when marking it done")


class FollowedActionOut(ActionOut):
    retro_id: int
    escape_id: int


class ActionDoneIn(ApiInput):
    note: str = Field("", max_length=DONE_NOTE_MAX, description="What was put in place")
    url: str = Field(
        "", max_length=DONE_URL_MAX, description="An http(s) link to the guardrail, or empty"
    )


class RetroEscapeOut(Schema):
    id: int
    title: str
    category: Category | None
    stage: str | None
    severity: Severity
    component: str
    proposed: bool = Field(
        description="Proposed by a member in Gather and not kept by the facilitator yet"
    )
    facts: list[FactOut] = Field(description="What was gathered about it, oldest first")
    whys: list[WhyOut]
    actions: list[ActionOut]
    votes: int = Field(description="Dot votes on this escape; who cast them is never given")


class RetroDetailOut(RetroOut):
    focus_escape_id: int | None
    timer_ends_at: datetime | None
    timer_paused_seconds: int | None = Field(
        description="Seconds left on a paused timer; null unless paused"
    )
    voting: VotingState
    votes_per_person: int
    escapes: list[RetroEscapeOut] = Field(
        description="The retro's escapes with their classification, facts, whys and actions"
    )


def _retros(team: Team) -> QuerySet[Retrospective]:
    return (
        Retrospective.objects.filter(team=team)
        .select_related("facilitator", "release")
        .annotate(escape_count=Count("items"))
        .order_by("-created_at", "-id")
    )


def _retro_out(retro: Retrospective) -> dict[str, Any]:
    return {
        "id": retro.pk,
        "title": retro.title,
        "phase": retro.phase,
        "version": retro.version,
        "anonymous": retro.anonymous,
        "facilitator": retro.facilitator.get_username(),
        "release": retro.release.version if retro.release else None,
        "escape_count": retro.escape_count,  # type: ignore[attr-defined]
        "created_at": retro.created_at,
        "closed_at": retro.closed_at,
    }


def _why_out(why: Why, *, anonymous: bool) -> dict[str, Any]:
    out = {
        "id": why.pk,
        "parent_id": why.parent_id,
        "text": why.text,
        "root_cause_kind": why.root_cause_kind or None,
        "created_at": why.created_at,
        "revision": why.revision,
        "edited_at": why.edited_at,
        "revisions": [_revision_out(rev, anonymous=anonymous) for rev in why.revisions.all()],
    }
    if not anonymous:
        out["author"] = why.author.get_username() if why.author else None
        out["edited_by"] = why.edited_by.get_username() if why.edited_by else None
    return out


def _revision_out(rev: WhyRevision, *, anonymous: bool) -> dict[str, Any]:
    out: dict[str, Any] = {"revision": rev.revision, "text": rev.text, "written_at": rev.written_at}
    if not anonymous:
        out["written_by"] = rev.written_by.get_username() if rev.written_by else None
    return out


def _fact_out(fact: EscapeFact, *, anonymous: bool) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": fact.pk,
        "kind": fact.kind,
        "text": fact.text,
        "url": fact.url,
        "created_at": fact.created_at,
    }
    if not anonymous:
        out["author"] = fact.author.get_username() if fact.author else None
    return out


def _action_out(action: PreventativeAction) -> dict[str, Any]:
    return {
        "id": action.pk,
        "uuid": action.uuid,
        "kind": action.kind,
        "stage": action.stage.name if action.stage else None,
        "title": action.title,
        "description": action.description,
        "owner": action.owner.get_username() if action.owner else None,
        "due_date": action.due_date,
        "tracker": action.tracker or None,
        "push_state": action.push_state,
        "external_key": action.external_key,
        "external_url": action.external_url,
        "sprint": action.sprint,
        "external_status": action.external_status,
        "last_error": action.last_error,
        "done_at": action.done_at,
        "done_by": action.done_by.get_username() if action.done_by else None,
        "done_note": action.done_note,
        "done_url": action.done_url,
    }


def _escape_items(retro: Retrospective) -> list[dict[str, Any]]:
    whys: defaultdict[int, list[dict[str, Any]]] = defaultdict(list)
    for why in (
        Why.objects.filter(retro=retro)
        .select_related("author", "edited_by")
        .prefetch_related(why_history())
        .order_by("created_at", "id")
    ):
        whys[why.escape_id].append(_why_out(why, anonymous=retro.anonymous))
    facts: defaultdict[int, list[dict[str, Any]]] = defaultdict(list)
    for fact in facts_of_retro(retro):
        facts[fact.escape_id].append(_fact_out(fact, anonymous=retro.anonymous))
    actions: defaultdict[int, list[dict[str, Any]]] = defaultdict(list)
    for action in PreventativeAction.objects.filter(retro=retro).select_related(
        "stage", "owner", "done_by"
    ):
        actions[action.escape_id].append(_action_out(action))
    votes = dict(
        Vote.objects.filter(retro=retro)
        .values("escape_id")
        .annotate(n=Count("id"))
        .order_by()
        .values_list("escape_id", "n")
    )
    items = RetroEscape.objects.filter(retro=retro).select_related("escape__stage")
    return [
        {
            "id": item.escape.pk,
            "title": item.escape.title,
            "category": item.escape.category or None,
            "stage": item.escape.stage.name if item.escape.stage else None,
            "severity": item.escape.severity,
            "component": item.escape.component,
            "proposed": item.proposed,
            "facts": facts[item.escape_id],
            "whys": whys[item.escape_id],
            "actions": actions[item.escape_id],
            "votes": votes.get(item.escape_id, 0),
        }
        for item in items.order_by("position", "id")
    ]


@router.get("/{slug}/retros", response=RetroPage, summary="The team's retros, newest first")
def retro_list(request: HttpRequest, slug: str, page: Query[PageQuery]) -> dict[str, Any]:
    team = membership_for(request, slug).team
    qs = _retros(team)
    items = [_retro_out(r) for r in qs[page.offset : page.offset + page.limit]]
    return {"count": qs.count(), "limit": page.limit, "offset": page.offset, "items": items}


@router.get(
    "/{slug}/retros/{int:retro_id}",
    response=RetroDetailOut,
    # Only what is set is sent, so the whys of an anonymous retro have no `author` key at all.
    exclude_unset=True,
    summary="A retro with its escapes, facts, whys and preventative actions",
)
def retro_detail(request: HttpRequest, slug: str, retro_id: int) -> dict[str, Any]:
    team = membership_for(request, slug).team
    retro = _retros(team).filter(pk=retro_id).first()
    if retro is None:
        raise Http404("No such retro")
    return {
        **_retro_out(retro),
        "focus_escape_id": retro.focus_escape_id,
        "timer_ends_at": retro.timer_ends_at,
        "timer_paused_seconds": (
            int(retro.timer_paused_remaining.total_seconds())
            if retro.timer_paused_remaining is not None
            else None
        ),
        "voting": retro.voting,
        "votes_per_person": retro.votes_per_person,
        "escapes": _escape_items(retro),
    }


# --- Follow-through: an action without a tracker ticket is marked done here.

# Refusals about the action's state rather than a field: 409, the message says why.
_CONFLICTS = frozenset({"tracked", "open", "not_done", "gone"})


def _followed(team: Team, action_id: int, write: Any) -> dict[str, Any]:
    action = get_action_for_team(team, action_id)
    try:
        write(action)
    except DjangoValidationError as exc:
        if not hasattr(exc, "error_dict") and {e.code for e in exc.error_list} & _CONFLICTS:
            raise HttpError(409, " ".join(exc.messages)) from None
        raise unprocessable(exc) from None
    fresh = (
        PreventativeAction.objects.select_related("stage", "owner", "done_by")
        .filter(pk=action.pk)
        .get()
    )
    return {**_action_out(fresh), "retro_id": fresh.retro_id, "escape_id": fresh.escape_id}


@router.post(
    "/{slug}/actions/{int:action_id}/done",
    response={200: FollowedActionOut, 409: ErrorOut},
    summary="Mark an action done in Leakseal (one without a tracker ticket, of a closed retro)",
    description="Sets done_at (kept when it was done already: the note and link are updated), "
    "seals its escape and counts in the follow-through. 409 when the action has a tracker "
    "ticket (its status says when it is done) or its retro is still open; 422 names the field "
    "at fault (body.note, body.url); 403 for a viewer.",
)
def action_done(
    request: HttpRequest, slug: str, action_id: int, payload: ActionDoneIn
) -> dict[str, Any]:
    team = membership_for(request, slug, write=True).team
    user = api_user(request)
    return _followed(
        team,
        action_id,
        lambda action: action_mark_done(action=action, by=user, note=payload.note, url=payload.url),
    )


@router.post(
    "/{slug}/actions/{int:action_id}/reopen",
    response={200: FollowedActionOut, 409: ErrorOut},
    summary="Reopen an action marked done in Leakseal",
    description="Clears done_at and what was said when marking it done; the escape is unsealed "
    "unless another of its actions is done. 409 when it is not done or has a tracker ticket.",
)
def action_reopen(request: HttpRequest, slug: str, action_id: int) -> dict[str, Any]:
    team = membership_for(request, slug, write=True).team
    user = api_user(request)
    return _followed(team, action_id, lambda action: action_mark_undone(action=action, by=user))
