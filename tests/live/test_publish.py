"""A change is announced to the live board only once it is committed, and never at its cost."""

import logging

import pytest
from django.core.exceptions import ValidationError
from django.db import transaction

from retros import events, services
from retros.models import Phase, Retrospective


class Boom(Exception):
    pass


def test_a_committed_change_publishes_the_new_version_once(
    retro, published, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        services.retro_advance(retro=retro, expected_phase=Phase.GATHER, to_phase=Phase.CATEGORIZE)
        assert published == [], "nothing may be announced before the commit"

    version = Retrospective.objects.get(pk=retro.pk).version
    assert len(callbacks) == 1
    assert published == [(retro.pk, events.VERSION, {"version": version})]
    assert version == 2


def test_a_rolled_back_write_publishes_nothing(
    retro, escape, member, published, django_capture_on_commit_callbacks
):
    services.retro_advance(retro=retro, expected_phase=Phase.GATHER, to_phase=Phase.CATEGORIZE)
    services.retro_advance(retro=retro, expected_phase=Phase.CATEGORIZE, to_phase=Phase.WHYS)
    published.clear()

    with (
        django_capture_on_commit_callbacks(execute=True) as callbacks,
        pytest.raises(Boom),
        transaction.atomic(),
    ):
        services.why_add(retro=retro, escape=escape, text="No contract test", author=member)
        raise Boom

    assert callbacks == []
    assert published == []
    assert Retrospective.objects.get(pk=retro.pk).version == 3  # the two advances only


def test_a_refused_write_publishes_nothing(retro, published, django_capture_on_commit_callbacks):
    with (
        django_capture_on_commit_callbacks(execute=True),
        pytest.raises(ValidationError, match="Phases move forward"),
    ):
        services.retro_advance(retro=retro, expected_phase=Phase.GATHER, to_phase=Phase.ACTIONS)
    assert published == []


def test_a_publish_that_fails_is_logged_and_the_write_stands(
    retro, settings, caplog, django_capture_on_commit_callbacks
):
    # Nothing listens on port 1: Redis is "down".
    settings.REDIS_URL = "redis://:s3cret-password@127.0.0.1:1/0"
    with (
        caplog.at_level(logging.WARNING, logger="retros.events"),
        django_capture_on_commit_callbacks(execute=True),
    ):
        services.retro_advance(retro=retro, expected_phase=Phase.GATHER, to_phase=Phase.CATEGORIZE)

    fresh = Retrospective.objects.get(pk=retro.pk)
    assert (fresh.phase, fresh.version) == (Phase.CATEGORIZE, 2)
    assert f"live version event of retro {retro.pk} not published" in caplog.text
    assert "s3cret" not in caplog.text


def test_channels_are_kept_apart_by_redis_database():
    assert events.channel(7, "redis://127.0.0.1:6379/0") == "leakseal:retro:7"
    assert events.channel(7, "redis://127.0.0.1:6379") == "leakseal:retro:7"
    assert events.channel(7, "redis://127.0.0.1:6379/11") == "leakseal:11:retro:7"


def test_an_unknown_event_kind_is_a_programming_error():
    with pytest.raises(ValueError, match="Unknown live event kind"):
        events.publish(1, "gossip", {})


def test_a_change_to_one_card_names_its_escape_and_a_board_change_does_not(
    retro, escape, member, stages, published, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        services.retro_advance(retro=retro, expected_phase=Phase.GATHER, to_phase=Phase.CATEGORIZE)
    with django_capture_on_commit_callbacks(execute=True):
        services.retro_escape_classify(
            retro=retro, escape=escape, category="coverage_gap", stage=stages[0]
        )
    with django_capture_on_commit_callbacks(execute=True):
        services.retro_advance(retro=retro, expected_phase=Phase.CATEGORIZE, to_phase=Phase.WHYS)
    with django_capture_on_commit_callbacks(execute=True):
        why = services.why_add(retro=retro, escape=escape, text="No contract test", author=member)
    with django_capture_on_commit_callbacks(execute=True):
        services.why_edit(
            why=why, text="No contract test for refunds", expected_revision=1, by=member
        )

    assert [data for _, _, data in published] == [
        {"version": 2},
        {"version": 3, "escape": escape.pk},
        {"version": 4},
        # A why's author: their own boards re-fetch it (edit and delete are theirs alone).
        {"version": 5, "escape": escape.pk, "by": member.pk},
        {"version": 6, "escape": escape.pk},
    ]
