"""Issue 14, points 2 and 5 on a phone: the flakiness page and a test's page fit 390 px, and a
member quarantines a flaky test with a reason and finds it listed as quarantined."""

import re

import pytest
from playwright.sync_api import Page, expect

from tests.browser.people import People
from tests.browser.stack import TEAM, Stack
from tests.browser.test_onboarding import WIDEST
from tests.browser.test_page_widths import VIEWPORTS, overflow

pytestmark = pytest.mark.browser

# A month of a CI's results for the demo team, written straight into the per-test rows (the
# upload processing is tested on its own): flaky, failing, skipped and green tests in each
# stage, retried to green before the demo's releases that leaked, some uploads. No release or
# escape is added: the other browser tests count the demo's.
SEED = f"""
import django; django.setup()
import hashlib
from datetime import UTC, timedelta
from django.utils import timezone
from evidence.models import DailyResult, MeasuredCatch, ResultUpload, TrackedTest
from teams.models import Team

team = Team.objects.get(slug={TEAM!r})
stages = list(team.stages.order_by("position"))
now = timezone.now()
today = now.astimezone(UTC).date()
names = [
    (
        "com.acme.checkout.PaymentGatewayIntegrationTest",
        "shouldRetryDeclinedCardWithinTimeoutWhenTheGatewayAnswersSlowly",
    ),
    ("tests.cart.test_totals", "test_rounding_of_discounts_across_currencies"),
    ("checkout/e2e/pay.spec.ts", "pays with a saved card and sees the receipt"),
    ("tests.search.test_index", "test_reindex_after_schema_change"),
    ("com.acme.orders.OrderRepositoryTest", "findsOrdersByCustomer"),
    ("tests.auth.test_sso", "test_sso_login_redirects_back"),
]
for index, (classname, name) in enumerate(names):
    stage = stages[index % len(stages)]
    flaky = index < 4
    test = TrackedTest.objects.create(
        team=team, stage=stage, classname=classname, name=name,
        key=hashlib.sha256((classname + name).encode()).hexdigest(),
        component="payments" if index % 2 else "search",
        first_run_at=now - timedelta(days=120), last_run_at=now - timedelta(hours=index + 1),
        last_outcome="failed" if index == 1 else "passed",
        last_passed_at=now - timedelta(hours=index + 2),
        runs=900 + index, failures=40 - index, skips=3, retries=12 - index, flips=14 - 2 * index,
        failing_since=now - timedelta(hours=5) if index == 1 else None,
        failing_commit="9f3c2a1b7d4e5f60718293a4b5c6d7e8f9012345" if index == 1 else "",
        skipped_since=now - timedelta(days=12) if index == 5 else None,
        skip_reason="Waiting for the identity provider sandbox (AUTH-311)" if index == 5 else "",
    )
    for days_ago in range(60):
        odd = flaky and (days_ago * (index + 3)) % 5 == 0
        DailyResult.objects.create(
            test=test, team=team, stage=stage, day=today - timedelta(days=days_ago),
            runs=6, passes=0 if index == 5 else (5 if odd else 6),
            failures=1 if odd else 0, skips=6 if index == 5 else 0,
            retries=1 if odd and days_ago % 2 else 0, flips=1 if odd else 0, commits=4,
        )
    if flaky:
        MeasuredCatch.objects.create(
            team=team, stage=stage, test=test,
            failed_at=now - timedelta(days=3, hours=2), failed_commit="c3d4e5f6a7b8c9d0e1f2",
            fixed_at=now - timedelta(days=3), fixed_commit="e5f6a7b8c9d0e1f2a3b4",
            release_version="2026.12.1",
        )
for index in range(4):
    ResultUpload.objects.create(
        team=team, stage=stages[index % len(stages)],
        commit="a1b2c3d4e5f60718293a4b5c6d7e8f90123456%02d" % index,
        branch="feature/very-long-branch-name-for-the-checkout-redesign" if index == 0 else "main",
        run_url="https://github.com/acme/shop/actions/runs/98765432%d" % index,
        identity="seed-%d" % index,
        status="failed" if index == 1 else "done",
        error=(
            "results.xml, line 41: the testcase element has no name attribute."
            if index == 1 else ""
        ),
        cases=0 if index == 1 else 1840, passed=0 if index == 1 else 1822,
        failed=0 if index == 1 else 12, skipped=0 if index == 1 else 6,
        ran_at=now - timedelta(hours=index),
    )
"""

