"""Point 1: the facilitator shares a join link and its QR code; whoever opens it lands on the
board, and the presence strip shows who is here, live."""

import re

import pytest
import segno
from playwright.sync_api import Page, ViewportSize, expect

from tests.browser.board import (
    COUPON,
    SSO,
    board_path,
    create_retro,
    open_board,
    presence,
    wait_live,
)
from tests.browser.people import People, sign_in

pytestmark = pytest.mark.browser

FATIMA, ERIK, ENGINEER2 = "Fatima Facilitator", "Erik Engineer", "engineer2"
PHONE: ViewportSize = {"width": 390, "height": 844}


def _qr_path(url: str, error: str) -> str:
    svg = segno.make(url, error=error).svg_inline(scale=1)
    match = re.search(r'class="qrline"[^>]* d="([^"]+)"', svg)
    assert match
    return match.group(1)


def test_the_join_link_and_its_qr_code_bring_an_engineer_to_the_board(people: People):
    facilitator = people.open("facilitator")
    retro_id = create_retro(facilitator.page, "Join link retro", escapes=(SSO, COUPON))
    join_url = f"{people.stack.url}{board_path(retro_id)}"

    join = facilitator.page.locator("#join")
    expect(join).to_be_visible()
    expect(join.locator("#join-url")).to_have_value(join_url)
    qr = join.locator("svg.qr-code")
    expect(qr).to_be_visible()
    # The QR code encodes exactly the join link (whatever error-correction level it uses).
    drawn = qr.locator("path.qrline").get_attribute("d")
    assert drawn in {_qr_path(join_url, level) for level in "lmqh"}

    # A signed-out engineer opens the link: sign in first, then straight onto the board.
    engineer = people.open("engineer", signed_in=False)
    engineer.page.goto(join_url)
    expect(engineer.page).to_have_url(re.compile(r"/accounts/login/"))
    sign_in(engineer.page, "engineer")
    expect(engineer.page).to_have_url(join_url)
    expect(engineer.page.get_by_role("heading", name="Join link retro")).to_be_visible()
    wait_live(engineer.page)
    titles = engineer.page.locator("article.escape-card h2")
    expect(titles).to_have_count(2)
    assert set(titles.all_inner_texts()) == {SSO, COUPON}


def board_top(page: Page) -> float:
    box = page.locator("#board").bounding_box()
    assert box is not None
    return box["y"]


def test_the_presence_strip_shows_who_is_here_and_who_left(people: People):
    facilitator = people.open("facilitator")
    retro_id = create_retro(facilitator.page, "Presence retro", escapes=(SSO,))
    # On a phone, people arriving must not move the board under the facilitator's finger.
    facilitator.page.set_viewport_size(PHONE)
    expect(presence(facilitator.page).locator("li")).to_have_count(1)
    alone = board_top(facilitator.page)
    engineer = people.open("engineer")
    open_board(engineer.page, retro_id)
    engineer2 = people.open("engineer2")
    open_board(engineer2.page, retro_id)

    for person in (facilitator, engineer, engineer2):
        strip = presence(person.page)
        for name in (FATIMA, ERIK, ENGINEER2):
            expect(strip).to_contain_text(name)
        expect(strip.locator("li.me")).to_contain_text("(you)")
    expect(presence(engineer.page).locator("li.me")).to_have_text(f"{ERIK} (you)")
    assert board_top(facilitator.page) == alone  # the strip scrolls sideways instead
    assert facilitator.page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]

    engineer2.leave()

    for person in (facilitator, engineer):
        strip = presence(person.page)
        expect(strip).not_to_contain_text(ENGINEER2)
        expect(strip).to_contain_text(FATIMA)
        expect(strip).to_contain_text(ERIK)
        expect(strip.locator("li")).to_have_count(2)
