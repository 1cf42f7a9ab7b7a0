"""Encryption at rest of stored secrets (tracker credentials, chat webhooks), with rotatable keys.

The keys are Fernet keys from LEAKSEAL_CREDENTIAL_KEYS (settings.CREDENTIAL_KEYS), newest
first: the first encrypts, every one of them decrypts, so a new key is put in front, then
`python manage.py rotate_credentials` re-encrypts every stored secret with it, and the old
key can be dropped. Without keys (development only; DEBUG=0 refuses to start) one is derived
from SECRET_KEY.
"""

import base64
import hashlib
from functools import cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured


class CredentialError(Exception):
    """A stored secret cannot be decrypted with any configured key."""


def _keys() -> tuple[str, ...]:
    keys = tuple(getattr(settings, "CREDENTIAL_KEYS", ()) or ())
    if keys:
        return keys
    digest = hashlib.sha256(f"leakseal-credentials:{settings.SECRET_KEY}".encode()).digest()
    return (base64.urlsafe_b64encode(digest).decode(),)


@cache
def _fernet(keys: tuple[str, ...]) -> MultiFernet:
    try:
        return MultiFernet([Fernet(key.encode()) for key in keys])
    except ValueError:
        raise ImproperlyConfigured(
            "LEAKSEAL_CREDENTIAL_KEYS holds a value that is not a Fernet key "
            "(32 url-safe base64-encoded bytes)"
        ) from None


def encrypt(value: str) -> str:
    return _fernet(_keys()).encrypt(value.encode()).decode()


def decrypt(token: str) -> str:
    try:
        return _fernet(_keys()).decrypt(token.encode()).decode()
    except InvalidToken:
        raise CredentialError(
            "A stored tracker credential cannot be decrypted with LEAKSEAL_CREDENTIAL_KEYS; "
            "was a key removed before rotate_credentials ran? Enter the credential again."
        ) from None


def rotate(token: str) -> str:
    """The same secret encrypted with the newest key."""
    return _fernet(_keys()).rotate(token.encode()).decode()
