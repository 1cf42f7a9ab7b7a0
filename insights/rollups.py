"""Rollups: each team's escapes per local month as compact columns, kept by Celery.

The dashboard (insights/dashboard.py) reads these instead of scanning a million escapes, yet
its percentiles must be exact over any range and filter, so a rollup keeps every escape of
its bucket — a few bytes each — rather than per-period percentiles.

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
may span two months), which halves the writes of every change. Releases, stage catches and
stages are small tables the dashboard reads directly; a release's escape count (all of its
escapes, whenever detected) comes from the rollups' release column.

Freshness. A change to an escape (or to the done time of one of its actions) queues
`insights.rollup_recompute` on commit with the local dates it was and is detected on
(`rollups_queue`); the task replaces those months of that team only, under the team's row
lock, from the committed escapes. A lost task (broker down) is logged; beat's hourly
`insights.rollup_full` (`rollups_recompute_all`) rewrites what differs, deletes emptied
months and stamps the rest as checked (1,000,000 escapes: about 15 s). `computed_at` is when
a row was last computed or confirmed. A team whose rows are missing or of another zone is
"stale": the dashboard names it and queues `insights.rollup_team` (at most once a minute).

Reading. `team_blocks` concatenates a team's rows into one `TeamBlock` and keeps it in this
process, keyed by the rows' (id, digest): a page asks the database only for that small list,
and for the columns of the rows that changed since.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections import OrderedDict, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from functools import partial
from typing import Any

import numpy as np
from django.conf import settings
from django.db import transaction
from django.db.models import Max, Min, Q
from django.utils import timezone

from config.celery import registered_task
from escapes.models import Category, Escape, Severity
from escapes.timespans import local_midnight_in_utc
from insights.models import EscapeRollup
from insights.release_rollups import release_rollup_recompute, release_rollups_cache_clear
from retros.models import PreventativeAction, PushState
from teams.models import Team

log = logging.getLogger(__name__)

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
NEVER = np.iinfo(np.int64).max  # "no sealed escape" in the re-escape lookups

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_US = timedelta(microseconds=1)
_FIELDS = (
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


def month_of(day: date) -> date:
    return day.replace(day=1)


def next_month(month: date) -> date:
    return date(month.year + month.month // 12, month.month % 12 + 1, 1)


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
    """The rollup of one month from escape rows (`_FIELDS` order) and their local days.

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


def _build_team_months(
    team: Team, months: Iterable[date] | None
) -> tuple[str, dict[date, BuiltMonth]]:
    """Build the given local months of the team (every month when None) from its escapes."""
    tz = team.tzinfo
    escapes = Escape.objects.filter(team=team)
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
        escapes.order_by("detected_at", "id").values_list(*_FIELDS).iterator(chunk_size=5000)
    ):
        local = row[1].astimezone(tz)
        month = date(local.year, local.month, 1)
        rows, days, _ = grouped[month]
        rows.append(row)
        days.append(local.day)
        month_of_escape[row[0]] = month
    actions = PreventativeAction.objects.filter(escape__in=escapes).order_by("escape_id", "id")
    for action in actions.values_list(
        "escape_id", "push_state", "due_date", "done_at", "created_at"
    ).iterator(chunk_size=5000):
        grouped[month_of_escape[action[0]]][2].append(action)
    return str(tz.key), {month: build_month(*parts) for month, parts in grouped.items()}


# --- Writing ----------------------------------------------------------------------------


def _lock_team(team_id: int) -> Team | None:
    """Serialises the recomputes of one team: the last one to run reads the latest commit."""
    return Team.objects.select_for_update().filter(pk=team_id).first()


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
    for team_id in Team.objects.order_by("pk").values_list("pk", flat=True):
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


# --- Reading ----------------------------------------------------------------------------


@dataclass
class TeamBlock:
    """All rollup rows of one team, concatenated in month order, with team-wide codes."""

    team_id: int
    timezone: str
    signature: tuple[tuple[int, str], ...]  # (row id, digest) in month order
    spans: dict[tuple[int, str], slice]  # where each row's escapes are
    sealed: dict[tuple[int, str], tuple[tuple[Any, ...], ...]]
    computed_at: datetime | None
    components: list[str]  # component code -> name
    releases: list[int | None]  # release code -> id (0: none)
    cols: dict[str, np.ndarray] = field(default_factory=dict)
    release_counts: np.ndarray = field(default_factory=lambda: np.zeros(1, np.int64))
    # The escapes' preventative actions; "escape" is the row of its escape in `cols`.
    actions: dict[str, np.ndarray] = field(default_factory=dict)
    action_spans: dict[tuple[int, str], slice] = field(default_factory=dict)
    # Local dates ascend along the block (rows are read in detection order), unless a zone
    # once moved its clocks back across midnight: then readers mask instead of slicing.
    ordered: bool = True

    @property
    def size(self) -> int:
        return len(self.cols["id"]) if self.cols else 0


