"""Issue 10: axe-core finds no serious or critical violation on the board, the register, the
dashboards and the forms; every error sits next to its control and is announced.

axe-core is the npm package pinned in package-lock.json (`make node` runs `npm ci`; `make test`
does it before pytest). Each page is checked as it stands after the person's actions, at a
phone's 390 × 844 and a laptop's 1366 × 768, against the WCAG 2.0/2.1/2.2 A and AA rules and
axe's best practices. A failure lists every serious or critical finding: the page, the rule,
its impact, the elements (CSS selectors) and the rule's help page.

The site's Content-Security-Policy allows only its own scripts and nonce'd ones, so a
<script> element added to the page (Playwright's add_script_tag) would be refused. axe's source
is instead evaluated through the DevTools protocol (page.evaluate), which a page's CSP does not
govern: the pages keep their real CSP during the check, and any violation of it still fails
the test (tests/browser/people.py).

Issue 11's pages are checked too: a new team, the members page, an invitation in each of its
modes and refusals, a retro's join link, the audit trail and the password reset pages (the
sign-in page itself above; its lockout in test_signin_and_audit.py).

What axe cannot judge is checked here by hand: an error is announced (role=alert, or a field
with aria-invalid and aria-describedby pointing at the message) and sits beside its control.
"""

from __future__ import annotations

import re
from functools import cache

import pytest
from playwright.sync_api import FilePayload, Locator, Page, expect

from tests.browser.board import (
    COUPON,
    SSO,
    add_action,
    add_first_why,
    advance,
    card,
    create_retro,
    facilitate,
    facilitator_tools,
    mark_root_cause,
    open_board,
    open_card,
    team_path,
    why_texts,
)
from tests.browser.people import People, Person
from tests.browser.stack import DEMO_PASSWORD, ROOT, TEAM, Stack
from tests.browser.test_flakiness import seed as seed_test_results

pytestmark = pytest.mark.browser

AXE = ROOT / "node_modules" / "axe-core" / "axe.min.js"
TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22a", "wcag22aa", "best-practice"]
BLOCKING = ("serious", "critical")
VIEWPORTS = [(390, 844), (1366, 768)]
REFUSED = re.compile(r"status of (400|403|404)")

RUN_AXE = """async (tags) => {
  // Two frames: the page's resize and htmx handlers have run (static/js/scroll-regions.js).
  await new Promise((done) => requestAnimationFrame(() => requestAnimationFrame(done)));
  // The page at rest: no htmx request in flight (htmx dims what is being sent).
  for (let i = 0; i < 100 && document.querySelector(".htmx-request"); i++) {
    await new Promise((done) => setTimeout(done, 50));
  }
  const result = await axe.run(document, {
    runOnly: {type: "tag", values: tags},
    resultTypes: ["violations"],
  });
  return result.violations.map((v) => ({
    id: v.id,
    help: v.help,
    helpUrl: v.helpUrl,
    nodes: v.nodes.map((n) => ({impact: n.impact, target: n.target.join(" ")})),
  }));
}"""


# axe accepts an aria-describedby with one good id among several; a screen reader then reads
# less than the page meant (Django points a field at "<id>_helptext" whether or not the
# template shows the help text with that id).
BROKEN_REFERENCES = """() => {
  const broken = [];
  for (const attr of ["aria-describedby", "aria-labelledby", "aria-controls", "for"]) {
    for (const el of document.querySelectorAll(`[${attr}]`)) {
      for (const id of el.getAttribute(attr).split(/\\s+/).filter(Boolean)) {
        const name = `${el.tagName.toLowerCase()}[${attr}]`;
        if (!document.getElementById(id)) broken.push(`${name} -> #${id}`);
      }
    }
  }
  return broken;
}"""


@cache
def axe_source() -> str:
    if not AXE.exists():
        # Not a skip: this is where the accessibility promise is checked.
        pytest.fail(f"{AXE} is missing: run `make node` (npm ci, from package-lock.json)")
    return AXE.read_text()


