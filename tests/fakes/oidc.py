"""A small OpenID Connect provider for the single sign-on tests, in a process of its own.

It does what Keycloak, Okta or Entra ID do for one confidential client, by the standards:
discovery (OpenID Connect Discovery 1.0), the authorization code flow (RFC 6749 section 4.1,
OpenID Connect Core 1.0 section 3.1) with PKCE required (RFC 7636, S256 only), client
authentication by client_secret_basic or client_secret_post, single-use codes that expire,
RS256-signed ID tokens carrying the nonce, a JWKS, and userinfo with a bearer token (RFC 6750).
Its sign-in page asks for an email address (no password: the tests are about the relying
party) and has a Deny button.

A test drives it over HTTP like any provider, and can ask, through POST /_control, for the
next ID token to be wrong in one way (issuer, audience, expiry, nonce, signature, key) to see
Leakseal refuse it.

    provider = OIDCProvider().start()           # provider.url: http://127.0.0.1:<port>
    provider.control(client={...}, users=[...])
    provider.control(next_token={"iss": "https://evil.example"})
    provider.stop()

Run alone: python -m tests.fakes.oidc [--port N]
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import html
import json
import secrets
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Self
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import jwt
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

CODE_SECONDS = 60
TOKEN_SECONDS = 300


def _b64url_sha256(value: str) -> str:
    digest = hashlib.sha256(value.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


class State:
    """Everything the provider knows, behind one lock (the server answers in threads)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.other_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.reset()

    def reset(self) -> None:
        self.client: dict[str, Any] = {"client_id": "", "client_secret": "", "redirect_uris": []}
        self.users: dict[str, dict[str, Any]] = {}
        self.codes: dict[str, dict[str, Any]] = {}
        self.access_tokens: dict[str, str] = {}  # token -> email
        self.next_token: dict[str, Any] = {}  # one ID token's faults, then cleared
        self.discovery_issuer: str | None = None  # advertise another issuer (a misconfiguration)
        self.userinfo_sub: str | None = None  # answer userinfo for another subject
        self.log: list[dict[str, Any]] = []

    def jwk(self, key: rsa.RSAPrivateKey) -> dict[str, Any]:
        public = json.loads(RSAAlgorithm.to_jwk(key.public_key()))
        return {**public, "kid": "k1", "alg": "RS256", "use": "sig"}


STATE = State()


