"""Password sign-in protection: failures are counted per account and per address, and a key
that reaches its limit is locked for the lockout window (docs/architecture.md, "Sign-in").

django-axes hooks this into Django's authentication: `signin.backends.ThrottleBackend` (first
in AUTHENTICATION_BACKENDS) asks `SigninThrottle.is_allowed` before the password is checked,
Django's `user_login_failed` and `user_logged_in` signals come back here, and AxesMiddleware
turns a lockout into `signin.views.lockout_response`.

Why a handler of our own: axes' handlers look at the count, let Django check the password, and
count the failure afterwards, so twenty attempts sent at once all pass the look before any of
them is counted. Here an attempt first *reserves* a try with an atomic increment (Redis INCR,
or a row lock on the counter) and only a reservation within the limit has its password
checked; a success hands its reservation back (and clears the account's counter).

Two keys, each with its own limit (AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]):
the account (`AXES_FAILURE_LIMIT`, 5) and the address (`SIGNIN_ADDRESS_FAILURE_LIMIT`, 30),
so one person's mistakes lock their account but not everybody behind the same address; a
guesser spraying many accounts from one address is stopped by the address's limit. A
counter is forgotten `AXES_COOLOFF_TIME` after its last failure; attempts refused while it is
locked do not move that moment.

The counters live in the cache when it is shared between processes (Redis, REDIS_URL), else
in the database (`SigninCounter`): the embedded default's cache is local memory, one per
process, and a lockout that holds in one process only is not a lockout.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import math
import time
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Protocol

from axes.handlers.base import AbstractAxesHandler, AxesBaseHandler
from axes.signals import user_locked_out
from django.conf import settings
from django.core.cache import caches
from django.core.exceptions import ImproperlyConfigured
from django.db import transaction
from django.db.models import F
from django.http import HttpRequest
from django.utils import timezone

from signin.models import SigninCounter

log = logging.getLogger("leakseal.signin")


@dataclass(frozen=True)
class Key:
    """One counter an attempt is counted against."""

    kind: str  # "account" or "address"
    name: str  # the counter's name in the store
    limit: int


def window() -> timedelta:
    cooloff = settings.AXES_COOLOFF_TIME
    if not isinstance(cooloff, timedelta):
        raise ImproperlyConfigured("AXES_COOLOFF_TIME must be a timedelta (signin/throttle.py)")
    return cooloff


def username_of(credentials: dict[str, Any] | None) -> str:
    value = (credentials or {}).get("username")
    return value if isinstance(value, str) else ""


def keys_for(request: HttpRequest, credentials: dict[str, Any] | None) -> list[Key]:
    keys = []
    for parameter in settings.AXES_LOCKOUT_PARAMETERS:
        if parameter == "username":
            username = username_of(credentials)
            if username:
                # Usernames are folded so that "Alice" and "alice" share one counter; only the
                # digest is stored, so the counters hold no typed text.
                digest = hashlib.sha256(username.casefold().encode()).hexdigest()[:40]
                keys.append(Key("account", f"user:{digest}", settings.AXES_FAILURE_LIMIT))
        elif parameter == "ip_address":
            address = getattr(request, "axes_ip_address", None)
            if address:
                keys.append(Key("address", f"ip:{address}", settings.SIGNIN_ADDRESS_FAILURE_LIMIT))
        else:
            raise ImproperlyConfigured(
                'AXES_LOCKOUT_PARAMETERS may hold "username" and "ip_address" only '
                f"(signin/throttle.py counts each on its own), not {parameter!r}"
            )
    return keys


class Store(Protocol):
    def failures(self, key: Key) -> int: ...
    def reserve(self, key: Key) -> int: ...
    def confirm(self, key: Key) -> None: ...
    def release(self, key: Key) -> None: ...
    def clear(self, key: Key) -> None: ...
    def seconds_left(self, key: Key) -> float: ...


class CacheStore:
    """Counters in Django's cache: with Redis, INCR makes a reservation atomic everywhere."""

    prefix = "leakseal:signin:"

    def __init__(self) -> None:
        self.cache = caches[settings.SIGNIN_CACHE]

    def _name(self, key: Key) -> str:
        return self.prefix + key.name

    def failures(self, key: Key) -> int:
        return int(self.cache.get(self._name(key), 0))

    def reserve(self, key: Key) -> int:
        name, seconds = self._name(key), window().total_seconds()
        for _ in range(3):
            self.cache.add(name, 0, timeout=seconds)
            try:
                return int(self.cache.incr(name))
            except ValueError:  # it expired between add and incr
                continue
        raise RuntimeError(f"could not count a sign-in attempt in the cache ({key.kind})")

    def confirm(self, key: Key) -> None:
        seconds = window().total_seconds()
        self.cache.touch(self._name(key), timeout=seconds)
        self.cache.set(self._name(key) + ":until", time.time() + seconds, timeout=seconds)

    def release(self, key: Key) -> None:
        with contextlib.suppress(ValueError):  # expired meanwhile: nothing to give back
            self.cache.decr(self._name(key))

    def clear(self, key: Key) -> None:
        self.cache.delete_many([self._name(key), self._name(key) + ":until"])

    def seconds_left(self, key: Key) -> float:
        until = self.cache.get(self._name(key) + ":until")
        if until is None:
            return window().total_seconds()
        return max(0.0, float(until) - time.time())


