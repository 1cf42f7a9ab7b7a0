"""Point 6: blameless by design. A why that points at a person gets a system-focused rewording
before it is posted; the author may post it anyway, or take the suggestion."""

import pytest
from playwright.sync_api import expect

from tests.browser.board import (
    COUPON,
    SSO,
    add_first_why,
    advance_to_whys,
    card,
    create_retro,
    first_why_field,
    open_board,
    why_texts,
)
from tests.browser.people import People

pytestmark = pytest.mark.browser

SAM = "Sam forgot to run the migration"
# Fatima is the demo facilitator's first name: a member of the team, named in a why.
NAMED = "Fatima merged the change without waiting for the E2E run"


def test_a_why_blaming_a_person_gets_a_suggestion_and_can_be_posted_anyway(people: People):
    facilitator = people.open("facilitator")
    retro_id = create_retro(facilitator.page, "Blameless retro", escapes=(SSO, COUPON))
    advance_to_whys(facilitator.page)
    author = people.open("engineer")
    open_board(author.page, retro_id)
    page = author.page

    add_first_why(page, SSO, SAM)
    check = card(page, SSO).locator(".blameless")
    expect(check).to_be_visible()
    expect(check).to_contain_text("this why points at a person")
    expect(check.locator(".blameless-findings")).to_contain_text("forgot")
    suggestion = check.locator(".blameless-suggestion").inner_text()
    assert suggestion and "Sam" not in suggestion and "forgot" not in suggestion.lower()
    # Held back, not posted: the author still has the text, nobody sees it.
    expect(first_why_field(page, SSO)).to_have_value(SAM)
    expect(why_texts(page, SSO, SAM)).to_have_count(0)
    expect(why_texts(facilitator.page, SSO, SAM)).to_have_count(0)

    check.get_by_role("button", name="Post anyway").click()
    for viewer in (page, facilitator.page):
        expect(why_texts(viewer, SSO, SAM)).to_have_count(1)
    expect(card(page, SSO).locator(".blameless")).to_have_count(0)


@pytest.mark.parametrize(
    "blaming", ["QA missed the expired certificate", "The rollout was careless"]
)
def test_blame_on_a_role_or_in_a_judgement_gets_a_suggestion(people: People, blaming: str):
    facilitator = people.open("facilitator")
    retro_id = create_retro(facilitator.page, f"Blameless: {blaming}", escapes=(COUPON,))
    advance_to_whys(facilitator.page)
    author = people.open("engineer")
    open_board(author.page, retro_id)
    add_first_why(author.page, COUPON, blaming)
    suggestion = card(author.page, COUPON).locator(".blameless .blameless-suggestion")
    expect(suggestion).to_be_visible()
    expect(suggestion).not_to_have_text(blaming)
    expect(why_texts(author.page, COUPON, blaming)).to_have_count(0)


def test_the_suggestion_stays_on_screen_while_others_change_the_board(people: People):
    facilitator = people.open("facilitator")
    retro_id = create_retro(facilitator.page, "Busy blameless retro", escapes=(SSO, COUPON))
    advance_to_whys(facilitator.page)
    author = people.open("engineer")
    open_board(author.page, retro_id)

    add_first_why(author.page, SSO, SAM)
    check = card(author.page, SSO).locator(".blameless")
    expect(check).to_be_visible()
    # While the author reads the suggestion, someone else adds a why to the same escape.
    other = "Migrations run by hand after each deploy"
    add_first_why(facilitator.page, SSO, other)
    expect(why_texts(author.page, SSO, other)).to_have_count(1)
    # The author's choice is still there to make, with the draft.
    expect(check).to_be_visible()
    expect(first_why_field(author.page, SSO)).to_have_value(SAM)
    check.get_by_role("button", name="Post anyway").click()
    expect(why_texts(facilitator.page, SSO, SAM)).to_have_count(1)


def test_naming_a_member_gets_a_suggestion_that_can_be_used_instead(people: People):
    facilitator = people.open("facilitator")
    retro_id = create_retro(facilitator.page, "Use the suggestion retro", escapes=(COUPON,))
    advance_to_whys(facilitator.page)
    author = people.open("engineer2")
    open_board(author.page, retro_id)
    page = author.page

    add_first_why(page, COUPON, NAMED)
    check = card(page, COUPON).locator(".blameless")
    expect(check.locator(".blameless-findings")).to_contain_text("Fatima")
    suggestion = check.locator(".blameless-suggestion").inner_text().strip()
    assert suggestion and "Fatima" not in suggestion

    check.get_by_role("button", name="Use suggestion").click()
    # The suggestion replaces the draft, for the author to read before it goes out.
    expect(first_why_field(page, COUPON)).to_have_value(suggestion)
    card(page, COUPON).locator("form:has(input[id^=why-new-])").get_by_role(
        "button", name="Add why"
    ).click()
    for viewer in (page, facilitator.page):
        expect(why_texts(viewer, COUPON, suggestion)).to_have_count(1)
        expect(why_texts(viewer, COUPON, NAMED)).to_have_count(0)
        expect(card(viewer, COUPON)).not_to_contain_text("Fatima merged")
