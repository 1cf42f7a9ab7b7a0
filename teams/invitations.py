"""Email invitations to a team: invite, resend, revoke, accept (with an account or a new one).

A link is `/invitations/<token>/`. The token is random and shown only in the email; the row
keeps its SHA-256 digest, as an API token's (teams/models.py). A link works once, until it
expires (LEAKSEAL_INVITATION_DAYS, default 7), and only for the invited address: a new account
gets that address, an existing account must have it. Resending makes a new row and token and
marks the old row replaced, so the old link stops working and says why.

The email leaves after the transaction commits (`transaction.on_commit`), from the process
that made the invitation, not from a Celery task: the raw token exists only in this process's
memory, and a task would carry it through the broker (Redis) in clear; and the admin sees at
once, on the members page, when the mail server refused it. Each service below runs in one
transaction, so an audit record can join it.
"""

import logging
import secrets
from datetime import timedelta

from django.conf import settings
from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.core.mail import send_mail
from django.core.validators import validate_email
from django.db import transaction
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone

from audit.models import Action
from audit.services import record
from teams.models import Invitation, InvitationState, Membership, Role, Team
from teams.services import account_create, email_in_use, team_lock

logger = logging.getLogger(__name__)

TOKEN_PREFIX = "lki_"  # noqa: S105 - the public prefix of every invitation token

# What a link that does not work says, by state; `InvitationRefused.code` is the state.
REFUSALS = {
    InvitationState.ACCEPTED: "This invitation link has been used already. Sign in instead; "
    "if that was not you, ask a team admin for a new invitation.",
    InvitationState.EXPIRED: "This invitation link has expired. Ask a team admin to resend it.",
    InvitationState.REVOKED: "This invitation was revoked by a team admin. Ask them if you "
    "still need to join.",
    InvitationState.REPLACED: "A newer invitation was sent to this address, so this link no "
    "longer works. Use the link in the latest email.",
    "unknown": "This invitation link is not valid: it may be incomplete or altered. Open it "
    "from the email again, or ask a team admin to resend it.",
}


class InvitationRefused(ValidationError):
    """A link that does not work; `code` says why (a state, `unknown` or `wrong_account`)."""


def invitation_days() -> int:
    return int(settings.LEAKSEAL_INVITATION_DAYS)


def invitation_link(raw: str) -> str:
    return settings.SITE_URL + reverse("invitation_open", kwargs={"key": raw})


def _new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def _member_with_email(team: Team, email: str) -> Membership | None:
    return (
        Membership.objects.select_related("user")
        .filter(team=team, user__email__iexact=email)
        .first()
    )


def _clean_email(email: str) -> str:
    email = email.strip()
    try:
        validate_email(email)
    except ValidationError:
        raise ValidationError({"email": "Enter an email address like name@example.com."}) from None
    return email


def _issue(*, team: Team, email: str, role: str, by: User | None) -> tuple[Invitation, str]:
    raw = _new_token()
    now = timezone.now()
    invitation = Invitation.objects.create(
        team=team,
        email=email,
        role=role,
        digest=Invitation.digest_of(raw),
        invited_by=by,
        created_at=now,
        expires_at=now + timedelta(days=invitation_days()),
    )
    transaction.on_commit(lambda: invitation_email_send(invitation_id=invitation.pk, raw=raw))
    return invitation, raw


@transaction.atomic
def invitation_create(
    *, team: Team, email: str, role: str, by: User | None
) -> tuple[Invitation, str]:
    """Invite an address with a role; returns the invitation and its raw token (emailed).

    Refused, on `email`, for someone already a member (no second membership is ever made)
    and for an address with a pending invitation (resend that one instead).
    """
    email = _clean_email(email)
    if role not in Role.values:
        raise ValidationError({"role": f"Choose one of: {', '.join(Role.labels)}."})
    team_lock(team_id=team.pk)
    member = _member_with_email(team, email)
    if member is not None:
        raise ValidationError(
            {
                "email": f"{email} is already a member of {team.name} "
                f"({member.user.get_username()}, {member.get_role_display()}). "
                "Change their role in the list of members instead."
            }
        )
    now = timezone.now()
    pending = [
        i
        for i in Invitation.objects.filter(team=team, email__iexact=email)
        if i.state_at(now) == InvitationState.PENDING
    ]
    if pending:
        raise ValidationError(
            {
                "email": f"{email} has a pending invitation already "
                f"(sent {timezone.localtime(pending[0].created_at):%Y-%m-%d}): resend or "
                "revoke it in the list of invitations."
            }
        )
    invitation, raw = _issue(team=team, email=email, role=role, by=by)
    record(team=team, actor=by, action=Action.MEMBER_INVITED, target=email, changes={"role": role})
    return invitation, raw


def _locked(invitation: Invitation) -> Invitation:
    found = Invitation.objects.select_for_update().filter(pk=invitation.pk).first()
    if found is None:
        raise ValidationError("This invitation no longer exists.")
    return found


