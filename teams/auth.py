"""Bearer-token authentication of the REST API.

Only personal API tokens are accepted: a browser session is not, so the API needs no CSRF
protection and a script never acts with someone's cookie. The raw token is never logged.
"""

from typing import Any

from django.http import HttpRequest
from ninja.errors import AuthenticationError
from ninja.security import HttpBearer

from teams.models import ApiToken
from teams.services import api_token_mark_used

TOKEN_PREFIX = "lks_"  # noqa: S105 - the public prefix of every token, not a secret


class ApiTokenAuth(HttpBearer):
    """`Authorization: Bearer lks_…`; on success the request's user is the token's owner."""

    def __call__(self, request: HttpRequest) -> Any:
        # Replaces HttpBearer.__call__, which logs the whole header (the secret) in DEBUG.
        header = request.headers.get(self.header, "")
        scheme, _, raw = header.partition(" ")
        if not header:
            raise AuthenticationError(message="Send an API token: Authorization: Bearer lks_…")
        if scheme.lower() != "bearer" or not raw.strip():
            raise AuthenticationError(message="Use the Bearer scheme: Authorization: Bearer lks_…")
        return self.authenticate(request, raw.strip())

    def authenticate(self, request: HttpRequest, token: str) -> ApiToken:
        found = None
        if token.startswith(TOKEN_PREFIX):
            found = (
                ApiToken.objects.select_related("user")
                .filter(digest=ApiToken.digest_of(token), revoked_at__isnull=True)
                .first()
            )
        if found is None or not found.user.is_active:
            raise AuthenticationError(message="Invalid or revoked API token.")
        api_token_mark_used(token=found)
        request.user = found.user
        return found
