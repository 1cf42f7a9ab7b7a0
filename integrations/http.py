"""Every outbound HTTP call to a tracker goes through here.

One `requests.Session` per client, with timeouts on every request, and one error type,
`TrackerError`, that says whether trying again can help:

* transient — the connection failed or timed out, the tracker answered 5xx, or 429 (rate
  limited; `retry_after` holds its Retry-After seconds, as Jira and Azure DevOps send them);
* permanent — any other 4xx (400 with field errors, 401, 403, 404 for a missing board...):
  retrying the same request cannot succeed, so the push stops and shows the message.

The message is the tracker's own (Jira's `errorMessages` and `errors`, Azure DevOps'
`message`), never a credential: request headers are not part of it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import requests
from django.conf import settings

from config.retry import retry_after_seconds

MAX_MESSAGE = 1000


class RemoteError(Exception):
    """A remote service refused or failed: `transient` when trying again later can help."""

    def __init__(
        self,
        message: str,
        *,
        transient: bool,
        status: int | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.transient = transient
        self.status = status
        self.retry_after = retry_after

    def __str__(self) -> str:
        return self.message


class TrackerError(RemoteError):
    """Jira's or Azure DevOps' answer, worded for the action's card."""


class TimeoutSession(requests.Session):
    """A Session whose every request has the configured connect and read timeouts."""

    def request(self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any) -> Any:
        kwargs.setdefault(
            "timeout", (settings.TRACKER_CONNECT_TIMEOUT, settings.TRACKER_READ_TIMEOUT)
        )
        return super().request(method, url, *args, **kwargs)


def new_session(headers: Mapping[str, str] | None = None) -> TimeoutSession:
    session = TimeoutSession()
    session.headers.update({"User-Agent": "Leakseal", "Accept": "application/json"})
    if headers:
        session.headers.update(headers)
    return session


def tracker_message(response: requests.Response) -> str:
    """What the tracker said went wrong, in its own words."""
    try:
        body = response.json()
    except ValueError:
        body = None
    parts: list[str] = []
    if isinstance(body, dict):
        # Jira: {"errorMessages": [...], "errors": {field: message}}
        parts.extend(str(m) for m in body.get("errorMessages") or [] if m)
        errors = body.get("errors")
        if isinstance(errors, dict):
            parts.extend(f"{field}: {message}" for field, message in errors.items())
        # Azure DevOps: {"message": "...", "typeKey": "..."}
        if body.get("message"):
            parts.append(str(body["message"]))
    if not parts:
        text = (response.text or "").strip()
        parts.append(text[:200] if text and not text.startswith("<") else response.reason or "")
    message = "; ".join(p for p in parts if p) or "no message"
    return f"HTTP {response.status_code}: {message}"[:MAX_MESSAGE]


def error_for(response: requests.Response) -> TrackerError:
    status = response.status_code
    transient = status == 429 or status >= 500
    return TrackerError(
        tracker_message(response),
        transient=transient,
        status=status,
        retry_after=retry_after_seconds(response.headers.get("Retry-After")) if transient else None,
    )


def check(response: requests.Response) -> requests.Response:
    """`response` if it is a success, else the TrackerError it stands for."""
    if response.status_code >= 400:
        raise error_for(response)
    return response


def transport_error(exc: requests.RequestException) -> TrackerError:
    """A TrackerError for a failure below HTTP (no answer, or not in time)."""
    if isinstance(exc, requests.Timeout):
        return TrackerError("The tracker did not answer in time", transient=True)
    if isinstance(exc, requests.ConnectionError):
        return TrackerError("Could not connect to the tracker", transient=True)
    if isinstance(exc, requests.HTTPError) and exc.response is not None:
        return error_for(exc.response)
    return TrackerError(f"Request to the tracker failed: {type(exc).__name__}", transient=True)
