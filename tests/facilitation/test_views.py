"""The facilitation controls on the board: who sees them, who may use them, what they change."""

import re
from datetime import UTC, timedelta

import pytest
from django.test import Client
from django.utils import timezone

from escapes.models import Escape
from retros import facilitation, services
from retros.models import Phase, Retrospective, Vote, VotingState, Why
from teams.services import api_token_create
from tests.conftest import client_for
from tests.facilitation.conftest import HX, advance_to, make_escape, url


def board_of(client: Client, retro: Retrospective) -> str:
    response = client.get(url("retro_detail", retro))
    assert response.status_code == 200
    return response.content.decode()


def fresh(retro: Retrospective) -> Retrospective:
    return Retrospective.objects.get(pk=retro.pk)


def card_order(html: str) -> list[int]:
    return [int(pk) for pk in re.findall(r'<article id="escape-(\d+)"', html)]


# --- Every endpoint: happy path, method, roles.


def facilitation_posts(retro: Retrospective, escape: Escape) -> list[tuple[str, dict]]:
    return [
        (url("retro_timer_start", retro), {"minutes": 5}),
        (url("retro_timer_pause", retro), {}),
        (url("retro_timer_resume", retro), {}),
        (url("retro_timer_extend", retro), {"minutes": 2}),
        (url("retro_timer_clear", retro), {}),
        (url("retro_focus", retro), {"escape": escape.pk}),
        (url("retro_voting_open", retro), {"votes_per_person": 2}),
        (url("retro_voting_close", retro), {}),
    ]


def test_a_facilitator_runs_timer_focus_and_voting_from_the_board(retro, escape, facilitator):
    client = client_for(facilitator)
    observed = []
    for endpoint, data in facilitation_posts(retro, escape):
        response = client.post(endpoint, data, headers=HX)
        assert response.status_code == 200, endpoint
        assert 'id="board"' in response.content.decode()
        assert "board-errors" not in response.content.decode(), endpoint
        r = fresh(retro)
        observed.append((facilitation.timer_state(r).state, r.focus_escape_id, r.voting))
    assert observed == [
        ("running", None, VotingState.NOT_STARTED),
        ("paused", None, VotingState.NOT_STARTED),
        ("running", None, VotingState.NOT_STARTED),
        ("running", None, VotingState.NOT_STARTED),
        ("off", None, VotingState.NOT_STARTED),
        ("off", escape.pk, VotingState.NOT_STARTED),
        ("off", escape.pk, VotingState.OPEN),
        ("off", escape.pk, VotingState.CLOSED),
    ]
    assert fresh(retro).votes_per_person == 2


def test_members_and_viewers_cannot_facilitate(retro, escape, member, viewer):
    before = fresh(retro).version
    for endpoint, data in facilitation_posts(retro, escape):
        assert client_for(member).post(endpoint, data, headers=HX).status_code == 403, endpoint
        assert client_for(viewer).post(endpoint, data, headers=HX).status_code == 403, endpoint
    assert fresh(retro).version == before


def test_outsiders_get_404_and_get_is_405(retro, escape, outsider, facilitator, member):
    facilitation.voting_open(retro=retro, votes_per_person=2)
    posts = [
        *facilitation_posts(retro, escape),
        (url("retro_vote", retro, escape_id=escape.pk), {}),
        (url("retro_unvote", retro, escape_id=escape.pk), {}),
    ]
    for endpoint, data in posts:
        assert client_for(outsider).post(endpoint, data).status_code == 404, endpoint
        assert client_for(facilitator).get(endpoint).status_code == 405, endpoint
    assert client_for(member).get(url("retro_vote", retro, escape_id=escape.pk)).status_code == 405


def test_a_votes_answer_carries_the_version_it_made(retro, escape, member):
    """Like every card's answer, a vote's brings the phase bar out of band: its version tells
    the live board that a refresh rendered before the vote must not put the card back."""
    facilitation.voting_open(retro=retro, votes_per_person=2)
    client = client_for(member)
    for name in ("retro_vote", "retro_vote", "retro_unvote"):
        html = client.post(url(name, retro, escape_id=escape.pk), headers=HX).content.decode()
        version = fresh(retro).version
        assert f'class="phase-bar" hx-swap-oob="true" data-version="{version}"' in html, name
        assert 'id="facilitation-bar"' in html, name
        assert f'id="escape-{escape.pk}"' in html, name