class Handler(BaseHTTPRequestHandler):
    server_version = "FakeOIDC/1"

    @property
    def issuer(self) -> str:
        return f"http://127.0.0.1:{self.server.server_port}"  # type: ignore[attr-defined]

    def log_message(self, format: str, *args: Any) -> None:
        pass

    # --- plumbing

    def _answer(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.send_response(status)
        kind = "text/html; charset=utf-8" if isinstance(body, bytes) else "application/json"
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "no-store")
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def _redirect(self, url: str) -> None:
        self.send_response(302)
        self.send_header("Location", url)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def _form(self) -> dict[str, str]:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length).decode()
        if self.headers.get("Content-Type", "").startswith("application/json"):
            return json.loads(raw or "{}")
        return {k: v[0] for k, v in parse_qs(raw, keep_blank_values=True).items()}

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        query = {k: v[0] for k, v in parse_qs(url.query, keep_blank_values=True).items()}
        routes = {
            "/.well-known/openid-configuration": self.discovery,
            "/authorize": lambda: self.authorize_page(query),
            "/jwks": self.jwks,
            "/userinfo": self.userinfo,
            "/_control/log": lambda: self._answer(200, STATE.log),
        }
        route = routes.get(url.path)
        route() if route else self._answer(404, {"error": "not_found"})

    def do_POST(self) -> None:
        path = urlsplit(self.path).path
        routes = {"/authorize": self.authorize, "/token": self.token, "/_control": self.control}
        route = routes.get(path)
        route(self._form()) if route else self._answer(404, {"error": "not_found"})

    # --- discovery and keys

    def discovery(self) -> None:
        base = self.issuer
        self._answer(
            200,
            {
                "issuer": STATE.discovery_issuer or base,
                "authorization_endpoint": f"{base}/authorize",
                "token_endpoint": f"{base}/token",
                "userinfo_endpoint": f"{base}/userinfo",
                "jwks_uri": f"{base}/jwks",
                "response_types_supported": ["code"],
                "subject_types_supported": ["public"],
                "id_token_signing_alg_values_supported": ["RS256"],
                "scopes_supported": ["openid", "email", "profile", "groups"],
                "token_endpoint_auth_methods_supported": [
                    "client_secret_basic",
                    "client_secret_post",
                ],
                "code_challenge_methods_supported": ["S256"],
                "claims_supported": ["sub", "email", "email_verified", "name", "groups"],
            },
        )

    def jwks(self) -> None:
        self._answer(200, {"keys": [STATE.jwk(STATE.key)]})

    # --- authorization endpoint

    def _request_error(self, query: dict[str, str]) -> str | None:
        """Why the authorization request is refused outright, before any redirect."""
        client = STATE.client
        if not client["client_id"] or query.get("client_id") != client["client_id"]:
            return "unknown client_id"
        if query.get("redirect_uri") not in client["redirect_uris"]:
            return "redirect_uri is not registered for this client"
        return None

    def _redirect_error(self, query: dict[str, str]) -> tuple[str, str] | None:
        """Errors sent back to the (registered) redirect_uri, RFC 6749 section 4.1.2.1."""
        if query.get("response_type") != "code":
            return "unsupported_response_type", "only the code flow"
        if "openid" not in query.get("scope", "").split():
            return "invalid_scope", "the openid scope is required"
        if not query.get("code_challenge") or query.get("code_challenge_method") != "S256":
            return "invalid_request", "PKCE with S256 is required"
        return None

    def authorize_page(self, query: dict[str, str], problem: str = "") -> None:
        refused = self._request_error(query)
        if refused:
            self._answer(400, f"<h1>Bad request</h1><p>{html.escape(refused)}</p>".encode())
            return
        error = self._redirect_error(query)
        if error:
            self._back(query, {"error": error[0], "error_description": error[1]})
            return
        hidden = "".join(
            f'<input type="hidden" name="{html.escape(k)}" value="{html.escape(v)}">'
            for k, v in query.items()
            if k != "email"
        )
        page = f"""<!doctype html><html lang="en"><head><title>Company sign-in</title></head>
<body><main><h1>Company sign-in</h1>
{f'<p role="alert">{html.escape(problem)}</p>' if problem else ""}
<form method="post" action="/authorize">{hidden}
<label for="email">Work email</label> <input id="email" name="email" type="email">
<button type="submit" name="decision" value="allow">Continue</button>
<button type="submit" name="decision" value="deny">Deny</button></form></main></body></html>"""
        self._answer(200, page.encode())

    def _back(self, query: dict[str, str], params: dict[str, str]) -> None:
        if query.get("state"):
            params = {**params, "state": query["state"]}
        self._redirect(f"{query['redirect_uri']}?{urlencode(params)}")

    def authorize(self, form: dict[str, str]) -> None:
        if self._request_error(form) or self._redirect_error(form):
            self.authorize_page(form)
            return
        if form.get("decision") == "deny":
            self._back(form, {"error": "access_denied", "error_description": "You said no."})
            return
        email = form.get("email", "").strip().lower()
        with STATE.lock:
            known = email in STATE.users
            if known:
                code = secrets.token_urlsafe(24)
                STATE.codes[code] = {
                    "email": email,
                    "client_id": form["client_id"],
                    "redirect_uri": form["redirect_uri"],
                    "nonce": form.get("nonce"),
                    "code_challenge": form["code_challenge"],
                    "expires": time.time() + CODE_SECONDS,
                }
        if not known:
            self.authorize_page(form, problem=f"No account {email!r} here.")
            return
        self._back(form, {"code": code})

    # --- token endpoint

    def _client_authenticated(self, form: dict[str, str]) -> bool:
        client = STATE.client
        auth = self.headers.get("Authorization", "")
        if auth.startswith("Basic "):
            given_id, _, given_secret = base64.b64decode(auth[6:]).decode().partition(":")
        else:
            given_id, given_secret = form.get("client_id", ""), form.get("client_secret", "")
        return bool(client["client_id"]) and (given_id, given_secret) == (
            client["client_id"],
            client["client_secret"],
        )

    def token(self, form: dict[str, str]) -> None:
        with STATE.lock:
            STATE.log.append(
                {
                    "endpoint": "token",
                    "grant_type": form.get("grant_type"),
                    "code_verifier": bool(form.get("code_verifier")),
                    "basic_auth": self.headers.get("Authorization", "").startswith("Basic "),
                }
            )
            if not self._client_authenticated(form):
                self._answer(
                    401,
                    {
                        "error": "invalid_client",
                        "error_description": "client authentication failed",
                    },
                    {"WWW-Authenticate": 'Basic realm="fake-oidc"'},
                )
                return
            if form.get("grant_type") != "authorization_code":
                self._answer(400, {"error": "unsupported_grant_type"})
                return
            grant = STATE.codes.pop(form.get("code", ""), None)  # single use, even when refused
            problem = self._grant_problem(grant, form)
            if problem or grant is None:
                self._answer(400, {"error": "invalid_grant", "error_description": problem})
                STATE.log[-1]["refused"] = problem
                return
            access_token = secrets.token_urlsafe(24)
            STATE.access_tokens[access_token] = grant["email"]
            id_token = self._id_token(grant)
            STATE.log[-1]["pkce_verified"] = True
        self._answer(
            200,
            {
                "access_token": access_token,
                "token_type": "Bearer",
                "expires_in": TOKEN_SECONDS,
                "id_token": id_token,
            },
        )

    def _grant_problem(self, grant: dict[str, Any] | None, form: dict[str, str]) -> str:
        if grant is None:
            return "unknown or used code"
        if grant["expires"] < time.time():
            return "the code expired"
        if grant["redirect_uri"] != form.get("redirect_uri"):
            return "redirect_uri differs from the authorization request's"
        if grant["client_id"] != STATE.client["client_id"]:
            return "the code was issued to another client"
        verifier = form.get("code_verifier", "")
        if not verifier or _b64url_sha256(verifier) != grant["code_challenge"]:
            return "PKCE verification failed: code_verifier does not match code_challenge"
        return ""

    def _id_token(self, grant: dict[str, Any]) -> str:
        user = STATE.users[grant["email"]]
        now = int(time.time())
        claims = {
            "iss": self.issuer,
            "sub": user["sub"],
            "aud": STATE.client["client_id"],
            "azp": STATE.client["client_id"],
            "exp": now + TOKEN_SECONDS,
            "iat": now,
            "auth_time": now,
            "email": user["email"],
            "email_verified": user.get("email_verified", True),
            "name": user.get("name", ""),
            "groups": user.get("groups", []),
        }
        if grant["nonce"]:
            claims["nonce"] = grant["nonce"]
        faults, STATE.next_token = STATE.next_token, {}
        for name in ("iss", "aud", "azp", "nonce"):
            if name in faults:
                claims[name] = faults[name]
        if "exp_in" in faults:
            claims["exp"] = now + int(faults["exp_in"])
            claims["iat"] = min(claims["iat"], claims["exp"] - 60)
        key, kid = STATE.key, "k1"
        if faults.get("key") == "other":  # same kid, another key: a forged signature
            key = STATE.other_key
        elif faults.get("key") == "unknown_kid":
            kid = "k9"
        return jwt.encode(claims, key, algorithm="RS256", headers={"kid": kid})

    # --- userinfo

    def userinfo(self) -> None:
        auth = self.headers.get("Authorization", "")
        with STATE.lock:
            email = STATE.access_tokens.get(auth.removeprefix("Bearer ")) if auth else None
            user = STATE.users.get(email or "")
            sub = STATE.userinfo_sub
        if user is None:
            self._answer(401, {"error": "invalid_token"}, {"WWW-Authenticate": "Bearer"})
            return
        info = {k: v for k, v in user.items() if k != "sub"}
        self._answer(200, {"sub": sub or user["sub"], "email_verified": True, **info})

    # --- the tests' control

    def control(self, body: dict[str, Any]) -> None:
        with STATE.lock:
            if body.get("reset"):
                STATE.reset()
            if "client" in body:
                STATE.client = body["client"]
            for user in body.get("users", []):
                email = user["email"].lower()
                STATE.users[email] = {"sub": "sub-" + email, **user, "email": email}
            if "next_token" in body:
                STATE.next_token = body["next_token"]
            if "discovery_issuer" in body:
                STATE.discovery_issuer = body["discovery_issuer"]
            if "userinfo_sub" in body:
                STATE.userinfo_sub = body["userinfo_sub"]
        self._answer(200, {"ok": True})


class OIDCProvider:
    """Starts the provider in a process of its own and talks to its control endpoint."""

    def __init__(self) -> None:
        self.process: subprocess.Popen[str] | None = None
        self.url = ""

    def start(self) -> Self:
        root = Path(__file__).resolve().parents[2]
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tests.fakes.oidc", "--port", "0"],
            cwd=root,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdout is not None
        line = self.process.stdout.readline().strip()
        if not line.startswith("http://"):
            self.stop()
            raise RuntimeError(f"the fake OpenID Connect provider did not start: {line!r}")
        self.url = line
        return self

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=10)
            self.process = None

    def control(self, **body: Any) -> None:
        httpx.post(f"{self.url}/_control", json=body, timeout=5).raise_for_status()

    def log(self) -> list[dict[str, Any]]:
        return httpx.get(f"{self.url}/_control/log", timeout=5).json()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    print(f"http://127.0.0.1:{server.server_port}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
