"""Point 7: a laptop that loses its network, or meets a server restart, comes back to the
current board on its own: nothing missing, nothing doubled, no reload."""

from collections.abc import Callable

import pytest
from playwright.sync_api import Page, expect

from tests.browser.board import (
    COUPON,
    SSO,
    WAIT_MS,
    add_first_why,
    advance_to_whys,
    assert_not_reloaded,
    card,
    create_retro,
    mark_page,
    open_board,
    presence,
    why_texts,
)
from tests.browser.people import People
from tests.browser.wifi import Wifi

pytestmark = pytest.mark.browser

WHILE_AWAY = (
    "The basket page re-sends the form on refresh",
    "No test refreshes a page after applying a coupon",
)
AFTER_RESTART = "Coupon redemption has no idempotency key"
# ms to come back (the browser's stream retry plus one re-fetch), waited for generously.
BACK = WAIT_MS


def _whys(page: Page) -> int:
    return card(page, COUPON).locator(".why-text").count()


def test_a_laptop_back_online_and_after_a_server_restart_shows_every_change_once(
    people: People, wifi: Wifi, restart_server: Callable[[], None]
):
    facilitator = people.open("facilitator")
    retro_id = create_retro(facilitator.page, "Reconnect retro", escapes=(SSO, COUPON))
    advance_to_whys(facilitator.page)
    laptop = people.open("engineer", base_url=wifi.url)
    colleague = people.open("engineer2")
    for person in (laptop, colleague):
        open_board(person.page, retro_id)
    for person in (facilitator, laptop, colleague):
        # Requests that fail while offline or while the server restarts are logged by the
        # browser; that is what this test is about. CSP violations still fail it.
        person.tolerate_network_failures = True
    mark_page(laptop.page)
    expect(presence(laptop.page)).to_contain_text("engineer2")

    # The Wi-Fi goes: the laptop's connections die and the browser knows it is offline.
    wifi.cut()
    laptop.context.set_offline(True)
    expect(laptop.page.locator("#live-status")).to_have_text("Reconnecting…")
    for text in WHILE_AWAY:
        add_first_why(colleague.page, COUPON, text)
        expect(why_texts(colleague.page, COUPON, text)).to_have_count(1)
    facilitator.page.get_by_role("button", name="Next: Actions →").click()
    expect(why_texts(facilitator.page, COUPON, WHILE_AWAY[1])).to_have_count(1)
    laptop.page.wait_for_timeout(500)
    expect(why_texts(laptop.page, COUPON, WHILE_AWAY[0])).to_have_count(0)

    # Back online: the board catches up by itself, each change exactly once.
    wifi.restore()
    laptop.context.set_offline(False)
    for text in WHILE_AWAY:
        expect(why_texts(laptop.page, COUPON, text)).to_have_count(1, timeout=BACK)
    expect(laptop.page.locator("#phase-bar .phases li[aria-current=step]")).to_have_text("Actions")
    expect(laptop.page.locator("#live-status")).to_have_text("Live")
    assert _whys(laptop.page) == _whys(facilitator.page) == 2
    assert_not_reloaded(laptop.page)

    # The server restarts (as on a deploy); once it is back, a colleague posts.
    restart_server()
    add_first_why(colleague.page, COUPON, AFTER_RESTART)
    expect(why_texts(colleague.page, COUPON, AFTER_RESTART)).to_have_count(1)
    for person in (laptop, facilitator):
        expect(why_texts(person.page, COUPON, AFTER_RESTART)).to_have_count(1, timeout=BACK)
        expect(person.page.locator("#live-status")).to_have_text("Live", timeout=BACK)
    for text in WHILE_AWAY:
        expect(why_texts(laptop.page, COUPON, text)).to_have_count(1)
    assert _whys(laptop.page) == 3
    assert_not_reloaded(laptop.page)
    # The presence strip is rebuilt by the new server process from the streams that came back.
    for name in ("Fatima Facilitator", "engineer2"):
        expect(presence(laptop.page)).to_contain_text(name, timeout=BACK)

    # And the stream it came back on is live: the next change arrives as on any board (in the
    # usual second: bench/board_changes.py measures that).
    add_first_why(facilitator.page, SSO, "Safari blocks third-party cookies by default")
    expect(
        why_texts(laptop.page, SSO, "Safari blocks third-party cookies by default")
    ).to_have_count(1)
    assert_not_reloaded(laptop.page)
