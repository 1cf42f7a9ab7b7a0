"""The one retry policy for every call Leakseal makes to another service: ticket pushes to a
tracker (integrations/push.py) and notices to email, chat and Confluence (notices/).

Exponential backoff with full jitter, never sooner than the service's Retry-After.
"""

from __future__ import annotations

import email.utils
import random
from datetime import UTC, datetime

from django.conf import settings

BACKOFF_BASE = 2.0  # seconds
BACKOFF_FACTOR = 2.0


def retry_after_seconds(value: str | None) -> float | None:
    """Retry-After as seconds: a number of seconds, or an HTTP date (RFC 9110 10.2.3)."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def backoff_seconds(
    *, attempt: int, retry_after: float | None = None, cap: float, rng: random.Random | None = None
) -> float:
    """Seconds to wait before try `attempt + 1`, after `attempt` tries failed transiently.

    Uniform between 0 and base × factor^(attempt−1), so that many calls failing together do
    not come back together; at least the service's Retry-After and one second; at most `cap`.
    """
    ceiling = min(cap, BACKOFF_BASE * BACKOFF_FACTOR ** max(0, attempt - 1))
    backoff = (rng or random).uniform(0, ceiling)
    return min(cap, max(backoff, retry_after or 0.0, 1.0))


def retry_after_max() -> float:
    """The longest Retry-After Leakseal obeys, for a ticket push and a notice alike
    (settings.TRACKER_RETRY_AFTER_MAX, seconds; shown on the tracker settings page)."""
    return float(settings.TRACKER_RETRY_AFTER_MAX)


def duration_words(seconds: float) -> str:
    """ "1 hour", "90 minutes", "75 seconds": a wait as a person reads it."""
    seconds = round(seconds)
    if seconds % 3600 == 0:
        hours = seconds // 3600
        return f"{hours} hour{'s' if hours != 1 else ''}"
    if seconds >= 120:
        minutes = round(seconds / 60)
        return f"{minutes} minutes"
    return f"{seconds} second{'s' if seconds != 1 else ''}"
