"""Point 3: the facilitator alone moves the phases, runs the timer and sets the focus; every
board follows, and participants get only the controls their phase allows."""

import re
import time

import pytest
from playwright.sync_api import Page, expect

from tests.browser.board import (
    COUPON,
    OLD_RELEASE,
    REFUND,
    SSO,
    advance,
    card,
    card_order,
    create_retro,
    current_phase,
    facilitate,
    facilitator_tools,
    first_why_field,
    ms_left,
    open_board,
    open_card,
    overview_row,
    timer_display,
    timer_seconds,
    timer_seconds_below,
)
from tests.browser.people import People, Person
from tests.browser.stack import Stack

pytestmark = pytest.mark.browser


def _facilitator_and_engineers(people: People, title: str, **retro) -> tuple[Person, list[Person]]:
    facilitator = people.open("facilitator")
    retro_id = create_retro(facilitator.page, title, **retro)
    engineers = [people.open("engineer"), people.open("engineer2")]
    for engineer in engineers:
        open_board(engineer.page, retro_id)
    return facilitator, engineers


def _phase_controls(page: Page):
    return page.locator("#phase-bar .phase-controls")


def _facilitation_controls_absent(page: Page) -> None:
    expect(_phase_controls(page)).to_have_count(0)
    expect(page.locator("#facilitation-bar .timer-controls")).to_have_count(0)
    for button in ("Focus", "Open dot voting", "Start timer", "Add escape", "Remove from retro"):
        # Hidden ones too: the cards behind the overview must not carry them either.
        expect(
            page.get_by_role("button", name=button, exact=True, include_hidden=True)
        ).to_have_count(0)


def test_only_the_facilitator_moves_phases_and_every_board_follows(people: People):
    facilitator, engineers = _facilitator_and_engineers(
        people, "Phases retro", escapes=(SSO, COUPON)
    )
    expect(_phase_controls(facilitator.page)).to_be_visible()
    # The facilitator's controls wait in the "Facilitate" panel of the sticky bar.
    expect(facilitator.page.locator("#facilitation-bar .facilitator-tools summary")).to_be_visible()
    expect(
        facilitator.page.get_by_role("button", name="Start timer", include_hidden=True)
    ).to_have_count(1)
    for engineer in engineers:
        _facilitation_controls_absent(engineer.page)
        # Gather: the facilitator lines up the escapes; nobody classifies or asks why yet.
        expect(
            engineer.page.get_by_role("button", name="Save classification", include_hidden=True)
        ).to_have_count(0)
        expect(engineer.page.locator("input[id^=why-new-]")).to_have_count(0)

    # An escape added by the facilitator appears on every board.
    picker = facilitator.page.get_by_label("Escape from the register", exact=True)
    picker.select_option(value=picker.locator("option", has_text=REFUND).get_attribute("value"))
    start = time.monotonic()
    facilitator.page.get_by_role("button", name="Add escape").click()
    for engineer in engineers:
        expect(overview_row(engineer.page, REFUND)).to_be_visible(timeout=ms_left(start))
        expect(card(engineer.page, REFUND)).to_have_count(1)

    start = time.monotonic()
    advance(facilitator.page, "Categorize")
    for engineer in engineers:
        expect(current_phase(engineer.page)).to_have_text("Categorize", timeout=ms_left(start))
        expect(
            engineer.page.get_by_role("button", name="Save classification", include_hidden=True)
        ).to_have_count(3)
        expect(engineer.page.locator("input[id^=why-new-]")).to_have_count(0)

    start = time.monotonic()
    advance(facilitator.page, "Five Whys")
    for engineer in engineers:
        expect(current_phase(engineer.page)).to_have_text("Five Whys", timeout=ms_left(start))
        expect(first_why_field(engineer.page, SSO)).to_be_visible()
        _facilitation_controls_absent(engineer.page)

    # Reopening a phase is the facilitator's too, and takes the why fields away again.
    start = time.monotonic()
    facilitator.page.get_by_role("button", name="← Back to Categorize").click()
    for engineer in engineers:
        expect(current_phase(engineer.page)).to_have_text("Categorize", timeout=ms_left(start))
        expect(engineer.page.locator("input[id^=why-new-]")).to_have_count(0)
    expect(current_phase(facilitator.page)).to_have_text("Categorize")


