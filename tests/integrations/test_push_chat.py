"""A ticket push that fails for good is posted to the team's chat channels (notices/chat.py),
from the transaction that marks it failed; a transient failure that will be retried is not.

Once every push of a closed retro is settled (pushed, or failed for good), the channels that
got the retro's close get its tickets: one follow-up per retro and channel.
"""

import json
import threading
import time

import pytest
from django.conf import settings
from django.db import connections, transaction

from integrations import push
from integrations.models import OutboxState, TicketPush
from notices.models import ChatKind, Notice
from retros import services
from retros.models import Retrospective
from tests.fakes import accounts
from tests.integrations.pushing import close, fresh_action, ready_retro
from tests.notices.test_chat import (  # noqa: F401 (queued: an autouse fixture, here too)
    all_text,
    connect,
    deliver_all,
    queued,
)
from tests.retros.conftest import make_escape


@pytest.fixture
def retro(team, facilitator, member, stages, escape):
    return ready_retro(team, facilitator, member, stages, [escape])


def test_a_permanently_failed_push_is_posted_to_chat(
    retro,
    jira_connection,
    fake_slack,
    django_capture_on_commit_callbacks,
    monkeypatch,
):
    connect(retro.team, ChatKind.SLACK_WEBHOOK, fake_slack.webhook(), events=["push_failed"])
    jira_connection.issue_type = "Incident"  # not a type of this project: refused for good
    jira_connection.save()
    from integrations import push

    monkeypatch.setattr(push, "_enqueue", lambda push_id, attempt: None)
    close(retro, django_capture_on_commit_callbacks)
    assert not Notice.objects.exists()  # closing alone says nothing to this channel
    action = fresh_action(retro)
    assert push.action_push(push_id=action.push.pk, attempt=0) == "failed"

    notice = Notice.objects.get()
    assert notice.kind == "push_failed" and notice.occasion.startswith(f"push-failed:{action.pk}:")
    assert deliver_all() == ["sent"]
    text = json.dumps(fake_slack.messages()[0])
    assert action.title in text and "Specify a valid issue type" in text
    assert f"/retros/{retro.pk}/" in text


def test_a_transient_push_failure_posts_nothing(
    retro,
    jira_connection,
    fake_jira,
    fake_slack,
    django_capture_on_commit_callbacks,
    monkeypatch,
):
    connect(retro.team, ChatKind.SLACK_WEBHOOK, fake_slack.webhook(), events=["push_failed"])
    from integrations import push

    monkeypatch.setattr(push, "_enqueue", lambda push_id, attempt: None)
    close(retro, django_capture_on_commit_callbacks)
    fake_jira.fail("POST", r"/issue$", status=503)
    with pytest.raises(push.PushRetry):
        push.action_push(push_id=fresh_action(retro).push.pk, attempt=0)
    assert not Notice.objects.exists()


# --- The tickets follow the close, in one notice per channel.

TITLE = "Release 2026.11.1 retro"  # ready_retro's


@pytest.fixture
def two_actions(team, facilitator, member, stages, escape):
    second = make_escape(team, title="Coupon applied twice on retry")
    return ready_retro(team, facilitator, member, stages, [escape, second])


@pytest.fixture
def channels(team, fake_slack, fake_teams):
    """A Slack and a Teams channel that get retro closes; pushes run when the test says."""
    connect(team, ChatKind.SLACK_WEBHOOK, fake_slack.webhook(), events=["retro_closed"])
    connect(team, ChatKind.TEAMS_WEBHOOK, fake_teams.workflow(), events=["retro_closed"])


@pytest.fixture
def by_hand(monkeypatch):
    monkeypatch.setattr(push, "_enqueue", lambda push_id, attempt: None)


def pushes_of(retro) -> list[TicketPush]:
    return list(TicketPush.objects.filter(action__retro=retro).order_by("action_id"))


def ticket_notices(retro) -> list[Notice]:
    return list(Notice.objects.filter(occasion=f"retro-tickets:{retro.pk}").order_by("pk"))


def delivered_follow_ups(fake_slack, fake_teams) -> tuple[str, str]:
    """The follow-up as Slack and Teams got it (the last message of each)."""
    assert set(deliver_all()) == {"sent"}
    return all_text(fake_slack.messages()[-1]), all_text(fake_teams.cards()[-1])