def axe_findings(page: Page, where: str) -> tuple[list[str], list[str]]:
    """axe's violations on the page as it is now: (serious or critical, minor or moderate)."""
    if not page.evaluate("typeof window.axe === 'object'"):
        page.evaluate(axe_source())
    blocking: list[str] = []
    lesser: list[str] = []
    for rule in page.evaluate(RUN_AXE, TAGS):
        for impact in ("critical", "serious", "moderate", "minor"):
            targets = [n["target"] for n in rule["nodes"] if n["impact"] == impact]
            if not targets:
                continue
            line = (
                f"{where}: {rule['id']} ({impact}) {rule['help']} -> {', '.join(targets)}"
                f"  [{rule['helpUrl']}]"
            )
            (blocking if impact in BLOCKING else lesser).append(line)
    for reference in page.evaluate(BROKEN_REFERENCES):
        blocking.append(f"{where}: a reference to no element (own check): {reference}")
    return blocking, lesser


class Audit:
    """Every finding of a test, so that one run lists them all."""

    def __init__(self) -> None:
        self.blocking: list[str] = []
        self.lesser: list[str] = []

    def check(
        self, person: Person, label: str, *, viewports: list[tuple[int, int]] = VIEWPORTS
    ) -> None:
        page = person.page
        for width, height in viewports:
            page.set_viewport_size({"width": width, "height": height})
            blocking, lesser = axe_findings(page, f"{label} ({person.username}, {width} px)")
            self.blocking += blocking
            self.lesser += lesser

    def assert_clean(self) -> None:
        for line in self.lesser:  # shown with -s or -rA; not a failure
            print("minor/moderate:", line)
        assert not self.blocking, "serious or critical accessibility violations:\n" + "\n".join(
            self.blocking
        )


def first_link(page: Page, pattern: str) -> str:
    for href in page.locator("main a[href]").evaluate_all("links => links.map(a => a.pathname)"):
        if re.fullmatch(pattern, href):
            return href
    raise AssertionError(f"no link matching {pattern} on {page.url}")


def test_the_board_in_every_phase_for_the_facilitator_and_an_engineer(people: People):
    audit = Audit()
    facilitator = people.open("facilitator")
    retro_id = create_retro(facilitator.page, "Accessible retro", escapes=(SSO, COUPON))
    engineer = people.open("engineer")
    open_board(engineer.page, retro_id)
    crowd = (facilitator, engineer)

    def everyone(label: str) -> None:
        for person in crowd:
            audit.check(person, label)

    everyone("Gather")
    facilitator_tools(facilitator.page)
    audit.check(facilitator, "Gather, Facilitate panel open")

    advance(facilitator.page, "Categorize")
    for person in crowd:
        expect(person.page.locator("#phase-bar")).to_contain_text("Categorize")
    everyone("Categorize")

    advance(facilitator.page, "Five Whys")
    add_first_why(engineer.page, SSO, "The Safari cookie policy was not in the test matrix")
    for person in crowd:
        added = why_texts(person.page, SSO, "The Safari cookie policy was not in the test matrix")
        expect(added).to_have_count(1)
        open_card(person.page, SSO).get_by_text("Add a preventative action").click()
    everyone("Five Whys, a why and the action form open")

    facilitate(facilitator.page, "Open dot voting")
    for person in crowd:
        expect(person.page.locator("#facilitation-bar")).to_contain_text("Dot voting is open")
    everyone("Five Whys, voting open")
    facilitate(facilitator.page, "Close voting")
    expect(facilitator.page.locator("#facilitation-bar")).to_contain_text("Voting has closed")

    advance(facilitator.page, "Actions")
    everyone("Actions")

    # Closing takes a root cause and an action on every escape (the demo team's rule).
    for title, why in ((SSO, "The Safari cookie policy was not in the test matrix"),
                       (COUPON, "The refresh resubmits the coupon form")):  # fmt: skip
        if title == COUPON:
            add_first_why(facilitator.page, COUPON, why)
            expect(why_texts(facilitator.page, COUPON, why)).to_have_count(1)
        mark_root_cause(facilitator.page, title, why, "Process failure")
        expect(card(facilitator.page, title).locator(".root-cause").first).to_be_visible()
        add_action(
            facilitator.page, title, action=f"Test for: {why}", owner="engineer", kind="Flake fix"
        )
        expect(card(facilitator.page, title).locator(".action strong")).to_have_count(1)
    facilitator.page.get_by_role("button", name="Close retrospective").click()
    for person in crowd:
        expect(person.page.locator("#phase-bar")).to_contain_text("Closed")
    everyone("Closed")

    facilitator.page.goto(team_path(f"retros/{retro_id}/summary/"))
    audit.check(facilitator, "the retro summary")
    audit.assert_clean()


