"""The board page carries what the live script needs, and answers its refresh with #board."""

import re
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from threading import Barrier

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from escapes.models import Escape
from retros import services
from retros.models import Retrospective
from retros.views import _cached_once
from tests.conftest import client_for

HX = {"HX-Request": "true"}


def board_url(retro: Retrospective) -> str:
    return reverse("retro_detail", kwargs={"team": retro.team.slug, "pk": retro.pk})


def test_the_board_page_carries_the_live_hooks(retro, member):
    Retrospective.objects.filter(pk=retro.pk).update(version=4)
    response = client_for(member).get(board_url(retro))
    html = response.content.decode()

    stream = reverse("retro_stream", kwargs={"team": retro.team.slug, "pk": retro.pk})
    strip = reverse("retro_presence", kwargs={"team": retro.team.slug, "pk": retro.pk})
    assert response.status_code == 200
    assert f'data-stream-url="{stream}"' in html
    assert f'data-refresh-url="{board_url(retro)}"' in html
    assert 'data-version="4"' in html
    assert f'data-presence-url="{strip}"' in html
    assert 'id="live-status"' in html
    assert 'src="/static/js/board.js"' in html
    assert "<script>" not in html  # no inline script: the CSP allows 'self' only


def test_an_htmx_get_of_the_board_answers_with_the_board_region_only(retro, member):
    Retrospective.objects.filter(pk=retro.pk).update(version=9)
    response = client_for(member).get(board_url(retro), headers=HX)
    html = response.content.decode().strip()

    assert response.status_code == 200
    assert html.startswith('<div id="board"')
    assert 'data-version="9"' in html
    assert f'id="escape-{retro.items.get().escape_id}"' in html
    assert "<html" not in html and 'id="presence"' not in html
    assert "HX-Request" in response["Vary"]


def test_htmx_history_restore_gets_the_whole_page(retro, member):
    headers = {**HX, "HX-History-Restore-Request": "true"}
    response = client_for(member).get(board_url(retro), headers=headers)
    assert "<html" in response.content.decode()


@pytest.mark.parametrize("escapes", [3, 30])
def test_the_board_refresh_costs_the_same_queries_however_many_escapes(
    team, facilitator, member, escapes, django_assert_max_num_queries
):
    now = timezone.now()
    picked = [
        Escape.objects.create(
            team=team, title=f"Leak {i}", merged_at=now - timedelta(days=3), detected_at=now
        )
        for i in range(escapes)
    ]
    retro = services.retro_create(team=team, facilitator=facilitator, title="Big", escapes=picked)
    client = client_for(member)
    with django_assert_max_num_queries(15):
        response = client.get(board_url(retro), headers=HX)
    assert response.content.decode().count('class="card escape-card"') == escapes


def test_a_refresh_of_some_cards_answers_with_them_and_the_counts_beside_them(
    team, facilitator, member
):
    now = timezone.now()
    picked = [
        Escape.objects.create(
            team=team, title=f"Leak {i}", merged_at=now - timedelta(days=3), detected_at=now
        )
        for i in range(3)
    ]
    retro = services.retro_create(team=team, facilitator=facilitator, title="Big", escapes=picked)
    Retrospective.objects.filter(pk=retro.pk).update(version=7)
    url = f"{board_url(retro)}?escape={picked[2].pk}&escape={picked[0].pk}"
    response = client_for(member).get(url, headers=HX)
    html = response.content.decode().strip()

    assert response.status_code == 200
    assert html.startswith('<div id="board" data-version="7" data-cards>')
    assert f'id="escape-{picked[2].pk}"' in html and f'id="escape-{picked[0].pk}"' in html
    assert f'id="escape-{picked[1].pk}"' not in html
    assert 'id="phase-bar"' in html and 'id="close-region"' in html
    assert 'id="facilitation-bar"' not in html


def test_a_refresh_of_a_card_not_on_the_board_is_404_and_a_bad_one_400(retro, member, team):
    other = Escape.objects.create(
        team=team, title="Not in this retro", merged_at=timezone.now(), detected_at=timezone.now()
    )
    client = client_for(member)
    assert client.get(f"{board_url(retro)}?escape={other.pk}", headers=HX).status_code == 404
    assert client.get(f"{board_url(retro)}?escape=x", headers=HX).status_code == 400
    many = "&".join(f"escape={i}" for i in range(1, 8))
    assert client.get(f"{board_url(retro)}?{many}", headers=HX).status_code == 400


def test_an_outsider_cannot_refresh_a_card(retro, outsider):
    escape_id = retro.items.get().escape_id
    response = client_for(outsider).get(f"{board_url(retro)}?escape={escape_id}", headers=HX)
    assert response.status_code == 404


def _csrf_tokens(html: str) -> set[str]:
    return set(re.findall(r'name="csrfmiddlewaretoken" value="([^"]+)"', html))


def test_a_card_rendered_once_is_shared_with_each_ones_own_controls_and_token(
    retro, member, viewer, facilitator
):
    services.retro_advance(retro=retro, expected_phase="gather", to_phase="categorize")
    services.retro_advance(retro=retro, expected_phase="categorize", to_phase="whys")
    escape_id = retro.items.get().escape_id
    url = f"{board_url(retro)}?escape={escape_id}"
    member_client = Client(enforce_csrf_checks=True)
    member_client.force_login(member)

    first = member_client.get(url, headers=HX).content.decode()
    again = member_client.get(url, headers=HX).content.decode()
    other = client_for(facilitator).get(url, headers=HX).content.decode()
    watching = client_for(viewer).get(url, headers=HX).content.decode()

    assert f'id="why-new-{escape_id}"' in first and f'id="why-new-{escape_id}"' in other
    assert "csrfmiddlewaretoken" not in watching and "why-new-" not in watching
    assert "LEAKSEALCSRFSLOT" not in first + other
    assert len(_csrf_tokens(first)) == 1 and _csrf_tokens(first) != _csrf_tokens(other)
    # The token put into the shared render is the member's own: a post with it goes through.
    (token,) = _csrf_tokens(again)
    add = reverse(
        "retro_why_add", kwargs={"team": retro.team.slug, "pk": retro.pk, "escape_id": escape_id}
    )
    posted = member_client.post(
        add, {"text": "No test for the refund path"}, headers={**HX, "X-CSRFToken": token}
    )
    assert posted.status_code == 200
    # The next version is a new render: the why is on it.
    assert "No test for the refund path" in member_client.get(url, headers=HX).content.decode()


def test_boards_asking_for_the_same_cards_at_once_render_them_once():
    renders = []
    start = Barrier(12)

    def render() -> str:
        renders.append(1)
        time.sleep(0.05)  # long enough for every other thread to arrive meanwhile
        return "<div>cards</div>"

    def ask(_: int) -> str:
        start.wait()
        return _cached_once("retro-cards:test-single-flight", render)

    with ThreadPoolExecutor(12) as pool:
        answers = list(pool.map(ask, range(12)))
    assert answers == ["<div>cards</div>"] * 12
    assert len(renders) == 1
