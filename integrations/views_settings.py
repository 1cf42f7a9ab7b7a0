"""The team's tracker connection page: connect, edit, test and disconnect (team admins only).

No response of these views carries a secret: the form never renders the token or the webhook
secret, and the lines of a connection test come from the tracker (never our request headers)
and are scrubbed of both secrets anyway.
"""

import logging
from dataclasses import replace
from typing import Any, cast

import requests
from django.contrib import messages
from django.contrib.auth.models import User
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods, require_POST
from django_htmx.http import HttpResponseClientRedirect
from django_htmx.middleware import HtmxDetails

from audit.models import Action
from audit.services import record
from config.crypto import CredentialError
from integrations import push
from integrations.clients import client_for
from integrations.forms import PLAIN_FIELDS, ConnectionForm, ConnectionValues
from integrations.http import TrackerError, transport_error
from integrations.models import TrackerConnection
from integrations.selectors import connection_events, connection_for_team, webhook_url
from integrations.trackers import CheckResult
from teams.decorators import team_view
from teams.models import Membership, Team
from teams.services import team_lock

logger = logging.getLogger(__name__)

TEMPLATE = "integrations/connection.html"
HIDDEN = "[hidden]"

# --- Writes -----------------------------------------------------------------------------
# Services of this page: the form decides what is valid, these only store it.


# What the audit trail keeps of a connection: its plain fields and field mapping, and of each
# secret only whether it was set, changed or cleared.
AUDITED_FIELDS = (*PLAIN_FIELDS, "field_mapping")


def _plain(connection: TrackerConnection) -> dict[str, Any]:
    return {name: getattr(connection, name) for name in AUDITED_FIELDS}


def _secret_change(stored: TrackerConnection, column: str, new: str | None) -> str | None:
    """How `new` replaces the stored secret ("set", "changed", "cleared"); None: it keeps it."""
    if new is None:
        return None
    had = bool(getattr(stored, f"{column}_encrypted"))
    if not new:
        return "cleared" if had else None
    if not had:
        return "set"
    try:
        same = getattr(stored, column) == new
    except CredentialError:  # unreadable (its key is gone): the new one replaces it
        same = False
    return None if same else "changed"


def _target(connection: TrackerConnection) -> str:
    return f"{connection.get_kind_display()} {connection.base_url} project {connection.project}"


def connection_save(
    *, team: Team, values: ConnectionValues, by: User | None = None
) -> TrackerConnection:
    """Create or update the team's connection; a secret given as None keeps the stored one.

    The audit trail gets "connected" for a new connection, "changed" with the fields that
    changed (and whether the token did), and "webhook secret rotated" when that secret was
    replaced; a save that changes nothing writes nothing.
    """
    with transaction.atomic():
        # The team row lock queues two admins saving at once, so neither creates a second
        # connection (one per team) nor overwrites the other half-way.
        team_lock(team_id=team.pk)
        stored = TrackerConnection.objects.filter(team=team).first()
        connection = stored or TrackerConnection(team=team)
        before = _plain(connection) if stored is not None else None
        token = _secret_change(connection, "token", values.token) if stored else None
        secret = (
            _secret_change(connection, "webhook_secret", values.webhook_secret) if stored else None
        )
        values.apply_to(connection)
        connection.save()
        if before is None:
            record(
                team=team,
                actor=by,
                action=Action.TRACKER_CONNECTED,
                target=_target(connection),
                changes={
                    **{k: v for k, v in _plain(connection).items() if v not in ("", None, {})},
                    "token": "set" if connection.token_encrypted else "cleared",
                    "webhook_secret": "set" if connection.webhook_secret_encrypted else "cleared",
                },
            )
        else:
            after = _plain(connection)
            changes: dict[str, Any] = {
                name: {"from": before[name], "to": after[name]}
                for name in AUDITED_FIELDS
                if before[name] != after[name]
            }
            if token:
                changes["token"] = token
            if changes:
                record(
                    team=team,
                    actor=by,
                    action=Action.TRACKER_CHANGED,
                    target=_target(connection),
                    changes=changes,
                )
            if secret:
                record(
                    team=team,
                    actor=by,
                    action=Action.WEBHOOK_SECRET_ROTATED,
                    target=_target(connection),
                    changes={"webhook_secret": secret},
                )
    logger.info("tracker connection saved: team=%s kind=%s", team.slug, connection.kind)
    return connection


def connection_delete(*, team: Team, by: User | None = None) -> bool:
    """Forget the team's connection and its credentials; False when there was none."""
    with transaction.atomic():
        team_lock(team_id=team.pk)
        stored = TrackerConnection.objects.filter(team=team).first()
        if stored is None:
            return False
        record(
            team=team,
            actor=by,
            action=Action.TRACKER_DISCONNECTED,
            target=_target(stored),
            changes={
                name: "cleared"
                for name in ("token", "webhook_secret")
                if getattr(stored, f"{name}_encrypted")
            },
        )
        stored.delete()
    logger.info("tracker connection deleted: team=%s", team.slug)
    return True


# --- Connection test --------------------------------------------------------------------


def connection_check(connection: TrackerConnection) -> CheckResult:
    """Ask the tracker; every failure is a line of the result, never an exception."""
    try:
        secrets = [s for s in (connection.token, connection.webhook_secret) if s]
    except CredentialError as exc:
        return CheckResult(ok=False, lines=[str(exc)])
    try:
        result = client_for(connection).check()
    except TrackerError as exc:
        result = CheckResult(ok=False, lines=[exc.message])
    except requests.RequestException as exc:
        # The clients convert these; this keeps a slip in one of them from becoming a 500.
        result = CheckResult(ok=False, lines=[transport_error(exc).message])
    return _scrubbed(result, secrets)


