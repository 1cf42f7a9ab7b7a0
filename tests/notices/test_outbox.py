"""The notices outbox (notices/): written in the causing transaction, sent at most once per
recipient and occasion, retried on transient failures with Retry-After obeyed up to the ticket
pushes' bound, never re-sent after a worker died mid-send, and shown in the team's delivery log.

Email goes over real SMTP to an aiosmtpd server on loopback.
"""

from __future__ import annotations

import base64
from datetime import timedelta
from typing import Any

import pytest
from django.db import transaction
from django.utils import timezone

from notices import delivery, senders
from notices.models import Channel, Notice, NoticeState
from notices.services import NotInTransaction, notice_enqueue, notice_resend
from tests.conftest import client_for

PNG = base64.b64encode(
    bytes.fromhex(
        "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
        "1f15c4890000000d49444154789c6360000002000154a24f5d0000000049454e44ae426082"
    )
).decode()


def enqueue(team, **overrides: Any) -> Any:  # a Notice, or None for a repeated promise
    fields: dict[str, Any] = {
        "team": team,
        "channel": Channel.EMAIL,
        "recipient": "ada@example.test",
        "occasion": "action-due:1:2026-12-05",
        "kind": "reminder",
        "subject": "Your action is due today",
        "payload": {"text": "Add the missing contract test."},
        **overrides,
    }
    with transaction.atomic():
        return notice_enqueue(**fields)


class StandInSender:
    """A chat sender whose outcome each test sets: None sends, an exception is raised."""

    def __init__(self) -> None:
        self.outcome: Exception | None = None
        self.sent: list[Notice] = []

    def __call__(self, notice: Notice) -> dict[str, Any]:
        if self.outcome is not None:
            raise self.outcome
        self.sent.append(notice)
        return {"ts": "1.2"}


@pytest.fixture
def slack(monkeypatch) -> StandInSender:
    stand_in = StandInSender()
    monkeypatch.setitem(senders.SENDERS, Channel.SLACK, stand_in)
    return stand_in


@pytest.mark.django_db(transaction=True)
def test_a_notice_is_written_only_inside_the_causing_transaction():
    from teams.services import team_create

    team = team_create(name="Outside", slug="outside")
    with pytest.raises(NotInTransaction):
        notice_enqueue(
            team=team,
            channel=Channel.EMAIL,
            recipient="a@x.test",
            occasion="o",
            kind="k",
            subject="s",
        )


