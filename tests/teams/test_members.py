"""Issue 11, points 1 and 2: a user creates a team from the web app; admins change roles and
remove members, never leaving a team without an admin; the retro join link's sign-up."""

import threading

import pytest
from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.test import Client
from django.urls import reverse

from escapes.models import PipelineStage
from retros.models import Retrospective
from retros.views_join import retro_join_url
from teams.models import Membership, Role, Team
from teams.services import membership_role_change, team_create
from tests.conftest import client_for

STRONG = "Blue-harbour-lantern-42"


# --- Creating a team.


@pytest.mark.django_db
def test_a_signed_in_user_creates_a_team_with_its_stages_and_becomes_its_admin():
    user = User.objects.create_user("zoe", password=STRONG)
    client = client_for(user)
    form = client.get("/teams/new/").content.decode()
    assert "Unit\nIntegration\nE2E" in form
    assert 'href="/teams/new/"' in client.get("/").content.decode()
    response = client.post(
        "/teams/new/",
        {
            "name": "Payments",
            "slug": "payments",
            "timezone": "Europe/Berlin",
            "stages": "Unit\n  Contract \n\nIntegration\nE2E\nCanary",
        },
    )
    assert response.status_code == 302
    assert response.headers["Location"] == "/t/payments/members/"
    team = Team.objects.get(slug="payments")
    assert team.timezone == "Europe/Berlin"
    assert Membership.objects.get(team=team, user=user).role == Role.ADMIN
    stages = list(PipelineStage.objects.filter(team=team).order_by("position"))
    assert [s.name for s in stages] == ["Unit", "Contract", "Integration", "E2E", "Canary"]
    assert client.get("/t/payments/members/").status_code == 200


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("data", "field", "message"),
    [
        ({"slug": "checkout"}, "slug", "is taken"),
        ({"slug": "Not a slug!"}, "slug", "Enter a valid"),
        ({"timezone": "Mars/Olympus"}, "timezone", "Select a valid choice"),
        ({"stages": "Unit\nunit"}, "stages", "listed twice"),
        ({"stages": "x" * 51}, "stages", "too long"),
        ({"stages": "  \n "}, "stages", "This field is required"),
        ({"name": ""}, "name", "This field is required"),
    ],
)
def test_a_refused_team_names_the_field_and_writes_nothing(data, field, message):
    team_create(name="Checkout", slug="checkout")
    user = User.objects.create_user("zoe", password=STRONG)
    post = {"name": "New", "slug": "new", "timezone": "UTC", "stages": "Unit", **data}
    response = client_for(user).post("/teams/new/", post)
    html = response.content.decode()
    assert response.status_code == 200
    assert f'id="id_{field}_error"' in html, html
    assert message in html
    assert Team.objects.count() == 1
    assert not Membership.objects.filter(user=user).exists()


@pytest.mark.django_db
def test_stages_refused_by_the_service_roll_the_team_back():
    user = User.objects.create_user("zoe", password=STRONG)
    with pytest.raises(ValidationError) as refused:
        team_create(name="P", slug="p", stages=["E2E", "e2e"], admin=user)
    assert "stages" in refused.value.message_dict
    assert not Team.objects.filter(slug="p").exists()


def test_anonymous_is_sent_to_sign_in_to_create_a_team(db):
    assert Client().get("/teams/new/").headers["Location"].startswith("/accounts/login/")


# --- Roles and removal.


def _role(client: Client, team: Team, membership: Membership, role: str):
    return client.post(
        f"/t/{team.slug}/members/{membership.pk}/role/", {f"m{membership.pk}-role": role}
    )


def test_an_admin_changes_a_role(team, owner, member):
    target = Membership.objects.get(team=team, user=member)
    response = _role(client_for(owner), team, target, "facilitator")
    assert response.status_code == 302
    target.refresh_from_db()
    assert target.role == Role.FACILITATOR


def test_the_last_admin_cannot_demote_or_remove_themselves(team, owner, member):
    me = Membership.objects.get(team=team, user=owner)
    client = client_for(owner)
    response = _role(client, team, me, "member")
    html = response.content.decode()
    assert response.status_code == 200
    assert "You are the only admin of Checkout" in html
    assert 'role="alert"' in html
    removed = client.post(f"/t/{team.slug}/members/{me.pk}/remove/")
    assert "You are the only admin of Checkout" in removed.content.decode()
    me.refresh_from_db()
    assert me.role == Role.ADMIN


def test_an_admin_may_step_down_or_leave_when_another_admin_remains(team, owner, member):
    other = Membership.objects.get(team=team, user=member)
    client = client_for(owner)
    _role(client, team, other, "admin")
    me = Membership.objects.get(team=team, user=owner)
    response = _role(client, team, me, "viewer")
    assert response.headers["Location"] == f"/t/{team.slug}/"
    me.refresh_from_db()
    assert me.role == Role.VIEWER
    # Now mia is the only admin: she cannot leave, but she removes owner.
    mia = client_for(member)
    assert (
        "You are the only admin"
        in mia.post(f"/t/{team.slug}/members/{other.pk}/remove/").content.decode()
    )
    assert mia.post(f"/t/{team.slug}/members/{me.pk}/remove/").status_code == 302
    assert not Membership.objects.filter(pk=me.pk).exists()
    # An admin leaving when another admin exists is fine.
    _role(mia, team, Membership.objects.create(team=team, user=owner, role="admin"), "admin")
    left = mia.post(f"/t/{team.slug}/members/{other.pk}/remove/")
    assert left.headers["Location"] == "/"
    assert not Membership.objects.filter(pk=other.pk).exists()


