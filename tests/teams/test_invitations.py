"""Issue 11, point 2: email invitations — single use, expiring, bound to the address; resend
makes a new link and kills the old one; revoke; sign-up or sign-in to accept; members twice
never."""

import re
from datetime import timedelta

import pytest
import time_machine
from django.contrib.auth.models import User
from django.core import mail
from django.test import Client
from django.utils import timezone

from teams.invitations import invitation_create, invitation_resend
from teams.models import Invitation, Membership, Role
from tests.conftest import client_for

LINK = re.compile(r"http://[^/\s]+(/invitations/lki_[\w-]+/)")
STRONG = "Blue-harbour-lantern-42"


@pytest.fixture
def admin_client(owner) -> Client:
    return client_for(owner)


def _invite(client: Client, team, email: str, role: str = "member", callbacks=None):
    with callbacks(execute=True):
        return client.post(f"/t/{team.slug}/members/invite/", {"email": email, "role": role})


def _link_of(message) -> str:
    match = LINK.search(message.body)
    assert match, message.body
    return match.group(1)


def test_an_admin_invites_an_address_and_the_email_carries_a_single_use_link(
    team, owner, admin_client, django_capture_on_commit_callbacks
):
    response = _invite(
        admin_client, team, "nina@example.com", "facilitator", django_capture_on_commit_callbacks
    )
    assert response.status_code == 302
    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.to == ["nina@example.com"]
    assert "Checkout" in message.subject
    path = _link_of(message)
    raw = path.split("/")[2]
    invitation = Invitation.objects.get(team=team, email="nina@example.com")
    # Only the digest is kept, never the token.
    assert invitation.digest == Invitation.digest_of(raw)
    assert raw not in str(Invitation.objects.filter(pk=invitation.pk).values().first())
    assert invitation.role == Role.FACILITATOR
    assert invitation.sent_at is not None
    assert invitation.expires_at - invitation.created_at == timedelta(days=7)
    page = admin_client.get(f"/t/{team.slug}/members/")
    assert "nina@example.com" in page.content.decode()
    assert "Invitation sent to nina@example.com" in page.content.decode()


def test_a_new_person_creates_the_account_and_joins_with_the_invited_role(
    team, owner, admin_client, django_capture_on_commit_callbacks
):
    _invite(admin_client, team, "Nina@Example.com", "viewer", django_capture_on_commit_callbacks)
    path = _link_of(mail.outbox[0])
    newcomer = Client()
    page = newcomer.get(path)
    assert page.status_code == 200
    assert "Create your account" in page.content.decode()
    # A weak password is refused by Django's validators, beside the field; nothing is written.
    weak = newcomer.post(
        path, {"username": "nina", "name": "Nina N", "password": "123", "password_again": "123"}
    )
    assert weak.status_code == 200
    assert "too short" in weak.content.decode()
    assert not User.objects.filter(username="nina").exists()
    differ = newcomer.post(
        path, {"username": "nina", "name": "Nina N", "password": STRONG, "password_again": "x"}
    )
    assert "The two passwords differ" in differ.content.decode()

    done = newcomer.post(
        path, {"username": "nina", "name": "Nina N", "password": STRONG, "password_again": STRONG}
    )
    assert done.status_code == 302 and done.headers["Location"] == f"/t/{team.slug}/"
    user = User.objects.get(username="nina")
    assert user.email == "Nina@example.com" and user.get_full_name() == "Nina N"
    assert Membership.objects.get(team=team, user=user).role == Role.VIEWER
    assert newcomer.get(f"/t/{team.slug}/").status_code == 200  # signed in, a member

    # Single use: the same link again, even by the same person, says it was used.
    again = Client().get(path)
    assert again.status_code == 410
    assert "has been used already" in again.content.decode()


