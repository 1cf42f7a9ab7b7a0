"""Presence: who has the board open, counted once per person, gone when they go."""

import time

import pytest
from django.urls import reverse

from retros import events, presence
from tests.conftest import client_for
from tests.live.conftest import REDIS_URL

BACKENDS = [
    "local",
    pytest.param("redis", marks=pytest.mark.skipif(not REDIS_URL, reason="REDIS_URL unset")),
]


@pytest.fixture(params=BACKENDS)
def backend(request, settings):
    settings.REDIS_URL = REDIS_URL if request.param == "redis" else ""
    if request.param == "redis":
        client = events.sync_client(REDIS_URL)
        for key in client.scan_iter("leakseal:presence:*"):
            client.delete(key)
    return request.param


@pytest.fixture
def announced(monkeypatch) -> list[int]:
    retro_ids: list[int] = []
    monkeypatch.setattr(presence, "_announce", retro_ids.append)
    return retro_ids


def test_a_person_counts_once_however_many_tabs_and_leaves_with_the_last(
    backend, announced, member, facilitator
):
    retro_id = 4242
    tab1, tab2, fred = (presence.new_connection() for _ in range(3))

    presence.join(retro_id, member.pk, tab1)
    presence.join(retro_id, member.pk, tab2)
    presence.join(retro_id, facilitator.pk, fred)
    assert sorted(presence.present_user_ids(retro_id)) == sorted([member.pk, facilitator.pk])
    assert announced == [retro_id, retro_id], "Mia's second tab changes nobody's strip"

    presence.leave(retro_id, member.pk, tab1)
    assert sorted(presence.present_user_ids(retro_id)) == sorted([member.pk, facilitator.pk])
    presence.leave(retro_id, member.pk, tab2)
    presence.leave(retro_id, member.pk, tab2)  # twice: no effect the second time
    assert presence.present_user_ids(retro_id) == [facilitator.pk]
    assert len(announced) == 3

    presence.leave(retro_id, facilitator.pk, fred)
    assert presence.present_user_ids(retro_id) == []
    assert len(announced) == 4


def test_presence_is_per_retro(backend, announced, member):
    connection = presence.new_connection()
    presence.join(4243, member.pk, connection)
    assert presence.present_user_ids(4244) == []
    presence.leave(4243, member.pk, connection)


@pytest.mark.skipif(not REDIS_URL, reason="REDIS_URL unset")
def test_a_stream_of_a_crashed_process_expires_and_its_going_is_announced(
    settings, announced, member, facilitator, monkeypatch
):
    settings.REDIS_URL = REDIS_URL
    retro_id = 4245
    events.sync_client(REDIS_URL).delete(f"leakseal:presence:{retro_id}")
    monkeypatch.setattr(presence, "TTL_SECONDS", 0.3)
    ghost, alive = presence.new_connection(), presence.new_connection()
    presence.join(retro_id, member.pk, ghost)  # its process dies: no heartbeat, no leave
    presence.join(retro_id, facilitator.pk, alive)
    announced.clear()

    time.sleep(0.4)
    presence.heartbeat(retro_id, facilitator.pk, alive)

    assert presence.present_user_ids(retro_id) == [facilitator.pk]
    assert announced == [retro_id]
    presence.leave(retro_id, facilitator.pk, alive)


@pytest.mark.usefixtures("local_backend")
def test_the_strip_names_who_is_here_even_in_an_anonymous_retro(
    team, facilitator, member, viewer, escape
):
    from retros import services

    retro = services.retro_create(
        team=team, facilitator=facilitator, title="Anon", escapes=[escape], anonymous=True
    )
    member.first_name, member.last_name = "Mia", "Wong"
    member.save()
    connections = [presence.new_connection() for _ in range(2)]
    presence.join(retro.pk, member.pk, connections[0])
    presence.join(retro.pk, facilitator.pk, connections[1])
    url = reverse("retro_presence", kwargs={"team": team.slug, "pk": retro.pk})
    try:
        response = client_for(viewer).get(url, headers={"HX-Request": "true"})
        mine = client_for(member).get(url).content.decode()
    finally:
        presence.leave(retro.pk, member.pk, connections[0])
        presence.leave(retro.pk, facilitator.pk, connections[1])

    html = response.content.decode()
    assert response.status_code == 200
    assert "Here now (2)" in html
    assert html.index("fred") < html.index("Mia Wong")  # by name
    assert "<html" not in html  # the strip alone
    assert "Mia Wong (you)" in mine and "fred (you)" not in mine


@pytest.mark.usefixtures("local_backend")
def test_the_strip_is_empty_when_nobody_is_here(retro, member):
    url = reverse("retro_presence", kwargs={"team": retro.team.slug, "pk": retro.pk})
    response = client_for(member).get(url)
    assert response.status_code == 200
    assert "Here now" not in response.content.decode()


@pytest.mark.usefixtures("local_backend")
def test_the_board_page_lists_its_viewer_before_their_stream_opens(retro, member, facilitator):
    """The page comes with the strip as it will be once the person's stream has joined: it does
    not grow a line and move the board under their finger when their arrival is announced."""
    connection = presence.new_connection()
    presence.join(retro.pk, facilitator.pk, connection)
    url = reverse("retro_detail", kwargs={"team": retro.team.slug, "pk": retro.pk})
    try:
        page = client_for(member).get(url).content.decode()
        strip = client_for(member).get(
            reverse("retro_presence", kwargs={"team": retro.team.slug, "pk": retro.pk})
        )
    finally:
        presence.leave(retro.pk, facilitator.pk, connection)
    assert "Here now (2)" in page
    assert f"{member.get_username()} (you)" in page
    assert "Here now (1)" in strip.content.decode(), "the strip's own answer: who is here"


@pytest.mark.usefixtures("local_backend")
def test_the_strip_shows_only_members_of_the_team(retro, member, outsider):
    """Somebody who left the team while their board was open drops off the strip."""
    connections = [presence.new_connection() for _ in range(2)]
    presence.join(retro.pk, member.pk, connections[0])
    presence.join(retro.pk, outsider.pk, connections[1])
    try:
        users = presence.present_users(retro.pk, retro.team)
    finally:
        presence.leave(retro.pk, member.pk, connections[0])
        presence.leave(retro.pk, outsider.pk, connections[1])
    assert users == [member]


def test_the_strip_refuses_outsiders_and_other_methods(retro, outsider, member, other_team):
    url = reverse("retro_presence", kwargs={"team": retro.team.slug, "pk": retro.pk})
    elsewhere = reverse("retro_presence", kwargs={"team": other_team.slug, "pk": retro.pk})
    assert client_for(outsider).get(url).status_code == 404
    assert client_for(outsider).get(elsewhere).status_code == 404
    assert client_for(member).post(url).status_code == 405