def test_once_every_action_is_pushed_one_follow_up_lists_their_linked_keys(
    two_actions,
    side,
    channels,
    fake_slack,
    fake_teams,
    by_hand,
    django_capture_on_commit_callbacks,
):
    retro = two_actions
    close(retro, django_capture_on_commit_callbacks)
    first, second = pushes_of(retro)

    assert push.action_push(push_id=first.pk, attempt=0) == "done"
    assert ticket_notices(retro) == [], "not while the second action waits for its ticket"

    assert push.action_push(push_id=second.pk, attempt=0) == "done"
    notices = ticket_notices(retro)
    assert len(notices) == 2  # one per channel
    assert {n.kind for n in notices} == {"retro_closed"}
    assert {n.subject for n in notices} == {f"Tickets for {TITLE}"}

    slack, teams = delivered_follow_ups(fake_slack, fake_teams)
    for action in retro.actions.order_by("pk"):
        key, url = action.external_key, action.external_url
        assert key and url.startswith("http")
        assert f"<{url}|{key}> — {action.title}" in slack
        assert f"[{key}]({url}) — {action.title}" in teams
    for text in (slack, teams):
        assert f"Tickets for {TITLE}" in text
        assert "2 of 2 preventative action(s) are now tickets in" in text
        assert f"/retros/{retro.pk}/" in text


def test_a_push_failed_for_good_is_named_in_the_follow_up_with_its_reason(
    two_actions,
    jira_connection,
    fake_jira,
    channels,
    fake_slack,
    fake_teams,
    by_hand,
    django_capture_on_commit_callbacks,
):
    retro = two_actions
    close(retro, django_capture_on_commit_callbacks)
    first, second = pushes_of(retro)
    fake_jira.fail("POST", r"/rest/api/[23]/issue$", status=400, times=1)

    assert push.action_push(push_id=first.pk, attempt=0) == "failed"
    assert ticket_notices(retro) == []
    assert push.action_push(push_id=second.pk, attempt=0) == "done"

    assert len(ticket_notices(retro)) == 2
    failed, pushed = retro.actions.order_by("pk")
    slack, teams = delivered_follow_ups(fake_slack, fake_teams)
    for text in (slack, teams):
        assert "1 of 2 preventative action(s) are now tickets in Jira" in text
        assert f"{failed.title} — its ticket could not be made: HTTP 400" in text
        assert pushed.external_key in text and pushed.external_url in text
        assert "Retry push" in text


def test_the_follow_up_waits_for_a_push_still_being_retried(
    two_actions,
    jira_connection,
    fake_jira,
    channels,
    by_hand,
    django_capture_on_commit_callbacks,
):
    retro = two_actions
    close(retro, django_capture_on_commit_callbacks)
    first, second = pushes_of(retro)
    fake_jira.fail("POST", r"/rest/api/[23]/issue$", status=503, times=1)

    with pytest.raises(push.PushRetry):
        push.action_push(push_id=first.pk, attempt=0)
    assert push.action_push(push_id=second.pk, attempt=0) == "done"
    assert TicketPush.objects.get(pk=first.pk).state == OutboxState.PENDING
    assert ticket_notices(retro) == []

    assert push.action_push(push_id=first.pk, attempt=1) == "done"
    assert len(ticket_notices(retro)) == 2


def test_settling_again_sends_no_second_follow_up(
    two_actions,
    jira_connection,
    fake_jira,
    channels,
    by_hand,
    django_capture_on_commit_callbacks,
):
    retro = two_actions
    close(retro, django_capture_on_commit_callbacks)
    first, second = pushes_of(retro)
    fake_jira.fail("POST", r"/rest/api/[23]/issue$", status=400, times=1)
    assert push.action_push(push_id=first.pk, attempt=0) == "failed"
    assert push.action_push(push_id=second.pk, attempt=0) == "done"
    assert len(ticket_notices(retro)) == 2

    # A person's Retry pushes the failed one: the retro is settled again, and told once.
    failed = retro.actions.order_by("pk").first()
    with django_capture_on_commit_callbacks(execute=True):
        retried = push.action_push_retry(action=failed)
    assert push.action_push(push_id=retried.pk, attempt=0) == "done"
    # And a second worker's check of the same settled retro.
    with transaction.atomic():
        push._tickets_chat_when_settled(failed.pk)

    assert len(ticket_notices(retro)) == 2


