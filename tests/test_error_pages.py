"""Friendly refusals (config/errors.py): 400, 403, 404, CSRF and 500 as pages of the site.

Each page is in the site's layout, says what happened without blame, and offers a way back,
with DEBUG on (`make run`) as with it off. An outsider's 404 says exactly what a missing
object's 404 says. htmx requests get the message alone; the API keeps its JSON errors.
"""

import json
import re

import pytest
from asgiref.sync import async_to_sync
from django.core.exceptions import BadRequest
from django.http import HttpRequest, HttpResponse
from django.test import AsyncClient, Client, RequestFactory
from django.urls import path, reverse

from config import urls as site_urls
from config.errors import server_error
from retros import services
from retros.models import Retrospective
from teams.services import api_token_create
from tests.conftest import client_for

# --- A URLconf with views that fail, for the 400 and 500 pages (pytest.mark.urls below).


def _crash(request: HttpRequest) -> HttpResponse:
    raise RuntimeError("a bug in a view")


def _bad(request: HttpRequest) -> HttpResponse:
    raise BadRequest("escape= takes up to five escape ids")


urlpatterns = [
    path("test-only/crash/", _crash),
    path("test-only/bad/", _bad),
    *site_urls.urlpatterns,
]
handler400 = site_urls.handler400
handler403 = site_urls.handler403
handler404 = site_urls.handler404
handler500 = site_urls.handler500

FAILING_URLS = pytest.mark.urls(__name__)


@pytest.fixture(params=[False, True], ids=["debug-off", "debug-on"])
def debug(request, settings) -> bool:
    settings.DEBUG = request.param
    return bool(request.param)


@pytest.fixture
def retro(team, facilitator, escape) -> Retrospective:
    return services.retro_create(
        team=team, facilitator=facilitator, title="Release retro", escapes=[escape]
    )


def main_of(response) -> str:
    """The page's <main>: what it says, without the per-response CSRF token of <body>."""
    html = response.content.decode()
    found = re.search(r"<main>.*</main>", html, re.S)
    assert found, html[:500]
    return found.group(0)


def text_of(html: str) -> str:
    return " ".join(re.sub(r"<[^>]+>", " ", html).split())


def assert_in_layout(response) -> None:
    html = response.content.decode()
    assert '<header class="topbar">' in html
    assert 'class="card refusal"' in html
    assert "Traceback" not in html and "technical" not in html.lower()


# --- 403: a member whose role does not allow it.


def test_a_viewer_who_opens_an_edit_url_is_told_what_their_role_can_do(debug, team, viewer, escape):
    detail = reverse("escape_detail", kwargs={"team": team.slug, "pk": escape.pk})
    response = client_for(viewer).get(
        reverse("escape_update", kwargs={"team": team.slug, "pk": escape.pk}),
        headers={"Referer": f"http://testserver{detail}"},
    )
    assert response.status_code == 403
    assert_in_layout(response)
    text = text_of(main_of(response))
    assert (
        "You can read Checkout's escapes, releases and retros, but not change them: your role "
        "in the team is viewer. Ask a facilitator or an admin of Checkout" in text
    )
    assert "Nothing was changed" not in text  # a GET changes nothing anyway
    html = response.content.decode()
    assert 'aria-label="Team"' in html  # the team's nav: the viewer is a member
    assert f'<a class="button" href="{detail}">Back to the previous page</a>' in html
    assert f'href="{reverse("team_home", kwargs={"team": team.slug})}">Go to Checkout' in html
    assert f'href="{reverse("home")}">Your teams' in html


def test_a_member_who_tries_to_facilitate_is_sent_to_a_facilitator(debug, team, member):
    response = client_for(member).post(reverse("retro_create", kwargs={"team": team.slug}))
    assert response.status_code == 403
    assert_in_layout(response)
    text = text_of(main_of(response))
    assert "Your role in Checkout is member" in text
    assert "Ask a facilitator or an admin of Checkout." in text
    assert "Nothing was changed." in text


def test_a_facilitator_who_tries_an_admins_setting_is_sent_to_an_admin(debug, team, facilitator):
    response = client_for(facilitator).post(
        reverse("stage_add", kwargs={"team": team.slug}), {"name": "Contract"}
    )
    assert response.status_code == 403
    assert "Ask an admin of Checkout." in text_of(main_of(response))


# --- 404: missing, or not yours; the same words either way.


def test_a_missing_retro_is_a_404_page_with_the_way_back_to_the_team(debug, team, member):
    response = client_for(member).get(
        reverse("retro_detail", kwargs={"team": team.slug, "pk": 999_999})
    )
    assert response.status_code == 404
    assert_in_layout(response)
    assert "Not found, or not yours to see" in text_of(main_of(response))
    assert "Go to Checkout" in text_of(main_of(response))
    assert "No Retrospective matches" not in response.content.decode()