def test_an_existing_account_signs_in_and_accepts(
    team, owner, admin_client, django_capture_on_commit_callbacks
):
    existing = User.objects.create_user("pat", email="pat@example.com", password=STRONG)
    _invite(admin_client, team, "PAT@example.com", "member", django_capture_on_commit_callbacks)
    path = _link_of(mail.outbox[0])

    anonymous = Client()
    page = anonymous.get(path)
    assert "Sign in to accept" in page.content.decode()
    assert anonymous.post(path).headers["Location"].startswith("/accounts/login/")
    assert not Membership.objects.filter(team=team, user=existing).exists()

    signed_in = client_for(existing)
    accept = signed_in.get(path).content.decode()
    assert "Accept and join Checkout" in accept
    assert "as a <strong>member</strong>" in accept
    assert not Membership.objects.filter(team=team, user=existing).exists()  # GET changes nothing
    response = signed_in.post(path)
    assert response.headers["Location"] == f"/t/{team.slug}/"
    assert Membership.objects.get(team=team, user=existing).role == Role.MEMBER


def test_the_link_is_bound_to_the_invited_address(
    team, owner, member, admin_client, django_capture_on_commit_callbacks
):
    _invite(admin_client, team, "quinn@example.com", "admin", django_capture_on_commit_callbacks)
    path = _link_of(mail.outbox[0])
    someone_else = User.objects.create_user("eve", email="eve@example.com", password=STRONG)
    response = client_for(someone_else).post(path)
    assert response.status_code == 403
    assert "This invitation is for quinn@example.com" in response.content.decode()
    assert "Sign out and open the invitation again" in response.content.decode()
    assert not Membership.objects.filter(team=team, user=someone_else).exists()
    # A member with another address cannot use it to become admin either.
    client_for(member).post(path)
    assert Membership.objects.get(team=team, user=member).role == Role.MEMBER
    assert Invitation.objects.get(email="quinn@example.com").accepted_at is None


def test_an_expired_link_is_refused_and_says_so(
    team, owner, admin_client, django_capture_on_commit_callbacks
):
    _invite(admin_client, team, "old@example.com", "member", django_capture_on_commit_callbacks)
    path = _link_of(mail.outbox[0])
    with time_machine.travel(timezone.now() + timedelta(days=7, minutes=1)):
        response = Client().get(path)
        signup = Client().post(
            path, {"username": "old", "name": "O", "password": STRONG, "password_again": STRONG}
        )
        listed = admin_client.get(f"/t/{team.slug}/members/").content.decode()
    assert response.status_code == 410
    assert "has expired" in response.content.decode()
    # It says whose invitation it was, so that the person knows which admin to ask.
    assert (
        "The invitation of old@example.com to join <strong>Checkout</strong>, sent by olivia"
        in (response.content.decode())
    )
    assert signup.status_code == 410
    assert not User.objects.filter(username="old").exists()
    assert "expired" in listed


@pytest.mark.django_db
def test_the_expiry_is_a_setting(team, owner, settings):
    settings.LEAKSEAL_INVITATION_DAYS = 2
    invitation, _ = invitation_create(team=team, email="a@example.com", role="member", by=owner)
    assert invitation.expires_at - invitation.created_at == timedelta(days=2)


def test_a_revoked_link_is_refused_and_says_so(
    team, owner, admin_client, django_capture_on_commit_callbacks
):
    _invite(admin_client, team, "rev@example.com", "member", django_capture_on_commit_callbacks)
    path = _link_of(mail.outbox[0])
    invitation = Invitation.objects.get(email="rev@example.com")
    response = admin_client.post(f"/t/{team.slug}/members/invitations/{invitation.pk}/revoke/")
    assert response.status_code == 302
    refused = Client().get(path)
    assert refused.status_code == 410
    assert "was revoked" in refused.content.decode()
    listed = admin_client.get(f"/t/{team.slug}/members/").content.decode()
    assert f'id="invitation-{invitation.pk}"' not in listed


