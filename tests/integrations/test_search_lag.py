"""One ticket per action when the tracker's search lags behind its creates.

Jira Cloud's /search/jql and Azure DevOps' WIQL are eventually consistent: a ticket made a
moment ago may not be found by its label yet. The fakes here hold every new ticket out of
searches for `search_lag` seconds (reads by key see it at once), and a create can be answered
too late ("the tracker made it, the answer was lost"). The push must wait out the lag before
creating again; what still slips through the status sync finds, links and reports.

Real short lags keep this fast: the fake lags 2 s, Leakseal allows the search 3 s.
"""

import time

import pytest
from django.urls import reverse

from integrations import push, sync
from integrations.models import ConnectionEvent, OutboxState
from retros.models import DUPLICATE_NOTE, PushState
from tests.conftest import client_for
from tests.integrations.pushing import Side, close, creates, fresh_action, only_push, ready_retro

pytestmark = pytest.mark.processes

FAKE_LAG = 2.0
ALLOWED_LAG = 3.0


@pytest.fixture(autouse=True)
def _site_url(settings):
    settings.SITE_URL = "http://testserver-push.example"


@pytest.fixture
def retro(team, facilitator, member, stages, escape):
    return ready_retro(team, facilitator, member, stages, [escape])


@pytest.fixture
def lagging(side: Side, settings) -> Side:
    """The side's fake with a search lag and a create whose answer is lost once."""
    side.fake.search_lag = FAKE_LAG
    settings.TRACKER_SEARCH_LAG = ALLOWED_LAG
    settings.TRACKER_READ_TIMEOUT = 0.5
    side.fake.fail("POST", side.create, stall_after_handling=1.5)
    return side


def test_a_lost_create_is_not_repeated_while_the_search_may_still_lag(
    retro, lagging, django_capture_on_commit_callbacks
):
    close(retro, django_capture_on_commit_callbacks, execute=False)
    row = only_push(retro)

    with pytest.raises(push.PushRetry) as first:
        push.action_push(push_id=row.pk, attempt=0)
    row.refresh_from_db()
    assert row.create_sent_at is not None, "the unanswered create is remembered"
    assert len(lagging.fake.tickets()) == 1, "the tracker made it"

    # The retry comes at once: the search does not show the ticket yet, and nothing is made.
    with pytest.raises(push.PushRetry) as waiting:
        push.action_push(push_id=row.pk, attempt=first.value.attempt)
    assert creates(lagging) == 1
    assert 0 < waiting.value.countdown <= ALLOWED_LAG
    action = fresh_action(retro)
    assert action.push_state == PushState.QUEUED
    assert "waiting for its search to show whether the ticket was made" in action.last_error

    time.sleep(waiting.value.countdown)
    assert push.action_push(push_id=row.pk, attempt=waiting.value.attempt) == "done"

    [ticket] = lagging.fake.tickets()
    action = fresh_action(retro)
    assert (action.push_state, action.external_key) == (PushState.PUSHED, ticket["key"])
    assert creates(lagging) == 1
    row.refresh_from_db()
    assert (row.state, row.create_sent_at) == (OutboxState.DONE, None)


def test_the_task_chain_makes_one_ticket_through_a_lost_create_and_a_lagging_search(
    retro, lagging, eager, django_capture_on_commit_callbacks
):
    """Eager retries come back at once, before the search shows the ticket: still one."""
    close(retro, django_capture_on_commit_callbacks)

    # Eager mode ignores countdowns: the chain ran out of tries or finished; either way the
    # tracker holds one ticket, and a later push (the sweep's, a person's Retry) adopts it.
    assert creates(lagging) == 1
    if only_push(retro).state != OutboxState.DONE:
        time.sleep(ALLOWED_LAG)
        with django_capture_on_commit_callbacks(execute=True):
            push.action_push_retry(action=fresh_action(retro))
    [ticket] = lagging.fake.tickets()
    assert fresh_action(retro).external_key == ticket["key"]
    assert creates(lagging) == 1


def test_an_answered_create_error_is_retried_without_waiting(
    retro, side, settings, django_capture_on_commit_callbacks
):
    """A 503 is an answer: nothing was made, so the next try creates at once."""
    side.fake.search_lag = FAKE_LAG
    settings.TRACKER_SEARCH_LAG = 60
    side.fake.fail("POST", side.create, status=503)
    close(retro, django_capture_on_commit_callbacks, execute=False)
    row = only_push(retro)

    with pytest.raises(push.PushRetry) as retry:
        push.action_push(push_id=row.pk, attempt=0)
    row.refresh_from_db()
    assert row.create_sent_at is None

    assert push.action_push(push_id=row.pk, attempt=retry.value.attempt) == "done"
    assert len(side.fake.tickets()) == 1


