"""The team page: headline metrics for a range of local dates, for every member of the team."""

import re
from datetime import timedelta

import pytest
from django.utils import timezone

from escapes.models import Category, Escape, StageCatch
from tests.conftest import client_for
from tests.metrics.factories import make_escape, make_release, report_catches, utc

URL = "/t/checkout/"


def test_a_member_sees_the_team_its_stages_and_headline_numbers(member, team, stages, escape):
    response = client_for(member).get(URL)
    assert response.status_code == 200
    html = response.content.decode()
    assert "<h1>Checkout</h1>" in html
    assert "<li>Unit</li><li>Integration</li><li>E2E</li>" in html
    assert 'data-metric="escapes-total">1<' in html
    # The fixture escape was merged 12 days and detected 8 days ago: a 4-day deficit.
    assert 'data-metric="mttd">4 d<' in html
    assert "median 4 d · P90 4 d · n = 1" in html
    assert "deficit known for 1 of 1" in html
    assert 'data-metric="time-in-production">2 d<' in html
    assert 'href="/t/checkout/escapes/"' in html
    assert 'href="/t/checkout/retros/"' in html


def test_a_viewer_may_see_the_team_page(viewer, team):
    assert client_for(viewer).get(URL).status_code == 200


def test_an_outsider_gets_404(outsider, team):
    assert client_for(outsider).get(URL).status_code == 404


def test_anonymous_is_sent_to_sign_in(client, team):
    response = client.get(URL)
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/accounts/login/")


def test_the_team_page_only_answers_get(member, team):
    assert client_for(member).post(URL).status_code == 405


def test_an_empty_range_still_renders_with_n_zero(member, team, stages):
    response = client_for(member).get(URL, {"start": "2026-01-01", "end": "2026-01-31"})
    assert response.status_code == 200
    html = response.content.decode()
    assert "Escapes detected 1 Jan 2026 – 31 Jan 2026" in html
    assert 'data-metric="escapes-total">0<' in html
    assert "median — · P90 — · n = 0" in html
    assert "deficit known for 0 of 0" in html
    assert "No escapes in this range." in html
    assert "Unclassified" in html and "Unattributed" in html


def test_the_range_is_read_in_the_teams_local_dates(member, team):
    make_escape(team, detected_at=utc(2026, 11, 20, 22, 30))  # 23:30 on the 20th in Berlin
    make_escape(team, detected_at=utc(2026, 11, 20, 23, 10))  # 00:10 on the 21st in Berlin
    response = client_for(member).get(URL, {"start": "2026-11-14", "end": "2026-11-20"})
    assert 'data-metric="escapes-total">1<' in response.content.decode()


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"start": "2026-11-20", "end": "2026-11-01"}, "The start date is after the end date."),
        ({"start": "yesterday", "end": "2026-11-01"}, "From: Enter a valid date."),
        ({"end": "2026-02-30"}, "To: Enter a valid date."),
        ({"start": "2099-01-01"}, "The start date is after the end date."),
    ],
)
def test_an_invalid_range_explains_itself_and_shows_the_last_90_days(
    member, team, escape, params, message, frozen_clock
):
    response = client_for(member).get(URL, params)
    assert response.status_code == 200
    html = response.content.decode()
    assert message in html
    assert "Showing the last 90 days instead." in html
    today = timezone.now().astimezone(team.tzinfo).date()
    assert f'name="end" value="{today:%Y-%m-%d}"' in html
    assert f'name="start" value="{today - timedelta(days=89):%Y-%m-%d}"' in html
    assert 'data-metric="escapes-total">1<' in html


@pytest.mark.parametrize(
    "params", [{"start": "0001-01-01", "end": "9999-12-31"}, {"end": "0001-01-02"}]
)
def test_the_ends_of_the_calendar_are_no_server_error(member, team, escape, params):
    assert client_for(member).get(URL, params).status_code == 200


