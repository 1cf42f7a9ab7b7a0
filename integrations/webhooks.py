"""The endpoints Jira and Azure DevOps call: verify the delivery, then let sync.py apply it.

No session and no CSRF token: the URL's token routes the delivery to its connection and the
signature (Jira) or the subscription's credentials (Azure DevOps) prove it came from there.
A delivery that is not proven gets 401 and changes nothing.

The delivery is applied inside the request: it costs one tracker read (the ticket, or the
escape's issue), bounded by the tracker timeouts, so status shows within seconds without
depending on a worker being up; when that read fails we answer 503 (or 502 when the tracker
refused it) and record nothing, so the tracker's redelivery — or the poll, the backstop —
applies it later. Neither the body nor any secret is ever logged.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import logging

from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from integrations.http import TrackerError
from integrations.models import TrackerConnection
from integrations.sync import BadDelivery, webhook_accept

log = logging.getLogger(__name__)


def _connection(token: str, *, jira: bool) -> TrackerConnection | None:
    connection = (
        TrackerConnection.objects.select_related("team").filter(webhook_token=token).first()
    )
    if connection is None or connection.is_jira != jira:
        return None
    return connection


def _same(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())


def jira_refusal(connection: TrackerConnection, request: HttpRequest) -> str:
    """Why the Jira delivery is not proven ("" when it is): X-Hub-Signature over the raw body."""
    secret = connection.webhook_secret
    if not secret:
        return "This connection has no webhook secret; set one in the integration settings."
    given = request.headers.get("X-Hub-Signature", "")
    if not given:
        return "The delivery is not signed (no X-Hub-Signature header)."
    method, _, signature = given.partition("=")
    if method.strip().lower() != "sha256" or not signature:
        return "X-Hub-Signature must be sha256=<hex>."
    expected = hmac.new(secret.encode(), request.body, hashlib.sha256).hexdigest()
    if not _same(expected, signature.strip().lower()):
        return "The signature does not match the body."
    return ""


def _basic(request: HttpRequest) -> tuple[str, str] | None:
    scheme, _, encoded = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None
    user, sep, password = decoded.partition(":")
    return (user, password) if sep else None


def azure_refusal(connection: TrackerConnection, request: HttpRequest) -> str:
    """Why the Azure DevOps delivery is not proven ("" when it is).

    Service hooks are not signed (specs/README.md): the subscription sends the Basic
    credentials or the header it was given, and those are what we check.
    """
    secret = connection.webhook_secret
    if not secret:
        return "This connection has no webhook secret; set one in the integration settings."
    if connection.webhook_header:
        given = request.headers.get(connection.webhook_header)
        if given is None:
            return f"The {connection.webhook_header} header is missing."
        return "" if _same(given, secret) else f"The {connection.webhook_header} header is wrong."
    credentials = _basic(request)
    if credentials is None:
        return "Basic credentials are required."
    user, password = credentials
    # Both compared, always, so the time taken does not tell which one was wrong.
    user_ok = _same(user, connection.webhook_username)
    password_ok = _same(password, secret)
    return "" if user_ok and password_ok else "The credentials are wrong."


def _receive(request: HttpRequest, token: str, *, jira: bool) -> JsonResponse:
    connection = _connection(token, jira=jira)
    if connection is None:
        return JsonResponse({"error": "No such webhook."}, status=404)
    refusal = jira_refusal(connection, request) if jira else azure_refusal(connection, request)
    if refusal:
        log.info("webhook of connection %s refused: %s", connection.pk, refusal)
        return JsonResponse({"error": refusal}, status=401)
    try:
        outcome = webhook_accept(connection=connection, body=request.body, headers=request.headers)
    except BadDelivery as exc:
        return JsonResponse({"error": str(exc)}, status=400)
    except TrackerError as exc:
        # Not recorded as delivered: the tracker's redelivery (or the poll) applies it later.
        # 503 when trying again can help (the tracker is down or throttling us); 502 when it
        # refused our read (deleted issue, expired token) — the hook's failure log shows why.
        log.info("webhook of connection %s: tracker read failed: %s", connection.pk, exc)
        response = JsonResponse(
            {"error": f"Could not read the issue from the tracker: {exc}"},
            status=503 if exc.transient else 502,
        )
        if exc.transient and exc.retry_after:
            response["Retry-After"] = str(int(exc.retry_after))
        return response
    log.info("webhook of connection %s: %s", connection.pk, outcome)
    return JsonResponse({"result": outcome})


@csrf_exempt
@require_POST
def webhook_jira(request: HttpRequest, token: str) -> JsonResponse:
    return _receive(request, token, jira=True)


@csrf_exempt
@require_POST
def webhook_azure(request: HttpRequest, token: str) -> JsonResponse:
    return _receive(request, token, jira=False)
