"""The end of the timer reaches every board, even when nobody touches the board.

Starting (resuming, extending) the timer queues `retros.timer_expire` for the moment it
ends, once the transaction commits; the task bumps the version unless the timer changed.
"""

import subprocess
import sys
import time
from datetime import datetime

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from retros import facilitation
from retros.models import Retrospective
from retros.tasks import retro_timer_expire_task
from tests.solo_worker import solo_worker

pytestmark = pytest.mark.processes


def version_of(retro: Retrospective) -> int:
    return Retrospective.objects.get(pk=retro.pk).version


def ends_at_of(retro: Retrospective) -> datetime:
    ends_at = Retrospective.objects.get(pk=retro.pk).timer_ends_at
    assert ends_at is not None
    return ends_at


# --- The task.


def test_the_expiry_bumps_the_version_so_every_board_shows_times_up(retro):
    facilitation.timer_start(retro=retro, minutes=1)
    ends_at = ends_at_of(retro)
    before = version_of(retro)

    assert retro_timer_expire_task(retro.pk, ends_at.isoformat()) is True

    assert version_of(retro) == before + 1
    assert ends_at_of(retro) == ends_at  # the timer itself is left as it was


def test_a_stale_expiry_does_nothing_once_the_timer_was_changed(retro):
    facilitation.timer_start(retro=retro, minutes=1)
    first_end = ends_at_of(retro).isoformat()

    facilitation.timer_extend(retro=retro, minutes=2)
    before = version_of(retro)
    assert retro_timer_expire_task(retro.pk, first_end) is False
    assert version_of(retro) == before

    second_end = ends_at_of(retro).isoformat()
    facilitation.timer_pause(retro=retro)
    assert retro_timer_expire_task(retro.pk, second_end) is False
    facilitation.timer_resume(retro=retro)
    facilitation.timer_clear(retro=retro)
    before = version_of(retro)
    assert retro_timer_expire_task(retro.pk, second_end) is False
    assert version_of(retro) == before


def test_the_expiry_of_a_deleted_retro_returns_quietly(retro):
    facilitation.timer_start(retro=retro, minutes=1)
    ends_at = ends_at_of(retro).isoformat()
    retro_id = retro.pk
    retro.delete()
    assert retro_timer_expire_task(retro_id, ends_at) is False
    assert retro_timer_expire_task(987_654, ends_at) is False


def test_the_service_refuses_quietly_when_the_retro_vanished_after_it_was_read(retro):
    facilitation.timer_start(retro=retro, minutes=1)
    ends_at = ends_at_of(retro)
    Retrospective.objects.filter(pk=retro.pk).delete()
    assert facilitation.timer_expire(retro=retro, ends_at=ends_at) is False


# --- Scheduling on commit.


@pytest.fixture
def queued(monkeypatch) -> list[dict]:
    """What the timer services queue, instead of sending it to the broker."""
    calls: list[dict] = []
    monkeypatch.setattr(
        retro_timer_expire_task, "apply_async", lambda **kwargs: calls.append(kwargs)
    )
    return calls


def test_starting_the_timer_queues_its_expiry_for_when_it_ends_after_commit(
    retro, queued, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks() as callbacks:
        facilitation.timer_start(retro=retro, minutes=5)
    assert queued == [], "nothing is queued before the transaction commits"

    for callback in callbacks:
        callback()

    ends_at = ends_at_of(retro)
    assert queued == [{"args": (retro.pk, ends_at.isoformat()), "eta": ends_at}]


def test_resuming_and_extending_queue_the_new_end_and_pausing_queues_nothing(
    retro, queued, django_capture_on_commit_callbacks
):
    facilitation.timer_start(retro=retro, minutes=5)
    with django_capture_on_commit_callbacks(execute=True):
        facilitation.timer_pause(retro=retro)
    assert queued == []
    with django_capture_on_commit_callbacks(execute=True):
        facilitation.timer_resume(retro=retro)
    with django_capture_on_commit_callbacks(execute=True):
        facilitation.timer_extend(retro=retro, minutes=1)
    ends_at = ends_at_of(retro)
    assert [call["eta"] for call in queued][-1] == ends_at
    assert len(queued) == 2


def test_a_refused_start_queues_nothing(retro, queued, django_capture_on_commit_callbacks):
    with (
        django_capture_on_commit_callbacks(execute=True) as callbacks,
        pytest.raises(ValidationError, match="between 1 and 120"),
    ):
        facilitation.timer_start(retro=retro, minutes=500)
    assert callbacks == []
    assert queued == []


def test_a_broker_that_is_down_does_not_undo_or_fail_the_start(
    retro, monkeypatch, django_capture_on_commit_callbacks
):
    def broker_down(**kwargs):
        raise ConnectionError("broker unreachable")

    monkeypatch.setattr(retro_timer_expire_task, "apply_async", broker_down)
    with django_capture_on_commit_callbacks(execute=True):
        facilitation.timer_start(retro=retro, minutes=5)
    assert facilitation.timer_state(Retrospective.objects.get(pk=retro.pk)).state == "running"


# --- A real worker.


# The web side, in its own process with the worker's environment. The clock is set back
# 52 seconds so that a one-minute timer (the shortest there is) ends eight seconds from now:
# time for this process to exit and the test to see the start alone on a busy machine (with
# two seconds, a CI run saw the worker end the timer first).
START_TIMER = """
import django
django.setup()
from datetime import timedelta
from unittest import mock
from django.utils import timezone
from retros import facilitation
from retros.models import Retrospective

real_now = timezone.now
with mock.patch("django.utils.timezone.now", lambda: real_now() - timedelta(seconds=52)):
    facilitation.timer_start(retro=Retrospective.objects.get(pk={pk}), minutes=1)
"""


@pytest.mark.django_db(transaction=True)
def test_a_real_worker_ends_the_timer_and_bumps_the_version(retro, tmp_path):
    with solo_worker(tmp_path) as worker:
        before = version_of(retro)
        subprocess.run(  # noqa: S603
            [sys.executable, "-c", START_TIMER.format(pk=retro.pk)],
            cwd=worker.base,
            env=worker.env,
            check=True,
            timeout=60,
        )
        assert version_of(retro) == before + 1, "the start itself is one change"
        deadline = time.monotonic() + 45
        while version_of(retro) == before + 1 and time.monotonic() < deadline:
            time.sleep(0.3)
        fresh = Retrospective.objects.get(pk=retro.pk)
        worker_log = worker.log()
        assert fresh.version == before + 2, worker_log
        assert fresh.timer_ends_at is not None
        assert fresh.timer_ends_at <= timezone.now()
        assert "retros.timer_expire" in worker_log
