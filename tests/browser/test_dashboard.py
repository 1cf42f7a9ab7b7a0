"""The dashboard in a real browser: every chart draws (served from static/, within the CSP),
and clicking a bar opens the escapes behind it in the register."""

import re
from datetime import date, timedelta

import pytest
from playwright.sync_api import expect

from tests.browser.people import People
from tests.browser.stack import TEAM, Stack

pytestmark = pytest.mark.browser

CHARTS = ("mttd", "stages", "categories", "pareto_categories", "pareto_components", "releases")


def months_back() -> str:
    """A start of the range that holds the demo's data (weeks old: seed_demo is relative to
    now) on any day; a fixed start would one day make the range too long for the page."""
    return f"{date.today() - timedelta(days=183):%Y-%m-01}"


def test_every_chart_draws_and_a_bar_opens_the_escapes_behind_it(people: People):
    manager = people.open("manager")  # a viewer of the demo team
    page = manager.page
    page.goto(f"/t/{TEAM}/dashboard/?start={months_back()}&period=month")

    for name in CHARTS:
        chart = page.locator(f'[data-chart="{name}"]')
        expect(chart.locator("svg"), f"the {name} chart draws").to_have_count(1)
        expect(chart.locator("svg path").first).to_be_attached()
    # Drawn, the charts fold their tables away; the numbers are one click away.
    expect(page.locator("details.numbers[open]")).to_have_count(0)

    # The tallest bar of the category Pareto is its first; click in its middle.
    chart = page.locator('[data-chart="pareto_categories"]')
    chart.scroll_into_view_if_needed()
    label, x, y = chart.evaluate(
        """node => {
          const chart = echarts.getInstanceByDom(node);
          const option = chart.getOption();
          const value = option.series[0].data[0];
          const [x, top] = chart.convertToPixel({ seriesIndex: 0 }, [0, value]);
          const [, bottom] = chart.convertToPixel({ seriesIndex: 0 }, [0, 0]);
          const box = node.getBoundingClientRect();
          return [option.xAxis[0].data[0], box.left + x, box.top + (top + bottom) / 2];
        }"""
    )
    page.mouse.click(x, y)

    expect(page).to_have_url(re.compile(rf"/t/{TEAM}/escapes/\?"))
    count = page.locator("#escape-results p.muted").first
    expect(count).to_contain_text("matching the filters")
    assert "category=" in page.url, (label, page.url)


SECOND_TEAM = """
import django; django.setup()
from datetime import timedelta
from django.contrib.auth.models import User
from django.utils import timezone
from escapes.models import Category, Escape
from insights.rollups import rollups_recompute_team
from teams.models import Role
from teams.services import membership_set, team_create

team = team_create(name="Mobile", slug="mobile", timezone_name="Asia/Tokyo")
membership_set(team=team, user=User.objects.get(username="manager"), role=Role.VIEWER)
now = timezone.now()
for i, category in enumerate([*Category.values, ""]):
    Escape.objects.create(
        team=team, title=f"Mobile escape {i}", category=category,
        merged_at=now - timedelta(days=9), detected_at=now - timedelta(days=2),
    )
rollups_recompute_team(team_id=team.pk)
"""


def test_on_the_all_teams_page_a_bar_opens_the_escapes_of_every_team_behind_it(
    people: People, stack: Stack
):
    stack.python(SECOND_TEAM)  # the manager sees the demo team and Mobile (one of each category)
    try:
        page = people.open("manager").page
        page.goto(f"/dashboard/?start={months_back()}&period=month")
        chart = page.locator('[data-chart="pareto_categories"]')
        expect(chart.locator("svg path").first).to_be_attached()
        chart.scroll_into_view_if_needed()
        x, y = chart.evaluate(
            """node => {
              const chart = echarts.getInstanceByDom(node);
              const value = chart.getOption().series[0].data[0];
              const [x, top] = chart.convertToPixel({ seriesIndex: 0 }, [0, value]);
              const [, bottom] = chart.convertToPixel({ seriesIndex: 0 }, [0, 0]);
              const box = node.getBoundingClientRect();
              return [box.left + x, box.top + (top + bottom) / 2];
            }"""
        )
        page.mouse.click(x, y)

        # One register for both teams, filtered to the bar's category and the range.
        expect(page).to_have_url(re.compile(r"/escapes/\?.*category="))
        rows = page.locator("#escape-results tbody tr")
        expect(rows.filter(has_text="Mobile escape")).to_have_count(1)
        expect(rows.filter(has_text="Payments Platform")).not_to_have_count(0)
    finally:
        stack.python(
            "import django; django.setup()\n"
            "from teams.models import Team\n"
            "Team.objects.filter(slug='mobile').delete()\n"
        )


SHOTS = "/tmp/leakseal-shots"


@pytest.mark.parametrize("width,height", [(390, 844), (1366, 768)])
def test_each_stages_mean_median_and_p90_stand_beside_its_box(people: People, width, height):
    """Beside the box plot (to its right on a laptop, under it on a phone) each stage's mean,
    median and P90 read on one line, the chart marks the mean and the P90, and nothing makes
    the page wider than the screen."""
    manager = people.open("manager")
    page = manager.page
    page.set_viewport_size({"width": width, "height": height})
    page.goto(f"/t/{TEAM}/dashboard/?start={months_back()}&period=month")
    chart = page.locator('[data-chart="stages"]')
    expect(chart.locator("svg")).to_have_count(1)
    names = chart.evaluate(
        "node => echarts.getInstanceByDom(node).getOption().series.map(s => s.name)"
    )
    assert {"mean", "P90"} <= set(names), names

    figures = page.locator("[data-stage-figures]")
    assert figures.count() >= 2
    first = figures.first
    first.scroll_into_view_if_needed()
    for figure in ("mean", "median", "p90"):
        expect(first.locator(f'[data-figure="{figure}"]')).to_be_visible()
    # The three figures of a stage sit on one line, and the list beside (or under) the chart.
    tops = [first.locator(f'[data-figure="{f}"]').bounding_box() for f in ("mean", "p90")]
    assert tops[0] and tops[1] and abs(tops[0]["y"] - tops[1]["y"]) < 2
    plot, listed = chart.bounding_box(), page.locator(".stage-figures").bounding_box()
    assert plot and listed
    if width >= 1000:
        assert listed["x"] >= plot["x"] + plot["width"] - 1  # to the right of the chart
    else:
        assert listed["y"] >= plot["y"] + plot["height"] - 1  # under it
    wider = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert wider <= 0, f"the page is {wider} px wider than the screen"
    page.locator("#stages-heading").scroll_into_view_if_needed()
    page.screenshot(path=f"{SHOTS}/dashboard-stages-{width}.png")
    figures.last.scroll_into_view_if_needed()
    page.screenshot(path=f"{SHOTS}/dashboard-figures-{width}.png")
    # The team page: each stage's figures on a line of their own, within the screen.
    page.goto(f"/t/{TEAM}/?start={months_back()}")
    line = page.locator("[data-stage-deficit]").first
    line.scroll_into_view_if_needed()
    for figure in ("mean", "median", "p90"):
        box = line.locator(f'[data-figure="{figure}"]').bounding_box()
        assert box and box["x"] + box["width"] <= width, (figure, box)
    page.locator("section[aria-labelledby=by-stage-heading]").screenshot(
        path=f"{SHOTS}/team-stages-{width}.png"
    )
