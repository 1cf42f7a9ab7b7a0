"""The card a change touched, pushed down the streams: rendered once per version and role, the
same for everyone who sees it alike, and nothing of one person in it (retros/stream.py,
retros/views.py shared_cards_html; board.js puts each person's own parts in)."""

import re

import pytest
from asgiref.sync import async_to_sync, sync_to_async
from django.contrib.auth.models import User

from retros import events, gather, services, stream
from retros.facilitation import vote_cast, voting_open
from retros.models import FactKind, Phase, Retrospective
from retros.views import CSRF_SLOT
from teams.models import Membership, Role
from teams.services import membership_set
from tests.live.conftest import StreamReader
from tests.live.test_stream import async_client_for, stream_url

CSRF_VALUES = re.compile(r'name="csrfmiddlewaretoken" value="([^"]*)"')


@pytest.fixture(autouse=True)
def quick_poller(monkeypatch):
    monkeypatch.setattr(events, "POLL_SECONDS", 3600)  # as in test_stream.py


@pytest.fixture
def member2(team) -> User:
    user = User.objects.create_user(username="noor", password="pw-noor")
    membership_set(team=team, user=user, role=Role.MEMBER)
    return user


@pytest.fixture
def renders(monkeypatch) -> list[str]:
    """The role of every shared render the streams make."""
    made: list[str] = []
    real = stream.shared_cards_html

    def counted(retro, role, escape_ids):
        made.append(role)
        return real(retro, role, escape_ids)

    monkeypatch.setattr(stream, "shared_cards_html", counted)
    return made


def to_whys(retro: Retrospective, capture) -> None:
    with capture(execute=True):
        services.retro_advance(retro=retro, expected_phase=Phase.GATHER, to_phase=Phase.CATEGORIZE)
        services.retro_advance(retro=retro, expected_phase=Phase.CATEGORIZE, to_phase=Phase.WHYS)


def what_each_stream_gets(users, retro, change) -> list[dict]:
    """The version event each user's stream sends for the committed change `change()`."""
    clients = [async_client_for(user) for user in users]
    url = stream_url(retro)

    async def scenario():
        readers = []
        for client in clients:
            reader = StreamReader(await client.get(url))
            await reader.expect("version")
            readers.append(reader)
        await sync_to_async(change)()
        got = [await reader.expect("version") for reader in readers]
        for reader in readers:
            await reader.disconnect()
        return got

    return [message.data for message in async_to_sync(scenario)()]


def test_everyone_of_a_role_gets_the_same_card_rendered_once_per_role(
    retro, escape, member, member2, viewer, facilitator, renders, django_capture_on_commit_callbacks
):
    to_whys(retro, django_capture_on_commit_callbacks)
    why = services.why_add(retro=retro, escape=escape, text="No contract test", author=member)

    def edit() -> None:
        with django_capture_on_commit_callbacks(execute=True):
            services.why_edit(
                why=why, text="No contract test for refunds", expected_revision=1, by=facilitator
            )

    got = what_each_stream_gets([member, member2, viewer, facilitator], retro, edit)
    as_member, as_member2, as_viewer, as_facilitator = (data["html"] for data in got)
    assert {data["version"] for data in got} == {Retrospective.objects.get(pk=retro.pk).version}
    assert as_member == as_member2, "the same thing seen alike: the same bytes"
    assert sorted(renders) == [Role.FACILITATOR, Role.MEMBER, Role.VIEWER], "once per role"
    for html in (as_member, as_viewer, as_facilitator):
        assert "No contract test for refunds" in html
    assert "<form" not in as_viewer, "a viewer's card has no controls"
    assert "Mark root cause" in as_member and "Focus</button>" not in as_member
    assert "Focus</button>" in as_facilitator, "the facilitator's controls are theirs"
    # A member's render offers edit and delete on every why, marked for board.js to keep only
    # on the person's own (read off the card on screen); the facilitator may change any.
    assert as_member.count("data-author-only") == 2
    assert "data-author-only" not in as_facilitator