def test_the_register_dashboards_forms_and_settings(people: People):
    audit = Audit()
    admin = people.open("admin")
    page = admin.page
    page.goto(team_path("escapes/"))
    escape = first_link(page, rf"/t/{TEAM}/escapes/\d+/")
    page.goto(team_path("releases/"))
    release = first_link(page, rf"/t/{TEAM}/releases/\d+/")
    page.goto(team_path("retros/"))
    # The seed's retro (demo/seed.py), half-way through its whys, whatever other tests made.
    page.get_by_role("link", name=re.compile(r"^Release [\d.]+ retro$")).first.click()
    page.wait_for_url(re.compile(rf"/t/{TEAM}/retros/\d+/$"))
    retro = page.evaluate("location.pathname")
    page.goto(team_path("retros/"))
    # The seed's closed retro: its actions offer Mark done, one shows as done (issue 12).
    page.get_by_role("link", name="October leaks follow-up").click()
    page.wait_for_url(re.compile(rf"/t/{TEAM}/retros/\d+/$"))
    earlier = page.evaluate("location.pathname")
    seed_test_results(people.stack)
    page.goto(team_path("tests/"))
    tested = first_link(page, rf"/t/{TEAM}/tests/\d+/")
    pages = {
        "the home page": "/",
        "the team page": team_path(),
        "the escape register": team_path("escapes/"),
        "an escape": escape,
        "an escape's edit form": f"{escape}edit/",
        "an escape's tests (evidence/views_escape.py)": f"{escape}tests/",
        "the new-escape form": team_path("escapes/new/"),
        "the import form": team_path("escapes/import/"),
        "the releases": team_path("releases/"),
        "a release": release,
        "the new-retro form": team_path("retros/new/"),
        "the retros": team_path("retros/"),
        "the demo retro's board (Five Whys, seeded whys and actions)": retro,
        "the demo retro's summary": f"{retro}summary/",
        "a closed retro's board (Mark done, a done action)": earlier,
        "a closed retro's summary (Mark done, a done action)": f"{earlier}summary/",
        "the team dashboard": team_path("dashboard/"),
        "the all-teams dashboard": "/dashboard/",
        "every team's escapes": "/escapes/",
        "the pipeline stages and retro rules": team_path("stages/"),
        "the guiding questions (each category's form)": team_path("retros/guide/"),
        "the tracker connection": team_path("integrations/connection/"),
        "the chat channels": team_path("chat/"),
        "the delivery log": team_path("notices/"),
        "the test flakiness page": team_path("tests/"),
        "a test's history": tested,
        "the test result uploads": team_path("tests/uploads/"),
        "sending test results from CI": team_path("tests/setup/"),
        "the Confluence connection": team_path("integrations/confluence/"),
        "the API tokens": "/tokens/",
        "your notification settings": "/settings/notifications/",
        "the 404 page": team_path("retros/999999/"),
    }
    admin.tolerate_console = REFUSED
    for label, path in pages.items():
        page.goto(path)
        audit.check(admin, label)

    manager = people.open("manager")
    manager.tolerate_console = REFUSED
    manager.page.goto(f"{escape}edit/")
    expect(manager.page.get_by_role("heading", name="Not open to your role")).to_be_visible()
    audit.check(manager, "the 403 page")

    visitor = people.open("visitor", signed_in=False)
    visitor.page.goto("/accounts/login/")
    audit.check(visitor, "the sign-in page")
    audit.assert_clean()


# --- Errors: beside their control, and announced.


def described_by(field: Locator) -> str:
    """The text of what the field's aria-describedby points at."""
    return field.evaluate(
        "(el) => (el.getAttribute('aria-describedby') || '').split(/\\s+/).filter(Boolean)"
        ".map((id) => document.getElementById(id)?.textContent.trim() || '').join(' ')"
    )