def test_an_outsiders_404_for_another_teams_retro_is_the_404_of_a_missing_one(
    debug, team, other_team, outsider, retro
):
    client = client_for(outsider)

    def page(slug: str, pk: int):
        response = client.get(reverse("retro_detail", kwargs={"team": slug, "pk": pk}))
        assert response.status_code == 404
        return main_of(response)

    theirs = page(team.slug, retro.pk)
    assert theirs == page(team.slug, 999_999)
    assert theirs == page("no-such-team", retro.pk)
    assert "Checkout" not in theirs and "Go to" not in theirs
    # Through the outsider's own team: our retro's id is as missing as an unused one.
    assert page(other_team.slug, retro.pk) == page(other_team.slug, 999_999)


def test_an_outsiders_404_for_a_write_url_is_the_same_as_for_a_page(
    debug, team, outsider, retro, escape
):
    client = client_for(outsider)
    kwargs = {"team": team.slug, "pk": retro.pk, "escape_id": escape.pk}
    posted = client.post(reverse("retro_why_add", kwargs=kwargs), {"text": "Why?"})
    read = client.get(reverse("retro_detail", kwargs={"team": team.slug, "pk": 999_999}))
    assert posted.status_code == read.status_code == 404
    assert main_of(posted) == main_of(read)


@pytest.mark.parametrize("signed_in", [True, False], ids=["signed-in", "anonymous"])
def test_a_path_that_matches_nothing_is_the_404_page(debug, signed_in, member):
    client = client_for(member) if signed_in else Client()
    response = client.get("/no/such/page/")
    assert response.status_code == 404
    assert_in_layout(response)
    html = main_of(response)
    if signed_in:
        assert "Your teams" in html and "Sign in" not in html
    else:
        assert f'href="{reverse("login")}">Sign in' in html and "Your teams" not in html


def test_the_async_stream_answers_an_outsider_with_the_same_404_page(debug, team, outsider, retro):
    client = AsyncClient()
    async_to_sync(client.aforce_login)(outsider)
    response = async_to_sync(client.get)(
        reverse("retro_stream", kwargs={"team": team.slug, "pk": retro.pk})
    )
    missing = client_for(outsider).get(
        reverse("retro_detail", kwargs={"team": team.slug, "pk": 999_999})
    )
    assert response.status_code == 404 and not response.streaming
    assert main_of(response) == main_of(missing)


def test_under_asgi_and_debug_a_path_that_matches_nothing_is_the_404_page(member, settings):
    """With DEBUG off Django renders handler404 itself, in a thread of its own whose database
    connection cannot see the test's transaction; production has no such problem."""
    settings.DEBUG = True
    client = AsyncClient()
    async_to_sync(client.aforce_login)(member)
    response = async_to_sync(client.get)("/no/such/page/")
    assert response.status_code == 404
    assert_in_layout(response)
    assert "Your teams" in main_of(response)


def test_the_previous_page_is_offered_only_when_it_was_ours(member):
    client = client_for(member)
    missing = "/no/such/page/"
    ours = client.get(missing, headers={"Referer": "http://testserver/escapes/?page=2"})
    assert 'href="/escapes/?page=2">Back to the previous page' in main_of(ours)
    for referer in ("https://elsewhere.example/escapes/", f"http://testserver{missing}", ""):
        response = client.get(missing, headers={"Referer": referer})
        assert "Back to the previous page" not in main_of(response), referer


# --- htmx: the message alone, for the page's alert region (static/js/refusals.js).


def test_an_htmx_post_refused_for_the_role_gets_the_message_alone(debug, team, viewer, retro):
    kwargs = {"team": team.slug, "pk": retro.pk, "escape_id": retro.escapes.get().pk}
    response = client_for(viewer).post(
        reverse("retro_why_add", kwargs=kwargs), {"text": "Why?"}, headers={"HX-Request": "true"}
    )
    assert response.status_code == 403
    html = response.content.decode().strip()
    assert html.startswith('<p class="refusal-lead" data-refusal>') and html.endswith("</p>")
    assert "<main>" not in html and "topbar" not in html
    assert "your role in the team is viewer" in html and "Nothing was changed." in html
    assert "Reload the page to see what your role can do now." in html
    assert "HX-Request" in response["Vary"]


def test_an_htmx_post_on_something_removed_gets_the_message_alone(debug, team, member, retro):
    kwargs = {"team": team.slug, "pk": retro.pk, "escape_id": 999_999}
    response = client_for(member).post(
        reverse("retro_why_add", kwargs=kwargs), {"text": "Why?"}, headers={"HX-Request": "true"}
    )
    assert response.status_code == 404
    html = response.content.decode().strip()
    assert html.startswith('<p class="refusal-lead" data-refusal>') and "<main>" not in html
    assert "This is no longer here, or not yours to see" in html
    assert "Reload the page" in html


