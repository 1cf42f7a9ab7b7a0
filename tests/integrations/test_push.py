"""Closing a retro pushes each preventative action as one ticket, through the outbox.

The services run for real against the fake trackers over HTTP (Celery eager: the task runs
where it is queued). Each fake checks every exchange against the vendor's published spec.

Over 600 lines on purpose: the push's failure modes (transient, permanent, lost answers,
leases, the sweep) share fixtures, and split across files they would read as unrelated.
"""

import logging
import random
import threading
import time
from datetime import timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from django.db import OperationalError, transaction
from django.db import connection as db_connection
from django.urls import reverse
from django.utils import timezone

from integrations import push
from integrations.models import OutboxState, TicketPush
from integrations.tasks_push import action_push_task, outbox_sweep_task
from retros import services
from retros.models import Phase, PushState
from tests.integrations.pushing import (
    Side,
    close,
    creates,
    fresh_action,
    only_push,
    ready_retro,
)
from tests.retros.conftest import make_escape

# --- Set-up: a retro walked to Actions (tests/integrations/pushing.py), then closed.


@pytest.fixture(autouse=True)
def _site_url(settings):
    settings.SITE_URL = "http://testserver-push.example"


@pytest.fixture
def retro(team, facilitator, member, stages, escape):
    return ready_retro(team, facilitator, member, stages, [escape])


# --- Queueing on close.


def test_closing_a_retro_queues_one_push_per_action_on_commit(
    team,
    facilitator,
    member,
    stages,
    escape,
    azure_connection,
    fake_azure,
    eager,
    django_capture_on_commit_callbacks,
):
    second = make_escape(team, title="Coupon applied twice on retry")
    retro = ready_retro(team, facilitator, member, stages, [escape, second])

    callbacks = close(retro, django_capture_on_commit_callbacks, execute=False)

    pushes = TicketPush.objects.filter(action__retro=retro)
    assert pushes.count() == 2
    assert {p.state for p in pushes} == {OutboxState.PENDING}
    assert {(a.push_state, a.tracker) for a in retro.actions.all()} == {
        (PushState.QUEUED, "azure_devops")
    }
    assert fake_azure.requests == [], "nothing reaches the tracker before the close commits"

    for callback in callbacks:
        callback()

    assert len(fake_azure.tickets()) == 2
    assert {a.push_state for a in retro.actions.all()} == {PushState.PUSHED}
    assert {p.state for p in pushes.all()} == {OutboxState.DONE}


def test_without_a_connection_the_actions_stay_drafts(
    retro, fake_azure, eager, django_capture_on_commit_callbacks
):
    close(retro, django_capture_on_commit_callbacks)

    action = fresh_action(retro)
    assert (action.push_state, action.tracker, action.external_key) == (PushState.DRAFT, "", "")
    assert not TicketPush.objects.exists()
    assert fake_azure.requests == []


def test_a_broker_that_is_down_leaves_the_push_to_the_sweep(
    retro, azure_connection, fake_azure, monkeypatch, caplog, django_capture_on_commit_callbacks
):
    def broker_down(*args, **kwargs):
        raise ConnectionRefusedError("broker down")

    monkeypatch.setattr(action_push_task, "delay", broker_down)
    with caplog.at_level(logging.WARNING, logger="integrations.push"):
        close(retro, django_capture_on_commit_callbacks)

    assert retro.phase == Phase.CLOSED
    assert only_push(retro).state == OutboxState.PENDING
    assert fresh_action(retro).push_state == PushState.QUEUED
    assert "outbox sweep will" in caplog.text
    assert fake_azure.requests == []


# --- The ticket: one, labelled, placed, with the story of the escape.


def sprint_of(side: Side, ticket) -> str | None:
    """The name of the sprint or the path of the iteration the ticket is in."""
    if side.connection.is_jira:
        return ticket["sprint_name"]
    return ticket["sprint"]