def assert_field_error(field: Locator, message: str | re.Pattern[str]) -> None:
    """The field says it is invalid, its description carries the message, and the message
    sits in the same .field (or label) block as the field."""
    expect(field).to_have_attribute("aria-invalid", "true")
    description = described_by(field)
    if isinstance(message, str):
        assert message in description, description
    else:
        assert message.search(description), description
    # Beside it: the message is in the element that holds the field (its .field, <p>, <label>).
    beside = field.evaluate(
        "(el) => (el.getAttribute('aria-describedby') || '').split(/\\s+/)"
        ".map((id) => document.getElementById(id))"
        ".some((error) => error && error.id.endsWith('_error') && el.parentElement.contains(error))"
    )
    assert beside, "the error is not beside its field"


def test_form_errors_are_beside_their_field_and_announced(people: People):
    audit = Audit()
    facilitator = people.open("facilitator")
    page = facilitator.page
    facilitator.tolerate_console = REFUSED

    page.goto(team_path("escapes/new/"))
    page.get_by_role("button", name="Record escape").click()
    assert_field_error(page.get_by_label("Title"), "This field is required.")
    audit.check(facilitator, "the new-escape form with errors", viewports=VIEWPORTS[:1])

    page.goto(team_path("retros/new/"))
    page.get_by_role("button", name="Create retrospective").click()
    assert_field_error(page.get_by_label("Title"), "This field is required.")
    audit.check(facilitator, "the new-retro form with errors", viewports=VIEWPORTS[:1])

    # The guiding questions: one form per category, answered in place by htmx.
    page.goto(team_path("retros/guide/"))
    questions = page.locator("textarea[name=text]").first
    questions.fill("\n".join(f"Question {n} that is there?" for n in range(40)))
    questions.locator("xpath=ancestor::form").get_by_role("button", name="Save questions").click()
    questions = page.locator("textarea[name=text]").first
    expect(questions).to_have_attribute("aria-invalid", "true")
    assert "question" in described_by(questions).lower(), described_by(questions)
    expect(questions.locator("xpath=..").get_by_role("alert")).to_be_visible()
    audit.check(facilitator, "the guiding questions with an error", viewports=VIEWPORTS[:1])
    audit.assert_clean()


def test_board_errors_are_announced_beside_the_control(people: People):
    facilitator = people.open("facilitator")
    facilitator.tolerate_console = REFUSED
    page = facilitator.page
    create_retro(page, "Refusals are announced", escapes=(SSO,))
    advance(page, "Categorize")
    advance(page, "Five Whys")
    # An empty why is refused beside the field, as an alert.
    the_card = open_card(page, SSO)
    form = the_card.locator("form:has(input[id^=why-new-])")
    form.locator("input[name=text]").fill("   ")
    form.get_by_role("button", name="Add why").click()
    # In its form: one locator, found again as a whole if a refresh replaces the card meanwhile
    # (board.js carries the refusal into the new card; an element handle would be the old one's).
    expect(form.get_by_role("alert")).to_be_visible()
    # Closing too early names what is missing, announced.
    advance(page, "Actions")
    page.get_by_role("button", name="Close retrospective").click()
    expect(page.locator("#close-region").get_by_role("alert")).to_contain_text(SSO)
    audit = Audit()
    audit.check(facilitator, "the board with refusals shown")
    audit.assert_clean()


# --- Issue 11: teams onboard themselves. Not the sign-in page (tested above) nor its lockout.

# A team of its own, so that nothing here changes what the other browser tests see of the demo
# team: its admin, a retro whose join link lets newcomers sign up, and an invitation in each
# state a link can be in. The raw tokens exist only here (the emails carry them too).
ONBOARDING_SETUP = """
import json
from datetime import timedelta
import django; django.setup()
from django.contrib.auth.models import User
from django.utils import timezone
from escapes.services import escape_create
from retros.services import retro_create
from retros.views_join import retro_join_url
from teams.invitations import invitation_accept, invitation_create, invitation_revoke
from teams.models import Invitation
from teams.services import account_create, team_create, team_join_link_sign_up_set

password = {password!r}
def account(username, name):
    return account_create(
        username=username, name=name, email=f"{{username}}@example.com", password=password
    )

admin = account("a11y-admin", "Ally Admin")
invitee = account("a11y-invitee", "Ines Invitee")
account("a11y-reset", "Rita Reset")
team = team_create(name="Accessible Team", slug="a11y", admin=admin)
team_join_link_sign_up_set(team=team, allowed=True, by=admin)
escape = escape_create(
    team=team, data={{"title": "Checkout times out", "severity": "high",
                      "detected_at": timezone.now()}}, announce=False
)
retro = retro_create(team=team, facilitator=admin, title="Accessible retro", escapes=[escape])
links = {{"join": retro_join_url(retro)}}
def invite(email, role="member"):
    invitation, raw = invitation_create(team=team, email=email, role=role, by=admin)
    links[email] = f"/invitations/{{raw}}/"
    return invitation
invite("newcomer@example.com")
invite(invitee.email, role="facilitator")
expired = invite("late@example.com")
Invitation.objects.filter(pk=expired.pk).update(expires_at=timezone.now() - timedelta(days=1))
invitation_revoke(invitation=invite("revoked@example.com"), by=admin)
invite("a11y-used@example.com")
used_key = links["a11y-used@example.com"].split("/")[2]
invitation_accept(raw=used_key, user=account("a11y-used", "Uma Used"))
print(json.dumps(links))
"""


