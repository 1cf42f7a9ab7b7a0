"""Password sign-in protection (signin/throttle.py through django-axes).

Failures are counted per account and per address, each against its own limit; a locked
sign-in is answered 429 with the sign-in page saying why and for how long; the API's tokens
are not affected. Every test runs with both counter stores: the database (the embedded
default) and the cache (local memory here, Redis when REDIS_URL is set).
"""

import io
import json
import logging
import threading
import time
from collections.abc import Iterator
from datetime import timedelta

import pytest
from django.contrib.auth.backends import ModelBackend
from django.contrib.auth.models import User
from django.core import mail
from django.core.cache import caches
from django.db import connection
from django.test import Client
from django.urls import reverse

from signin.models import SigninCounter
from teams.services import api_token_create
from tests.facilitation.shared_db import shareable_database

LOGIN = "/accounts/login/"
WRONG = "Please enter a correct username and password"
ACCOUNT_LOCKED = "Too many failed sign-ins for this account; try again in 15 minutes."
ADDRESS_LOCKED = "Too many failed sign-ins from your network address; try again in 15 minutes."


@pytest.fixture(params=["database", "cache"])
def store(request, settings) -> Iterator[str]:
    settings.SIGNIN_STORE = request.param
    caches[settings.SIGNIN_CACHE].clear()
    yield request.param
    caches[settings.SIGNIN_CACHE].clear()


@pytest.fixture
def alice(db) -> User:
    return User.objects.create_user("alice", "alice@example.test", "right-horse-battery")


@pytest.fixture
def bob(db) -> User:
    return User.objects.create_user("bob", "bob@example.test", "bobs-own-staple")


def on_redis(settings) -> bool:
    """Redis expires keys by its own clock, which time-machine does not move."""
    backend = settings.CACHES[settings.SIGNIN_CACHE]["BACKEND"]
    return settings.SIGNIN_STORE == "cache" and backend.endswith("RedisCache")


def sign_in(username: str, password: str, address: str = "203.0.113.7", client=None):
    client = client or Client()
    return client.post(LOGIN, {"username": username, "password": password}, REMOTE_ADDR=address)


def signed_in(response) -> bool:
    return response.status_code == 302 and response.headers["Location"] == "/"


def test_five_wrong_passwords_lock_the_account_for_fifteen_minutes(
    store, alice, time_machine, settings
):
    time_machine.move_to("2026-03-02 09:00:00+00:00", tick=False)
    for _ in range(4):
        response = sign_in("alice", "wrong")
        assert response.status_code == 200
        assert WRONG in response.content.decode()
    fifth = sign_in("alice", "wrong")
    assert fifth.status_code == 429
    body = fifth.content.decode()
    assert ACCOUNT_LOCKED in body
    assert 'role="alert"' in body and 'name="password"' in body  # the page, in the site's layout
    assert 'value="alice"' in body

    # The right password does not help while locked, and is not counted either.
    locked = sign_in("alice", "right-horse-battery")
    assert locked.status_code == 429
    time_machine.move_to("2026-03-02 09:10:00+00:00", tick=False)
    assert "try again in 5 minutes" in sign_in("alice", "right-horse-battery").content.decode()

    if on_redis(settings):
        return  # the window's end on Redis: test_the_window_ends_on_redis_by_its_own_clock
    time_machine.move_to("2026-03-02 09:15:01+00:00", tick=False)
    assert signed_in(sign_in("alice", "right-horse-battery"))


def test_the_window_ends_on_redis_by_its_own_clock(alice, settings):
    settings.SIGNIN_STORE = "cache"
    if not on_redis(settings):
        pytest.skip("needs REDIS_URL")
    caches[settings.SIGNIN_CACHE].clear()
    settings.AXES_COOLOFF_TIME = timedelta(seconds=2)
    for _ in range(5):
        sign_in("alice", "wrong", address="192.0.2.77")
    locked = sign_in("alice", "right-horse-battery", address="192.0.2.77")
    assert "try again in 1 minute." in locked.content.decode()
    time.sleep(2.5)
    assert signed_in(sign_in("alice", "right-horse-battery", address="192.0.2.77"))
    caches[settings.SIGNIN_CACHE].clear()


def test_an_unknown_account_is_locked_the_same_way(store, db):
    answers = [sign_in("nobody-here", "guess") for _ in range(5)]
    assert [a.status_code for a in answers] == [200, 200, 200, 200, 429]
    assert ACCOUNT_LOCKED in answers[-1].content.decode()


