"""The weekly digest (insights/digest.py): the dashboard's numbers of the week that ended,
sent Monday 09:00 in the team's zone, across daylight-saving changes, once per subscriber and
Monday; an email with a chart (PNG, inline by Content-ID), HTML tables and a plain text."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta

import pytest
from django.conf import settings
from django.contrib.auth.models import User
from PIL import Image

from escapes.models import Category
from notices import delivery
from notices.models import Notice
from notices.preferences import preferences_save
from notices.schedule import run_all
from retros.models import ActionKind, Phase, PreventativeAction, Retrospective
from teams.models import Role
from teams.services import membership_set
from tests.dashboard import add, utc


def at(year: int, month: int, day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


@pytest.fixture
def manager(team) -> User:
    user = User.objects.create_user("mara", "mara@example.test", "pw")
    membership_set(team=team, user=user, role=Role.VIEWER)
    return user


def subscribe(user, *, teams=(), all_teams=False) -> None:
    preferences_save(
        user=user, mute_reminders=False, digest_all_teams=all_teams, digest_teams=teams
    )


def digests() -> list[Notice]:
    return list(Notice.objects.filter(kind="digest").order_by("pk"))


def test_the_digest_reports_the_week_and_goes_out_over_real_smtp(team, manager, stages, smtp):
    subscribe(manager, teams=[team])
    unit = stages[0]
    # The week Monday 30 November – Sunday 6 December 2026 (Berlin), sent Monday 7 December.
    add(
        team,
        utc(2026, 12, 1, 10),
        deficit=timedelta(hours=2),
        category=Category.COVERAGE_GAP,
        stage=unit,
    )
    add(team, utc(2026, 12, 6, 12), deficit=timedelta(hours=4), category=Category.COVERAGE_GAP)
    add(team, utc(2026, 12, 6, 23, 30), deficit=timedelta(hours=9))  # Monday 7th in Berlin
    add(team, utc(2026, 11, 10, 10), deficit=timedelta(hours=6))  # the four weeks before
    # Actions done in the week (Berlin days): Tuesday 1st counts; Sunday 29 November and
    # 23:30 UTC on Sunday 6th (Monday 7th in Berlin) do not; an open one does not.
    retro = Retrospective.objects.create(
        team=team, title="Retro", phase=Phase.CLOSED, facilitator=manager
    )
    earlier = add(team, utc(2026, 6, 1, 10))  # in the twelve months, not in the trend
    for done_at in (utc(2026, 12, 1, 9), utc(2026, 11, 29, 12), utc(2026, 12, 6, 23, 30), None):
        PreventativeAction.objects.create(
            retro=retro, escape=earlier, kind=ActionKind.values[0], title="A", done_at=done_at
        )
    assert run_all(at(2026, 12, 7, 7, 55)) == 0  # 08:55 in Berlin
    assert run_all(at(2026, 12, 7, 8, 0)) == 1
    assert run_all(at(2026, 12, 7, 8, 5)) == 0  # the same Monday: nothing new
    (notice,) = digests()
    assert notice.team == team and notice.recipient == "mara@example.test"
    assert notice.occasion == f"digest:{team.pk}:2026-12-07"
    assert delivery.deliver(notice.pk) == "sent"

    (message,) = smtp.received
    assert message["To"] == "mara@example.test"
    assert message["Subject"] == "Weekly digest, Checkout: 30 Nov – 06 Dec 2026"
    parts = {part.get_content_type(): part for part in message.walk()}
    text = parts["text/plain"].get_content()
    assert "Escapes of the week: 2" in text
    assert "Coverage Gap: 2" in text and f"{unit.name}: 1" in text and "Unattributed: 1" in text
    assert "MTTD of the week: 3 h" in text  # (2 h + 4 h) / 2
    assert "50 % shorter than the four weeks before (6 h, n = 1)" in text
    assert "2026-W49: 3 h (n = 2)" in text and "2026-W46: 6 h (n = 1)" in text
    dashboard = f"{settings.SITE_URL}/t/checkout/dashboard/?start=2026-01-01&end=2026-12-06"
    register = f"{settings.SITE_URL}/t/checkout/escapes/?detected_from=2026-11-30"
    assert dashboard in text and register in text
    assert "Re-escapes detected this week: 0" in text
    assert "Preventative actions done this week: 1" in text
    assert "actions 4, done 3, overdue today 0" in text  # the twelve months' follow-through
    html = parts["text/html"].get_content()
    assert "<caption" in html and "Escapes of the week by category" in html
    assert ">Coverage Gap</td>" in html and 'src="cid:mttd-chart"' in html
    assert html.count("<tr>") >= 4 + len(stages) + 1 + 5
    image = parts["image/png"]
    assert image["Content-ID"] == "<mttd-chart>"
    chart = Image.open(io.BytesIO(image.get_content()))
    assert chart.format == "PNG" and chart.size == (560, 220)


@pytest.mark.parametrize(
    ("before", "on_time", "local"),
    [
        # Winter time (UTC+1) before 29 March 2026: Monday 23 March 09:00 is 08:00 UTC.
        (at(2026, 3, 23, 7, 55), at(2026, 3, 23, 8, 0), "2026-03-23"),
        # Summer time (UTC+2) from 29 March: Monday 30 March 09:00 is 07:00 UTC.
        (at(2026, 3, 30, 6, 55), at(2026, 3, 30, 7, 0), "2026-03-30"),
        # Summer time until 25 October 2026: Monday 19 October 09:00 is 07:00 UTC.
        (at(2026, 10, 19, 6, 55), at(2026, 10, 19, 7, 0), "2026-10-19"),
        # Winter time again: Monday 26 October 09:00 is 08:00 UTC (07:00 UTC is 08:00 there).
        (at(2026, 10, 26, 7, 0), at(2026, 10, 26, 8, 0), "2026-10-26"),
    ],
)
def test_a_berlin_digest_goes_out_at_monday_nine_local_across_dst(
    team, manager, before, on_time, local
):
    subscribe(manager, teams=[team])
    assert run_all(before - timedelta(days=1, hours=-3)) == 0  # Sunday: never
    assert run_all(before) == 0
    assert run_all(on_time) == 1
    assert run_all(on_time + timedelta(hours=14, minutes=55)) == 0  # later that Monday
    (notice,) = digests()
    assert notice.occasion == f"digest:{team.pk}:{local}"


def test_all_my_teams_is_one_digest_at_nine_in_the_first_teams_zone(
    team, other_team, manager, stages
):
    membership_set(team=other_team, user=manager, role=Role.MEMBER)
    subscribe(manager, all_teams=True)
    add(team, utc(2026, 12, 2, 10), deficit=timedelta(hours=1))
    add(other_team, utc(2026, 12, 3, 10), deficit=timedelta(hours=3))
    # Checkout (Europe/Berlin) comes before Search (UTC) by name: 09:00 Berlin = 08:00 UTC.
    assert run_all(at(2026, 12, 7, 7, 55)) == 0
    assert run_all(at(2026, 12, 7, 8, 0)) == 1
    assert run_all(at(2026, 12, 7, 9, 0)) == 0  # Search's 09:00 sends nothing more
    (notice,) = digests()
    assert notice.team is None and notice.subject.startswith("Weekly digest, Checkout, Search:")
    assert "Escapes of the week: 2" in notice.payload["text"]
    assert f"{settings.SITE_URL}/dashboard/?start=" in notice.payload["text"]
    assert f"{settings.SITE_URL}/escapes/?detected_from=" in notice.payload["text"]


def test_a_team_the_subscriber_left_sends_nothing(team, other_team, manager):
    subscribe(manager, teams=[team])
    manager.memberships.all().delete()
    membership_set(team=other_team, user=manager, role=Role.MEMBER)
    assert run_all(at(2026, 12, 7, 10, 0)) == 0
    assert digests() == []
