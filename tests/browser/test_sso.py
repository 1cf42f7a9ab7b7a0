"""Issue 11, point 3, in Chromium: single sign-on configured from the environment as in
production (OIDC_* and PASSWORD_SIGNIN=false), against the loopback provider of
tests/fakes/oidc.py. A newcomer signs in with the company's provider, is created, joined to
the team by their group and lands where they were going; someone outside the allowed domains
is told why. At 390 and 1366 px.
"""

from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, expect

from tests.browser.stack import TEAM, Stack
from tests.browser.test_accessibility import axe_findings
from tests.browser.test_page_widths import overflow
from tests.fakes.oidc import OIDCProvider

pytestmark = pytest.mark.browser

CLIENT = {"client_id": "leakseal-browser", "client_secret": "browser-client-secret"}


@pytest.fixture(scope="module")
def provider() -> Iterator[OIDCProvider]:
    running = OIDCProvider().start()
    yield running
    running.stop()


@pytest.fixture(scope="module")
def sso_stack(tmp_path_factory, provider: OIDCProvider) -> Iterator[Stack]:
    """A second web server on a database of its own, with password sign-in off."""
    live = Stack.from_environment(tmp_path_factory.mktemp("leakseal-sso"), suffix="_sso")
    live.extra_env = {
        "OIDC_ISSUER": provider.url,
        "OIDC_CLIENT_ID": CLIENT["client_id"],
        "OIDC_CLIENT_SECRET": CLIENT["client_secret"],
        "OIDC_NAME": "Example Corp",
        "OIDC_ALLOWED_DOMAINS": "example.test",
        "OIDC_TEAMS": f"retro-people={TEAM}:member",
        "PASSWORD_SIGNIN": "false",
    }
    live.prepare()
    provider.control(
        reset=True,
        client={**CLIENT, "redirect_uris": [f"{live.url}/accounts/sso/callback/"]},
        users=[
            {"email": "dana@example.test", "name": "Dana Scully", "groups": ["retro-people"]},
            {"email": "eve@elsewhere.test", "name": "Eve", "groups": ["retro-people"]},
        ],
    )
    try:
        live.start_web()
        yield live
    finally:
        live.stop()
        live.drop()


@pytest.mark.parametrize("viewport", [(390, 844), (1366, 768)], ids=["390", "1366"])
def test_a_newcomer_signs_in_with_the_company_provider(browser: Browser, sso_stack, viewport):
    width, height = viewport
    context = browser.new_context(
        base_url=sso_stack.url, viewport={"width": width, "height": height}
    )
    page = context.new_page()
    try:
        page.goto(f"/t/{TEAM}/")
        expect(page).to_have_url(f"{sso_stack.url}/accounts/login/?next=/t/{TEAM}/")
        expect(page.get_by_label("Password")).to_have_count(0)  # password sign-in is off
        button = page.get_by_role("link", name="Sign in with Example Corp")
        assert button.bounding_box()["height"] >= 44  # type: ignore[index]
        assert overflow(page) == 0
        serious = axe_findings(page, f"SSO sign-in page ({width} px)")[0]
        button.click()

        expect(page.get_by_role("heading", name="Company sign-in")).to_be_visible()
        page.get_by_label("Work email").fill("dana@example.test")
        page.get_by_role("button", name="Continue").click()

        expect(page).to_have_url(f"{sso_stack.url}/t/{TEAM}/")
        expect(page.get_by_role("navigation", name="Account")).to_contain_text("dana@example.test")

        # Someone outside the allowed domains, in the same browser after signing out.
        context.clear_cookies()
        page.goto("/accounts/login/")
        page.get_by_role("link", name="Sign in with Example Corp").click()
        page.get_by_label("Work email").fill("eve@elsewhere.test")
        page.get_by_role("button", name="Continue").click()
        alert = page.get_by_role("alert").filter(has_text="may not sign in")
        expect(alert).to_contain_text("eve@elsewhere.test may not sign in to Leakseal")
        expect(alert).to_contain_text("example.test")
        assert overflow(page) == 0
        serious += axe_findings(page, f"SSO refusal ({width} px)")[0]
        assert not serious, "serious or critical accessibility violations:\n" + "\n".join(serious)
    finally:
        context.close()
