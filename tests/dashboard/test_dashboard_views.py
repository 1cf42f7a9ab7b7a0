"""The dashboard pages and their CSV: real escapes, through the real `dashboard()`, into tables."""

import csv
import io
import re
from datetime import UTC, datetime
from html.parser import HTMLParser
from urllib.parse import parse_qs, urlsplit

import pytest
from django.test import Client

from escapes.models import Category, Escape, PipelineStage, Release, Severity
from insights import dashboard as numbers
from insights import dashboard_page as dashboard_views
from insights.models import EscapeRollup, ReleaseRollup
from insights.release_rollups import release_rollup_recompute
from insights.rollups import rollups_recompute_team
from teams.models import Team
from tests.api.conftest import api_for
from tests.conftest import client_for

pytestmark = pytest.mark.skipif(
    not hasattr(numbers, "dashboard"), reason="insights.dashboard.dashboard() is not written yet"
)

RANGE = {"start": "2026-01-01", "end": "2026-03-31"}


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def build_dataset(team: Team) -> dict[str, Escape]:
    """Four escapes in January and February 2026 (Berlin), none in March.

    January: deficits of 24 h and 48 h (mean and median 36 h, P90 45.6 h), both at the first
    stage, Coverage Gap, component payments. February: one without a merge time, one detected
    before it was merged (a negative deficit): n = 2, deficit known for 0.
    """
    stage = team.stages.order_by("position").first()
    assert isinstance(stage, PipelineStage)
    release = Release.objects.create(
        team=team, version="2026.1", released_at=at("2026-01-04T09:00")
    )
    common = {"team": team, "release": release, "released_at": release.released_at}
    escapes = {
        "a": Escape.objects.create(
            **common,
            title="a",
            merged_at=at("2026-01-05T10:00"),
            detected_at=at("2026-01-06T10:00"),
            stage=stage,
            category=Category.COVERAGE_GAP,
            component="payments",
            severity=Severity.HIGH,
        ),
        "b": Escape.objects.create(
            **common,
            title="b",
            merged_at=at("2026-01-10T10:00"),
            detected_at=at("2026-01-12T10:00"),
            stage=stage,
            category=Category.COVERAGE_GAP,
            component="payments",
            severity=Severity.LOW,
        ),
        "c": Escape.objects.create(
            **common,
            title="c",
            detected_at=at("2026-02-15T10:00"),
            category=Category.FLAKINESS,
            component="search",
        ),
        "d": Escape.objects.create(
            **common,
            title="d",
            merged_at=at("2026-02-21T10:00"),
            detected_at=at("2026-02-20T10:00"),
            component="search",
        ),
    }
    # Written past the services, so the rollups the dashboard reads are computed here.
    rollups_recompute_team(team_id=team.pk)
    return escapes


