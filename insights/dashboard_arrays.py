"""The dashboard's arithmetic over the rollups' arrays, with numpy (for insights/dashboard.py).

Each team's escapes of the query's range and filters are selected from its `TeamBlock`
(insights/rollup_blocks.py) into parallel arrays (`Selected`, the teams' concatenated), and
every statistic is computed from those: percentiles as metrics.percentile_cont (linear
interpolation) from one partition, durations, the box plot of each stage, Pareto counts, and
the series of weeks or months of the range, empty periods included.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from itertools import accumulate

import numpy as np

from insights import metrics, rollup_blocks, rollup_layout
from insights.dashboard_types import (
    CaughtSource,
    DashboardQuery,
    Durations,
    ParetoItem,
    PeriodPoint,
    StageBox,
)

MAX_PERIODS = 1000  # 19 years of weeks; a longer series is no chart anyone reads
# The box plot (minimum, quartiles, maximum) and the P90, from one partition.
_BOX_FRACTIONS = (0.0, 0.25, 0.5, 0.75, 1.0, 0.9)


def quantiles(values: np.ndarray, fractions: Sequence[float]) -> list[float]:
    """metrics.percentile_cont of unsorted values, for several fractions at one partition."""
    n = len(values)
    positions = [f * (n - 1) for f in fractions]
    lowers = [math.floor(p) for p in positions]
    kth = sorted({min(k, n - 1) for low in lowers for k in (low, low + 1)})
    part = np.partition(values, kth)
    result = []
    for pos, low in zip(positions, lowers, strict=True):
        if low >= n - 1:
            result.append(float(part[n - 1]))
        else:
            a, b = float(part[low]), float(part[low + 1])
            result.append(a + (b - a) * (pos - low))
    return result


def durations(known: np.ndarray, n: int) -> Durations:
    """`known`: the non-negative spans (no NaN) of `n` escapes."""
    if not len(known):
        return Durations(n=n, known=0, mean=None, median=None, p90=None)
    median, p90 = quantiles(known, (0.5, 0.9))
    return Durations(n=n, known=len(known), mean=float(known.mean()), median=median, p90=p90)


def _grouped(keys: np.ndarray, count: int, values: np.ndarray) -> list[np.ndarray]:
    """values split by key 0..count-1 (a stable radix sort for small keys)."""
    small = keys.astype(np.int16) if count < 2**15 else keys.astype(np.int32)
    ordered = values[np.argsort(small, kind="stable")]
    ends = list(accumulate(np.bincount(small, minlength=count).tolist()))
    return [ordered[start:end] for start, end in zip([0, *ends[:-1]], ends, strict=True)]


# --- Periods ----------------------------------------------------------------------------


def _month_index(day: date) -> int:
    return day.year * 12 + day.month - 1


def period_starts(query: DashboardQuery) -> list[date]:
    if query.period == "week":
        first = query.start - timedelta(days=query.start.weekday())
        count = (query.end.toordinal() - first.toordinal()) // 7 + 1
        if count > MAX_PERIODS:
            raise ValueError(f"That range has {count} weeks; choose months or a shorter range.")
        return [first + timedelta(weeks=i) for i in range(count)]
    first_index = _month_index(query.start)
    count = _month_index(query.end) - first_index + 1
    if count > MAX_PERIODS:
        raise ValueError(f"That range has {count} months; choose a shorter range.")
    return [date((first_index + i) // 12, (first_index + i) % 12 + 1, 1) for i in range(count)]


def _label(start: date, period: str) -> str:
    if period == "week":
        year, week, _ = start.isocalendar()
        return f"{year}-W{week:02d}"
    return f"{start:%Y-%m}"


# --- Selecting each team's escapes -------------------------------------------------------


@dataclass
class Selected:
    """The range's escapes (filters applied) of one team or all, as parallel arrays."""

    ids: np.ndarray  # every selected row, data problems included
    flags: np.ndarray
    valid: np.ndarray  # of the selected rows: not detected before its release
    deficit: np.ndarray  # the rest: valid rows only
    tip: np.ndarray
    period: np.ndarray
    stage: np.ndarray  # index into the stage list; len(stages) = unattributed
    category: np.ndarray
    component: np.ndarray  # index into the shared component names
    re_escape: np.ndarray
    # The preventative actions of the valid rows.
    to_done: np.ndarray  # seconds from created to done; NaN while not done
    pushed: np.ndarray
    done: np.ndarray
    overdue: np.ndarray


