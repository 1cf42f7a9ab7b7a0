"""Notices that come from the calendar (reminders, digests), not from a change.

Beat runs `notices.tick` every few minutes; it calls every function registered here with the
current time. Such a function decides, per team and in the team's time zone, whether a local
slot has come (09:00 today; Monday 09:00) and enqueues the notices of that slot with an
occasion that names the local date. Running it every few minutes is therefore idempotent
(the outbox refuses an occasion twice) and right across daylight-saving changes (the slot is
a local time, found again each tick, never "24 hours after the last one").
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, time, tzinfo
from zoneinfo import ZoneInfo

Scheduled = Callable[[datetime], int]  # gets aware UTC now; returns how many it enqueued
SCHEDULED: list[Scheduled] = []


def scheduled(function: Scheduled) -> Scheduled:
    SCHEDULED.append(function)
    return function


def local_slot_passed(now: datetime, zone: str | tzinfo, at: time) -> bool:
    """Whether, in `zone`, today's `at` has come (a time skipped by a spring-forward counts as
    come at the first moment after it)."""
    local = now.astimezone(ZoneInfo(zone) if isinstance(zone, str) else zone)
    return local.time().replace(tzinfo=None) >= at


def run_all(now: datetime) -> int:
    return sum(function(now) for function in SCHEDULED)
