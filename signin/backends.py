from typing import Any

from axes.backends import AxesStandaloneBackend
from django.http import HttpRequest


class ThrottleBackend(AxesStandaloneBackend):
    """First in AUTHENTICATION_BACKENDS: refuses a locked password sign-in before it is checked.

    Only password sign-ins over HTTP are counted: `authenticate()` without a request (the test
    client's `login`, a shell) or without a password (single sign-on) passes through.
    """

    def authenticate(
        self,
        request: HttpRequest | None,
        username: str | None = None,
        password: str | None = None,
        **kwargs: Any,
    ) -> None:
        if request is None or password is None:
            return None
        return super().authenticate(request, username, password, **kwargs)
