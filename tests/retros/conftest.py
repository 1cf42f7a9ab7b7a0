from datetime import timedelta
from itertools import count

import pytest
from django.utils import timezone

from escapes.models import Category, Escape
from retros import services
from retros.models import (
    PHASE_ORDER,
    ActionKind,
    Phase,
    PreventativeAction,
    Retrospective,
    RootCauseKind,
    Why,
)

_numbers = count(1)


def make_escape(team, *, title: str | None = None, release=None, **fields) -> Escape:
    now = timezone.now()
    return Escape.objects.create(
        team=team,
        title=title or f"Escape {next(_numbers)}",
        merged_at=now - timedelta(days=20),
        detected_at=now - timedelta(days=1),
        release=release,
        **fields,
    )


def advance_to(retro: Retrospective, phase: str) -> Retrospective:
    """Walk the retro forward to `phase` (not closed) through the service."""
    while PHASE_ORDER.index(retro.phase) < PHASE_ORDER.index(phase):
        nxt = PHASE_ORDER[retro.phase_index + 1]
        services.retro_advance(retro=retro, expected_phase=retro.phase, to_phase=nxt)
    return retro


def add_action(retro, escape, owner, stage, title="Add a contract test for the gateway"):
    return services.action_add(
        retro=retro,
        escape=escape,
        kind=ActionKind.NEW_TEST,
        stage=stage,
        title=title,
        owner=owner,
    )


def add_root_cause(
    retro, escape, author, text="No test covered it", kind=RootCauseKind.AUTOMATION_SHORTFALL
) -> Why:
    """A chain of one why, marked as the escape's root cause: what a strict close asks for."""
    why = services.why_add(retro=retro, escape=escape, text=text, author=author)
    return services.why_mark_root_cause(why=why, kind=kind)


def closed_retro_of(team, facilitator, member, stages, escapes, *, due=None, title="Earlier retro"):
    """A closed retro over `escapes`, one action each (owned by `member`, due `due`)."""
    retro = services.retro_create(team=team, facilitator=facilitator, title=title, escapes=escapes)
    advance_to(retro, Phase.CATEGORIZE)
    for e in escapes:
        services.retro_escape_classify(
            retro=retro, escape=e, category=Category.COVERAGE_GAP, stage=stages[1]
        )
    advance_to(retro, Phase.ACTIONS)
    for e in escapes:
        add_root_cause(retro, e, member)
        action = add_action(retro, e, member, stages[1], title=f"Guard {e.title}")
        if due is not None:  # a date in the past cannot be set through the service
            PreventativeAction.objects.filter(pk=action.pk).update(due_date=due)
    services.retro_close(retro=retro, by=facilitator)
    return retro


@pytest.fixture
def second_escape(team, release):
    return make_escape(team, title="Coupon applied twice on retry", release=release)


@pytest.fixture
def retro(team, facilitator, escape, second_escape) -> Retrospective:
    return services.retro_create(
        team=team,
        facilitator=facilitator,
        title="Release 2026.11.1 retro",
        escapes=[escape, second_escape],
    )


@pytest.fixture
def whys_retro(retro) -> Retrospective:
    return advance_to(retro, Phase.WHYS)


@pytest.fixture
def closed_retro(retro, escape, second_escape, member, stages) -> Retrospective:
    """A retro walked to the end: classified, one why each (its root cause), an action each,
    closed."""
    advance_to(retro, Phase.CATEGORIZE)
    for e in (escape, second_escape):
        services.retro_escape_classify(
            retro=retro, escape=e, category=Category.COVERAGE_GAP, stage=stages[1]
        )
    advance_to(retro, Phase.ACTIONS)
    for e in (escape, second_escape):
        add_root_cause(retro, e, member)
        add_action(retro, e, member, stages[1])
    services.retro_close(retro=retro, by=retro.facilitator)
    return retro
