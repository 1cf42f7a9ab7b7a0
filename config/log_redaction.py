"""Secrets that travel in a URL's path stay out of the logs.

Some links are their own credential: an invitation's token (`/invitations/lki_…/`, a
single-use key to an account on the team), a retro's join key (`/join/<signed id>/`, which
lets a newcomer sign up when the team allows it), Django's password reset link
(`/accounts/reset/<uidb64>/<token>/`) and a tracker's webhook URL (`/hooks/jira/<token>/`). The
web process would write them into uvicorn's access log on every request, and Django writes
the path of every 4xx answer ("Not Found: /invitations/…"); those logs are kept and read far
more widely than the database. The filter below replaces each such segment with
`[redacted]`, wherever it stands in the message: in the path, and URL-encoded in a query
(`/accounts/login/?next=%2Finvitations%2Flki_…%2F`). Ordinary paths are logged as they were.

`install()` puts the filter on the loggers themselves, not on handlers: uvicorn builds the
access log's handler (or none, with --no-access-log, or another, with --log-config) before it
imports the application, and config/asgi.py installs the filter after that, in each worker
process. A logger's filter sees every record logged on it, whatever its handlers are.
"""

import logging
import re
from typing import Any

REDACTED = "[redacted]"

_SLASH = r"(?:/|%2[Ff])"  # a path separator, as is or URL-encoded (in ?next=…)
# One path segment: its characters (a join key has a colon) and percent-escapes, but not an
# encoded slash, which ends it.
_SEGMENT = r"(?:[\w.~:-]|%(?!2[Ff])[0-9A-Fa-f]{2})+"

# (the part kept, the secret after it); each prefix is the start of a segment.
_SECRETS = (
    # teams/urls.py "invitation_open"; a number is the members page's invitation id, not a token.
    re.compile(rf"({_SLASH}invitations{_SLASH})(?!\d+(?:{_SLASH}|$)){_SEGMENT}"),
    # config/urls.py "retro_join" (retros/views_join.py).
    re.compile(rf"({_SLASH}join{_SLASH}){_SEGMENT}"),
    # django.contrib.auth's "password_reset_confirm": both segments (the user and the token);
    # /accounts/reset/done/ has one segment only and stays.
    re.compile(rf"({_SLASH}accounts{_SLASH}reset{_SLASH}){_SEGMENT}{_SLASH}{_SEGMENT}"),
    # integrations/urls_webhooks.py: the token routes a tracker's deliveries.
    re.compile(rf"({_SLASH}hooks{_SLASH}(?:jira|azure){_SLASH}){_SEGMENT}"),
    # signin/urls.py "sso_callback": the identity provider's authorization code and state in
    # the query (single use and bound to the PKCE verifier, but a credential until redeemed).
    re.compile(r"([?&](?:code|state)=)[^&\s\"]+"),
)

# Where a request's path is logged: uvicorn's access log, Django's log of every 4xx/5xx
# answer, and Django's log of a CSRF refusal (both "<reason>: <path>").
LOGGERS = ("uvicorn.access", "django.request", "django.security.csrf")


def redact(text: str) -> str:
    for pattern in _SECRETS:
        text = pattern.sub(rf"\g<1>{REDACTED}", text)
    return text


def _redacted(value: Any) -> Any:
    return redact(value) if isinstance(value, str) else value


class RedactSecrets(logging.Filter):
    """Rewrites the record's message and its string arguments; never drops a record."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = redact(record.msg)
        if isinstance(record.args, tuple):
            # uvicorn's AccessFormatter unpacks exactly these five: keep the tuple's shape.
            record.args = tuple(_redacted(arg) for arg in record.args)
        elif isinstance(record.args, dict):
            record.args = {key: _redacted(value) for key, value in record.args.items()}
        return True


def install() -> None:
    """Put the filter on every logger in LOGGERS (once each, however often it is called)."""
    for name in LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, RedactSecrets) for f in logger.filters):
            logger.addFilter(RedactSecrets())
