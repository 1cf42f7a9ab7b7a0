"""Contributing in Gather: every member puts escapes on the board and adds facts to them.

A facilitator's escape is kept on the board at once. Anyone else who may write *proposes*
one (from the team's register, or new, through the register's own `escape_create`): it shows
on every board at once, marked as proposed, until the facilitator keeps or removes it. A
retro does not leave Gather while a proposal waits (`retro_advance` refuses, naming them):
moving on must not answer a proposal nobody looked at, such as one that arrived while the
facilitator pressed *Next*.

Facts (a timeline note, or a link to a log, a dashboard or a CI run) are added to any escape
of the board in Gather, Categorize and Five Whys, for the whys to build on. Like whys, their
author is not stored in an anonymous retro; the author or a facilitator deletes one.

Every write takes the retro row lock first and counts the change with `_bump`, as all board
writes do (retros/services.py).
"""

from typing import Any

from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.core.validators import URLValidator
from django.db import transaction

from escapes import services as escape_services
from escapes.models import Escape, Source
from retros.models import (
    FACT_TEXT_MAX,
    FACT_URL_MAX,
    LINK_FACT_KINDS,
    EscapeFact,
    FactKind,
    Phase,
    RetroEscape,
    Retrospective,
)
from retros.services import (
    _bump,
    _clean_text,
    _lock,
    _place_escape,
    _require_in_retro,
    _require_phase,
)
from teams.selectors import RuleDenied, team_membership

FACT_PHASES: tuple[str, ...] = (Phase.GATHER, Phase.CATEGORIZE, Phase.WHYS)
FACT_OWNER_MESSAGE = "Only its author or the facilitator can delete this fact."
URL_MESSAGE = (
    "Enter a web address that starts with http:// or https://, "
    "such as https://ci.example.com/runs/42."
)
_web_address = URLValidator(schemes=["http", "https"], message=URL_MESSAGE)


def _gatherer(retro: Retrospective, by: User) -> bool:
    """Whether `by` keeps what they gather (a facilitator or admin) rather than proposing it.

    Refuses anyone who may not write to the team."""
    membership = team_membership(team_id=retro.team_id, user=by)
    if membership is None or not membership.can_write:
        raise RuleDenied("Only members who write can add escapes to a retrospective.")
    return membership.can_facilitate


@transaction.atomic
def retro_propose_escape(*, retro: Retrospective, escape: Escape, by: User) -> RetroEscape:
    """Put an escape of the team's register on the board: kept when `by` facilitates,
    proposed otherwise."""
    _lock(retro)
    _require_phase(retro, [Phase.GATHER], "Proposing escapes")
    keeps = _gatherer(retro, by)
    item = _place_escape(retro, escape, proposed_by=None if keeps else by)
    _bump(retro)
    return item


@transaction.atomic
def retro_new_escape(*, retro: Retrospective, data: dict[str, Any], by: User) -> Escape:
    """Record a new escape in the team's register (validated as the register's form is) and
    put it on the board: kept when `by` facilitates, proposed otherwise. All or nothing."""
    _lock(retro)
    _require_phase(retro, [Phase.GATHER], "Adding escapes")
    keeps = _gatherer(retro, by)
    escape = escape_services.escape_create(
        team=retro.team, data=data, source=Source.FORM, created_by=by
    )
    _place_escape(retro, escape, proposed_by=None if keeps else by)
    _bump(retro)
    return escape


@transaction.atomic
def retro_keep_escape(*, retro: Retrospective, escape: Escape) -> RetroEscape:
    """The facilitator keeps a proposed escape on the board (a kept one stays as it is)."""
    _lock(retro)
    _require_phase(retro, [Phase.GATHER], "Keeping proposed escapes")
    item = RetroEscape.objects.filter(retro=retro, escape=escape).first()
    if item is None:
        raise ValidationError(
            {"escape": f"“{escape.title}” is no longer on this board (it was removed)."},
            code="gone",
        )
    if item.proposed:
        item.proposed = False
        item.save(update_fields=["proposed"])
        _bump(retro, escape_id=escape.pk)
    return item


# --- Facts.


def _clean_fact(kind: str, text: str, url: str) -> dict[str, str]:
    """The fact's fields, cleaned; a ValidationError naming every field at fault."""
    clean_text, errors = _clean_text(text, field="text", max_length=FACT_TEXT_MAX)
    clean_url = (url or "").strip()
    if kind not in FactKind.values:
        errors["kind"] = "Choose what kind of fact this is."
    if len(clean_url) > FACT_URL_MAX:
        errors["url"] = f"Keep the web address to {FACT_URL_MAX} characters."
    elif clean_url:
        try:
            _web_address(clean_url)
        except ValidationError:
            errors["url"] = URL_MESSAGE
    elif kind in LINK_FACT_KINDS:
        label = FactKind(kind).label.lower()
        errors["url"] = f"A {label} is a link: enter its web address (http:// or https://)."
    if errors:
        raise ValidationError(errors)
    return {"kind": kind, "text": clean_text, "url": clean_url}


@transaction.atomic
def fact_add(
    *,
    retro: Retrospective,
    escape: Escape,
    kind: str,
    text: str,
    url: str = "",
    author: User | None,
) -> EscapeFact:
    _lock(retro)
    _require_phase(retro, FACT_PHASES, "Adding facts")
    _require_in_retro(retro, escape)
    fields = _clean_fact(kind, text, url)
    # As for whys, an anonymous retro does not store who wrote it.
    fact = EscapeFact.objects.create(
        retro=retro, escape=escape, author=None if retro.anonymous else author, **fields
    )
    # Its Delete is the author's alone: their boards re-fetch the card rendered for them.
    _bump(retro, escape_id=escape.pk, by=fact.author_id)
    return fact


@transaction.atomic
def fact_delete(*, fact: EscapeFact, by: User) -> None:
    retro = _lock(fact.retro)
    _require_phase(retro, FACT_PHASES, "Deleting facts")
    fresh = EscapeFact.objects.filter(pk=fact.pk, retro=retro).first()
    if fresh is None:
        raise ValidationError("This fact was deleted meanwhile.", code="gone")
    membership = team_membership(team_id=retro.team_id, user=by)
    if membership is None or not fresh.deletable_by(membership):
        raise RuleDenied(FACT_OWNER_MESSAGE)
    fresh.delete()
    _bump(retro, escape_id=fact.escape_id)
