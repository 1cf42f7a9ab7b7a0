"""The board page carries what the live script needs, and answers its refresh with #board."""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from escapes.models import Escape
from retros import services
from retros.models import Retrospective
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