@pytest.mark.django_db(transaction=True)
def test_two_admins_demoting_each_other_at_once_leave_one_admin(team, owner, member):
    """Owner demotes mia while mia demotes owner: the second waits for the first's commit
    (the team's row lock), then sees it is the last admin and is refused."""
    if connection.vendor == "sqlite":
        pytest.skip("SQLite serialises every write transaction; the race needs PostgreSQL")
    a = Membership.objects.get(team=team, user=owner)
    b = Membership.objects.get(team=team, user=member)
    b.role = Role.ADMIN
    b.save()
    errors: list[Exception] = []

    def demote_owner() -> None:
        try:
            membership_role_change(membership=a, role="member", by=member)
        except ValidationError as exc:
            errors.append(exc)
        finally:
            connection.close()

    other = threading.Thread(target=demote_owner)
    with transaction.atomic():
        membership_role_change(membership=b, role="member", by=owner)
        other.start()
        other.join(timeout=1.0)
        assert other.is_alive(), "the second demotion must wait for the first to commit"
    other.join(timeout=20)
    assert len(errors) == 1
    assert "only admin" in str(errors[0])
    assert list(Membership.objects.filter(team=team, role=Role.ADMIN)) == [a]


# --- The retro join link.


@pytest.fixture
def retro(team, owner) -> Retrospective:
    return Retrospective.objects.create(team=team, title="Join retro", facilitator=owner)


def test_the_join_link_is_the_board_url_until_the_admin_allows_sign_up(team, owner, retro):
    client = client_for(owner)
    board = f"/t/{team.slug}/retros/{retro.pk}/"
    assert f'value="http://testserver{board}"' in client.get(board).content.decode()
    response = client.post(f"/t/{team.slug}/members/join-link/", {"allowed": "on"})
    assert response.status_code == 302
    team.refresh_from_db()
    assert team.join_link_sign_up
    html = client.get(board).content.decode()
    assert f'value="http://testserver{retro_join_url(retro)}"' in html
    assert "can also create an account" in html


def test_with_the_setting_off_the_join_link_admits_nobody_new(team, retro, outsider):
    path = retro_join_url(retro)
    board = f"/t/{team.slug}/retros/{retro.pk}/"
    assert Client().get(path).headers["Location"] == board
    assert client_for(outsider).post(path).headers["Location"] == board
    assert client_for(outsider).get(board).status_code == 404
    assert not Membership.objects.filter(team=team, user=outsider).exists()


def test_a_newcomer_creates_an_account_from_the_join_link_as_a_member(team, retro):
    team.join_link_sign_up = True
    team.save()
    path = retro_join_url(retro)
    client = Client()
    assert "New here? Create an account" in client.get(path).content.decode()
    weak = client.post(
        path,
        {
            "username": "newt",
            "name": "Newt",
            "email": "newt@example.com",
            "password": "password",
            "password_again": "password",
            "role": "admin",  # ignored: the role is not the newcomer's to choose
        },
    )
    assert "too common" in weak.content.decode()
    assert not User.objects.filter(username="newt").exists()
    response = client.post(
        path,
        {
            "username": "newt",
            "name": "Newt",
            "email": "newt@example.com",
            "password": STRONG,
            "password_again": STRONG,
            "role": "admin",
        },
    )
    assert response.headers["Location"] == f"/t/{team.slug}/retros/{retro.pk}/"
    user = User.objects.get(username="newt")
    assert Membership.objects.get(team=team, user=user).role == Role.MEMBER
    assert client.get(response.headers["Location"]).status_code == 200


def test_the_join_link_never_raises_a_role(team, retro, viewer, outsider):
    team.join_link_sign_up = True
    team.save()
    path = retro_join_url(retro)
    assert client_for(viewer).post(path).status_code == 302
    assert Membership.objects.get(team=team, user=viewer).role == Role.VIEWER
    # Someone signed in who is not a member joins as a member, with a button (not by GET).
    client = client_for(outsider)
    assert "Join Checkout as a member" in client.get(path).content.decode()
    assert not Membership.objects.filter(team=team, user=outsider).exists()
    client.post(path, {"role": "admin"})
    assert Membership.objects.get(team=team, user=outsider).role == Role.MEMBER


def test_a_join_link_of_a_closed_retro_or_a_forged_one_admits_nobody(team, retro, outsider):
    team.join_link_sign_up = True
    team.save()
    forged = retro_join_url(retro)[:-3] + "xx/"
    assert Client().get(forged).status_code == 404
    retro.phase = "closed"
    retro.save()
    response = client_for(outsider).post(retro_join_url(retro))
    assert response.status_code == 410
    assert "This retro is closed" in response.content.decode()
    assert not Membership.objects.filter(team=team, user=outsider).exists()


def test_an_address_with_an_account_is_told_to_sign_in(team, retro, member):
    team.join_link_sign_up = True
    team.save()
    User.objects.create_user("has", email="has@example.com", password=STRONG)
    response = Client().post(
        retro_join_url(retro),
        {
            "username": "has2",
            "name": "H",
            "email": "HAS@example.com",
            "password": STRONG,
            "password_again": STRONG,
        },
    )
    assert "sign in with it instead" in response.content.decode()
    assert not User.objects.filter(username="has2").exists()


def test_admins_find_the_members_page_from_the_team_page(team, owner, member):
    link = reverse("team_members", kwargs={"team": team.slug})
    page = reverse("team_home", kwargs={"team": team.slug})
    assert link in client_for(owner).get(page).content.decode()
    assert link not in client_for(member).get(page).content.decode()