def filter_mask(
    block: rollup_blocks.TeamBlock, query: DashboardQuery, cols: dict
) -> np.ndarray | None:
    """Rows of `cols` matching component, severity and release; None: no filter."""
    mask: np.ndarray | None = None

    def both(m: np.ndarray) -> np.ndarray:
        return m if mask is None else mask & m

    if query.component:
        try:
            code = block.components.index(query.component)
        except ValueError:
            return np.zeros(len(cols["id"]), dtype=bool)
        mask = both(cols["component"] == code)
    if query.severity:
        mask = both(cols["severity"] == rollup_layout.SEVERITY_KEYS.index(query.severity))
    if query.release_id is not None:
        if query.release_id not in block.releases:
            return np.zeros(len(cols["id"]), dtype=bool)
        mask = both(cols["release"] == block.releases.index(query.release_id))
    return mask


def select_team(
    block: rollup_blocks.TeamBlock,
    query: DashboardQuery,
    stage_codes: tuple[np.ndarray, np.ndarray, int],
    component_names: dict[str, int],
    today: int,
) -> Selected:
    """`today`: the team's local date, as an ordinal (for overdue actions)."""
    ordinal = block.cols["ordinal"]
    lo, hi = query.start.toordinal(), query.end.toordinal()
    window: slice | np.ndarray
    if block.ordered:
        # Rows are in detection order, so the local dates of the range are one slice.
        lower, upper = np.searchsorted(ordinal, lo, "left"), np.searchsorted(ordinal, hi, "right")
        window = slice(int(lower), int(upper))
    else:
        window = (ordinal >= lo) & (ordinal <= hi)
    period_column = "ordinal" if query.period == "week" else "month"
    needed = (
        "id", "flags", "deficit", "tip", period_column, "stage", "category", "component",
        "re_escape", "severity", "release",
    )  # fmt: skip
    cols = {name: block.cols[name][window] for name in needed}
    rows = np.arange(block.size)[window]
    mask = filter_mask(block, query, cols)
    if mask is not None:
        cols = {name: array[mask] for name, array in cols.items()}
        rows = rows[mask]
    valid = cols["flags"] & rollup_layout.BEFORE_RELEASE == 0
    ok = {name: cols[name][valid] for name in needed[2:9]}
    chosen = np.zeros(block.size, dtype=bool)
    chosen[rows[valid]] = True
    acts = block.actions
    of_chosen = chosen[acts["escape"]]
    done = acts["done"][of_chosen]
    due = acts["due"][of_chosen]
    if query.period == "week":
        first_monday = query.start.toordinal() - query.start.weekday()
        period = (ok["ordinal"] - first_monday) // 7
    else:
        period = ok["month"] - _month_index(query.start)
    stage_ids, stage_index, unattributed = stage_codes
    at = np.searchsorted(stage_ids, ok["stage"]).clip(0, max(len(stage_ids) - 1, 0))
    known_stage = stage_ids[at] == ok["stage"] if len(stage_ids) else np.zeros(len(at), dtype=bool)
    stage = np.where(known_stage, stage_index[at] if len(stage_ids) else 0, unattributed)
    to_shared = np.array(
        [component_names.setdefault(n, len(component_names)) for n in block.components] or [0],
        dtype=np.int64,
    )
    return Selected(
        ids=cols["id"],
        flags=cols["flags"],
        valid=valid,
        deficit=ok["deficit"],
        tip=ok["tip"],
        period=period,
        stage=stage,
        category=ok["category"],
        component=to_shared[ok["component"]],
        re_escape=ok["re_escape"],
        to_done=acts["to_done"][of_chosen],
        pushed=acts["pushed"][of_chosen],
        done=done,
        overdue=~done & (due != 0) & (due < today),
    )


