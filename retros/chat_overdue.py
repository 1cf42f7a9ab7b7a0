"""Overdue preventative actions, posted once a day to the team's chat channels that asked
for them (notices/chat.py), at 09:00 in the team's time zone.

`notices.tick` calls `overdue_actions_to_chat` every few minutes; the occasion names the
team's local date, so the many ticks of a day make one message (the outbox refuses the same
occasion twice) and the slot stays 09:00 local across daylight-saving changes. One message
per team and day lists every overdue action, rather than one per action: a channel is read
by the whole team, and a dozen posts each morning would teach it to mute Leakseal.
(Reminders to each action's owner, by email, are retros/reminders.py's.)
"""

from __future__ import annotations

from datetime import datetime, time
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db import transaction
from django.urls import reverse

from notices.chat import chat_notices_enqueue, chat_team_ids
from notices.models_chat import ChatEvent
from notices.schedule import local_slot_passed, scheduled
from retros.models import Phase, PreventativeAction
from teams.models import Team
from teams.selectors import teams_all

SLOT = time(9, 0)
MAX_LISTED = 25


def _line(action: PreventativeAction, today_ordinal: int) -> str:
    assert action.due_date is not None
    days = today_ordinal - action.due_date.toordinal()
    owner = (
        (action.owner.get_full_name() or action.owner.get_username())
        if action.owner
        else "no owner"
    )
    ticket = f" — {action.external_key}" if action.external_key else ""
    return (
        f"{action.title} ({owner}; due {action.due_date:%Y-%m-%d}, {days} day"
        f"{'s' if days != 1 else ''} overdue){ticket}"
    )


def team_overdue_to_chat(team: Team, now: datetime) -> int:
    """Enqueue today's overdue message of `team` if its 09:00 has come; how many notices."""
    if not local_slot_passed(now, team.timezone, SLOT):
        return 0
    today = now.astimezone(ZoneInfo(team.timezone)).date()
    overdue = list(
        PreventativeAction.objects.filter(
            retro__team=team,
            retro__phase=Phase.CLOSED,
            done_at__isnull=True,
            due_date__lt=today,
        )
        .select_related("owner", "retro")
        .order_by("due_date", "pk")
    )
    if not overdue:
        return 0
    lines = [_line(a, today.toordinal()) for a in overdue[:MAX_LISTED]]
    if len(overdue) > MAX_LISTED:
        lines.append(f"…and {len(overdue) - MAX_LISTED} more in Leakseal")
    dashboard = f"{settings.SITE_URL}{reverse('team_home', kwargs={'team': team.slug})}"
    title = f"{len(overdue)} preventative action{'s' if len(overdue) != 1 else ''} overdue"
    payload = {
        "title": title,
        "lines": [f"Team {team.name}: these actions are past their due date and not done."],
        "sections": [{"heading": "Overdue", "items": lines}],
        "link": {"text": "Open Leakseal", "url": dashboard},
    }
    with transaction.atomic():
        notices = chat_notices_enqueue(
            team=team,
            occasion=f"actions-overdue:{team.pk}:{today.isoformat()}",
            kind=ChatEvent.ACTION_OVERDUE,
            subject=title,
            payload=payload,
        )
    return len(notices)


@scheduled
def overdue_actions_to_chat(now: datetime) -> int:
    team_ids = chat_team_ids(ChatEvent.ACTION_OVERDUE)
    if not team_ids:
        return 0
    return sum(team_overdue_to_chat(team, now) for team in teams_all().filter(pk__in=team_ids))
