"""Issue 14, point 4: an escape links to tests. On the board, an engineer classifies an escape
as Flakiness / False Negative, and its card offers the tests of its stage and component that
were flaky or quarantined in the weeks before its release; they attach one, and the
facilitator's board shows it attached without a reload. The panel fits a phone's 390 px."""

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import APIResponse, Locator, Page, Route, expect

from tests.browser.board import (
    SSO,
    add_first_why,
    advance,
    assert_not_reloaded,
    card,
    classify,
    create_retro,
    mark_page,
    open_board,
    open_card,
    scroll_to,
    why_texts,
)
from tests.browser.people import People
from tests.browser.stack import TEAM, Stack

pytestmark = pytest.mark.browser

SHOTS = Path("/tmp/escape-tests-shots")
FLAKY = "tests.e2e.auth.test_sso::test_safari_keeps_the_session_after_the_redirect"
QUARANTINED = "com.acme.auth.LoginIT::rememberMeSurvivesTheIdpRoundTrip"
PANEL = "/tests/?view=board"
WHY = "The Safari run was retried until it passed"

# The E2E tests of "auth" in the weeks before the SSO escape's release: one that flipped and
# was retried, one on the team's quarantine list; and one of another component.
SEED_TESTS = f"""
import django, hashlib
django.setup()
from datetime import timedelta
from django.utils import timezone
from escapes.models import Escape
from evidence.models import DailyResult, Quarantine, ResultUpload, TrackedTest

escape = Escape.objects.select_related('release', 'team').get(team__slug={TEAM!r}, title={SSO!r})
stage = escape.team.stages.get(name='E2E')
end = escape.release.released_at
ResultUpload.objects.get_or_create(team=escape.team, identity='b' * 64, defaults=dict(
    stage=stage, commit='c0ffee', ran_at=end - timedelta(days=3), status='done'))

def tracked(classname, name, file=''):
    test, _ = TrackedTest.objects.get_or_create(
        team=escape.team, stage=stage,
        key=hashlib.sha256((classname + name).encode()).hexdigest(),
        defaults=dict(classname=classname, name=name, file=file,
                      first_run_at=end - timedelta(days=90),
                      last_run_at=end - timedelta(days=1), last_outcome='passed',
                      last_passed_at=end - timedelta(days=1)))
    return test

flaky = tracked('tests.e2e.auth.test_sso', 'test_safari_keeps_the_session_after_the_redirect',
                'tests/e2e/auth/test_sso.py')
for n in range(1, 6):
    DailyResult.objects.get_or_create(
        test=flaky, day=(end - timedelta(days=n)).date(), defaults=dict(
            team=escape.team, stage=stage, runs=6, passes=5, failures=1, retries=1, flips=1,
            commits=4))
quarantined = tracked('com.acme.auth.LoginIT', 'rememberMeSurvivesTheIdpRoundTrip')
q, _ = Quarantine.objects.get_or_create(test=quarantined, defaults=dict(
    reason='Times out against the staging IdP; ticket AUTH-190'))
Quarantine.objects.filter(pk=q.pk).update(added_at=end - timedelta(days=40))
other = tracked('tests.e2e.search.test_facets', 'test_facet_counts')
DailyResult.objects.get_or_create(test=other, day=(end - timedelta(days=2)).date(), defaults=dict(
    team=escape.team, stage=stage, runs=4, passes=3, failures=1, flips=1, commits=2))
"""


def panel_of(page: Page) -> Locator:
    return card(page, SSO).locator("section.escape-tests")


