"""Issue 10, point 3: in Gather every engineer contributes. One proposes an escape from the
register, another records a new one; both reach every board at once, marked as proposed;
the facilitator keeps one and removes the other; facts (a log link, a timeline note) reach
every card; a bad link is refused beside its field. At a phone's and a laptop's size."""

from datetime import UTC, datetime, timedelta

import pytest
from playwright.sync_api import Page, expect

from tests.browser.board import (
    COUPON,
    SSO,
    card,
    create_retro,
    open_board,
    open_card,
    overview_row,
    scroll_to,
)
from tests.browser.people import People
from tests.browser.test_page_widths import overflow

pytestmark = pytest.mark.browser

LOG = "Gateway 504s from 14:02"
LOG_URL = "https://logs.example.com/search?q=checkout-504"
NOTE = "Support saw the first double coupon at 14:10"


def propose_from_register(page: Page, title: str) -> None:
    gather = page.locator("#gather-region")
    value = gather.locator("#add-escape option", has_text=title).get_attribute("value")
    gather.get_by_label("Escape from the register").select_option(value)
    gather.get_by_role("button", name="Propose escape").click()


def propose_new(page: Page, title: str) -> None:
    gather = page.locator("#gather-region")
    gather.locator("summary", has_text="Record a new escape").click()
    gather.get_by_label("Title").fill(title)
    # A day ago in UTC is in the past whatever the team's zone.
    detected = datetime.now(UTC) - timedelta(days=1)
    gather.get_by_label("Detected at").fill(detected.strftime("%Y-%m-%dT%H:%M"))
    gather.get_by_label("Severity").select_option(label="High")
    gather.get_by_role("button", name="Propose new escape").click()


def add_fact(page: Page, title: str, *, kind: str, text: str, link: str = "") -> None:
    the_card = open_card(page, title)
    facts = the_card.locator(".card-facts")
    details = facts.locator("details.fact-add")
    if details.get_attribute("open") is None:
        details.locator("summary").click()
    facts.get_by_label("Kind").select_option(label=kind)
    facts.get_by_label("What it shows").fill(text)
    facts.get_by_label("Link").fill(link)
    facts.get_by_role("button", name="Add fact").click()


@pytest.mark.parametrize(("width", "height"), [(390, 844), (1366, 768)])
def test_engineers_propose_escapes_and_add_facts_in_gather(people: People, width: int, height: int):
    new_title = f"Gift card balance shown twice ({width})"
    facilitator = people.open("facilitator")
    facilitator.page.set_viewport_size({"width": width, "height": height})
    retro_id = create_retro(facilitator.page, f"Gather together {width}", escapes=(SSO,))
    erik, nora = people.open("engineer"), people.open("engineer2")
    everyone = [facilitator, erik, nora]
    for engineer in (erik, nora):
        engineer.page.set_viewport_size({"width": width, "height": height})
        open_board(engineer.page, retro_id)
        expect(engineer.page.locator("#gather-region")).to_be_visible()

    # One engineer proposes an escape of the register, the other records a new one.
    propose_from_register(erik.page, COUPON)
    propose_new(nora.page, new_title)
    for person in everyone:
        for title, by in ((COUPON, "engineer"), (new_title, "engineer2")):
            row = overview_row(person.page, title)
            expect(row.locator(".proposed-badge")).to_have_text("Proposed")
            expect(card(person.page, title).locator(".proposal")).to_contain_text(
                f"Proposed by {by}"
            )
    # Only the facilitator decides; nobody moves on past a waiting proposal.
    expect(open_card(erik.page, COUPON).get_by_role("button", name="Keep")).to_have_count(0)
    facilitator.page.get_by_role("button", name="Next: Categorize →").click()
    expect(facilitator.page.locator(".board-errors")).to_contain_text(
        "Keep or remove each proposed escape before moving on"
    )
    # caret="initial": hiding the caret leaves style="" on the inputs, which htmx's settle
    # then copies into the next swap, and the CSP refuses that.
    scroll_to(open_card(facilitator.page, COUPON).locator(".proposal"))
    facilitator.page.screenshot(
        path=f"/tmp/gather_facilitator_proposal_{width}.png", caret="initial"
    )

    # The facilitator keeps one and removes the other; every board follows.
    open_card(facilitator.page, COUPON).get_by_role("button", name="Keep").click()
    expect(card(facilitator.page, COUPON).locator(".proposal")).to_have_count(0)
    open_card(facilitator.page, new_title).get_by_role("button", name="Remove", exact=True).click()
    for person in everyone:
        expect(overview_row(person.page, COUPON).locator(".proposed-badge")).to_have_count(0)
        expect(overview_row(person.page, new_title)).to_have_count(0)
        expect(card(person.page, COUPON).locator(".proposal")).to_have_count(0)

    # An engineer adds a log link and a timeline note to the kept escape; everyone sees them.
    add_fact(erik.page, COUPON, kind="Log", text=LOG, link=LOG_URL)
    expect(card(erik.page, COUPON).locator(".fact")).to_have_count(1)
    add_fact(erik.page, COUPON, kind="Timeline note", text=NOTE)
    for person in everyone:
        facts = card(person.page, COUPON).locator(".fact")
        expect(facts).to_have_count(2)
        log = facts.nth(0)  # newest last
        expect(log.locator(".fact-kind")).to_have_text("Log")
        # (The card may be hidden behind the overview on this person's board.)
        expect(log.locator("a.fact-text")).to_have_text(LOG)
        expect(log.locator("a.fact-text")).to_have_attribute("href", LOG_URL)
        expect(log.locator(".fact-meta")).to_contain_text("engineer")
        expect(facts.nth(1)).to_contain_text(NOTE)
        expect(overview_row(person.page, COUPON).locator(".overview-facts")).to_have_text("2 facts")

    # A bad link is refused beside its field, with what was typed kept.
    add_fact(erik.page, COUPON, kind="CI run", text="Nightly e2e run", link="ci/runs/42")
    the_card = card(erik.page, COUPON)
    error = the_card.locator(".field-error")
    expect(error).to_contain_text("Enter a web address that starts with http:// or https://")
    expect(error).to_have_attribute("role", "alert")
    link_field = the_card.get_by_label("Link")
    expect(link_field).to_have_attribute("aria-invalid", "true")
    expect(link_field).to_have_attribute("aria-describedby", error.get_attribute("id") or "-")
    expect(link_field).to_have_value("ci/runs/42")
    expect(the_card.get_by_label("What it shows")).to_have_value("Nightly e2e run")
    # The error sits right under the field it is about.
    field_box, error_box = link_field.bounding_box(), error.bounding_box()
    assert field_box and error_box
    assert 0 <= error_box["y"] - (field_box["y"] + field_box["height"]) < 40
    expect(card(facilitator.page, COUPON).locator(".fact")).to_have_count(2)

    for person, who in ((facilitator, "facilitator"), (erik, "engineer")):
        page = person.page
        assert overflow(page) <= 0, f"{who}'s board is wider than {width} px"
        scroll_to(page.locator("#gather-region"))
        page.screenshot(path=f"/tmp/gather_{who}_region_{width}.png", caret="initial")
        scroll_to(open_card(page, COUPON).locator(".card-facts"))
        page.screenshot(path=f"/tmp/gather_{who}_facts_{width}.png", caret="initial")