def test_only_a_start_date_runs_to_today(member, team, escape):
    start = (timezone.now() - timedelta(days=9)).astimezone(team.tzinfo).date()
    response = client_for(member).get(URL, {"start": f"{start:%Y-%m-%d}"})
    html = response.content.decode()
    assert 'data-metric="escapes-total">1<' in html
    assert "Showing the last 90 days" not in html


def test_categories_stages_weakest_stage_and_release_rates_are_shown(member, team, stages):
    unit = stages[0]
    release = make_release(team, "5.0", utc(2026, 11, 3, 9))
    report_catches(release, {unit: 50})
    for _ in range(25):
        make_escape(
            team,
            detected_at=utc(2026, 11, 5, 12),
            category=Category.ENVIRONMENT_MISMATCH,
            stage=unit,
            release=release,
            deficit=timedelta(hours=3),
        )
    response = client_for(member).get(URL, {"start": "2026-11-01", "end": "2026-11-30"})
    html = response.content.decode()
    assert 'data-metric="weakest-stage">Unit<' in html
    assert "lowest containment: 66.7 % (50 caught, 25 escaped)" in html
    assert "<td>Unit</td>\n              <td>25</td>\n              <td>50<br>" in html
    assert '<span class="muted caught-source" data-caught-source>typed</span>' in html
    assert "Environment Mismatch</span></td><td>25</td>" in html
    assert "<td>5.0</td>" in html
    assert "<td>33.3 %</td>" in html  # 25 escaped of 75 defects


def test_data_problems_are_counts_linking_to_the_filtered_register(member, team):
    broken = make_escape(
        team, detected_at=utc(2026, 11, 5, 12), merged_at=utc(2026, 11, 6, 12), deficit=None
    )
    early = make_escape(
        team, detected_at=utc(2026, 11, 5, 12), released_at=utc(2026, 11, 5, 13), deficit=None
    )
    make_escape(team, detected_at=utc(2026, 10, 5, 12), deficit=None)  # before the range
    client = client_for(member)
    response = client.get(URL, {"start": "2026-11-01", "end": "2026-11-30"})
    html = response.content.decode()
    assert f"/t/checkout/escapes/{broken.pk}/" not in html  # no link per escape
    assert "Detected before its release (not an escape)" in html
    assert 'data-metric="escapes-total">1<' in html
    links = {
        kind: f"/t/checkout/escapes/?problem={kind}&amp;detected_from=2026-11-01"
        "&amp;detected_to=2026-11-30"
        for kind in ("negative_deficit", "detected_before_release")
    }
    for kind, link in links.items():
        assert (
            f'<a class="count-link" href="{link}" aria-label="1: show them in the register">1</a>'
            in html
        ), kind
    assert 'data-problem="missing_merged_at">' in html  # none in range: a plain 0
    register = client.get(links["negative_deficit"].replace("&amp;", "&")).content.decode()
    assert f"/t/checkout/escapes/{broken.pk}/" in register
    assert f"/t/checkout/escapes/{early.pk}/" not in register
    register = client.get(links["detected_before_release"].replace("&amp;", "&")).content.decode()
    assert f"/t/checkout/escapes/{early.pk}/" in register
    assert f"/t/checkout/escapes/{broken.pk}/" not in register


def test_ten_thousand_problems_do_not_grow_the_page(member, team, django_assert_max_num_queries):
    """Issue 13: 5,049 escapes without a merge time gave a 222 KB page, a link each."""
    client = client_for(member)
    params = {"start": "2026-11-01", "end": "2026-11-30"}
    make_escape(team, detected_at=utc(2026, 11, 5, 12), deficit=None)
    small = len(client.get(URL, params).content)
    Escape.objects.bulk_create(
        Escape(team=team, title=f"No merge {i}", detected_at=utc(2026, 11, 6, 12), merged_at=None)
        for i in range(9_999)
    )
    with django_assert_max_num_queries(8):
        response = client.get(URL, params)
    html = response.content.decode()
    assert ">10000</a>" in html
    assert len(response.content) < small + 200  # the count's digits, nothing per escape
    assert len(response.content) < 30_000


