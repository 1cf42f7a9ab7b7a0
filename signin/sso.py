"""Single sign-on with the company's OpenID Connect provider, through mozilla-django-oidc.

The library runs the authorization code flow (state, nonce, PKCE) and checks the ID token's
signature against the provider's published keys. Around it, this module adds what it leaves
to the application:

- discovery: the endpoints come from `<OIDC_ISSUER>/.well-known/openid-configuration`, whose
  `issuer` must be the configured one (OpenID Connect Discovery 1.0, section 4.3);
- the ID token's issuer, audience, authorized party and expiry (OpenID Connect Core 1.0,
  section 3.1.3.7), and the userinfo answer's subject (section 5.3.4);
- who may sign in (OIDC_ALLOWED_DOMAINS) and which teams a group claim joins (OIDC_TEAMS);
- a refusal that says why, for the sign-in page, instead of a bare 400.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from typing import Any

import jwt
import requests
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import User
from django.core.cache import cache
from django.core.exceptions import SuspiciousOperation
from django.http import HttpRequest
from mozilla_django_oidc.auth import OIDCAuthenticationBackend

from signin.accounts import sso_teams_join, sso_user_create

logger = logging.getLogger("leakseal.signin")

DISCOVERY_SECONDS = 3600
CLOCK_LEEWAY_SECONDS = 60  # clocks of two servers differ a little; RFC 7519 allows leeway


class SSORefused(Exception):
    """A sign-in the provider's answer does not allow; `message` is for the person."""

    def __init__(self, message: str, *, reason: str) -> None:
        super().__init__(message)
        self.message = message
        self.reason = reason  # a short code for the log line


@dataclass(frozen=True)
class Provider:
    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    userinfo_endpoint: str
    jwks_uri: str


def _get(url: str, **kwargs: Any) -> requests.Response:
    response = requests.get(url, timeout=settings.OIDC_TIMEOUT, **kwargs)
    response.raise_for_status()
    return response


def provider() -> Provider:
    """The configured issuer's endpoints, from its discovery document (cached for an hour)."""
    issuer = settings.OIDC_ISSUER
    key = "sso:discovery:" + hashlib.sha256(issuer.encode()).hexdigest()[:16]
    found = cache.get(key)
    if isinstance(found, Provider):
        return found
    url = issuer + "/.well-known/openid-configuration"
    unreachable = f"Single sign-on is not available: the identity provider at {issuer}"
    try:
        document = _get(url).json()
    except (requests.RequestException, ValueError) as exc:
        logger.warning("SSO discovery failed at %s: %s", url, exc)
        raise SSORefused(
            f"{unreachable} did not answer its discovery request. Try again in a minute; if it "
            "persists, tell your Leakseal administrator.",
            reason="discovery_failed",
        ) from exc
    if not isinstance(document, dict) or document.get("issuer") != issuer:
        got = document.get("issuer") if isinstance(document, dict) else None
        logger.warning("SSO discovery at %s names issuer %r, not %r", url, got, issuer)
        raise SSORefused(
            f"{unreachable} describes itself as another issuer ({got!r}); Leakseal trusts only "
            f"{issuer}. Tell your Leakseal administrator.",
            reason="discovery_issuer",
        )
    fields = ("authorization_endpoint", "token_endpoint", "userinfo_endpoint", "jwks_uri")
    missing = [name for name in fields if not isinstance(document.get(name), str)]
    algorithms = document.get("id_token_signing_alg_values_supported") or []
    if missing or settings.OIDC_RP_SIGN_ALGO not in algorithms:
        what = (
            f"lacks {', '.join(missing)}"
            if missing
            else (f"does not sign ID tokens with {settings.OIDC_RP_SIGN_ALGO} (OIDC_SIGN_ALGO)")
        )
        raise SSORefused(f"{unreachable} {what}.", reason="discovery_incomplete")
    found = Provider(issuer=issuer, **{name: document[name] for name in fields})
    cache.set(key, found, DISCOVERY_SECONDS)
    return found