def shoot(page: Page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    width = page.viewport_size["width"] if page.viewport_size else 0
    # caret="initial": hiding the caret leaves style="" on every input, which htmx's settle
    # then copies onto the new inputs, and the CSP refuses it.
    page.screenshot(path=str(SHOTS / f"{name}-{width}.png"), full_page=False, caret="initial")


def assert_fits(page: Page) -> None:
    """Nothing of the panel reaches past the window; its buttons are thumb-sized.

    Read once the panel has settled: a card the live board is swapping in (its panel loading
    again, or htmx settling it) may show a button without a box for a moment."""
    width = page.evaluate("window.innerWidth")
    overflow = page.evaluate("document.documentElement.scrollWidth")
    assert overflow <= width, f"the page scrolls sideways: {overflow} > {width}"
    boxes: list[list[float]] = []
    for _ in range(25):
        boxes = (
            panel_of(page)
            .locator("button")
            .evaluate_all(
                "els => els.map(e => e.getBoundingClientRect())"
                ".map(r => [r.right, r.width, r.height])"
            )
        )
        if boxes and all(w > 0 for _, w, _ in boxes):
            break
        page.wait_for_timeout(200)
    assert boxes, "the panel shows no button"
    for box in boxes:
        right, w, h = box
        assert right <= width and h >= 44 and w >= 44, box


# The stack's escapes are shared by the package's tests (test_guide.py expects the SSO escape's
# seeded category): the test puts back what it changed, pass or fail.
CLASSIFICATION = f"""
import django
django.setup()
from escapes.models import Escape
escape = Escape.objects.get(team__slug={TEAM!r}, title={SSO!r})
print(escape.category, escape.stage_id or '', sep=',')
"""
RESTORE = """
import django, sys
django.setup()
from escapes.models import Escape
from evidence.models import EscapeTest
escape = Escape.objects.get(team__slug=sys.argv[1], title=sys.argv[2])
EscapeTest.objects.filter(escape=escape).delete()
category, stage = sys.argv[3].split(',')
Escape.objects.filter(pk=escape.pk).update(category=category, stage_id=stage or None)
"""


@pytest.fixture
def seeded_tests(stack: Stack) -> Iterator[None]:
    """The SSO escape's stage has tests (SEED_TESTS); its classification is put back after."""
    stack.python(SEED_TESTS)
    seeded = stack.python(CLASSIFICATION).strip()
    yield
    stack.python("import sys; sys.argv[1:] = " + repr([TEAM, SSO, seeded]) + "\n" + RESTORE)


@pytest.mark.usefixtures("seeded_tests")
def test_an_engineer_attaches_a_flaky_test_and_the_facilitator_sees_it_live(people: People):
    facilitator = people.open("facilitator")
    facilitator.page.set_viewport_size({"width": 1366, "height": 768})
    retro_id = create_retro(facilitator.page, "Escape tests retro", escapes=(SSO,))
    advance(facilitator.page, "Categorize")
    engineer = people.open("engineer")
    engineer.page.set_viewport_size({"width": 390, "height": 844})
    open_board(engineer.page, retro_id)

    # Before: Environment Mismatch. The panel shows the tests, and offers nothing to attach.
    open_card(facilitator.page, SSO)
    panel = panel_of(facilitator.page)
    scroll_to(panel)  # the panel loads once it is on screen
    expect(panel.locator(".escape-test").first).to_be_visible()
    expect(panel).to_contain_text(FLAKY)
    expect(panel).to_contain_text(QUARANTINED)
    expect(panel).to_contain_text("Times out against the staging IdP")
    expect(panel).not_to_contain_text("test_facet_counts")  # another component's
    expect(panel.get_by_role("button", name="Attach", exact=True)).to_have_count(0)
    mark_page(facilitator.page)

    # The engineer classifies it as Flakiness: the panel offers the tests to attach.
    classify(engineer.page, SSO, category="Flakiness / False Negative", stage="E2E")
    mine = panel_of(engineer.page)
    scroll_to(mine)
    attach = mine.get_by_role("button", name=f"Attach test {FLAKY}")
    expect(attach).to_be_visible()
    scroll_to(mine)
    assert_fits(engineer.page)
    shoot(engineer.page, "board-panel-offered")
    attach.click()
    expect(mine.locator(".escape-test-list.attached")).to_contain_text(FLAKY)
    expect(mine.get_by_role("button", name=f"Detach test {FLAKY}")).to_be_visible()
    scroll_to(mine.locator(".escape-test-list.attached"))
    assert_fits(engineer.page)
    shoot(engineer.page, "board-panel-attached")

    # The facilitator's board: attached, without a reload.
    attached = panel_of(facilitator.page).locator(".escape-test-list.attached")
    expect(attached).to_contain_text(FLAKY)
    assert_not_reloaded(facilitator.page)
    scroll_to(panel_of(facilitator.page))
    assert_fits(facilitator.page)
    shoot(facilitator.page, "board-panel-attached")

    # A change of the card that leaves its tests alone (the next phase, a why) does not make
    # the boards fetch the panel again: they keep the one they loaded.
    fetched: list[str] = []
    for page in (facilitator.page, engineer.page):
        page.on("request", lambda r: fetched.append(r.url) if PANEL in r.url else None)
    advance(facilitator.page, "Five Whys")
    add_first_why(engineer.page, SSO, WHY)
    expect(why_texts(facilitator.page, SSO, WHY)).to_have_count(1)
    expect(why_texts(engineer.page, SSO, WHY)).to_have_count(1)
    for page in (facilitator.page, engineer.page):
        expect(panel_of(page).locator(".escape-test-list.attached")).to_contain_text(FLAKY)
        expect(panel_of(page).get_by_role("button", name=f"Detach test {FLAKY}")).to_be_enabled()
    assert_not_reloaded(facilitator.page)
    assert fetched == [], fetched

    # The escape's page lists it too.
    escape_url = (
        card(facilitator.page, SSO).get_by_role("link", name="details").get_attribute("href")
    )
    facilitator.page.goto(str(escape_url))
    expect(
        facilitator.page.locator("section.escape-tests .escape-test-list.attached")
    ).to_contain_text(FLAKY)


@pytest.mark.usefixtures("seeded_tests")
def test_a_panel_asked_before_a_reclassification_does_not_cover_the_new_cards_panel(
    people: People,
):
    """The panel's answer, rendered while the escape was Environment Mismatch, arrives after
    the engineer's reclassification replaced the card, whose new panel offers Attach."""
    facilitator = people.open("facilitator")
    retro_id = create_retro(facilitator.page, "Late panel retro", escapes=(SSO,))
    advance(facilitator.page, "Categorize")
    engineer = people.open("engineer")
    page = engineer.page
    held: list[tuple[Route, APIResponse]] = []

    def hold_the_first(route: Route) -> None:
        if held:
            route.continue_()
        else:
            held.append((route, route.fetch()))  # rendered now, delivered later

    page.route(f"**{PANEL}*", hold_the_first)
    open_board(page, retro_id)
    scroll_to(panel_of(page))  # the panel asks for its tests: that answer is held
    for _ in range(100):
        if held:
            break
        page.wait_for_timeout(100)
    assert held, "the panel never asked for its tests"

    classify(page, SSO, category="Flakiness / False Negative", stage="E2E")
    mine = panel_of(page)
    scroll_to(mine)
    attach = mine.get_by_role("button", name=f"Attach test {FLAKY}")
    expect(attach).to_be_visible()  # the new card's panel, loaded by itself

    route, answer = held[0]
    with page.expect_event("requestfinished", lambda r: r == route.request):
        route.fulfill(response=answer)
    page.wait_for_timeout(500)  # htmx handles the answer after the request finishes
    expect(attach).to_be_visible()
    expect(mine).not_to_contain_text("Classify it as Flakiness / False Negative to attach")
