"""What a person does on the retro board, in the words of the page (labels, buttons, ids).

Selectors follow templates/retros/retro_detail.html, _facilitation.html and _live.html.
"""

from __future__ import annotations

import re
import time

from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import Locator, Page, expect

from tests.browser.stack import TEAM

BOARD_PATH = re.compile(rf"/t/{TEAM}/retros/(\d+)/$")

# How long a test waits for what must reach a board, or any other outcome: generous, so that
# a busy machine (a parallel build, a slow CI host) is no failure. How fast things arrive is
# measured by bench/board_changes.py (a change, on the other boards) and bench/live_board.py
# (posts to many streams), not asserted here. Playwright's expect() and actions default to it.
WAIT = 15.0
WAIT_MS = int(WAIT * 1000)

# Escapes of the demo's older release: in no open retro of the seed (two are in its closed one)
# and detected within 90 days, so the new-retro form always offers them, in this order on the
# board (by detection time).
OLD_RELEASE = "2026.10.0"
CARD_PAYMENTS = "Card payments declined for 3-D Secure v2 challenges"
SSO = "Session lost after SSO redirect in Safari"
COUPON = "Coupon applied twice when the basket page is refreshed"
REFUND = "Refund webhook retries create duplicate ledger entries"


def team_path(path: str = "") -> str:
    return f"/t/{TEAM}/{path}"


def board_path(retro_id: int) -> str:
    return team_path(f"retros/{retro_id}/")


def ms_left(start: float, limit: float = WAIT) -> float:
    """Milliseconds left of `limit` seconds since `start`: an expect() timeout from a click."""
    return max(1.0, (limit - (time.monotonic() - start)) * 1000)


# --- Creating and joining a retro.


def create_retro(
    page: Page,
    title: str,
    *,
    escapes: tuple[str, ...] = (),
    release: str = "",
    anonymous: bool = False,
) -> int:
    """Fill in the new-retro form as the facilitator; the board opens. Returns the retro id."""
    page.goto(team_path("retros/new/"))
    page.get_by_label("Title").fill(title)
    if release:
        page.get_by_label("Release").select_option(label=release)
    for escape in escapes:
        page.locator("label.check", has_text=escape).locator("input[name=escapes]").check()
    if anonymous:
        page.get_by_label("Anonymous").check()
    page.get_by_role("button", name="Create retrospective").click()
    page.wait_for_url(BOARD_PATH)
    wait_live(page)
    match = BOARD_PATH.search(page.url)
    assert match is not None
    return int(match.group(1))


def open_board(page: Page, retro_id: int) -> None:
    page.goto(board_path(retro_id))
    wait_live(page)


def wait_live(page: Page) -> None:
    """The page's event stream is open: from now on it hears every change."""
    expect(page.locator("#board")).to_be_visible()
    expect(page.locator("#live-status")).to_have_text("Live")


def mark_page(page: Page) -> None:
    """Leave a mark in the page's JavaScript state; a reload or navigation would wipe it."""
    page.evaluate("window.__leaksealNoReload = 'still the same page'")


def assert_not_reloaded(page: Page) -> None:
    assert page.evaluate("window.__leaksealNoReload") == "still the same page"


# --- Phases.


def current_phase(page: Page) -> Locator:
    return page.locator("#phase-bar .phases li[aria-current=step]")


def advance(page: Page, to: str) -> None:
    """Click "Next: <to> →" as the facilitator and wait for the board to be in that phase."""
    page.get_by_role("button", name=f"Next: {to} →").click()
    expect(current_phase(page)).to_have_text(to)


def advance_to_whys(page: Page) -> None:
    advance(page, "Categorize")
    advance(page, "Five Whys")


# --- Escape cards.


def card(page: Page, title: str) -> Locator:
    """The escape's card, whether it is the one open or hidden behind the overview."""
    return page.locator("article.escape-card").filter(
        has=page.get_by_role("heading", name=title, exact=True, include_hidden=True)
    )


def overview_row(page: Page, title: str) -> Locator:
    return page.locator("#overview tbody tr").filter(
        has=page.get_by_role("link", name=title, exact=True)
    )


def open_card(page: Page, title: str) -> Locator:
    """Open the escape from the overview, as a person would, and wait for its card."""
    the_card = card(page, title)
    if not the_card.is_visible():
        overview_row(page, title).get_by_role("link", name=title, exact=True).click()
    expect(the_card).to_be_visible()
    return the_card


def facilitator_tools(page: Page) -> Locator:
    """The facilitator's "Facilitate" panel of the sticky bar, opened."""
    tools = page.locator("#facilitation-bar details.facilitator-tools")
    if tools.get_attribute("open") is None:
        tools.locator("summary").click()
    expect(tools.locator(".tools-panel")).to_be_visible()
    return tools


