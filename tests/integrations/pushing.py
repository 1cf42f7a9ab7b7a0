"""Retros ready to close and the trackers they push to, as the push tests drive them.

Plain helpers (the fixtures built on them are in conftest.py): a retro walked to Actions with
a root-cause chain and one action per escape, closing it with its on-commit callbacks, and
the fake tracker a test runs against.
"""

from dataclasses import dataclass
from typing import Any

from escapes.models import Category
from integrations.models import TicketPush, TrackerConnection
from retros import services
from retros.models import PHASE_ORDER, ActionKind, Phase, RootCauseKind


@dataclass
class Side:
    """One tracker as the tests drive it: its fake, the team's connection, its create call."""

    fake: Any
    connection: TrackerConnection
    create: str  # the path of the create call, as a regex


def advance_to(retro, phase):
    while PHASE_ORDER.index(retro.phase) < PHASE_ORDER.index(phase):
        nxt = PHASE_ORDER[retro.phase_index + 1]
        services.retro_advance(retro=retro, expected_phase=retro.phase, to_phase=nxt)


def ready_retro(team, facilitator, member, stages, escapes):
    """Classified, a two-why chain to a root cause for each escape, one action each."""
    retro = services.retro_create(
        team=team, facilitator=facilitator, title="Release 2026.11.1 retro", escapes=escapes
    )
    advance_to(retro, Phase.CATEGORIZE)
    for e in escapes:
        services.retro_escape_classify(
            retro=retro, escape=e, category=Category.COVERAGE_GAP, stage=stages[1]
        )
    advance_to(retro, Phase.ACTIONS)
    for e in escapes:
        first = services.why_add(
            retro=retro, escape=e, text="No test ran against a slow gateway", author=member
        )
        second = services.why_add(
            retro=retro,
            escape=e,
            parent=first,
            text="Integration tests stub the gateway with instant answers",
            author=member,
        )
        services.why_mark_root_cause(why=second, kind=RootCauseKind.AUTOMATION_SHORTFALL)
        services.action_add(
            retro=retro,
            escape=e,
            kind=ActionKind.NEW_TEST,
            stage=stages[1],
            title=f"Latency contract test for {e.title[:40]}",
            description="Run the gateway stub with 3 s answers.",
            owner=member,
        )
    return retro


def close(retro, django_capture_on_commit_callbacks, *, execute=True):
    with django_capture_on_commit_callbacks(execute=execute) as callbacks:
        services.retro_close(retro=retro, by=retro.facilitator)
    return callbacks


def only_push(retro) -> TicketPush:
    return TicketPush.objects.get(action__retro=retro)


def fresh_action(retro):
    return retro.actions.get()


def creates(side: Side) -> int:
    return len(side.fake.calls("POST", side.create))
