"""How fresh the dashboard's numbers are: the newest change in them, and whether any is pending.

Every rollup row (insights/rollups.py: a local month of a team's escapes; insights/
release_rollups.py: a team's releases) is stamped `computed_at` when it was last computed or
confirmed from the committed data. So the numbers include every change committed before the
newest stamp *to the month that stamp is of*; a change is still pending when it came after
the stamp of the month it belongs to (its recompute is queued, or was lost and waits for
beat's hourly backstop). An escape's `updated_at` tells when it last changed.

Not seen here: a deleted escape, and a change to an action's done time (neither leaves a
time on an escape); their recomputes are queued all the same. Three queries, whatever the
number of teams.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from functools import reduce
from operator import or_

from django.db.models import Q

from escapes.selectors import escapes_for_teams
from insights.models import EscapeRollup, ReleaseRollup
from teams.models import Team

# Escapes changed since a team's oldest stamp, newest first, looked at to find a pending one.
# Past this many the answer is "pending" (a bulk import in flight), which is the safe side.
CHANGES_LOOKED_AT = 2_000


@dataclass(frozen=True)
class Freshness:
    newest: datetime | None  # the latest rollup stamp read (UTC); None when there is none
    pending: tuple[Team, ...]  # teams with a change not yet in the numbers
    zone: tzinfo  # the zone to show times in: the teams' own when they share one, else UTC
    zone_label: str  # "Europe/Berlin", or "UTC"


def freshness(teams: Sequence[Team]) -> Freshness:
    zones = {t.timezone for t in teams}
    if len(zones) == 1:
        zone: tzinfo = teams[0].tzinfo
        label = teams[0].timezone
    else:
        zone, label = UTC, "UTC"
    stamps = {
        (team_id, month): at
        for team_id, month, at in EscapeRollup.objects.filter(team__in=teams)
        .order_by()
        .values_list("team_id", "month", "computed_at")
    }
    release_stamps = list(
        ReleaseRollup.objects.filter(team__in=teams).values_list("computed_at", flat=True)
    )
    newest = max([*stamps.values(), *release_stamps], default=None)
    oldest: dict[int, datetime] = {}
    for (team_id, _), at in stamps.items():
        oldest[team_id] = min(at, oldest.get(team_id, at))
    pending: set[int] = set()
    if oldest:
        by_pk = {t.pk: t for t in teams}
        since = reduce(or_, (Q(team_id=pk, updated_at__gt=at) for pk, at in oldest.items()))
        changed = (
            escapes_for_teams(teams)
            .filter(since)
            .order_by("-updated_at")
            .values_list("team_id", "detected_at", "updated_at")[: CHANGES_LOOKED_AT + 1]
        )
        rows = list(changed)
        if len(rows) > CHANGES_LOOKED_AT:
            pending = {team_id for team_id, _, _ in rows}
        for team_id, detected_at, updated_at in rows:
            month = detected_at.astimezone(by_pk[team_id].tzinfo).date().replace(day=1)
            stamp = stamps.get((team_id, month))
            if stamp is None or stamp < updated_at:
                pending.add(team_id)
    return Freshness(
        newest=newest,
        pending=tuple(t for t in teams if t.pk in pending),
        zone=zone,
        zone_label=label,
    )
