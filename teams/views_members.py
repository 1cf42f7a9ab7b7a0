"""The team's members page, for its admins: invite by email, resend and revoke invitations,
change roles, remove members, and the join-link setting.

Plain forms (no htmx): each write redirects back with a message, or renders the page again
with the refusal beside the control that was used.
"""

from typing import Any

from django.contrib import messages
from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

from teams.decorators import team_view
from teams.forms import InviteForm, JoinLinkForm, RoleForm, add_errors
from teams.invitations import (
    invitation_create,
    invitation_days,
    invitation_resend,
    invitation_revoke,
)
from teams.models import Invitation, InvitationState, Membership
from teams.selectors import team_invitations, team_members
from teams.services import (
    membership_remove,
    membership_role_change,
    team_join_link_sign_up_set,
)

TEMPLATE = "teams/members.html"


def _user(request: HttpRequest) -> User:
    assert isinstance(request.user, User), "behind team_view"
    return request.user


def _page(request: HttpRequest, membership: Membership, **context: Any) -> HttpResponse:
    team = membership.team
    now = timezone.now()
    rows = []
    for member in team_members(team):
        form = context.get("role_forms", {}).get(member.pk) or RoleForm(
            initial={"role": member.role}, prefix=f"m{member.pk}"
        )
        rows.append(
            {"member": member, "form": form, "error": context.get("errors", {}).get(member.pk)}
        )
    invitations = [
        {
            "invitation": i,
            "state": i.state_at(now),
            "error": context.get("invite_errors", {}).get(i.pk),
        }
        for i in team_invitations(team)
    ]
    context.update(
        team=team,
        membership=membership,
        rows=rows,
        invitations=invitations,
        pending=InvitationState.PENDING,
        expired=InvitationState.EXPIRED,
        invitation_days=invitation_days(),
    )
    context.setdefault("invite_form", InviteForm())
    context.setdefault("join_form", JoinLinkForm(initial={"allowed": team.join_link_sign_up}))
    return render(request, TEMPLATE, context)


def _back(membership: Membership) -> HttpResponse:
    return redirect("team_members", team=membership.team.slug)


def _sent_message(request: HttpRequest, invitation: Invitation, verb: str) -> None:
    invitation.refresh_from_db(fields=["sent_at", "send_error"])
    if invitation.send_error:
        messages.error(
            request,
            f"The invitation to {invitation.email} is saved, but {invitation.send_error[0].lower()}"
            f"{invitation.send_error[1:]} Try Resend later.",
        )
    else:
        messages.success(request, f"Invitation {verb} to {invitation.email}.")


@require_GET
@team_view(admin=True)
def members(request: HttpRequest, membership: Membership) -> HttpResponse:
    return _page(request, membership)


@require_POST
@team_view(admin=True)
def invite(request: HttpRequest, membership: Membership) -> HttpResponse:
    form = InviteForm(request.POST)
    if form.is_valid():
        try:
            invitation, _ = invitation_create(
                team=membership.team,
                email=form.cleaned_data["email"],
                role=form.cleaned_data["role"],
                by=_user(request),
            )
        except ValidationError as exc:
            add_errors(form, exc)
        else:
            _sent_message(request, invitation, "sent")
            return _back(membership)
    return _page(request, membership, invite_form=form)


@require_POST
@team_view(admin=True)
def invitation_resend_view(request: HttpRequest, membership: Membership, pk: int) -> HttpResponse:
    invitation = get_object_or_404(Invitation, pk=pk, team=membership.team)
    try:
        new, _ = invitation_resend(invitation=invitation, by=_user(request))
    except ValidationError as exc:
        return _page(request, membership, invite_errors={pk: " ".join(exc.messages)})
    _sent_message(request, new, "sent again, with a new link,")
    return _back(membership)


@require_POST
@team_view(admin=True)
def invitation_revoke_view(request: HttpRequest, membership: Membership, pk: int) -> HttpResponse:
    invitation = get_object_or_404(Invitation, pk=pk, team=membership.team)
    try:
        invitation_revoke(invitation=invitation, by=_user(request))
    except ValidationError as exc:
        return _page(request, membership, invite_errors={pk: " ".join(exc.messages)})
    messages.success(
        request, f"Invitation to {invitation.email} revoked: its link no longer works."
    )
    return _back(membership)


@require_POST
@team_view(admin=True)
def member_role(request: HttpRequest, membership: Membership, pk: int) -> HttpResponse:
    target = get_object_or_404(
        Membership.objects.select_related("user", "team"), pk=pk, team=membership.team
    )
    form = RoleForm(request.POST, prefix=f"m{target.pk}")
    if form.is_valid():
        try:
            changed = membership_role_change(
                membership=target, role=form.cleaned_data["role"], by=_user(request)
            )
        except ValidationError as exc:
            form.add_error("role", exc.messages)
        else:
            messages.success(
                request,
                f"{target.user.get_username()} is now {changed.get_role_display().lower()}.",
            )
            if changed.user_id == membership.user_id and not changed.is_admin:
                return redirect("team_home", team=membership.team.slug)  # no longer an admin
            return _back(membership)
    return _page(request, membership, role_forms={target.pk: form})


@require_POST
@team_view(admin=True)
def member_remove(request: HttpRequest, membership: Membership, pk: int) -> HttpResponse:
    target = get_object_or_404(
        Membership.objects.select_related("user", "team"), pk=pk, team=membership.team
    )
    try:
        membership_remove(membership=target, by=_user(request))
    except ValidationError as exc:
        return _page(request, membership, errors={target.pk: " ".join(exc.messages)})
    name = target.user.get_username()
    if target.user_id == membership.user_id:
        messages.success(request, f"You left {membership.team.name}.")
        return redirect("home")
    messages.success(request, f"{name} is no longer a member of {membership.team.name}.")
    return _back(membership)


@require_POST
@team_view(admin=True)
def join_link_setting(request: HttpRequest, membership: Membership) -> HttpResponse:
    form = JoinLinkForm(request.POST)
    form.is_valid()
    team = team_join_link_sign_up_set(
        team=membership.team, allowed=form.cleaned_data["allowed"], by=_user(request)
    )
    if team.join_link_sign_up:
        messages.success(
            request,
            "Saved: people with a retro's join link may now create an account and join as members.",
        )
    else:
        messages.success(request, "Saved: a retro's join link now works only for members.")
    return _back(membership)