def test_the_onboarding_pages_for_an_admin_an_invited_person_and_a_newcomer(
    people: People, stack: Stack
):
    import json

    links = json.loads(stack.python(ONBOARDING_SETUP.format(password=DEMO_PASSWORD)))
    audit = Audit()

    admin = people.open("a11y-admin")
    page = admin.page
    admin.tolerate_console = REFUSED
    page.goto("/teams/new/")
    audit.check(admin, "the new-team form")
    page.get_by_label("Slug").fill("a11y")
    page.get_by_role("button", name="Create team").click()
    assert_field_error(page.get_by_label("Name"), "This field is required.")
    assert_field_error(page.get_by_label("Slug"), "is taken")
    audit.check(admin, "the new-team form with errors")

    page.goto("/t/a11y/members/")
    expect(page.locator("#invitations")).to_contain_text("newcomer@example.com")
    audit.check(admin, "the members page with pending invitations")
    page.get_by_label("Email address").fill("newcomer@example.com")
    page.get_by_role("button", name="Send invitation").click()
    assert_field_error(page.get_by_label("Email address"), "pending invitation already")
    audit.check(admin, "the members page with a refused invitation", viewports=VIEWPORTS[:1])

    page.goto("/t/a11y/audit/")
    expect(page.locator(".audit-entry").first).to_be_visible()
    audit.check(admin, "the audit trail")
    page.goto("/t/a11y/audit/?action=nonsense")
    assert_field_error(page.get_by_label("What"), "Select a valid choice")
    audit.check(admin, "the audit trail with a refused filter", viewports=VIEWPORTS[:1])

    # Someone new opens their invitation: the sign-up form, then its refusals.
    newcomer = people.open("newcomer", signed_in=False)
    newcomer.tolerate_console = re.compile(r"status of 410")
    visitor = newcomer.page
    visitor.goto(links["newcomer@example.com"])
    expect(visitor.get_by_role("heading", name="Join Accessible Team")).to_be_visible()
    audit.check(newcomer, "the invitation: sign-up form")
    visitor.get_by_label("Password", exact=True).fill("short")
    visitor.get_by_role("button", name="Create account and join").click()
    assert_field_error(visitor.get_by_label("Username"), "This field is required.")
    audit.check(newcomer, "the invitation: sign-up form with errors", viewports=VIEWPORTS[:1])
    refusals = {
        "late@example.com": "This invitation link has expired",
        "revoked@example.com": "This invitation was revoked",
        "a11y-used@example.com": "This invitation link has been used",
    }
    for address, heading in refusals.items():
        visitor.goto(links[address])
        expect(visitor.get_by_role("heading", name=heading)).to_be_visible()
        audit.check(newcomer, f"the invitation refused: {heading}")

    # The invitation of an address that has an account: sign in, then accept.
    visitor.goto(links["a11y-invitee@example.com"])
    expect(visitor.get_by_role("link", name="Sign in to accept")).to_be_visible()
    audit.check(newcomer, "the invitation: sign in to accept")
    invitee = people.open("a11y-invitee")
    invitee.page.goto(links["a11y-invitee@example.com"])
    expect(invitee.page.get_by_role("button", name=re.compile("^Accept"))).to_be_visible()
    audit.check(invitee, "the invitation: accept")
    # Signed in as someone else: refused, with a way to sign out; a retro's join link offers
    # to join as a member.
    engineer = people.open("engineer")
    engineer.tolerate_console = REFUSED
    engineer.page.goto(links["newcomer@example.com"])
    expect(
        engineer.page.get_by_role("heading", name="This invitation is for someone else")
    ).to_be_visible()
    audit.check(engineer, "the invitation refused: someone else's")
    engineer.page.goto(links["join"])
    expect(
        engineer.page.get_by_role("button", name="Join Accessible Team as a member")
    ).to_be_visible()
    audit.check(engineer, "the retro join link: join as a member")

    # A retro's join link, signed out: the sign-up form.
    visitor.goto(links["join"])
    expect(visitor.get_by_role("heading", name=re.compile("Join the retro"))).to_be_visible()
    audit.check(newcomer, "the retro join link: sign-up form")

    # Password reset: ask, the email's link, a new password, done; a used link.
    visitor.goto("/accounts/password_reset/")
    audit.check(newcomer, "the password reset form")
    visitor.get_by_label("Email", exact=True).fill("a11y-reset@example.com")
    visitor.get_by_role("button", name="Send the link").click()
    expect(visitor.get_by_role("heading", name="Check your email")).to_be_visible()
    audit.check(newcomer, "the password reset: email sent")
    link = _reset_link(stack, "a11y-reset@example.com")
    visitor.goto(link)
    expect(visitor.get_by_role("heading", name="Choose a new password")).to_be_visible()
    audit.check(newcomer, "the password reset: new password form")
    visitor.get_by_label("New password", exact=True).fill("short")
    visitor.get_by_label("New password confirmation").fill("other")
    visitor.get_by_role("button", name="Set the password").click()
    expect(visitor.get_by_label("New password confirmation")).to_have_attribute(
        "aria-invalid", "true"
    )
    audit.check(newcomer, "the password reset: new password with errors", viewports=VIEWPORTS[:1])
    visitor.get_by_label("New password", exact=True).fill(DEMO_PASSWORD)
    visitor.get_by_label("New password confirmation").fill(DEMO_PASSWORD)
    visitor.get_by_role("button", name="Set the password").click()
    expect(visitor.get_by_role("heading", name="Password changed")).to_be_visible()
    audit.check(newcomer, "the password reset: done")
    visitor.goto(link)
    expect(visitor.get_by_role("heading", name="This link no longer works")).to_be_visible()
    audit.check(newcomer, "the password reset: a used link")
    audit.assert_clean()


