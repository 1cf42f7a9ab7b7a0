"""The signed-in person's own notice settings ("Your settings"): no team scope, only their own
preferences, and only teams they belong to can be chosen for a digest. Their "all my teams"
digest belongs to no team's delivery log, so they send a failed one again from here."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.contrib.auth.models import User
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from notices.models import NoticeState
from notices.preferences import preferences_of, preferences_save
from notices.selectors import emails_to, own_digests
from notices.services import notice_resend
from teams.models import Team
from teams.selectors import teams_for_user


class NoticeSettingsForm(forms.Form):
    mute_reminders = forms.BooleanField(
        label="Mute reminders about my preventative actions",
        required=False,
        help_text="Reminders come by email two days before an action is due, on its due date "
        "and daily while it is overdue, at 09:00 in its team's time zone. Muted, your actions are "
        "also left out of the daily reminder your teams' chat channels get.",
    )
    digest_all_teams = forms.BooleanField(
        label="Weekly digest of all my teams",
        required=False,
        help_text="One email on Monday at 09:00 in the time zone of your first team "
        "(alphabetically), covering every team you belong to.",
    )
    digest_teams = forms.ModelMultipleChoiceField(
        label="Or a weekly digest of these teams",
        queryset=Team.objects.none(),
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="One email per team, on Monday at 09:00 in that team's time zone.",
    )

    def __init__(self, *args: Any, user: User, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields["digest_teams"]
        assert isinstance(field, forms.ModelMultipleChoiceField)
        field.queryset = teams_for_user(user)

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if data.get("digest_all_teams") and data.get("digest_teams"):
            raise forms.ValidationError(
                "Choose either the digest of all your teams or digests of some teams, not both."
            )
        return data


def _user(request: HttpRequest) -> User:
    assert isinstance(request.user, User), "behind login_required"
    return request.user


@require_http_methods(["GET", "POST"])
@login_required
def notice_settings(request: HttpRequest) -> HttpResponse:
    user = _user(request)
    if request.method == "POST":
        form = NoticeSettingsForm(request.POST, user=user)
        if form.is_valid():
            preferences_save(user=user, **form.cleaned_data)
            messages.success(request, "Your notification settings are saved.")
            return redirect("notice_settings")
    else:
        prefs = preferences_of(user)
        initial = {
            "mute_reminders": prefs.mute_reminders,
            "digest_all_teams": prefs.digest_all_teams,
            "digest_teams": list(prefs.digest_teams.all()) if prefs.pk else [],
        }
        form = NoticeSettingsForm(initial=initial, user=user)
    context = {"form": form, "emails": emails_to(user)}
    return render(request, "notices/settings.html", context)


@require_POST
@login_required
def own_digest_resend(request: HttpRequest, pk: int) -> HttpResponse:
    """Send one's own failed or interrupted "all my teams" digest again; anyone else's is a 404."""
    notice = get_object_or_404(own_digests(_user(request)), pk=pk)
    resent = notice_resend(notice=notice)
    if resent.state == NoticeState.PENDING:
        messages.success(request, f"“{notice.subject}” will be sent again in a moment.")
    return redirect("notice_settings")
