"""What a locked-out sign-in sees: the sign-in page again, with why and for how long (429)."""

from typing import Any

from django.conf import settings
from django.contrib.auth import views as auth_views
from django.contrib.auth.forms import AuthenticationForm, PasswordResetForm
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from signin.throttle import Key, lockout_message

GENERIC = "Too many failed sign-ins; try again later."


def lockout_response(
    request: HttpRequest, original_response: Any = None, credentials: Any = None
) -> HttpResponse:
    """AXES_LOCKOUT_CALLABLE. Says which counter is locked, not whether the account exists:
    an unknown username is counted and locked exactly like a known one."""
    key = getattr(request, "signin_locked", None)
    message = lockout_message(key) if isinstance(key, Key) else GENERIC
    form = AuthenticationForm(request, initial={"username": request.POST.get("username", "")})
    context = {"form": form, "lockout_message": message, "next": request.POST.get("next", "")}
    return render(request, "registration/login.html", context, status=429)


class PasswordResetView(auth_views.PasswordResetView):
    """Django's, with the link in the email built on SITE_URL: never on the Host header a
    request sent, so nobody can have a reset link pointing at their own site mailed out."""

    def form_valid(self, form: PasswordResetForm) -> HttpResponse:
        self.extra_email_context = {"site_url": settings.SITE_URL}
        return super().form_valid(form)