def test_without_the_wait_the_lag_makes_a_duplicate_that_the_sync_links_and_reports(
    retro, lagging, settings, owner, django_capture_on_commit_callbacks
):
    """The failure this guards against, reproduced with the wait turned off; then the backstop."""
    settings.TRACKER_SEARCH_LAG = 0
    close(retro, django_capture_on_commit_callbacks, execute=False)
    row = only_push(retro)
    with pytest.raises(push.PushRetry) as first:
        push.action_push(push_id=row.pk, attempt=0)
    assert push.action_push(push_id=row.pk, attempt=first.value.attempt) == "done"
    assert len(lagging.fake.tickets()) == 2, "the search lag made the retry create again"

    time.sleep(FAKE_LAG)
    assert sync.duplicates_check(connection=lagging.connection) == 1
    _assert_reported(retro, lagging, owner)


def test_a_duplicate_made_behind_our_back_is_linked_and_reported_once(
    retro, side, eager, owner, django_capture_on_commit_callbacks
):
    close(retro, django_capture_on_commit_callbacks)
    action = fresh_action(retro)
    extra = side.fake.duplicate_ticket(action.external_key)

    sync.connection_poll(connection=side.connection)

    _assert_reported(retro, side, owner)
    assert sync.duplicates_check(connection=side.connection) == 0, "reported once"
    assert _duplicate_links(side, fresh_action(retro).external_key, extra) == 1, "linked once"


def test_one_ticket_per_label_is_no_finding(
    retro, side, eager, owner, django_capture_on_commit_callbacks
):
    close(retro, django_capture_on_commit_callbacks)

    assert sync.duplicates_check(connection=side.connection) == 0
    assert not ConnectionEvent.objects.exists()
    page = client_for(owner).get(
        reverse("integration_connection", kwargs={"team": retro.team.slug})
    )
    assert "every preventative action has one ticket" in page.content.decode()


def _duplicate_links(side: Side, kept: str, extra: str) -> int:
    if side.connection.is_jira:
        links = side.fake.issues[extra].links
        return sum(
            1
            for link in links
            if link["type"]["name"] == "Duplicate"
            and (link.get("outwardIssue") or {}).get("key") == kept
        )
    relations = side.fake.item(kept).relations
    return sum(
        1
        for rel in relations
        if rel["rel"] == "System.LinkTypes.Duplicate-Forward"
        and rel["url"].endswith(f"/workItems/{extra}")
    )


def _assert_reported(retro, side: Side, owner) -> None:
    action = fresh_action(retro)
    keys = [ticket["key"] for ticket in side.fake.tickets()]
    assert action.external_key in keys
    [extra] = [key for key in keys if key != action.external_key]
    assert _duplicate_links(side, action.external_key, extra) == 1

    assert action.push_state == PushState.PUSHED, "the kept ticket stays the action's"
    assert action.last_error.startswith(DUPLICATE_NOTE)
    assert extra in action.last_error
    state = action.ticket_state
    assert state.note == action.last_error

    [event] = ConnectionEvent.objects.filter(connection=side.connection)
    assert event.action_id == action.pk
    assert extra in event.message
    page = client_for(owner).get(
        reverse("integration_connection", kwargs={"team": retro.team.slug})
    )
    assert page.status_code == 200
    assert "Sync log" in page.content.decode()
    assert f"close {extra} in the tracker" in page.content.decode()


def test_a_tracker_down_during_the_check_is_tried_again_on_the_next_poll(
    retro, side, eager, owner, django_capture_on_commit_callbacks
):
    close(retro, django_capture_on_commit_callbacks)
    side.fake.duplicate_ticket(fresh_action(retro).external_key)
    search = r"/search/jql$" if side.connection.is_jira else r"/wit/wiql$"
    side.fake.fail("GET" if side.connection.is_jira else "POST", search, status=503)

    assert sync.duplicates_check(connection=side.connection) == 0
    assert not ConnectionEvent.objects.exists()

    assert sync.duplicates_check(connection=side.connection) == 1
    _assert_reported(retro, side, owner)


def test_a_duplicate_whose_link_is_refused_is_still_reported(
    retro, jira_connection, fake_jira, eager, django_capture_on_commit_callbacks
):
    close(retro, django_capture_on_commit_callbacks)
    action = fresh_action(retro)
    extra = fake_jira.duplicate_ticket(action.external_key)
    fake_jira.fail("POST", r"/issueLink$", status=403)

    assert sync.duplicates_check(connection=jira_connection) == 1

    assert fake_jira.issues[extra].links == []
    assert extra in fresh_action(retro).last_error
    assert ConnectionEvent.objects.filter(connection=jira_connection).count() == 1


def test_a_gateway_timeout_on_the_create_is_ambiguous_too(
    retro, jira_connection, fake_jira, settings, django_capture_on_commit_callbacks
):
    """A 504 comes from a proxy: Jira behind it may have made the issue. Wait for the search."""
    settings.TRACKER_SEARCH_LAG = 60
    fake_jira.fail("POST", r"/rest/api/[23]/issue$", status=504)
    close(retro, django_capture_on_commit_callbacks, execute=False)
    row = only_push(retro)

    with pytest.raises(push.PushRetry) as first:
        push.action_push(push_id=row.pk, attempt=0)
    row.refresh_from_db()
    assert row.create_sent_at is not None

    with pytest.raises(push.PushRetry):
        push.action_push(push_id=row.pk, attempt=first.value.attempt)
    assert len(fake_jira.calls("POST", r"/rest/api/[23]/issue$")) == 1