def test_a_push_makes_one_labelled_ticket_in_the_first_future_sprint(
    retro, side, eager, django_capture_on_commit_callbacks
):
    close(retro, django_capture_on_commit_callbacks)

    action = fresh_action(retro)
    [ticket] = side.fake.tickets()
    assert ticket["labels"] == [action.label]
    assert ticket["summary"] == action.title
    future = "SHOP Sprint 15" if side.connection.is_jira else "Shop\\Sprint 42"
    assert sprint_of(side, ticket) == future
    assert (action.push_state, action.external_key) == (PushState.PUSHED, ticket["key"])
    assert action.external_url.startswith(side.fake.url)
    assert action.sprint == future.rsplit("\\", 1)[-1]
    assert action.last_error == ""
    assert only_push(retro).state == OutboxState.DONE


def test_without_a_future_sprint_a_jira_ticket_goes_into_the_active_one(
    retro, fake_jira, jira_connection, eager, django_capture_on_commit_callbacks
):
    fake_jira.set_sprints([("SHOP Sprint 13", "closed"), ("SHOP Sprint 14", "active")])

    close(retro, django_capture_on_commit_callbacks)

    [ticket] = fake_jira.tickets()
    assert ticket["sprint_name"] == "SHOP Sprint 14"
    action = fresh_action(retro)
    assert (action.sprint, action.last_error) == ("SHOP Sprint 14", "")


def test_without_a_sprint_the_ticket_goes_to_the_backlog_with_a_visible_warning(
    retro, side, eager, django_capture_on_commit_callbacks
):
    if side.connection.is_jira:
        side.fake.set_sprints([("SHOP Sprint 13", "closed")])
    else:
        side.fake.set_iterations([("Shop\\Sprint 40", "past")])

    close(retro, django_capture_on_commit_callbacks)

    action = fresh_action(retro)
    [ticket] = side.fake.tickets()
    assert ticket["sprint"] is None
    assert (action.push_state, action.sprint) == (PushState.PUSHED, "Backlog")
    assert "backlog" in action.last_error, "the placement warning stays visible"


def test_the_description_tells_the_escape_its_category_stage_root_cause_chain_and_retro_link(
    retro, escape, stages, side, eager, django_capture_on_commit_callbacks
):
    close(retro, django_capture_on_commit_callbacks)

    [ticket] = side.fake.tickets()
    text = str(ticket["description"])
    retro_url = "http://testserver-push.example" + reverse(
        "retro_detail", kwargs={"team": "checkout", "pk": retro.pk}
    )
    assert retro_url.endswith(f"/t/checkout/retros/{retro.pk}/")
    assert escape.title in text
    assert "Severity: Medium" in text
    assert "Component: payments" in text
    assert "Category: Coverage Gap" in text
    assert f"Stage that should have caught it: {stages[1].name}" in text
    assert "1. Why? No test ran against a slow gateway" in text
    assert "2. Why? Integration tests stub the gateway with instant answers" in text
    assert "[Automation shortfall]" in text
    assert "Owner: mia" in text
    assert "Run the gateway stub with 3 s answers." in text
    assert retro_url in text
    draft = push.ticket_draft(fresh_action(retro), side.connection)
    assert (draft.retro_url, draft.label, draft.escape_key) == (
        retro_url,
        fresh_action(retro).label,
        "",
    )


def test_without_a_root_cause_the_description_gives_each_chain_of_whys(retro, azure_connection):
    why = retro.whys.get(root_cause_kind__isnull=False, parent__isnull=False)
    why.root_cause_kind = ""
    why.save()

    text = push.ticket_draft(fresh_action(retro), azure_connection).description

    assert "Five Whys (no root cause marked):" in text
    assert "2. Why? Integration tests stub the gateway" in text


def test_an_escape_from_the_same_tracker_is_linked_to_its_ticket(
    team, facilitator, member, stages, side, eager, django_capture_on_commit_callbacks
):
    fake = side.fake
    if side.connection.is_jira:
        key = fake.add_escape_issue(summary="Saved cards fail at checkout")
        issue_id = fake.issue(key)["id"]  # intake keeps Jira's issue id, and the key aside
    else:
        key = issue_id = fake.add_escape_issue(title="Saved cards fail at checkout")
    escape = make_escape(
        team,
        title="Saved cards fail at checkout",
        source=side.connection.tracker,
        external_id=issue_id,
        tracker_key=key,
    )
    retro = ready_retro(team, facilitator, member, stages, [escape])

    close(retro, django_capture_on_commit_callbacks)

    assert push.ticket_draft(fresh_action(retro), side.connection).escape_key == key
    [ticket] = fake.tickets()
    if side.connection.is_jira:
        assert [link["inwardIssue"]["key"] for link in ticket["links"]] == [key]
    else:
        linked = [r["url"] for r in ticket["relations"] if r["rel"] != "Hyperlink"]
        assert [url.rsplit("/", 1)[-1] for url in linked] == [key]


