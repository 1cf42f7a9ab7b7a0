"""An API client per persona: a real token sent as `Authorization: Bearer`, JSON in and out."""

import json
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client

from teams.services import api_token_create

BASE = "/api/v1"


class ApiClient:
    def __init__(self, raw_token: str | None) -> None:
        self.client = Client()
        self.headers = {"Authorization": f"Bearer {raw_token}"} if raw_token else {}

    def get(self, path: str, params: dict[str, Any] | None = None) -> Any:
        return self.client.get(BASE + path, params or {}, headers=self.headers)

    def post(self, path: str, body: Any = None, *, raw: str | None = None) -> Any:
        data = raw if raw is not None else json.dumps(body if body is not None else {})
        return self.client.post(
            BASE + path, data, content_type="application/json", headers=self.headers
        )

    def patch(self, path: str, body: Any) -> Any:
        return self.client.patch(
            BASE + path, json.dumps(body), content_type="application/json", headers=self.headers
        )


def api_for(user: User) -> ApiClient:
    _, raw = api_token_create(user=user, name=f"{user.username}'s test token")
    return ApiClient(raw)


def error_fields(response: Any) -> dict[str, list[str]]:
    """The 422 details by their loc's last element (the field) -> messages."""
    assert response.status_code == 422, response.content
    fields: dict[str, list[str]] = {}
    for item in response.json()["detail"]:
        assert set(item) >= {"loc", "msg", "type"}, item
        fields.setdefault(str(item["loc"][-1]), []).append(item["msg"])
    return fields


@pytest.fixture
def member_api(member) -> ApiClient:
    return api_for(member)


@pytest.fixture
def viewer_api(viewer) -> ApiClient:
    return api_for(viewer)


@pytest.fixture
def outsider_api(outsider) -> ApiClient:
    return api_for(outsider)


@pytest.fixture(autouse=True)
def answers_match_the_openapi_document(monkeypatch):
    """Every answer an API test receives is checked against /api/v1/openapi.json."""
    from django.test.client import Client as DjangoClient

    from tests.api.openapi_check import check

    original = DjangoClient.request

    def checked(self: DjangoClient, **request: Any) -> Any:
        response = original(self, **request)
        check(
            request.get("REQUEST_METHOD", "GET"),
            request.get("PATH_INFO", ""),
            response.status_code,
            response.get("Content-Type", ""),
            b"" if response.streaming else response.content,
        )
        return response

    monkeypatch.setattr(DjangoClient, "request", checked)