def test_a_refusal_is_shown_on_the_board_and_nothing_changes(retro, facilitator):
    before = fresh(retro).version
    response = client_for(facilitator).post(
        url("retro_timer_start", retro), {"minutes": 500}, headers=HX
    )
    assert "Choose between 1 and 120 minutes." in response.content.decode()
    response = client_for(facilitator).post(
        url("retro_timer_start", retro), {"minutes": "soon"}, headers=HX
    )
    assert "Enter whole minutes." in response.content.decode()
    response = client_for(facilitator).post(url("retro_timer_pause", retro), headers=HX)
    assert "No timer is running." in response.content.decode()
    assert fresh(retro).version == before


def test_without_htmx_facilitation_redirects_to_the_board_with_a_message(retro, facilitator):
    client = client_for(facilitator)
    response = client.post(url("retro_timer_start", retro), {"minutes": 3})
    assert response.status_code == 302
    assert response.headers["Location"] == url("retro_detail", retro)
    assert "Timer started." in board_of(client, retro)
    client.post(url("retro_voting_close", retro))
    assert "Voting is not open." in board_of(client, retro)


def test_focus_on_an_escape_outside_the_retro_is_refused(retro, team, facilitator, other_team):
    client = client_for(facilitator)
    elsewhere = make_escape(team, title="Not on this board")
    response = client.post(url("retro_focus", retro), {"escape": elsewhere.pk}, headers=HX)
    assert "not part of this retrospective" in response.content.decode()
    foreign = make_escape(other_team, title="Another team's")
    assert client.post(url("retro_focus", retro), {"escape": foreign.pk}).status_code == 404
    assert fresh(retro).focus_escape is None


# --- What each role sees.


def test_only_facilitators_see_timer_focus_and_voting_controls(retro, facilitator, member, viewer):
    facilitator_html = board_of(client_for(facilitator), retro)
    for control in ("retro_timer_start", "retro_focus", "retro_voting_open"):
        assert url(control, retro) in facilitator_html, control
    for user in (member, viewer):
        html = board_of(client_for(user), retro)
        for control in ("retro_timer", "retro_focus", "retro_voting"):
            assert f"/retros/{retro.pk}/{control.split('_')[1]}/" not in html, (user, control)
        assert 'id="facilitation-bar"' in html, "everyone sees the timer and the focus"


def test_voting_buttons_appear_only_while_voting_is_open(retro, escape, member, viewer):
    vote = url("retro_vote", retro, escape_id=escape.pk)
    assert vote not in board_of(client_for(member), retro)
    facilitation.voting_open(retro=retro, votes_per_person=3)
    member_html = board_of(client_for(member), retro)
    assert vote in member_html
    assert "You have 3 votes left." in member_html
    viewer_html = board_of(client_for(viewer), retro)
    assert vote not in viewer_html, "viewers read, they do not vote"
    assert "votes left" not in viewer_html
    facilitation.voting_close(retro=retro)
    assert vote not in board_of(client_for(member), retro)


def test_the_timer_is_rendered_for_the_countdown_script(retro, facilitator, member):
    facilitation.timer_start(retro=retro, minutes=5)
    ends_at = fresh(retro).timer_ends_at
    assert ends_at is not None
    html = board_of(client_for(member), retro)
    iso = ends_at.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    assert f'data-ends-at="{iso}"' in html
    assert "data-server-now=" in html
    assert re.search(r'<span class="timer-display" role="timer">0[45]:\d\d</span>', html)
    assert 'src="/static/js/timer.js"' in html

    facilitation.timer_pause(retro=retro)
    html = board_of(client_for(member), retro)
    assert re.search(r'data-paused-remaining="(29\d|300)"', html)
    assert "data-ends-at" not in html

    facilitation.timer_resume(retro=retro)
    Retrospective.objects.filter(pk=retro.pk).update(
        timer_ends_at=timezone.now() - timedelta(seconds=1)
    )
    assert "Time's up" in board_of(client_for(member), retro)


