"""The REST API, /api/v1/: personal API tokens only, JSON errors in ninja's shape everywhere."""

import logging
from typing import Any

from django.conf import settings
from django.core.exceptions import PermissionDenied, RequestDataTooBig
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404, HttpRequest, HttpResponse
from ninja import NinjaAPI
from ninja.errors import AuthenticationError, HttpError
from ninja.openapi.schema import OpenAPISchema

from config.api_schemas import ErrorOut, ValidationErrorOut, ValidationItem
from config.errors import SERVER_ERROR
from escapes.api import router as escapes_router
from evidence.api import router as evidence_router
from insights.api import router as dashboard_router
from insights.metrics_api import router as metrics_router
from retros.api import router as retros_router
from teams.api import error_items
from teams.api import router as teams_router
from teams.auth import ApiTokenAuth

logger = logging.getLogger(__name__)


ERROR_SCHEMAS = (ErrorOut, ValidationErrorOut, ValidationItem)
ERROR_TEXTS = {
    401: "No valid API token: send `Authorization: Bearer lks_…`",
    403: "Your role in the team does not allow this (a viewer reads only)",
    404: "No such team among yours, or no such object in it",
    413: "The request body is over the upload limit",
    422: "Invalid input: each problem with its `loc` and `msg`",
    500: "Something went wrong on our side (logged)",
}


def _errors_for(method: str, path: str, operation: dict[str, Any]) -> list[int]:
    """The refusals an operation can answer, besides those its decorator declares (409)."""
    codes = [401, 500]
    if "{" in path:
        codes.append(404)
    if method != "get":
        codes += [403, 413]
    if operation.get("parameters") or operation.get("requestBody"):
        codes.append(422)
    return codes


class LeaksealAPI(NinjaAPI):
    """NinjaAPI whose document lists every refusal an operation can answer, with its shape."""

    def get_openapi_schema(
        self, *, path_prefix: str | None = None, path_params: dict[str, Any] | None = None
    ) -> OpenAPISchema:
        schema = super().get_openapi_schema(path_prefix=path_prefix, path_params=path_params)
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        for model in ERROR_SCHEMAS:
            found = model.model_json_schema(ref_template="#/components/schemas/{model}")
            found.pop("$defs", None)
            components[model.__name__] = found
        for path, item in schema["paths"].items():
            for method, operation in item.items():
                responses = operation.setdefault("responses", {})
                for code in _errors_for(method, path, operation):
                    name = "ValidationErrorOut" if code == 422 else "ErrorOut"
                    ref = {"$ref": f"#/components/schemas/{name}"}
                    responses.setdefault(
                        code,
                        {
                            "description": ERROR_TEXTS[code],
                            "content": {"application/json": {"schema": ref}},
                        },
                    )
        return schema


api = LeaksealAPI(
    title="Leakseal API",
    version="1",
    description=(
        "Report escapes, releases and stage results; read retros and metrics. "
        "Authenticate with a personal API token: `Authorization: Bearer lks_…` "
        "(create one on the API tokens page or with `manage.py issue_token`). "
        "Times are ISO 8601 with a UTC offset."
    ),
    urls_namespace="api",
    auth=ApiTokenAuth(),
)

api.add_router("/teams", teams_router)
api.add_router("/teams", escapes_router)
api.add_router("/teams", retros_router)
api.add_router("/teams", metrics_router)
api.add_router("/teams", evidence_router)
api.add_router("/", dashboard_router)


@api.exception_handler(AuthenticationError)
def unauthorized(request: HttpRequest, exc: AuthenticationError) -> HttpResponse:
    response = api.create_response(request, {"detail": exc.message}, status=401)
    response["WWW-Authenticate"] = 'Bearer realm="leakseal"'
    return response


@api.exception_handler(HttpError)
def http_error(request: HttpRequest, exc: HttpError) -> HttpResponse:
    # ninja raises HttpError(400) from the parser's error when the body is not JSON; answer
    # it like any other invalid body, 422 with a `loc`, so clients handle one error shape.
    if exc.status_code == 400 and isinstance(exc.__cause__, ValueError):
        detail = [{"type": "json_invalid", "loc": ["body"], "msg": "Malformed JSON body."}]
        return api.create_response(request, {"detail": detail}, status=422)
    return api.create_response(request, {"detail": exc.message}, status=exc.status_code)


@api.exception_handler(Http404)
def not_found(request: HttpRequest, exc: Http404) -> HttpResponse:
    return api.create_response(request, {"detail": str(exc) or "Not found."}, status=404)


@api.exception_handler(PermissionDenied)
def forbidden(request: HttpRequest, exc: PermissionDenied) -> HttpResponse:
    return api.create_response(request, {"detail": str(exc) or "Forbidden."}, status=403)


@api.exception_handler(DjangoValidationError)
def invalid(request: HttpRequest, exc: DjangoValidationError) -> HttpResponse:
    """A service's ValidationError that an endpoint did not place itself."""
    return api.create_response(request, {"detail": error_items(exc)}, status=422)


@api.exception_handler(Exception)
def server_error(request: HttpRequest, exc: Exception) -> HttpResponse:
    """JSON, in both DEBUG modes (ninja would answer a traceback as text under DEBUG)."""
    logger.error("API error on %s %s", request.method, request.path, exc_info=exc)
    return api.create_response(request, {"detail": SERVER_ERROR}, status=500)


@api.exception_handler(RequestDataTooBig)
def too_big(request: HttpRequest, exc: RequestDataTooBig) -> HttpResponse:
    limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE // (1024 * 1024)
    detail = f"The request body is over {limit} MB; send fewer escapes per request."
    return api.create_response(request, {"detail": detail}, status=413)