def concat(parts: list[Selected]) -> Selected:
    if len(parts) == 1:
        return parts[0]
    names = Selected.__dataclass_fields__
    if not parts:
        floats = {"deficit", "tip", "to_done"}
        flags = {"valid", "re_escape", "pushed", "done", "overdue"}
        return Selected(
            **{
                n: np.empty(0, dtype=float if n in floats else bool if n in flags else np.int64)
                for n in names
            }
        )
    return Selected(**{n: np.concatenate([getattr(p, n) for p in parts]) for n in names})


def smallest(ids: np.ndarray, k: int) -> list[int]:
    """The k smallest ids, ascending, without sorting them all."""
    if len(ids) > k:
        ids = np.partition(ids, k - 1)[:k]
    return [int(i) for i in np.sort(ids)]


def stage_boxes(
    sel: Selected,
    stages: list[tuple[int, str]],
    catches: tuple[dict[int, int], dict[int, CaughtSource]] | None,
) -> list[StageBox]:
    """`catches`: caught per stage id and where the counts came from; None: not known (a
    component or severity filter)."""
    caught, sources = catches if catches is not None else (None, {})
    count = len(stages) + 1
    escaped = np.bincount(sel.stage, minlength=count)
    known = ~np.isnan(sel.deficit)
    groups = _grouped(sel.stage[known], count, sel.deficit[known])
    boxes = []
    for i, (stage_id, name) in enumerate([*stages, (None, metrics.UNATTRIBUTED)]):
        values = groups[i]
        q = quantiles(values, _BOX_FRACTIONS) if len(values) else [None] * 6
        stage_caught = caught.get(stage_id) if caught is not None and stage_id else None
        boxes.append(
            StageBox(
                stage_id=stage_id,
                name=name,
                n=int(escaped[i]),
                known=len(values),
                minimum=q[0],
                q1=q[1],
                median=q[2],
                q3=q[3],
                maximum=q[4],
                mean=float(values.mean()) if len(values) else None,
                p90=q[5],
                caught=stage_caught,
                caught_source=sources.get(stage_id)
                if stage_caught is not None and stage_id
                else None,
                containment=(
                    None
                    if stage_caught is None
                    else metrics.containment(stage_caught, int(escaped[i]))
                ),
            )
        )
    return boxes


def weakest(boxes: list[StageBox]) -> tuple[StageBox | None, str | None]:
    """metrics.weakest_stage's choice, made on the boxes."""
    stats = [
        metrics.StageStat(
            stage_id=b.stage_id,
            name=b.name,
            escaped=b.n,
            caught=b.caught,
            containment=b.containment,
            median_deficit=None if b.median is None else timedelta(seconds=b.median),
        )
        for b in boxes
    ]
    pick, reason = metrics.weakest_stage(stats)
    if pick is None:
        return None, None
    return next(b for b in boxes if b.stage_id == pick.stage_id), reason


def pareto(counts: Sequence[tuple[str, str, int]]) -> tuple[ParetoItem, ...]:
    """(key, label, count) with count > 0, largest first, with the cumulative share."""
    ordered = sorted((c for c in counts if c[2] > 0), key=lambda c: -c[2])
    total = sum(c[2] for c in ordered)
    items, running = [], 0
    for key, label, count in ordered:
        running += count
        items.append(ParetoItem(key, label, count, running / total))
    return tuple(items)


def periods(sel: Selected, starts: list[date], period: str) -> tuple[PeriodPoint, ...]:
    count = len(starts)
    n = np.bincount(sel.period, minlength=count)
    known = ~np.isnan(sel.deficit)
    groups = _grouped(sel.period[known], count, sel.deficit[known])
    cats = len(rollup_layout.CATEGORY_KEYS)
    by_category = np.bincount(sel.period * cats + sel.category, minlength=count * cats).reshape(
        count, cats
    )
    return tuple(
        PeriodPoint(
            start=start,
            label=_label(start, period),
            deficit=durations(groups[i], int(n[i])),
            categories={
                key: int(by_category[i, k]) for k, key in enumerate(rollup_layout.CATEGORY_KEYS)
            },
        )
        for i, start in enumerate(starts)
    )
