"""Issue 10, points 6 and 7 in the browser: where tickets will go is said from the start, each
team chooses how strict closing is, and after closing the board, the summary, the Markdown
and the escape page say the same about each action.

Three people in their own browsers: the facilitator on a laptop, an engineer on a laptop and
the team's admin on a phone. The demo team starts strict (a root cause per escape) and has no
tracker connected.
"""

import re
from collections.abc import Iterator

import pytest
from playwright.sync_api import Page, ViewportSize, expect

from tests.browser.board import (
    COUPON,
    SSO,
    add_action,
    add_first_why,
    advance,
    advance_to_whys,
    card,
    create_retro,
    mark_root_cause,
    open_board,
    open_card,
    team_path,
    why_texts,
)
from tests.browser.people import People, Person

pytestmark = pytest.mark.browser

LAPTOP: ViewportSize = {"width": 1366, "height": 768}
PHONE: ViewportSize = {"width": 390, "height": 844}
RULE = "Closing also needs a root cause for every escape"
WHY = "Staging serves every page from a single domain"


def _set_rule(page: Page, *, strict: bool) -> None:
    """As the team's admin, on the stages page's "Retro rules"."""
    page.goto(team_path("stages/"))
    box = page.get_by_label(RULE)
    box.set_checked(strict)
    page.get_by_role("button", name="Save retro rules").click()
    expect(page.locator("#retro-rules")).to_contain_text("Retro rules saved.")


@pytest.fixture
def admin(people: People) -> Iterator[Person]:
    """The team's admin, on a phone; the demo's strict rule is back after the test."""
    person = people.open("admin")
    person.page.set_viewport_size(PHONE)
    yield person
    _set_rule(person.page, strict=True)


def _close(page: Page) -> None:
    page.get_by_role("button", name="Close retrospective").click()


def test_closing_follows_the_teams_rule_and_every_page_words_the_tickets_alike(
    people: People, admin: Person
):
    facilitator = people.open("facilitator")
    facilitator.page.set_viewport_size(LAPTOP)
    retro_id = create_retro(facilitator.page, "Strict close retro", escapes=(SSO, COUPON))
    engineer = people.open("engineer")
    engineer.page.set_viewport_size(LAPTOP)
    open_board(engineer.page, retro_id)
    open_board(admin.page, retro_id)
    everyone = (facilitator, engineer, admin)

    # From Gather on, everyone reads that no tracker is connected; the admin gets the way there.
    for person in everyone:
        target = person.page.locator("#close-region .tracker-target")
        expect(target).to_contain_text("No tracker connected")
        expect(target).to_contain_text("the actions stay in Leakseal as drafts")
        expect(person.page.locator("#close-region .close-rule")).to_contain_text(
            "a root cause for every escape"
        )
    connect = admin.page.locator("#close-region").get_by_role(
        "link", name="Connect Jira or Azure DevOps"
    )
    expect(connect).to_be_visible()
    expect(
        engineer.page.locator("#close-region").get_by_role(
            "link", name="Connect Jira or Azure DevOps"
        )
    ).to_have_count(0)

    # A root cause for one escape, an action for each.
    advance_to_whys(facilitator.page)
    add_first_why(engineer.page, SSO, WHY)
    expect(why_texts(engineer.page, SSO, WHY)).to_have_count(1)
    mark_root_cause(engineer.page, SSO, WHY, "Process failure")
    expect(card(engineer.page, SSO).locator(".root-cause-kind")).to_have_count(1)
    for title, action in ((SSO, "Two-domain staging"), (COUPON, "Idempotent coupon apply")):
        add_action(engineer.page, title, action=action, owner="engineer", kind="Process change")
        expect(
            card(engineer.page, title).locator(".action strong", has_text=action)
        ).to_be_visible()
    advance(facilitator.page, "Actions")

    # Strict: the coupon has no root cause, and the refusal names it once, with no internals.
    _close(facilitator.page)
    region = facilitator.page.locator("#close-region")
    refusal = region.locator(".close-errors[role=alert]")
    expect(refusal).to_contain_text(COUPON)
    expect(refusal).to_contain_text("root cause")
    assert region.inner_text().count(COUPON) == 1, "the refusal names the escape once"
    expect(region).not_to_contain_text(re.compile(r"version \d", re.IGNORECASE))
    expect(region).not_to_contain_text(SSO)  # it has all it needs
    expect(facilitator.page.locator("#phase-bar .phases li[aria-current=step]")).to_have_text(
        "Actions"
    )

    # A change elsewhere reaches the facilitator's board; the refusal, still true, stays.
    add_first_why(engineer.page, COUPON, WHY)
    expect(why_texts(facilitator.page, COUPON, WHY)).to_have_count(1)
    expect(refusal).to_contain_text(COUPON)
    assert region.inner_text().count(COUPON) == 1

    # The admin relaxes the rule from the phone; now the actions are enough.
    _set_rule(admin.page, strict=False)
    _close(facilitator.page)
    for person in (facilitator, engineer):
        expect(person.page.locator("#close-region h2")).to_have_text("Closed")
        for title in (SSO, COUPON):
            state = open_card(person.page, title).locator(".push-state")
            expect(state).to_have_text("Not pushed")

    # The summary, the Markdown and the escape page say what the board says.
    page = engineer.page
    page.goto(team_path(f"retros/{retro_id}/summary/"))
    expect(page.locator(".push-state")).to_have_text(["Not pushed", "Not pushed"])
    expect(page.locator("body")).not_to_contain_text("Draft")
    markdown = page.request.get(team_path(f"retros/{retro_id}/summary.md")).text()
    assert markdown.count("Not pushed") == 2, markdown
    assert "Draft" not in markdown
    page.goto(team_path(f"retros/{retro_id}/"))
    open_card(page, COUPON).get_by_role("link", name="details").click()
    # (other tests' retros may have actions on this escape too: this retro's is the one)
    row = page.locator("tr", has_text="Idempotent coupon apply")
    expect(row.locator("td.push .push-state")).to_have_text("Not pushed")
    assert people.problems() == []
