"""Issue 10, points 1 and 2: the whole retro at once, and a board that works from a phone.

Three people in their own browsers: the facilitator and an engineer on laptops (1366 × 768),
a second engineer on a phone (390 × 844). The overview of every escape sits beside the open
card on a laptop and above it on a phone; the phase and facilitation bars stay in view while
the page scrolls; nothing is wider than the screen; the phone's controls are touch-sized.
"""

import pytest
from playwright.sync_api import FloatRect, Page, ViewportSize, expect

from tests.browser.board import (
    SSO,
    advance_to_whys,
    card,
    facilitate,
    facilitator_tools,
    open_board,
    open_card,
    overview_row,
    scroll_to,
    team_path,
    wait_live,
)
from tests.browser.people import People, Person

pytestmark = pytest.mark.browser

LAPTOP: ViewportSize = {"width": 1366, "height": 768}
PHONE: ViewportSize = {"width": 390, "height": 844}
ESCAPES = 12  # every escape of the demo team
TOUCH_PX = 44  # the smallest comfortable touch target (WCAG 2.5.5, Apple's HIG)


def _retro_of_every_escape(page: Page, title: str) -> int:
    page.goto(team_path("retros/new/"))
    page.get_by_label("Title").fill(title)
    boxes = page.locator("input[name=escapes]")
    expect(boxes).to_have_count(ESCAPES)
    for box in boxes.all():
        box.check()
    page.get_by_role("button", name="Create retrospective").click()
    wait_live(page)
    return int(page.url.rstrip("/").rsplit("/", 1)[1])


def _open(people: People, username: str, viewport: ViewportSize, retro_id: int) -> Person:
    person = people.open(username)
    person.page.set_viewport_size(viewport)
    open_board(person.page, retro_id)
    return person


def _box(page: Page, selector: str) -> FloatRect:
    box = page.locator(selector).bounding_box()
    assert box is not None, f"{selector} is not on screen"
    return box


def _fits_width(page: Page) -> None:
    width = page.evaluate("document.documentElement.scrollWidth")
    viewport = page.viewport_size
    assert viewport is not None and width <= viewport["width"], (
        f"the page is {width} px wide on a {viewport} screen"
    )


def _bars_in_view(page: Page) -> None:
    """The phase bar at the top of the screen, the facilitation bar right under it."""
    phases, facilitation = _box(page, "#phase-bar"), _box(page, "#facilitation-bar")
    assert -1 <= phases["y"] <= 1, f"the phase bar is at y={phases['y']}"
    assert abs(facilitation["y"] - (phases["y"] + phases["height"])) <= 2, (
        "the facilitation bar sits right under the phase bar"
    )


def test_the_whole_retro_at_once_on_a_laptop_and_a_phone(people: People):
    facilitator = people.open("facilitator")
    facilitator.page.set_viewport_size(LAPTOP)
    retro_id = _retro_of_every_escape(facilitator.page, "Twelve escapes retro")
    advance_to_whys(facilitator.page)
    engineer = _open(people, "engineer", LAPTOP, retro_id)
    phone = _open(people, "engineer2", PHONE, retro_id)

    for person in (facilitator, engineer, phone):
        page = person.page
        expect(page.locator("#overview tbody tr")).to_have_count(ESCAPES)
        # One card open; the eleven others wait behind the overview.
        expect(page.locator("article.escape-card:visible")).to_have_count(1)
        expect(page.locator("article.escape-card")).to_have_count(ESCAPES)
        _fits_width(page)

    # Laptop: all twelve rows on one screen under the sticky bars, the open card beside them.
    page = engineer.page
    scroll_to(page.locator("#overview"))
    page.evaluate("window.scrollTo(0, document.getElementById('overview').offsetTop - 120)")
    overview = _box(page, "#overview")
    bars = _box(page, "#phase-bar")["height"] + _box(page, "#facilitation-bar")["height"]
    assert overview["height"] + bars <= LAPTOP["height"], (
        f"the overview ({overview['height']} px) and the bars ({bars} px) overflow the screen"
    )
    opened = _box(page, "article.escape-card:visible")
    assert opened["x"] >= overview["x"] + overview["width"], "the open card is beside it"

    # Phone: the open card is under the overview, in the one column of the screen.
    overview = _box(phone.page, "#overview")
    opened = _box(phone.page, "article.escape-card:visible")
    assert opened["y"] >= overview["y"] + overview["height"]
    assert opened["x"] + opened["width"] <= PHONE["width"]

    # A row of the overview opens its card, and moves the keyboard focus to its title.
    the_card = open_card(phone.page, SSO)
    expect(the_card.locator("h2")).to_be_focused()
    expect(overview_row(phone.page, SSO).get_by_role("link", name=SSO)).to_have_attribute(
        "aria-current", "true"
    )
    expect(phone.page.locator("article.escape-card:visible")).to_have_count(1)

    # The facilitator's focus opens the same card on every board.
    last = overview_row(facilitator.page, SSO).locator("xpath=following-sibling::tr[last()]")
    title = last.locator("th a").inner_text().strip()
    open_card(facilitator.page, title).get_by_role("button", name="Focus").click()
    for person in (engineer, phone):
        expect(card(person.page, title)).to_be_visible()
        expect(card(person.page, title)).to_have_attribute("data-in-focus", "")
        expect(person.page.locator("article.escape-card:visible")).to_have_count(1)
        expect(overview_row(person.page, title).locator(".in-focus-badge")).to_be_visible()
    assert people.problems() == []


def test_the_bars_stay_in_view_and_the_phone_has_touch_sized_controls(people: People):
    facilitator = people.open("facilitator")
    facilitator.page.set_viewport_size(LAPTOP)
    retro_id = _retro_of_every_escape(facilitator.page, "Sticky bars retro")
    advance_to_whys(facilitator.page)
    facilitate(facilitator.page, "Open dot voting")
    facilitator_tools(facilitator.page).get_by_label("Minutes", exact=True).fill("5")
    facilitate(facilitator.page, "Start timer")
    engineer = _open(people, "engineer", LAPTOP, retro_id)
    phone = _open(people, "engineer2", PHONE, retro_id)

    for person in (facilitator, engineer, phone):
        page = person.page
        expect(page.locator("#facilitation-bar")).to_contain_text("Dot voting is open")
        page.evaluate("window.scrollTo(0, document.documentElement.scrollHeight)")
        page.wait_for_function("window.scrollY > 0")
        _bars_in_view(page)
        expect(page.locator("#phase-bar .phases li[aria-current=step]")).to_be_in_viewport()
        expect(page.locator("#facilitation-bar .timer-display")).to_be_in_viewport()
        if person is not facilitator:
            expect(page.locator("#facilitation-bar .votes-left")).to_be_in_viewport()
        _fits_width(page)

    # On the phone, every control of the board a thumb may press is at least 44 px tall.
    page = phone.page
    page.evaluate("window.scrollTo(0, 0)")
    controls = page.locator(
        "#board button:visible, #board select:visible, #board input:not([type=hidden]):visible"
    )
    assert controls.count() > 5
    small = []
    for control in controls.all():
        box = control.bounding_box()
        if box is not None and box["height"] < TOUCH_PX - 0.5:
            small.append((control.evaluate("e => e.outerHTML.slice(0, 90)"), box["height"]))
    assert small == [], f"controls under {TOUCH_PX} px on a phone: {small}"
    assert people.problems() == []
