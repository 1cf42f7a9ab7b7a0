"""Per stage, the mean, median and P90 of the Detection Deficit beside the box plot, and each
release's detection rate: the same figures on the page, in the API and in dashboard.csv.

The numbers are docs/metrics.md's worked examples (Detection Deficits of 1, 2, 3, 4 h; then
1, 2, 3, 4, 100 h; a release with 180 caught and 20 escaped).
"""

import csv
import io
from datetime import date, timedelta
from html.parser import HTMLParser

import pytest

from escapes.models import Release, StageCatch
from insights.release_rollups import release_rollup_recompute
from tests.api.conftest import ApiClient
from tests.conftest import client_for
from tests.dashboard import HOUR, _fresh_cache, add, board, utc  # noqa: F401
from tests.dashboard.test_dashboard_views import page

NOV = {"start": "2026-11-01", "end": "2026-11-30"}
NOV_START, NOV_END = date(2026, 11, 1), date(2026, 11, 30)
NOON = utc(2026, 11, 5, 12)


@pytest.fixture
def worked(team, stages):
    """Stage 0: deficits 1, 2, 3, 4 h. Stage 1: 1, 2, 3, 4, 100 h. Release 2.0: 180 caught,
    20 escapes at no stage and with no merge time (the stages' figures stay the examples')."""
    for h in (1, 2, 3, 4):
        add(team, NOON, deficit=timedelta(hours=h), stage=stages[0])
    for h in (1, 2, 3, 4, 100):
        add(team, NOON, deficit=timedelta(hours=h), stage=stages[1])
    release = Release.objects.create(team=team, version="2.0", released_at=utc(2026, 11, 2))
    StageCatch.objects.create(release=release, stage=stages[0], caught=100)
    StageCatch.objects.create(release=release, stage=stages[1], caught=80)
    for _ in range(20):
        add(team, NOON, deficit=None, release=release, released_at=release.released_at)
    board(team, NOV_START, NOV_END)  # recomputes the escape rollups
    release_rollup_recompute(team_id=team.pk)  # the task release_create queues on commit
    return release


def test_each_stage_box_carries_its_mean_and_p90(team, stages, worked):
    result = board(team, NOV_START, NOV_END)
    first, second = result.stages[0], result.stages[1]
    assert (first.n, first.known) == (4, 4)
    assert first.mean == pytest.approx(2.5 * HOUR)
    assert first.median == pytest.approx(2.5 * HOUR)
    assert first.p90 == pytest.approx(3.7 * HOUR)
    # The long tail moves the mean and the P90, not the median.
    assert second.mean == pytest.approx(22 * HOUR)
    assert second.median == pytest.approx(3 * HOUR)
    assert second.p90 == pytest.approx(61.6 * HOUR)
    # A stage without a known deficit: n may be counted, the figures are unknown.
    unattributed = result.stages[-1]
    assert unattributed.n == 20 and unattributed.known == 0
    assert (unattributed.mean, unattributed.median, unattributed.p90) == (None, None, None)


def test_a_release_bar_carries_its_detection_rate(team, stages, worked):
    (bar,) = board(team, NOV_START, NOV_END).releases
    assert (bar.escapes, bar.caught) == (20, 180)
    assert bar.escape_rate == pytest.approx(0.10)
    assert bar.detection_rate == pytest.approx(0.90)


