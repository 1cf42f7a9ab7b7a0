"""The REST API, /api/v1/: personal API tokens only, JSON errors in ninja's shape everywhere."""

from django.conf import settings
from django.core.exceptions import PermissionDenied, RequestDataTooBig
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404, HttpRequest, HttpResponse
from ninja import NinjaAPI
from ninja.errors import AuthenticationError, HttpError

from escapes.api import router as escapes_router
from insights.api import router as dashboard_router
from insights.metrics_api import router as metrics_router
from retros.api import router as retros_router
from teams.api import error_items
from teams.api import router as teams_router
from teams.auth import ApiTokenAuth

api = NinjaAPI(
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


@api.exception_handler(RequestDataTooBig)
def too_big(request: HttpRequest, exc: RequestDataTooBig) -> HttpResponse:
    limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE // (1024 * 1024)
    detail = f"The request body is over {limit} MB; send fewer escapes per request."
    return api.create_response(request, {"detail": detail}, status=413)
