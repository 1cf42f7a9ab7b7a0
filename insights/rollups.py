"""Rollups: each team's escapes per local month as compact columns, kept by Celery.

This module writes them and queues their recomputes. The layout of a row (one local month of
a team, every escape of it a few bytes) and its encoding are in insights/rollup_layout.py;
reading the rows into one block of arrays per team, kept per process, in
insights/rollup_blocks.py.

Freshness. A change to an escape (or to the done time of one of its actions) queues
`insights.rollup_recompute` on commit with the local dates it was and is detected on
(`rollups_queue`); the task replaces those months of that team only, under the team's row
lock, from the committed escapes. A lost task (broker down) is logged; beat's hourly
`insights.rollup_full` (`rollups_recompute_all`) rewrites what differs, deletes emptied
months and stamps the rest as checked (1,000,000 escapes: about 15 s). `computed_at` is when
a row was last computed or confirmed. A team whose rows are missing or of another zone is
"stale": the dashboard names it and queues `insights.rollup_team` (at most once a minute).
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterable
from datetime import date, datetime
from functools import partial
from typing import Any

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from config.celery import registered_task
from escapes.selectors import escapes_of_team
from escapes.timespans import local_midnight_in_utc
from insights.models import EscapeRollup
from insights.release_rollups import release_rollup_recompute
from insights.rollup_layout import ESCAPE_FIELDS, BuiltMonth, build_month
from retros.selectors import actions_of_escapes
from teams.models import Team
from teams.selectors import teams_all
from teams.services import team_lock

log = logging.getLogger(__name__)


def month_of(day: date) -> date:
    return day.replace(day=1)


def next_month(month: date) -> date:
    return date(month.year + month.month // 12, month.month % 12 + 1, 1)


# --- Building months from the escapes ---------------------------------------------------


def _build_team_months(
    team: Team, months: Iterable[date] | None
) -> tuple[str, dict[date, BuiltMonth]]:
    """Build the given local months of the team (every month when None) from its escapes."""
    tz = team.tzinfo
    escapes = escapes_of_team(team.pk)
    if months is not None:
        window = Q()
        for month in sorted(set(months)):
            window |= Q(
                detected_at__gte=local_midnight_in_utc(month, tz),
                detected_at__lt=local_midnight_in_utc(next_month(month), tz),
            )
        escapes = escapes.filter(window)
    grouped: dict[date, tuple[list[tuple[Any, ...]], list[int], list[tuple[Any, ...]]]] = (
        defaultdict(lambda: ([], [], []))
    )
    month_of_escape: dict[int, date] = {}
    for row in (
        escapes.order_by("detected_at", "id").values_list(*ESCAPE_FIELDS).iterator(chunk_size=5000)
    ):
        local = row[1].astimezone(tz)
        month = date(local.year, local.month, 1)
        rows, days, _ = grouped[month]
        rows.append(row)
        days.append(local.day)
        month_of_escape[row[0]] = month
    actions = actions_of_escapes(escapes).order_by("escape_id", "id")
    for action in actions.values_list(
        "escape_id", "push_state", "due_date", "done_at", "created_at"
    ).iterator(chunk_size=5000):
        grouped[month_of_escape[action[0]]][2].append(action)
    return str(tz.key), {month: build_month(*parts) for month, parts in grouped.items()}


# --- Writing ----------------------------------------------------------------------------


def _lock_team(team_id: int) -> Team | None:
    """Serialises the recomputes of one team: the last one to run reads the latest commit."""
    return team_lock(team_id=team_id)


def _store(team: Team, tz_name: str, built: dict[date, BuiltMonth], now: datetime) -> None:
    existing = {r.month: r for r in EscapeRollup.objects.filter(team=team, month__in=list(built))}
    new: list[EscapeRollup] = []
    changed: list[EscapeRollup] = []
    for month, b in built.items():
        row = existing.get(month) or EscapeRollup(team=team, month=month)
        row.timezone, row.escapes, row.columns, row.meta = tz_name, b.escapes, b.columns, b.meta
        row.digest, row.computed_at = b.digest, now
        (changed if row.pk else new).append(row)
    fields = ["timezone", "escapes", "columns", "meta", "digest", "computed_at"]
    EscapeRollup.objects.bulk_update(changed, fields, batch_size=100)
    EscapeRollup.objects.bulk_create(new, batch_size=100)


def rollups_recompute(*, team_id: int, days: Iterable[date]) -> int:
    """Replace the team's rollups of the local months these local dates fall in.

    Months left without escapes are deleted. Rows bucketed in another zone than the team's
    (the team moved) make it a whole-team recompute. Returns how many months were written.
    """
    months = {month_of(day) for day in days}
    with transaction.atomic():
        team = _lock_team(team_id)
        if team is None:
            return 0
        if EscapeRollup.objects.filter(team=team).exclude(timezone=team.timezone).exists():
            return _recompute_team(team)
        tz_name, built = _build_team_months(team, months)
        EscapeRollup.objects.filter(team=team, month__in=months - set(built)).delete()
        _store(team, tz_name, built, timezone.now())
        return len(built)


def _recompute_team(team: Team) -> int:
    """Rewrite the rows that differ, delete emptied months, stamp the others as checked."""
    tz_name, built = _build_team_months(team, None)
    now = timezone.now()
    current = {
        month: (digest, zone)
        for month, digest, zone in EscapeRollup.objects.filter(team=team)
        .order_by()
        .values_list("month", "digest", "timezone")
    }
    EscapeRollup.objects.filter(team=team).exclude(month__in=list(built)).delete()
    differ = {m: b for m, b in built.items() if current.get(m) != (b.digest, tz_name)}
    _store(team, tz_name, differ, now)
    EscapeRollup.objects.filter(team=team).exclude(month__in=list(differ)).update(computed_at=now)
    return len(differ)


def rollups_recompute_team(*, team_id: int) -> int:
    """Every month of one team, and its release rollup; returns how many months were
    (re)written."""
    with transaction.atomic():
        team = _lock_team(team_id)
        written = 0 if team is None else _recompute_team(team)
    release_rollup_recompute(team_id=team_id)
    return written


def rollups_recompute_all() -> int:
    """Beat's backstop: every team, one transaction each. Returns the rows (re)written."""
    written = 0
    for team_id in teams_all().order_by("pk").values_list("pk", flat=True):
        written += rollups_recompute_team(team_id=team_id)
    return written


# --- Queueing ---------------------------------------------------------------------------


def rollups_queue(*, team: Team, detected: Iterable[datetime | None]) -> None:
    """On commit, queue the recompute of the team's months of these detection times.

    Pass both the old and the new `detected_at` of an escape that moved. Nothing is queued
    when the transaction rolls back.
    """
    tz = team.tzinfo
    days = sorted({m.astimezone(tz).date().isoformat() for m in detected if m is not None})
    if days:
        transaction.on_commit(partial(_enqueue, team.pk, days))


def _enqueue(team_id: int, days: list[str]) -> None:
    try:
        registered_task("insights.rollup_recompute").delay(team_id, days)
    except Exception:
        # The change is committed; beat's full recompute brings the rollup up to date.
        log.exception("rollup recompute of team %s for %s not queued", team_id, days)


def rollups_request_team(*, team_id: int) -> None:
    """Queue a whole-team recompute, at most once a minute per team (pages of stale teams)."""
    from django.core.cache import cache

    if not cache.add(f"rollup-team-requested:{team_id}", 1, timeout=60):
        return
    try:
        registered_task("insights.rollup_team").delay(team_id)
    except Exception:
        log.exception("rollup recompute of team %s not queued", team_id)