def test_a_closed_board_offers_no_timer_and_no_voting(closed_retro, member, escape):
    html = board_of(client_for(member), closed_retro)
    assert "data-timer" not in html
    assert url("retro_timer_start", closed_retro) not in html
    assert url("retro_vote", closed_retro, escape_id=escape.pk) not in html
    response = client_for(member).post(
        url("retro_vote", closed_retro, escape_id=escape.pk), headers=HX
    )
    assert "This retrospective is closed; it is read-only." in response.content.decode()


def test_every_board_marks_the_escape_in_focus(retro, escape, second_escape, member):
    facilitation.focus_set(retro=retro, escape=second_escape)
    html = board_of(client_for(member), retro)
    assert f'data-focus-escape="{second_escape.pk}"' in html
    focused = f'<article id="escape-{second_escape.pk}" class="card escape-card"'
    assert re.search(re.escape(focused) + r"[^>]* data-in-focus", html)
    other = f'<article id="escape-{escape.pk}" class="card escape-card"'
    assert re.search(re.escape(other) + r"[^>]*>", html)
    assert not re.search(re.escape(other) + r"[^>]* data-in-focus", html)
    assert f'In focus:</span> <a href="#escape-{second_escape.pk}"' in html
    # The overview marks the focused escape's row too.
    assert f'<tr data-escape="{second_escape.pk}" class="in-focus">' in html
    assert 'src="/static/js/focus.js"' in html


# --- Dot voting on the board.


def test_a_vote_answers_with_its_card_and_the_votes_left(retro, escape, member):
    facilitation.voting_open(retro=retro, votes_per_person=2)
    response = client_for(member).post(url("retro_vote", retro, escape_id=escape.pk), headers=HX)
    html = response.content.decode().lstrip()
    assert html.startswith(f'<article id="escape-{escape.pk}"')
    assert '<span class="votes" data-votes="1">1 vote</span>' in html
    assert "(1 yours)" in html
    assert 'id="facilitation-bar"' in html and 'hx-swap-oob="true"' in html
    assert "You have 1 vote left." in html
    assert Vote.objects.filter(voter=member, escape=escape).count() == 1


def test_voting_past_the_allowance_is_refused_on_the_card(retro, escape, member):
    facilitation.voting_open(retro=retro, votes_per_person=1)
    client = client_for(member)
    client.post(url("retro_vote", retro, escape_id=escape.pk), headers=HX)
    response = client.post(url("retro_vote", retro, escape_id=escape.pk), headers=HX)
    assert "You have used all 1 of your votes." in response.content.decode()
    assert Vote.objects.count() == 1


def test_voting_before_it_opens_is_refused(retro, escape, member):
    response = client_for(member).post(url("retro_vote", retro, escape_id=escape.pk), headers=HX)
    assert "Voting is not open." in response.content.decode()
    assert not Vote.objects.exists()


def test_a_vote_is_taken_back_from_the_card(retro, escape, member):
    facilitation.voting_open(retro=retro, votes_per_person=2)
    facilitation.vote_cast(retro=retro, escape=escape, voter=member)
    client_for(member).post(url("retro_unvote", retro, escape_id=escape.pk), headers=HX)
    assert not Vote.objects.exists()


def test_an_escape_of_another_retro_cannot_get_votes(retro, team, member):
    facilitation.voting_open(retro=retro, votes_per_person=2)
    elsewhere = make_escape(team, title="Not on this board")
    response = client_for(member).post(url("retro_vote", retro, escape_id=elsewhere.pk))
    assert response.status_code == 404