def test_resend_makes_a_new_link_and_the_old_one_dies(
    team, owner, admin_client, django_capture_on_commit_callbacks
):
    _invite(admin_client, team, "re@example.com", "member", django_capture_on_commit_callbacks)
    old_path = _link_of(mail.outbox[0])
    invitation = Invitation.objects.get(email="re@example.com")
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(f"/t/{team.slug}/members/invitations/{invitation.pk}/resend/")
    assert response.status_code == 302
    assert len(mail.outbox) == 2
    new_path = _link_of(mail.outbox[1])
    assert new_path != old_path
    old = Client().get(old_path)
    assert old.status_code == 410
    assert "A newer invitation was sent" in old.content.decode()
    assert Client().get(new_path).status_code == 200


def test_a_tampered_link_is_refused_and_says_so(
    team, owner, admin_client, django_capture_on_commit_callbacks
):
    _invite(admin_client, team, "t@example.com", "member", django_capture_on_commit_callbacks)
    path = _link_of(mail.outbox[0])
    tampered = path[:-3] + ("A" if path[-3] != "A" else "B") + path[-2:]
    for bad in (tampered, "/invitations/lki_nothing/", "/invitations/whatever/"):
        response = Client().get(bad)
        assert response.status_code == 404, bad
        assert "not valid" in response.content.decode()


def test_inviting_a_member_makes_no_second_membership_and_says_so(
    team, owner, member, admin_client, django_capture_on_commit_callbacks
):
    member.email = "mia@example.com"
    member.save()
    response = _invite(
        admin_client, team, "MIA@example.com", "admin", django_capture_on_commit_callbacks
    )
    assert response.status_code == 200
    assert "is already a member of Checkout" in response.content.decode()
    assert not Invitation.objects.exists()
    assert mail.outbox == []
    # And a link accepted by someone who became a member meanwhile keeps one membership.
    _, raw = invitation_create(team=team, email="late@example.com", role="admin", by=owner)
    late = User.objects.create_user("late", email="late@example.com", password=STRONG)
    Membership.objects.create(team=team, user=late, role=Role.VIEWER)
    answer = client_for(late).post(f"/invitations/{raw}/", follow=True)
    assert "nothing changed" in answer.content.decode()
    assert Membership.objects.filter(team=team, user=late).count() == 1
    assert Membership.objects.get(team=team, user=late).role == Role.VIEWER


def test_a_second_pending_invitation_to_one_address_is_refused(team, owner, admin_client):
    invitation_create(team=team, email="dup@example.com", role="member", by=owner)
    response = admin_client.post(
        f"/t/{team.slug}/members/invite/", {"email": "dup@example.com", "role": "member"}
    )
    assert "has a pending invitation already" in response.content.decode()
    assert Invitation.objects.filter(email="dup@example.com").count() == 1


def test_bad_input_is_named_next_to_the_field(team, owner, admin_client):
    response = admin_client.post(
        f"/t/{team.slug}/members/invite/", {"email": "not-an-address", "role": "boss"}
    )
    html = response.content.decode()
    assert 'id="id_email_error"' in html and 'aria-invalid="true"' in html
    assert "Select a valid choice" in html
    assert not Invitation.objects.exists()


def test_a_used_or_revoked_invitation_cannot_be_resent(team, owner):
    invitation, _ = invitation_create(team=team, email="x@example.com", role="member", by=owner)
    invitation.revoked_at = timezone.now()
    invitation.save()
    with pytest.raises(Exception, match="cannot be resent"):
        invitation_resend(invitation=invitation, by=owner)


def test_a_mail_server_failure_is_reported_to_the_admin(
    team, owner, admin_client, settings, django_capture_on_commit_callbacks
):
    # A mail server that is not there: nothing listens on the discard port.
    settings.MAILERS = {
        "default": {
            "BACKEND": "django.core.mail.backends.smtp.EmailBackend",
            "OPTIONS": {"host": "127.0.0.1", "port": 9, "timeout": 2, "use_tls": False},
        }
    }
    response = _invite(
        admin_client, team, "f@example.com", "member", django_capture_on_commit_callbacks
    )
    page = admin_client.get(response.headers["Location"]).content.decode()
    assert "could not be sent" in page
    invitation = Invitation.objects.get(email="f@example.com")
    assert invitation.sent_at is None and invitation.send_error
