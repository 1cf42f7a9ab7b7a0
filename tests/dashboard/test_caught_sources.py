"""Measured and typed caught counts on the dashboard (docs/metrics.md, "Typed and measured
counts"): containment uses the measured counts, and the page, the API and dashboard.csv say
per stage and per release whether the counts were measured, typed, or both."""

import csv
import io
from datetime import date, datetime, timedelta
from typing import Any

import pytest

from escapes.models import PipelineStage, Release, StageCatch
from escapes.services import stage_catches_report
from escapes.stage_services import release_catches_set
from evidence.catches import measured_catches_refresh
from evidence.models import MeasuredCatch, TrackedTest
from insights.release_rollups import release_rollup_recompute
from insights.rollups import rollups_recompute_all
from insights.tasks import rollup_releases_task
from teams.models import Team
from tests.api.conftest import ApiClient
from tests.conftest import client_for
from tests.dashboard import add, board, run_when_queued, utc
from tests.dashboard.test_dashboard_views import page

pytestmark = pytest.mark.django_db

NOV = {"start": "2026-11-01", "end": "2026-11-30"}
NOV_START, NOV_END = date(2026, 11, 1), date(2026, 11, 30)


def catches(team: Team, stage: PipelineStage, n: int, fixed_at: datetime) -> None:
    """n tests of the stage, each caught once, fixed at `fixed_at`."""
    for i in range(n):
        test = TrackedTest.objects.create(
            team=team,
            stage=stage,
            name=f"{stage.name}-{fixed_at:%d}-{i}",
            key=f"{stage.pk}-{fixed_at:%d}-{i}",
            first_run_at=fixed_at,
            last_run_at=fixed_at,
            last_outcome="passed",
        )
        MeasuredCatch.objects.create(
            team=team,
            stage=stage,
            test=test,
            failed_at=fixed_at - timedelta(hours=1),
            failed_commit="f1",
            fixed_at=fixed_at,
            fixed_commit="f2",
        )


@pytest.fixture
def mixed(team, stages) -> tuple[Release, Release]:
    """Release 2.0 (2 Nov): Unit measured 6, Integration typed 30. Release 2.1 (20 Nov):
    Unit measured 2, Integration measured 4. E2E reports nothing. Escapes in November:
    Unit 2, Integration 10."""
    unit, integration = stages[0], stages[1]
    first = Release.objects.create(team=team, version="2.0", released_at=utc(2026, 11, 2))
    second = Release.objects.create(team=team, version="2.1", released_at=utc(2026, 11, 20))
    catches(team, unit, 6, utc(2026, 11, 1))
    catches(team, integration, 3, utc(2026, 11, 1))  # typed over: not counted
    catches(team, unit, 2, utc(2026, 11, 15))
    catches(team, integration, 4, utc(2026, 11, 16))
    stage_catches_report(release=first, counts={integration: 30})
    measured_catches_refresh(team.pk, {unit.pk, integration.pk}, utc(2026, 10, 1))
    for _ in range(2):
        add(team, utc(2026, 11, 21, 12), stage=unit)
    for _ in range(10):
        add(team, utc(2026, 11, 21, 12), stage=integration)
    rollups_recompute_all()  # and the release rollups
    return first, second


def test_containment_uses_measured_counts_and_says_where_they_came_from(team, stages, mixed):
    result = board(team, NOV_START, NOV_END)
    unit, integration, e2e = result.stages[:3]
    assert (unit.caught, unit.caught_source) == (8, "measured")
    assert unit.containment == pytest.approx(8 / 10)
    assert (integration.caught, integration.caught_source) == (34, "both")
    assert integration.containment == pytest.approx(34 / 44)
    assert (e2e.caught, e2e.caught_source, e2e.containment) == (None, None, None)
    assert result.stages[-1].caught_source is None  # unattributed
    by_version = {bar.version: bar for bar in result.releases}
    assert (by_version["2.0"].caught, by_version["2.0"].caught_source) == (36, "both")
    assert (by_version["2.1"].caught, by_version["2.1"].caught_source) == (6, "measured")


def test_only_typed_counts_are_typed(team, stages):
    release = Release.objects.create(team=team, version="1.0", released_at=utc(2026, 11, 2))
    stage_catches_report(release=release, counts={stages[0]: 5})
    release_rollup_recompute(team_id=team.pk)
    result = board(team, NOV_START, NOV_END)
    assert (result.stages[0].caught, result.stages[0].caught_source) == (5, "typed")
    assert result.releases[0].caught_source == "typed"


def test_a_filter_that_hides_the_counts_hides_their_source(team, stages, mixed):
    result = board(team, NOV_START, NOV_END, severity="high")
    assert {(s.caught, s.caught_source) for s in result.stages} == {(None, None)}


def test_the_page_marks_each_stage_and_release(member, team, stages, mixed):
    tables = page(client_for(member), f"/t/{team.slug}/dashboard/", **NOV)
    assert tables.rows["stage-0"][-3:] == ["8", "80.0 %", "measured"]
    assert tables.rows["stage-1"][-3:] == ["34", "77.3 %", "measured and typed"]
    assert tables.rows["stage-2"][-3:] == ["—", "—", "—"]
    assert tables.rows["release-0"][0] == "2.1"
    assert tables.rows["release-0"][-1] == "measured"
    assert tables.rows["release-1"][-1] == "measured and typed"
    html = client_for(member).get(f"/t/{team.slug}/dashboard/", NOV).content.decode()
    assert (
        "Integration: lowest containment, 77.3 % (34 caught, measured and typed, 10 escaped)"
        in html
    )