class Tables(HTMLParser):
    """Each <tr id=...>: its cells' text and the hrefs of its links."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.rows: dict[str, list[str]] = {}
        self.links: dict[str, list[str]] = {}
        self._row: str | None = None
        self._cell: list[str] | None = None
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        row_id = a.get("id")
        if tag == "tr" and row_id:
            self._row = row_id
            self.rows[row_id], self.links[row_id] = [], []
        elif tag in ("td", "th") and self._row:
            self._cell = []
        elif tag == "a" and self._row and a.get("href"):
            self.links[self._row].append(a["href"] or "")

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self._row and self._cell is not None:
            self.rows[self._row].append(" ".join("".join(self._cell).split()))
            self._cell = None
        elif tag == "tr":
            self._row = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)


def page(client: Client, url: str, **params: str) -> Tables:
    response = client.get(url, params)
    assert response.status_code == 200, response.content[:500]
    return Tables(response.content.decode())


def query_of(href: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(href).query).items()}


@pytest.fixture
def dataset(team) -> dict[str, Escape]:
    return build_dataset(team)


def test_the_mttd_table_shows_mean_median_p90_and_empty_months_as_zero(member, team, dataset):
    tables = page(client_for(member), f"/t/{team.slug}/dashboard/", **RANGE)
    assert tables.rows["mttd-0"] == [
        "2026-01",
        "2",
        "deficit known for 2 of 2",
        "1 d 12 h",
        "1 d 12 h",
        "1 d 22 h",
    ]
    assert tables.rows["mttd-1"][:3] == ["2026-02", "2", "deficit known for 0 of 2"]
    assert tables.rows["mttd-2"] == ["2026-03", "0", "deficit known for 0 of 0", "—", "—", "—"]


def test_week_periods_split_the_range_into_iso_weeks(member, team, dataset):
    tables = page(client_for(member), f"/t/{team.slug}/dashboard/", period="week", **RANGE)
    labels = [cells[0] for row, cells in tables.rows.items() if row.startswith("mttd-")]
    assert labels[0] == "2026-W01" and len(labels) == 14
    assert "2026-W02" in labels and "2026-W07" in labels


def test_stage_box_pareto_and_problems_tables_carry_the_numbers(member, team, dataset):
    tables = page(client_for(member), f"/t/{team.slug}/dashboard/", **RANGE)
    first_stage = tables.rows["stage-0"]
    # escaped, known, mean 36 h, median 36 h, P90 45.6 h, minimum 24 h, ..., maximum 48 h
    assert first_stage[1:7] == ["2", "2", "1 d 12 h", "1 d 12 h", "1 d 22 h", "1 d"]
    assert first_stage[9] == "2 d"
    assert tables.rows["category-0"][:2] == ["Coverage Gap", "2"]
    assert tables.rows["problem-negative_deficit"][1:] == ["1", f"#{dataset['d'].pk}"]
    assert tables.rows["problem-missing_merged_at"][1:] == ["1", f"#{dataset['c'].pk}"]


def test_every_number_links_to_the_register_filtered_to_its_escapes(member, team, dataset):
    tables = page(client_for(member), f"/t/{team.slug}/dashboard/", severity="high", **RANGE)
    register = f"/t/{team.slug}/escapes/"
    january = query_of(tables.links["mttd-0"][0])
    assert tables.links["mttd-0"][0].startswith(register)
    assert january == {
        "detected_from": "2026-01-01",
        "detected_to": "2026-01-31",
        "severity": "high",
    }
    stage = query_of(tables.links["stage-0"][0])
    assert stage["stage"] == str(dataset["a"].stage_id)
    # The negative-deficit escape is of medium severity: filtered out, and so is its link.
    assert tables.links["problem-negative_deficit"] == []
    tables = page(client_for(member), f"/t/{team.slug}/dashboard/", **RANGE)
    problem = query_of(tables.links["problem-negative_deficit"][0])
    assert problem["problem"] == "negative_deficit"
    coverage = [q for q in map(query_of, tables.links["cat-0"]) if q.get("category")]
    assert {"category": "coverage_gap", "detected_to": "2026-01-31"}.items() <= coverage[0].items()


def test_the_register_applies_the_filters_the_dashboard_links_carry(member, team, dataset):
    tables = page(client_for(member), f"/t/{team.slug}/dashboard/", **RANGE)
    response = client_for(member).get(tables.links["category-0"][0])
    titles = {e.title for e in response.context["page_obj"]}
    assert titles == {"a", "b"}


def test_filters_narrow_the_numbers(member, team, dataset):
    tables = page(client_for(member), f"/t/{team.slug}/dashboard/", component="search", **RANGE)
    assert tables.rows["mttd-0"][1] == "0"
    assert tables.rows["mttd-1"][:3] == ["2026-02", "2", "deficit known for 0 of 2"]


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"start": "2026-13-01"}, "From"),
        ({"end": "yesterday"}, "To"),
        ({"period": "fortnight"}, "Period"),
        ({"severity": "bogus"}, "Severity"),
        ({"release": "999999"}, "Release"),
        ({"component": "nope"}, "Component"),
        ({"start": "2026-03-01", "end": "2026-01-01"}, "From"),
        ({"start": "1900-01-01", "end": "2026-01-01", "period": "week"}, "From"),
    ],
)
def test_a_bad_query_value_is_named_and_the_default_shown(member, team, params, field):
    response = client_for(member).get(f"/t/{team.slug}/dashboard/", params)
    assert response.status_code == 200
    errors = re.findall(r'<li class="msg-error">([^<]*)</li>', response.content.decode())
    assert errors and errors[0].startswith(f"{field}:")


def _freshness(client: Client, path: str) -> str:
    found = re.search(
        r"<p class=\"freshness\" data-freshness>(.*?)</p>",
        client.get(path, RANGE).content.decode(),
        re.S,
    )
    assert found
    return re.sub(r"<[^>]+>", "", " ".join(found[1].split()))


def _all_changed_at(when: str) -> None:
    Escape.objects.update(updated_at=at(when))


def _stamp(team: Team, month: str, when: str) -> None:
    EscapeRollup.objects.filter(team=team, month=month).update(computed_at=at(when))


def test_the_freshness_line_tells_the_newest_change_in_the_teams_zone(member, team, dataset):
    """Issue 13: it showed the oldest rollup's time, though newer changes were in."""
    _all_changed_at("2026-12-05T08:00")
    EscapeRollup.objects.filter(team=team).update(computed_at=at("2026-12-05T09:00"))
    ReleaseRollup.objects.filter(team=team).update(computed_at=at("2026-12-05T09:30"))
    _stamp(team, "2026-02-01", "2026-12-05T10:00")
    # Changed after the team's oldest stamp, but before its own month's: in the numbers.
    Escape.objects.filter(pk=dataset["c"].pk).update(updated_at=at("2026-12-05T09:59"))
    line = _freshness(client_for(member), f"/t/{team.slug}/dashboard/")
    # 10:00 UTC is 11:00 in Berlin, the team's zone, and says so.
    assert "Numbers include changes up to 5 Dec 2026 11:00 Europe/Berlin" in line
    assert "No change is waiting to be counted." in line
    assert "still being counted" not in line