def test_nothing_of_one_person_is_in_what_is_pushed(
    team, escape, member, member2, facilitator, renders, django_capture_on_commit_callbacks
):
    """Anonymous retro, voting open, the member has voted and written whys: the card pushed to
    the member and to another member is the same, with no token, vote or author of anyone."""
    retro = services.retro_create(
        team=team, facilitator=facilitator, title="Anon", escapes=[escape], anonymous=True
    )
    to_whys(retro, django_capture_on_commit_callbacks)
    services.why_add(retro=retro, escape=escape, text="Mia's why", author=member)
    voting_open(retro=retro, votes_per_person=3)
    vote_cast(retro=retro, escape=escape, voter=member)

    def add() -> None:
        with django_capture_on_commit_callbacks(execute=True):
            services.why_add(retro=retro, escape=escape, text="Noor's why", author=member2)

    got = what_each_stream_gets([member, member2], retro, add)
    assert all(set(data) == {"version", "escape", "html"} for data in got), "no `by` sent on"
    html = got[0]["html"]
    assert got[1]["html"] == html
    assert set(CSRF_VALUES.findall(html)) == {CSRF_SLOT}, "no one's CSRF token"
    assert "yours" not in html and "votes left" not in html and "Take back" not in html
    assert f'data-personal="votes-{escape.pk}"></div>' in html, "the own votes left empty"
    # (The team's members are listed as possible action owners, for everyone alike.)
    assert "why-author" not in html and "— mia" not in html and "— noor" not in html
    assert "1 vote" in html, "the count everyone sees is in"


def test_the_author_of_a_new_why_refetches_it_and_the_others_get_it_pushed(
    retro, escape, member, member2, django_capture_on_commit_callbacks
):
    to_whys(retro, django_capture_on_commit_callbacks)

    def add() -> None:
        with django_capture_on_commit_callbacks(execute=True):
            services.why_add(retro=retro, escape=escape, text="Mine", author=member)

    authors, others = what_each_stream_gets([member, member2], retro, add)
    # The author's other tabs need the why's edit and delete, which only they see.
    version = Retrospective.objects.get(pk=retro.pk).version
    assert authors == {"version": version, "escape": escape.pk}
    assert "Mine" in others["html"]


def test_a_new_facts_author_refetches_it_and_others_get_its_delete_marked_as_the_authors(
    retro, escape, member, member2, django_capture_on_commit_callbacks
):
    """A fact's Delete is its author's (or a facilitator's): as for a why, the author's boards
    re-fetch their own card; the others' pushed card marks it for board.js to drop."""
    to_whys(retro, django_capture_on_commit_callbacks)

    def add() -> None:
        with django_capture_on_commit_callbacks(execute=True):
            gather.fact_add(
                retro=retro,
                escape=escape,
                kind=FactKind.TIMELINE,
                text="504s from 14:02",
                author=member,
            )

    authors, others = what_each_stream_gets([member, member2], retro, add)
    version = Retrospective.objects.get(pk=retro.pk).version
    assert authors == {"version": version, "escape": escape.pk}
    assert "504s from 14:02" in others["html"]
    delete = re.search(r"<form[^>]*/facts/\d+/delete/[^>]*>", others["html"])
    assert delete is not None and "data-author-only" in delete.group(0)


def test_the_re_fetched_card_has_each_persons_own_parts(
    retro, escape, member, member2, django_capture_on_commit_callbacks
):
    """What board.js keeps from the card on screen must be right there: the per-person render."""
    from tests.conftest import client_for

    to_whys(retro, django_capture_on_commit_callbacks)
    why = services.why_add(retro=retro, escape=escape, text="Mine", author=member)
    voting_open(retro=retro, votes_per_person=2)
    vote_cast(retro=retro, escape=escape, voter=member)
    url = f"/t/{retro.team.slug}/retros/{retro.pk}/?escape={escape.pk}"

    def card_of(user) -> str:
        response = client_for(user).get(url, headers={"HX-Request": "true"})
        assert response.status_code == 200
        return response.content.decode()

    mine, theirs = card_of(member), card_of(member2)
    assert "(1 yours)" in mine and "yours" not in theirs
    assert "Take back" in mine and "Take back" not in theirs
    assert f'id="why-{why.pk}-text"' in mine and mine.count("data-author-only") == 2
    assert f'id="why-{why.pk}-text"' not in theirs and "data-author-only" not in theirs
    assert CSRF_SLOT not in mine


def test_someone_taken_off_the_team_stops_getting_the_board(retro, member, monkeypatch):
    monkeypatch.setattr(stream, "HEARTBEAT_SECONDS", 0.1)
    client = async_client_for(member)
    url = stream_url(retro)

    async def scenario():
        reader = StreamReader(await client.get(url))
        await reader.expect("presence")
        await sync_to_async(Membership.objects.filter(user=member).delete)()
        try:
            while await reader.next(timeout=2.0) is not None:
                pass
        except StopAsyncIteration:
            return "ended"
        return "still open"

    assert async_to_sync(scenario)() == "ended"
