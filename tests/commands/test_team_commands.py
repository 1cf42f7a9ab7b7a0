from io import StringIO

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command
from django.core.management.base import CommandError

from teams.models import Membership, Role, Team

pytestmark = pytest.mark.django_db


def run(*args: str) -> str:
    out = StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


# --- create_team -------------------------------------------------------------------------


def test_create_team_prints_the_slug_and_adds_the_default_stages():
    out = run("create_team", "Payments Platform", "payments", "--timezone", "Europe/Berlin")
    assert out.strip() == "payments"
    team = Team.objects.get(slug="payments")
    assert team.name == "Payments Platform"
    assert team.timezone == "Europe/Berlin"
    assert list(team.stages.values_list("name", flat=True)) == ["Unit", "Integration", "E2E"]


def test_create_team_defaults_to_utc():
    run("create_team", "Search", "search")
    assert Team.objects.get(slug="search").timezone == "UTC"


def test_create_team_refuses_an_unknown_time_zone():
    with pytest.raises(CommandError, match=r"--timezone: 'Mars/Olympus' is not a known IANA"):
        run("create_team", "Payments", "payments", "--timezone", "Mars/Olympus")
    assert not Team.objects.exists()


def test_create_team_refuses_a_taken_slug(team):
    with pytest.raises(CommandError, match="A team with the slug 'checkout' already exists"):
        run("create_team", "Other checkout", "checkout")
    assert Team.objects.get(slug="checkout").name == "Checkout"


def test_create_team_refuses_a_malformed_slug():
    with pytest.raises(CommandError, match="Slug:"):
        run("create_team", "Payments", "pay ments!")
    assert not Team.objects.exists()


# --- add_member --------------------------------------------------------------------------


def test_add_member_gives_an_existing_user_a_role(team):
    User.objects.create_user("alice", password="x-long-password")
    out = run("add_member", "checkout", "alice", "facilitator")
    assert "alice is now facilitator of checkout" in out
    assert Membership.objects.get(team=team, user__username="alice").role == Role.FACILITATOR


def test_add_member_changes_the_role_of_a_member(team, member):
    run("add_member", "checkout", member.username, "viewer")
    assert Membership.objects.get(team=team, user=member).role == Role.VIEWER
    assert Membership.objects.filter(user=member).count() == 1


def test_add_member_creates_a_user_with_the_password_from_the_environment(team, monkeypatch):
    monkeypatch.setenv("LEAKSEAL_PASSWORD", "correct horse battery staple")
    out = run("add_member", "checkout", "bob", "member", "--create-user", "--email", "b@x.test")
    user = User.objects.get(username="bob")
    assert user.email == "b@x.test"
    assert user.check_password("correct horse battery staple")
    assert "correct horse" not in out
    assert "Generated password" not in out
    assert Membership.objects.get(team=team, user=user).role == Role.MEMBER


def test_add_member_generates_a_password_and_prints_it_once(team, monkeypatch):
    monkeypatch.delenv("LEAKSEAL_PASSWORD", raising=False)
    out = run("add_member", "checkout", "carol", "admin", "--create-user")
    line = next(x for x in out.splitlines() if x.startswith("Generated password for carol"))
    password = line.rsplit(": ", 1)[1]
    assert len(password) >= 16
    assert User.objects.get(username="carol").check_password(password)
    assert out.count(password) == 1


def test_add_member_refuses_a_weak_password_from_the_environment(team, monkeypatch):
    monkeypatch.setenv("LEAKSEAL_PASSWORD", "123")
    with pytest.raises(CommandError, match="LEAKSEAL_PASSWORD is too weak"):
        run("add_member", "checkout", "dave", "member", "--create-user")
    assert not User.objects.filter(username="dave").exists()


def test_add_member_refuses_an_unknown_team(db):
    User.objects.create_user("alice")
    with pytest.raises(CommandError, match="No team with the slug 'nope'"):
        run("add_member", "nope", "alice", "member")
    assert not Membership.objects.exists()


def test_add_member_refuses_an_unknown_user(team):
    with pytest.raises(CommandError, match="No user named 'ghost'; add --create-user"):
        run("add_member", "checkout", "ghost", "member")
    assert not Membership.objects.exists()


def test_add_member_refuses_an_unknown_role(team):
    User.objects.create_user("alice")
    with pytest.raises(CommandError, match="Unknown role 'owner'; choose one of admin, facil"):
        run("add_member", "checkout", "alice", "owner")
    assert not Membership.objects.exists()


def test_add_member_will_not_create_a_user_twice(team, member, monkeypatch):
    monkeypatch.delenv("LEAKSEAL_PASSWORD", raising=False)
    with pytest.raises(CommandError, match="already exists; drop --create-user"):
        run("add_member", "checkout", member.username, "admin", "--create-user")
    assert Membership.objects.get(team=team, user=member).role == Role.MEMBER


def test_add_member_refuses_a_bad_email(team):
    with pytest.raises(CommandError, match="not a valid e-mail"):
        run("add_member", "checkout", "erin", "member", "--create-user", "--email", "nope")
    assert not User.objects.filter(username="erin").exists()


def test_add_member_refuses_a_bad_username(team):
    with pytest.raises(CommandError, match="username"):
        run("add_member", "checkout", "bad name!", "member", "--create-user")
    assert not User.objects.filter(username="bad name!").exists()
