"""The personal API tokens page: list, create (the raw token is shown once), revoke.

Tokens belong to a user, not a team, so there is no team scope: only one's own tokens are
visible, and another user's token id answers 404.
"""

from typing import Any

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.contrib.auth.models import User
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_POST

from teams.models import ApiToken
from teams.services import api_token_create, api_token_revoke

TEMPLATE = "teams/tokens.html"


class TokenForm(forms.Form):
    name = forms.CharField(
        max_length=100,
        help_text="What uses it, e.g. “CI pipeline of checkout-service”.",
    )


def _user(request: HttpRequest) -> User:
    assert isinstance(request.user, User), "behind login_required"
    return request.user


def _render(request: HttpRequest, **context: Any) -> HttpResponse:
    context.setdefault("form", TokenForm())
    context["tokens"] = ApiToken.objects.filter(user=_user(request)).order_by("-created_at")
    template = f"{TEMPLATE}#panel" if request.htmx else TEMPLATE  # type: ignore[attr-defined]
    return render(request, template, context)


@require_GET
@login_required
def token_list(request: HttpRequest) -> HttpResponse:
    return _render(request)


@require_POST
@login_required
@never_cache  # the response carries the raw token: no copy of it may stay in a cache
def token_create(request: HttpRequest) -> HttpResponse:
    form = TokenForm(request.POST)
    if not form.is_valid():
        return _render(request, form=form)
    token, raw = api_token_create(user=_user(request), name=form.cleaned_data["name"])
    # Rendered, not redirected: the raw token exists only in this one response.
    return _render(request, new_token=token, raw_token=raw)


@require_POST
@login_required
def token_revoke(request: HttpRequest, pk: int) -> HttpResponse:
    token = get_object_or_404(ApiToken, pk=pk, user=_user(request))
    api_token_revoke(token=token, by=_user(request))
    if request.htmx:  # type: ignore[attr-defined]
        return _render(request)
    messages.success(request, f"Token “{token.name}” is revoked; it no longer works.")
    return redirect("token_list")