def _scrubbed(result: CheckResult, secrets: list[str]) -> CheckResult:
    """The result without our secrets, in case a tracker echoed one back in its message."""

    def scrub(text: str) -> str:
        for secret in secrets:
            text = text.replace(secret, HIDDEN)
        return text

    placement = result.placement
    if placement is not None:
        placement = replace(placement, name=scrub(placement.name), warning=scrub(placement.warning))
    return CheckResult(
        ok=result.ok, lines=[scrub(line) for line in result.lines], placement=placement
    )


def _candidate(
    team: Team, stored: TrackerConnection | None, form: ConnectionForm
) -> TrackerConnection:
    """An unsaved connection from the form's values; empty secrets are the stored ones."""
    candidate = TrackerConnection(team=team)
    if stored is not None:
        candidate.token_encrypted = stored.token_encrypted
        candidate.webhook_secret_encrypted = stored.webhook_secret_encrypted
        candidate.webhook_token = stored.webhook_token
    form.values().apply_to(candidate)
    return candidate


def _result_lines(result: CheckResult, word: str) -> list[tuple[str, str]]:
    """(message class, text) per line, ending with where the next ticket goes if no line said."""
    placement = result.placement
    warning = placement.warning if placement is not None else ""
    lines = [
        ("warning" if warning and line == warning else "success" if result.ok else "error", line)
        for line in result.lines
    ]
    if placement is None:
        return lines
    if warning:
        if warning not in result.lines:
            lines.append(("warning", warning))
        return lines
    said = [p for p in (placement.name, placement.ref) if p]
    if said and not any(p in line for line in result.lines for p in said):
        lines.append(
            ("success", f"Next ticket goes into {word} {placement.name or placement.ref}.")
        )
    return lines


def _form_problems(form: ConnectionForm) -> list[str]:
    lines = []
    for name, errors in form.errors.items():
        label = form.fields[name].label if name in form.fields else None
        for message in errors:
            lines.append(f"{label}: {message}" if label else str(message))
    return lines


# --- Views ------------------------------------------------------------------------------


def _is_htmx(request: HttpRequest) -> bool:
    htmx = cast(HtmxDetails | None, getattr(request, "htmx", None))
    return bool(htmx) and not (htmx and htmx.history_restore_request)


def _context(
    membership: Membership,
    stored: TrackerConnection | None,
    form: ConnectionForm,
    **extra: Any,
) -> dict[str, Any]:
    return {
        "team": membership.team,
        "membership": membership,
        "connection": stored,
        "form": form,
        "token_stored": bool(stored and stored.token_encrypted),
        "webhook_secret_stored": bool(stored and stored.webhook_secret_encrypted),
        "webhook_url": webhook_url(stored) if stored is not None else "",
        "events": connection_events(stored) if stored is not None else [],
        "retry_after_max": push.duration_words(push.retry_after_max()),
        **extra,
    }


@require_http_methods(["GET", "POST"])
@team_view(admin=True)
def connection_page(request: HttpRequest, membership: Membership) -> HttpResponse:
    team = membership.team
    stored = connection_for_team(team)
    if request.method == "POST":
        form = ConnectionForm(request.POST, stored=stored)
        if form.is_valid():
            connection_save(team=team, values=form.values(), by=membership.user)
            messages.success(
                request, "Tracker connection saved. Test it to see where the next ticket goes."
            )
            url = reverse("integration_connection", kwargs={"team": team.slug})
            return HttpResponseClientRedirect(url) if _is_htmx(request) else redirect(url)
    else:
        form = ConnectionForm(stored=stored)
    return render(request, TEMPLATE, _context(membership, stored, form))


@require_POST
@team_view(admin=True)
def connection_test(request: HttpRequest, membership: Membership) -> HttpResponse:
    """Test the form's values when they are posted (nothing is saved), else the saved ones."""
    team = membership.team
    stored = connection_for_team(team)
    form = ConnectionForm(request.POST, stored=stored) if "kind" in request.POST else None
    tested = _candidate(team, stored, form) if form is not None and form.is_valid() else None
    if form is None:
        tested = stored
    if tested is not None:
        result = connection_check(tested)
        logger.info(
            "tracker connection tested: team=%s kind=%s ok=%s", team.slug, tested.kind, result.ok
        )
    elif form is not None:
        result = CheckResult(ok=False, lines=_form_problems(form))
    else:
        result = CheckResult(
            ok=False, lines=["No tracker is connected yet: fill in the form, then test it."]
        )
    context = _context(
        membership,
        stored,
        form or ConnectionForm(stored=stored),
        result=result,
        result_lines=_result_lines(
            result, "sprint" if tested is None or tested.is_jira else "iteration"
        ),
    )
    template = f"{TEMPLATE}#test_result" if _is_htmx(request) else TEMPLATE
    return render(request, template, context)


@require_POST
@team_view(admin=True)
def connection_disconnect(request: HttpRequest, membership: Membership) -> HttpResponse:
    if connection_delete(team=membership.team, by=membership.user):
        messages.success(request, "Tracker disconnected; its stored credentials are deleted.")
    else:
        messages.info(request, "No tracker was connected.")
    url = reverse("integration_connection", kwargs={"team": membership.team.slug})
    return HttpResponseClientRedirect(url) if _is_htmx(request) else redirect(url)
