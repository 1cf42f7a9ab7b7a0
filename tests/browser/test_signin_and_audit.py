"""Issue 11, points 4 and 5, in a real browser against the real stack (uvicorn, Celery):
a locked sign-in says why and for how long; twenty parallel wrong passwords sent over HTTP get
no more tries than the limit; an admin reads the audit trail. Each at 390 and 1366 px.

uvicorn takes X-Forwarded-For from loopback, so each test speaks from an address of its own
and leaves no failure on the address the other browser tests sign in from.
"""

import re
import threading

import httpx
import pytest
from playwright.sync_api import expect

from tests.browser.people import People
from tests.browser.stack import DEMO_PASSWORD, TEAM, Stack
from tests.browser.test_page_widths import overflow

pytestmark = pytest.mark.browser

VIEWPORTS = [(390, 844), (1366, 768)]
LOCKED = "Too many failed sign-ins for this account; try again in 15 minutes."
TOKEN = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')


def test_a_locked_sign_in_says_why_and_for_how_long(people: People):
    visitor = people.open("visitor", signed_in=False)
    visitor.tolerate_console = re.compile(r"status of 429")
    page = visitor.page
    page.context.set_extra_http_headers({"X-Forwarded-For": "198.51.100.31"})
    page.goto("/accounts/login/")
    # An account nobody signs in as (it need not exist: an unknown one is locked alike), so
    # that no other browser test finds its person locked.
    for n in range(5):
        page.get_by_label("Username").fill("former-colleague")
        page.get_by_label("Password").fill(f"not-the-password-{n}")
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_load_state()
    alert = page.get_by_role("alert").filter(has_text="Too many failed")
    expect(alert).to_have_text(LOCKED)
    # Another try is refused unchecked, with the same words, next to the form.
    page.get_by_label("Password").fill(DEMO_PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert").filter(has_text="Too many failed")).to_have_text(LOCKED)
    expect(page.get_by_role("link", name="Forgot your password?")).to_be_visible()
    for width, height in VIEWPORTS:
        page.set_viewport_size({"width": width, "height": height})
        assert overflow(page) <= 0
        page.screenshot(path=f"/tmp/signin_locked_{width}.png")


def _attempt(base: str, password: str, address: str) -> int:
    with httpx.Client(base_url=base, headers={"X-Forwarded-For": address}) as client:
        form = client.get("/accounts/login/")
        token = TOKEN.search(form.text)
        assert token, form.text[:500]
        answer = client.post(
            "/accounts/login/",
            data={
                "username": "engineer-on-leave",
                "password": password,
                "csrfmiddlewaretoken": token.group(1),
            },
            headers={"Referer": f"{base}/accounts/login/"},
        )
        return answer.status_code


def test_twenty_parallel_wrong_passwords_over_http_get_five_tries(stack: Stack):
    statuses: list[int] = []
    lock = threading.Lock()
    barrier = threading.Barrier(20)

    def run(n: int) -> None:
        barrier.wait(timeout=30)
        status = _attempt(stack.url, f"guess-{n}", f"198.51.100.{100 + n}")
        with lock:
            statuses.append(status)

    threads = [threading.Thread(target=run, args=(n,)) for n in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert sorted(statuses) == [200] * 4 + [429] * 16, statuses
    # The account stays locked, from any address.
    assert _attempt(stack.url, DEMO_PASSWORD, "198.51.100.99") == 429


def test_an_admin_reads_the_audit_trail(people: People):
    admin = people.open("admin")
    page = admin.page
    # Something to audit: the admin creates and revokes an API token of their own.
    page.goto("/tokens/")
    page.get_by_label("Name").fill("Audit walk")
    page.get_by_role("button", name=re.compile("Create")).click()
    # The token is created by an htmx post: wait for its answer before leaving the page, or
    # the navigation cancels the request (seen on a loaded machine: no token, no Revoke).
    expect(page.get_by_text("Your new token “Audit walk”")).to_be_visible()
    page.goto("/tokens/")
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Revoke").first.click()
    expect(page.get_by_text("revoked", exact=False).first).to_be_visible()
    page.goto(f"/t/{TEAM}/audit/")
    entry = page.locator(".audit-entry").filter(has_text="API token “Audit walk”").first
    expect(entry).to_contain_text("API token revoked")
    expect(entry).to_contain_text("admin")
    page.get_by_label("What").select_option("retro_closed")
    expect(page.locator("#audit-results")).not_to_contain_text("Audit walk")
    page.get_by_label("What").select_option("")
    expect(page.locator("#audit-results")).to_contain_text("Audit walk")
    expect(page.get_by_role("link", name="Download CSV")).to_be_visible()
    for width, height in VIEWPORTS:
        page.set_viewport_size({"width": width, "height": height})
        assert overflow(page) <= 0
        page.screenshot(path=f"/tmp/audit_{width}.png", full_page=True)
    assert people.problems() == []
