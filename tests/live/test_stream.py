"""The event stream of a retro: who may open it, what it sends first, what follows."""

import asyncio

import pytest
from asgiref.sync import async_to_sync, sync_to_async
from django.test import AsyncClient
from django.urls import reverse

from retros import events, presence, services
from retros.models import Phase, Retrospective
from tests.live.conftest import StreamReader


def stream_url(retro: Retrospective, team_slug: str | None = None) -> str:
    return reverse("retro_stream", kwargs={"team": team_slug or retro.team.slug, "pk": retro.pk})


def async_client_for(user) -> AsyncClient:
    client = AsyncClient()
    async_to_sync(client.aforce_login)(user)
    return client


@pytest.fixture(autouse=True)
def quick_poller(monkeypatch):
    # The local poller reads from its own thread, which cannot see the test's uncommitted
    # rows; these tests publish on commit instead, so it only needs to keep out of the way.
    monkeypatch.setattr(events, "POLL_SECONDS", 3600)


def advance(retro: Retrospective, capture) -> int:
    """A committed change, published as it would be (the test's transaction never commits)."""
    with capture(execute=True):
        services.retro_advance(retro=retro, expected_phase=Phase.GATHER, to_phase=Phase.CATEGORIZE)
    return Retrospective.objects.get(pk=retro.pk).version


def test_a_member_gets_retry_and_the_current_version_first(retro, member):
    Retrospective.objects.filter(pk=retro.pk).update(version=7)
    client = async_client_for(member)

    async def scenario():
        response = await client.get(stream_url(retro))
        assert response.status_code == 200
        assert response["Content-Type"] == "text/event-stream"
        assert response["Cache-Control"] == "no-cache"
        assert response["X-Accel-Buffering"] == "no"
        reader = StreamReader(response)
        first, second, third = [await reader.next() for _ in range(3)]
        await reader.disconnect()
        return first, second, third

    first, second, third = async_to_sync(scenario)()
    assert first.retry == 1000 and first.event == ""
    assert (second.event, second.id, second.data) == ("version", "7", {"version": 7})
    assert third.event == "presence"


def test_a_committed_change_reaches_every_open_stream_once(
    retro, member, viewer, django_capture_on_commit_callbacks
):
    clients = [async_client_for(member), async_client_for(viewer)]

    async def scenario():
        readers = []
        for client in clients:
            response = await client.get(stream_url(retro))
            reader = StreamReader(response)
            assert (await reader.expect("version")).data == {"version": 1}
            readers.append(reader)
        version = await sync_to_async(advance)(retro, django_capture_on_commit_callbacks)
        got = [await reader.expect("version") for reader in readers]
        again = [await reader.next_event("version", timeout=0.3) for reader in readers]
        for reader in readers:
            await reader.disconnect()
        return version, got, again

    version, got, again = async_to_sync(scenario)()
    assert version == 2
    assert [(m.id, m.data) for m in got] == [("2", {"version": 2})] * 2
    assert again == [None, None]


def test_a_change_to_one_card_reaches_the_stream_with_its_escape(
    retro, escape, member, stages, django_capture_on_commit_callbacks
):
    client = async_client_for(member)

    def classify() -> None:
        advance(retro, django_capture_on_commit_callbacks)
        with django_capture_on_commit_callbacks(execute=True):
            services.retro_escape_classify(
                retro=retro, escape=escape, category="coverage_gap", stage=stages[0]
            )

    async def scenario():
        reader = StreamReader(await client.get(stream_url(retro)))
        await reader.expect("version")
        await sync_to_async(classify)()
        got = [await reader.expect("version"), await reader.expect("version")]
        await reader.disconnect()
        return got

    phase, card = async_to_sync(scenario)()
    assert phase.data == {"version": 2}
    html = card.data.pop("html")
    assert card.data == {"version": 3, "escape": escape.pk}
    # The card itself comes with it, as the board shows it now (retros/stream.py pushed_card).
    assert f'id="escape-{escape.pk}"' in html and "Coverage Gap" in html


def test_a_viewer_may_watch(retro, viewer):
    client = async_client_for(viewer)

    async def scenario():
        response = await client.get(stream_url(retro))
        reader = StreamReader(response)
        version = await reader.expect("version")
        await reader.disconnect()
        return response.status_code, version

    status, version = async_to_sync(scenario)()
    assert status == 200 and version.data == {"version": 1}