def test_the_freshness_line_says_when_a_change_is_still_pending(member, team, dataset):
    _all_changed_at("2026-12-05T08:00")
    EscapeRollup.objects.filter(team=team).update(computed_at=at("2026-12-05T09:00"))
    ReleaseRollup.objects.filter(team=team).update(computed_at=at("2026-12-05T09:00"))
    _stamp(team, "2026-02-01", "2026-12-05T10:00")
    # January's rollup is older than this change: its recompute has not run yet.
    Escape.objects.filter(pk=dataset["a"].pk).update(updated_at=at("2026-12-05T09:30"))
    line = _freshness(client_for(member), f"/t/{team.slug}/dashboard/")
    assert "Numbers include changes up to 5 Dec 2026 11:00 Europe/Berlin" in line
    assert "Newer changes are still being counted: reload in a minute." in line
    # The same two facts in the API and the CSV: every figure on the page is in both.
    answer = api_for(member).get(f"/teams/{team.slug}/dashboard", RANGE).json()
    assert answer["changes_up_to"].startswith("2026-12-05T10:00")
    assert answer["pending_teams"] == [team.slug]
    csv_text = client_for(member).get(f"/t/{team.slug}/dashboard.csv", RANGE).content.decode()
    assert ",changes_up_to,,2026-12-05T10:00:00+00:00" in csv_text
    assert f",pending_teams,,{team.slug}" in csv_text
    rollups_recompute_team(team_id=team.pk)
    line = _freshness(client_for(member), f"/t/{team.slug}/dashboard/")
    assert "No change is waiting to be counted." in line


def test_the_all_teams_freshness_line_is_labelled_utc_and_names_pending_teams(
    team, other_team, member, dataset
):
    from teams.models import Role
    from teams.services import membership_set

    membership_set(team=other_team, user=member, role=Role.VIEWER)
    Escape.objects.create(team=other_team, title="s", detected_at=at("2026-01-20T10:00"))
    rollups_recompute_team(team_id=other_team.pk)
    _all_changed_at("2026-12-05T08:00")
    EscapeRollup.objects.update(computed_at=at("2026-12-05T09:00"))
    ReleaseRollup.objects.update(computed_at=at("2026-12-05T09:00"))
    _stamp(team, "2026-02-01", "2026-12-05T10:00")
    Escape.objects.create(team=other_team, title="new", detected_at=at("2026-01-21T10:00"))
    Escape.objects.filter(title="new").update(updated_at=at("2026-12-05T09:05"))
    line = _freshness(client_for(member), "/dashboard/")
    # Berlin and UTC: one zone for both, said out loud.
    assert "Numbers include changes up to 5 Dec 2026 10:00 UTC" in line
    assert f"Newer changes to {other_team.name} are still being counted" in line
    assert team.name not in line.split("still being counted")[0].split("Newer changes")[1]


def test_no_inline_script_but_the_chart_data(member, team, dataset):
    html = client_for(member).get(f"/t/{team.slug}/dashboard/", RANGE).content.decode()
    scripts = re.findall(r"<script([^>]*)>", html)
    inline = [a for a in scripts if "src=" not in a]
    assert inline == [' id="dashboard-data" type="application/json"']
    assert "/static/vendor/echarts/echarts.min.js" in html and "/static/js/dashboard.js" in html


