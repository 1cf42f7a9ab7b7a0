import re

import pytest
from django.urls import reverse

from teams.models import ApiToken
from teams.services import api_token_create
from tests.api.conftest import ApiClient
from tests.conftest import client_for

RAW = re.compile(rb"lks_[A-Za-z0-9_-]{40,}")


def test_token_page_lists_only_my_tokens(member, outsider):
    api_token_create(user=member, name="CI of checkout")
    api_token_create(user=outsider, name="Oscar's laptop")
    response = client_for(member).get(reverse("token_list"))
    assert response.status_code == 200
    assert b"CI of checkout" in response.content
    assert b"Oscar" not in response.content


def test_creating_a_token_shows_it_once(member):
    client = client_for(member)
    response = client.post(reverse("token_create"), {"name": "Nightly import"})
    assert response.status_code == 200
    assert "no-store" in response.headers["Cache-Control"]
    [raw] = RAW.findall(response.content)
    token = ApiToken.objects.get(user=member, name="Nightly import")
    assert token.digest == ApiToken.digest_of(raw.decode())
    assert raw.decode() not in ApiToken.objects.values_list("digest", flat=True)
    listing = client.get(reverse("token_list"))
    assert raw not in listing.content
    assert not RAW.search(listing.content)
    assert token.prefix.encode() in listing.content
    assert ApiClient(raw.decode()).get("/teams").status_code == 200


def test_creating_with_htmx_renders_the_panel_only(member):
    response = client_for(member).post(
        reverse("token_create"), {"name": "CI"}, headers={"HX-Request": "true"}
    )
    assert response.status_code == 200
    assert b'id="token-panel"' in response.content
    assert b"<html" not in response.content
    assert RAW.search(response.content)


def test_a_token_needs_a_name(member):
    response = client_for(member).post(reverse("token_create"), {"name": "  "})
    assert response.status_code == 200
    assert b"This field is required" in response.content
    assert not ApiToken.objects.exists()
    assert not RAW.search(response.content)


def test_revoking_my_token_stops_it_working(member):
    token, raw = api_token_create(user=member, name="CI")
    response = client_for(member).post(reverse("token_revoke", kwargs={"pk": token.pk}))
    assert response.status_code == 302
    assert response.headers["Location"] == reverse("token_list")
    token.refresh_from_db()
    assert token.revoked_at is not None
    assert ApiClient(raw).get("/teams").status_code == 401
    listing = client_for(member).get(reverse("token_list"))
    assert b"revoked" in listing.content


def test_revoking_with_htmx_renders_the_panel(member):
    token, _ = api_token_create(user=member, name="CI")
    response = client_for(member).post(
        reverse("token_revoke", kwargs={"pk": token.pk}), headers={"HX-Request": "true"}
    )
    assert response.status_code == 200
    assert b'id="token-panel"' in response.content
    token.refresh_from_db()
    assert token.revoked_at is not None


def test_revoking_someone_elses_token_is_404(member, outsider):
    theirs, raw = api_token_create(user=outsider, name="Oscar's")
    response = client_for(member).post(reverse("token_revoke", kwargs={"pk": theirs.pk}))
    assert response.status_code == 404
    theirs.refresh_from_db()
    assert theirs.revoked_at is None
    assert ApiClient(raw).get("/teams").status_code == 200


@pytest.mark.parametrize(
    ("method", "name", "kwargs"),
    [
        ("post", "token_list", {}),
        ("get", "token_create", {}),
        ("get", "token_revoke", {"pk": 1}),
    ],
)
def test_wrong_method_is_405(member, method, name, kwargs):
    response = getattr(client_for(member), method)(reverse(name, kwargs=kwargs))
    assert response.status_code == 405


@pytest.mark.parametrize("name", ["token_list", "token_create"])
def test_anonymous_is_sent_to_sign_in(client, db, name):
    send = client.get if name == "token_list" else client.post
    response = send(reverse(name))
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/accounts/login/")
    assert not ApiToken.objects.exists()


def test_the_page_needs_no_team(db, django_user_model):
    loner = django_user_model.objects.create_user(username="lone", password="pw-lone-1")
    assert client_for(loner).get(reverse("token_list")).status_code == 200
