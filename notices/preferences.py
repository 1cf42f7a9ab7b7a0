"""Each person's notice preferences: muted reminders, weekly digest subscriptions."""

from __future__ import annotations

from collections.abc import Iterable

from django.contrib.auth.models import User
from django.db import transaction

from notices.models import NoticePreferences
from teams.models import Team


def preferences_of(user: User) -> NoticePreferences:
    """The person's preferences; an unsaved row with the defaults when they never chose."""
    found = NoticePreferences.objects.filter(user=user).first()
    return found or NoticePreferences(user=user)


def reminders_muted(user_ids: Iterable[int]) -> set[int]:
    """Of these users, those who muted reminders."""
    return set(
        NoticePreferences.objects.filter(
            user_id__in=list(user_ids), mute_reminders=True
        ).values_list("user_id", flat=True)
    )


def digest_subscriptions() -> list[NoticePreferences]:
    """Everyone who subscribed to a digest, their teams fetched."""
    from django.db.models import Q

    return list(
        NoticePreferences.objects.filter(Q(digest_all_teams=True) | Q(digest_teams__isnull=False))
        .distinct()
        .select_related("user")
        .prefetch_related("digest_teams")
        .order_by("pk")
    )


@transaction.atomic
def preferences_save(
    *, user: User, mute_reminders: bool, digest_all_teams: bool, digest_teams: Iterable[Team]
) -> NoticePreferences:
    prefs, _ = NoticePreferences.objects.select_for_update().get_or_create(user=user)
    prefs.mute_reminders = mute_reminders
    prefs.digest_all_teams = digest_all_teams
    prefs.save()
    prefs.digest_teams.set([] if digest_all_teams else list(digest_teams))
    return prefs