class DatabaseStore:
    """Counters in the database, for when the cache is one per process (no REDIS_URL)."""

    def _live(self, key: Key) -> SigninCounter | None:
        return SigninCounter.objects.filter(key=key.name, expires_at__gt=timezone.now()).first()

    def failures(self, key: Key) -> int:
        row = self._live(key)
        return row.failures if row is not None else 0

    def reserve(self, key: Key) -> int:
        now = timezone.now()
        with transaction.atomic():
            # A concurrent insert of the same key waits on the unique index, then reads it.
            _, created = SigninCounter.objects.get_or_create(
                key=key.name, defaults={"failures": 0, "expires_at": now + window()}
            )
            if created:  # the moment to forget the long-expired counters of other keys
                SigninCounter.objects.filter(expires_at__lt=now - window()).delete()
            row = SigninCounter.objects.select_for_update().get(key=key.name)
            if row.expires_at <= now:
                row.failures = 0
                row.expires_at = now + window()
            row.failures += 1
            row.save(update_fields=["failures", "expires_at"])
            return row.failures

    def confirm(self, key: Key) -> None:
        SigninCounter.objects.filter(key=key.name).update(expires_at=timezone.now() + window())

    def release(self, key: Key) -> None:
        SigninCounter.objects.filter(key=key.name, failures__gt=0).update(
            failures=F("failures") - 1
        )

    def clear(self, key: Key) -> None:
        SigninCounter.objects.filter(key=key.name).delete()

    def seconds_left(self, key: Key) -> float:
        row = self._live(key)
        if row is None:
            return 0.0
        return max(0.0, (row.expires_at - timezone.now()).total_seconds())


def store() -> Store:
    kind = settings.SIGNIN_STORE
    if kind == "cache":
        return CacheStore()
    if kind == "database":
        return DatabaseStore()
    raise ImproperlyConfigured(f'SIGNIN_STORE must be "cache" or "database", not {kind!r}')


def minutes_left(key: Key) -> int:
    return max(1, math.ceil(store().seconds_left(key) / 60))


def lockout_message(key: Key) -> str:
    minutes = minutes_left(key)
    wait = f"{minutes} minute{'s' if minutes != 1 else ''}"
    if key.kind == "account":
        return f"Too many failed sign-ins for this account; try again in {wait}."
    return f"Too many failed sign-ins from your network address; try again in {wait}."


def _is_password_attempt(credentials: dict[str, Any] | None) -> bool:
    return bool(credentials) and credentials.get("password") is not None  # type: ignore[union-attr]