def test_once_voting_closes_the_board_is_ordered_by_votes(
    retro, team, escape, second_escape, member, facilitator
):
    third = make_escape(team, title="Third escape")
    services.retro_add_escape(retro=retro, escape=third)
    facilitation.voting_open(retro=retro, votes_per_person=3)
    for voter, target in [
        (member, second_escape),
        (member, second_escape),
        (facilitator, third),
        (facilitator, second_escape),
    ]:
        facilitation.vote_cast(retro=retro, escape=target, voter=voter)
    client = client_for(member)
    assert card_order(board_of(client, retro)) == [escape.pk, second_escape.pk, third.pk]

    facilitation.voting_close(retro=retro)

    html = board_of(client, retro)
    assert card_order(html) == [second_escape.pk, third.pk, escape.pk]
    assert "Voting has closed: escapes are ordered by votes." in html
    summary = client.get(url("retro_summary", retro)).content.decode()
    assert summary.index(second_escape.title) < summary.index(third.title)


def test_ties_keep_the_board_order(retro, escape, second_escape, member):
    facilitation.voting_open(retro=retro, votes_per_person=2)
    facilitation.vote_cast(retro=retro, escape=second_escape, voter=member)
    facilitation.vote_cast(retro=retro, escape=escape, voter=member)
    facilitation.voting_close(retro=retro)
    assert card_order(board_of(client_for(member), retro)) == [escape.pk, second_escape.pk]


# --- Anonymity: voters never, why authors not in an anonymous retro; page and API.


def api_retro(retro: Retrospective, user) -> dict:
    _, raw = api_token_create(user=user, name="read")
    response = Client().get(
        f"/api/v1/teams/{retro.team.slug}/retros/{retro.pk}",
        headers={"Authorization": f"Bearer {raw}"},
    )
    assert response.status_code == 200
    return response.json()


@pytest.mark.parametrize("anonymous", [False, True])
def test_nobody_sees_who_voted_on_the_page_or_in_the_api(
    team, facilitator, member, escape, second_escape, anonymous, viewer
):
    retro = services.retro_create(
        team=team, facilitator=facilitator, title="Votes", escapes=[escape], anonymous=anonymous
    )
    facilitation.voting_open(retro=retro, votes_per_person=3)
    facilitation.vote_cast(retro=retro, escape=escape, voter=member)
    facilitation.vote_cast(retro=retro, escape=escape, voter=member)

    for user in (facilitator, viewer):
        html = board_of(client_for(user), retro)
        assert '<span class="votes" data-votes="2">2 votes</span>' in html
        voting_markup = re.findall(
            r'<div class="card-tools">.*?</div>|<div class="voting-status">.*?</div>', html, re.S
        )
        assert len(voting_markup) == 2
        assert all(member.username not in markup for markup in voting_markup), user
        data = api_retro(retro, user)
        assert data["escapes"][0]["votes"] == 2
        assert member.username not in str(data)
        assert set(data["escapes"][0]) == {
            "id",
            "title",
            "category",
            "stage",
            "severity",
            "component",
            "proposed",
            "facts",
            "whys",
            "actions",
            "votes",
        }
        assert (data["voting"], data["votes_per_person"]) == ("open", 3)


def test_an_anonymous_retro_shows_no_why_author_anywhere(
    anonymous_retro, escape, member, facilitator
):
    advance_to(anonymous_retro, Phase.WHYS)
    services.why_add(retro=anonymous_retro, escape=escape, text="Who wrote me?", author=member)
    assert Why.objects.get().author is None, "not even stored"
    Why.objects.update(author=member)  # an author put there some other way stays hidden too

    html = board_of(client_for(facilitator), anonymous_retro)
    assert "Who wrote me?" in html
    assert "why-author" not in html
    assert f"— {member.username}" not in html
    data = api_retro(anonymous_retro, facilitator)
    (why,) = data["escapes"][0]["whys"]
    assert why["text"] == "Who wrote me?"
    assert "author" not in why
    assert member.username not in str(data)


def test_an_open_retro_names_why_authors_in_the_api(retro, escape, member, facilitator):
    advance_to(retro, Phase.WHYS)
    services.why_add(retro=retro, escape=escape, text="Signed", author=member)
    data = api_retro(retro, facilitator)
    assert data["escapes"][0]["whys"][0]["author"] == member.username