def test_a_history_restore_gets_the_whole_page(member):
    headers = {"HX-Request": "true", "HX-History-Restore-Request": "true"}
    response = client_for(member).get("/no/such/page/", headers=headers)
    assert response.status_code == 404
    assert_in_layout(response)


# --- CSRF: a form from a page that went stale.


def csrf_client(user) -> Client:
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    return client


def test_a_form_with_a_stale_csrf_token_gets_the_out_of_date_page(debug, team, member):
    client = csrf_client(member)
    client.get(reverse("team_home", kwargs={"team": team.slug}))  # sets the CSRF cookie
    stale = {"csrfmiddlewaretoken": "x" * 64, "title": "Release retro"}
    response = client.post(reverse("retro_create", kwargs={"team": team.slug}), stale)
    assert response.status_code == 403
    assert_in_layout(response)
    text = text_of(main_of(response))
    assert "This page was out of date" in text
    assert "What you sent was not saved" in text and "Reload the page and send it again." in text
    assert ("For developers" in text) == debug  # Django's reason, under DEBUG only

    htmx = client.post(
        reverse("retro_create", kwargs={"team": team.slug}), stale, headers={"HX-Request": "true"}
    )
    assert htmx.status_code == 403
    assert htmx.content.decode().strip().startswith('<p class="refusal-lead" data-refusal>')


def test_a_browser_without_the_csrf_cookie_is_asked_to_allow_cookies(team, member):
    response = csrf_client(member).post(reverse("retro_create", kwargs={"team": team.slug}))
    assert response.status_code == 403
    assert "Allow cookies for this site" in text_of(main_of(response))


# --- 400 and 500, through views that fail on purpose.


@FAILING_URLS
def test_a_bad_request_is_the_400_page_in_both_modes(debug, member):
    response = client_for(member).get("/test-only/bad/")
    assert response.status_code == 400
    assert_in_layout(response)
    assert "That request could not be read" in text_of(main_of(response))


@FAILING_URLS
def test_a_crash_is_the_static_500_page(member, settings):
    settings.DEBUG = False
    client = client_for(member)
    client.raise_request_exception = False
    response = client.get("/test-only/crash/")
    assert response.status_code == 500
    html = response.content.decode()
    assert '<header class="topbar">' in html and 'class="card refusal"' in html
    assert "Something went wrong on our side" in html
    assert f'<a class="button" href="{reverse("home")}">Your teams</a>' in html
    assert member.username not in html  # nothing of the request: no user, no team
    assert "a bug in a view" not in html


@FAILING_URLS
def test_a_crash_under_debug_keeps_djangos_page_with_the_traceback(member, settings):
    """Deliberate: a developer needs the traceback, and DEBUG is never on in production."""
    settings.DEBUG = True
    client = client_for(member)
    client.raise_request_exception = False
    response = client.get("/test-only/crash/")
    assert response.status_code == 500
    assert "a bug in a view" in response.content.decode()
    assert "Traceback" in response.content.decode()


def test_the_500_page_renders_without_the_database_or_a_user():
    """No `db` fixture: pytest-django fails any query this test would make."""
    response = server_error(RequestFactory().get("/"))
    assert response.status_code == 500
    assert "Something went wrong on our side" in response.content.decode()


def test_a_500_page_that_cannot_render_still_answers(monkeypatch):
    def broken(name: str):
        raise ValueError("Missing staticfiles manifest entry for 'css/app.css'")

    monkeypatch.setattr("config.errors.loader.get_template", broken)
    response = server_error(RequestFactory().get("/"))
    assert response.status_code == 500
    assert "Something went wrong on our side" in response.content.decode()


# --- The API keeps its JSON errors.


def test_the_api_still_answers_json_errors(debug, team, outsider, viewer):
    _, outsider_token = api_token_create(user=outsider, name="ci")
    response = Client().get(
        f"/api/v1/teams/{team.slug}", headers={"Authorization": f"Bearer {outsider_token}"}
    )
    assert response.status_code == 404
    assert response["Content-Type"].startswith("application/json")
    assert json.loads(response.content) == {"detail": "No such team"}

    _, viewer_token = api_token_create(user=viewer, name="ci")
    response = Client().post(
        f"/api/v1/teams/{team.slug}/escapes",
        data=json.dumps({"title": "Walked", "detected_at": "2026-01-02T03:04:05Z"}),
        content_type="application/json",
        headers={"Authorization": f"Bearer {viewer_token}"},
    )
    assert response.status_code == 403
    assert response["Content-Type"].startswith("application/json")