def test_an_htmx_request_gets_only_the_results(member, team, escape):
    response = client_for(member).get(
        URL, {"start": "2026-11-01", "end": "2026-11-30"}, headers={"HX-Request": "true"}
    )
    html = response.content.decode()
    assert response.status_code == 200
    assert "Escapes detected 1 Nov 2026 – 30 Nov 2026" in html
    assert "<h1>" not in html and "<html" not in html


def test_the_page_is_usable_without_javascript(member, team):
    html = client_for(member).get(URL).content.decode()
    assert 'method="get" action="/t/checkout/"' in html
    assert 'hx-get="/t/checkout/"' in html and 'hx-target="#team-metrics"' in html
    assert "<script>" not in html and "style=" not in html


@pytest.mark.parametrize("how_many", [3, 40])
def test_the_team_page_issues_a_bounded_number_of_queries(
    member, team, stages, django_assert_max_num_queries, how_many
):
    release = make_release(team, "6.0", utc(2026, 11, 3, 9))
    report_catches(release, {stage: 5 for stage in stages})
    for i in range(how_many):
        make_escape(
            team,
            detected_at=utc(2026, 11, 5, 12),
            category=Category.values[i % 3],
            stage=stages[i % 3],
            release=release,
        )
    client = client_for(member)
    with django_assert_max_num_queries(8):
        response = client.get(URL, {"start": "2026-11-01", "end": "2026-11-30"})
    assert f'data-metric="escapes-total">{how_many}<' in response.content.decode()


def test_each_stage_shows_its_mean_median_and_p90_deficit(member, team, stages):
    """docs/metrics.md: deficits of 1, 2, 3, 4 and 100 h; the tail moves the mean and the P90."""
    from escapes.models import Escape

    detected = timezone.now() - timedelta(days=2)
    for hours in (1, 2, 3, 4, 100):
        Escape.objects.create(
            team=team,
            title=f"{hours} h deficit",
            merged_at=detected - timedelta(hours=hours),
            detected_at=detected,
            stage=stages[1],
        )
    html = " ".join(client_for(member).get(URL).content.decode().split())
    row = html.split('data-stage-deficit="Integration"')[1].split("</tr>")[0]
    assert 'mean <strong data-figure="mean">22 h</strong>' in row
    assert 'median <strong data-figure="median">3 h</strong>' in row
    assert 'P90 <strong data-figure="p90">2 d 14 h</strong>' in row
    unit = html.split('data-stage-deficit="Unit"')[1].split("</tr>")[0]
    assert unit.count("—</strong>") == 3


def test_each_stages_caught_count_says_whether_it_was_measured_or_typed(member, team, stages):
    """docs/metrics.md, "Typed and measured counts": Unit measured in both releases,
    Integration typed in one and measured in the other, E2E not reported."""
    unit, integration, _ = stages
    first = make_release(team, "6.0", utc(2026, 11, 3, 9))
    second = make_release(team, "6.1", utc(2026, 11, 10, 9))
    for release, stage, n, source in (
        (first, unit, 4, "measured"),
        (second, unit, 1, "measured"),
        (first, integration, 7, "typed"),
        (second, integration, 2, "measured"),
    ):
        StageCatch.objects.create(release=release, stage=stage, caught=n, source=source)
    make_escape(team, detected_at=utc(2026, 11, 12, 12), stage=unit, release=second)

    response = client_for(member).get(URL, {"start": "2026-11-01", "end": "2026-11-30"})

    html = response.content.decode()
    rows = dict(
        (name, (caught, source))
        for name, caught, source in re.findall(
            r"<td>(Unit|Integration|E2E)</td>\s*<td>\d+</td>\s*<td>(\d+|.*?not reported.*?)"
            r"(?:<br><span class=\"muted caught-source\" data-caught-source>(.*?)</span>)?</td>",
            html,
        )
    )
    assert rows["Unit"] == ("5", "measured")
    assert rows["Integration"] == ("9", "measured and typed")
    assert rows["E2E"] == ('<span class="muted">not reported</span>', "")
    assert "lowest containment: 83.3 % (5 caught, 1 escaped)" in html
