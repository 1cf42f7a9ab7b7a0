"""Reminders to an action's owner (retros/reminders.py): two days before its due date, on it,
and daily while overdue, at 09:00 in the team's zone, once each, until the action is done;
muted in the owner's settings. The tick is driven with explicit UTC instants."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from django.conf import settings
from django.contrib.auth.models import User
from django.utils import timezone

from notices import delivery
from notices.models import Notice, NoticeState
from notices.preferences import preferences_save
from notices.schedule import run_all
from retros.models import PreventativeAction, Retrospective
from teams.models import Role
from teams.services import membership_set

# The team (tests/conftest.py) is in Europe/Berlin: on 10 December 2026 09:00 there is 08:00 UTC.
DAY = date(2026, 12, 10)
BEFORE_NINE = datetime(2026, 12, 10, 7, 59, tzinfo=UTC)
AT_NINE = datetime(2026, 12, 10, 8, 0, tzinfo=UTC)


@pytest.fixture
def ada(team) -> User:
    user = User.objects.create_user("ada", "ada@example.test", "pw")
    membership_set(team=team, user=user, role=Role.MEMBER)
    return user


@pytest.fixture
def act(team, owner, escape, ada):
    retro = Retrospective.objects.create(team=team, title="November retro", facilitator=owner)

    def make(due: date | None, title: str = "Guard", **fields) -> PreventativeAction:
        fields.setdefault("owner", ada)
        return PreventativeAction.objects.create(
            retro=retro, escape=escape, kind="new_test", title=title, due_date=due, **fields
        )

    return make


def occasions() -> list[str]:
    return sorted(Notice.objects.values_list("occasion", flat=True))


def test_reminders_come_before_on_and_after_the_due_date_at_nine_local(act):
    soon = act(DAY + timedelta(days=2), "Soon")
    act(DAY + timedelta(days=1), "Tomorrow")  # nothing the day before the due date
    today = act(DAY, "Today")
    late = act(DAY - timedelta(days=3), "Late")
    act(DAY - timedelta(days=1), "Done", done_at=timezone.now())
    act(None, "No due date")
    assert run_all(BEFORE_NINE) == 0 and occasions() == []
    assert run_all(AT_NINE) == 3
    assert occasions() == sorted(
        [
            f"action-due-soon:{soon.pk}:2026-12-10",
            f"action-due:{today.pk}:2026-12-10",
            f"action-overdue:{late.pk}:2026-12-10",
        ]
    )
    late_notice = Notice.objects.get(occasion__startswith="action-overdue")
    assert late_notice.recipient == "ada@example.test" and late_notice.kind == "reminder"
    assert late_notice.subject == "Overdue (3 days): Late"
    assert "overdue since Monday 07 December 2026" in late_notice.payload["text"]
    summary = f"{settings.SITE_URL}/t/checkout/retros/{late.retro_id}/summary/"
    assert summary in late_notice.payload["text"]  # an absolute link, from SITE_URL
    # Every later tick of the day promises nothing new: one notice per owner and occasion.
    assert run_all(AT_NINE + timedelta(minutes=5)) == 0
    assert run_all(datetime(2026, 12, 10, 22, 55, tzinfo=UTC)) == 0
    assert Notice.objects.count() == 3


def test_an_overdue_action_is_reminded_daily_until_it_is_done(act):
    late = act(DAY - timedelta(days=1))
    run_all(AT_NINE)
    run_all(AT_NINE + timedelta(days=1))
    assert occasions() == [
        f"action-overdue:{late.pk}:2026-12-10",
        f"action-overdue:{late.pk}:2026-12-11",
    ]
    late.done_at = timezone.now()  # its ticket is done (or it was marked done in Leakseal)
    late.save()
    assert run_all(AT_NINE + timedelta(days=2)) == 0


def test_a_muted_owner_a_former_member_and_no_address_get_nothing(act, ada, team, other_team):
    act(DAY)
    preferences_save(user=ada, mute_reminders=True, digest_all_teams=False, digest_teams=[])
    assert run_all(AT_NINE) == 0
    preferences_save(user=ada, mute_reminders=False, digest_all_teams=False, digest_teams=[])
    nobody = User.objects.create_user("nobody", "", "pw")
    membership_set(team=team, user=nobody, role=Role.MEMBER)
    act(DAY, owner=nobody)
    gone = User.objects.create_user("gone", "gone@example.test", "pw")
    membership_set(team=other_team, user=gone, role=Role.MEMBER)  # not of this team
    act(DAY, owner=gone)
    assert run_all(AT_NINE) == 1
    assert Notice.objects.get().recipient == "ada@example.test"


def test_a_reminder_goes_out_over_real_smtp(act, smtp):
    act(DAY, "Add the missing contract test")
    run_all(AT_NINE)
    notice = Notice.objects.get()
    assert delivery.deliver(notice.pk) == "sent"
    notice.refresh_from_db()
    assert notice.state == NoticeState.SENT
    (message,) = smtp.received
    assert message["To"] == "ada@example.test"
    assert message["Subject"] == "Due today: Add the missing contract test"
    parts = {part.get_content_type(): part for part in message.walk()}
    text = parts["text/plain"].get_content()
    assert "“Add the missing contract test” is due today." in text
    assert "/settings/notifications/" in text
    assert "November retro</a>" in parts["text/html"].get_content()
