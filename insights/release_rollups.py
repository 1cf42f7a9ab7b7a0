"""Release rollups: each team's releases and stage catches as compact columns, kept by Celery.

The dashboard's release bars, escape rates and containment need every release of the range
and what its stages caught. Read from `Release` and `StageCatch` with one window per team,
that was three queries and a fifty-way OR per page; from these rows it is arrays in memory.

Layout. One `ReleaseRollup` row per team (also when it has no release). `columns` holds, back
to back (little-endian): `RELEASE_COLUMNS` of its releases in (released_at, id) order, then
`CATCH_COLUMNS` of its stage catches (`meta["catches"]` entries; "release" is the position of
the release in the first part; "measured" is 1 for a count measured from CI test results,
0 for a typed one). `meta["versions"]` are the releases' version strings. A row written
before the "measured" column existed lacks `meta["sources"]`: its counts read as typed until
the next recompute rewrites it (its digest differs).

Freshness. `release_create`, `stage_catches_report` and `release_catches_set` queue
`insights.rollup_releases` on commit (`release_rollup_queue`); beat's full recompute rebuilds
every team's row with its escape rollups (`release_rollup_recompute` is cheap: a team has
hundreds of releases, not millions). A team whose row is missing is "stale" on the dashboard.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

import numpy as np
from django.db import transaction
from django.utils import timezone

from config.celery import registered_task
from escapes.models import CatchSource
from escapes.release_selectors import releases_of_team, stage_catches_of_team
from insights.models import ReleaseRollup
from teams.services import team_lock

log = logging.getLogger(__name__)

RELEASE_COLUMNS: tuple[tuple[str, str], ...] = (
    ("id", "<i8"),
    ("released", "<i8"),  # µs since the epoch, UTC
)
CATCH_COLUMNS: tuple[tuple[str, str], ...] = (
    ("stage", "<i8"),  # stage id
    ("caught", "<i8"),
    ("release", "<i4"),  # position of the release in the release columns
    ("measured", "<i1"),  # 1: measured from CI test results (evidence), 0: typed
)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_US = timedelta(microseconds=1)


def to_us(moment: datetime) -> int:
    return (moment - _EPOCH) // _US


def from_us(us: int) -> datetime:
    return _EPOCH + timedelta(microseconds=us)


# --- Writing ----------------------------------------------------------------------------


def _build(team_id: int) -> tuple[int, bytes, dict[str, Any], str]:
    rows = list(
        releases_of_team(team_id)
        .order_by("released_at", "id")
        .values_list("id", "released_at", "version")
    )
    position = {rid: i for i, (rid, _, _) in enumerate(rows)}
    catches = list(
        stage_catches_of_team(team_id)
        .order_by("release_id", "stage_id")
        .values_list("release_id", "stage_id", "caught", "source")
    )
    columns = b"".join(
        [
            np.asarray([r[0] for r in rows], dtype="<i8").tobytes(),
            np.asarray([to_us(r[1]) for r in rows], dtype="<i8").tobytes(),
            np.asarray([c[1] for c in catches], dtype="<i8").tobytes(),
            np.asarray([c[2] for c in catches], dtype="<i8").tobytes(),
            np.asarray([position[c[0]] for c in catches], dtype="<i4").tobytes(),
            np.asarray([c[3] == CatchSource.MEASURED for c in catches], dtype="<i1").tobytes(),
        ]
    )
    meta = {"versions": [r[2] for r in rows], "catches": len(catches), "sources": True}
    digest = hashlib.sha1(columns, usedforsecurity=False)
    digest.update(repr(meta).encode())
    return len(rows), columns, meta, digest.hexdigest()


def release_rollup_recompute(*, team_id: int) -> bool:
    """Rebuild the team's row from its committed releases; True when it changed."""
    with transaction.atomic():
        if team_lock(team_id=team_id) is None:
            return False
        count, columns, meta, digest = _build(team_id)
        now = timezone.now()
        current = ReleaseRollup.objects.filter(team_id=team_id).values_list("digest", flat=True)
        if current.first() == digest:
            ReleaseRollup.objects.filter(team_id=team_id).update(computed_at=now)
            return False
        ReleaseRollup.objects.update_or_create(
            team_id=team_id,
            defaults={
                "releases": count,
                "columns": columns,
                "meta": meta,
                "digest": digest,
                "computed_at": now,
            },
        )
        return True


def release_rollup_queue(*, team_id: int) -> None:
    """On commit, queue the rebuild of the team's release rollup (nothing on rollback)."""
    transaction.on_commit(partial(_enqueue, team_id))


def _enqueue(team_id: int) -> None:
    try:
        registered_task("insights.rollup_releases").delay(team_id)
    except Exception:
        # The release is committed; beat's full recompute brings the rollup up to date.
        log.exception("release rollup of team %s not queued", team_id)


# --- Reading ----------------------------------------------------------------------------