def test_an_escape_from_elsewhere_is_not_linked(retro, azure_connection):
    escape = fresh_action(retro).escape
    escape.source, escape.external_id, escape.tracker_key = "jira", "10001", "SHOP-9"
    escape.save()
    assert push.ticket_draft(fresh_action(retro), azure_connection).escape_key == ""


def test_a_retry_after_the_tracker_made_the_ticket_adopts_it(
    retro, side, settings, django_capture_on_commit_callbacks
):
    """The create answered too late: the ticket exists, the try failed. No second ticket."""
    close(retro, django_capture_on_commit_callbacks, execute=False)
    settings.TRACKER_READ_TIMEOUT = 0.5
    side.fake.fail("POST", side.create, stall_after_handling=1.5)
    row = only_push(retro)

    with pytest.raises(push.PushRetry) as retry:
        push.action_push(push_id=row.pk, attempt=0)
    assert len(side.fake.tickets()) == 1
    assert fresh_action(retro).push_state == PushState.QUEUED

    assert push.action_push(push_id=row.pk, attempt=retry.value.attempt) == "done"

    [ticket] = side.fake.tickets()
    action = fresh_action(retro)
    assert (action.push_state, action.external_key) == (PushState.PUSHED, ticket["key"])
    assert creates(side) == 1
    assert sprint_of(side, ticket) in ("SHOP Sprint 15", "Shop\\Sprint 42"), "placed"


# --- Failures.


def test_a_refused_ticket_fails_at_once_with_the_trackers_message(
    retro, side, eager, django_capture_on_commit_callbacks
):
    side.connection.issue_type = "Incident"  # not a type of this project
    side.connection.save()

    close(retro, django_capture_on_commit_callbacks)

    action, row = fresh_action(retro), only_push(retro)
    assert action.push_state == PushState.FAILED
    expected = (
        "HTTP 400: issuetype: Specify a valid issue type"
        if side.connection.is_jira
        else "HTTP 400: VS402323: Work item type Incident does not exist"
    )
    assert action.last_error.startswith(expected), action.last_error
    assert (row.state, row.attempts, row.last_error) == (
        OutboxState.FAILED,
        0,
        action.last_error,
    )
    assert creates(side) == 1
    assert side.fake.tickets() == []


def test_a_rejected_token_fails_at_once(retro, side, eager, django_capture_on_commit_callbacks):
    side.connection.token = "not-the-token"
    side.connection.save()

    close(retro, django_capture_on_commit_callbacks)

    action = fresh_action(retro)
    assert action.push_state == PushState.FAILED
    assert "401" in action.last_error
    assert "not-the-token" not in action.last_error
    assert len(side.fake.requests) == 1, "no retry after a 401"


def test_a_missing_jira_board_fails_at_once(
    retro, fake_jira, jira_connection, eager, django_capture_on_commit_callbacks
):
    jira_connection.board_id = 99
    jira_connection.save()

    close(retro, django_capture_on_commit_callbacks)

    action = fresh_action(retro)
    assert action.push_state == PushState.FAILED
    assert "404" in action.last_error or "Board does not exist" in action.last_error
    assert fake_jira.tickets() == []


