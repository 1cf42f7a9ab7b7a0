"""The Redis backend: publish from any process, one pub/sub connection per web process.

These run when REDIS_URL is set (CI's second pass); they talk to the real server.
"""

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import pytest

from retros import events
from tests.live.conftest import REDIS_URL, in_own_loop

pytestmark = [
    pytest.mark.processes,
    pytest.mark.skipif(not REDIS_URL, reason="REDIS_URL is not set"),
]
BASE_DIR = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def redis_backend(settings):
    settings.REDIS_URL = REDIS_URL


def hub_connections() -> list[dict]:
    """This process's pub/sub connections to Redis, as the server lists them."""
    name = f"leakseal-hub-{os.getpid()}"
    return [c for c in events.sync_client(REDIS_URL).client_list() if c.get("name") == name]


def publish_from_another_process(retro_id: int, version: int) -> None:
    code = f"from retros import events; events.publish_version({retro_id}, {version})"
    env = {**os.environ, "REDIS_URL": REDIS_URL}
    subprocess.run(  # noqa: S603 - the test's own code
        [sys.executable, "manage.py", "shell", "-c", code],
        cwd=BASE_DIR,
        env=env,
        check=True,
        timeout=60,
        capture_output=True,
    )


def test_streams_of_one_process_share_one_subscription_and_hear_other_processes():
    async def scenario():
        hub = events.get_hub()
        async with (
            hub.subscription(9001) as first,
            hub.subscription(9001) as second,
            hub.subscription(9002) as other,
        ):
            connections = hub_connections()
            await asyncio.to_thread(publish_from_another_process, 9001, 7)
            got = [await first.get(timeout=5), await second.get(timeout=5)]
            nothing = await other.get(timeout=0.2)
        await asyncio.sleep(0.1)  # the last stream closed: so does the subscription
        return connections, got, nothing, hub_connections()

    during, got, nothing, after = in_own_loop(scenario)
    assert len(during) == 1, "one pub/sub connection however many streams"
    assert "psub=1" in " ".join(f"{k}={v}" for k, v in during[0].items())
    assert got == [events.Event(9001, events.VERSION, {"version": 7})] * 2
    assert nothing is None
    assert after == []


def test_the_hub_reconnects_after_losing_redis_and_resyncs_its_streams(monkeypatch):
    monkeypatch.setattr(events, "BACKOFF_SECONDS", (0.05, 0.2))

    async def scenario():
        hub = events.get_hub()
        async with hub.subscription(9003) as subscription:
            (connection,) = hub_connections()
            events.sync_client(REDIS_URL).client_kill_filter(_id=connection["id"])
            resync = await subscription.get(timeout=5)
            await asyncio.to_thread(events.publish_version, 9003, 4)
            after = await subscription.get(timeout=5)
            return resync, after, hub_connections()

    resync, after, connections = in_own_loop(scenario)
    assert resync == events.Event(9003, events.RESYNC)
    assert after == events.Event(9003, events.VERSION, {"version": 4})
    assert len(connections) == 1


def test_the_hub_outlives_a_failure_of_its_own_listener_and_resyncs_its_streams(
    monkeypatch, caplog
):
    """Not only a lost connection: any exception in the listener is logged and the listener
    starts again, or every stream of the process would stay deaf without a word."""
    monkeypatch.setattr(events, "BACKOFF_SECONDS", (0.05, 0.2))
    handle = events.Hub._on_redis_message
    failed: list[bool] = []

    def fails_once(hub, channel_name, data):
        if not failed:
            failed.append(True)
            raise RuntimeError("a bug in the listener")
        handle(hub, channel_name, data)

    monkeypatch.setattr(events.Hub, "_on_redis_message", fails_once)

    async def scenario():
        hub = events.get_hub()
        async with hub.subscription(9005) as subscription:
            await asyncio.to_thread(events.publish_version, 9005, 2)  # the listener fails
            resync = await subscription.get(timeout=5)
            await asyncio.to_thread(events.publish_version, 9005, 3)
            return resync, await subscription.get(timeout=5)

    resync, after = in_own_loop(scenario)
    assert resync == events.Event(9005, events.RESYNC)
    assert after == events.Event(9005, events.VERSION, {"version": 3})
    assert "the Redis listener failed" in caplog.text and "a bug in the listener" in caplog.text


def test_a_malformed_message_is_ignored():
    async def scenario():
        hub = events.get_hub()
        async with hub.subscription(9004) as subscription:
            client = events.sync_client(REDIS_URL)
            await asyncio.to_thread(client.publish, events.channel(9004), b"not json")
            await asyncio.to_thread(events.publish_version, 9004, 2)
            return await subscription.get(timeout=5)

    assert in_own_loop(scenario) == events.Event(9004, events.VERSION, {"version": 2})
