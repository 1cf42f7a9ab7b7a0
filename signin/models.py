"""The failure counters of password sign-in when there is no shared cache (no REDIS_URL).

One row per counted key: an account (`user:<digest of the folded username>`) or an address
(`ip:<address>`). With Redis the same counters live in the cache instead (signin/throttle.py).
"""

from django.db import models


class SigninCounter(models.Model):
    key = models.CharField(max_length=100, unique=True)
    failures = models.PositiveIntegerField(default=0)
    # The counter is void from this moment on: the lockout window after its last failure.
    expires_at = models.DateTimeField(db_index=True)

    def __str__(self) -> str:
        return f"{self.key}: {self.failures} until {self.expires_at:%Y-%m-%d %H:%M}"
