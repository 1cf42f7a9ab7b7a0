"""A retro's join link for newcomers, when its team allows it (`Team.join_link_sign_up`).

The board's own URL is guessable (team slug and a number) and answers 404 to outsiders, so
it stays closed to them. When the team's admin allows newcomers, the board shares
`/join/<key>/` instead: `key` is the retro's id signed with the site's SECRET_KEY, which no one
can make up. Opening it:

- a member of the team goes straight to the board (their role untouched);
- someone signed out can sign in and come back, or create an account (username, name,
  address, a password that passes Django's validators) and join as a **member**;
- someone signed in who is not a member can join as a **member** with one button.

It never raises a role: the role is always member, set here rather than carried in the link,
and an existing membership (a viewer's) is left as it is. It works while the retro is open
and the team's setting is on; turning the setting off closes every such link at once. With the
setting off, the link sends everyone to the board URL (404 for outsiders, as before).
"""

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.models import User
from django.core import signing
from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods

from retros.models import Retrospective
from teams.forms import SignUpForm, add_errors
from teams.selectors import team_membership
from teams.services import team_join_by_link, team_sign_up_by_link
from teams.views_onboard import sign_in_new_account

SALT = "leakseal.retro-join"


def retro_join_key(retro: Retrospective) -> str:
    return signing.Signer(salt=SALT).sign_object([retro.team_id, retro.pk])


def retro_join_url(retro: Retrospective) -> str:
    return reverse("retro_join", kwargs={"key": retro_join_key(retro)})


def _retro(key: str) -> Retrospective:
    try:
        team_id, retro_id = signing.Signer(salt=SALT).unsign_object(key)
    except (signing.BadSignature, ValueError, TypeError):
        raise Http404("No such join link") from None
    retro = (
        Retrospective.objects.select_related("team").filter(pk=retro_id, team_id=team_id).first()
    )
    if retro is None:
        raise Http404("No such join link")
    return retro


def _board(retro: Retrospective) -> str:
    return reverse("retro_detail", kwargs={"team": retro.team.slug, "pk": retro.pk})


@never_cache
@require_http_methods(["GET", "POST"])
def retro_join(request: HttpRequest, key: str) -> HttpResponse:
    retro = _retro(key)
    team = retro.team
    user = request.user
    if isinstance(user, User) and team_membership(team_id=team.pk, user=user) is not None:
        return redirect(_board(retro))
    if not team.join_link_sign_up:
        return redirect(_board(retro))  # the board URL's own answers: sign in, or 404
    context = {"retro": retro, "team_name": team.name, "key": key}
    if retro.is_closed:
        context["closed"] = True
        return render(request, "retros/join.html", context, status=410)
    if isinstance(user, User):
        if request.method == "POST":
            try:
                team_join_by_link(team=team, user=user)
            except ValidationError as exc:
                context["refusal"] = " ".join(exc.messages)
                return render(request, "retros/join.html", context, status=403)
            return _welcome(request, retro)
        return render(request, "retros/join.html", {**context, "mode": "join"})
    if not settings.PASSWORD_SIGNIN:  # accounts come from single sign-on only
        return render(request, "retros/join.html", {**context, "mode": "sign_in"})
    form = SignUpForm(request.POST or None, with_email=True)
    if request.method == "POST" and form.is_valid():
        try:
            new_user, _ = team_sign_up_by_link(team=team, **form.account())
        except ValidationError as exc:
            add_errors(form, exc)
        else:
            sign_in_new_account(request, new_user)
            return _welcome(request, retro)
    return render(request, "retros/join.html", {**context, "mode": "sign_up", "form": form})


def _welcome(request: HttpRequest, retro: Retrospective) -> HttpResponse:
    messages.success(request, f"Welcome to {retro.team.name}: you are a member.")
    return redirect(_board(retro))
