"""The team's chat channels page, /t/<team>/chat/ (team admins): connect Slack or Teams
channels, change them, send a test message, disconnect.

No response carries a secret: the form's secret field never renders its value, and a test
message's outcome is said in our words with the vendor's error code.
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from notices.chat import send_now, test_payload
from notices.forms_chat import ChatConnectionForm
from notices.models_chat import ChatConnection
from notices.senders import Permanent, Transient
from notices.services_chat import chat_connection_delete, chat_connection_save
from teams.decorators import team_view
from teams.models import Membership

TEMPLATE = "notices/chat.html"


def _render(
    request: HttpRequest,
    membership: Membership,
    form: ChatConnectionForm,
    editing: ChatConnection | None = None,
    status: int = 200,
) -> HttpResponse:
    team = membership.team
    context: dict[str, Any] = {
        "team": team,
        "membership": membership,
        "connections": ChatConnection.objects.filter(team=team),
        "form": form,
        "editing": editing,
    }
    return render(request, TEMPLATE, context, status=status)


def _save(
    request: HttpRequest, membership: Membership, stored: ChatConnection | None
) -> HttpResponse:
    form = ChatConnectionForm(request.POST, stored=stored)
    if form.is_valid():
        try:
            chat_connection_save(
                team=membership.team, stored=stored, values=form.cleaned_data, by=membership.user
            )
        except ValidationError as exc:
            for field, errors in exc.message_dict.items():
                form.add_error(field, errors)
        else:
            messages.success(request, "Chat channel saved. Send a test message to check it.")
            return redirect("chat_connections", team=membership.team.slug)
    return _render(request, membership, form, stored, status=400)


@require_http_methods(["GET", "POST"])
@team_view(admin=True)
def chat_connections(request: HttpRequest, membership: Membership) -> HttpResponse:
    if request.method == "POST":
        return _save(request, membership, None)
    return _render(request, membership, ChatConnectionForm())


@require_http_methods(["GET", "POST"])
@team_view(admin=True)
def chat_connection_edit(request: HttpRequest, membership: Membership, pk: int) -> HttpResponse:
    stored = get_object_or_404(ChatConnection, pk=pk, team=membership.team)
    if request.method == "POST":
        return _save(request, membership, stored)
    return _render(request, membership, ChatConnectionForm(stored=stored), stored)


@require_POST
@team_view(admin=True)
def chat_connection_test(request: HttpRequest, membership: Membership, pk: int) -> HttpResponse:
    connection = get_object_or_404(ChatConnection, pk=pk, team=membership.team)
    try:
        send_now(connection, test_payload(connection))
    except (Transient, Permanent) as exc:
        messages.error(request, f"The test message to {connection.name} failed: {exc.message}")
    else:
        messages.success(request, f"A test message went to {connection.name}.")
    return redirect("chat_connections", team=membership.team.slug)


@require_POST
@team_view(admin=True)
def chat_connection_disconnect(
    request: HttpRequest, membership: Membership, pk: int
) -> HttpResponse:
    connection = get_object_or_404(ChatConnection, pk=pk, team=membership.team)
    chat_connection_delete(connection=connection, by=membership.user)
    messages.success(request, f"{connection.name} disconnected; its stored secret is deleted.")
    return redirect("chat_connections", team=membership.team.slug)
