"""The team's Confluence connection page, /t/<team>/integrations/confluence/ (team admins),
its services (save and disconnect, audited in the same transaction; the token only as
set/changed/cleared), and a closed retro's "Publish again".

Saving checks the values against the server first: the space must exist and the parent page
be found in it (by id or title) with the credentials given; otherwise nothing is saved and
the form says which field is wrong. No response carries the token.
"""

from __future__ import annotations

import logging
from typing import Any

from django.contrib import messages
from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from audit.models import Action
from audit.services import record
from config.crypto import CredentialError
from integrations.confluence import ConfluenceClient, ConfluenceError
from integrations.confluence_publish import summary_publish_again
from integrations.forms_confluence import ConfluenceForm
from integrations.models import ConfluenceConnection
from retros.selectors import get_retro_for_team
from teams.decorators import team_view
from teams.models import Membership, Team
from teams.services import team_lock

log = logging.getLogger(__name__)

TEMPLATE = "integrations/confluence.html"
CHANGED = "changed"  # what the audit trail keeps of a replaced token
AUDITED = (
    "deployment",
    "base_url",
    "account_email",
    "space_key",
    "parent_id",
    "parent_title",
    "enabled",
)


def _target(connection: ConfluenceConnection) -> str:
    return f"{connection.get_deployment_display()} {connection.base_url} {connection.where}"


def confluence_connection_save(
    *, team: Team, candidate: ConfluenceConnection, by: User | None
) -> ConfluenceConnection:
    """Store the checked candidate as the team's connection (one per team). Audited: the
    fields that changed, and the token only as "set" or "changed"."""
    with transaction.atomic():
        team_lock(team_id=team.pk)
        stored = ConfluenceConnection.objects.filter(team=team).first()
        connection = stored or ConfluenceConnection(team=team)
        before = {name: getattr(connection, name) for name in AUDITED} if stored else None
        replaced = stored is not None and candidate.token_encrypted != stored.token_encrypted
        if replaced and stored is not None:
            try:
                replaced = stored.token != candidate.token
            except CredentialError:  # unreadable (its key is gone): the new one replaces it
                replaced = True
        for name in AUDITED:
            setattr(connection, name, getattr(candidate, name))
        connection.token_encrypted = candidate.token_encrypted
        connection.save()
        if before is None:
            record(
                team=team,
                actor=by,
                action=Action.CONFLUENCE_CONNECTED,
                target=_target(connection),
                changes={
                    **{n: getattr(connection, n) for n in AUDITED if getattr(connection, n) != ""},
                    "token": "set",
                },
            )
        else:
            changes: dict[str, Any] = {
                name: {"from": before[name], "to": getattr(connection, name)}
                for name in AUDITED
                if before[name] != getattr(connection, name)
            }
            if replaced:
                changes["token"] = CHANGED
            if changes:
                record(
                    team=team,
                    actor=by,
                    action=Action.CONFLUENCE_CHANGED,
                    target=_target(connection),
                    changes=changes,
                )
    log.info("confluence connection saved: team=%s space=%s", team.slug, connection.space_key)
    return connection


def confluence_connection_delete(*, team: Team, by: User | None) -> bool:
    """Forget the connection and its token; False when there was none. Published pages stay
    in Confluence; summaries not yet sent fail with "disconnected"."""
    with transaction.atomic():
        team_lock(team_id=team.pk)
        connection = ConfluenceConnection.objects.filter(team=team).first()
        if connection is None:
            return False
        record(
            team=team,
            actor=by,
            action=Action.CONFLUENCE_DISCONNECTED,
            target=_target(connection),
            changes={"token": "cleared"},
        )
        connection.delete()
    log.info("confluence connection deleted: team=%s", team.slug)
    return True


def check_candidate(form: ConfluenceForm, candidate: ConfluenceConnection) -> bool:
    """Find the space and the parent page on the server; set the parent's id and title on the
    candidate. False, with the error on the field it concerns, when Confluence says no."""
    step = "token"
    try:
        client = ConfluenceClient(candidate)
        step = "space_key"
        client.space_name(candidate.space_key)
        step = "parent"
        parent = client.parent(candidate.space_key, form.cleaned_data["parent"])
    except CredentialError:
        form.add_error("token", "The stored token cannot be read any more: enter it again.")
        return False
    except ConfluenceError as exc:
        if exc.status == 401:
            field: str | None = "token"
        elif exc.transient:
            field = None
        else:
            field = step
        message = exc.message + (". Nothing was saved." if exc.transient else ".")
        form.add_error(field, message)
        return False
    candidate.parent_id = parent.id
    candidate.parent_title = parent.title
    return True


@require_http_methods(["GET", "POST"])
@team_view(admin=True)
def confluence_page(request: HttpRequest, membership: Membership) -> HttpResponse:
    team = membership.team
    stored = ConfluenceConnection.objects.filter(team=team).first()
    status = 200
    if request.method == "POST":
        form = ConfluenceForm(request.POST, stored=stored)
        if form.is_valid():
            candidate = form.candidate(team)
            if check_candidate(form, candidate):
                confluence_connection_save(team=team, candidate=candidate, by=membership.user)
                messages.success(
                    request,
                    f"Confluence connected: summaries go to {candidate.where}."
                    if candidate.enabled
                    else "Confluence connection saved; publishing is switched off.",
                )
                return redirect("confluence_connection", team=team.slug)
        status = 400
    else:
        form = ConfluenceForm(stored=stored)
    context = {
        "team": team,
        "membership": membership,
        "connection": stored,
        "form": form,
    }
    return render(request, TEMPLATE, context, status=status)


@require_POST
@team_view(admin=True)
def confluence_disconnect(request: HttpRequest, membership: Membership) -> HttpResponse:
    if confluence_connection_delete(team=membership.team, by=membership.user):
        messages.success(request, "Confluence disconnected; its stored token is deleted.")
    else:
        messages.info(request, "Confluence was not connected.")
    return redirect("confluence_connection", team=membership.team.slug)


@require_POST
@team_view(admin=True)
def confluence_publish_again(request: HttpRequest, membership: Membership, pk: int) -> HttpResponse:
    retro = get_retro_for_team(membership.team, pk)
    try:
        summary_publish_again(retro=retro, by=membership.user)
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    else:
        messages.success(
            request,
            "The summary is being published again: the same Confluence page is updated with "
            "the tickets' current states.",
        )
    return redirect("retro_summary", team=membership.team.slug, pk=retro.pk)
