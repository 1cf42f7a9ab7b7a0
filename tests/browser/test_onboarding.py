"""Issue 11, points 1 and 2 in a real browser: an admin invites an address; the link comes out
of the email the stack really sent; a new person opens it in a browser of their own, creates
the account and lands on the team; the admin changes their role. Every page of it fits 390 px
and 1366 px, and each is photographed at both sizes (in /tmp/onboarding_*.png)."""

import re

import pytest
from playwright.sync_api import Page, expect

from tests.browser.people import People
from tests.browser.stack import TEAM
from tests.browser.test_page_widths import VIEWPORTS, first_link, overflow

pytestmark = pytest.mark.browser

ADDRESS = "nadia.newcomer@example.com"
PASSWORD = "Harbour-lantern-blue-42"


def _invitation_link(people: People, address: str) -> str:
    body = people.stack.latest_email_to(address)
    match = re.search(r"https?://\S+/invitations/lki_[\w-]+/", body)
    assert match, body
    return match.group(0)


# The innermost elements that reach past the viewport's right edge, widest first: what to fix.
WIDEST = """() => {
  const edge = document.documentElement.clientWidth;
  const past = [...document.querySelectorAll('body *')].filter(
    (el) => el.getBoundingClientRect().right > edge + 0.5
      && ![...el.children].some((c) => c.getBoundingClientRect().right > edge + 0.5));
  past.sort((a, b) => b.getBoundingClientRect().right - a.getBoundingClientRect().right);
  return past.slice(0, 5).map((el) => el.tagName.toLowerCase()
    + (el.id ? '#' + el.id : '')
    + (el.className ? '.' + String(el.className).split(' ').join('.') : '')
    + ' "' + (el.textContent || '').trim().slice(0, 60) + '" right='
    + Math.round(el.getBoundingClientRect().right)).join(' | ');
}"""


def _fits_and_photograph(page: Page, name: str, too_wide: list[str]) -> None:
    for width, height in VIEWPORTS:
        page.set_viewport_size({"width": width, "height": height})
        if (extra := overflow(page)) > 0:
            culprits = page.evaluate(WIDEST)
            too_wide.append(f"{name} ({page.url}) at {width} px: {extra} px too wide; {culprits}")
        page.screenshot(path=f"/tmp/onboarding_{name}_{width}.png", full_page=True)
    page.set_viewport_size({"width": 1280, "height": 900})