_BLOCK_COLUMNS: tuple[tuple[str, str], ...] = (
    ("id", "<i8"),
    ("detected", "<i8"),
    ("deficit", "<f8"),
    ("tip", "<f8"),
    ("ordinal", "<i4"),  # local date, date.toordinal()
    ("month", "<i4"),  # year * 12 + month - 1
    ("component", "<i4"),  # index into TeamBlock.components
    ("stage", "<i8"),  # stage id, 0 none
    ("release", "<i4"),  # index into TeamBlock.releases
    ("category", "i1"),
    ("severity", "i1"),
    ("flags", "u1"),
    ("re_escape", "?"),
)

_cache: OrderedDict[int, TeamBlock] = OrderedDict()
_cache_lock = threading.Lock()


def _remap(codes: np.ndarray, values: list[Any], into: list[Any], index: dict[Any, int]) -> Any:
    table = np.empty(max(len(values), 1), dtype=np.int64)
    for i, value in enumerate(values):
        found = index.get(value)
        if found is None:
            found = index[value] = len(into)
            into.append(value)
        table[i] = found
    return table[codes]


_BLOCK_ACTIONS: tuple[tuple[str, str], ...] = (
    ("to_done", "<f8"),
    ("escape", "<i8"),
    ("due", "<i4"),
    ("pushed", "?"),
    ("done", "?"),
)


def _fresh_part(
    row: Mapping[str, Any], block: TeamBlock, indexes: tuple[dict, dict]
) -> tuple[dict, dict]:
    raw, actions = decode_columns(row["columns"], row["escapes"], row["meta"].get("actions", 0))
    meta, month = row["meta"], row["month"]
    n = row["escapes"]
    ordinal = month.toordinal() + raw["day"].astype(np.int32)
    stage_ids = np.array([s or 0 for s in meta["stages"]], dtype=np.int64)
    return {
        "to_done": actions["to_done"],
        "escape": actions["escape"].astype(np.int64),
        "due": actions["due"],
        "pushed": actions["pushed"].astype(bool),
        "done": actions["done"].astype(bool),
    }, {
        "id": raw["id"],
        "detected": raw["detected"],
        "deficit": raw["deficit"],
        "tip": raw["tip"],
        "ordinal": ordinal,
        "month": np.full(n, month.year * 12 + month.month - 1, dtype=np.int32),
        "component": _remap(raw["component"], meta["components"], block.components, indexes[0]),
        "stage": stage_ids[raw["stage"]],
        "release": _remap(raw["release"], meta["releases"], block.releases, indexes[1]),
        "category": raw["category"],
        "severity": raw["severity"],
        "flags": raw["flags"],
    }


def _re_escapes(block: TeamBlock) -> np.ndarray:
    """Escapes detected after another of the same component and category was sealed."""
    earliest: dict[tuple[int, int], list[tuple[int, int]]] = defaultdict(list)
    index = {name: i for i, name in enumerate(block.components)}
    for entries in block.sealed.values():
        for component, category_code, us1, id1, us2, id2 in entries:
            if component == "" or category_code == UNCLASSIFIED_CODE:
                continue  # "the same component" of none, or of no category, is no pattern
            pairs = earliest[(index[component], category_code)]
            pairs.extend([(us1, id1)] + ([(us2, id2)] if us2 is not None else []))
            pairs.sort()
            del pairs[2:]
    shape = (len(block.components) + 1, len(CATEGORY_KEYS))
    first_us = np.full(shape, NEVER, dtype=np.int64)
    first_id = np.zeros(shape, dtype=np.int64)
    second_us = np.full(shape, NEVER, dtype=np.int64)
    for (c, k), pairs in earliest.items():
        first_us[c, k], first_id[c, k] = pairs[0]
        if len(pairs) > 1:
            second_us[c, k] = pairs[1][0]
    cols = block.cols
    comp, cat = cols["component"], cols["category"].astype(np.intp)
    # The escape's own sealing does not make it a re-escape of itself.
    own = first_id[comp, cat] == cols["id"]
    earliest_other = np.where(own, second_us[comp, cat], first_us[comp, cat])
    return earliest_other < cols["detected"]


