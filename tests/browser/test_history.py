"""Back after an htmx page change shows the whole page, styled (issue 13).

The register's filters and the team home's dates swap the results in place and push the URL.
That URL's htmx answer is a fragment: unless answers vary on HX-Request
(config/cache_headers.py), Chromium served the fragment it had fetched when Back came to that
URL, bare and unstyled.
"""

import re

import pytest
from playwright.sync_api import Page, expect

from tests.browser.people import People
from tests.browser.stack import TEAM

pytestmark = pytest.mark.browser


def assert_whole_styled_page(page: Page, heading: str = "Escapes") -> None:
    expect(page.locator("header.topbar")).to_be_visible()
    expect(page.locator("nav.teamnav")).to_be_visible()
    expect(page.locator("h1")).to_have_text(re.compile(rf"^\s*{heading}"))
    expect(page.locator("form.filters")).to_be_visible()
    # app.css applied: the top bar is a flex row.
    assert page.locator("header.topbar").evaluate("e => getComputedStyle(e).display") == "flex"


@pytest.mark.parametrize("how", ["link", "goto"])
def test_back_after_filtering_the_register_shows_the_whole_page(people: People, how: str):
    page = people.open("manager").page
    page.goto(f"/t/{TEAM}/escapes/")
    assert_whole_styled_page(page)

    with page.expect_response(lambda r: "severity=high" in r.url) as swapped:
        page.select_option("#id_severity", "high")
    assert swapped.value.request.headers.get("hx-request") == "true"
    expect(page).to_have_url(re.compile(r"severity=high"))
    expect(page.locator("#escape-results p.muted").first).to_contain_text("matching the filters")

    if how == "link":
        page.locator("nav.teamnav a").filter(has_text="Dashboard").first.click()
        expect(page).to_have_url(re.compile(rf"/t/{TEAM}/dashboard/"))
    else:
        page.goto(f"/t/{TEAM}/releases/")
    page.go_back()
    expect(page).to_have_url(re.compile(r"severity=high"))
    assert_whole_styled_page(page)
    expect(page.locator("#escape-results p.muted").first).to_contain_text("matching the filters")
    expect(page.locator("#id_severity")).to_have_value("high")

    page.reload()
    assert_whole_styled_page(page)


def test_back_after_changing_the_team_homes_dates_shows_the_whole_page(people: People):
    page = people.open("manager").page
    page.goto(f"/t/{TEAM}/")
    heading = page.locator("h1").inner_text()
    assert_whole_styled_page(page, heading)

    page.fill("#range-start", "2026-01-01")
    with page.expect_response(lambda r: "start=2026-01-01" in r.url) as swapped:
        page.get_by_role("button", name="Show").click()
    assert swapped.value.request.headers.get("hx-request") == "true"
    expect(page).to_have_url(re.compile(r"start=2026-01-01"))

    page.locator("nav.teamnav a").filter(has_text="Dashboard").first.click()
    expect(page).to_have_url(re.compile(rf"/t/{TEAM}/dashboard/"))
    page.go_back()
    expect(page).to_have_url(re.compile(r"start=2026-01-01"))
    assert_whole_styled_page(page, heading)
    expect(page.locator("#range-start")).to_have_value("2026-01-01")
    expect(page.locator("#team-metrics")).to_be_visible()