def test_the_all_teams_page_shows_every_team_of_the_user(team, other_team, member, dataset):
    from teams.models import Role
    from teams.services import membership_set

    membership_set(team=other_team, user=member, role=Role.VIEWER)
    Escape.objects.create(team=other_team, title="s", detected_at=at("2026-01-20T10:00"))
    rollups_recompute_team(team_id=other_team.pk)
    tables = page(client_for(member), "/dashboard/", **RANGE)
    assert tables.rows["mttd-0"][:3] == ["2026-01", "3", "deficit known for 2 of 3"]
    # One link per number, into the register of every team of the user, with those three.
    (link,) = tables.links["mttd-0"]
    assert link.startswith("/escapes/?")
    response = client_for(member).get(link)
    assert len(response.context["page_obj"].object_list) == 3
    assert {e.team.slug for e in response.context["page_obj"]} == {"checkout", "search"}


def test_a_viewer_sees_the_dashboard_and_an_outsider_gets_404(team, viewer, outsider):
    assert client_for(viewer).get(f"/t/{team.slug}/dashboard/").status_code == 200
    assert client_for(outsider).get(f"/t/{team.slug}/dashboard/").status_code == 404
    assert client_for(outsider).get(f"/t/{team.slug}/dashboard.csv").status_code == 404


def test_anonymous_is_sent_to_sign_in(team):
    for url in (f"/t/{team.slug}/dashboard/", "/dashboard/", "/dashboard.csv"):
        response = Client().get(url)
        assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_the_dashboard_only_answers_get(member, team):
    client = client_for(member)
    for url in (f"/t/{team.slug}/dashboard/", f"/t/{team.slug}/dashboard.csv", "/dashboard/"):
        assert client.post(url).status_code == 405


def test_the_csv_holds_every_chart_with_seconds_and_text(member, team, dataset):
    response = client_for(member).get(f"/t/{team.slug}/dashboard.csv", RANGE)
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    mean = next(
        r
        for r in rows
        if r["section"] == "mttd" and r["item"] == "2026-01" and r["measure"] == "mean"
    )
    assert float(mean["value"]) == 36 * 3600 and mean["text"] == "1 d 12 h"
    march = [
        r for r in rows if r["section"] == "mttd" and r["item"] == "2026-03" and r["measure"] == "n"
    ]
    assert march[0]["value"] == "0"
    sections = {r["section"] for r in rows}
    assert {
        "query",
        "total",
        "mttd",
        "categories",
        "stages",
        "pareto_categories",
        "releases",
    } <= sections
    assert {"time_in_production", "follow_through", "data_problems"} <= sections


def test_the_release_filter_offers_the_newest_releases_and_the_one_asked_for(
    member, team, monkeypatch
):
    monkeypatch.setattr("insights.forms.MAX_RELEASE_CHOICES", 2)
    made = [
        Release.objects.create(
            team=team, version=f"2026.{month}.0", released_at=datetime(2026, month, 1, tzinfo=UTC)
        )
        for month in (1, 2, 3)
    ]
    release_rollup_recompute(team_id=team.pk)  # the task release_create queues on commit
    url = f"/t/{team.slug}/dashboard/"
    form = client_for(member).get(url).context["form"]
    offered = [value for value, _ in form.fields["release"].choices if value]
    assert offered == [made[2].pk, made[1].pk]
    form = client_for(member).get(url, {"release": made[0].pk}).context["form"]
    offered = [value for value, _ in form.fields["release"].choices if value]
    assert offered == [made[2].pk, made[1].pk, made[0].pk]


def test_a_repeated_view_reuses_its_rendering_until_the_numbers_change(
    member, viewer, team, dataset, monkeypatch
):
    renders: list[int] = []
    real = dashboard_views.build_page

    def counted(board):
        renders.append(1)
        return real(board)

    monkeypatch.setattr(dashboard_views, "build_page", counted)
    url = f"/t/{team.slug}/dashboard/"
    first = page(client_for(member), url, **RANGE)
    again = page(client_for(viewer), url, **RANGE)  # another user, the same question
    assert len(renders) == 1
    assert again.rows == first.rows

    Escape.objects.create(team=team, title="late", detected_at=at("2026-01-20T10:00"))
    rollups_recompute_team(team_id=team.pk)
    changed = page(client_for(member), url, **RANGE)
    assert len(renders) == 2
    assert int(changed.rows["mttd-0"][1]) == int(first.rows["mttd-0"][1]) + 1