def test_an_invited_person_signs_up_from_the_email_and_the_admin_changes_their_role(
    people: People,
):
    too_wide: list[str] = []
    admin = people.open("admin")
    page = admin.page
    page.goto("/")
    page.get_by_role("link", name="Create a team").click()
    expect(page.get_by_label("Pipeline stages")).to_have_value("Unit\nIntegration\nE2E")
    _fits_and_photograph(page, "team_new", too_wide)

    page.goto(f"/t/{TEAM}/members/")
    page.get_by_label("Email address").fill(ADDRESS)
    page.get_by_label("Role", exact=True).select_option("viewer")
    page.get_by_role("button", name="Send invitation").click()
    expect(page.locator(".messages")).to_contain_text(f"Invitation sent to {ADDRESS}")
    invitations = page.locator("#invitations")
    expect(invitations).to_contain_text(ADDRESS)
    _fits_and_photograph(page, "members", too_wide)

    link = _invitation_link(people, ADDRESS)
    assert link.startswith(people.stack.url)

    newcomer = people.open("nadia", signed_in=False)
    visitor = newcomer.page
    visitor.goto(link)
    expect(visitor.get_by_role("heading", name="Join Payments Platform")).to_be_visible()
    expect(visitor.locator("main")).to_contain_text(ADDRESS)
    _fits_and_photograph(visitor, "invitation", too_wide)
    visitor.get_by_label("Username").fill("nadia")
    visitor.get_by_label("Your name").fill("Nadia Newcomer")
    visitor.get_by_label("Password", exact=True).fill("short")
    visitor.get_by_label("Password again").fill("short")
    visitor.get_by_role("button", name="Create account and join").click()
    # Refused beside the password, which is marked invalid and described by the message.
    password = visitor.get_by_label("Password", exact=True)
    expect(password).to_have_attribute("aria-invalid", "true")
    expect(visitor.locator("#id_password_error")).to_contain_text("too short")
    _fits_and_photograph(visitor, "invitation_refused_password", too_wide)
    visitor.get_by_label("Password", exact=True).fill(PASSWORD)
    visitor.get_by_label("Password again").fill(PASSWORD)
    visitor.get_by_role("button", name="Create account and join").click()
    expect(visitor).to_have_url(re.compile(rf"/t/{TEAM}/$"))
    expect(visitor.locator(".messages")).to_contain_text("Welcome to Payments Platform")
    expect(visitor.locator(".usernav")).to_contain_text("nadia")

    # The link is used up: opened again (a fresh browser), it says so.
    again = people.open("someone", signed_in=False)
    again.tolerate_console = re.compile(r"status of 410")
    again.page.goto(link)
    expect(
        again.page.get_by_role("heading", name="This invitation link has been used")
    ).to_be_visible()
    _fits_and_photograph(again.page, "invitation_used", too_wide)

    # The admin sees the new member and makes them a facilitator.
    page.goto(f"/t/{TEAM}/members/")
    row = page.locator("#members tr", has_text="Nadia Newcomer")
    expect(row.get_by_label("Role of nadia")).to_have_value("viewer")
    expect(page.locator("#invitations")).not_to_contain_text(ADDRESS)
    row.get_by_label("Role of nadia").select_option("facilitator")
    row.get_by_role("button", name="Change role").click()
    expect(page.locator(".messages")).to_contain_text("nadia is now facilitator")
    expect(
        page.locator("#members tr", has_text="Nadia Newcomer").get_by_label("Role of nadia")
    ).to_have_value("facilitator")
    # The last admin cannot step down: refused beside the control, with the reason.
    own = page.locator("#members tr", has_text="(you)")
    own.get_by_label("Role of admin").select_option("member")
    own.get_by_role("button", name="Change role").click()
    expect(page.locator("#members tr", has_text="(you)").get_by_role("alert")).to_contain_text(
        "You are the only admin of Payments Platform"
    )
    _fits_and_photograph(page, "members_refused", too_wide)

    # The newcomer, now a facilitator, may create a retro.
    visitor.goto(f"/t/{TEAM}/retros/new/")
    expect(visitor.get_by_role("heading", name=re.compile("retro", re.I)).first).to_be_visible()

    assert too_wide == []


def test_a_retro_join_link_admits_a_newcomer_as_a_member_when_the_admin_allows_it(
    people: People,
):
    too_wide: list[str] = []
    admin = people.open("admin")
    page = admin.page
    page.goto(f"/t/{TEAM}/retros/")
    board = first_link(page, rf"/t/{TEAM}/retros/\d+/")
    page.goto(f"/t/{TEAM}/members/")
    page.get_by_label("People with a retro's join link may create an account").check()
    page.locator("#join-link").get_by_role("button", name="Save").click()
    try:
        expect(page.locator(".messages")).to_contain_text("may now create an account")
        page.goto(board)
        join_url = page.locator("#join-url").input_value()
        assert "/join/" in join_url

        newcomer = people.open("jonas", signed_in=False)
        visitor = newcomer.page
        visitor.goto(join_url)
        expect(visitor.get_by_role("heading", name=re.compile("Join the retro"))).to_be_visible()
        _fits_and_photograph(visitor, "retro_join", too_wide)
        visitor.get_by_label("Username").fill("jonas")
        visitor.get_by_label("Your name").fill("Jonas Joiner")
        visitor.get_by_label("Email address").fill("jonas@example.com")
        visitor.get_by_label("Password", exact=True).fill(PASSWORD)
        visitor.get_by_label("Password again").fill(PASSWORD)
        visitor.get_by_role("button", name="Create account and join").click()
        expect(visitor).to_have_url(re.compile(rf"{board}$"))
        expect(visitor.locator(".messages")).to_contain_text("you are a member")

        page.goto(f"/t/{TEAM}/members/")
        row = page.locator("#members tr", has_text="Jonas Joiner")
        expect(row.get_by_label("Role of jonas")).to_have_value("member")
    finally:
        # The stack is shared: leave the demo team's join link as the other tests expect it.
        page.goto(f"/t/{TEAM}/members/")
        page.get_by_label("People with a retro's join link may create an account").uncheck()
        page.locator("#join-link").get_by_role("button", name="Save").click()
        expect(page.locator(".messages")).to_contain_text("works only for members")
    assert too_wide == []