@transaction.atomic
def invitation_resend(*, invitation: Invitation, by: User | None) -> tuple[Invitation, str]:
    """A new link (and a new expiry) for a pending or expired invitation; the old link dies."""
    team_lock(team_id=invitation.team_id)
    current = _locked(invitation)
    state = current.state_at(timezone.now())
    if state not in (InvitationState.PENDING, InvitationState.EXPIRED):
        raise ValidationError(f"This invitation cannot be resent: it is {state.label.lower()}.")
    member = _member_with_email(current.team, current.email)
    if member is not None:
        raise ValidationError(f"{current.email} is a member of {current.team.name} already.")
    new, raw = _issue(team=current.team, email=current.email, role=current.role, by=by)
    current.replaced_by = new
    current.save(update_fields=["replaced_by"])
    record(
        team=current.team,
        actor=by,
        action=Action.INVITATION_RESENT,
        target=current.email,
        changes={"role": current.role, "link": "changed"},
    )
    return new, raw


@transaction.atomic
def invitation_revoke(*, invitation: Invitation, by: User | None) -> Invitation:
    """The link stops working; a used invitation cannot be revoked (remove the member)."""
    current = _locked(invitation)
    if current.accepted_at is not None:
        raise ValidationError("This invitation has been used already: remove the member instead.")
    if current.revoked_at is None:
        current.revoked_at = timezone.now()
        current.save(update_fields=["revoked_at"])
        record(
            team=current.team,
            actor=by,
            action=Action.INVITATION_REVOKED,
            target=current.email,
            changes={"role": current.role},
        )
    return current


def invitation_by_token(raw: str) -> Invitation | None:
    if not raw.startswith(TOKEN_PREFIX):
        return None
    return (
        Invitation.objects.select_related("team", "invited_by")
        .filter(digest=Invitation.digest_of(raw))
        .first()
    )


def invitation_check(raw: str) -> Invitation:
    """The pending invitation of this link, or InvitationRefused saying why it does not work."""
    invitation = invitation_by_token(raw)
    if invitation is None:
        raise InvitationRefused(REFUSALS["unknown"], code="unknown")
    state = invitation.state_at(timezone.now())
    if state != InvitationState.PENDING:
        raise InvitationRefused(REFUSALS[state], code=state.value)
    return invitation


def _locked_pending(raw: str) -> Invitation:
    invitation = invitation_check(raw)
    locked = _locked(invitation)
    state = locked.state_at(timezone.now())  # it may have been used meanwhile
    if state != InvitationState.PENDING:
        raise InvitationRefused(REFUSALS[state], code=state.value)
    return locked


def addresses_match(invitation: Invitation, user: User) -> bool:
    return bool(user.email) and user.email.strip().casefold() == invitation.email.casefold()


@transaction.atomic
def invitation_accept(*, raw: str, user: User) -> tuple[Membership, bool]:
    """Use the link as `user`, whose address must be the invited one.

    Returns the membership and whether it is new: someone who is a member already keeps
    their membership and role (no second one), and the link is used up all the same.
    """
    invitation = _locked_pending(raw)
    if not addresses_match(invitation, user):
        raise InvitationRefused(
            f"This invitation is for {invitation.email}, and you are signed in as "
            f"{user.get_username()}. Sign out, then sign in as the account with that address.",
            code="wrong_account",
        )
    team_lock(team_id=invitation.team_id)
    membership, created = Membership.objects.get_or_create(
        team=invitation.team, user=user, defaults={"role": invitation.role}
    )
    invitation.accepted_at = timezone.now()
    invitation.accepted_by = user
    invitation.save(update_fields=["accepted_at", "accepted_by"])
    if created:
        record(
            team=invitation.team,
            actor=user,
            action=Action.MEMBER_ADDED,
            target=user.get_username(),
            changes={"role": invitation.role, "via": f"the invitation to {invitation.email}"},
        )
    return membership, created


@transaction.atomic
def invitation_sign_up(
    *, raw: str, username: str, name: str, password: str
) -> tuple[User, Membership]:
    """Create the account of the invited address and use the link with it."""
    invitation = _locked_pending(raw)
    if email_in_use(invitation.email):
        raise InvitationRefused(
            f"An account with {invitation.email} exists already: sign in with it to accept.",
            code="account_exists",
        )
    user = account_create(username=username, name=name, email=invitation.email, password=password)
    membership, _ = invitation_accept(raw=raw, user=user)
    return user, membership


def invitation_email_send(*, invitation_id: int, raw: str) -> None:
    """Send the invitation's email (called on commit); record when it left or why it did not."""
    invitation = Invitation.objects.select_related("team", "invited_by").filter(pk=invitation_id)
    found = invitation.first()
    if found is None:
        return
    context = {
        "invitation": found,
        "team": found.team,
        "link": invitation_link(raw),
        "inviter": found.invited_by,
        "days": invitation_days(),
    }
    subject = f"You are invited to {found.team.name} on Leakseal"
    body = render_to_string("teams/email/invitation.txt", context)
    try:
        send_mail(subject, body, None, [found.email])
    except Exception as exc:
        logger.warning("invitation %s: the email to its address was not sent: %s", found.pk, exc)
        error = f"The email could not be sent: {exc}"[:300]
        invitation.update(send_error=error)
        return
    invitation.update(sent_at=timezone.now(), send_error="")
