"""Single sign-on with an OpenID Connect provider (signin/sso.py), end to end.

The provider is tests/fakes/oidc.py, in a process of its own on loopback: Leakseal discovers
its endpoints, sends the browser there with state, nonce and a PKCE challenge, and on the way
back redeems the code over real HTTP, checks the ID token against the provider's keys, and
asks userinfo. The browser's side of the exchange (following redirects, filling the
provider's sign-in form) is done with httpx against the provider and Django's test client
against Leakseal.
"""

from __future__ import annotations

import logging
import subprocess
import sys
from collections.abc import Iterator
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from django.contrib.auth.models import User
from django.core.cache import cache
from django.test import Client

from audit.models import Action, AuditEntry
from teams.invitations import invitation_create
from teams.models import Membership, Role, Team
from tests.fakes.oidc import OIDCProvider

CLIENT_ID = "leakseal-test"
CLIENT_SECRET = "client-secret-for-tests"
CALLBACK = "http://testserver/accounts/sso/callback/"
ALICE_EMAIL = "alice@example.test"
ALICE = {"email": ALICE_EMAIL, "name": "Alice Liddell", "groups": ["qa"]}


@pytest.fixture(scope="module")
def provider() -> Iterator[OIDCProvider]:
    running = OIDCProvider().start()
    yield running
    running.stop()


@pytest.fixture
def idp(provider, settings) -> Iterator[OIDCProvider]:
    """The provider, freshly configured, and Leakseal configured to trust it."""
    provider.control(
        reset=True,
        client={
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
            "redirect_uris": [CALLBACK],
        },
        users=[ALICE, {"email": "mallory@elsewhere.test"}],
    )
    settings.SSO_ENABLED = True
    settings.SSO_NAME = "Example SSO"
    settings.OIDC_ISSUER = provider.url
    settings.OIDC_RP_CLIENT_ID = CLIENT_ID
    settings.OIDC_RP_CLIENT_SECRET = CLIENT_SECRET
    settings.OIDC_ALLOWED_DOMAINS = ["example.test"]
    settings.OIDC_TEAMS = {"qa": [("payments", Role.FACILITATOR)]}
    settings.AUTHENTICATION_BACKENDS = [*settings.AUTHENTICATION_BACKENDS, "signin.sso.SSOBackend"]
    cache.clear()  # the discovery document is cached
    yield provider
    cache.clear()


def go_to_provider(client: Client, next_url: str = "") -> str:
    """Press "Sign in with …": Leakseal answers with the provider's authorization URL."""
    start = "/accounts/sso/start/" + (f"?next={next_url}" if next_url else "")
    response = client.get(start)
    assert response.status_code == 302, response.content[:500]
    return response["Location"]


def sign_in_at_provider(authorize_url: str, email: str, decision: str = "allow") -> str:
    """The person fills the provider's form; the provider sends the browser back to Leakseal."""
    page = httpx.get(authorize_url)
    assert page.status_code == 200, page.text
    form = {k: v[0] for k, v in parse_qs(urlsplit(authorize_url).query).items()}
    answer = httpx.post(
        authorize_url.split("?")[0], data={**form, "email": email, "decision": decision}
    )
    assert answer.status_code == 302, answer.text
    back = answer.headers["Location"]
    assert back.startswith(CALLBACK)
    return back.removeprefix("http://testserver")


def sso_sign_in(client: Client, email: str = ALICE_EMAIL, next_url: str = ""):
    return client.get(sign_in_at_provider(go_to_provider(client, next_url), email))


def refusal_of(response) -> str:
    assert response.status_code == 403, response.content[:300]
    return response.context["signin_refusal"]


@pytest.fixture
def payments(db) -> Team:
    from teams.services import team_create

    return team_create(name="Payments", slug="payments")


def test_the_authorization_request_carries_state_nonce_and_a_pkce_challenge(idp, db):
    url = go_to_provider(Client())
    query = parse_qs(urlsplit(url).query)
    assert url.startswith(idp.url + "/authorize?")  # from the discovery document
    assert query["client_id"] == [CLIENT_ID]
    assert query["redirect_uri"] == [CALLBACK]
    assert query["response_type"] == ["code"]
    assert "openid" in query["scope"][0].split()
    assert query["code_challenge_method"] == ["S256"]
    assert len(query["code_challenge"][0]) == 43  # base64url of a SHA-256
    assert query["state"][0] and query["nonce"][0]


