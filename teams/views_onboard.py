"""Coming in: a signed-in user creates a team; an invited person opens their link.

The invitation page is public (the link is the credential). Opening it (GET) changes
nothing, since mail scanners open links; joining is a POST: "Accept" for a signed-in account
with the invited address, or the sign-up form for someone without an account.
"""

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth.decorators import login_required
from django.contrib.auth.models import User
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods

from teams.forms import SignUpForm, TeamCreateForm, add_errors
from teams.invitations import (
    InvitationRefused,
    addresses_match,
    invitation_accept,
    invitation_by_token,
    invitation_check,
    invitation_sign_up,
)
from teams.models import Invitation, Membership
from teams.services import email_in_use, team_create

# The backend that made the account: login() needs it named, since several are installed.
BACKEND = "django.contrib.auth.backends.ModelBackend"


def sign_in_new_account(request: HttpRequest, user: User) -> None:
    """Sign in an account just created from a sign-up form (an invitation's, a join link's)."""
    login(request, user, backend=BACKEND)


# The refusal page's heading per reason (teams/invitations.py REFUSALS has the message).
REFUSAL_HEADINGS = {
    "unknown": "This invitation link is not valid",
    "accepted": "This invitation link has been used",
    "expired": "This invitation link has expired",
    "revoked": "This invitation was revoked",
    "replaced": "This invitation link was replaced",
    "wrong_account": "This invitation is for someone else",
    "account_exists": "An account with this address exists",
}


@require_http_methods(["GET", "POST"])
@login_required
def team_new(request: HttpRequest) -> HttpResponse:
    form = TeamCreateForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        assert isinstance(request.user, User)
        try:
            team = team_create(
                name=form.cleaned_data["name"],
                slug=form.cleaned_data["slug"],
                timezone_name=form.cleaned_data["timezone"],
                stages=form.stage_names(),
                admin=request.user,
            )
        except ValidationError as exc:
            add_errors(form, exc, aliases={"timezone": "timezone"})
        else:
            messages.success(
                request,
                f"{team.name} is ready and you are its admin. Invite your colleagues below.",
            )
            return redirect("team_members", team=team.slug)
    return render(request, "teams/team_new.html", {"form": form})


def _refused(request: HttpRequest, key: str, exc: InvitationRefused) -> HttpResponse:
    code = exc.code or "unknown"
    context = {
        "heading": REFUSAL_HEADINGS.get(code, "This invitation link does not work"),
        "message": " ".join(exc.messages),
        "code": code,
        # Which team and who sent it, so that "ask a team admin" says whom to ask. The link
        # is the credential and its holder has the email, so this tells them nothing new.
        "invitation": invitation_by_token(key),
    }
    status = {"unknown": 404, "wrong_account": 403, "account_exists": 409}.get(code, 410)
    return render(request, "teams/invitation_refused.html", context, status=status)


def _joined(request: HttpRequest, membership: Membership, created: bool) -> HttpResponse:
    team = membership.team
    if created:
        messages.success(
            request, f"Welcome to {team.name}: you are a {membership.get_role_display().lower()}."
        )
    else:
        messages.info(
            request,
            f"You were a member of {team.name} already "
            f"({membership.get_role_display().lower()}); nothing changed.",
        )
    return redirect("team_home", team=team.slug)


@never_cache
@require_http_methods(["GET", "POST"])
def invitation_open(request: HttpRequest, key: str) -> HttpResponse:
    try:
        invitation = invitation_check(key)
    except InvitationRefused as exc:
        return _refused(request, key, exc)
    user = request.user
    if isinstance(user, User):
        if not addresses_match(invitation, user):
            return _refused(
                request,
                key,
                InvitationRefused(
                    f"This invitation is for {invitation.email}, and you are signed in as "
                    f"{user.get_username()}. Sign out, then sign in as the account with that "
                    "address, or open the link in a private window to create that account.",
                    code="wrong_account",
                ),
            )
        if request.method == "POST":
            try:
                membership, created = invitation_accept(raw=key, user=user)
            except InvitationRefused as exc:
                return _refused(request, key, exc)
            return _joined(request, membership, created)
        return _render(request, invitation, mode="accept")
    if email_in_use(invitation.email) or not settings.PASSWORD_SIGNIN:
        # The invited address has an account, or accounts come only from single sign-on: the
        # person signs in and comes back here to accept.
        if request.method == "POST":
            return redirect_to_login(request.get_full_path())
        return _render(request, invitation, mode="sign_in")
    form = SignUpForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            new_user, membership = invitation_sign_up(raw=key, **form.account())
        except InvitationRefused as exc:
            return _refused(request, key, exc)
        except ValidationError as exc:
            add_errors(form, exc)
        else:
            sign_in_new_account(request, new_user)
            return _joined(request, membership, True)
    return _render(request, invitation, mode="sign_up", form=form)


def _render(
    request: HttpRequest, invitation: Invitation, *, mode: str, form: SignUpForm | None = None
) -> HttpResponse:
    context = {"invitation": invitation, "team_name": invitation.team.name, "mode": mode}
    if form is not None:
        context["form"] = form
    return render(request, "teams/invitation.html", context)