@dataclass(frozen=True)
class ReleaseBlock:
    team_id: int
    digest: str
    computed_at: datetime
    ids: np.ndarray
    released: np.ndarray  # µs, ascending
    versions: list[str]
    catch_stage: np.ndarray
    catch_caught: np.ndarray
    catch_release: np.ndarray
    catch_measured: np.ndarray  # bool per catch: measured (else typed)

    def window(self, lower: datetime, upper: datetime) -> slice:
        """The releases released in [lower, upper)."""
        start = int(np.searchsorted(self.released, to_us(lower), "left"))
        end = int(np.searchsorted(self.released, to_us(upper), "left"))
        return slice(start, end)


def _decode(
    team_id: int, digest: str, computed_at: datetime, row: Mapping[str, Any]
) -> ReleaseBlock:
    raw, n, m = row["columns"], row["releases"], row["meta"]["catches"]
    catch_layout = CATCH_COLUMNS if row["meta"].get("sources") else CATCH_COLUMNS[:-1]
    arrays: list[np.ndarray] = []
    offset = 0
    for layout, count in ((RELEASE_COLUMNS, n), (catch_layout, m)):
        for _, dtype in layout:
            array = np.frombuffer(raw, dtype=dtype, count=count, offset=offset)
            arrays.append(array)
            offset += array.nbytes
    if len(arrays) < len(RELEASE_COLUMNS) + len(CATCH_COLUMNS):
        arrays.append(np.zeros(m, dtype="<i1"))  # written before sources were kept: typed
    ids, released, stage, caught, release, measured = arrays
    return ReleaseBlock(
        team_id,
        digest,
        computed_at,
        ids,
        released,
        row["meta"]["versions"],
        stage,
        caught,
        release,
        measured.astype(bool),
    )


@dataclass(frozen=True)
class ReleaseRef:
    """One release of a block."""

    block: ReleaseBlock
    position: int

    @property
    def id(self) -> int:
        return int(self.block.ids[self.position])

    @property
    def team_id(self) -> int:
        return self.block.team_id

    @property
    def version(self) -> str:
        return self.block.versions[self.position]

    @property
    def released_at(self) -> datetime:
        return from_us(int(self.block.released[self.position]))


def newest(parts: Iterable[tuple[ReleaseBlock, np.ndarray]], k: int) -> list[ReleaseRef]:
    """The k newest of these releases (positions in ascending order of each block), newest
    first; ties: the higher id first."""
    tails = [(block, positions[-k:]) for block, positions in parts]
    if not tails:
        return []
    released = np.concatenate([block.released[p] for block, p in tails])
    ids = np.concatenate([block.ids[p] for block, p in tails])
    owner = np.concatenate([np.full(len(p), i) for i, (_, p) in enumerate(tails)])
    position = np.concatenate([p for _, p in tails])
    chosen = np.lexsort((ids, released))[::-1][:k]  # by released, then id; newest first
    return [ReleaseRef(tails[int(owner[i])][0], int(position[i])) for i in chosen]


def everything(blocks: Iterable[ReleaseBlock]) -> list[tuple[ReleaseBlock, np.ndarray]]:
    """Every release of these blocks, for `newest`."""
    return [(block, np.arange(len(block.ids))) for block in blocks]


def find(blocks: Iterable[ReleaseBlock], release_id: int) -> list[ReleaseRef]:
    """The release with this id among these teams' (none or one)."""
    return [ReleaseRef(b, int(p)) for b in blocks for p in np.flatnonzero(b.ids == release_id)]


_cache: dict[int, ReleaseBlock] = {}
_cache_lock = threading.Lock()


def release_blocks(team_ids: list[int]) -> dict[int, ReleaseBlock]:
    """The release rollups of these teams (a team without a row has none).

    One query for the rows' digests, one more for the columns of rows this process has not
    seen in that version.
    """
    found = list(
        ReleaseRollup.objects.filter(team_id__in=team_ids).values_list(
            "team_id", "digest", "computed_at"
        )
    )
    with _cache_lock:
        known = {t: b for t, b in _cache.items() if t in team_ids}
    missing = [t for t, digest, _ in found if t not in known or known[t].digest != digest]
    columns = {
        r["team_id"]: r
        for r in ReleaseRollup.objects.filter(team_id__in=missing).values(
            "team_id", "releases", "columns", "meta"
        )
    }
    result = {}
    for team_id, digest, computed_at in found:
        block = known.get(team_id)
        if block is None or block.digest != digest:
            if team_id not in columns:  # rewritten between the two queries: next time
                continue
            block = _decode(team_id, digest, computed_at, columns[team_id])
        elif block.computed_at != computed_at:
            block = replace(block, computed_at=computed_at)
        result[team_id] = block
    with _cache_lock:
        _cache.update(result)
    return result


def release_rollups_cache_clear() -> None:
    with _cache_lock:
        _cache.clear()
