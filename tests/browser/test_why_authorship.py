"""Issue 10, point 5: a why says who wrote it and who edited it last, its earlier versions are
one click away, and only its author or the facilitator is offered Edit and Delete."""

import pytest
from playwright.sync_api import expect

from tests.browser.board import (
    SSO,
    add_first_why,
    advance_to_whys,
    create_retro,
    open_board,
    scroll_to,
    why_item,
    why_texts,
)
from tests.browser.people import People

pytestmark = pytest.mark.browser

MINE = "The staging proxy rewrites cookies"
REWORDED = "The staging proxy rewrites SSO cookies on the way through"
THEIRS = "Cross-domain cookies were never in the test plan"


@pytest.mark.parametrize(("width", "height"), [(390, 844), (1366, 768)])
def test_an_edit_shows_its_editor_and_history_and_only_allowed_people_change_whys(
    people: People, width: int, height: int
):
    facilitator = people.open("facilitator")
    facilitator.page.set_viewport_size({"width": width, "height": height})
    retro_id = create_retro(facilitator.page, f"Authorship {width}", escapes=(SSO,))
    advance_to_whys(facilitator.page)
    engineer = people.open("engineer")
    engineer.page.set_viewport_size({"width": width, "height": height})
    open_board(engineer.page, retro_id)

    add_first_why(engineer.page, SSO, MINE)
    add_first_why(facilitator.page, SSO, THEIRS)
    for page in (engineer.page, facilitator.page):
        expect(why_texts(page, SSO, MINE)).to_have_count(1)
        expect(why_texts(page, SSO, THEIRS)).to_have_count(1)

    # The engineer may change their own why, not the facilitator's; the facilitator both.
    theirs = why_item(engineer.page, SSO, THEIRS)
    expect(theirs.get_by_role("button", name="Delete")).to_have_count(0)
    expect(theirs.locator("summary", has_text="Edit")).to_have_count(0)
    for item in (why_item(facilitator.page, SSO, MINE), why_item(facilitator.page, SSO, THEIRS)):
        expect(item.get_by_role("button", name="Delete")).to_have_count(1)

    mine = why_item(engineer.page, SSO, MINE)
    mine.locator("summary", has_text="Edit").click()
    mine.locator("input[name=text]").first.fill(REWORDED)
    mine.get_by_role("button", name="Save").click()

    # The facilitator's board follows live: the new text, who edited it, the earlier version.
    item = why_item(facilitator.page, SSO, REWORDED)
    expect(item.locator(".why-edited")).to_contain_text("edited by engineer")
    item.locator(".why-history summary").click()
    expect(item.locator(".why-history li")).to_have_count(1)
    expect(item.locator(".why-history li")).to_contain_text(MINE)
    expect(item.locator(".why-history li")).to_contain_text("engineer")
    scroll_to(item)
    facilitator.page.screenshot(path=f"/tmp/why_history_{width}.png")
    engineer.page.screenshot(path=f"/tmp/why_engineer_{width}.png")
