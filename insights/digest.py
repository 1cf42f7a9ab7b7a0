"""The weekly digest: a manager's email about the week that ended, sent Monday 09:00.

A person subscribes in their settings (notices.NoticePreferences) to one digest per chosen
team, sent at Monday 09:00 in that team's time zone, or to one digest of all their teams, sent
at Monday 09:00 in the zone of their first team by name (the teams they belong to at sending
time). The week is the local ISO week before that Monday.

Every number is the managers' dashboard's (insights/dashboard.py, docs/metrics.md):

- escapes of the week by category and by stage, and the week's MTTD (mean, median, n);
- the MTTD trend: each of the five weeks (the week and the four before it), and the MTTD of
  the four previous weeks taken together, against which the week's is compared;
- re-escapes detected in the week, and the preventative actions marked done in it (in
  Leakseal or by their ticket's sync: `done_at` in the week, in each team's zone);
- follow-through of the escapes of the twelve months up to the week's end (the dashboard's
  default range): actions, done, overdue today.

The chart (a PNG drawn with Pillow: no JavaScript or browser in an email) shows the five
weekly MTTDs; the HTML has the same numbers in tables, and there is a plain-text part.
"""

from __future__ import annotations

import base64
import io
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from django.conf import settings
from django.contrib.auth.models import User
from django.db import transaction
from django.template.loader import render_to_string
from django.urls import reverse
from PIL import Image, ImageDraw, ImageFont

from escapes.timespans import format_duration
from insights.dashboard import Dashboard, DashboardQuery, dashboard
from insights.dashboard_page import category_label
from insights.rollups import rollups_recompute_team
from notices.models import Channel, NoticePreferences
from notices.preferences import digest_subscriptions
from notices.schedule import local_slot_passed, scheduled
from notices.selectors import notice_promised
from notices.services import notice_enqueue
from retros.selectors import actions_of_team
from teams.models import Team
from teams.selectors import teams_for_user

DIGEST_AT = time(9, 0)
TREND_WEEKS = 4
CHART_CID = "mttd-chart"


def week_before(monday: date) -> tuple[date, date]:
    """The ISO week (Monday to Sunday) that ended the day before `monday`."""
    return monday - timedelta(days=7), monday - timedelta(days=1)


def _board(teams: tuple[Team, ...], start: date, end: date) -> Dashboard:
    """The dashboard's answer, after bringing any team with missing rollups up to date
    (the dashboard itself only requests that; a digest is sent once, so it waits)."""
    query = DashboardQuery(teams=teams, start=start, end=end, period="week")
    board = dashboard(query)
    if board.stale_teams:
        for team in teams:
            if team.slug in board.stale_teams:
                rollups_recompute_team(team_id=team.pk)
        board = dashboard(query)
    return board


@dataclass(frozen=True)
class Digest:
    teams: tuple[Team, ...]
    start: date
    end: date
    week: Dashboard  # the week alone
    trend: Dashboard  # the week and the four before it, week by week
    before: Dashboard  # the four weeks before, together
    year: Dashboard  # twelve months up to the week's end: follow-through
    done_this_week: int = 0  # actions whose done_at falls in the week

    @property
    def categories(self) -> list[tuple[str, int]]:
        counts = self.week.periods[-1].categories if self.week.periods else {}
        return [(category_label(key), n) for key, n in counts.items()]

    @property
    def stages(self) -> list[tuple[str, int]]:
        return [(box.name, box.n) for box in self.week.stages]

    @property
    def trend_rows(self) -> list[tuple[str, str, int]]:
        return [
            (p.label, format_duration(_td(p.deficit.mean)), p.deficit.n) for p in self.trend.periods
        ]

    @property
    def mttd(self) -> str:
        return format_duration(_td(self.week.total.mean))

    @property
    def mttd_before(self) -> str:
        return format_duration(_td(self.before.total.mean))

    @property
    def trend_word(self) -> str:
        """How the week's MTTD compares with the four weeks before (lower is better)."""
        now, then = self.week.total.mean, self.before.total.mean
        if now is None or then is None:
            return "not comparable (no known detection deficit in one of them)"
        if then == 0 or abs(now - then) / then < 0.05:
            return "about the same as"
        change = (now - then) / then * 100
        return f"{abs(change):.0f} % {'longer' if change > 0 else 'shorter'} than"


def _td(seconds: float | None) -> timedelta | None:
    return None if seconds is None else timedelta(seconds=seconds)


def digest_build(teams: tuple[Team, ...], monday: date) -> Digest:
    start, end = week_before(monday)
    trend_start = start - timedelta(weeks=TREND_WEEKS)
    year_start = date(end.year - (1 if end.month < 12 else 0), end.month % 12 + 1, 1)
    return Digest(
        teams=teams,
        start=start,
        end=end,
        week=_board(teams, start, end),
        trend=_board(teams, trend_start, end),
        before=_board(teams, trend_start, start - timedelta(days=1)),
        year=_board(teams, year_start, end),
        done_this_week=_done_in_week(teams, start, end),
    )


def _done_in_week(teams: tuple[Team, ...], start: date, end: date) -> int:
    """Preventative actions of `teams` done from `start` to `end`, local days of each team."""
    done = 0
    for team in teams:
        zone = ZoneInfo(team.timezone)
        since = datetime.combine(start, time.min, zone)
        until = datetime.combine(end + timedelta(days=1), time.min, zone)
        done += actions_of_team(team.pk).filter(done_at__gte=since, done_at__lt=until).count()
    return done