def facilitate(page: Page, button: str) -> None:
    """Press one of the facilitator's controls, opening the "Facilitate" panel if needed, and
    wait for its answer: it replaces the board (the panel closes), and a step taken before it
    arrives (opening the panel again, say) would act on the copy about to be replaced."""
    facilitator_tools(page).get_by_role("button", name=button, exact=True).click()
    expect(page.locator("#facilitation-bar form.htmx-request")).to_have_count(0)


def escape_id(page: Page, title: str) -> int:
    card_id = card(page, title).get_attribute("id") or ""
    return int(card_id.removeprefix("escape-"))


def card_order(page: Page) -> list[str]:
    return page.locator("article.escape-card h2").all_inner_texts()


def first_why_field(page: Page, title: str) -> Locator:
    """The card's first-why field, its card opened."""
    return open_card(page, title).locator("input[id^=why-new-]")


def add_first_why(page: Page, title: str, text: str) -> None:
    """Type a why into the card's first-why field and press "Add why" (not waiting)."""
    form = open_card(page, title).locator("form:has(input[id^=why-new-])")
    form.locator("input[name=text]").fill(text)
    form.get_by_role("button", name="Add why").click()


def why_texts(page: Page, title: str, text: str) -> Locator:
    """Every why on the card that reads exactly `text`."""
    exact = re.compile(rf"^\s*{re.escape(text)}\s*$")
    return card(page, title).locator(".why-text").filter(has_text=exact)


def why_item(page: Page, title: str, text: str) -> Locator:
    """The list item of the why that reads `text` (its own, not one nested under it)."""
    return why_texts(page, title, text).locator("xpath=..")


def classify(page: Page, title: str, *, category: str, stage: str) -> None:
    open_card(page, title)
    form = classification(page, title)
    form.locator("select[name=category]").select_option(label=category)
    form.locator("select[name=stage]").select_option(label=stage)
    form.get_by_role("button", name="Save classification").click()
    # Wait for the saved card: a click that follows at once (Next phase) could otherwise land
    # on a region the answer is about to replace.
    saved = classification(page, title).locator(".badge").first
    expect(saved).to_have_text(category)
    expect(classification(page, title)).to_contain_text(f"should have caught it: {stage}")


def classification(page: Page, title: str) -> Locator:
    return card(page, title).locator(".classification")


def mark_root_cause(page: Page, title: str, why_text: str, kind: str) -> None:
    open_card(page, title)
    item = why_item(page, title, why_text)
    item.locator("select[name=kind]").first.select_option(label=kind)
    item.get_by_role("button", name="Mark root cause").first.click()


def vote_button(page: Page, title: str) -> Locator:
    return open_card(page, title).get_by_role("button", name="+ Vote")


def votes(page: Page, title: str) -> Locator:
    return card(page, title).locator(".votes")


def add_action(page: Page, title: str, *, action: str, owner: str, kind: str) -> None:
    the_card = open_card(page, title)
    summary = the_card.locator("summary", has_text="Add a preventative action")
    form = the_card.locator("form:has(input[id^=new-action-])")
    deadline = time.monotonic() + WAIT
    while not form.get_by_label("Title").is_visible() and time.monotonic() < deadline:
        if summary.locator("xpath=..").get_attribute("open") is None:  # stays open once opened
            summary.click()
        page.wait_for_timeout(100)
    form.get_by_label("Title").fill(action)
    form.get_by_label("Kind").select_option(label=kind)
    form.get_by_label("Owner").select_option(label=owner)
    form.get_by_role("button", name="Add action").click()


def actions(page: Page, title: str, action: str) -> Locator:
    return card(page, title).locator(".action strong").filter(has_text=action)


# --- The facilitation bar.


def timer_display(page: Page) -> Locator:
    return page.locator("#facilitation-bar .timer-display")


def timer_seconds(page: Page) -> int:
    text = timer_display(page).inner_text().strip()
    match = re.fullmatch(r"(\d+):(\d{2})", text)
    assert match, f"the timer shows {text!r}, not mm:ss"
    return int(match.group(1)) * 60 + int(match.group(2))


def timer_seconds_below(page: Page, limit: int, within: float = WAIT) -> int:
    """The timer's seconds once they are below `limit`, or the last ones read after `within`
    seconds (the countdown is the page's own timer: a busy browser may run it late)."""
    deadline = time.monotonic() + within
    while True:
        seconds = timer_seconds(page)
        if seconds < limit or time.monotonic() > deadline:
            return seconds
        page.wait_for_timeout(100)


def presence(page: Page) -> Locator:
    return page.locator("#presence")


def scroll_to(locator: Locator) -> None:
    """Scroll it on screen. On a live board the region may be swapped under the scroll (a
    refresh, a pushed card, a panel loading itself): look it up again and try again."""
    for _ in range(10):
        try:
            locator.scroll_into_view_if_needed(timeout=2000)
            return
        except PlaywrightError:
            locator.page.wait_for_timeout(200)
    locator.scroll_into_view_if_needed()