def test_the_close_says_the_tickets_follow_in_this_channel(
    retro,
    jira_connection,
    fake_slack,
    by_hand,
    django_capture_on_commit_callbacks,
):
    connect(retro.team, ChatKind.SLACK_WEBHOOK, fake_slack.webhook(), events=["retro_closed"])
    close(retro, django_capture_on_commit_callbacks)

    assert deliver_all() == ["sent"]
    text = all_text(fake_slack.messages()[0])
    assert "The tickets follow in this channel once Jira" in text
    assert "— ticket to follow" in text
    assert "on its way" not in text


def test_without_a_tracker_the_close_is_the_only_notice(
    two_actions,
    channels,
    fake_slack,
    django_capture_on_commit_callbacks,
):
    retro = two_actions
    close(retro, django_capture_on_commit_callbacks)

    assert [n.occasion.split(":")[0] for n in Notice.objects.all()] == ["retro-closed"] * 2
    assert deliver_all() == ["sent", "sent"]
    text = json.dumps(fake_slack.messages(), ensure_ascii=False)
    assert text.count("tracked in Leakseal (no tracker connected)") == 2
    assert "follow" not in text


def test_no_secret_reaches_the_follow_up(
    two_actions,
    side,
    channels,
    fake_slack,
    fake_teams,
    by_hand,
    django_capture_on_commit_callbacks,
):
    retro = two_actions
    close(retro, django_capture_on_commit_callbacks)
    first, second = pushes_of(retro)
    side.fake.fail("POST", side.create, status=401, times=1)  # the token refused, for good
    assert push.action_push(push_id=first.pk, attempt=0) == "failed"
    assert push.action_push(push_id=second.pk, attempt=0) == "done"
    notices = ticket_notices(retro)
    assert len(notices) == 2

    stored = json.dumps([(n.subject, n.payload) for n in notices], ensure_ascii=False)
    slack, teams = delivered_follow_ups(fake_slack, fake_teams)
    secrets = (
        accounts.JIRA_TOKEN,
        accounts.JIRA_WEBHOOK_SECRET,
        accounts.ADO_PAT,
        accounts.ADO_HOOK_PASSWORD,
        "s3cretWebhookPart",  # the Slack webhook's secret part
        "/workflows/",  # the Teams workflow's URL
    )
    for secret in secrets:
        for text in (stored, slack, teams):
            assert secret not in text
    assert "its ticket could not be made: HTTP 401" in slack


POSTGRES = "postgresql" in settings.DATABASES["default"]["ENGINE"]


@pytest.mark.skipif(
    not POSTGRES, reason="concurrent transactions and row locks: SQLite runs one writer at a time"
)
@pytest.mark.django_db(transaction=True)
def test_two_workers_settling_the_last_two_pushes_at_once_post_one_follow_up(
    two_actions, jira_connection, fake_jira, channels, by_hand
):
    """Both workers have written their own push (failed for good) before either checks whether
    the retro is settled: the retro's row, held here until both wait on it, makes them meet.
    Had each checked with only its own write visible, neither would post; had neither waited
    for the other, both would."""
    retro = two_actions
    services.retro_close(retro=retro, by=retro.facilitator)  # committed: no test transaction
    first, second = pushes_of(retro)
    fake_jira.fail("POST", r"/rest/api/[23]/issue$", status=400, times=2)
    answers: dict[int, str] = {}

    def worker(push_id: int) -> None:
        try:
            answers[push_id] = push.action_push(push_id=push_id, attempt=0)
        finally:
            connections.close_all()

    workers = [threading.Thread(target=worker, args=(p.pk,)) for p in (first, second)]
    with transaction.atomic():
        Retrospective.objects.select_for_update().get(pk=retro.pk)
        for thread in workers:
            thread.start()
        deadline = time.monotonic() + 20
        while _waiting_on_locks() < 2:
            assert time.monotonic() < deadline, "the workers never queued on the retro's row"
            time.sleep(0.05)
        assert set(TicketPush.objects.values_list("state", flat=True)) == {OutboxState.PENDING}
    for thread in workers:
        thread.join(timeout=30)

    assert answers == {first.pk: "failed", second.pk: "failed"}
    assert len(ticket_notices(retro)) == 2  # one per channel


def _waiting_on_locks() -> int:
    """Other sessions of this database waiting for a row lock (ours holds the retro's)."""
    with connections["default"].cursor() as cursor:
        # Within a transaction the activity view is a snapshot taken at its first read.
        cursor.execute("SELECT pg_stat_clear_snapshot()")
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
            " AND wait_event_type = 'Lock' AND pid <> pg_backend_pid()"
        )
        return int(cursor.fetchone()[0])