SEEDED: list[bool] = []


def seed(stack: Stack) -> None:
    if not SEEDED:
        stack.python(SEED)
        SEEDED.append(True)


def fits(page: Page, name: str, too_wide: list[str]) -> None:
    """No sideways scrolling at a phone's and a laptop's width; a screenshot of each."""
    for width, height in VIEWPORTS:
        page.set_viewport_size({"width": width, "height": height})
        if (extra := overflow(page)) > 0:
            too_wide.append(f"{name} at {width} px: {extra} px too wide; {page.evaluate(WIDEST)}")
        page.screenshot(path=f"/tmp/flakiness_{name}_{width}.png", full_page=True)


def test_quarantine_a_flaky_test_from_a_phone(people: People):
    seed(people.stack)
    person = people.open("engineer")
    page = person.page
    too_wide: list[str] = []
    page.goto(f"/t/{TEAM}/")
    page.get_by_role("navigation", name="Team").get_by_role("link", name="Tests").click()
    page.wait_for_url(re.compile(rf"/t/{TEAM}/tests/$"))
    page.set_viewport_size({"width": 390, "height": 844})
    flakiest = page.locator("section", has=page.get_by_role("heading", name=re.compile("Flakiest")))
    expect(flakiest).to_contain_text("shouldRetryDeclinedCardWithinTimeout")
    leaked = page.locator("section", has=page.get_by_role("heading", name=re.compile("leaked")))
    expect(leaked).to_contain_text(re.compile(r"Release [\d.]+\s+released"))
    fits(page, "flakiness", too_wide)

    page.set_viewport_size({"width": 390, "height": 844})
    flakiest.get_by_role("link", name=re.compile("test_rounding_of_discounts")).click()
    expect(page.get_by_role("heading", level=1)).to_have_text(
        "test_rounding_of_discounts_across_currencies"
    )
    expect(page.locator(".day-strip li")).to_have_count(90)
    fits(page, "test", too_wide)
    page.set_viewport_size({"width": 390, "height": 844})
    button = page.get_by_role("button", name="Quarantine", exact=True)
    assert button.bounding_box()["height"] >= 44  # type: ignore[index]
    button.click()  # no reason: refused beside the field
    expect(page.get_by_text("the reason is required")).to_be_visible()
    page.get_by_label("Reason").fill("Currency rounding race, SHOP-412")
    page.get_by_role("button", name="Quarantine", exact=True).click()
    expect(page.get_by_text("is quarantined.")).to_be_visible()
    expect(page.locator("#quarantine")).to_contain_text("Currency rounding race, SHOP-412")
    fits(page, "test_quarantined", too_wide)

    page.goto(f"/t/{TEAM}/tests/")
    page.set_viewport_size({"width": 390, "height": 844})
    listed = page.locator(
        "section", has=page.get_by_role("heading", name=re.compile("Quarantined"))
    )
    expect(listed).to_contain_text("test_rounding_of_discounts_across_currencies")
    expect(listed).to_contain_text("Currency rounding race, SHOP-412")
    expect(listed).to_contain_text("Waiting for the identity provider sandbox")
    fits(page, "flakiness_quarantined", too_wide)

    for path, name in (
        (f"/t/{TEAM}/tests/uploads/", "uploads"),
        (f"/t/{TEAM}/tests/setup/", "setup"),
    ):
        page.goto(path)
        fits(page, name, too_wide)
    expect(page.locator("pre.snippet").first).to_contain_text("LEAKSEAL_TOKEN")
    assert not too_wide, "\n".join(too_wide)


def test_the_setup_page_copies_the_curl_line_with_the_teams_address(people: People):
    person = people.open("engineer")
    page = person.page
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(f"/t/{TEAM}/tests/setup/")
    copy = page.get_by_role("button", name="Copy the curl line")
    box = copy.bounding_box()
    assert box is not None and box["height"] >= 44 and box["x"] + box["width"] <= 390
    copy.click()
    expect(copy).to_have_text("Copied")
    expect(page.get_by_role("status").filter(has_text="copied")).to_have_count(1)
    copied = page.evaluate("navigator.clipboard.readText()")
    assert copied == page.locator("pre.snippet").first.inner_text().rstrip("\n")
    assert f"/api/v1/teams/{TEAM}/test-results" in copied
    assert "$LEAKSEAL_TOKEN" in copied and "lks_" not in copied
    expect(page.get_by_role("button", name="Copy the GitHub Actions snippet")).to_be_visible()