def test_the_api_gives_the_timer_and_the_focus(retro, escape, member):
    facilitation.timer_start(retro=retro, minutes=2)
    facilitation.timer_pause(retro=retro)
    facilitation.focus_set(retro=retro, escape=escape)
    data = api_retro(retro, member)
    assert data["focus_escape_id"] == escape.pk
    assert data["timer_ends_at"] is None
    assert 110 < data["timer_paused_seconds"] <= 120


# --- The join link and its QR code.


def test_the_board_shows_its_join_link_and_qr_code(retro, facilitator, member):
    board = f"http://testserver{url('retro_detail', retro)}"
    html = board_of(client_for(facilitator), retro)
    assert f'<input type="text" id="join-url" class="join-url" readonly value="{board}">' in html
    assert f'<a href="{board}">{board}</a>' in html
    svg = re.search(r'<div class="qr">(<svg .*?</svg>)</div>', html, re.S)
    assert svg, "an inline SVG QR code"
    assert 'class="qr-code"' in svg.group(1)
    assert "<title>QR code of the join link</title>" in svg.group(1)
    assert "<path" in svg.group(1)
    assert "script" not in svg.group(1) and "style=" not in svg.group(1)
    assert 'id="join" class="card join-region" open' in html, "open on the shared screen"
    assert 'id="join" class="card join-region">' in board_of(client_for(member), retro)


def test_the_qr_code_changes_with_the_url_it_encodes(retro, team, facilitator, escape):
    other = services.retro_create(team=team, facilitator=facilitator, title="B", escapes=[escape])
    client = client_for(facilitator)

    def qr(r: Retrospective) -> str:
        found = re.search(r'<div class="qr">(<svg .*?</svg>)</div>', board_of(client, r), re.S)
        assert found
        return found.group(1)

    assert qr(retro) != qr(other)
    assert qr(retro) == qr(retro)


def test_the_join_link_takes_a_signed_out_member_through_sign_in_to_the_board(
    retro, member, outsider
):
    board = url("retro_detail", retro)
    response = Client().get(board)
    assert response.status_code == 302
    assert response.headers["Location"] == f"/accounts/login/?next={board}"

    client = Client()
    response = client.post(
        f"/accounts/login/?next={board}",
        {"username": member.username, "password": "pw-mia", "next": board},
    )
    assert response.status_code == 302
    assert response.headers["Location"] == board
    assert client.get(board).status_code == 200
    assert client_for(outsider).get(board).status_code == 404


def test_the_board_has_no_inline_style_or_script(retro, facilitator, escape):
    facilitation.timer_start(retro=retro, minutes=5)
    facilitation.voting_open(retro=retro, votes_per_person=3)
    facilitation.focus_set(retro=retro, escape=escape)
    html = board_of(client_for(facilitator), retro)
    assert "style=" not in html
    assert " hx-on" not in html
    for tag in re.findall(r"<script[^>]*>", html):
        assert "src=" in tag or "nonce=" in tag, tag


# --- Bounded queries with votes on the board.


@pytest.mark.parametrize("escapes", [3, 30])
def test_the_board_with_votes_needs_a_bounded_number_of_queries(
    team, facilitator, member, escapes, django_assert_max_num_queries
):
    items = [make_escape(team) for _ in range(escapes)]
    retro = services.retro_create(team=team, facilitator=facilitator, title="R", escapes=items)
    facilitation.voting_open(retro=retro, votes_per_person=12)
    for item in items[:6]:
        facilitation.vote_cast(retro=retro, escape=item, voter=member)
        facilitation.vote_cast(retro=retro, escape=item, voter=facilitator)
    facilitation.voting_close(retro=retro)
    client = client_for(member)
    # 15: the close region also says where tickets will go (the tracker connection); the
    # facts of every card come in one query; in Gather every member also gets the register's
    # escapes to propose and its releases for a new one; the earlier retros' open actions,
    # shown first, are one query.
    with django_assert_max_num_queries(16):
        html = board_of(client, retro)
    assert html.count('class="votes"') == escapes