def test_the_api_carries_the_source(member_api: ApiClient, team, stages, mixed):
    body = member_api.get(f"/teams/{team.slug}/dashboard", NOV).json()
    assert [(s["caught"], s["caught_source"]) for s in body["stages"]] == [
        (8, "measured"),
        (34, "both"),
        (None, None),
        (None, None),
    ]
    assert [(r["version"], r["caught_source"]) for r in body["releases"]] == [
        ("2.1", "measured"),
        ("2.0", "both"),
    ]
    everyone = member_api.get("/dashboard", NOV).json()
    assert everyone["stages"][1]["caught_source"] == "both"


def test_the_openapi_document_describes_the_source(db, client):
    schemas = client.get("/api/v1/openapi.json").json()["components"]["schemas"]
    stage = schemas["StageBoxOut"]["properties"]["caught_source"]
    release = schemas["DashboardReleaseOut"]["properties"]["caught_source"]
    for field in (stage, release):
        text = str(field)
        assert "measured" in text and "typed" in text and "both" in text


def test_the_csv_carries_the_source_as_the_page_says_it(member, team, stages, mixed):
    response = client_for(member).get(f"/t/{team.slug}/dashboard.csv", NOV)
    rows = {
        (r["section"], r["item"], r["measure"]): (r["value"], r["text"])
        for r in csv.DictReader(io.StringIO(response.content.decode()))
    }
    assert rows[("stages", stages[0].name, "caught_source")] == ("", "measured")
    assert rows[("stages", stages[1].name, "caught_source")] == ("", "measured and typed")
    assert rows[("stages", stages[2].name, "caught_source")] == ("", "—")
    assert rows[("releases", "2.0", "caught_source")] == ("", "measured and typed")
    assert rows[("releases", "2.1", "caught_source")] == ("", "measured")


def test_a_measured_recount_reaches_the_dashboard_through_the_worker(
    team, stages, monkeypatch, django_capture_on_commit_callbacks
):
    worker: list[tuple[Any, ...]] = run_when_queued(monkeypatch, rollup_releases_task)
    unit = stages[0]
    with django_capture_on_commit_callbacks(execute=True):
        Release.objects.create(team=team, version="3.0", released_at=utc(2026, 11, 10))
    release_rollup_recompute(team_id=team.pk)
    assert board(team, NOV_START, NOV_END).stages[0].caught is None

    catches(team, unit, 3, utc(2026, 11, 5))
    with django_capture_on_commit_callbacks(execute=True):
        measured_catches_refresh(team.pk, {unit.pk}, utc(2026, 11, 5))

    assert worker == [(team.pk,)]
    result = board(team, NOV_START, NOV_END)
    assert (result.stages[0].caught, result.stages[0].caught_source) == (3, "measured")

    # Nothing changed: nothing queued.
    with django_capture_on_commit_callbacks(execute=True):
        measured_catches_refresh(team.pk, {unit.pk}, utc(2026, 11, 5))
    assert worker == [(team.pk,)]


def test_typing_then_clearing_moves_the_dashboard_between_typed_and_measured(
    team, stages, monkeypatch, django_capture_on_commit_callbacks
):
    run_when_queued(monkeypatch, rollup_releases_task)
    unit = stages[0]
    release = Release.objects.create(team=team, version="4.0", released_at=utc(2026, 11, 10))
    catches(team, unit, 2, utc(2026, 11, 5))
    with django_capture_on_commit_callbacks(execute=True):
        release_catches_set(release=release, counts={unit: 50})
    first = board(team, NOV_START, NOV_END).stages[0]
    assert (first.caught, first.caught_source) == (50, "typed")

    with django_capture_on_commit_callbacks(execute=True):
        release_catches_set(release=release, counts={unit: None})

    assert StageCatch.objects.get(release=release).source == "measured"
    then = board(team, NOV_START, NOV_END).stages[0]
    assert (then.caught, then.caught_source) == (2, "measured")


def test_a_rollup_written_before_sources_were_kept_reads_as_typed(team, stages, mixed):
    from insights.models import ReleaseRollup
    from insights.release_rollups import release_blocks, release_rollups_cache_clear

    row = ReleaseRollup.objects.get(team=team)
    catches_kept = row.meta["catches"]
    # The old layout: the same columns without the last one (one byte per catch).
    row.columns = bytes(row.columns)[:-catches_kept]
    row.meta = {k: v for k, v in row.meta.items() if k != "sources"}
    row.digest = "old"
    row.save()
    release_rollups_cache_clear()

    block = release_blocks([team.pk])[team.pk]

    assert block.catch_caught.sum() == 8 + 30 + 4
    assert not block.catch_measured.any()
    release_rollup_recompute(team_id=team.pk)  # the next recompute writes the new layout
    assert release_blocks([team.pk])[team.pk].catch_measured.sum() == 3