def refuse(request: HttpRequest, exc: SSORefused) -> None:
    """Keep the refusal for the callback view, and log it (never a token or a secret)."""
    request.sso_refusal = exc  # type: ignore[attr-defined]
    logger.warning("SSO sign-in refused (%s): %s", exc.reason, exc.message)


def email_allowed(email: str) -> bool:
    domains = settings.OIDC_ALLOWED_DOMAINS
    return not domains or email.rpartition("@")[2].lower() in domains


class SSOBackend(OIDCAuthenticationBackend):
    """mozilla-django-oidc's backend with discovery, the claim checks and team joins."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        # Django makes a backend for every request of a signed-in user: no discovery here, only
        # when a sign-in needs an endpoint (the properties below).
        self.UserModel = get_user_model()
        self.OIDC_RP_CLIENT_ID = settings.OIDC_RP_CLIENT_ID
        self.OIDC_RP_CLIENT_SECRET = settings.OIDC_RP_CLIENT_SECRET
        self.OIDC_RP_SIGN_ALGO = settings.OIDC_RP_SIGN_ALGO
        self.OIDC_RP_IDP_SIGN_KEY = None

    @property
    def OIDC_OP_TOKEN_ENDPOINT(self) -> str:
        return provider().token_endpoint

    @property
    def OIDC_OP_USER_ENDPOINT(self) -> str:
        return provider().userinfo_endpoint

    @property
    def OIDC_OP_JWKS_ENDPOINT(self) -> str:
        return provider().jwks_uri

    def authenticate(self, request: HttpRequest | None, **kwargs: Any) -> User | None:
        if request is None or "code" not in request.GET or "password" in kwargs:
            return None  # a password sign-in, or no sign-in answer at all
        try:
            return super().authenticate(request, **kwargs)
        except SSORefused as exc:
            refuse(request, exc)
        except SuspiciousOperation as exc:
            # The library's own refusal: a token signed with a key the provider does not publish.
            refuse(request, SSORefused(_suspicious_message(str(exc)), reason="token_refused"))
        except requests.HTTPError as exc:
            status = exc.response.status_code if exc.response is not None else "?"
            # The provider's error answer (RFC 6749 5.2: an error code and a description) is
            # what an administrator needs; it carries no token.
            said = exc.response.text[:200] if exc.response is not None else ""
            refuse(
                request,
                SSORefused(
                    f"The identity provider refused to complete the sign-in (HTTP {status}). "
                    "Start again; if it persists, tell your Leakseal administrator.",
                    reason=f"provider_http_{status} {said}",
                ),
            )
        except requests.RequestException as exc:
            refuse(
                request,
                SSORefused(
                    "The identity provider did not answer in time. Start again in a minute.",
                    reason=f"provider_unreachable: {type(exc).__name__}",
                ),
            )
        return None

    def verify_token(self, token: str, **kwargs: Any) -> dict[str, Any]:
        """Signature (the library's key lookup), then issuer, audience, expiry and nonce."""
        key = self.retrieve_matching_jwk(token)
        header = jwt.get_unverified_header(token)
        if header.get("alg") != self.OIDC_RP_SIGN_ALGO:
            raise SSORefused(
                f"The identity provider signed the sign-in token with {header.get('alg')!r}, "
                f"not {self.OIDC_RP_SIGN_ALGO}.",
                reason="token_algorithm",
            )
        issuer = provider().issuer
        try:
            payload: dict[str, Any] = jwt.decode(
                token,
                key,
                algorithms=[self.OIDC_RP_SIGN_ALGO],
                audience=self.OIDC_RP_CLIENT_ID,
                issuer=issuer,
                leeway=CLOCK_LEEWAY_SECONDS,
                options={"require": ["iss", "sub", "aud", "exp", "iat"]},
            )
        except jwt.InvalidTokenError as exc:
            raise _token_refusal(exc, issuer) from exc
        azp = payload.get("azp")
        if azp is not None and azp != self.OIDC_RP_CLIENT_ID:
            raise SSORefused(
                "The sign-in token was issued to another application (authorized party "
                f"{azp!r}), not to Leakseal.",
                reason="token_azp",
            )
        if "nonce" in kwargs and payload.get("nonce") != kwargs["nonce"]:
            raise SSORefused(
                "The sign-in answer does not belong to the sign-in this browser started (its "
                "nonce differs). Start again.",
                reason="token_nonce",
            )
        return payload

    def get_userinfo(self, access_token: str, id_token: str, payload: dict[str, Any]) -> Any:
        info = super().get_userinfo(access_token, id_token, payload)
        if not isinstance(info, dict) or info.get("sub") != payload.get("sub"):
            raise SSORefused(
                "The identity provider's user information is about another person than its "
                "sign-in token. Sign-in refused.",
                reason="userinfo_subject",
            )
        # The token's claims, then the userinfo's: some providers put groups only in one.
        return {**payload, **info}

    def verify_claims(self, claims: dict[str, Any]) -> bool:
        email = claims.get("email")
        if not isinstance(email, str) or "@" not in email:
            raise SSORefused(
                "The identity provider did not give an email address: Leakseal needs one "
                "(ask your administrator to release the 'email' claim).",
                reason="no_email",
            )
        if claims.get("email_verified") is False:
            raise SSORefused(
                f"The identity provider says {email} is not verified. Verify it there, then "
                "sign in again.",
                reason="email_unverified",
            )
        if not email_allowed(email):
            allowed = ", ".join(settings.OIDC_ALLOWED_DOMAINS)
            raise SSORefused(
                f"{email} may not sign in to Leakseal: only addresses at {allowed} can.",
                reason="domain_not_allowed",
            )
        return True

    def get_or_create_user(self, access_token: str, id_token: str, payload: dict[str, Any]) -> User:
        """The library's, with refusals that say why (it only logs them)."""
        claims = self.get_userinfo(access_token, id_token, payload)
        self.verify_claims(claims)
        users = list(User.objects.filter(email__iexact=claims["email"])[:2])
        if len(users) > 1:
            raise SSORefused(
                f"Several Leakseal accounts have the address {claims['email']}, so Leakseal "
                "cannot tell which is yours. Ask your Leakseal administrator to merge them.",
                reason="several_accounts",
            )
        user = users[0] if users else sso_user_create(claims)
        sso_teams_join(user, groups_of(claims))
        return user


def groups_of(claims: dict[str, Any]) -> list[str]:
    value = claims.get(settings.OIDC_GROUPS_CLAIM) or []
    if isinstance(value, str):
        return [value]
    return [str(group) for group in value] if isinstance(value, list) else []


def _token_refusal(exc: jwt.InvalidTokenError, issuer: str) -> SSORefused:
    if isinstance(exc, jwt.ExpiredSignatureError):
        return SSORefused(
            "The identity provider's sign-in token had expired when it arrived. Start again; "
            "if it persists, the clocks of Leakseal and the identity provider disagree.",
            reason="token_expired",
        )
    if isinstance(exc, jwt.InvalidIssuerError):
        return SSORefused(
            f"The sign-in token was issued by another identity provider, not by {issuer} that "
            "Leakseal trusts. Sign-in refused.",
            reason="token_issuer",
        )
    if isinstance(exc, jwt.InvalidAudienceError):
        return SSORefused(
            "The sign-in token was issued to another application (its audience is not "
            "Leakseal's client id). Sign-in refused.",
            reason="token_audience",
        )
    if isinstance(exc, jwt.InvalidSignatureError):
        return SSORefused(
            "The sign-in token's signature does not match the identity provider's keys. "
            "Sign-in refused.",
            reason="token_signature",
        )
    if isinstance(exc, jwt.ImmatureSignatureError):
        return SSORefused(
            "The sign-in token is dated in the future: the clocks of Leakseal and the identity "
            "provider disagree.",
            reason="token_not_yet_valid",
        )
    return SSORefused(
        f"The identity provider's sign-in token is not valid ({exc}). Sign-in refused.",
        reason="token_invalid",
    )


def _suspicious_message(detail: str) -> str:
    if "JWKS" in detail:
        return (
            "The sign-in token was signed with a key the identity provider does not publish. "
            "Sign-in refused."
        )
    return f"The sign-in answer was refused ({detail})."
