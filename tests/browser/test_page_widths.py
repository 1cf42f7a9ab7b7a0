"""Issue 10, point 2: every page fits a phone (390 px) and a laptop (1366 px) without sideways
scrolling. A wide table may scroll inside itself; the page may not."""

import re

import pytest
from playwright.sync_api import Page

from tests.browser.people import People
from tests.browser.stack import TEAM

pytestmark = pytest.mark.browser

VIEWPORTS = [(390, 844), (1366, 768)]

PAGES = [
    "/",
    f"/t/{TEAM}/",
    f"/t/{TEAM}/escapes/",
    f"/t/{TEAM}/escapes/new/",
    f"/t/{TEAM}/escapes/import/",
    f"/t/{TEAM}/releases/",
    f"/t/{TEAM}/stages/",
    f"/t/{TEAM}/retros/",
    f"/t/{TEAM}/retros/new/",
    f"/t/{TEAM}/dashboard/",
    f"/t/{TEAM}/integrations/connection/",
    f"/t/{TEAM}/chat/",
    f"/t/{TEAM}/integrations/confluence/",
    "/dashboard/",
    "/escapes/",
    "/tokens/",
    "/settings/notifications/",
    f"/t/{TEAM}/retros/999999/",  # the 404 page
]


def first_link(page: Page, pattern: str) -> str:
    """The first link on the page whose path matches `pattern` (an escape, a retro, ...)."""
    for href in page.locator("a[href]").evaluate_all("links => links.map(a => a.pathname)"):
        if re.fullmatch(pattern, href):
            return href
    raise AssertionError(f"no link matching {pattern} on {page.url}")


def overflow(page: Page) -> int:
    """How many pixels the page is wider than its viewport."""
    return page.evaluate(
        "document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )


def test_no_page_is_wider_than_its_viewport(people: People):
    facilitator = people.open("facilitator")
    page = facilitator.page
    page.goto(f"/t/{TEAM}/escapes/")
    escape = first_link(page, rf"/t/{TEAM}/escapes/\d+/")
    page.goto(f"/t/{TEAM}/retros/")
    board = first_link(page, rf"/t/{TEAM}/retros/\d+/")
    page.goto(f"/t/{TEAM}/releases/")
    release = first_link(page, rf"/t/{TEAM}/releases/\d+/")
    facilitator.tolerate_console = re.compile(r"status of (403|404)")  # the refusal pages
    pages = [*PAGES, escape, board, f"{board}summary/", release]

    too_wide = []
    for width, height in VIEWPORTS:
        page.set_viewport_size({"width": width, "height": height})
        for path in pages:
            page.goto(path)
            if (extra := overflow(page)) > 0:
                too_wide.append(f"{path} at {width} px: {extra} px too wide")
    anonymous = people.open("visitor", signed_in=False)
    anonymous.page.set_viewport_size({"width": 390, "height": 844})
    for path in ("/accounts/login/", "/accounts/password_reset/"):
        anonymous.page.goto(path)
        if (extra := overflow(anonymous.page)) > 0:
            too_wide.append(f"{path} at 390 px: {extra} px too wide")

    assert too_wide == []
