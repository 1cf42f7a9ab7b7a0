"""Friendly refusals: the 400, 403, 404, CSRF and 500 pages, in both DEBUG modes.

Every refusal is a page of the site, in its layout, that says without blame what happened and
offers a way back: the previous page when it was one of ours, the team's home when the URL
names a team the user is a member of, else their teams, and sign-in when they are anonymous.

- 404 never tells whether another team, or its object, exists. The team (and with it the
  team's nav) comes from the same `get_membership` that `team_view` calls, so an outsider's
  404 for another team's retro is word for word the 404 of a retro that does not exist.
- 403 comes after `team_view` found a membership whose role is not enough, so it may name
  the team and the role, and whom to ask.
- An htmx request gets the message alone (`<page>#message`). htmx swaps no 4xx answer;
  static/js/refusals.js shows the message in the page's alert region instead.
- 500 renders without a request or context (the database may be what failed), from a
  standalone template; should even that fail, a line of plain HTML.
- 503 when no database connection came free within the pool's timeout (DB_POOL_TIMEOUT: a
  burst larger than the pool, config/settings.py): a short plain page with `Retry-After`, in
  both DEBUG modes. Nothing failed that a retry will not fix; the live board's stream
  reconnects by itself (static/js/board.js).

Under DEBUG, Django would answer an `Http404` or a `BadRequest` with its technical page;
`RefusalPagesMiddleware` answers with these pages in both modes.

Machines get JSON: everything under /api/v1/ (`{"detail": ...}`, the API's error shape) and
/hooks/ (`{"error": ...}`, the webhooks' shape) answers its refusals — an unmatched path, a
wrong method, a body over DATA_UPLOAD_MAX_MEMORY_SIZE (413), a 500 — as JSON, in both DEBUG
modes, never a page. A 500 under DEBUG keeps
Django's technical page on purpose: its traceback is what the developer running `make run`
needs, and production runs with DEBUG=0 (docker-compose.yml), where this 500 page shows.
"""

import logging
import re
import sys
import time
from collections.abc import Callable
from inspect import iscoroutinefunction, markcoroutinefunction
from typing import Any
from urllib.parse import urlsplit

from asgiref.sync import sync_to_async
from django.conf import settings
from django.core.exceptions import BadRequest, DisallowedHost, PermissionDenied, RequestDataTooBig
from django.db import DEFAULT_DB_ALIAS, connections
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseServerError, JsonResponse
from django.http.response import HttpResponseBase
from django.middleware.csrf import REASON_NO_CSRF_COOKIE
from django.shortcuts import render
from django.template import loader
from django.urls import get_resolver, get_urlconf, reverse
from django.utils.cache import patch_vary_headers
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.csrf import requires_csrf_token

from config.postgresql import base as database
from teams.models import Membership
from teams.selectors import RuleDenied, get_membership

logger = logging.getLogger(__name__)

TEAM_PATH = re.compile(r"^/t/(?P<team>[-\w]+)/")
SERVER_ERROR = "Something went wrong on our side; the error is logged. Try again later."
PLAIN_500 = (
    '<!doctype html><html lang="en"><title>Something went wrong · Leakseal</title>'
    "<h1>Something went wrong on our side</h1><p data-refusal>Leakseal could not finish this "
    'request. Go back, reload the page and try again.</p><p><a href="/">Your teams</a></p>'
)

BUSY_RETRY_AFTER_SECONDS = 5
BUSY_MESSAGE = "Many people are opening pages at once. Try again in a few seconds."
BUSY_503 = (
    '<!doctype html><html lang="en"><title>Busy · Leakseal</title>'
    "<h1>Leakseal is busy</h1><p data-refusal>Many people are opening pages at once. "
    "Try again in a few seconds.</p>"
)


def pool_exhausted(exception: BaseException | None) -> bool:
    """Whether `exception` is (or was caused by) the pool finding no free connection in time.

    Django wraps psycopg_pool's `PoolTimeout` in its own `OperationalError`; a session read
    fails inside `except AttributeError` (the session not yet loaded), which the log shows
    first.
    """
    try:
        from psycopg_pool import PoolTimeout
    except ImportError:  # SQLite only: no pool
        return False
    for _ in range(5):  # the exception and what it was raised from
        if exception is None or isinstance(exception, PoolTimeout):
            return exception is not None
        exception = exception.__cause__ or exception.__context__
    return False


def busy(request: HttpRequest | None = None) -> HttpResponse:
    """503 with Retry-After: no database connection came free in time. Reads nothing."""
    logger.warning(
        "No database connection came free within the pool's timeout: answered 503 to %s (%s)",
        request.path if request is not None else "a request",
        _pool_stats(),
    )
    response: HttpResponse
    if request is not None and _json_key(request):  # the API and webhooks answer JSON
        response = json_refusal(request, 503, BUSY_MESSAGE)
    else:
        response = HttpResponse(BUSY_503, status=503)
    response["Retry-After"] = str(BUSY_RETRY_AFTER_SECONDS)
    response["Cache-Control"] = "no-store"
    return response


