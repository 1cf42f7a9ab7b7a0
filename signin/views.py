"""The sign-in pages: password (with its lockout and reset) and single sign-on."""

from functools import wraps
from typing import Any
from urllib.parse import urlencode

from django.conf import settings
from django.contrib.auth import views as auth_views
from django.contrib.auth.forms import AuthenticationForm, PasswordResetForm
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.views.generic import View
from mozilla_django_oidc.views import OIDCAuthenticationCallbackView, OIDCAuthenticationRequestView

from signin.sso import SSORefused, provider, refuse
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
    next_url = request.POST.get("next", "")
    context = {
        "form": form,
        "lockout_message": message,
        "next": next_url,
        **_sso_context(request, next_url),
    }
    return render(request, "registration/login.html", context, status=429)


class PasswordResetView(auth_views.PasswordResetView):
    """Django's, with the link in the email built on SITE_URL: never on the Host header a
    request sent, so nobody can have a reset link pointing at their own site mailed out."""

    def form_valid(self, form: PasswordResetForm) -> HttpResponse:
        self.extra_email_context = {"site_url": settings.SITE_URL}
        return super().form_valid(form)


def _sso_context(request: HttpRequest, next_url: str) -> dict[str, Any]:
    """The SSO button's link, bringing the person back to where they were going."""
    start = ""
    if settings.SSO_ENABLED:
        start = reverse("sso_start") + (f"?{urlencode({'next': next_url})}" if next_url else "")
    return {"sso_start": start}


class SigninView(auth_views.LoginView):
    """Django's sign-in page, with the single sign-on button, and without the password form
    when PASSWORD_SIGNIN is off (a posted password is then refused, not checked)."""

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        return {**context, **_sso_context(self.request, self.get_redirect_url())}

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not settings.PASSWORD_SIGNIN:
            return render_signin(
                request,
                f"Password sign-in is turned off here: sign in with {settings.SSO_NAME}.",
                status=403,
            )
        return super().post(request, *args, **kwargs)


def render_signin(
    request: HttpRequest, message: str, *, status: int, next_url: str = ""
) -> HttpResponse:
    """The sign-in page with a refusal above it (SSO refused, password sign-in off)."""
    context = {
        "form": AuthenticationForm(request) if settings.PASSWORD_SIGNIN else None,
        "signin_refusal": message,
        "next": next_url,
        **_sso_context(request, next_url),
    }
    return render(request, "registration/login.html", context, status=status)


def password_signin_required(view: Any) -> Any:
    """Password reset and change make no sense, and must not work, with password sign-in off."""

    @wraps(view)
    def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not settings.PASSWORD_SIGNIN:
            raise Http404("Password sign-in is turned off")
        return view(request, *args, **kwargs)

    return wrapped


class SSOStart(OIDCAuthenticationRequestView):
    """Sends the browser to the identity provider (state, nonce and PKCE in the session)."""

    def __init__(self, **kwargs: Any) -> None:
        View.__init__(self, **kwargs)  # the library's looks the endpoint up here; we do in get
        self.OIDC_RP_CLIENT_ID = settings.OIDC_RP_CLIENT_ID

    def get(self, request: HttpRequest) -> HttpResponse:
        if not settings.SSO_ENABLED:
            raise Http404("Single sign-on is not configured")
        try:
            self.OIDC_OP_AUTH_ENDPOINT = provider().authorization_endpoint
        except SSORefused as exc:
            refuse(request, exc)
            return render_signin(request, exc.message, status=502)
        return super().get(request)


class SSOCallback(OIDCAuthenticationCallbackView):
    """Where the identity provider sends the browser back; a refusal says why."""

    def get(self, request: HttpRequest) -> HttpResponse:
        if not settings.SSO_ENABLED:
            raise Http404("Single sign-on is not configured")
        if request.GET.get("error"):
            error = request.GET.get("error_description") or request.GET["error"]
            refuse(
                request,
                SSORefused(
                    f"The identity provider refused the sign-in: {error}",
                    reason=f"provider_error: {request.GET['error']}",
                ),
            )
        state = request.GET.get("state")
        if "code" in request.GET and state not in request.session.get("oidc_states", {}):
            # The library answers a missing state list with a bare failure and an unknown
            # state with SuspiciousOperation (a 400): both are this, and say so.
            refuse(
                request,
                SSORefused(
                    "This sign-in answer does not belong to a sign-in started in this browser, "
                    "or was used already. Start again.",
                    reason="unknown_state",
                ),
            )
            return self.login_failure()
        return super().get(request)

    def login_failure(self) -> HttpResponse:
        refusal = getattr(self.request, "sso_refusal", None)
        if refusal is None:
            user = getattr(self, "user", None)
            if user is not None and not user.is_active:
                message = "This Leakseal account is deactivated. Ask a Leakseal administrator."
            else:
                message = "The sign-in did not complete. Start again."
            refuse(self.request, SSORefused(message, reason="not_completed"))
            refusal = self.request.sso_refusal
        return render_signin(self.request, refusal.message, status=403)
