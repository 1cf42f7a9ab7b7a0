"""Dashboards answered, kept in this process by everything their numbers depend on.

The key: the rollups' digests, the stages, the query, each team's local date (overdue
actions). A change to any of them is a new key, so an answer is never stale; a manager's
reload or the next manager's same view costs the digests' query, not the arithmetic over a
million escapes.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any

from insights import release_rollups, rollup_blocks
from insights.dashboard_types import Dashboard, DashboardQuery

RESULTS_KEPT = 64
_results: OrderedDict[tuple[Any, ...], Dashboard] = OrderedDict()
_results_lock = threading.Lock()


def answer_key(
    query: DashboardQuery,
    blocks: dict[int, rollup_blocks.TeamBlock],
    release_blocks: dict[int, release_rollups.ReleaseBlock],
    stages: list[tuple[int, str]],
    todays: tuple[int, ...],
) -> tuple[Any, ...]:
    teams = tuple((t.pk, t.slug, t.timezone) for t in query.teams)
    return (
        teams,
        todays,
        tuple(blocks[t.pk].signature if t.pk in blocks else None for t in query.teams),
        tuple(release_blocks[t.pk].digest if t.pk in release_blocks else None for t in query.teams),
        tuple(stages),
        (query.start, query.end, query.period, query.component, query.severity, query.release_id),
    )


def answer_get(key: tuple[Any, ...]) -> Dashboard | None:
    """The answer kept under `key`, now the most recently used; None when there is none."""
    with _results_lock:
        known = _results.get(key)
        if known is not None:
            _results.move_to_end(key)
    return known


def answer_keep(key: tuple[Any, ...], board: Dashboard) -> None:
    """Keep `board` under `key`, forgetting the least recently used beyond RESULTS_KEPT."""
    with _results_lock:
        _results[key] = board
        while len(_results) > RESULTS_KEPT:
            _results.popitem(last=False)


def dashboard_results_clear() -> None:
    """Forget the answers kept by this process (tests)."""
    with _results_lock:
        _results.clear()