def test_the_username_is_counted_whatever_its_case(store, alice):
    for name in ("alice", "Alice", "ALICE", "aLiCe", "alicE"):
        last = sign_in(name, "wrong")
    assert last.status_code == 429


def test_one_persons_mistakes_do_not_lock_out_their_colleagues(store, alice, bob):
    for _ in range(5):
        sign_in("alice", "wrong", address="198.51.100.20")
    assert sign_in("alice", "right-horse-battery", address="198.51.100.20").status_code == 429
    # Bob, behind the same address, signs in; Alice's account stays locked wherever she is.
    assert signed_in(sign_in("bob", "bobs-own-staple", address="198.51.100.20"))
    assert sign_in("alice", "right-horse-battery", address="192.0.2.99").status_code == 429


def test_an_address_spraying_many_accounts_is_locked(store, alice, settings, time_machine):
    time_machine.move_to("2026-03-02 09:00:00+00:00", tick=False)
    settings.SIGNIN_ADDRESS_FAILURE_LIMIT = 8
    answers = [sign_in(f"user{n}", "guess", address="198.51.100.66") for n in range(8)]
    assert [a.status_code for a in answers] == [200] * 7 + [429]
    assert ADDRESS_LOCKED in answers[-1].content.decode()
    refused = sign_in("alice", "right-horse-battery", address="198.51.100.66")
    assert refused.status_code == 429 and ADDRESS_LOCKED in refused.content.decode()
    # Elsewhere Alice is fine, and the address is free again after the window.
    assert signed_in(sign_in("alice", "right-horse-battery", address="192.0.2.1"))
    if on_redis(settings):
        return  # see test_the_window_ends_on_redis_by_its_own_clock
    time_machine.move_to("2026-03-02 09:16:00+00:00", tick=False)
    assert signed_in(sign_in("alice", "right-horse-battery", address="198.51.100.66"))


def test_signing_in_clears_the_accounts_failures(store, alice):
    for _ in range(4):
        sign_in("alice", "wrong")
    assert signed_in(sign_in("alice", "right-horse-battery"))
    for _ in range(4):
        assert sign_in("alice", "wrong").status_code == 200
    assert sign_in("alice", "wrong").status_code == 429


def test_failures_and_the_lock_are_logged_without_the_password(store, alice, caplog):
    caplog.set_level(logging.INFO, logger="leakseal.signin")
    for _ in range(5):
        sign_in("alice", "Tr0ub4dor&3-secret")
    sign_in("alice", "right-horse-battery")
    lines = [r.getMessage() for r in caplog.records if r.name == "leakseal.signin"]
    assert any(
        "sign-in failed: username='alice' address=203.0.113.7 account 1 of 5" in x for x in lines
    )
    assert any("sign-in locked: account username='alice'" in x and "15 minutes" in x for x in lines)
    assert any("sign-in refused while locked: account" in x for x in lines)
    everything = "\n".join(r.getMessage() for r in caplog.records)
    assert "Tr0ub4dor" not in everything and "right-horse-battery" not in everything


def test_the_api_is_not_affected_by_a_locked_account(store, alice, client):
    _, raw = api_token_create(user=alice, name="ci")
    for _ in range(6):
        sign_in("alice", "wrong")
    assert sign_in("alice", "right-horse-battery").status_code == 429
    response = client.get("/api/v1/teams", headers={"Authorization": f"Bearer {raw}"})
    assert response.status_code == 200, response.content
    assert json.loads(response.content) is not None


def test_the_database_store_keeps_only_digests_of_usernames(alice, settings):
    settings.SIGNIN_STORE = "database"
    sign_in("alice", "wrong")
    keys = list(SigninCounter.objects.values_list("key", flat=True))
    assert sorted(k.split(":")[0] for k in keys) == ["ip", "user"]
    assert not any("alice" in k for k in keys)