def _pool_stats() -> str:
    """What the pool says of itself, for whoever reads the log: a pool that stays full means
    connections held and never given back, a queue means a burst. Every HOLDERS_EVERY
    seconds at most, who holds them (config/postgresql/base.py)."""
    global _holders_told_at
    try:
        stats = getattr(connections[DEFAULT_DB_ALIAS], "pool").get_stats()  # noqa: B009
    except Exception:  # no pool (SQLite, DB_POOL=0): nothing to say
        return "no pool"
    keys = ("pool_size", "pool_max", "pool_available", "requests_waiting", "connections_lost")
    said = ", ".join(f"{key} {stats[key]}" for key in keys if key in stats)
    now = time.monotonic()
    if now - _holders_told_at >= HOLDERS_EVERY:
        _holders_told_at = now
        said += "".join(f"\n  held by {holder}" for holder in database.holders())
    return said


HOLDERS_EVERY = 30.0
_holders_told_at = -HOLDERS_EVERY


# Paths answered in JSON, and the key their error message goes under.
JSON_PATHS = (("/api/v1/", "detail"), ("/hooks/", "error"))


def _json_key(request: HttpRequest) -> str | None:
    path = request.path if request.path.endswith("/") else request.path + "/"
    return next((key for prefix, key in JSON_PATHS if path.startswith(prefix)), None)


def json_refusal(request: HttpRequest, status: int, message: str) -> JsonResponse:
    """A refusal under /api/v1/ or /hooks/, in that path's error shape."""
    response = JsonResponse({_json_key(request) or "detail": message}, status=status)
    patch_vary_headers(response, ["Authorization"])
    return response


def _too_big(request: HttpRequest) -> JsonResponse:
    limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    size = f"{limit // (1024 * 1024)} MB" if limit else "the limit"
    return json_refusal(request, 413, f"The request body is over {size}; send less at once.")


# --- The handlers (config/urls.py names them; CSRF_FAILURE_VIEW names csrf_failure).


@requires_csrf_token
def page_not_found(request: HttpRequest, exception: Exception) -> HttpResponse:
    if _json_key(request):
        where = f"{request.method} {request.path}"
        return json_refusal(request, 404, f"Not found: nothing answers {where}.")
    return _refusal(request, "404.html", status=404)


@requires_csrf_token
def permission_denied(request: HttpRequest, exception: Exception) -> HttpResponse:
    if _json_key(request):
        return json_refusal(request, 403, str(exception) or "Forbidden.")
    rule = isinstance(exception, RuleDenied)
    return _refusal(request, "403.html", status=403, reason=str(exception), rule=rule)


@requires_csrf_token
def bad_request(request: HttpRequest, exception: Exception) -> HttpResponse:
    if _json_key(request):
        if isinstance(exception, RequestDataTooBig):
            return _too_big(request)
        return json_refusal(request, 400, "Bad request.")
    return _refusal(request, "400.html", status=400)


def csrf_failure(request: HttpRequest, reason: str = "") -> HttpResponse:
    """A form sent from a page whose CSRF token is stale (signed in or out elsewhere)."""
    return _refusal(
        request,
        "403_csrf.html",
        status=403,
        no_cookie=reason == REASON_NO_CSRF_COOKIE,
        debug_reason=reason if settings.DEBUG else "",
    )


def server_error(request: HttpRequest) -> HttpResponse:
    """The 500 page: no request context, nothing that reads the database or the user.

    Called while the exception is being handled: a pool that ran dry (in a middleware,
    before any view) is a 503 instead.
    """
    if pool_exhausted(sys.exc_info()[1]):
        return busy(request)
    if _json_key(request):
        return json_refusal(request, 500, SERVER_ERROR)
    try:
        html = loader.get_template("500.html").render()
    except Exception:  # the error page must not fail in turn
        logger.exception("The 500 page could not be rendered")
        html = PLAIN_500
    return HttpResponseServerError(html)


def _refusal(request: HttpRequest, template: str, *, status: int, **extra: Any) -> HttpResponse:
    membership = _membership(request)
    fragment = _wants_fragment(request)
    context = {
        "team": membership.team if membership else None,
        "membership": membership,
        "back_url": _previous_page(request),
        "fragment": fragment,
        **extra,
    }
    name = f"{template}#message" if fragment else template
    response = render(request, name, context, status=status)
    patch_vary_headers(response, ["HX-Request"])
    return response


def _wants_fragment(request: HttpRequest) -> bool:
    """An htmx request for a part of a page; not a boosted link or a history restore."""
    htmx = getattr(request, "htmx", None)
    if not htmx:
        return False
    return not htmx.boosted and not htmx.history_restore_request