def test_a_transient_error_is_retried_no_sooner_than_retry_after(
    retro, side, django_capture_on_commit_callbacks
):
    close(retro, django_capture_on_commit_callbacks, execute=False)
    side.fake.fail("POST", side.create, status=429, retry_after="7")
    row = only_push(retro)
    before = timezone.now()

    with pytest.raises(push.PushRetry) as retry:
        push.action_push(push_id=row.pk, attempt=0)

    assert 7 <= retry.value.countdown <= push.countdown_cap()
    assert retry.value.attempt == 1
    row.refresh_from_db()
    assert (row.state, row.attempts, row.leased_until) == (OutboxState.PENDING, 1, None)
    assert row.next_attempt_at is not None
    assert row.next_attempt_at >= before + timedelta(seconds=7)
    action = fresh_action(retro)
    assert action.push_state == PushState.QUEUED
    assert "429" in action.last_error

    assert push.action_push(push_id=row.pk, attempt=1) == "done"
    assert fresh_action(retro).push_state == PushState.PUSHED
    assert len(side.fake.tickets()) == 1


def test_a_retry_after_longer_than_a_countdown_is_obeyed_and_the_sweep_brings_it_back(
    retro, side, frozen_clock, monkeypatch, settings, django_capture_on_commit_callbacks
):
    # Issue 13: a 429 asking for 75 s got its retry after 61 s (the countdown's cap).
    settings.CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 3600}
    close(retro, django_capture_on_commit_callbacks, execute=False)
    side.fake.fail("POST", side.create, status=429, retry_after="75")
    row = only_push(retro)
    start = timezone.now()

    assert push.action_push(push_id=row.pk, attempt=0) == "rate limited"

    row.refresh_from_db()
    until = start + timedelta(seconds=75)
    assert (row.state, row.attempts, row.leased_until) == (OutboxState.PENDING, 1, None)
    assert row.rate_limited_until == until == row.next_attempt_at
    action = fresh_action(retro)
    assert action.push_state == PushState.QUEUED
    tracker = side.connection.tracker_name
    local = until.astimezone(ZoneInfo("Europe/Berlin"))  # the team's time zone
    assert f"Waiting for {tracker}'s rate limit until {local:%H:%M}" in action.last_error
    assert "429" in action.last_error
    assert action.ticket_state.label == "Queued"
    calls = len(side.fake.requests)

    # A task that turns up meanwhile (redelivered, or a stale chain) leaves the tracker alone.
    assert push.action_push(push_id=row.pk, attempt=1) == "rate limited"
    queued: list[tuple[Any, ...]] = []
    monkeypatch.setattr(action_push_task, "delay", lambda *args: queued.append(args))
    frozen_clock.move_to(start + timedelta(seconds=74), tick=False)
    assert push.outbox_sweep() == 0, "the sweep obeys the whole Retry-After"
    assert len(side.fake.requests) == calls

    frozen_clock.move_to(start + timedelta(seconds=75, milliseconds=1), tick=False)
    assert push.outbox_sweep() == 1
    assert push.outbox_sweep() == 0, "queued once"
    assert queued == [(row.pk, 1)]
    row.refresh_from_db()
    assert row.rate_limited_until is None

    assert push.action_push(push_id=row.pk, attempt=1) == "done"
    assert len(side.fake.tickets()) == 1
    assert fresh_action(retro).push_state == PushState.PUSHED


def test_a_retry_after_beyond_the_bound_waits_the_bound_and_says_so(
    retro, fake_azure, azure_connection, frozen_clock, settings, django_capture_on_commit_callbacks
):
    settings.TRACKER_RETRY_AFTER_MAX = 600
    close(retro, django_capture_on_commit_callbacks, execute=False)
    fake_azure.fail("POST", r"/_apis/wit/workitems/\$", status=503, retry_after="7200")
    row = only_push(retro)
    start = timezone.now()

    assert push.action_push(push_id=row.pk, attempt=0) == "rate limited"

    row.refresh_from_db()
    assert row.rate_limited_until == start + timedelta(seconds=600)
    note = fresh_action(retro).last_error
    assert "Waiting for Azure DevOps's rate limit until" in note
    assert "asked to wait 2 hours, longer than the 10 minutes Leakseal waits at most" in note