def chart_png(digest: Digest) -> bytes:
    """Bars of the weekly MTTD (mean), the digest's week darker, each with its value; a small
    PNG. Pillow's built-in font has no dash, so a week without a mean says why in words."""
    width, height, left, bottom, top = 560, 220, 16, 36, 44
    image = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default(size=12)
    draw.text((left, 8), "MTTD per week (mean detection deficit)", fill="#1a1a1a", font=font)
    points = digest.trend.periods
    means = [p.deficit.mean or 0.0 for p in points]
    peak = max(means, default=0.0) or 1.0
    plot_h = height - bottom - top
    base = height - bottom
    draw.line((left, base, width - left, base), fill="#888")
    slot = (width - 2 * left) / max(len(points), 1)
    for i, (point, value) in enumerate(zip(points, means, strict=True)):
        x0 = left + i * slot + slot * 0.15
        x1 = x0 + slot * 0.7
        bar_top = base - plot_h * value / peak
        colour = "#1f4e8c" if i == len(points) - 1 else "#9bb5d6"
        if point.deficit.mean is None:
            label = "no escapes" if point.deficit.n == 0 else "deficit unknown"
            bar_top = base
        else:
            draw.rectangle((x0, bar_top, x1, base), fill=colour)
            label = format_duration(_td(point.deficit.mean))
        draw.text(((x0 + x1) / 2, bar_top - 4), label, fill="#1a1a1a", font=font, anchor="md")
        draw.text(((x0 + x1) / 2, base + 6), point.label, fill="#1a1a1a", font=font, anchor="ma")
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()


def _links(digest: Digest) -> dict[str, str]:
    site = settings.SITE_URL
    dates = {"start": digest.year.query.start.isoformat(), "end": digest.end.isoformat()}
    week = {"detected_from": digest.start.isoformat(), "detected_to": digest.end.isoformat()}
    if len(digest.teams) == 1:
        team = {"team": digest.teams[0].slug}
        return {
            "dashboard": f"{site}{reverse('team_dashboard', kwargs=team)}?{urlencode(dates)}",
            "register": f"{site}{reverse('escape_list', kwargs=team)}?{urlencode(week)}",
        }
    return {
        "dashboard": f"{site}{reverse('dashboard')}?{urlencode(dates)}",
        "register": f"{site}{reverse('all_escape_list')}?{urlencode(week)}",
    }


def digest_message(digest: Digest) -> tuple[str, dict[str, object]]:
    """The email's subject and its payload (text, HTML, the chart inline by Content-ID)."""
    names = ", ".join(team.name for team in digest.teams)
    subject = f"Weekly digest, {names}: {digest.start:%d %b} – {digest.end:%d %b %Y}"
    context = {
        "digest": digest,
        "names": names,
        "links": _links(digest),
        "chart_cid": CHART_CID,
        "follow": digest.year.follow_through,
        "settings_url": settings.SITE_URL + reverse("notice_settings"),
    }
    payload: dict[str, object] = {
        "text": render_to_string("insights/email/digest.txt", context),
        "html": render_to_string("insights/email/digest.html", context),
        "images": {CHART_CID: base64.b64encode(chart_png(digest)).decode()},
    }
    return subject, payload


def _enqueue(user: User, teams: tuple[Team, ...], monday: date, occasion: str) -> int:
    subject, payload = digest_message(digest_build(teams, monday))
    with transaction.atomic():
        notice = notice_enqueue(
            team=teams[0] if len(teams) == 1 else None,
            channel=Channel.EMAIL,
            recipient=user.email,
            occasion=occasion,
            kind="digest",
            subject=subject,
            payload=payload,
        )
    return notice is not None


def _monday_slot(now: datetime, team: Team) -> date | None:
    """The team's local Monday when its 09:00 has come today; else None."""
    local = now.astimezone(team.tzinfo)
    if local.weekday() == 0 and local_slot_passed(now, team.tzinfo, DIGEST_AT):
        return local.date()
    return None


def _already(user: User, occasion: str) -> bool:
    """Spares building a digest every tick of the Monday (the outbox would refuse it anyway)."""
    return notice_promised(channel=Channel.EMAIL, recipient=user.email, occasion=occasion)


def _digests_of(prefs: NoticePreferences, now: datetime) -> int:
    user = prefs.user
    mine = list(teams_for_user(user).order_by("name", "pk"))
    if not user.email or not mine:
        return 0
    enqueued = 0
    if prefs.digest_all_teams:
        monday = _monday_slot(now, mine[0])
        occasion = f"digest-all:{user.pk}:{monday}"
        if monday is not None and not _already(user, occasion):
            enqueued += _enqueue(user, tuple(mine), monday, occasion)
        return enqueued
    chosen = {team.pk for team in prefs.digest_teams.all()}
    for team in mine:
        monday = _monday_slot(now, team) if team.pk in chosen else None
        occasion = f"digest:{team.pk}:{monday}"
        if monday is not None and not _already(user, occasion):
            enqueued += _enqueue(user, (team,), monday, occasion)
    return enqueued


@scheduled
def send_digests(now: datetime) -> int:
    """Each subscriber's digests whose Monday 09:00 has come (once per Monday)."""
    return sum(_digests_of(prefs, now) for prefs in digest_subscriptions())
