"""Issue 12, point 4 in the browser: a team admin connects Confluence on a phone, a retro
closes, the real worker publishes its summary to a fake Confluence over HTTP, the summary
links the page, and "Publish again" updates the same page. axe finds nothing serious on the
connection page (with and without errors) or on the summary with its link, at 390 and 1366 px,
and neither page scrolls sideways.

Screenshots land in $LEAKSEAL_SHOTS when it is set (for a person to look at).
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from tests.browser.board import (
    SSO,
    add_action,
    add_first_why,
    advance,
    advance_to_whys,
    create_retro,
    mark_root_cause,
    open_board,
    team_path,
)
from tests.browser.people import People, Person
from tests.browser.test_accessibility import Audit
from tests.fakes import accounts
from tests.fakes.confluence import FakeConfluence

pytestmark = pytest.mark.browser

WHY = "The SSO cookie is set for one domain only"
SIZES = [(390, 844), (1366, 768)]


def shoot(page: Page, name: str) -> None:
    folder = os.environ.get("LEAKSEAL_SHOTS")
    if not folder:
        return
    for width, height in SIZES:
        page.set_viewport_size({"width": width, "height": height})
        page.screenshot(path=str(Path(folder) / f"{name}-{width}.png"), full_page=True)


def no_sideways_scroll(page: Page) -> None:
    for width, height in SIZES:
        page.set_viewport_size({"width": width, "height": height})
        extra = page.evaluate(
            "document.documentElement.scrollWidth - document.documentElement.clientWidth"
        )
        assert extra <= 0, f"{page.url} is {extra} px wider than {width} px"


@pytest.fixture
def fake() -> Iterator[FakeConfluence]:
    fake = FakeConfluence().start()
    yield fake
    fake.stop()
    assert fake.violations == []


@pytest.fixture
def admin(people: People, fake: FakeConfluence) -> Iterator[Person]:
    person = people.open("admin")
    person.page.set_viewport_size({"width": 390, "height": 844})
    yield person
    # Other tests close retros too: leave the demo team without Confluence.
    page = person.page
    page.goto(team_path("integrations/confluence/"))
    disconnect = page.get_by_role("button", name="Disconnect")
    if disconnect.count():
        disconnect.click()


def fill(page: Page, fake: FakeConfluence, *, space: str) -> None:
    page.goto(team_path("integrations/confluence/"))
    page.get_by_label("Deployment").select_option(label="Confluence Cloud")
    page.get_by_label("Site URL").fill(fake.url)
    page.get_by_label("Account email (Cloud only)").fill(accounts.CONFLUENCE_EMAIL)
    page.get_by_label(re.compile("^API token")).fill(accounts.CONFLUENCE_TOKEN)
    page.get_by_label("Space key").fill(space)
    page.get_by_label("Parent page").fill(accounts.CONFLUENCE_PARENT)
    page.get_by_role("button", name="Save").click()


def test_an_admin_connects_confluence_and_a_closed_retro_links_its_page(
    people: People, admin: Person, fake: FakeConfluence
):
    audit = Audit()
    page = admin.page
    admin.tolerate_console = re.compile(r"status of 400")  # the refused save, on purpose

    # A space that does not exist: said beside its field, nothing saved, token not echoed.
    fill(page, fake, space="NOPE")
    space = page.get_by_label("Space key")
    expect(space).to_have_attribute("aria-invalid", "true")
    expect(page.locator(".field.has-errors")).to_contain_text("no space with the key NOPE")
    assert accounts.CONFLUENCE_TOKEN not in page.content()
    audit.check(admin, "the Confluence connection with an error")
    shoot(page, "confluence-connection-error")

    fill(page, fake, space=accounts.CONFLUENCE_SPACE)
    expect(page.locator(".messages")).to_contain_text("Confluence connected")
    expect(page.locator("main")).to_contain_text("space ENG, under “Retrospectives”")
    assert accounts.CONFLUENCE_TOKEN not in page.content()
    audit.check(admin, "the Confluence connection")
    no_sideways_scroll(page)
    shoot(page, "confluence-connection")

    # A retro with one escape closes; the worker publishes it.
    facilitator = people.open("facilitator")
    retro_id = create_retro(facilitator.page, "Confluence retro", escapes=(SSO,))
    advance_to_whys(facilitator.page)
    add_first_why(facilitator.page, SSO, WHY)
    mark_root_cause(facilitator.page, SSO, WHY, "Process failure")
    add_action(
        facilitator.page,
        SSO,
        action="Cookie on both domains",
        owner="engineer",
        kind="Process change",
    )
    advance(facilitator.page, "Actions")
    facilitator.page.get_by_role("button", name="Close retrospective").click()
    expect(facilitator.page.locator("#close-region h2")).to_have_text("Closed")

    summary = team_path(f"retros/{retro_id}/summary/")
    # The stack's worker publishes within seconds; the wait is for a busy machine.
    deadline = time.monotonic() + 60
    while True:
        page.goto(summary)
        if page.get_by_role("link", name="Published to Confluence").count():
            break
        assert time.monotonic() < deadline, page.locator("#confluence").inner_text()
        time.sleep(0.5)
    [published] = fake.children(fake.parent_id)
    assert published.title.startswith("Confluence retro — retro #")
    link = page.get_by_role("link", name="Published to Confluence")
    expect(link).to_have_attribute("href", re.compile(rf"/pages/{published.id}/"))
    expect(page.locator("#confluence")).to_contain_text("version 1")
    audit.check(admin, "the summary published to Confluence")
    no_sideways_scroll(page)
    shoot(page, "confluence-summary")

    # Publish again: the same page, version 2.
    page.get_by_role("button", name="Publish again").click()
    deadline = time.monotonic() + 60
    while "version 2" not in page.locator("#confluence").inner_text():
        assert time.monotonic() < deadline, page.locator("#confluence").inner_text()
        time.sleep(0.5)
        page.goto(summary)
    [again] = fake.children(fake.parent_id)
    assert (again.id, again.version) == (published.id, 2)

    # The engineer (not an admin) sees the link but not the button.
    engineer = people.open("engineer")
    engineer.page.goto(summary)
    expect(engineer.page.get_by_role("link", name="Published to Confluence")).to_be_visible()
    expect(engineer.page.get_by_role("button", name="Publish again")).to_have_count(0)
    open_board(engineer.page, retro_id)
    audit.assert_clean()
