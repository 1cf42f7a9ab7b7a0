"""Issue 12, points 5 and 6 in the browser: a new retro opens with the earlier retros' open
actions; a member marks one done right there and everyone else's board shows it live; the
re-escape badge on the demo's repeated leak.

The demo (demo/seed.py) has an earlier closed retro with an overdue action and one marked done
in Leakseal, whose sealed escape the November basket-total escape repeats.
"""

import re
from pathlib import Path

import pytest
from playwright.sync_api import Page, ViewportSize, expect

from tests.browser.board import (
    SSO,
    assert_not_reloaded,
    create_retro,
    mark_page,
    open_board,
)
from tests.browser.people import People

pytestmark = pytest.mark.browser

LAPTOP: ViewportSize = {"width": 1366, "height": 768}
PHONE: ViewportSize = {"width": 390, "height": 844}
OVERDUE = "Unit tests for search normalisation with accented and composed characters"
SHOTS = Path("/tmp/follow-shots")
TOUCH_PX = 44


def _row(page: Page, title: str):
    return page.locator("#earlier-actions .earlier-action").filter(has_text=title)


def _shot(page: Page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def _fits_width(page: Page) -> None:
    width = page.evaluate("document.documentElement.scrollWidth")
    viewport = page.viewport_size
    assert viewport is not None and width <= viewport["width"], f"the page is {width} px wide"


def test_one_marks_an_earlier_action_done_and_the_other_sees_it_live(people: People):
    facilitator = people.open("facilitator")
    facilitator.page.set_viewport_size(LAPTOP)
    retro_id = create_retro(facilitator.page, "Follow-through retro", escapes=(SSO,))
    engineer = people.open("engineer")
    engineer.page.set_viewport_size(PHONE)
    open_board(engineer.page, retro_id)

    for page in (facilitator.page, engineer.page):
        panel = page.locator("#earlier-actions")
        expect(panel).to_contain_text("Last retros’ actions")
        expect(panel).to_contain_text("overdue")
        expect(_row(page, OVERDUE).locator(".overdue-badge")).to_be_visible()
        _fits_width(page)
    _shot(facilitator.page, "panel-laptop")
    _shot(engineer.page, "panel-phone")

    # On the phone the panel's controls are big enough for a thumb.
    row = _row(engineer.page, OVERDUE)
    for control in (row.locator("summary"), row.locator(".follow-mark")):
        box = control.first.bounding_box()
        assert box and box["height"] >= TOUCH_PX - 0.5, box

    mark_page(facilitator.page)
    row.locator(".follow-mark > summary").click()
    row.get_by_label("Note").fill("Tokenizer tests for NFC and NFD names merged")
    row.get_by_label("Link").fill("https://git.demo.leakseal.invalid/search/pull/88")
    _shot(engineer.page, "mark-done-form-phone")
    row.get_by_role("button", name="Mark done").click()
    expect(row.locator(".done-badge")).to_be_visible()
    expect(row).to_contain_text("by engineer: Tokenizer tests for NFC and NFD names merged")

    # The facilitator's board shows it without a reload.
    seen = _row(facilitator.page, OVERDUE)
    expect(seen.locator(".done-badge")).to_be_visible()
    expect(seen).to_contain_text("by engineer")
    expect(seen.get_by_role("link", name="git.demo.leakseal.invalid")).to_be_visible()
    assert_not_reloaded(facilitator.page)
    _shot(facilitator.page, "done-laptop")

    # Reopened, it is open (and overdue) again on both boards: the demo stays as it was.
    row.get_by_role("button", name="Reopen").click()
    for page in (engineer.page, facilitator.page):
        expect(_row(page, OVERDUE).locator(".overdue-badge")).to_be_visible()
        expect(_row(page, OVERDUE).locator(".done-badge")).to_have_count(0)
    assert people.problems() == []


def test_the_repeated_leak_carries_a_re_escape_badge(people: People):
    engineer = people.open("engineer")
    page = engineer.page
    page.goto("/t/demo/retros/")
    page.get_by_role("link", name=re.compile(r"^Release [\d.]+ retro$")).first.click()
    page.wait_for_url(re.compile(r"/t/demo/retros/\d+/$"))
    quarantined = page.locator("article.escape-card").filter(
        has_text="Quarantined basket-total test hid a rounding error"
    )
    badge = quarantined.locator(".re-escape")
    expect(badge).to_contain_text("Re-escape")
    expect(badge).to_contain_text("Coupon applied twice when the basket page is refreshed")
    page.get_by_role(
        "link", name="Quarantined basket-total test hid a rounding error"
    ).first.click()
    expect(badge).to_be_visible()
    for size, name in ((LAPTOP, "re-escape-laptop"), (PHONE, "re-escape-phone")):
        page.set_viewport_size(size)
        badge.scroll_into_view_if_needed()
        _fits_width(page)
        page.screenshot(path=str(SHOTS / f"{name}.png"))


def test_a_closed_retros_actions_show_done_and_mark_done_on_both_sizes(people: People):
    engineer = people.open("engineer")
    page = engineer.page
    page.goto("/t/demo/retros/")
    page.get_by_role("link", name="October leaks follow-up").click()
    page.wait_for_url(re.compile(r"/t/demo/retros/\d+/$"))
    board = page.evaluate("location.pathname")
    for path, name in ((board, "closed-board"), (f"{board}summary/", "closed-summary")):
        page.goto(path)
        # The board opens one card (the done one); the summary shows both actions.
        expect(page.locator(".done-badge").first).to_be_visible()
        expect(page.locator(".follow-mark > summary").first).to_be_attached()
        for size, suffix in ((LAPTOP, "laptop"), (PHONE, "phone")):
            page.set_viewport_size(size)
            if path == board:
                page.locator(
                    "article.escape-card:visible .follow"
                ).first.scroll_into_view_if_needed()
            _fits_width(page)
            if size == PHONE and path != board:
                box = page.locator(".follow-mark > summary:visible").first.bounding_box()
                assert box and box["height"] >= TOUCH_PX - 0.5, box
            _shot(page, f"{name}-{suffix}")
    assert people.problems() == []
