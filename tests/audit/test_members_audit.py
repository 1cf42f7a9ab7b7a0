"""Issue 11, point 5, for the team and its people: creating a team, inviting, resending,
revoking, joining, changing a role and removing someone each write one audit entry in the
transaction of the change; a refused change writes none."""

import pytest
from django.contrib.auth.models import User
from django.core.exceptions import ValidationError

from audit.models import Action, AuditEntry
from teams import invitations
from teams.models import Role
from teams.services import (
    membership_remove,
    membership_role_change,
    team_create,
    team_join_by_link,
    team_join_link_sign_up_set,
)

STRONG = "Blue-harbour-lantern-42"


def entries(team, action) -> list[AuditEntry]:
    return list(AuditEntry.objects.filter(team=team, action=action))


@pytest.mark.django_db
def test_creating_a_team_is_its_first_entry():
    zoe = User.objects.create_user("zoe", password=STRONG)
    team = team_create(name="Payments", slug="payments", admin=zoe, stages=["Unit", "E2E"])
    (entry,) = AuditEntry.objects.filter(team=team)
    assert (entry.action, entry.actor, entry.target) == (
        Action.TEAM_CREATED,
        zoe,
        "Payments (payments)",
    )
    assert entry.changes["stages"] == ["Unit", "E2E"]


def test_a_role_change_and_a_removal_name_who_and_what(team, owner, member):
    membership = member.memberships.get(team=team)
    membership_role_change(membership=membership, role=Role.VIEWER, by=owner)
    (changed,) = entries(team, Action.MEMBER_ROLE_CHANGED)
    assert changed.actor == owner and changed.target == member.username
    assert changed.changes == {"role": {"from": Role.MEMBER, "to": Role.VIEWER}}

    membership_remove(membership=member.memberships.get(team=team), by=owner)
    (removed,) = entries(team, Action.MEMBER_REMOVED)
    assert removed.changes == {"role": Role.VIEWER} and removed.target == member.username


def test_a_refused_change_writes_no_entry(team, owner):
    with pytest.raises(ValidationError):
        membership_role_change(
            membership=owner.memberships.get(team=team), role=Role.MEMBER, by=owner
        )
    assert not entries(team, Action.MEMBER_ROLE_CHANGED)


def test_invitations_from_sent_to_used_and_no_token_kept(team, owner):
    invitation, raw = invitations.invitation_create(
        team=team, email="ria@example.com", role=Role.MEMBER, by=owner
    )
    _, new_raw = invitations.invitation_resend(invitation=invitation, by=owner)
    user, _ = invitations.invitation_sign_up(
        raw=new_raw, username="ria", name="Ria", password=STRONG
    )
    (invited,) = entries(team, Action.MEMBER_INVITED)
    (resent,) = entries(team, Action.INVITATION_RESENT)
    (added,) = entries(team, Action.MEMBER_ADDED)
    assert invited.target == resent.target == "ria@example.com"
    assert invited.actor == resent.actor == owner
    assert added.actor == user and added.changes["role"] == Role.MEMBER
    for entry in AuditEntry.objects.filter(team=team):
        assert raw not in str(entry.changes) and new_raw not in str(entry.changes)

    other, _ = invitations.invitation_create(
        team=team, email="sam@example.com", role=Role.VIEWER, by=owner
    )
    invitations.invitation_revoke(invitation=other, by=owner)
    invitations.invitation_revoke(invitation=other, by=owner)  # revoked once: one entry
    (revoked,) = entries(team, Action.INVITATION_REVOKED)
    assert revoked.target == "sam@example.com"


def test_the_join_link_setting_and_who_joined_by_it(team, owner, outsider):
    team_join_link_sign_up_set(team=team, allowed=True, by=owner)
    team_join_link_sign_up_set(team=team, allowed=True, by=owner)  # no change, no entry
    (setting,) = entries(team, Action.JOIN_LINK_SIGN_UP_CHANGED)
    assert setting.changes == {"join link sign-up": {"from": False, "to": True}}
    assert setting.change_lines() == [("join link sign-up", "off → on")]
    team_join_by_link(team=team, user=outsider)
    team_join_by_link(team=team, user=outsider)  # a member already: nothing new
    (joined,) = entries(team, Action.MEMBER_ADDED)
    assert joined.actor == outsider and joined.changes["via"] == "a retro's join link"