def test_a_short_retry_after_stays_a_task_countdown(
    retro, fake_azure, azure_connection, settings, django_capture_on_commit_callbacks
):
    settings.CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 120}
    close(retro, django_capture_on_commit_callbacks, execute=False)
    fake_azure.fail("POST", r"/_apis/wit/workitems/\$", status=429, retry_after="45")

    with pytest.raises(push.PushRetry) as retry:
        push.action_push(push_id=only_push(retro).pk, attempt=0)

    assert 45 <= retry.value.countdown <= 60
    assert only_push(retro).rate_limited_until is None
    assert "Waiting for Azure DevOps's rate limit until" in fresh_action(retro).last_error


def test_waits_read_as_people_say_them():
    assert push.duration_words(3600) == "1 hour"
    assert push.duration_words(7200) == "2 hours"
    assert push.duration_words(75) == "75 seconds"
    assert push.duration_words(600) == "10 minutes"


def test_the_task_retries_transient_failures_until_the_ticket_is_made(
    retro, side, eager, django_capture_on_commit_callbacks
):
    side.fake.fail("POST", side.create, status=503, times=2)

    close(retro, django_capture_on_commit_callbacks)

    assert len(side.fake.tickets()) == 1
    assert creates(side) == 3
    row = only_push(retro)
    assert (row.state, row.attempts) == (OutboxState.DONE, 2)
    assert fresh_action(retro).push_state == PushState.PUSHED


def test_transient_failures_give_up_after_the_retry_bound_with_the_last_message(
    retro, azure_connection, fake_azure, eager, django_capture_on_commit_callbacks
):
    fake_azure.fail("POST", r"/_apis/wit/workitems/\$", status=503, times=None)

    close(retro, django_capture_on_commit_callbacks)

    row, action = only_push(retro), fresh_action(retro)
    assert row.state == OutboxState.FAILED
    assert row.attempts == push.MAX_RETRIES + 1
    assert len(fake_azure.calls("POST", r"/_apis/wit/workitems/\$")) == push.MAX_RETRIES + 1
    assert action.push_state == PushState.FAILED
    assert "HTTP 503" in action.last_error and "gave up" in action.last_error


def test_transient_failures_give_up_after_an_hour(
    retro, azure_connection, fake_azure, django_capture_on_commit_callbacks
):
    close(retro, django_capture_on_commit_callbacks, execute=False)
    row = only_push(retro)
    TicketPush.objects.filter(pk=row.pk).update(
        first_queued_at=timezone.now() - timedelta(hours=1, minutes=1)
    )
    fake_azure.fail("POST", r"/_apis/wit/workitems/\$", status=500)

    assert push.action_push(push_id=row.pk, attempt=0) == "failed"

    assert fresh_action(retro).push_state == PushState.FAILED


# --- The countdown policy itself.


def test_countdowns_back_off_exponentially_with_full_jitter(settings):
    settings.CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 3600}
    rng = random.Random(7)
    for attempt in range(1, 10):
        ceiling = min(60.0, 2.0 * 2 ** (attempt - 1))
        samples = [push.retry_countdown(attempt=attempt, rng=rng) for _ in range(200)]
        assert all(1.0 <= s <= max(1.0, ceiling) for s in samples)
        if ceiling > 8:
            assert min(samples) < ceiling / 4 < ceiling * 3 / 4 < max(samples), "jittered"
    assert max(push.retry_countdown(attempt=30, rng=rng) for _ in range(200)) <= 60


def test_countdowns_honour_retry_after_and_the_visibility_timeout(settings):
    settings.CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 3600}
    assert push.retry_countdown(attempt=1, retry_after=42) >= 42
    assert push.retry_countdown(attempt=1, retry_after=4000) == 60

    settings.CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 100}
    assert push.countdown_cap() == 50
    assert push.retry_countdown(attempt=9, retry_after=80) == 50

    settings.CELERY_BROKER_TRANSPORT_OPTIONS = {"data_folder_in": "/tmp/x"}
    assert push.countdown_cap() == 60


