"""Refusals in the browser (config/errors.py, static/js/refusals.js), with DEBUG on as in
`make run`: a refused click on the board says why and keeps the board and what was typed;
the 403 and 404 pages fit a phone's screen."""

import re

import pytest
from playwright.sync_api import expect

from tests.browser.board import (
    SSO,
    add_first_why,
    advance_to_whys,
    assert_not_reloaded,
    create_retro,
    first_why_field,
    mark_page,
    open_board,
    team_path,
)
from tests.browser.people import People
from tests.browser.stack import TEAM, Stack

pytestmark = pytest.mark.browser

REFUSED = re.compile(r"status of 40[34]|Response Status Error Code 40[34]")


def test_a_why_refused_for_a_role_taken_away_meanwhile_says_why_and_keeps_the_board(
    people: People, stack: Stack
):
    facilitator = people.open("facilitator")
    retro_id = create_retro(facilitator.page, "Refusal retro", escapes=(SSO,))
    advance_to_whys(facilitator.page)
    second = people.open("engineer2")
    second.tolerate_console = REFUSED
    open_board(second.page, retro_id)
    mark_page(second.page)
    text = "The Safari redirect was never in the test matrix"
    try:
        stack.manage("add_member", TEAM, "engineer2", "viewer")
        add_first_why(second.page, SSO, text)
        alert = second.page.locator("#request-problem")
        expect(alert).to_contain_text("your role in the team is viewer")
        expect(alert).to_contain_text("Nothing was changed.")
        assert_not_reloaded(second.page)  # not replaced by the answer, DEBUG or not
        expect(first_why_field(second.page, SSO)).to_have_value(text)
        alert.get_by_role("button", name="Dismiss").click()
        expect(alert).to_be_empty()
    finally:
        stack.manage("add_member", TEAM, "engineer2", "member")


@pytest.mark.parametrize("width", [390, 1366])
def test_the_403_and_404_pages_fit_the_screen_and_lead_back(
    people: People, stack: Stack, width: int
):
    manager = people.open("manager")
    manager.tolerate_console = REFUSED
    page = manager.page
    page.set_viewport_size({"width": width, "height": 844 if width == 390 else 768})
    page.goto(team_path("escapes/"))
    escape_path = page.evaluate(
        "Array.from(document.querySelectorAll('main a'), (a) => a.pathname)"
        ".find((path) => /\\/escapes\\/\\d+\\/$/.test(path))"
    )
    # A viewer has no Edit button; say they followed an edit link from the escape's page.
    page.goto(f"{escape_path}edit/", referer=f"{stack.url}{escape_path}")
    expect(page.get_by_role("heading", name="Not open to your role")).to_be_visible()
    page.get_by_role("link", name="Back to the previous page").click()
    expect(page).to_have_url(re.compile(re.escape(escape_path) + "$"))

    page.goto(team_path("retros/999999/"))
    expect(page.get_by_role("heading", name="Not found, or not yours to see")).to_be_visible()
    for path in (f"{escape_path}edit/", team_path("retros/999999/")):
        page.goto(path)
        wide = page.evaluate("document.documentElement.scrollWidth")
        assert wide <= width, f"{path} is {wide} px wide on a {width} px screen"