def test_an_outsider_gets_404_and_no_stream(retro, outsider, other_team):
    client = async_client_for(outsider)

    async def scenario():
        own_team = await client.get(stream_url(retro, other_team.slug))
        their_team = await client.get(stream_url(retro))
        return own_team, their_team

    for response in async_to_sync(scenario)():
        assert response.status_code == 404
        assert not response.streaming
        assert response["Content-Type"] != "text/event-stream"
        assert b"event:" not in response.content and b"retry:" not in response.content


def test_anonymous_is_sent_to_sign_in_without_a_stream(retro):
    response = async_to_sync(AsyncClient().get)(stream_url(retro))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))
    assert not response.streaming


def test_a_retro_that_does_not_exist_is_404(retro, member):
    client = async_client_for(member)
    url = reverse("retro_stream", kwargs={"team": retro.team.slug, "pk": retro.pk + 1000})
    response = async_to_sync(client.get)(url)
    assert response.status_code == 404 and not response.streaming


def test_only_get_is_allowed(retro, member):
    client = async_client_for(member)
    response = async_to_sync(client.post)(stream_url(retro))
    assert response.status_code == 405


@pytest.mark.usefixtures("local_backend")
def test_an_open_stream_is_presence_and_leaving_ends_it(retro, member, facilitator):
    mia, fred = async_client_for(member), async_client_for(facilitator)

    async def scenario():
        first = StreamReader(await mia.get(stream_url(retro)))
        await first.expect("presence")
        while await first.next_event("presence", timeout=0.3):
            pass  # the echo of Mia's own arrival
        here_alone = presence.present_user_ids(retro.pk)
        second = StreamReader(await fred.get(stream_url(retro)))
        await second.expect("presence")
        await first.expect("presence")  # Mia hears that Fred came...
        here_both = sorted(presence.present_user_ids(retro.pk))
        await second.disconnect()
        await first.expect("presence")  # ...and that he went
        here_after = presence.present_user_ids(retro.pk)
        await first.disconnect()
        await asyncio.sleep(0)
        return here_alone, here_both, here_after

    here_alone, here_both, here_after = async_to_sync(scenario)()
    assert here_alone == [member.pk]
    assert here_both == sorted([member.pk, facilitator.pk])
    assert here_after == [member.pk]
    assert presence.present_user_ids(retro.pk) == []


def test_a_stream_catches_up_on_a_resync(retro, member, django_capture_on_commit_callbacks):
    """After a backlog or a lost Redis connection the stream re-reads the version."""
    client = async_client_for(member)

    async def scenario():
        reader = StreamReader(await client.get(stream_url(retro)))
        await reader.expect("presence")
        # A change whose announcement never arrived...
        await sync_to_async(lambda: Retrospective.objects.filter(pk=retro.pk).update(version=5))()
        # ...and the hub telling the stream to look again.
        events.get_hub().resync_all()
        caught_up = await reader.expect("version")
        await reader.disconnect()
        return caught_up

    caught_up = async_to_sync(scenario)()
    assert (caught_up.id, caught_up.data) == ("5", {"version": 5})


def test_a_quiet_stream_sends_a_heartbeat_comment(retro, member, monkeypatch):
    from retros import stream

    monkeypatch.setattr(stream, "HEARTBEAT_SECONDS", 0.1)
    client = async_client_for(member)

    async def scenario():
        reader = StreamReader(await client.get(stream_url(retro)))
        message = await reader.next()
        while message is not None and message.comment is None:
            message = await reader.next()
        await reader.disconnect()
        return message

    ping = async_to_sync(scenario)()
    assert ping is not None and ping.comment == "ping" and ping.event == ""


def test_a_busy_stream_still_sends_its_heartbeat(retro, member, monkeypatch):
    """Presence expires without heartbeats; a steady flow of events must not starve them."""
    from retros import stream

    monkeypatch.setattr(stream, "HEARTBEAT_SECONDS", 0.2)
    client = async_client_for(member)

    async def scenario():
        reader = StreamReader(await client.get(stream_url(retro)))
        await reader.expect("presence")
        hub, seen = events.get_hub(), []
        for version in range(2, 14):
            hub.deliver(events.Event(retro.pk, events.VERSION, {"version": version}))
            while (message := await reader.next(timeout=0.05)) is not None:
                seen.append(message.comment or message.event)
        await reader.disconnect()
        return seen

    seen = async_to_sync(scenario)()
    assert seen.count("version") == 12
    assert "ping" in seen
