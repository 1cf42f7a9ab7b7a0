"""Fixtures of the facilitation tests: a retro of two escapes, run by the facilitator."""

import pytest
from django.urls import reverse

from escapes.models import Category
from retros import services
from retros.models import Phase, Retrospective
from tests.retros.conftest import add_root_cause, advance_to, make_escape, retro, second_escape

HX = {"HX-Request": "true"}

# `retro` and `second_escape` are the retros tests' fixtures, shared rather than written again.
__all__ = ["HX", "advance_to", "make_escape", "retro", "second_escape", "url"]


def url(name: str, retro: Retrospective, **kwargs) -> str:
    return reverse(name, kwargs={"team": retro.team.slug, "pk": retro.pk, **kwargs})


@pytest.fixture
def anonymous_retro(team, facilitator, escape, second_escape) -> Retrospective:
    return services.retro_create(
        team=team,
        facilitator=facilitator,
        title="Anonymous retro",
        escapes=[escape, second_escape],
        anonymous=True,
    )


@pytest.fixture
def closed_retro(retro, escape, second_escape, member, stages, facilitator) -> Retrospective:
    advance_to(retro, Phase.CATEGORIZE)
    for e in (escape, second_escape):
        services.retro_escape_classify(
            retro=retro, escape=e, category=Category.COVERAGE_GAP, stage=stages[1]
        )
    advance_to(retro, Phase.ACTIONS)
    for e in (escape, second_escape):
        add_root_cause(retro, e, member)
        services.action_add(
            retro=retro, escape=e, kind="new_test", stage=stages[1], title="Guard", owner=member
        )
    services.retro_close(retro=retro, by=facilitator)
    return retro