def _reset_link(stack: Stack, address: str) -> str:
    body = stack.latest_email_to(address)
    match = re.search(r"https?://[^/\s]+(/accounts/reset/\S+/)", body)
    assert match, body
    return match.group(1)


def test_the_import_preview_asking_about_local_times(people: People):
    """Issue 13, point 8: a time that happens twice is asked about in the preview, a time the
    clocks skip is a row error; the questions are labelled radios a thumb can hit."""
    audit = Audit()
    admin = people.open("admin")
    page = admin.page

    def preview(content: bytes) -> None:
        page.goto(team_path("escapes/import/"))
        upload: FilePayload = {"name": "local-times.csv", "mimeType": "text/csv", "buffer": content}
        page.locator("input[type=file]").set_input_files(files=[upload])
        page.get_by_role("button", name="Preview").click()

    header = "title,detected_at,merged_at\n"
    preview(f"{header}Skipped,2025-03-30T05:00,2025-03-30T02:30\n".encode())
    expect(page.get_by_text("does not exist in Europe/Berlin").first).to_be_visible()
    audit.check(admin, "the import preview refusing a time the clocks skip")
    # Errors come first: the question about a time that happens twice is asked once the file
    # has none.
    preview(f"{header}Twice,2025-10-26T04:00,2025-10-26T02:30\n".encode())
    expect(page.get_by_text("happens twice in Europe/Berlin").first).to_be_visible()
    first = page.get_by_label(re.compile(r"the first, UTC\+02:00"))
    expect(first).to_have_count(1)
    audit.check(admin, "the import preview asking about local times")
    page.set_viewport_size({"width": 390, "height": 844})
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    box = page.locator("label.check", has=first).bounding_box()
    assert box is not None and box["height"] >= 44
    audit.assert_clean()