def _build_block(
    team_id: int, signature: tuple[tuple[int, str], ...], stamp: _Stamp, old: TeamBlock | None
) -> TeamBlock:
    """signature: (id, digest) of the team's rows in month order."""
    block = TeamBlock(
        team_id=team_id,
        timezone=stamp.timezone,
        signature=signature,
        spans={},
        sealed={},
        computed_at=stamp.computed_at,
        components=list(old.components) if old else [],
        releases=list(old.releases) if old else [None],
    )
    indexes = (
        {name: i for i, name in enumerate(block.components)},
        {rid: i for i, rid in enumerate(block.releases)},
    )
    reusable = old.spans if old else {}
    missing = [key[0] for key in signature if key not in reusable]
    fetched = {
        r["id"]: r
        for r in EscapeRollup.objects.filter(pk__in=missing).values(
            "id", "month", "escapes", "columns", "meta"
        )
    }
    parts: list[dict[str, np.ndarray]] = []
    action_parts: list[dict[str, np.ndarray]] = []
    offset = action_offset = 0
    for key in signature:
        if key in reusable and old is not None:
            span, action_span = reusable[key], old.action_spans[key]
            part = {name: old.cols[name][span] for name, _ in _BLOCK_COLUMNS if name != "re_escape"}
            acts = {name: old.actions[name][action_span] for name, _ in _BLOCK_ACTIONS}
            acts["escape"] = acts["escape"] - span.start  # back to the row's own positions
            block.sealed[key] = old.sealed[key]
        else:
            row = fetched[key[0]]
            acts, part = _fresh_part(row, block, indexes)
            # Tuples of numbers and strings, which the garbage collector stops tracking: a
            # million escapes' blocks held 45,000 lists that every full collection walked.
            block.sealed[key] = tuple(map(tuple, row["meta"].get("sealed", ())))
        n, n_actions = len(part["id"]), len(acts["escape"])
        acts["escape"] = acts["escape"] + offset
        block.spans[key] = slice(offset, offset + n)
        block.action_spans[key] = slice(action_offset, action_offset + n_actions)
        offset += n
        action_offset += n_actions
        parts.append(part)
        action_parts.append(acts)
    for into, layout, pieces in (
        (block.cols, _BLOCK_COLUMNS, parts),
        (block.actions, _BLOCK_ACTIONS, action_parts),
    ):
        for name, dtype in layout:
            if name != "re_escape":
                into[name] = (
                    np.concatenate([p[name] for p in pieces]).astype(dtype, copy=False)
                    if pieces
                    else np.empty(0, dtype=dtype)
                )
    block.cols["re_escape"] = _re_escapes(block)
    block.ordered = bool(np.all(np.diff(block.cols["ordinal"]) >= 0))
    valid = block.cols["flags"] & BEFORE_RELEASE == 0
    block.release_counts = np.bincount(
        block.cols["release"][valid], minlength=len(block.releases)
    ).astype(np.int64)
    return block


def _cache_limit() -> int:
    return int(getattr(settings, "ROLLUP_CACHE_ESCAPES", 5_000_000))


@dataclass(frozen=True)
class _Stamp:
    timezone: str  # the zone of all the team's rows; "" when they disagree (stale)
    computed_at: datetime | None  # the oldest row's


def team_blocks(team_ids: Sequence[int]) -> dict[int, TeamBlock]:
    """The rollups of these teams, one block each (teams without rollups have none).

    One query for the rows' (id, digest), one for each team's zone and oldest stamp, and one
    more for the columns of rows this process has not seen in that version.
    """
    signatures: dict[int, list[tuple[int, str]]] = defaultdict(list)
    for team_id, row_id, digest in (
        EscapeRollup.objects.filter(team_id__in=team_ids)
        .order_by("team_id", "month")
        .values_list("team_id", "id", "digest")
    ):
        signatures[team_id].append((row_id, digest))
    stamps = {
        team_id: _Stamp(low if low == high else "", at)
        for team_id, low, high, at in EscapeRollup.objects.filter(team_id__in=team_ids)
        .order_by()
        .values("team_id")
        .annotate(Min("timezone"), Max("timezone"), Min("computed_at"))
        .values_list("team_id", "timezone__min", "timezone__max", "computed_at__min")
    }
    result: dict[int, TeamBlock] = {}
    for team_id, rows in signatures.items():
        with _cache_lock:
            old = _cache.get(team_id)
        signature = tuple(rows)
        stamp = stamps.get(team_id, _Stamp("", None))  # rows written between the queries
        if old is not None and old.signature == signature:
            # The rows were re-stamped (checked by beat) without changing: keep the columns.
            old.computed_at, old.timezone = stamp.computed_at, stamp.timezone
            block = old
        else:
            block = _build_block(team_id, signature, stamp, old)
        result[team_id] = block
        _remember(block)
    return result


def _remember(block: TeamBlock) -> None:
    with _cache_lock:
        _cache[block.team_id] = block
        _cache.move_to_end(block.team_id)
        total = sum(b.size for b in _cache.values())
        while total > _cache_limit() and len(_cache) > 1:
            _, dropped = _cache.popitem(last=False)
            total -= dropped.size


def rollups_cache_clear() -> None:
    """Forget every block of this process (tests; a worker that must free memory)."""
    with _cache_lock:
        _cache.clear()
    release_rollups_cache_clear()
