"""Rollups' layout: one team-month of escapes as compact columns, encoded and decoded.

The dashboard (insights/dashboard.py) reads rollups instead of scanning a million escapes, yet
its percentiles must be exact over any range and filter, so a rollup keeps every escape of
its bucket — a few bytes each — rather than per-period percentiles. insights/rollups.py
writes them (and queues their recomputes); insights/rollup_blocks.py reads them.

Layout. One `EscapeRollup` row per (team, local calendar month in the team's zone) that has
escapes; an escape belongs to the month of its `detected_at` in the team's zone. `columns`
holds the arrays of `COLUMNS` back to back (little-endian, `escapes` entries each):

- id, detected (µs since the epoch, UTC), deficit and time in production (seconds; NaN when
  unknown or negative), local day of the month, category (index in `CATEGORY_KEYS`, 3 =
  unclassified), severity (index in `SEVERITY_KEYS`, -1 other), component / stage / release
  (indexes into the row's own `meta` lists "components", "stages", "releases"; stage and
  release 0 = none), and flags (`BEFORE_RELEASE`, `MISSING_MERGED`, `NEGATIVE_DEFICIT`, the
  data problems of insights.metrics.split_escapes).
- then the month's escapes' preventative actions, `meta["actions"]` entries of
  `ACTION_COLUMNS` (created→done seconds, the escape's position, due date, pushed, done):
  the follow-through is counted from rollups too (reading 180,000 actions joined to their
  escapes per page took over 300 ms).
- `meta["sealed"]`: per (component, category) of the month's sealed escapes the two earliest
  (sealed µs, id), so that re-escapes are computed from rollups alone, over the team's whole
  history: an escape is a re-escape when another escape of the team with the same non-empty
  component and the same category was sealed before it was detected.

Only months are stored: an ISO week is derived from the local day each entry keeps (a week
may span two months), which halves the writes of every change. Releases and stage catches
have a rollup row of their own per team (insights/release_rollups.py); stages are a small
table the dashboard reads directly; a release's escape count (all of its escapes, whenever
detected) comes from the rollups' release column.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np

from escapes.models import Category, Severity
from retros.models import PushState

COLUMNS: tuple[tuple[str, str], ...] = (
    # 8-byte columns first: every array then starts aligned.
    ("id", "<i8"),
    ("detected", "<i8"),
    ("deficit", "<f8"),
    ("tip", "<f8"),
    ("component", "<u2"),
    ("stage", "<u2"),
    ("release", "<u2"),
    ("day", "u1"),
    ("category", "i1"),
    ("severity", "i1"),
    ("flags", "u1"),
)
# The preventative actions of the month's escapes, after the escape columns.
ACTION_COLUMNS: tuple[tuple[str, str], ...] = (
    ("to_done", "<f8"),  # seconds from created to done; NaN while not done
    ("escape", "<u4"),  # index of its escape in the escape columns
    ("due", "<i4"),  # due date as date.toordinal(); 0 none
    ("pushed", "u1"),
    ("done", "u1"),
)
CATEGORY_KEYS: tuple[str, ...] = (*Category.values, "")
UNCLASSIFIED_CODE = len(CATEGORY_KEYS) - 1
SEVERITY_KEYS: tuple[str, ...] = tuple(Severity.values)
BEFORE_RELEASE, MISSING_MERGED, NEGATIVE_DEFICIT = 1, 2, 4

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_US = timedelta(microseconds=1)
ESCAPE_FIELDS = (
    "id",
    "detected_at",
    "merged_at",
    "released_at",
    "category",
    "severity",
    "component",
    "stage_id",
    "release_id",
    "sealed_at",
)


# --- Building one month ------------------------------------------------------------------


@dataclass(frozen=True)
class BuiltMonth:
    escapes: int
    columns: bytes
    meta: dict[str, Any]
    digest: str


def _us(moment: datetime) -> int:
    return (moment - _EPOCH) // _US


class _Codes:
    """A per-row dictionary: value -> index, in order of first appearance."""

    def __init__(self, first: Any = None, *, with_first: bool) -> None:
        self.values: list[Any] = [first] if with_first else []
        self.index: dict[Any, int] = {first: 0} if with_first else {}

    def code(self, value: Any) -> int:
        found = self.index.get(value)
        if found is None:
            found = self.index[value] = len(self.values)
            self.values.append(value)
        return found


def _sealed_meta(rows: Sequence[tuple[Any, ...]]) -> list[list[Any]]:
    """Per sealed (component, category): [component, category, µs, id, µs | None, id | None]."""
    earliest: dict[tuple[str, int], list[tuple[int, int]]] = defaultdict(list)
    for escape_id, category_code, component, sealed_at in rows:
        pair = earliest[(component, category_code)]
        pair.append((_us(sealed_at), escape_id))
        pair.sort()
        del pair[2:]
    result = []
    for (component, category_code), pairs in sorted(earliest.items()):
        second = pairs[1] if len(pairs) > 1 else (None, None)
        result.append([component, category_code, *pairs[0], *second])
    return result


def build_month(
    rows: Sequence[tuple[Any, ...]],
    local_days: Sequence[int],
    actions: Sequence[tuple[Any, ...]] = (),
) -> BuiltMonth:
    """The rollup of one month from escape rows (`ESCAPE_FIELDS` order) and their local days.

    `actions`: (escape id, push state, due date, done at, created at) of their actions.
    """
    components = _Codes(with_first=False)
    stages = _Codes(None, with_first=True)
    releases = _Codes(None, with_first=True)
    category_index = {key: i for i, key in enumerate(CATEGORY_KEYS[:-1])}
    severity_index = {key: i for i, key in enumerate(SEVERITY_KEYS)}
    cols: dict[str, list[Any]] = {name: [] for name, _ in COLUMNS}
    sealed: list[tuple[Any, ...]] = []
    for row, day in zip(rows, local_days, strict=True):
        escape_id, detected, merged, released, category, severity, component, stage, release = row[
            :9
        ]
        flags = 0
        if released is not None and detected < released:
            flags = BEFORE_RELEASE
        elif merged is None:
            flags = MISSING_MERGED
        elif detected < merged:
            flags = NEGATIVE_DEFICIT
        deficit = detected - merged if merged is not None else None
        in_production = detected - released if released is not None else None
        category_code = category_index.get(category, UNCLASSIFIED_CODE)
        cols["id"].append(escape_id)
        cols["detected"].append(_us(detected))
        cols["deficit"].append(
            deficit.total_seconds() if deficit is not None and deficit >= timedelta(0) else np.nan
        )
        cols["tip"].append(
            in_production.total_seconds()
            if in_production is not None and in_production >= timedelta(0)
            else np.nan
        )
        cols["component"].append(components.code(component))
        cols["stage"].append(stages.code(stage))
        cols["release"].append(releases.code(release))
        cols["day"].append(day - 1)
        cols["category"].append(category_code)
        cols["severity"].append(severity_index.get(severity, -1))
        cols["flags"].append(flags)
        if row[9] is not None:
            sealed.append((escape_id, category_code, component, row[9]))
    position = {escape_id: i for i, escape_id in enumerate(cols["id"])}
    acts: dict[str, list[Any]] = {name: [] for name, _ in ACTION_COLUMNS}
    for escape_id, push_state, due, done_at, created_at in actions:
        acts["to_done"].append((done_at - created_at).total_seconds() if done_at else np.nan)
        acts["escape"].append(position[escape_id])
        acts["due"].append(due.toordinal() if due else 0)
        acts["pushed"].append(push_state == PushState.PUSHED)
        acts["done"].append(done_at is not None)
    columns = b"".join(
        [np.asarray(cols[name], dtype=dtype).tobytes() for name, dtype in COLUMNS]
        + [np.asarray(acts[name], dtype=dtype).tobytes() for name, dtype in ACTION_COLUMNS]
    )
    meta = {
        "actions": len(actions),
        "components": components.values,
        "stages": stages.values,
        "releases": releases.values,
        "sealed": _sealed_meta(sealed),
    }
    digest = hashlib.sha1(columns, usedforsecurity=False)
    digest.update(repr(meta).encode())
    return BuiltMonth(len(rows), columns, meta, digest.hexdigest())


def decode_columns(
    raw: bytes | memoryview, n: int, actions: int = 0
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """The escape and action arrays of a row's `columns`: views into `raw`, no copy."""
    result: tuple[dict[str, np.ndarray], dict[str, np.ndarray]] = ({}, {})
    offset = 0
    for into, layout, count in ((result[0], COLUMNS, n), (result[1], ACTION_COLUMNS, actions)):
        for name, dtype in layout:
            array = np.frombuffer(raw, dtype=dtype, count=count, offset=offset)
            into[name] = array
            offset += array.nbytes
    return result
