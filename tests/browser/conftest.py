"""A real Leakseal and a real headless Chromium for the live-board tests.

One server for all of tests/browser: uvicorn and a Celery worker on a database of their own
(stack.py). Package scope, so it stops before the rest of the suite runs and cannot take that
suite's Celery tasks off a shared broker. One browser, and a browser context per person, so
the facilitator and each engineer have their own cookies, event stream and screen. Every page
records console errors, uncaught exceptions and Content Security Policy violations; a test
fails if any page had one, and a test that fails shows what each live board did (board.js's
trace) and the server's last log lines.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Generator, Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, expect, sync_playwright

from tests.browser.board import WAIT_MS
from tests.browser.people import People
from tests.browser.stack import Stack
from tests.browser.wifi import Wifi

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="package")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    if not CHROMIUM.exists():
        # Not a skip: the live board's promises are only checked here (.ci/run installs it).
        pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium (apt-get install chromium)")
    live = Stack.from_environment(tmp_path_factory.mktemp("leakseal"), suffix="_browser")
    live.prepare()
    try:
        live.start()
        yield live
        # Every page is closed: a pooled connection still held now is one no request will give
        # back, and enough of them answer every later request 503 (config/threads.py).
        time.sleep(1)  # the last streams' ends
        held = live.pool_holders()
        assert not held, "connections held after the last test:\n" + "\n".join(held)
    finally:
        live.stop()
        live.drop()


@pytest.fixture(scope="package")
def browser() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium (apt-get install chromium)")
    # Every expect() waits as long as an outcome may take on a busy machine (board.WAIT).
    expect.set_options(timeout=WAIT_MS)
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def people(stack: Stack, browser: Browser, _sessions: dict[str, object]) -> Iterator[People]:
    crowd = People(stack=stack, browser=browser, _sessions=_sessions)
    yield crowd
    problems = crowd.problems()
    crowd.close()
    if any("status of 503" in problem for problem in problems):
        problems.append(stack.pool_report())  # who held the pool's connections
    assert not problems, "pages reported problems:\n" + "\n".join(problems)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """A failed test shows what each person's live board did last (board.js's trace) and the
    last lines the web server and the worker logged."""
    report: pytest.TestReport = yield
    crowd = getattr(item, "funcargs", {}).get("people")
    if report.when == "call" and report.failed and isinstance(crowd, People):
        traces = crowd.traces()
        if traces:
            report.sections.append(("what the live boards did", traces))
        report.sections.append(("the server's last lines", crowd.stack.log_tail(30)))
    return report


@pytest.fixture(scope="package")
def _sessions() -> dict[str, object]:
    return {}


@pytest.fixture
def restart_server(stack: Stack) -> Callable[[], None]:
    """Restart the web process on the same port, as a deploy does; the worker stays up."""
    return stack.restart_web


@pytest.fixture
def wifi(stack: Stack) -> Iterator[Wifi]:
    """A network link to the server that the test can cut, for one laptop's browser context."""
    link = Wifi(stack.port)
    yield link
    link.close()