def test_a_recipient_hears_of_an_occasion_once(team, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks() as callbacks:
        first = enqueue(team)
    assert first is not None and len(callbacks) == 1  # its delivery is queued on commit
    with transaction.atomic():
        team.name = "Renamed in the same transaction"
        team.save()
        assert enqueue(team) is None  # the same promise again: nothing new
    team.refresh_from_db()
    assert team.name == "Renamed in the same transaction"  # the caller's work stands
    assert enqueue(team, recipient="bob@example.test") is not None
    assert Notice.objects.count() == 2


def test_an_email_is_sent_and_marked_sent(team, mailoutbox):
    notice = enqueue(
        team, payload={"text": "Plain", "html": '<img src="cid:chart">', "images": {"chart": PNG}}
    )
    assert notice is not None
    assert delivery.deliver(notice.pk) == "sent"
    notice.refresh_from_db()
    assert notice.state == NoticeState.SENT and notice.sent_at and notice.attempts == 1
    (message,) = mailoutbox
    assert message.to == ["ada@example.test"] and message.subject == "Your action is due today"
    assert delivery.deliver(notice.pk) == "skipped"  # a second task sends nothing
    assert len(mailoutbox) == 1


def test_a_transient_failure_backs_off_and_tries_again(team, slack, queued):
    notice = enqueue(team, channel=Channel.SLACK, recipient="7")
    slack.outcome = senders.Transient("Slack answered 503")
    assert delivery.deliver(notice.pk) == "retry"
    notice.refresh_from_db()
    assert notice.state == NoticeState.PENDING and notice.last_error == "Slack answered 503"
    ((pk, countdown),) = queued
    assert pk == notice.pk and 1.0 <= countdown <= 2.0  # first backoff: up to 2 s, at least 1
    slack.outcome = None
    notice.next_attempt_at = timezone.now()
    notice.save()
    assert delivery.deliver(notice.pk) == "sent"
    notice.refresh_from_db()
    assert (
        notice.state == NoticeState.SENT and notice.attempts == 2 and notice.result == {"ts": "1.2"}
    )


def test_a_long_retry_after_is_obeyed_by_the_sweep_not_cut_short(team, slack, queued, time_machine):
    notice = enqueue(team, channel=Channel.SLACK, recipient="7")
    slack.outcome = senders.Transient("rate limited", retry_after=75)
    before = timezone.now()
    assert delivery.deliver(notice.pk) == "retry"
    notice.refresh_from_db()
    assert notice.next_attempt_at >= before + timedelta(seconds=75)
    assert queued == []  # too long for a broker countdown: the sweep's job
    assert delivery.deliver(notice.pk) == "skipped"  # an early task does not jump the wait
    assert delivery.sweep() == 0
    time_machine.move_to(notice.next_attempt_at + timedelta(seconds=61))
    assert delivery.sweep() == 1 and queued == [(notice.pk, None)]


def test_a_retry_after_beyond_the_pushes_bound_waits_the_bound_and_says_so(
    team, slack, queued, settings
):
    settings.TRACKER_RETRY_AFTER_MAX = 1800
    notice = enqueue(team, channel=Channel.SLACK, recipient="7")
    slack.outcome = senders.Transient("rate limited", retry_after=7200)
    before = timezone.now()
    assert delivery.deliver(notice.pk) == "retry"
    notice.refresh_from_db()
    assert before + timedelta(seconds=1800) <= notice.next_attempt_at
    assert notice.next_attempt_at <= timezone.now() + timedelta(seconds=1800)
    assert notice.last_error == (
        "rate limited (asked to wait 2 hours, longer than the 30 minutes Leakseal waits at most:"
        " tried again then)"
    )


def test_a_permanent_failure_is_kept_with_its_reason_and_can_be_resent(team, slack, queued):
    notice = enqueue(team, channel=Channel.SLACK, recipient="7")
    slack.outcome = senders.Permanent("the webhook was revoked (404 no_service)")
    assert delivery.deliver(notice.pk) == "failed"
    notice.refresh_from_db()
    assert notice.state == NoticeState.FAILED
    assert notice.last_error == "the webhook was revoked (404 no_service)"
    slack.outcome = None
    notice_resend(notice=notice)
    assert delivery.deliver(notice.pk) == "sent"


def test_retries_end(team, slack, queued, settings):
    settings.NOTICE_MAX_ATTEMPTS = 2
    notice = enqueue(team, channel=Channel.SLACK, recipient="7")
    slack.outcome = senders.Transient("timeout")
    assert delivery.deliver(notice.pk) == "retry"
    Notice.objects.filter(pk=notice.pk).update(next_attempt_at=timezone.now())
    assert delivery.deliver(notice.pk) == "failed"
    notice.refresh_from_db()
    assert (
        notice.state == NoticeState.FAILED and "gave up after 2 tries: timeout" in notice.last_error
    )


def test_a_worker_that_died_mid_send_leaves_it_interrupted_never_resent(
    team, slack, queued, time_machine
):
    notice = enqueue(team, channel=Channel.SLACK, recipient="7")
    taken = delivery._take(notice.pk)  # the worker took it, then was killed
    assert taken is not None
    time_machine.move_to(timezone.now() + delivery.LEASE + timedelta(seconds=1))
    assert delivery.sweep() == 0
    notice.refresh_from_db()
    assert notice.state == NoticeState.INTERRUPTED and "may have gone out" in notice.last_error
    assert delivery.deliver(notice.pk) == "skipped" and slack.sent == []


def test_email_goes_over_real_smtp_with_its_chart_inline(team, smtp):
    notice = enqueue(
        team,
        payload={
            "text": "Weekly digest",
            "html": '<p><img src="cid:trend" alt="trend"></p>',
            "images": {"trend": PNG},
        },
    )
    assert delivery.deliver(notice.pk) == "sent"
    (message,) = smtp.received
    assert message["To"] == "ada@example.test"
    assert message["Subject"] == "Your action is due today"
    parts = {part.get_content_type(): part for part in message.walk()}
    assert parts["text/plain"].get_content().strip() == "Weekly digest"
    assert 'src="cid:trend"' in parts["text/html"].get_content()
    assert parts["image/png"]["Content-ID"] == "<trend>"
    assert parts["image/png"].get_content() == base64.b64decode(PNG)


@pytest.mark.parametrize(
    ("answer", "result", "state"),
    [
        ("550 5.1.1 No such user", "failed", NoticeState.FAILED),
        ("451 4.3.0 Try later", "retry", NoticeState.PENDING),
    ],
)
def test_an_smtp_refusal_is_permanent_or_transient_by_its_code(
    team, smtp, queued, answer, result, state
):
    smtp.answer = answer
    notice = enqueue(team)
    assert delivery.deliver(notice.pk) == result
    notice.refresh_from_db()
    assert notice.state == state and "ada@example.test" in notice.last_error


def test_a_mail_server_that_is_not_there_is_transient(team, settings, queued):
    settings.MAILERS = {
        "default": {
            "BACKEND": "django.core.mail.backends.smtp.EmailBackend",
            "OPTIONS": {"host": "127.0.0.1", "port": 9, "timeout": 2, "use_tls": False},
        }
    }
    notice = enqueue(team)
    assert delivery.deliver(notice.pk) == "retry"
    notice.refresh_from_db()
    assert "could not be reached" in notice.last_error


def test_the_delivery_log_shows_each_notice_and_why_it_failed(
    team, owner, member, outsider, slack, queued
):
    notice = enqueue(team, channel=Channel.SLACK, recipient="7", subject="Retro closed: Checkout")
    slack.outcome = senders.Permanent("the webhook was revoked")
    delivery.deliver(notice.pk)
    page = client_for(owner).get(f"/t/{team.slug}/notices/")
    html = page.content.decode()
    assert page.status_code == 200
    assert (
        "Retro closed: Checkout" in html and "the webhook was revoked" in html and "Resend" in html
    )
    assert client_for(member).get(f"/t/{team.slug}/notices/").status_code == 403
    assert client_for(outsider).get(f"/t/{team.slug}/notices/").status_code == 404
    assert (
        client_for(outsider).post(f"/t/{team.slug}/notices/{notice.pk}/resend/").status_code == 404
    )
    response = client_for(owner).post(f"/t/{team.slug}/notices/{notice.pk}/resend/")
    assert response.status_code == 302
    notice.refresh_from_db()
    assert notice.state == NoticeState.PENDING and notice.attempts == 0


def test_the_delivery_log_pages_in_place_for_htmx_and_varies_on_it(team, owner):
    for n in range(55):
        enqueue(team, occasion=f"action-due:{n}:2026-12-05", subject=f"Reminder {n}")
    client = client_for(owner)
    whole = client.get(f"/t/{team.slug}/notices/")
    assert "HX-Request" in whole["Vary"]
    assert "<html" in whole.content.decode() and "Page 1 of 2" in whole.content.decode()
    part = client.get(f"/t/{team.slug}/notices/?page=2", headers={"HX-Request": "true"})
    html = part.content.decode()
    assert "<html" not in html and 'id="delivery-results"' in html
    assert "Reminder 0" in html and "Reminder 54" not in html  # newest first


def test_beat_runs_the_tick_and_the_sweep_and_the_tick_runs_every_calendar_notice(db, settings):
    """The calendar's notices go out only if beat runs the tick: it is in the schedule, the
    tasks are registered, and the tick reaches reminders, chat reminders and digests."""
    from config.celery import registered_task
    from notices import schedule

    tasks = {entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values()}
    assert {"notices.tick", "notices.sweep"} <= tasks
    for name in ("notices.tick", "notices.sweep", "notices.deliver"):
        assert registered_task(name).name == name
    registered = {f"{f.__module__}.{f.__name__}" for f in schedule.SCHEDULED}
    assert {
        "retros.reminders.send_reminders",
        "retros.chat_reminders.action_reminders_to_chat",
        "insights.digest.send_digests",
    } <= registered, registered