def _membership(request: HttpRequest) -> Membership | None:
    """The user's membership of the team the URL names, or None (no team, or not theirs)."""
    match = request.resolver_match
    slug = match.kwargs.get("team") if match else None
    if slug is None and (found := TEAM_PATH.match(request.path)):
        slug = found["team"]
    user = getattr(request, "user", None)
    if not isinstance(slug, str) or user is None:
        return None
    try:
        return get_membership(user, slug)
    except Http404:
        return None


def _previous_page(request: HttpRequest) -> str:
    """The path of the page the user came from, when it is one of ours and not this one."""
    referer = request.headers.get("Referer", "")
    try:
        host = request.get_host()
    except DisallowedHost:
        return ""
    ours = url_has_allowed_host_and_scheme(
        referer, allowed_hosts={host}, require_https=request.is_secure()
    )
    parts = urlsplit(referer)
    if not ours or not parts.netloc or parts.path in (request.path, reverse("login")):
        return ""
    return parts.path + (f"?{parts.query}" if parts.query else "")


# --- The middleware: views' refusals, in both DEBUG modes and in the request's thread.


class RefusalPagesMiddleware:
    """Answer a view's `Http404`, `PermissionDenied` or `BadRequest` with the site's page.

    With DEBUG off Django would call the same handlers, but under ASGI it converts exceptions
    to responses with `thread_sensitive=False`: in a thread other than the request's, where
    the pages' database reads (the user, the membership) open connections that no request
    closes. `process_exception` runs in the request's thread. Under DEBUG, Django would show
    its technical 404 and 400 pages instead; the 404's even names the model it missed.

    A path that matches no URL never reaches a view. Under DEBUG its technical 404 is
    replaced on the way out. With DEBUG off Django calls handler404 itself, in that other
    thread; for an anonymous visitor (scanners are) the page reads nothing from the database,
    and a signed-in user's mistyped URL leaves at most an idle connection in that thread.

    Last in MIDDLEWARE, so that `request.user` and `request.htmx` are set.
    """

    sync_capable = True
    async_capable = True

    def __init__(self, get_response: Callable[[HttpRequest], Any]) -> None:
        self.get_response = get_response
        self.async_mode = iscoroutinefunction(get_response)
        if self.async_mode:
            markcoroutinefunction(self)

    def __call__(self, request: HttpRequest) -> Any:
        if self.async_mode:
            return self.__acall__(request)
        response = self.get_response(request)
        if _unrouted(request, response):
            return _handler(request, 404, Http404())
        return _as_json(request, response)

    async def __acall__(self, request: HttpRequest) -> HttpResponseBase:
        response = await self.get_response(request)
        if _unrouted(request, response):
            return await sync_to_async(_handler)(request, 404, Http404())
        return _as_json(request, response)

    def process_exception(
        self, request: HttpRequest, exception: Exception
    ) -> HttpResponseBase | None:
        if pool_exhausted(exception):
            return busy(request)
        if _json_key(request) and isinstance(exception, RequestDataTooBig):
            return _too_big(request)  # else Django's 400, a technical page under DEBUG
        for kind, status in REFUSALS:
            if isinstance(exception, kind):
                return _handler(request, status, exception)
        return None


REFUSALS: tuple[tuple[type[Exception], int], ...] = (
    (Http404, 404),
    (PermissionDenied, 403),
    (BadRequest, 400),
)


def _as_json(request: HttpRequest, response: HttpResponseBase) -> HttpResponseBase:
    """An error under /api/v1/ or /hooks/ that is not JSON yet (a 405 without a body, a
    technical page under DEBUG), as JSON with the status's reason."""
    if response.status_code < 400 or not _json_key(request):
        return response
    if response.get("Content-Type", "").startswith("application/json"):
        return response
    if response.status_code >= 500:
        message = SERVER_ERROR
    elif response.status_code == 405 and response.get("Allow"):
        message = f"Method {request.method} not allowed here; use {response['Allow']}."
    else:
        message = f"{response.reason_phrase}."
    replaced = json_refusal(request, response.status_code, message)
    for header in ("Allow", "WWW-Authenticate", "Retry-After"):
        if header in response:
            replaced[header] = response[header]
    return replaced


def _unrouted(request: HttpRequest, response: HttpResponseBase) -> bool:
    """Django's technical 404 for a path that matched no URL (no view ran)."""
    return settings.DEBUG and response.status_code == 404 and request.resolver_match is None


def _handler(request: HttpRequest, status: int, exception: Exception) -> HttpResponseBase:
    """The URLconf's handler for `status`, as Django calls it when DEBUG is off."""
    resolver = get_resolver(get_urlconf())
    # The stubs know only handler500's signature; the 4xx handlers also take the exception.
    handler: Callable[..., HttpResponseBase] = resolver.resolve_error_handler(status)
    return handler(request, exception=exception)