def test_a_worker_keeps_its_short_lease_alive_while_a_slow_push_runs(
    transactional_db,
    retro,
    fake_azure,
    azure_connection,
    monkeypatch,
    django_capture_on_commit_callbacks,
):
    # Issue 13: a long lease (230 s) kept a dead worker's push stuck for minutes; a short one
    # must not let a live but slow push be taken by another worker.
    monkeypatch.setattr(push, "LEASE", timedelta(seconds=1.0))
    monkeypatch.setattr(push, "LEASE_RENEW_EVERY", 0.15)
    close(retro, django_capture_on_commit_callbacks, execute=False)
    fake_azure.fail("POST", r"/_apis/wit/workitems/\$", stall_after_handling=2.5)
    row = only_push(retro)
    seen: list[tuple[Any, Any]] = []
    stop = threading.Event()

    def watch() -> None:
        try:
            while not stop.wait(0.05):
                until = TicketPush.objects.filter(pk=row.pk).values_list("leased_until", flat=True)
                try:
                    seen.append((timezone.now(), until.first()))
                except OperationalError:
                    # SQLite's shared in-memory test database locks a table while another
                    # connection writes it (a renewal, the push's own writes): look again.
                    continue
        finally:
            db_connection.close()

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        assert push.action_push(push_id=row.pk, attempt=0) == "done"
    finally:
        stop.set()
        watcher.join()

    held = [(at, until) for at, until in seen if until is not None]
    assert len({until for _, until in held}) >= 5, "renewed again and again"
    assert held[-1][0] - held[0][0] > timedelta(seconds=1.5), "held through the slow create"
    assert all(until > at for at, until in held), "the lease never ran out meanwhile"
    assert len(fake_azure.tickets()) == 1


def test_a_renewal_that_fails_is_tried_again_at_the_next_tick(
    transactional_db, retro, azure_connection, monkeypatch, django_capture_on_commit_callbacks
):
    """A database blip during one renewal does not end the renewals (the lease would lapse
    while the worker still pushes, and the sweep hand the push to another worker)."""
    monkeypatch.setattr(push, "LEASE_RENEW_EVERY", 0.05)
    close(retro, django_capture_on_commit_callbacks, execute=False)
    row = only_push(retro)
    first = timezone.now() + timedelta(seconds=20)
    TicketPush.objects.filter(pk=row.pk).update(leased_until=first)
    calls = 0
    real = push.lease_length

    def blip_once() -> timedelta:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise OperationalError("server closed the connection unexpectedly")
        return real()

    monkeypatch.setattr(push, "lease_length", blip_once)
    with push._LeaseKept(row.pk, first):
        deadline = time.monotonic() + 5
        while TicketPush.objects.get(pk=row.pk).leased_until == first:
            assert time.monotonic() < deadline, "no renewal after the failed one"
            time.sleep(0.05)
    assert calls >= 2


def test_the_sweep_queues_a_push_whose_worker_died_and_the_action_says_so(
    retro, azure_connection, fake_azure, monkeypatch, django_capture_on_commit_callbacks
):
    close(retro, django_capture_on_commit_callbacks, execute=False)
    row = only_push(retro)
    services.action_tracker_update(action_id=row.action_id, push_state=PushState.PUSHING)
    queued: list[tuple[Any, ...]] = []
    monkeypatch.setattr(action_push_task, "delay", lambda *args: queued.append(args))
    TicketPush.objects.filter(pk=row.pk).update(leased_until=timezone.now() + timedelta(seconds=5))
    assert push.outbox_sweep() == 0, "a live lease: its worker is on it"
    state = fresh_action(retro).ticket_state
    assert (state.label, state.note) == (
        "Pushing…",
        "A worker is on it; should it stop, another takes over within a minute.",
    )

    TicketPush.objects.filter(pk=row.pk).update(leased_until=timezone.now() - timedelta(seconds=1))
    assert push.outbox_sweep() == 1, "its lease ran out: the worker died (a live one renews it)"
    assert push.outbox_sweep() == 0, "queued once"

    assert queued == [(row.pk, 0)]
    action = fresh_action(retro)
    assert action.push_state == PushState.QUEUED
    assert action.last_error.startswith("Waiting for a worker: the one pushing it stopped; queued")
    assert push.action_push(push_id=row.pk, attempt=0) == "done"
    assert len(fake_azure.tickets()) == 1


