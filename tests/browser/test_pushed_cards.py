"""Issue 10, speed: a one-card change comes down the stream as the card's HTML, rendered once for
everyone of a role; each board puts in its person's own parts (votes, the controls on their own
whys, their CSRF token) and swaps it in without a request, and nothing typed is lost: the
draft, the caret and the focus stay where they were, on a phone and on a laptop."""

import pytest
from playwright.sync_api import Page, Request, Route, expect

from tests.browser.board import (
    COUPON,
    SSO,
    add_first_why,
    advance_to_whys,
    assert_not_reloaded,
    board_path,
    card,
    create_retro,
    facilitate,
    first_why_field,
    mark_page,
    open_board,
    open_card,
    overview_row,
    scroll_to,
    vote_button,
    why_item,
    why_texts,
)
from tests.browser.people import People

pytestmark = pytest.mark.browser

DRAFT = "The staging proxy strips the"
MINE = "Staging never runs behind the real SSO domain"
THEIRS = "The Safari run was dropped from the nightly suite"
PANEL = "**/tests/?view=board*"


def _settled(page: Page) -> None:
    """The board and its phase bar show the same version: no refresh of it outstanding."""
    page.wait_for_function(
        "() => document.getElementById('board').dataset.version"
        " === document.getElementById('phase-bar').dataset.version"
    )
    page.wait_for_timeout(300)  # and no event on its way that would start one


@pytest.mark.parametrize("viewport", [(390, 844), (1366, 768)], ids=["phone", "laptop"])
def test_a_pushed_card_keeps_the_draft_focus_caret_and_the_persons_own_parts(
    people: People, viewport: tuple[int, int]
):
    facilitator = people.open("facilitator")
    retro_id = create_retro(facilitator.page, "Pushed card retro", escapes=(SSO, COUPON))
    advance_to_whys(facilitator.page)
    a = people.open("engineer")
    b = people.open("engineer2")
    # B's board loads the card's test panel all along (its answers held back): a panel loading
    # itself is not something B does, and does not keep a pushed card out.
    held: list[Route] = []
    b.page.route(PANEL, lambda route: held.append(route))
    width, height = viewport
    b.page.set_viewport_size({"width": width, "height": height})
    for person in (a, b):
        open_board(person.page, retro_id)

    # B has a why of their own and a vote: parts of the card only B sees.
    add_first_why(b.page, SSO, MINE)
    expect(why_texts(b.page, SSO, MINE)).to_have_count(1)
    facilitate(facilitator.page, "Open dot voting")
    expect(b.page.locator("#facilitation-bar")).to_contain_text("Dot voting is open")
    vote_button(b.page, SSO).click()
    mine = open_card(b.page, SSO).locator(".my-votes")
    expect(mine).to_have_text("(1 yours)")
    _settled(b.page)

    board = board_path(retro_id)
    fetched: list[str] = []

    def record(request: Request) -> None:
        if request.headers.get("hx-request") and board in request.url:
            fetched.append(request.url.partition(board)[2])

    b.page.on("request", record)
    scroll_to(open_card(b.page, SSO).locator("section.escape-tests"))
    b.page.wait_for_function("() => document.querySelector('#board .escape-tests.htmx-request')")
    assert held, "the panel is loading"
    mark_page(b.page)

    # B is typing a why on the same card, the caret gone back to after "The ".
    draft = first_why_field(b.page, SSO)
    draft.click()
    draft.press_sequentially(DRAFT)
    draft.press("Home")
    for _ in range(4):
        draft.press("ArrowRight")

    add_first_why(a.page, SSO, THEIRS)
    expect(why_texts(b.page, SSO, THEIRS)).to_have_count(1)
    assert [url for url in fetched if not url.startswith("presence")] == [], "it was pushed"

    # What B typed, where B was typing it, and B's own parts of the card, as they were.
    expect(draft).to_have_value(DRAFT)
    expect(draft).to_be_focused()
    assert draft.evaluate("field => [field.selectionStart, field.selectionEnd]") == [4, 4]
    expect(mine).to_have_text("(1 yours)")
    expect(open_card(b.page, SSO).get_by_role("button", name="− Take back")).to_be_visible()
    expect(vote_button(b.page, SSO)).to_be_enabled()
    own_edit = why_item(b.page, SSO, MINE).locator(":scope > .why-controls summary")
    expect(own_edit.filter(has_text="Edit")).to_have_count(1)
    expect(why_item(b.page, SSO, THEIRS).locator("summary", has_text="Edit")).to_have_count(0)
    assert_not_reloaded(b.page)

    # B goes on typing at the caret and sends it: the CSRF token put in was B's, it posts.
    b.page.keyboard.type("same ")
    expect(draft).to_have_value("The same staging proxy strips the")
    draft.press("End")
    b.page.keyboard.type(" Host header")
    open_card(b.page, SSO).locator("form:has(input[id^=why-new-])").get_by_role(
        "button", name="Add why"
    ).click()
    sent = "The same staging proxy strips the Host header"
    for page in (a.page, b.page, facilitator.page):
        expect(why_texts(page, SSO, sent)).to_have_count(1)
    # A, who got B's why pushed, has no edit on it; B, its author, has.
    expect(why_item(a.page, SSO, sent).locator("summary", has_text="Edit")).to_have_count(0)
    expect(why_item(b.page, SSO, sent).locator("summary", has_text="Edit")).to_have_count(1)

    # The vote controls B's board keeps through a push still work: B takes the vote back.
    add_first_why(a.page, SSO, "Nobody owns the staging proxy config")
    expect(why_texts(b.page, SSO, "Nobody owns the staging proxy config")).to_have_count(1)
    open_card(b.page, SSO).get_by_role("button", name="− Take back").click()
    expect(mine).to_have_count(0)
    expect(open_card(a.page, SSO).locator(".votes")).to_have_text("0 votes")
    b.page.unroute(PANEL)  # the answers held back go on to the server
    expect(open_card(b.page, SSO).locator("section.escape-tests[data-lazy]")).to_have_count(0)


def test_a_click_pressed_while_the_overview_changes_is_not_lost(people: People):
    """B presses on an escape in the overview; before B lets go, A's why changes the overview.
    Replaced under the press, the link would never get B's click: it waits until B lets go."""
    facilitator = people.open("facilitator")
    retro_id = create_retro(facilitator.page, "Pressed link retro", escapes=(SSO, COUPON))
    advance_to_whys(facilitator.page)
    a = people.open("engineer")
    b = people.open("engineer2")
    for person in (a, b):
        open_board(person.page, retro_id)
    open_card(b.page, SSO)
    _settled(b.page)
    mark_page(b.page)
    before = b.page.locator("#board").get_attribute("data-version")

    link = overview_row(b.page, COUPON).get_by_role("link", name=COUPON, exact=True)
    link.scroll_into_view_if_needed()
    box = link.bounding_box()
    assert box
    b.page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    b.page.mouse.down()
    add_first_why(a.page, SSO, THEIRS)
    expect(why_texts(a.page, SSO, THEIRS)).to_have_count(1)
    b.page.wait_for_function(
        "before => document.getElementById('board').dataset.version !== before", arg=before
    )
    b.page.mouse.up()

    expect(card(b.page, COUPON)).to_be_visible()
    expect(overview_row(b.page, SSO)).to_contain_text("1")  # and the overview caught up
    expect(why_texts(b.page, SSO, THEIRS)).to_have_count(1)
    assert_not_reloaded(b.page)