def test_first_sign_in_creates_the_account_and_joins_the_mapped_team(idp, payments):
    client = Client()
    response = sso_sign_in(client, next_url="/t/payments/")
    assert response.status_code == 302
    assert response["Location"] == "/t/payments/"
    user = User.objects.get(email="alice@example.test")
    assert user.username == "alice@example.test"
    assert user.get_full_name() == "Alice Liddell"
    assert not user.has_usable_password()
    assert client.get("/t/payments/").status_code == 200  # signed in, and a member
    membership = Membership.objects.get(team=payments, user=user)
    assert membership.role == Role.FACILITATOR
    entry = AuditEntry.objects.get(team=payments, action=Action.MEMBER_ADDED)
    assert entry.changes["via"] == "single sign-on, group qa"
    # The code was redeemed with the PKCE verifier, and the provider checked it.
    token_call = idp.log()[-1]
    assert token_call["code_verifier"] and token_call["pkce_verified"]


def test_a_later_sign_in_finds_the_account_and_leaves_its_role_alone(idp, payments):
    sso_sign_in(Client())
    user = User.objects.get(email="alice@example.test")
    Membership.objects.filter(user=user).update(role=Role.VIEWER)  # an admin demoted her
    response = sso_sign_in(Client())
    assert response.status_code == 302
    assert User.objects.filter(email__iexact="alice@example.test").count() == 1
    assert Membership.objects.get(user=user).role == Role.VIEWER


def test_an_existing_password_account_with_the_address_is_the_one_signed_in(idp, db):
    existing = User.objects.create_user("alice", "Alice@Example.test", "horse-battery-9")
    client = Client()
    sso_sign_in(client)
    assert client.session["_auth_user_id"] == str(existing.pk)
    assert User.objects.count() == 1


@pytest.mark.parametrize(
    ("fault", "says"),
    [
        ({"iss": "https://evil.example"}, "issued by another identity provider"),
        ({"aud": "someone-else"}, "issued to another application"),
        ({"azp": "someone-else"}, "authorized party 'someone-else'"),
        ({"exp_in": -600}, "had expired"),
        ({"nonce": "not-the-one-we-sent"}, "nonce differs"),
        ({"key": "other"}, "signature does not match"),
        ({"key": "unknown_kid"}, "key the identity provider does not publish"),
    ],
    ids=["wrong-issuer", "wrong-audience", "wrong-azp", "expired", "nonce", "forged", "kid"],
)
def test_a_bad_id_token_is_refused_with_a_clear_message(idp, db, caplog, fault, says):
    idp.control(next_token=fault)
    client = Client()
    with caplog.at_level(logging.WARNING, logger="leakseal.signin"):
        response = sso_sign_in(client)
    assert says in refusal_of(response)
    assert not User.objects.exists()
    assert "_auth_user_id" not in client.session
    assert any("SSO sign-in refused" in r.getMessage() for r in caplog.records)
    assert CLIENT_SECRET not in caplog.text


def test_an_address_outside_the_allowed_domains_is_refused(idp, db):
    response = sso_sign_in(Client(), email="mallory@elsewhere.test")
    message = refusal_of(response)
    assert "mallory@elsewhere.test may not sign in" in message
    assert "example.test" in message
    assert not User.objects.exists()


def test_an_unverified_address_is_refused(idp, db):
    idp.control(users=[{**ALICE, "email_verified": False}])
    assert "is not verified" in refusal_of(sso_sign_in(Client()))


def test_userinfo_about_another_subject_is_refused(idp, db):
    idp.control(userinfo_sub="sub-someone-else")
    assert "about another person" in refusal_of(sso_sign_in(Client()))
    assert not User.objects.exists()


def test_a_wrong_pkce_verifier_is_refused_by_the_provider(idp, db):
    client = Client()
    back = sign_in_at_provider(go_to_provider(client), ALICE_EMAIL)
    session = client.session
    for state in session["oidc_states"].values():
        state["code_verifier"] = "x" * 64  # not the verifier of the challenge sent
    session.save()
    assert "refused to complete the sign-in (HTTP 400)" in refusal_of(client.get(back))
    assert "PKCE verification failed" in idp.log()[-1]["refused"]


def test_a_replayed_answer_is_refused(idp, db):
    client = Client()
    back = sign_in_at_provider(go_to_provider(client), ALICE_EMAIL)
    assert client.get(back).status_code == 302
    client.logout()
    assert "used already" in refusal_of(client.get(back))


def test_an_answer_started_in_another_browser_is_refused(idp, db):
    back = sign_in_at_provider(go_to_provider(Client()), ALICE_EMAIL)
    assert "started in this browser" in refusal_of(Client().get(back))


def test_a_denied_sign_in_says_so(idp, db):
    client = Client()
    back = sign_in_at_provider(go_to_provider(client), ALICE_EMAIL, decision="deny")
    assert "refused the sign-in: You said no." in refusal_of(client.get(back))


def test_a_discovery_document_for_another_issuer_is_refused(idp, db):
    idp.control(discovery_issuer="https://evil.example")
    response = Client().get("/accounts/sso/start/")
    assert response.status_code == 502
    assert "describes itself as another issuer" in response.context["signin_refusal"]