def test_a_task_that_finds_a_held_lease_says_it_waits_for_a_worker(
    retro, azure_connection, fake_azure, frozen_clock, django_capture_on_commit_callbacks
):
    close(retro, django_capture_on_commit_callbacks, execute=False)
    row = only_push(retro)
    until = timezone.now() + timedelta(seconds=12)
    TicketPush.objects.filter(pk=row.pk).update(leased_until=until)

    assert push.action_push(push_id=row.pk, attempt=0) == "busy"
    assert push.push_waits_for_worker(push_id=row.pk) == 13

    local = until.astimezone(ZoneInfo("Europe/Berlin"))
    assert fresh_action(retro).last_error == (
        f"Waiting for a worker: if the one pushing it stopped, another takes over at "
        f"{local:%H:%M:%S}."
    )
    TicketPush.objects.filter(pk=row.pk).update(leased_until=None)
    assert push.push_waits_for_worker(push_id=row.pk) is None


# --- Exactly one worker, exactly one chain.


def test_a_push_another_worker_holds_or_a_stale_task_does_nothing(
    retro, azure_connection, fake_azure, django_capture_on_commit_callbacks
):
    close(retro, django_capture_on_commit_callbacks, execute=False)
    row = only_push(retro)

    TicketPush.objects.filter(pk=row.pk).update(leased_until=timezone.now() + timedelta(minutes=5))
    assert push.action_push(push_id=row.pk, attempt=0) == "busy"
    TicketPush.objects.filter(pk=row.pk).update(leased_until=None, attempts=3)
    assert push.action_push(push_id=row.pk, attempt=1) == "stale"
    assert push.action_push(push_id=987_654) == "gone"
    assert fake_azure.requests == []

    assert push.action_push(push_id=row.pk, attempt=3) == "done"
    assert push.action_push(push_id=row.pk, attempt=3) == "done"
    assert len(fake_azure.tickets()) == 1


def test_the_task_returns_quietly_when_its_row_is_gone(db, eager):
    assert action_push_task.apply(args=(987_654, 0)).get() == "gone"


# --- The sweep.


def test_the_sweep_queues_a_pending_row_whose_task_never_arrived(
    retro, azure_connection, fake_azure, eager, django_capture_on_commit_callbacks
):
    close(retro, django_capture_on_commit_callbacks, execute=False)  # the enqueue is lost
    row = only_push(retro)

    assert push.outbox_sweep() == 0, "a minute's grace for the task on its way"
    TicketPush.objects.filter(pk=row.pk).update(
        first_queued_at=timezone.now() - timedelta(minutes=2)
    )

    assert outbox_sweep_task.apply().get() == 1

    assert fresh_action(retro).push_state == PushState.PUSHED
    assert len(fake_azure.tickets()) == 1
    assert push.outbox_sweep() == 0


def test_the_sweep_leaves_scheduled_retries_and_held_leases_alone(
    retro, azure_connection, fake_azure, django_capture_on_commit_callbacks
):
    close(retro, django_capture_on_commit_callbacks, execute=False)
    row = only_push(retro)
    now = timezone.now()
    old = now - timedelta(minutes=10)

    TicketPush.objects.filter(pk=row.pk).update(
        first_queued_at=old, attempts=2, next_attempt_at=now + timedelta(seconds=30)
    )
    assert push.outbox_sweep() == 0
    TicketPush.objects.filter(pk=row.pk).update(
        next_attempt_at=old, leased_until=now + timedelta(minutes=1)
    )
    assert push.outbox_sweep() == 0
    assert fake_azure.requests == []


def test_the_sweep_requeues_an_overdue_retry_once(
    retro, azure_connection, fake_azure, monkeypatch, django_capture_on_commit_callbacks
):
    close(retro, django_capture_on_commit_callbacks, execute=False)
    row = only_push(retro)
    queued = []
    monkeypatch.setattr(action_push_task, "delay", lambda *args: queued.append(args))
    TicketPush.objects.filter(pk=row.pk).update(
        attempts=2, next_attempt_at=timezone.now() - timedelta(minutes=5)
    )

    assert push.outbox_sweep() == 1
    assert push.outbox_sweep() == 0, "the next beat waits for the task it queued"
    assert queued == [(row.pk, 2)]