class StageFigures(HTMLParser):
    """The <li data-stage-figures> beside the box plot: stage name -> {figure: text}."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.figures: dict[str, dict[str, str]] = {}
        self._stage: dict[str, str] | None = None
        self._name: list[str] | None = None
        self._figure: str | None = None
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "li" and "data-stage-figures" in a:
            self._stage = {}
        elif tag == "strong" and self._stage is not None and a.get("class") == "stage-name":
            self._name = []
        elif tag == "dd" and self._stage is not None:
            self._figure = a.get("data-figure")

    def handle_endtag(self, tag: str) -> None:
        if tag == "strong" and self._name is not None and self._stage is not None:
            self.figures["".join(self._name).strip()] = self._stage
            self._name = None
        elif tag == "dd":
            self._figure = None
        elif tag == "li":
            self._stage = None

    def handle_data(self, data: str) -> None:
        if self._name is not None:
            self._name.append(data)
        elif self._figure and self._stage is not None:
            self._stage[self._figure] = self._stage.get(self._figure, "") + data.strip()


def test_the_page_shows_mean_median_and_p90_beside_each_box(member, team, stages, worked):
    client = client_for(member)
    response = client.get(f"/t/{team.slug}/dashboard/", NOV)
    html = response.content.decode()
    figures = StageFigures(html).figures
    assert figures[stages[0].name] == {
        "mean": "2 h 30 min",
        "median": "2 h 30 min",
        "p90": "3 h 42 min",
    }
    assert figures[stages[1].name] == {"mean": "22 h", "median": "3 h", "p90": "2 d 14 h"}
    assert figures["Unattributed"] == {"mean": "—", "median": "—", "p90": "—"}
    # The figures stand after the box plot and before its Numbers table.
    plot = html.index('data-chart="stages"')
    assert plot < html.index("data-stage-figures") < html.index('id="stage-0"')
    # The Numbers table has them too: escaped, known, mean, median, P90, min, Q1, Q3, max.
    tables = page(client, f"/t/{team.slug}/dashboard/", **NOV)
    assert tables.rows["stage-1"][1:6] == ["5", "5", "22 h", "3 h", "2 d 14 h"]
    assert tables.rows["stage-0"][1:6] == ["4", "4", "2 h 30 min", "2 h 30 min", "3 h 42 min"]
    assert tables.rows["stage-0"][6:10] == ["1 h", "1 h 45 min", "3 h 15 min", "4 h"]
    # The chart data carries them for the markers beside each box.
    chart = response.context["numbers"]
    assert '"mean": [9000.0, 79200.0' in chart and '"p90": [13320.0' in chart


def test_the_page_shows_each_releases_detection_rate(member, team, stages, worked):
    tables = page(client_for(member), f"/t/{team.slug}/dashboard/", **NOV)
    assert tables.rows["release-0"] == [
        "2.0", "2026-11-02 01:00", "20", "180", "10.0 %", "90.0 %", "typed",
    ]  # fmt: skip


def test_the_all_teams_page_shows_the_same_figures(member, team, stages, worked):
    figures = StageFigures(client_for(member).get("/dashboard/", NOV).content.decode()).figures
    assert figures[stages[1].name] == {
        "mean": "22 h",
        "median": "3 h",
        "p90": "2 d 14 h",
    }


def test_the_api_gives_each_stages_mean_and_p90_and_each_releases_detection_rate(
    member_api: ApiClient, team, stages, worked
):
    body = member_api.get(f"/teams/{team.slug}/dashboard", NOV).json()
    first, second = body["stages"][0], body["stages"][1]
    assert (first["mean"], first["median"]) == (2.5 * HOUR, 2.5 * HOUR)
    assert first["p90"] == pytest.approx(3.7 * HOUR)
    assert (second["mean"], second["median"]) == (22 * HOUR, 3 * HOUR)
    assert second["p90"] == pytest.approx(61.6 * HOUR)
    assert body["stages"][-1]["mean"] is None and body["stages"][-1]["p90"] is None
    (release,) = body["releases"]
    assert release["escape_rate"] == pytest.approx(0.10)
    assert release["detection_rate"] == pytest.approx(0.90)
    everyone = member_api.get("/dashboard", NOV).json()
    assert everyone["stages"][1]["p90"] == pytest.approx(61.6 * HOUR)


def test_the_openapi_document_describes_the_new_fields(db, client):
    schemas = client.get("/api/v1/openapi.json").json()["components"]["schemas"]
    assert {"mean", "p90"} <= set(schemas["StageBoxOut"]["properties"])
    releases = [
        s for s in schemas.values() if "escape_rate" in s.get("properties", {})
        and "team_slug" in s.get("properties", {})
    ]  # fmt: skip
    assert releases and all("detection_rate" in s["properties"] for s in releases)


def test_the_csv_gives_each_stages_mean_median_p90_and_each_releases_detection(
    member, team, stages, worked
):
    response = client_for(member).get(f"/t/{team.slug}/dashboard.csv", NOV)
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))

    def cell(section: str, item: str, measure: str) -> tuple[float | None, str]:
        (row,) = [
            r for r in rows if (r["section"], r["item"], r["measure"]) == (section, item, measure)
        ]
        return float(row["value"]) if row["value"] else None, row["text"]

    assert cell("stages", stages[0].name, "mean") == (2.5 * HOUR, "2 h 30 min")
    assert cell("stages", stages[0].name, "median") == (2.5 * HOUR, "2 h 30 min")
    p90, text = cell("stages", stages[0].name, "p90")
    assert p90 == pytest.approx(3.7 * HOUR) and text == "3 h 42 min"
    assert cell("stages", stages[1].name, "mean") == (22 * HOUR, "22 h")
    p90, text = cell("stages", stages[1].name, "p90")
    assert p90 == pytest.approx(61.6 * HOUR) and text == "2 d 14 h"
    assert cell("stages", "Unattributed", "p90") == (None, "—")
    rate, text = cell("releases", "2.0", "detection_rate")
    assert rate == pytest.approx(0.90) and text == "90.0 %"


def test_the_release_count_and_follow_through_shares_reach_the_api_and_csv(
    member, member_api: ApiClient, team, stages, worked
):
    """The page says "the newest 60 of the N releases" and each follow-through share."""
    body = member_api.get(f"/teams/{team.slug}/dashboard", NOV).json()
    assert body["releases_total"] == 1
    follow = body["follow_through"]
    assert follow["actions"] == 0
    assert (follow["pushed_share"], follow["done_share"], follow["overdue_share"]) == (
        None,
        None,
        None,
    )  # no actions: unknown, not 0 %
    response = client_for(member).get(f"/t/{team.slug}/dashboard.csv", NOV)
    rows = {
        (r["section"], r["measure"]): (r["value"], r["text"])
        for r in csv.DictReader(io.StringIO(response.content.decode()))
        if not r["item"]
    }
    assert rows[("releases", "releases_total")] == ("1", "1")
    assert rows[("follow_through", "pushed_share")] == ("", "—")
    assert rows[("follow_through", "overdue_share")] == ("", "—")


class Figures(HTMLParser):
    """Every figure of the dashboard's numbers: table cells of class "num", headline values
    (data-metric) and the stage figures (data-figure), as text."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.texts: list[str] = []
        self._open: list[str] | None = None
        self._depth = 0
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if self._open is not None:
            self._depth += 1
        elif ("num" in (a.get("class") or "").split() and tag == "td") or (
            "data-metric" in a or "data-figure" in a
        ):
            self._open, self._depth = [], 0

    def handle_endtag(self, tag: str) -> None:
        if self._open is None:
            return
        if self._depth:
            self._depth -= 1
            return
        text = " ".join("".join(self._open).split())
        if text:
            self.texts.append(text)
        self._open = None

    def handle_data(self, data: str) -> None:
        if self._open is not None:
            self._open.append(data)


