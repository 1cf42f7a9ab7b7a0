"""The people at the retro: a browser context each, watched for console errors and CSP."""

from __future__ import annotations

import contextlib
import re
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime

from playwright.sync_api import Browser, BrowserContext, ConsoleMessage, Page

from tests.browser.board import WAIT_MS
from tests.browser.stack import DEMO_PASSWORD, EXTRA_PASSWORD, Stack

PASSWORDS = {"engineer2": EXTRA_PASSWORD}

# A page that loses its network (offline, a server restart) logs the requests that failed;
# that is the situation under test there, not a fault of the page.
NETWORK_FAILURE = re.compile(r"net::ERR_")
BOARD_TRACE = "[live board] "  # board.js's console.debug lines: what the live board did
TRACE_KEPT = 80


@dataclass
class Person:
    """Someone at their own laptop: a browser context with one page."""

    username: str
    context: BrowserContext
    page: Page
    problems: list[str] = field(default_factory=list)
    tolerate_network_failures: bool = False
    # A refusal the test provokes on purpose: the browser and htmx log its status as an error.
    tolerate_console: re.Pattern[str] | None = None
    # The live board's last steps, with the time they were logged: printed if a test fails.
    trace: deque[str] = field(default_factory=lambda: deque(maxlen=TRACE_KEPT))

    def watch(self, page: Page) -> None:
        page.on("console", self._console)
        page.on("pageerror", lambda exc: self.problems.append(f"uncaught: {exc}"))

    def _console(self, message: ConsoleMessage) -> None:
        text = message.text
        if message.type == "debug" and text.startswith(BOARD_TRACE):
            self.trace.append(f"{datetime.now(UTC):%H:%M:%S.%f}"[:-3] + " " + text)
            return
        csp = "Content Security Policy" in text or "Refused to" in text
        if csp:
            self.problems.append(f"CSP violation: {text} at {message.location}")
        elif message.type == "error":
            if self.tolerate_network_failures and NETWORK_FAILURE.search(text):
                return
            if self.tolerate_console and self.tolerate_console.search(text):
                return
            self.problems.append(f"console error: {text} (on {message.page and message.page.url})")

    def leave(self) -> None:
        """Close the laptop: the context and every page and stream in it go away."""
        self.context.close()


@dataclass
class People:
    stack: Stack
    browser: Browser
    everyone: list[Person] = field(default_factory=list)
    _sessions: dict[str, object] = field(default_factory=dict)

    def open(self, username: str, *, signed_in: bool = True, base_url: str = "") -> Person:
        """A new browser context for `username`, signed in unless told otherwise.

        The first sign-in of a user goes through the sign-in form; later contexts of the same
        user start from that session's cookies (PBKDF2 makes every sign-in cost ~0.5 s).
        `base_url` lets the context reach the server another way (a Wifi relay).
        """
        state = self._sessions.get(username) if signed_in else None
        context = self.browser.new_context(
            base_url=base_url or self.stack.url,
            storage_state=state,  # type: ignore[arg-type]
            viewport={"width": 1280, "height": 900},
        )
        context.set_default_timeout(WAIT_MS)
        page = context.new_page()
        person = Person(username=username, context=context, page=page)
        person.watch(page)
        self.everyone.append(person)
        if signed_in and state is None:
            page.goto("/accounts/login/")
            sign_in(page, username)
            page.wait_for_url(re.compile(r"^(?!.*/accounts/login/)"))
            self._sessions[username] = context.storage_state()
        return person

    def traces(self) -> str:
        """What each person's live board did last (board.js), for a test that failed."""
        return "\n".join(
            f"--- {person.username}\n" + "\n".join(person.trace)
            for person in self.everyone
            if person.trace
        )

    def problems(self) -> list[str]:
        return [f"{p.username}: {problem}" for p in self.everyone for problem in p.problems]

    def close(self) -> None:
        for person in self.everyone:
            # A person who left() has closed theirs already; closing twice is harmless.
            with contextlib.suppress(Exception):
                person.context.close()


def password_of(username: str) -> str:
    return PASSWORDS.get(username, DEMO_PASSWORD)


def sign_in(page: Page, username: str) -> None:
    """Fill in and submit the sign-in form the page is on."""
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password_of(username))
    page.get_by_role("button", name="Sign in").click()