# --- Under concurrency --------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("kind", ["database", "cache"])
def test_twenty_parallel_wrong_attempts_get_no_more_tries_than_the_limit(
    kind, settings, tmp_path, monkeypatch
):
    """Twenty threads post a wrong password for one account at the same moment; a slow
    password check (as a real hasher is) leaves room for every one of them to look at the
    counter before any failure is counted. Only five passwords may be checked."""
    settings.SIGNIN_STORE = kind
    caches[settings.SIGNIN_CACHE].clear()
    checked: list[str] = []
    guard = threading.Lock()
    original = ModelBackend.authenticate

    def slow_check(self, request, username=None, password=None, **kwargs):
        with guard:
            checked.append(username or "")
        time.sleep(0.2)
        return original(self, request, username=username, password=password, **kwargs)

    monkeypatch.setattr(ModelBackend, "authenticate", slow_check)
    with shareable_database(tmp_path):
        User.objects.create_user("carol", "carol@example.test", "carols-long-password")
        barrier = threading.Barrier(20)
        statuses: list[int] = []

        def attempt(n: int) -> None:
            try:
                barrier.wait(timeout=30)
                response = sign_in("carol", f"wrong-{n}", address=f"198.51.100.{n + 1}")
                with guard:
                    statuses.append(response.status_code)
            finally:
                connection.close()

        threads = [threading.Thread(target=attempt, args=(n,)) for n in range(20)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)

        assert len(statuses) == 20, statuses
        assert len(checked) == 5, f"{len(checked)} passwords were checked"
        assert sorted(statuses) == [200] * 4 + [429] * 16
        # And the account stays locked: the right password is refused unchecked.
        assert sign_in("carol", "carols-long-password").status_code == 429
        assert len(checked) == 5
    caches[settings.SIGNIN_CACHE].clear()


# --- Password reset -----------------------------------------------------------------------


def test_a_password_reset_by_email_works_and_checks_the_new_password(alice, settings):
    settings.SITE_URL = "https://leakseal.example.test"
    client = Client()
    page = client.get(reverse("password_reset"))
    assert page.status_code == 200 and "Reset your password" in page.content.decode()
    assert 'class="topbar"' in page.content.decode()  # the site's layout, not the admin's
    response = client.post(reverse("password_reset"), {"email": "alice@example.test"})
    assert response.status_code == 302
    assert len(mail.outbox) == 1
    body = mail.outbox[0].body
    assert mail.outbox[0].subject == "Reset your Leakseal password"
    link = next(line for line in body.splitlines() if line.startswith("https://"))
    assert link.startswith("https://leakseal.example.test/accounts/reset/")
    path = link.removeprefix("https://leakseal.example.test")

    form = client.get(path, follow=True)
    assert "Choose a new password" in form.content.decode()
    set_url = form.redirect_chain[-1][0]
    common = client.post(set_url, {"new_password1": "password", "new_password2": "password"})
    assert "This password is too common." in common.content.decode()
    short = client.post(set_url, {"new_password1": "4821", "new_password2": "4821"})
    assert "This password is too short." in short.content.decode()
    assert "This password is entirely numeric." in short.content.decode()
    done = client.post(
        set_url, {"new_password1": "quiet-orbit-lantern", "new_password2": "quiet-orbit-lantern"}
    )
    assert done.status_code == 302
    assert signed_in(sign_in("alice", "quiet-orbit-lantern"))
    # The link works once.
    again = client.get(path, follow=True)
    assert "This link no longer works" in again.content.decode()


def test_an_unknown_address_gets_the_same_answer_and_no_email(db, settings):
    response = Client().post(reverse("password_reset"), {"email": "nobody@example.test"})
    assert response.status_code == 302 and response.headers["Location"] == reverse(
        "password_reset_done"
    )
    assert mail.outbox == []


def test_password_validators_are_configured(settings):
    names = {v["NAME"].rsplit(".", 1)[-1] for v in settings.AUTH_PASSWORD_VALIDATORS}
    assert names == {
        "UserAttributeSimilarityValidator",
        "MinimumLengthValidator",
        "CommonPasswordValidator",
        "NumericPasswordValidator",
    }


def test_the_lockout_window_is_the_setting(settings):
    assert timedelta(minutes=15) == settings.AXES_COOLOFF_TIME
    assert settings.AXES_FAILURE_LIMIT == 5
    assert settings.AXES_LOCKOUT_PARAMETERS == ["username", "ip_address"]


def test_an_operator_unlocks_an_account_or_an_address(store, alice, settings):
    from django.core.management import call_command

    for _ in range(5):
        sign_in("alice", "wrong")
    assert sign_in("alice", "right-horse-battery").status_code == 429
    call_command("axes_reset_username", "alice", stdout=io.StringIO())
    assert signed_in(sign_in("alice", "right-horse-battery"))

    settings.SIGNIN_ADDRESS_FAILURE_LIMIT = 3
    for n in range(3):
        sign_in(f"someone{n}", "wrong", address="192.0.2.50")
    assert sign_in("alice", "right-horse-battery", address="192.0.2.50").status_code == 429
    call_command("axes_reset_ip", "192.0.2.50", stdout=io.StringIO())
    assert signed_in(sign_in("alice", "right-horse-battery", address="192.0.2.50"))