class SigninThrottle(AbstractAxesHandler, AxesBaseHandler):
    """The AXES_HANDLER: reserve a try before the password check, count it after."""

    def is_allowed(self, request: Any, credentials: dict[str, Any] | None = None) -> bool:
        if not _is_password_attempt(credentials):
            return True  # not a password sign-in (single sign-on has its own checks)
        if self.is_blacklisted(request, credentials):
            return False
        if self.is_whitelisted(request, credentials):
            return True
        counters = store()
        keys = keys_for(request, credentials)
        for key in keys:  # already locked: refuse without counting, the window stays put
            if counters.failures(key) >= key.limit:
                self._refuse(request, credentials, key)
                return False
        reserved: list[tuple[Key, int]] = []
        for key in keys:
            count = counters.reserve(key)
            reserved.append((key, count))
            if count > key.limit:  # others took the last tries meanwhile
                for taken, _ in reserved:
                    counters.release(taken)
                self._refuse(request, credentials, key)
                return False
        request.signin_reserved = reserved
        return True

    def _refuse(self, request: Any, credentials: dict[str, Any] | None, key: Key) -> None:
        request.axes_locked_out = True
        request.axes_credentials = credentials
        request.signin_locked = key
        log.warning(
            "sign-in refused while locked: %s username=%r address=%s",
            key.kind,
            username_of(credentials),
            getattr(request, "axes_ip_address", None),
        )

    def is_locked(self, request: Any, credentials: dict[str, Any] | None = None) -> bool:
        counters = store()
        return any(counters.failures(k) >= k.limit for k in keys_for(request, credentials))

    def get_failures(self, request: Any, credentials: dict[str, Any] | None = None) -> int:
        counters = store()
        return max((counters.failures(k) for k in keys_for(request, credentials)), default=0)

    def user_login_failed(
        self, sender: Any, credentials: dict[str, Any], request: Any = None, **kwargs: Any
    ) -> None:
        reserved: list[tuple[Key, int]] | None = getattr(request, "signin_reserved", None)
        if request is None or not reserved:
            return  # refused while locked (logged then), or not a password sign-in
        request.signin_reserved = None
        counters = store()
        locked = None
        for key, count in reserved:
            counters.confirm(key)
            if count >= key.limit and locked is None:
                locked = key
        username = username_of(credentials)
        address = getattr(request, "axes_ip_address", None)
        log.warning(
            "sign-in failed: username=%r address=%s %s",
            username,
            address,
            ", ".join(f"{key.kind} {count} of {key.limit}" for key, count in reserved),
        )
        if locked is not None:
            request.axes_locked_out = True
            request.axes_credentials = credentials
            request.signin_locked = locked
            log.warning(
                "sign-in locked: %s username=%r address=%s for %d minutes",
                locked.kind,
                username,
                address,
                minutes_left(locked),
            )
            user_locked_out.send("axes", request=request, username=username, ip_address=address)

    def user_logged_in(self, sender: Any, request: Any, user: Any, **kwargs: Any) -> None:
        reserved: list[tuple[Key, int]] | None = getattr(request, "signin_reserved", None)
        if request is None or not reserved:
            return
        request.signin_reserved = None
        counters = store()
        for key, _ in reserved:
            # The right password clears the account's failures; the address only gets its
            # reservation back (one good account must not reset a guesser's address).
            if key.kind == "account" and settings.AXES_RESET_ON_SUCCESS:
                counters.clear(key)
            else:
                counters.release(key)

    def user_logged_out(self, sender: Any, request: Any, user: Any, **kwargs: Any) -> None:
        return None

    def reset_attempts(
        self,
        *,
        ip_address: str | None = None,
        username: str | None = None,
        ip_or_username: bool = False,
    ) -> int:
        """`manage.py axes_reset_username NAME` / `axes_reset_ip ADDRESS` unlock here."""

        class _Request:
            axes_ip_address = ip_address

        counters = store()
        keys = keys_for(_Request(), {"username": username} if username else None)  # type: ignore[arg-type]
        for key in keys:
            counters.clear(key)
        return len(keys)
