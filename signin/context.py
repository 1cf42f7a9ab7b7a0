"""How people sign in here, for every template: the SSO button and whether passwords work."""

from typing import Any

from django.conf import settings
from django.http import HttpRequest


def signin_options(request: HttpRequest) -> dict[str, Any]:
    return {
        "sso_enabled": settings.SSO_ENABLED,
        "sso_name": settings.SSO_NAME,
        "password_signin": settings.PASSWORD_SIGNIN,
    }
