"""The team's daily action reminder in chat: at 09:00 in the team's time zone, one message to
each chat channel that asked for it (notices/chat.py), grouping the actions due today, due in
two days and overdue, each line naming its owner as the one to act.

It is the channel's side of retros/reminders.py: the same days (reminders.DAYS_BEFORE before
the due date, on it, and every day after it until done), the same meaning of done (`done_at`
set, by marking the action done or by the sync when its ticket is done), and the same
"Mute reminders" setting: an owner who muted their reminders is not listed here either.
Actions without an owner are listed (the team has to pick them up); so are those of an owner
who left the team, whom email no longer reaches. Only a closed retro's actions count: an open
retro's are still being agreed.

`notices.tick` calls `action_reminders_to_chat` every few minutes; the occasion names the
team's local date, so the many ticks of a day make one message per channel (the outbox
refuses the same occasion twice) and the slot stays 09:00 local across daylight-saving
changes. One message per channel and day, rather than one per action: a channel is read by
the whole team, and a dozen posts each morning would teach it to mute Leakseal.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from django.conf import settings
from django.contrib.auth.models import User
from django.db import transaction
from django.urls import reverse

from notices.chat import chat_notices_enqueue, chat_team_ids
from notices.models_chat import ChatEvent
from notices.preferences import reminders_muted
from notices.schedule import local_slot_passed, scheduled
from retros.models import Phase, PreventativeAction
from retros.reminders import DAYS_BEFORE, REMINDER_AT
from teams.models import Team
from teams.selectors import teams_all

MAX_LISTED = 25  # per group: the message stays readable; Leakseal has the rest


@dataclass
class DueActions:
    """A team's open actions of a local day that its chat is reminded of, by group."""

    today: list[PreventativeAction] = field(default_factory=list)
    soon: list[PreventativeAction] = field(default_factory=list)  # due in DAYS_BEFORE days
    overdue: list[PreventativeAction] = field(default_factory=list)  # longest overdue first

    def __len__(self) -> int:
        return len(self.today) + len(self.soon) + len(self.overdue)


def actions_due_for_chat(team: Team, today: date) -> DueActions:
    """The closed retros' actions of `team` not done, due today, in DAYS_BEFORE days or
    overdue on its local `today`, without those whose owner muted reminders."""
    actions = list(
        PreventativeAction.objects.filter(
            retro__team=team,
            retro__phase=Phase.CLOSED,
            done_at__isnull=True,
            due_date__lte=today + timedelta(days=DAYS_BEFORE),
        )
        .select_related("owner", "escape")
        .order_by("due_date", "pk")
    )
    muted = reminders_muted({a.owner_id for a in actions if a.owner_id is not None})
    due = DueActions()
    for action in actions:
        if action.owner_id in muted:
            continue
        assert action.due_date is not None  # filtered on it
        if action.due_date < today:
            due.overdue.append(action)
        elif action.due_date == today:
            due.today.append(action)
        elif action.due_date == today + timedelta(days=DAYS_BEFORE):
            due.soon.append(action)
        # Due tomorrow: its owner was reminded yesterday and is again on the day, as by email.
    return due


def _owner(user: User | None) -> str:
    if user is None:
        return "No owner (someone needs to take it)"
    return user.get_full_name() or user.get_username()


def _days(count: int) -> str:
    return f"{count} day{'s' if count != 1 else ''}"


def _line(action: PreventativeAction, team: Team, today: date) -> str:
    """One action: whose it is first, then what, for which escape, how late, and its link."""
    assert action.due_date is not None
    url = settings.SITE_URL + reverse(
        "retro_summary", kwargs={"team": team.slug, "pk": action.retro_id}
    )
    late = (today - action.due_date).days
    if late > 0:
        when = f"{_days(late)} overdue, due {action.due_date:%Y-%m-%d}"
    else:
        when = f"due {action.due_date:%a %Y-%m-%d}"
    ticket = f", ticket {action.external_key}" if action.external_key else ""
    return (
        f"{_owner(action.owner)}: {action.title} (escape: {action.escape.title}; {when}"
        f"{ticket}) {url}#escape-{action.escape_id}"
    )


def _capped(lines: list[str]) -> list[str]:
    if len(lines) <= MAX_LISTED:
        return lines
    return [*lines[:MAX_LISTED], f"…and {len(lines) - MAX_LISTED} more in Leakseal"]


def _title(due: DueActions) -> str:
    counts = [
        (len(due.today), "due today"),
        (len(due.soon), f"due in {DAYS_BEFORE} days"),
        (len(due.overdue), "overdue"),
    ]
    said = ", ".join(f"{count} {what}" for count, what in counts if count)
    return f"Preventative actions: {said}"


def reminder_payload(team: Team, due: DueActions, today: date) -> dict[str, object]:
    groups = [
        ("Due today", due.today),
        (f"Due in {DAYS_BEFORE} days", due.soon),
        ("Overdue", due.overdue),
    ]
    dashboard = f"{settings.SITE_URL}{reverse('team_home', kwargs={'team': team.slug})}"
    return {
        "title": _title(due),
        "lines": [
            f"Team {team.name}: each action's owner, named first, is the one to act. When the "
            "work is done, close its ticket (or mark the action done in Leakseal) and it "
            "leaves this list."
        ],
        "sections": [
            {"heading": heading, "items": _capped([_line(a, team, today) for a in actions])}
            for heading, actions in groups
            if actions
        ],
        "link": {"text": "Open Leakseal", "url": dashboard},
    }


def team_reminders_to_chat(team: Team, now: datetime) -> int:
    """Enqueue today's reminder message of `team` if its 09:00 has come and some action is
    due or overdue; returns how many notices (one per channel that gets it) were new."""
    if not local_slot_passed(now, team.tzinfo, REMINDER_AT):
        return 0
    today = now.astimezone(team.tzinfo).date()
    with transaction.atomic():
        due = actions_due_for_chat(team, today)
        if not due:
            return 0
        payload = reminder_payload(team, due, today)
        notices = chat_notices_enqueue(
            team=team,
            # The occasion keeps the name it had when the message listed only overdue actions,
            # so the day of an upgrade does not post twice.
            occasion=f"actions-overdue:{team.pk}:{today.isoformat()}",
            kind=ChatEvent.ACTION_OVERDUE,
            subject=str(payload["title"]),
            payload=payload,
        )
    return len(notices)


@scheduled
def action_reminders_to_chat(now: datetime) -> int:
    team_ids = chat_team_ids(ChatEvent.ACTION_OVERDUE)
    if not team_ids:
        return 0
    return sum(
        team_reminders_to_chat(team, now)
        for team in teams_all().filter(pk__in=team_ids).order_by("pk")
    )
