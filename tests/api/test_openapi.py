"""The OpenAPI document: unique schema names, every refusal documented, and the checker that
holds every API test's answers against it (tests/api/openapi_check.py) really checks."""

import enum
import typing

import pytest
from pydantic import BaseModel

from config.api import api
from tests.api.openapi_check import ApiSpecViolation, check, document

JSON = "application/json"


def _models(annotation: object, seen: dict[str, set[type]]) -> None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel | enum.Enum):
        names = seen.setdefault(annotation.__name__, set())
        if annotation in names:
            return
        names.add(annotation)
        if issubclass(annotation, BaseModel):
            for field in annotation.model_fields.values():
                _models(field.annotation, seen)
        return
    for argument in typing.get_args(annotation):
        _models(argument, seen)


def test_every_schema_name_names_one_class():
    seen: dict[str, set[type]] = {}
    for _, router in api._routers:
        for path_view in router.path_operations.values():
            for operation in path_view.operations:
                for model in operation.response_models.values():
                    _models(model, seen)
                for model in operation.models:
                    _models(model, seen)
    ours = ("config", "teams", "escapes", "retros", "insights", "integrations")
    twice = {
        name: sorted(c.__module__ for c in classes)
        for name, classes in seen.items()
        if len([c for c in classes if c.__module__.split(".")[0] in ours]) > 1
    }
    assert twice == {}
    assert "ReleaseOut" in seen and "DashboardReleaseOut" in seen


def test_the_team_releases_list_publishes_the_escapes_release_schema():
    doc = document()
    page = doc["components"]["schemas"]["ReleasePage"]
    assert page["properties"]["items"]["items"] == {"$ref": "#/components/schemas/ReleaseOut"}
    assert "stage_catches" in doc["components"]["schemas"]["ReleaseOut"]["properties"]
    dashboard = doc["components"]["schemas"]["DashboardOut"]["properties"]["releases"]
    assert dashboard["items"] == {"$ref": "#/components/schemas/DashboardReleaseOut"}


@pytest.mark.parametrize(
    ("path", "method", "codes"),
    [
        (
            "/api/v1/teams/{slug}/releases",
            "post",
            {"201", "401", "403", "404", "409", "413", "422"},
        ),
        (
            "/api/v1/teams/{slug}/escapes/bulk",
            "post",
            {"200", "201", "401", "403", "404", "409", "422"},
        ),
        (
            "/api/v1/teams/{slug}/actions/{action_id}/done",
            "post",
            {"200", "401", "404", "409", "422"},
        ),
        ("/api/v1/teams", "get", {"200", "401", "500"}),
    ],
)
def test_refusals_are_documented_with_their_shape(path, method, codes):
    responses = document()["paths"][path][method]["responses"]
    assert codes <= set(responses)
    assert responses["401"]["content"][JSON]["schema"] == {"$ref": "#/components/schemas/ErrorOut"}
    if "422" in responses:
        schema = responses["422"]["content"][JSON]["schema"]
        assert schema == {"$ref": "#/components/schemas/ValidationErrorOut"}


def test_the_checker_refuses_an_undocumented_status():
    with pytest.raises(ApiSpecViolation, match="status 418 is not documented"):
        check("GET", "/api/v1/teams", 418, JSON, b'{"detail": "teapot"}')


def test_the_checker_refuses_a_body_that_does_not_match():
    with pytest.raises(ApiSpecViolation, match="does not match"):
        check("GET", "/api/v1/teams", 200, JSON, b'[{"slug": 1}]')
    with pytest.raises(ApiSpecViolation, match="does not match"):
        check("POST", "/api/v1/teams/x/releases", 422, JSON, b'{"detail": "not a list"}')


def test_the_checker_refuses_html_and_unknown_routes_answered_otherwise():
    with pytest.raises(ApiSpecViolation, match="not JSON"):
        check("GET", "/api/v1/nope", 404, "text/html", b"<h1>Not found</h1>")
    with pytest.raises(ApiSpecViolation, match="expected 404"):
        check("GET", "/api/v1/nope", 200, JSON, b"{}")
    with pytest.raises(ApiSpecViolation, match="expected 405"):
        check("DELETE", "/api/v1/teams", 404, JSON, b'{"detail": "x"}')
    check("GET", "/api/v1/nope", 404, JSON, b'{"detail": "Not found."}')


def test_the_literal_route_wins_over_a_template():
    """GET /escapes/bulk is the bulk route's 405, not the escape detail's answer."""
    check(
        "GET",
        "/api/v1/teams/x/escapes/bulk",
        405,
        JSON,
        b'{"detail": "Method GET not allowed here; use POST."}',
    )
