"""Everything under /api/v1/ and /hooks/ answers JSON, errors included, in both DEBUG modes."""

import logging

import pytest
from django.test import Client, override_settings

from tests.api.conftest import BASE

DEBUG_MODES = pytest.mark.parametrize("debug", [False, True], ids=["debug-off", "debug-on"])


def _json(response) -> dict:
    assert response["Content-Type"].startswith("application/json"), response.content[:300]
    return response.json()


@DEBUG_MODES
@pytest.mark.parametrize(
    "path",
    ["/nope", "/teams/checkout/nope/deeper", "/", "/teams/checkout/releases/x/y/stage-catches"],
)
def test_an_unmatched_api_path_is_a_json_404(member_api, debug, path):
    with override_settings(DEBUG=debug):
        response = member_api.get(path)
    assert response.status_code == 404
    assert _json(response)["detail"].startswith("Not found: nothing answers GET /api/v1")


@DEBUG_MODES
def test_an_unmatched_path_anonymous_is_a_json_404_too(db, debug):
    with override_settings(DEBUG=debug):
        response = Client().post(BASE + "/no/such/thing", "{}", content_type="application/json")
    assert response.status_code == 404 and "detail" in _json(response)


@DEBUG_MODES
def test_a_wrong_method_is_a_json_405_naming_the_allowed_ones(member_api, debug):
    with override_settings(DEBUG=debug):
        response = member_api.client.delete(BASE + "/teams", headers=member_api.headers)
    assert response.status_code == 405
    assert _json(response)["detail"] == "Method DELETE not allowed here; use GET."
    assert response["Allow"] == "GET"


@DEBUG_MODES
def test_an_oversized_api_body_is_a_json_413(member_api, settings, debug):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1024 * 1024
    with override_settings(DEBUG=debug):
        response = member_api.post("/teams/checkout/escapes/bulk", raw="[" + " " * 2_000_000 + "]")
    assert response.status_code == 413
    assert "over 1 MB" in _json(response)["detail"]


@DEBUG_MODES
def test_a_server_error_in_the_api_is_json_and_logged(member_api, monkeypatch, caplog, debug):
    import teams.api

    def broken(*args, **kwargs):
        raise RuntimeError("the database fell over")

    monkeypatch.setattr(teams.api, "_team_out", broken)
    with override_settings(DEBUG=debug), caplog.at_level(logging.ERROR):
        response = member_api.get("/teams")
    assert response.status_code == 500
    assert _json(response)["detail"].startswith("Something went wrong on our side")
    assert "the database fell over" not in response.content.decode()
    assert any(
        "the database fell over" in r.getMessage()
        or (r.exc_info and "fell over" in str(r.exc_info[1]))
        for r in caplog.records
    )


@DEBUG_MODES
def test_an_unmatched_hook_path_is_a_json_404(db, debug):
    with override_settings(DEBUG=debug):
        response = Client().post("/hooks/nothing-here/", b"{}", content_type="application/json")
    assert response.status_code == 404 and "error" in _json(response)


def test_a_page_outside_the_api_still_gets_the_html_404(member):
    from tests.conftest import client_for

    response = client_for(member).get("/no-such-page/")
    assert response.status_code == 404 and response["Content-Type"].startswith("text/html")
