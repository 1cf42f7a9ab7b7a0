from datetime import timedelta

import pytest
from django.utils import timezone

from teams.models import ApiToken
from teams.services import api_token_create, api_token_revoke
from tests.api.conftest import ApiClient
from tests.conftest import client_for


def test_a_valid_token_acts_as_its_user(member, team):
    _, raw = api_token_create(user=member, name="ci")
    response = ApiClient(raw).get("/teams")
    assert response.status_code == 200
    assert [t["slug"] for t in response.json()] == ["checkout"]


def test_no_token_is_401_with_a_json_message(db):
    response = ApiClient(None).get("/teams")
    assert response.status_code == 401
    assert "Bearer" in response.json()["detail"]
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.parametrize(
    "header",
    ["Bearer lks_not-a-real-token", "Bearer nonsense", "Bearer ", "Basic bWlhOnB3LW1pYQ=="],
)
def test_a_bad_token_is_401(member, client, header):
    api_token_create(user=member, name="real one")
    response = client.get("/api/v1/teams", headers={"Authorization": header})
    assert response.status_code == 401
    assert response.json()["detail"]


def test_a_revoked_token_is_401(member):
    token, raw = api_token_create(user=member, name="old")
    api_token_revoke(token=token)
    response = ApiClient(raw).get("/teams")
    assert response.status_code == 401
    assert response.json() == {"detail": "Invalid or revoked API token."}


def test_the_token_of_a_deactivated_user_is_401(member):
    _, raw = api_token_create(user=member, name="ci")
    member.is_active = False
    member.save()
    assert ApiClient(raw).get("/teams").status_code == 401


def test_a_browser_session_is_not_accepted(member, team):
    response = client_for(member).get("/api/v1/teams")
    assert response.status_code == 401


def test_a_session_cannot_write_either(member, team):
    client = client_for(member)
    client.handler.enforce_csrf_checks = True
    response = client.post(
        "/api/v1/teams/checkout/releases",
        {"version": "1", "released_at": "2026-01-01T00:00:00Z"},
        content_type="application/json",
    )
    assert response.status_code == 401


def test_the_raw_token_is_never_logged(member, client, caplog, settings):
    settings.DEBUG = True  # ninja's own bearer auth logs the whole header in DEBUG
    secret = "lks_" + "x" * 40
    with caplog.at_level("DEBUG"):
        client.get("/api/v1/teams", headers={"Authorization": f"Token {secret}"})
        client.get("/api/v1/teams", headers={"Authorization": f"Bearer {secret}"})
    assert secret not in caplog.text


def test_last_used_is_recorded_at_most_once_a_minute(member):
    token, raw = api_token_create(user=member, name="ci")
    api = ApiClient(raw)
    api.get("/teams")
    token.refresh_from_db()
    first = token.last_used_at
    assert first is not None
    api.get("/teams")
    token.refresh_from_db()
    assert token.last_used_at == first  # no write within the minute
    ApiToken.objects.filter(pk=token.pk).update(last_used_at=first - timedelta(minutes=2))
    api.get("/teams")
    token.refresh_from_db()
    assert token.last_used_at > first - timedelta(seconds=1)
    assert token.last_used_at <= timezone.now()


def test_a_request_within_the_minute_issues_no_write(member, django_assert_num_queries):
    _, raw = api_token_create(user=member, name="ci")
    api = ApiClient(raw)
    api.get("/teams")
    # token lookup, memberships: no UPDATE of last_used_at
    with django_assert_num_queries(2):
        assert api.get("/teams").status_code == 200


def test_openapi_document_describes_the_api(db, client):
    response = client.get("/api/v1/openapi.json")
    assert response.status_code == 200
    doc = response.json()
    assert doc["info"]["title"] == "Leakseal API"
    assert doc["info"]["version"] == "1"
    paths = doc["paths"]
    for path, method in [
        ("/api/v1/teams", "get"),
        ("/api/v1/teams/{slug}", "get"),
        ("/api/v1/teams/{slug}/escapes", "get"),
        ("/api/v1/teams/{slug}/escapes", "post"),
        ("/api/v1/teams/{slug}/escapes/{escape_id}", "get"),
        ("/api/v1/teams/{slug}/escapes/{escape_id}", "patch"),
        ("/api/v1/teams/{slug}/escapes/bulk", "post"),
        ("/api/v1/teams/{slug}/releases", "get"),
        ("/api/v1/teams/{slug}/releases", "post"),
        ("/api/v1/teams/{slug}/releases/{version}/stage-catches", "post"),
        ("/api/v1/teams/{slug}/retros", "get"),
        ("/api/v1/teams/{slug}/retros/{retro_id}", "get"),
        ("/api/v1/teams/{slug}/metrics", "get"),
    ]:
        assert method in paths.get(path, {}), (path, method)
        assert paths[path][method]["security"] == [{"ApiTokenAuth": []}]
    schemes = doc["components"]["securitySchemes"]
    assert schemes == {"ApiTokenAuth": {"type": "http", "scheme": "bearer"}}
    schemas = doc["components"]["schemas"]
    assert schemas["EscapeIn"]["properties"]["title"]["maxLength"] == 200
    assert "detected_at" in schemas["EscapeIn"]["required"]
    assert {"escapes", "whys"} <= set(schemas["RetroDetailOut"]["properties"]) | set(
        schemas["RetroEscapeOut"]["properties"]
    )


def test_the_interactive_docs_load_without_a_cdn(db, client):
    response = client.get("/api/v1/docs")
    assert response.status_code == 200
    assert b"/static/ninja/swagger-ui-bundle.js" in response.content
    assert b"cdn" not in response.content.lower()