def test_the_facilitators_timer_counts_down_on_every_screen(people: People):
    facilitator, engineers = _facilitator_and_engineers(people, "Timer retro", escapes=(SSO,))
    for engineer in engineers:
        expect(timer_display(engineer.page)).to_have_text("–")

    facilitator_tools(facilitator.page).get_by_label("Minutes", exact=True).fill("2")
    start = time.monotonic()
    facilitate(facilitator.page, "Start timer")
    mm_ss = re.compile(r"^0[12]:\d\d$")
    for engineer in engineers:
        expect(timer_display(engineer.page)).to_have_text(mm_ss, timeout=ms_left(start))
        # Two minutes less what has passed since the click (a busy machine takes its time).
        assert 118 - (time.monotonic() - start) <= timer_seconds(engineer.page) <= 120
        _facilitation_controls_absent(engineer.page)

    # It counts down by itself, on each screen, at the pace of the clock.
    before = [(timer_seconds(e.page), time.monotonic()) for e in engineers]
    engineers[0].page.wait_for_timeout(1300)
    for engineer, (was, at) in zip(engineers, before, strict=True):
        now = timer_seconds_below(engineer.page, was)
        took = time.monotonic() - at
        assert 1 <= was - now <= took + 2, f"the timer went from {was} to {now} s in {took:.1f} s"

    start = time.monotonic()
    facilitate(facilitator.page, "Pause")
    for engineer in engineers:
        expect(engineer.page.locator("#facilitation-bar .timer")).to_contain_text(
            "paused", timeout=ms_left(start)
        )
    paused = timer_seconds(engineers[0].page)
    engineers[0].page.wait_for_timeout(1300)
    for engineer in engineers:
        assert timer_seconds(engineer.page) == paused

    start = time.monotonic()
    facilitate(facilitator.page, "+1 min")
    extended = f"{(paused + 60) // 60:02d}:{(paused + 60) % 60:02d}"
    for engineer in engineers:
        expect(timer_display(engineer.page)).to_have_text(extended, timeout=ms_left(start))

    facilitate(facilitator.page, "Resume")
    for engineer in engineers:
        expect(engineer.page.locator("#facilitation-bar .timer")).not_to_contain_text("paused")
    resumed = [timer_seconds(e.page) for e in engineers]
    engineers[1].page.wait_for_timeout(1300)
    for engineer, was in zip(engineers, resumed, strict=True):
        now = timer_seconds_below(engineer.page, was)
        assert now < was, "the timer runs again after Resume"


def test_every_board_follows_the_escape_in_focus(people: People):
    facilitator, engineers = _facilitator_and_engineers(people, "Focus retro", release=OLD_RELEASE)
    last = card_order(facilitator.page)[-1]
    for engineer in engineers:
        expect(card(engineer.page, last)).not_to_be_in_viewport()

    start = time.monotonic()
    open_card(facilitator.page, last).get_by_role("button", name="Focus").click()
    for engineer in engineers:
        focused = card(engineer.page, last)
        expect(focused).to_have_attribute("data-in-focus", "", timeout=ms_left(start))
        expect(focused.locator(".in-focus-badge")).to_have_text("In focus")
        expect(engineer.page.locator("#facilitation-bar .focus-status")).to_contain_text(
            f"In focus: {last}"
        )
        # The board scrolls to it by itself.
        expect(focused).to_be_in_viewport()
    expect(engineers[0].page.locator("article[data-in-focus]")).to_have_count(1)

    facilitate(facilitator.page, "Clear focus")
    for engineer in engineers:
        expect(engineer.page.locator("#facilitation-bar .focus-status")).to_have_text(
            "No escape in focus."
        )
        expect(engineer.page.locator("article[data-in-focus]")).to_have_count(0)


def test_a_change_made_by_the_worker_process_reaches_every_board(people: People, stack: Stack):
    """The timer's end is a Celery task: what the worker writes reaches the boards too."""
    facilitator, engineers = _facilitator_and_engineers(people, "Worker retro", escapes=(SSO,))
    facilitator_tools(facilitator.page).get_by_label("Minutes", exact=True).fill("1")
    facilitate(facilitator.page, "Start timer")
    board = engineers[0].page.locator("#board")
    expect(timer_display(engineers[0].page)).to_have_text(re.compile(r"^0[01]:\d\d$"))
    version = int(board.get_attribute("data-version") or 0)
    retro_id = int(board.get_attribute("data-retro-id") or 0)

    # Hand the worker the expiry task of the running timer now rather than in a minute: it
    # runs the same service, in the worker process, and the boards hear of it.
    stack.python(
        "import django; django.setup()\n"
        "from retros.models import Retrospective\n"
        "from retros.tasks import retro_timer_expire_task\n"
        f"retro = Retrospective.objects.get(pk={retro_id})\n"
        "retro_timer_expire_task.apply_async(args=[retro.pk, retro.timer_ends_at.isoformat()])\n"
    )
    for person in (*engineers, facilitator):
        expect(person.page.locator("#board")).to_have_attribute("data-version", str(version + 1))
