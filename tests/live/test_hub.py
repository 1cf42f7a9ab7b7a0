"""The per-process hub: fan-out to every stream of a retro, bounded queues, the local poller."""

import asyncio
import threading

import pytest
from django.db import connection
from django.db.models import F

from retros import events
from retros.models import Retrospective
from tests.live.conftest import in_own_loop

pytestmark = pytest.mark.usefixtures("local_backend")


@pytest.fixture
def no_poller(monkeypatch):
    """Hub tests without a database: the local poller would look for versions in it."""
    monkeypatch.setattr(events, "POLL_SECONDS", 3600)


def publish_from_another_thread(retro_id: int, version: int) -> None:
    # As a sync view does under ASGI: it runs in a worker thread, not the loop's.
    worker = threading.Thread(target=events.publish_version, args=(retro_id, version))
    worker.start()
    worker.join()


@pytest.mark.usefixtures("no_poller")
def test_an_event_reaches_every_stream_of_its_retro_and_no_other():
    async def scenario() -> None:
        hub = events.get_hub()
        async with (
            hub.subscription(1) as first,
            hub.subscription(1) as second,
            hub.subscription(1) as third,
            hub.subscription(2) as elsewhere,
        ):
            assert hub.subscriber_count(1) == 3
            publish_from_another_thread(1, 5)
            for subscription in (first, second, third):
                event = await subscription.get(timeout=2)
                assert event == events.Event(1, events.VERSION, {"version": 5})
            assert await elsewhere.get(timeout=0.2) is None
        assert hub.subscriber_count() == 0

    in_own_loop(scenario)


@pytest.mark.usefixtures("no_poller")
def test_a_stream_that_stops_reading_gets_one_resync_instead_of_a_growing_backlog():
    async def scenario() -> None:
        hub = events.get_hub()
        async with hub.subscription(3) as slow, hub.subscription(3) as quick:
            for version in range(2, 2 + events.QUEUE_MAX + 10):
                hub.deliver(events.Event(3, events.VERSION, {"version": version}))
                assert await quick.get(timeout=1) is not None
            assert slow._queue.qsize() == 1
            assert (await slow.get(timeout=1)) == events.Event(3, events.RESYNC)
            hub.deliver(events.Event(3, events.VERSION, {"version": 99}))
            assert (await slow.get(timeout=1)) == events.Event(3, events.VERSION, {"version": 99})

    in_own_loop(scenario)


@pytest.mark.usefixtures("no_poller")
def test_publishing_with_no_stream_open_is_a_quiet_no_op():
    events.publish_version(4, 2)  # no hub, nobody listening: nothing to do, nothing raised


def bump_elsewhere(retro_id: int) -> None:
    """A write that publishes nothing, as one of another process looks from here."""
    try:
        Retrospective.objects.filter(pk=retro_id).update(version=F("version") + 2)
    finally:
        connection.close()


@pytest.mark.django_db(transaction=True)
def test_the_local_poller_announces_a_version_bumped_without_an_event(
    team, facilitator, monkeypatch
):
    """A write of another process publishes into that process only; the poller finds it."""
    monkeypatch.setattr(events, "POLL_SECONDS", 0.05)
    retro = Retrospective.objects.create(team=team, title="Polled", facilitator=facilitator)

    async def scenario() -> list[events.Event | None]:
        hub = events.get_hub()
        async with hub.subscription(retro.pk) as subscription:
            subscription.starts_at(1)
            await asyncio.sleep(0.2)  # the poller has seen version 1
            await asyncio.to_thread(bump_elsewhere, retro.pk)
            got = [await subscription.get(timeout=3)]
            # Announced once: the next polls see nothing new.
            got.append(await subscription.get(timeout=0.3))
            return got

    assert in_own_loop(scenario) == [
        events.Event(retro.pk, events.VERSION, {"version": 3}),
        None,
    ]
