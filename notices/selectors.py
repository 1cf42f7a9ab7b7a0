"""Reading the outbox from other apps."""

from typing import Any

from django.db.models import Q, QuerySet

from notices.models import Channel, Notice


def notice_promised(*, channel: str, recipient: str, occasion: str) -> bool:
    """Whether this recipient has a notice of this occasion on this channel already."""
    return Notice.objects.filter(
        channel=str(channel), recipient=recipient, occasion=occasion
    ).exists()


def occasions_promised(*, channel: str, occasions: list[str]) -> set[tuple[str, str]]:
    """Of these occasions, the (recipient, occasion) pairs promised on this channel already."""
    rows = Notice.objects.filter(channel=str(channel), occasion__in=occasions).values_list(
        "recipient", "occasion"
    )
    return set(rows)


def emails_to(user: Any, *, limit: int = 10) -> list[Notice]:
    """The latest emails Leakseal sent, or is trying to send, to this person: those of the
    teams they belong to, and their "all my teams" digests, which belong to no team's log."""
    if not user.email:
        return []
    of_their_teams = Q(team__memberships__user=user, recipient__iexact=user.email)
    rows = Notice.objects.filter(channel=Channel.EMAIL).filter(_own_digests(user) | of_their_teams)
    return list(rows.select_related("team").order_by("-created_at", "-pk")[:limit])


def own_digests(user: Any) -> QuerySet[Notice]:
    """The person's "all my teams" digests (no team: they are in no team's delivery log)."""
    return Notice.objects.filter(_own_digests(user), channel=Channel.EMAIL)


def _own_digests(user: Any) -> Q:
    return Q(team__isnull=True, occasion__startswith=f"digest-all:{user.pk}:")


def latest_notice(*, channel: str, occasion_prefix: str) -> Notice | None:
    """The newest notice on this channel whose occasion starts with the prefix (the last
    publish of a retro's summary, "retro-summary:<retro>:")."""
    return (
        Notice.objects.filter(channel=str(channel), occasion__startswith=occasion_prefix)
        .order_by("-created_at", "-pk")
        .first()
    )
