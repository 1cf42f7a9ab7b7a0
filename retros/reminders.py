"""Reminders to an action's owner: two days before its due date, on it, and every day while it
is overdue, at 09:00 in the team's time zone, by email, until the action is done.

"Done" is `done_at` set: by the tracker's sync when the ticket reaches a done status
(integrations/sync.py), or when a member marks it done in Leakseal; a reopened ticket clears it
and the reminders resume. An owner who muted reminders (their settings page) gets none; an
owner without an email address, or who left the team, gets none either.

Each reminder's occasion names the action and the team's local date, so the tick that runs
every few minutes sends each one once (notices/schedule.py). The team's chat channels get the
same reminders, on the same days and with the same mute, as one message a day
(retros/chat_reminders.py), with one difference: the channel lists only closed retros'
actions, while the owner is reminded by email of an action with a due date in an open retro
too (it is theirs; the team's channel waits until the retro has agreed its actions).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from django.conf import settings
from django.db import transaction
from django.template.loader import render_to_string
from django.urls import reverse

from notices.models import Channel
from notices.preferences import reminders_muted
from notices.schedule import local_slot_passed, scheduled
from notices.selectors import occasions_promised
from notices.services import notice_enqueue
from retros.models import PreventativeAction
from teams.models import Team
from teams.selectors import team_member_ids, teams_all

REMINDER_AT = time(9, 0)
DAYS_BEFORE = 2


@dataclass(frozen=True)
class Reminder:
    occasion: str
    subject: str
    when: str  # "is due in 2 days", "is due today", "has been overdue since …"


def reminder_for(action: PreventativeAction, today: date) -> Reminder | None:
    """The reminder an open action's owner gets on the team's local `today`, if any."""
    due = action.due_date
    if due is None:
        return None
    if due == today + timedelta(days=DAYS_BEFORE):
        return Reminder(
            f"action-due-soon:{action.pk}:{today}",
            f"Due in {DAYS_BEFORE} days: {action.title}",
            f"is due in {DAYS_BEFORE} days, on {due:%A %d %B %Y}",
        )
    if due == today:
        return Reminder(
            f"action-due:{action.pk}:{today}",
            f"Due today: {action.title}",
            "is due today",
        )
    if due < today:
        days = (today - due).days
        return Reminder(
            f"action-overdue:{action.pk}:{today}",
            f"Overdue ({days} {'day' if days == 1 else 'days'}): {action.title}",
            f"has been overdue since {due:%A %d %B %Y} ({days} {'day' if days == 1 else 'days'})",
        )
    return None


def open_actions_due_by(team: Team, last: date) -> list[PreventativeAction]:
    """The team's actions not done whose due date is `last` or earlier."""
    return list(
        PreventativeAction.objects.filter(
            retro__team=team, done_at__isnull=True, due_date__isnull=False, due_date__lte=last
        )
        .select_related("owner", "retro", "escape")
        .order_by("due_date", "pk")
    )


def _payload(action: PreventativeAction, reminder: Reminder, team: Team) -> dict[str, str]:
    context = {
        "action": action,
        "team": team,
        "when": reminder.when,
        "retro_url": settings.SITE_URL
        + reverse("retro_summary", kwargs={"team": team.slug, "pk": action.retro_id}),
        "settings_url": settings.SITE_URL + reverse("notice_settings"),
    }
    return {
        "text": render_to_string("notices/email/reminder.txt", context),
        "html": render_to_string("notices/email/reminder.html", context),
    }


def team_reminders(team: Team, today: date) -> int:
    """Enqueue the team's reminders of its local `today`; returns how many were new."""
    enqueued = 0
    with transaction.atomic():
        due = [
            (action, reminder)
            for action in open_actions_due_by(team, today + timedelta(days=DAYS_BEFORE))
            if (reminder := reminder_for(action, today)) is not None
        ]
        owners = {action.owner_id for action, _ in due if action.owner_id}
        members = team_member_ids(team)
        muted = reminders_muted(owners)
        # The tick runs all day: skip what was promised at 09:00 without rendering it again.
        promised = occasions_promised(
            channel=Channel.EMAIL, occasions=[reminder.occasion for _, reminder in due]
        )
        for action, reminder in due:
            owner = action.owner
            if owner is None or not owner.email or owner.pk in muted or owner.pk not in members:
                continue
            if (owner.email, reminder.occasion) in promised:
                continue
            notice = notice_enqueue(
                team=team,
                channel=Channel.EMAIL,
                recipient=owner.email,
                occasion=reminder.occasion,
                kind="reminder",
                subject=reminder.subject,
                payload=_payload(action, reminder, team),
            )
            enqueued += notice is not None
    return enqueued


@scheduled
def send_reminders(now: datetime) -> int:
    """Every team whose local 09:00 has come today gets today's reminders (once)."""
    enqueued = 0
    for team in teams_all().order_by("pk"):
        if local_slot_passed(now, team.tzinfo, REMINDER_AT):
            enqueued += team_reminders(team, now.astimezone(team.tzinfo).date())
    return enqueued