def test_every_figure_on_the_dashboard_is_in_the_csv(member, team, stages, worked):
    """The audit of issue 13: whatever number the page shows, the CSV has it as shown."""
    from tests.dashboard.test_dashboard_views import build_dataset

    build_dataset(team)  # problems, categories, another release, other months
    client = client_for(member)
    for start, end in (("2026-01-01", "2026-12-31"), ("2026-11-01", "2026-11-30")):
        range_ = {"start": start, "end": end}
        html = client.get(f"/t/{team.slug}/dashboard/", range_).content.decode()
        shown = Figures(html).texts
        assert len(shown) > 50, shown
        body = client.get(f"/t/{team.slug}/dashboard.csv", range_).content.decode()
        rows = list(csv.DictReader(io.StringIO(body)))
        known = {r[k] for r in rows for k in ("item", "value", "text")}
        known |= {w for r in rows if r["section"] == "data_problems" for w in r["text"].split()}
        missing = sorted({t for t in shown if t.lstrip("#") not in known})
        assert missing == [], missing


def _numbers(value: object) -> set[float]:
    """Every number in a JSON answer, rounded to a millisecond."""
    if isinstance(value, bool):
        return set()
    if isinstance(value, int | float):
        return {round(float(value), 3)}
    if isinstance(value, dict):
        return set().union(*(_numbers(v) for v in value.values())) if value else set()
    if isinstance(value, list):
        return set().union(*(_numbers(v) for v in value)) if value else set()
    return set()


def test_every_number_of_the_csv_is_in_the_api(member, member_api: ApiClient, team, stages, worked):
    """With the test above, every figure on the page is in the API too."""
    from tests.dashboard.test_dashboard_views import build_dataset

    build_dataset(team)
    range_ = {"start": "2026-01-01", "end": "2026-12-31"}
    api = _numbers(member_api.get(f"/teams/{team.slug}/dashboard", range_).json())
    body = client_for(member).get(f"/t/{team.slug}/dashboard.csv", range_).content.decode()
    rows = [r for r in csv.DictReader(io.StringIO(body)) if r["value"] and r["section"] != "query"]
    assert len(rows) > 100
    missing = [r for r in rows if round(float(r["value"]), 3) not in api]
    assert missing == [], missing