def test_an_unreachable_provider_says_so(idp, db, settings):
    settings.OIDC_ISSUER = "http://127.0.0.1:9"  # nothing listens there
    response = Client().get("/accounts/sso/start/")
    assert response.status_code == 502
    assert "did not answer its discovery request" in response.context["signin_refusal"]


def test_an_unknown_group_or_team_joins_nothing(idp, db, settings):
    settings.OIDC_TEAMS = {"qa": [("no-such-team", Role.ADMIN)]}
    assert sso_sign_in(Client()).status_code == 302
    assert not Membership.objects.exists()


def test_the_sign_in_page_offers_sso_beside_the_password(idp, db):
    page = Client().get("/accounts/login/?next=/t/payments/")
    html = page.content.decode()
    assert "Sign in with Example SSO" in html
    assert "/accounts/sso/start/?next=%2Ft%2Fpayments%2F" in html
    assert 'name="password"' in html


def test_without_sso_the_start_and_callback_are_not_found(db, settings):
    settings.SSO_ENABLED = False
    assert Client().get("/accounts/sso/start/").status_code == 404
    assert Client().get("/accounts/sso/callback/?code=x&state=y").status_code == 404
    assert "Sign in with" not in Client().get("/accounts/login/").content.decode()


class TestPasswordSigninOff:
    @pytest.fixture(autouse=True)
    def password_off(self, idp, settings):
        settings.PASSWORD_SIGNIN = False
        settings.AUTHENTICATION_BACKENDS = ["signin.sso.SSOBackend"]

    def test_the_sign_in_page_has_only_the_sso_button(self, db):
        html = Client().get("/accounts/login/").content.decode()
        assert "Sign in with Example SSO" in html
        assert 'name="password"' not in html
        assert "Forgot your password" not in html

    def test_a_posted_password_is_refused_unchecked(self, db):
        User.objects.create_user("bob", "bob@example.test", "bobs-own-staple-7")
        client = Client()
        response = client.post(
            "/accounts/login/", {"username": "bob", "password": "bobs-own-staple-7"}
        )
        assert "Password sign-in is turned off" in refusal_of(response)
        assert "_auth_user_id" not in client.session

    @pytest.mark.parametrize(
        "path",
        [
            "/accounts/password_reset/",
            "/accounts/password_reset/done/",
            "/accounts/reset/MQ/set-password/",
            "/accounts/reset/done/",
            "/accounts/password_change/",
        ],
    )
    def test_password_pages_are_gone(self, db, path):
        assert Client().get(path).status_code == 404

    def test_sso_still_signs_in(self, db):
        client = Client()
        assert sso_sign_in(client).status_code == 302
        assert client.get("/").status_code == 200
        assert "_auth_user_id" in client.session

    def test_an_invitation_asks_to_sign_in_not_to_choose_a_password(self, payments, owner):
        _, raw = invitation_create(
            team=payments, email="carol@example.test", role=Role.MEMBER, by=owner
        )
        html = Client().get(f"/invitations/{raw}/").content.decode()
        assert 'name="password"' not in html
        assert "Sign in to accept" in html


@pytest.mark.parametrize(
    ("env", "says"),
    [
        ({"PASSWORD_SIGNIN": "false"}, "PASSWORD_SIGNIN=false needs single sign-on"),
        ({"OIDC_ISSUER": "https://id.example"}, "OIDC_CLIENT_ID and OIDC_CLIENT_SECRET"),
        ({"OIDC_TEAMS": "qa=payments:boss"}, "OIDC_TEAMS: 'qa=payments:boss'"),
    ],
)
def test_a_wrong_configuration_stops_the_start(env, says):
    result = subprocess.run(
        [sys.executable, "-c", "import django; django.setup()"],
        env={**_base_env(), "DJANGO_SETTINGS_MODULE": "config.settings", **env},
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode != 0
    assert says in result.stderr


def _base_env() -> dict[str, str]:
    import os

    return {k: v for k, v in os.environ.items() if not k.startswith(("OIDC_", "PASSWORD_"))}


def test_password_off_a_retro_join_sso(idp, settings, payments, owner):
    from retros.models import Retrospective
    from retros.views_join import retro_join_key

    settings.PASSWORD_SIGNIN = False
    payments.join_link_sign_up = True
    payments.save()
    retro = Retrospective.objects.create(team=payments, title="Checkout leak", facilitator=owner)
    client = Client()
    page = client.get(f"/join/{retro_join_key(retro)}/")
    html = page.content.decode()
    assert 'name="password"' not in html
    assert "/accounts/sso/start/?next=" in html
    posted = client.post(
        f"/join/{retro_join_key(retro)}/",
        {"username": "eve", "name": "Eve", "email": "eve@example.test", "password": "x" * 12},
    )
    assert posted.status_code == 200
    assert not User.objects.filter(username="eve").exists()