# --- Retry by a person.


def test_a_failed_push_can_be_retried(
    retro, azure_connection, fake_azure, eager, django_capture_on_commit_callbacks
):
    fake_azure.fail("POST", r"/_apis/wit/workitems/\$", status=400)
    close(retro, django_capture_on_commit_callbacks)
    assert fresh_action(retro).push_state == PushState.FAILED

    with django_capture_on_commit_callbacks(execute=True):
        push.action_push_retry(action=fresh_action(retro))

    action = fresh_action(retro)
    assert (action.push_state, action.last_error) == (PushState.PUSHED, "")
    assert len(fake_azure.tickets()) == 1


def test_a_retry_is_refused_while_open_pushed_or_without_a_connection(
    retro, azure_connection, fake_azure, eager, django_capture_on_commit_callbacks
):
    from django.core.exceptions import ValidationError

    with pytest.raises(ValidationError, match="when the retrospective closes"):
        push.action_push_retry(action=fresh_action(retro))

    close(retro, django_capture_on_commit_callbacks)
    with pytest.raises(ValidationError, match="already in the tracker"):
        push.action_push_retry(action=fresh_action(retro))

    with transaction.atomic():
        services.action_tracker_update(
            action_id=fresh_action(retro).pk, push_state=PushState.FAILED
        )
    azure_connection.delete()
    with pytest.raises(ValidationError, match="No tracker is connected"):
        push.action_push_retry(action=fresh_action(retro))


def test_a_push_whose_connection_was_removed_fails_with_a_clear_message(
    retro, azure_connection, fake_azure, django_capture_on_commit_callbacks
):
    close(retro, django_capture_on_commit_callbacks, execute=False)
    azure_connection.delete()

    assert push.action_push(push_id=only_push(retro).pk, attempt=0) == "failed"

    assert "No tracker is connected" in fresh_action(retro).last_error


def test_an_action_marked_done_in_leakseal_is_not_pushed_on_retry(
    retro, azure_connection, fake_azure, eager, django_capture_on_commit_callbacks
):
    from django.core.exceptions import ValidationError

    from retros import follow_through

    fake_azure.fail("POST", r"/_apis/wit/workitems/\$", status=400)
    close(retro, django_capture_on_commit_callbacks)
    action = fresh_action(retro)
    assert action.push_state == PushState.FAILED
    follow_through.action_mark_done(action=action, by=retro.facilitator, note="Done by hand")
    with pytest.raises(ValidationError, match="marked done in Leakseal"):
        push.action_push_retry(action=fresh_action(retro))
    assert fake_azure.tickets() == []


def test_an_hour_waited_for_a_rate_limit_does_not_use_up_the_pushs_own_time(
    retro, side, frozen_clock, settings, django_capture_on_commit_callbacks
):
    # The tracker asks for an hour (the default bound); the try after it meets a 500. The push
    # has been pending over MAX_PUSH_AGE by then, but an hour of it was the tracker's: it
    # tries again rather than failing for good.
    settings.CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 3600}
    close(retro, django_capture_on_commit_callbacks, execute=False)
    side.fake.fail("POST", side.create, status=429, retry_after="3600")
    row = only_push(retro)
    start = timezone.now()
    assert push.action_push(push_id=row.pk, attempt=0) == "rate limited"
    row.refresh_from_db()
    assert row.rate_limit_waited == timedelta(hours=1)

    frozen_clock.move_to(start + timedelta(hours=1, minutes=5), tick=False)
    side.fake.fail("POST", side.create, status=500)
    with pytest.raises(push.PushRetry):
        push.action_push(push_id=row.pk, attempt=1)
    assert fresh_action(retro).push_state == PushState.QUEUED

    # Its own hour still bounds it: past that too, it gives up.
    frozen_clock.move_to(start + timedelta(hours=2, minutes=1), tick=False)
    side.fake.fail("POST", side.create, status=500)
    assert push.action_push(push_id=row.pk, attempt=2) == "failed"
    assert fresh_action(retro).push_state == PushState.FAILED
    assert side.fake.tickets() == []
