"""Reading rollups: a team's rows as one `TeamBlock` of arrays, kept in this process.

Reading. `team_blocks` concatenates a team's rows into one `TeamBlock` and keeps it in this
process, keyed by the rows' (id, digest): a page asks the database only for that small list,
and for the columns of the rows that changed since. The rows' own codes (components,
releases) become team-wide codes, and re-escapes are computed from the rows' sealed escapes
over the team's whole history. The rows' layout is in insights/rollup_layout.py.
"""

from __future__ import annotations

import threading
from collections import OrderedDict, defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np
from django.conf import settings
from django.db.models import Max, Min

from insights.models import EscapeRollup
from insights.release_rollups import release_rollups_cache_clear
from insights.rollup_layout import (
    BEFORE_RELEASE,
    CATEGORY_KEYS,
    UNCLASSIFIED_CODE,
    decode_columns,
)

NEVER = np.iinfo(np.int64).max  # "no sealed escape" in the re-escape lookups


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
