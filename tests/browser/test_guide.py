"""Point 4: the leak bucket guides the Five Whys. A card asks its category's questions, which
change live when the escape is reclassified or the team edits them; the action form suggests
the category's kind of action."""

import re

import pytest
from playwright.sync_api import ViewportSize, expect

from tests.browser.board import (
    COUPON,
    SSO,
    advance,
    card,
    classify,
    create_retro,
    open_board,
    open_card,
    team_path,
)
from tests.browser.people import People

pytestmark = pytest.mark.browser

PHONE: ViewportSize = {"width": 390, "height": 844}


def test_a_card_asks_its_categorys_questions_and_follows_the_teams_edits(people: People):
    facilitator = people.open("facilitator")
    retro_id = create_retro(facilitator.page, "Guided retro", escapes=(SSO, COUPON))
    advance(facilitator.page, "Categorize")
    engineer = people.open("engineer")
    engineer.page.set_viewport_size(PHONE)
    open_board(engineer.page, retro_id)
    page = engineer.page

    guide = open_card(page, SSO).locator(".guide")
    # Whatever an earlier test made of its category (test_live_changes changes it).
    classify(page, SSO, category="Coverage Gap", stage="E2E")
    expect(guide.locator("summary")).to_contain_text("Coverage Gap: ask")
    expect(guide.locator("summary")).to_contain_text("edge case had no test")
    classify(page, SSO, category="Environment Mismatch", stage="E2E")
    expect(guide.locator("summary")).to_contain_text("Environment Mismatch: ask")
    expect(guide.locator("summary")).to_contain_text("what differed between", ignore_case=True)
    # The first question is the hint; the rest open under it.
    expect(guide.locator(".guide-questions")).not_to_be_visible()
    guide.locator("summary").click()
    expect(guide.locator(".guide-questions li").first).to_be_visible()
    # Everyone's board follows the classification.
    expect(open_card(facilitator.page, SSO).locator(".guide summary")).to_contain_text(
        "data volume"
    )
    # On the phone the questions wrap within the screen (the rest of the board's width is
    # point 2 of the issue).
    # (Measured once the card is on screen: a live refresh may be swapping it in just now.)
    expect(guide).to_be_visible()
    box = guide.bounding_box()
    for _ in range(50):
        if box is not None:
            break
        page.wait_for_timeout(100)
        box = guide.bounding_box()
    assert box is not None and box["x"] + box["width"] <= PHONE["width"]

    # The facilitator rewrites the team's questions; the open board shows them at once and
    # keeps the list open that the engineer opened.
    open_card(facilitator.page, SSO).locator(".guide summary").click()
    card(facilitator.page, SSO).get_by_role("link", name="Edit the team's questions").click()
    section = facilitator.page.locator("#guide-environment_mismatch")
    section.get_by_label("Questions for Environment Mismatch, one a line").fill(
        "Which feature flag was set differently in production?\nWhich quota did staging lack?"
    )
    section.get_by_role("button", name="Save questions").click()
    expect(section.get_by_role("status")).to_have_text(
        "Saved the 2 questions for Environment Mismatch."
    )
    expect(guide.locator("summary")).to_contain_text("Which feature flag was set differently")
    expect(guide.locator(".guide-questions li")).to_have_text(["Which quota did staging lack?"])

    section.get_by_role("button", name="Reset to the defaults").click()
    expect(section.get_by_role("status")).to_have_text(
        "Environment Mismatch uses the default questions."
    )
    expect(guide.locator("summary")).to_contain_text("data volume")
    assert people.problems() == []


def test_the_action_form_suggests_the_categorys_kind(people: People):
    facilitator = people.open("facilitator")
    retro_id = create_retro(facilitator.page, "Guided actions", escapes=(COUPON,))
    advance(facilitator.page, "Categorize")
    classify(facilitator.page, COUPON, category="Flakiness / False Negative", stage="Integration")
    advance(facilitator.page, "Five Whys")
    engineer = people.open("engineer")
    open_board(engineer.page, retro_id)
    the_card = open_card(engineer.page, COUPON)
    the_card.get_by_text("Add a preventative action").click()
    kind = the_card.locator("form:has(input[id^=new-action-])").get_by_label("Kind")
    expect(kind).to_have_value("flake_fix")
    expect(kind.locator("optgroup").first).to_have_attribute(
        "label", "Suggested for Flakiness / False Negative"
    )
    assert people.problems() == []


def test_members_are_refused_the_edit_page_with_a_way_back(people: People):
    engineer = people.open("engineer")
    engineer.tolerate_console = re.compile(r"status of 403")
    response = engineer.page.goto(team_path("retros/guide/"))
    assert response is not None and response.status == 403
    expect(engineer.page.get_by_role("heading", level=1)).to_be_visible()
    expect(engineer.page.locator("main a").first).to_be_visible()
