"""Chat notices (notices/chat.py): a team admin connects Slack or Microsoft Teams channels,
and a retro's start and close are posted there over real HTTP to fake Slack and Teams
servers that check every request against the vendors' documented contracts
(tests/fakes/specs/chat/slack_messages.schema.json, teams_message.schema.json).

The URL or token of a channel is a secret: never in a page, a log line, a notice's payload
or the audit trail.
"""

from __future__ import annotations

import json
import logging
import socket
from datetime import UTC, date, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
from django.contrib.auth.models import User
from django.urls import reverse
from django.utils import timezone

from audit.models import Action, AuditEntry
from notices import delivery
from notices.chat import slack_message, teams_message
from notices.models import ChatConnection, ChatEvent, ChatKind, Notice, NoticeState
from notices.preferences import preferences_save
from notices.services_chat import chat_connection_save
from retros import services
from retros.chat_reminders import MAX_LISTED, action_reminders_to_chat
from retros.models import Phase, PreventativeAction, Retrospective
from teams.models import Role
from teams.services import membership_set
from tests.conftest import client_for
from tests.fakes.chat_server import Answer, problems, validator
from tests.fakes.slack import POST_MESSAGE
from tests.integrations.pushing import ready_retro
from tests.notices.broker import hold_deliveries
from tests.retros.conftest import make_escape

ALL_EVENTS = [e.value for e in ChatEvent]
BOT_TOKEN = "xoxb-1111-2222-s3cretBotToken"


@pytest.fixture(autouse=True)
def queued(monkeypatch) -> list[int]:
    """Deliveries queued (instead of a broker); the tests deliver them by hand."""
    return hold_deliveries(monkeypatch)


@pytest.fixture(autouse=True)
def _site_url(settings):
    settings.SITE_URL = "https://leakseal.example.test"


def connect(team, kind: str, secret: str, *, channel_id: str = "", events=None, name=None):
    return chat_connection_save(
        team=team,
        stored=None,
        values={
            "kind": kind,
            "name": name or f"#{kind}",
            "secret": secret,
            "channel_id": channel_id,
            "events": ALL_EVENTS if events is None else events,
        },
        by=None,
    )


def deliver_all() -> list[str]:
    return [
        delivery.deliver(pk) for pk in Notice.objects.order_by("pk").values_list("pk", flat=True)
    ]


def start_retro(team, facilitator, escapes, title="Release 4.2 retro"):
    return services.retro_create(team=team, facilitator=facilitator, title=title, escapes=escapes)


def all_text(message: dict) -> str:
    return json.dumps(message, ensure_ascii=False)


# --- Connecting on the settings page.


def test_an_admin_connects_a_slack_webhook_and_never_sees_it_again(team, owner, fake_slack):
    url = fake_slack.webhook()
    client = client_for(owner)
    page = reverse("chat_connections", kwargs={"team": team.slug})
    response = client.post(
        page,
        {"kind": ChatKind.SLACK_WEBHOOK, "name": "#payments", "secret": url, "events": ALL_EVENTS},
    )
    assert response.status_code == 302
    connection = ChatConnection.objects.get(team=team)
    assert connection.secret == url and url not in connection.secret_encrypted
    for view in (
        page,
        reverse("chat_connection_edit", kwargs={"team": team.slug, "pk": connection.pk}),
    ):
        html = client.get(view).content.decode()
        assert "#payments" in html and "s3cretWebhookPart" not in html
    entry = AuditEntry.objects.get(team=team, action=Action.CHAT_CONNECTED)
    assert entry.changes["secret"] == "set" and "s3cret" not in json.dumps(entry.changes)


@pytest.mark.parametrize(
    ("kind", "secret", "channel_id", "field", "says"),
    [
        (
            ChatKind.SLACK_WEBHOOK,
            "http://hooks.slack.com/services/T1/B2/abc",
            "",
            "secret",
            "https://",
        ),
        (
            ChatKind.SLACK_WEBHOOK,
            "https://hooks.example.com/services/T1/B2/abc",
            "",
            "secret",
            "hooks.slack.com",
        ),
        (ChatKind.SLACK_WEBHOOK, "https://hooks.slack.com/services/T1", "", "secret", "incomplete"),
        (
            ChatKind.TEAMS_WEBHOOK,
            "https://evil.example/workflows/1",
            "",
            "secret",
            "logic.azure.com",
        ),
        (
            ChatKind.TEAMS_WEBHOOK,
            "http://prod-1.westeurope.logic.azure.com/workflows/1",
            "",
            "secret",
            "https://",
        ),
        (ChatKind.SLACK_BOT, "xoxp-user-token", "C0123ABCD", "secret", "xoxb-"),
        (ChatKind.SLACK_BOT, BOT_TOKEN, "#general", "channel_id", "C0123ABCD"),
        (ChatKind.SLACK_BOT, BOT_TOKEN, "", "channel_id", "enter it"),
        (ChatKind.SLACK_WEBHOOK, "", "", "secret", "Enter the webhook URL"),
    ],
)
def test_a_bad_url_token_or_channel_is_refused_at_save(
    team, owner, kind, secret, channel_id, field, says
):
    response = client_for(owner).post(
        reverse("chat_connections", kwargs={"team": team.slug}),
        {"kind": kind, "name": "#x", "secret": secret, "channel_id": channel_id},
    )
    assert response.status_code == 400
    errors = response.context["form"].errors[field]
    assert any(says in e for e in errors), errors
    assert not ChatConnection.objects.exists()
    if secret:
        assert secret not in response.content.decode()  # not echoed back either


def test_real_vendor_urls_are_accepted(team, owner):
    for kind, secret in [
        (
            ChatKind.SLACK_WEBHOOK,
            "https://hooks.slack.com/services/T0AB12CD3/B0EF45GH6/AbCdEf123456",
        ),
        (
            ChatKind.TEAMS_WEBHOOK,
            "https://prod-12.westeurope.logic.azure.com:443/workflows/abc/triggers/manual/paths/invoke?api-version=2016-06-01&sig=x",
        ),
        (
            ChatKind.TEAMS_WEBHOOK,
            "https://acme.webhook.office.com/webhookb2/a@b/IncomingWebhook/c/d",
        ),
    ]:
        response = client_for(owner).post(
            reverse("chat_connections", kwargs={"team": team.slug}),
            {"kind": kind, "name": f"#{secret[8:20]}", "secret": secret, "events": ALL_EVENTS},
        )
        assert response.status_code == 302, response.context["form"].errors
    assert ChatConnection.objects.filter(team=team).count() == 3


def test_changing_keeps_the_secret_when_left_empty_and_disconnecting_is_audited(
    team, owner, fake_slack
):
    connection = connect(team, ChatKind.SLACK_WEBHOOK, fake_slack.webhook())
    client = client_for(owner)
    edit = reverse("chat_connection_edit", kwargs={"team": team.slug, "pk": connection.pk})
    response = client.post(
        edit,
        {
            "kind": ChatKind.SLACK_WEBHOOK,
            "name": "#renamed",
            "secret": "",
            "events": ["retro_closed"],
        },
    )
    assert response.status_code == 302
    connection.refresh_from_db()
    assert (connection.name, connection.events) == ("#renamed", ["retro_closed"])
    assert connection.secret.endswith("s3cretWebhookPart")
    changed = AuditEntry.objects.get(action=Action.CHAT_CHANGED)
    assert changed.changes["name"] == {"from": f"#{ChatKind.SLACK_WEBHOOK}", "to": "#renamed"}
    assert "secret" not in changed.changes
    client.post(reverse("chat_connection_delete", kwargs={"team": team.slug, "pk": connection.pk}))
    assert not ChatConnection.objects.exists()
    assert AuditEntry.objects.get(action=Action.CHAT_DISCONNECTED).changes == {"secret": "cleared"}


def test_send_a_test_message_says_whether_it_went(team, owner, fake_slack):
    url = fake_slack.webhook()
    connection = connect(team, ChatKind.SLACK_WEBHOOK, url, name="#payments")
    client = client_for(owner)
    test = reverse("chat_connection_test", kwargs={"team": team.slug, "pk": connection.pk})
    page = client.post(test, follow=True).content.decode()
    assert "A test message went to #payments." in page
    assert "Leakseal test message" in fake_slack.messages()[0]["text"]
    fake_slack.revoke(url)
    page = client.post(test, follow=True).content.decode()
    assert "Slack says the webhook no longer exists: reconnect the channel (404 no_service)" in page
    assert "s3cretWebhookPart" not in page


# --- What is posted, and when.


def test_a_retro_start_posts_its_join_link_to_slack_and_teams(
    team, facilitator, escape, fake_slack, fake_teams, queued, django_capture_on_commit_callbacks
):
    connect(team, ChatKind.SLACK_WEBHOOK, fake_slack.webhook())
    connect(team, ChatKind.TEAMS_WEBHOOK, fake_teams.workflow())
    with django_capture_on_commit_callbacks(execute=True):
        retro = start_retro(team, facilitator, [escape])
    notices = Notice.objects.filter(occasion=f"retro-started:{retro.pk}")
    assert sorted(n.channel for n in notices) == ["slack", "teams"]
    assert sorted(queued) == sorted(n.pk for n in notices)  # queued when the start commits
    assert deliver_all() == ["sent", "sent"]
    from retros.views_join import retro_join_url

    link = f"https://leakseal.example.test{retro_join_url(retro)}"
    slack = fake_slack.messages()[0]
    assert slack["text"].startswith("Retro started: Release 4.2 retro")
    assert slack["blocks"][-1]["elements"][0]["url"] == link
    assert escape.title in all_text(slack)
    card = fake_teams.cards()[0]
    assert card["version"] == "1.4" and card["actions"][0]["url"] == link
    assert escape.title in all_text(card)


def test_a_retro_close_posts_escapes_root_causes_and_actions(
    team, facilitator, member, stages, escape, fake_slack, fake_teams
):
    connect(team, ChatKind.SLACK_WEBHOOK, fake_slack.webhook(), events=["retro_closed"])
    connect(team, ChatKind.TEAMS_WEBHOOK, fake_teams.workflow(), events=["retro_closed"])
    retro = ready_retro(team, facilitator, member, stages, [escape])
    assert not Notice.objects.exists()  # neither channel asked for retro starts
    services.retro_close(retro=retro, by=facilitator)
    assert deliver_all() == ["sent", "sent"]
    for message in (fake_slack.messages()[0], fake_teams.cards()[0]):
        text = all_text(message)
        assert "Retro closed: Release 2026.11.1 retro" in text
        assert escape.title in text
        assert "Integration tests stub the gateway with instant answers" in text  # root cause
        assert "Latency contract test for" in text  # the action
        assert "tracked in Leakseal (no tracker connected)" in text
        assert f"/retros/{retro.pk}/summary/" in text


def test_nothing_is_posted_without_a_chat_channel(team, facilitator, escape, queued):
    start_retro(team, facilitator, [escape])
    assert not Notice.objects.exists() and queued == []


def test_a_long_retro_stays_within_block_kit_limits(
    team, facilitator, stages, fake_slack, fake_teams
):
    connect(team, ChatKind.SLACK_WEBHOOK, fake_slack.webhook())
    connect(team, ChatKind.TEAMS_WEBHOOK, fake_teams.workflow())
    escapes = [make_escape(team, title=f"Escape {i} " + "x" * 150) for i in range(40)]
    start_retro(team, facilitator, escapes, title="T" * 200)
    assert deliver_all() == ["sent", "sent"]  # the fakes refuse what breaks the contract
    blocks = fake_slack.messages()[0]["blocks"]
    assert len(blocks) <= 50
    assert "more in Leakseal" in all_text(blocks)


def test_block_kit_caps_blocks_and_section_text():
    payload = {
        "title": "x" * 500,
        "lines": ["y" * 5000],
        "sections": [{"heading": f"h{i}", "items": ["z" * 2999, "w" * 10]} for i in range(60)],
        "link": {"text": "Open", "url": "https://leakseal.example.test/x"},
    }
    message = slack_message(payload)
    check = validator("slack_messages.schema.json", "incoming_webhook")
    assert problems(check, message) == []
    assert len(message["blocks"]) == 50
    assert message["blocks"][-1]["text"]["text"].startswith("…and")


def test_slack_text_escapes_mrkdwn_control_characters():
    message = slack_message({"title": "A <b> & C", "lines": ["x < y > z & <!channel>"]})
    assert message["text"] == "A &lt;b&gt; &amp; C"
    assert message["blocks"][1]["text"]["text"] == "x &lt; y &gt; z &amp; &lt;!channel&gt;"
    assert message["blocks"][0]["text"]["text"] == "A <b> & C"  # plain_text: shown as written


def test_a_ticket_item_links_its_key_and_nothing_in_it_breaks_the_link():
    ticket = {"key": "SHOP-7", "url": "https://x.test/a|b?c=(1)&d", "text": "Add <b> test"}
    payload = {"title": "Tickets", "sections": [{"heading": "Tickets", "items": [ticket, "plain"]}]}

    slack = slack_message(payload)["blocks"][1]["text"]["text"]
    assert slack == (
        "*Tickets*\n• <https://x.test/a%7Cb?c=(1)&amp;d|SHOP-7> — Add &lt;b&gt; test\n• plain"
    )
    teams = teams_message(payload)["attachments"][0]["content"]["body"][2]["text"]
    assert teams == "- [SHOP-7](https://x.test/a|b?c=%281%29&d) — Add <b> test\r- plain"
    no_url = {"sections": [{"heading": "T", "items": [{"key": "SHOP-8", "text": "t"}]}]}
    assert slack_message(no_url)["blocks"][1]["text"]["text"] == "*T*\n• SHOP-8 — t"


def test_a_channel_only_gets_the_events_it_chose(team, facilitator, escape, fake_slack):
    connect(team, ChatKind.SLACK_WEBHOOK, fake_slack.webhook(), events=["push_failed"])
    start_retro(team, facilitator, [escape])
    assert not Notice.objects.exists()


# --- Failures: transient ones retried (Retry-After obeyed), permanent ones shown.


def _make_due(notice: Notice) -> None:
    Notice.objects.filter(pk=notice.pk).update(next_attempt_at=timezone.now())


def test_slack_429_retry_after_is_honoured_then_it_goes(team, facilitator, escape, fake_slack):
    url = fake_slack.webhook()
    connect(team, ChatKind.SLACK_WEBHOOK, url)
    start_retro(team, facilitator, [escape])
    notice = Notice.objects.get()
    path = url.removeprefix(fake_slack.url)
    fake_slack.answer_next(path, Answer(429, "rate_limited", {"Retry-After": "120"}))
    before = timezone.now()
    assert delivery.deliver(notice.pk) == "retry"
    notice.refresh_from_db()
    assert notice.state == NoticeState.PENDING
    assert notice.next_attempt_at is not None
    assert notice.next_attempt_at >= before + timedelta(seconds=120)
    assert "rate limiting" in notice.last_error
    assert delivery.deliver(notice.pk) == "skipped"  # not before its time
    _make_due(notice)
    assert delivery.deliver(notice.pk) == "sent"
    assert len(fake_slack.posts(path)) == 2


def test_teams_5xx_then_success(team, facilitator, escape, fake_teams):
    url = fake_teams.workflow()
    connect(team, ChatKind.TEAMS_WEBHOOK, url)
    start_retro(team, facilitator, [escape])
    notice = Notice.objects.get()
    path = fake_teams.path(url)
    fake_teams.answer_next(
        path, Answer(502, {"error": {"code": "BadGateway", "message": "x"}}), times=2
    )
    assert delivery.deliver(notice.pk) == "retry"
    _make_due(notice)
    assert delivery.deliver(notice.pk) == "retry"
    _make_due(notice)
    assert delivery.deliver(notice.pk) == "sent"
    notice.refresh_from_db()
    assert (notice.state, notice.attempts, notice.last_error) == (NoticeState.SENT, 3, "")


def test_a_revoked_slack_webhook_fails_with_its_reason_in_the_delivery_log(
    team, owner, facilitator, escape, fake_slack
):
    url = fake_slack.webhook()
    connect(team, ChatKind.SLACK_WEBHOOK, url)
    fake_slack.revoke(url)
    start_retro(team, facilitator, [escape])
    assert deliver_all() == ["failed"]
    notice = Notice.objects.get()
    message = "Slack says the webhook no longer exists: reconnect the channel (404 no_service)"
    assert (notice.state, notice.last_error) == (NoticeState.FAILED, message)
    log = client_for(owner).get(reverse("delivery_log", kwargs={"team": team.slug}))
    html = log.content.decode()
    assert message in html
    # The row names the channel as the team knows it, not the connection's id.
    name = ChatConnection.objects.get().name
    assert f"Slack: {name}" in html


def test_a_removed_teams_workflow_fails_with_its_reason(team, facilitator, escape, fake_teams):
    url = fake_teams.workflow()
    connect(team, ChatKind.TEAMS_WEBHOOK, url)
    fake_teams.remove(url)
    start_retro(team, facilitator, [escape])
    assert deliver_all() == ["failed"]
    assert Notice.objects.get().last_error == (
        "Microsoft Teams says the workflow or webhook no longer exists: reconnect the channel "
        "(404 WorkflowNotFound)"
    )


def test_a_slack_bot_posts_with_chat_post_message(team, facilitator, escape, fake_slack):
    fake_slack.bot(BOT_TOKEN, "C0123ABCD")
    connect(team, ChatKind.SLACK_BOT, BOT_TOKEN, channel_id="C0123ABCD")
    start_retro(team, facilitator, [escape])
    assert deliver_all() == ["sent"]
    request = fake_slack.posts(POST_MESSAGE)[0]
    assert request.headers["authorization"] == f"Bearer {BOT_TOKEN}"
    assert request.json()["channel"] == "C0123ABCD"
    notice = Notice.objects.get()
    assert notice.result["channel"] == "C0123ABCD" and notice.result["ts"]


@pytest.mark.parametrize(
    ("token", "channel", "says"),
    [
        (
            "xoxb-9-revoked",
            "C0123ABCD",
            "Slack says the bot token is not valid: reconnect the channel (invalid_auth)",
        ),
        (
            BOT_TOKEN,
            "C0999ZZZZ",
            "Slack says the channel id is wrong or the bot cannot see it (channel_not_found)",
        ),
    ],
)
def test_slack_ok_false_answers_fail_for_good(
    team, facilitator, escape, fake_slack, token, channel, says
):
    fake_slack.bot(BOT_TOKEN, "C0123ABCD")
    connect(team, ChatKind.SLACK_BOT, token, channel_id=channel)
    start_retro(team, facilitator, [escape])
    assert deliver_all() == ["failed"]
    assert Notice.objects.get().last_error == says


def test_slack_bot_rate_limited_is_retried_after_retry_after(team, facilitator, escape, fake_slack):
    fake_slack.bot(BOT_TOKEN, "C0123ABCD")
    connect(team, ChatKind.SLACK_BOT, BOT_TOKEN, channel_id="C0123ABCD")
    start_retro(team, facilitator, [escape])
    fake_slack.answer_next(
        POST_MESSAGE, Answer(429, {"ok": False, "error": "ratelimited"}, {"Retry-After": "30"})
    )
    before = timezone.now()
    assert deliver_all() == ["retry"]
    due = Notice.objects.get().next_attempt_at
    assert due is not None and due >= before + timedelta(seconds=30)


def test_a_timeout_is_transient(team, facilitator, escape, settings):
    # A listener that never answers: the connection is taken, the answer never comes.
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(5)
    origin = f"http://127.0.0.1:{silent.getsockname()[1]}"
    settings.CHAT_EXTRA_ORIGINS = [origin]
    settings.CHAT_READ_TIMEOUT = 0.3
    try:
        connect(team, ChatKind.SLACK_WEBHOOK, f"{origin}/services/T1/B2/s3cretWebhookPart")
        start_retro(team, facilitator, [escape])
        assert deliver_all() == ["retry"]
    finally:
        silent.close()
    assert Notice.objects.get().last_error == "Slack did not answer in time"


def test_a_disconnected_channel_fails_its_pending_notices(team, facilitator, escape, fake_slack):
    connection = connect(team, ChatKind.SLACK_WEBHOOK, fake_slack.webhook())
    start_retro(team, facilitator, [escape])
    connection.delete()
    assert deliver_all() == ["failed"]
    assert "disconnected" in Notice.objects.get().last_error


def test_the_secret_is_never_logged_nor_in_a_payload(
    team, owner, facilitator, escape, fake_slack, fake_teams, caplog
):
    caplog.set_level(logging.DEBUG)
    slack_url = fake_slack.webhook()
    teams_url = fake_teams.workflow()
    client = client_for(owner)
    page = reverse("chat_connections", kwargs={"team": team.slug})
    client.post(
        page,
        {"kind": ChatKind.SLACK_WEBHOOK, "name": "#s", "secret": slack_url, "events": ALL_EVENTS},
    )
    client.post(
        page,
        {"kind": ChatKind.TEAMS_WEBHOOK, "name": "#t", "secret": teams_url, "events": ALL_EVENTS},
    )
    fake_bot = connect(team, ChatKind.SLACK_BOT, BOT_TOKEN, channel_id="C0123ABCD")
    start_retro(team, facilitator, [escape])
    fake_slack.revoke(slack_url)
    assert sorted(deliver_all()) == ["failed", "failed", "sent"]  # the bot is unknown to the fake
    teams_sig = parse_qs(urlsplit(teams_url).query)["sig"][0]  # the workflow URL's secret
    secrets = ("s3cretWebhookPart", teams_url.removeprefix(fake_teams.url), teams_sig, BOT_TOKEN)
    stored = json.dumps(list(Notice.objects.values("payload", "last_error", "result", "recipient")))
    stored += json.dumps(list(AuditEntry.objects.values("changes", "target")))
    html = client.get(page).content.decode()
    html += client.get(reverse("delivery_log", kwargs={"team": team.slug})).content.decode()
    html += client.get(
        reverse("chat_connection_edit", kwargs={"team": team.slug, "pk": fake_bot.pk})
    ).content.decode()
    for secret in secrets:
        assert secret not in caplog.text
        assert secret not in stored
        assert secret not in html


def test_only_team_admins_see_the_page_and_only_their_teams_channels(
    team, other_team, owner, member, outsider, fake_slack
):
    theirs = connect(other_team, ChatKind.SLACK_WEBHOOK, fake_slack.webhook())
    assert (
        client_for(member).get(reverse("chat_connections", kwargs={"team": team.slug})).status_code
        == 403
    )
    edit = reverse("chat_connection_edit", kwargs={"team": team.slug, "pk": theirs.pk})
    assert client_for(owner).get(edit).status_code == 404
    test = reverse("chat_connection_test", kwargs={"team": team.slug, "pk": theirs.pk})
    assert client_for(owner).post(test).status_code == 404
    assert fake_slack.messages() == []


# --- The daily action reminder: one message per channel and local day, at 09:00 in the
# team's zone, with the actions due today, due in two days and overdue (retros/chat_reminders.py).

# The team (tests/conftest.py) is in Europe/Berlin: on 10 December 2026 09:00 is 08:00 UTC.
DAY = date(2026, 12, 10)
AT_NINE = datetime(2026, 12, 10, 8, 0, tzinfo=UTC)
# The reminder's queries, whatever the number of actions (10 today: a query per action would
# make 28 more in the capped test).
QUERIES = 12
SUMMARY = "https://leakseal.example.test/t/checkout/retros/{pk}/summary/#escape-{escape}"


@pytest.fixture
def ada(team) -> User:
    user = User.objects.create_user(
        "ada", "ada@example.test", "pw", first_name="Ada", last_name="Lovelace"
    )
    membership_set(team=team, user=user, role=Role.MEMBER)
    return user


@pytest.fixture
def act(team, owner, escape, ada):
    """An action of a closed retro, owned by Ada unless told, due on `due`."""
    retro = Retrospective.objects.create(
        team=team,
        title="November retro",
        facilitator=owner,
        phase=Phase.CLOSED,
        closed_at=timezone.now(),
    )

    def make(due: date | None, title: str, **fields) -> PreventativeAction:
        fields.setdefault("owner", ada)
        return PreventativeAction.objects.create(
            retro=fields.pop("retro", retro),
            escape=escape,
            kind="new_test",
            title=title,
            due_date=due,
            **fields,
        )

    return make


def reminder_sections() -> dict[str, list[str]]:
    notice = Notice.objects.get()
    return {part["heading"]: part["items"] for part in notice.payload["sections"]}


def test_overdue_actions_are_posted_once_a_day_at_nine_local(
    team, facilitator, member, stages, escape, fake_teams
):
    team.timezone = "Europe/Berlin"
    team.save()
    connect(team, ChatKind.TEAMS_WEBHOOK, fake_teams.workflow(), events=["action_overdue"])
    retro = ready_retro(team, facilitator, member, stages, [escape])
    services.retro_close(retro=retro, by=facilitator)
    action = retro.actions.get()
    action.due_date = date(2026, 3, 27)
    action.save()

    # 07:59 UTC is 08:59 in Berlin (CET): not yet.
    assert action_reminders_to_chat(datetime(2026, 3, 28, 7, 59, tzinfo=UTC)) == 0
    assert action_reminders_to_chat(datetime(2026, 3, 28, 8, 0, tzinfo=UTC)) == 1
    assert action_reminders_to_chat(datetime(2026, 3, 28, 8, 5, tzinfo=UTC)) == 0  # once a day
    # Sunday 29 March is the spring-forward day: 09:00 CEST is 07:00 UTC.
    assert action_reminders_to_chat(datetime(2026, 3, 29, 6, 59, tzinfo=UTC)) == 0
    assert action_reminders_to_chat(datetime(2026, 3, 29, 7, 0, tzinfo=UTC)) == 1
    assert [n.occasion for n in Notice.objects.order_by("pk")] == [
        f"actions-overdue:{team.pk}:2026-03-28",
        f"actions-overdue:{team.pk}:2026-03-29",
    ]
    assert deliver_all() == ["sent", "sent"]
    card = all_text(fake_teams.cards()[0])
    assert "Preventative actions: 1 overdue" in card and "1 day overdue" in card
    assert action.title in card

    action.done_at = timezone.now()
    action.save()
    assert action_reminders_to_chat(datetime(2026, 3, 30, 7, 0, tzinfo=UTC)) == 0  # done: quiet


def test_the_reminder_groups_actions_due_today_due_in_two_days_and_overdue(
    team, escape, act, member, fake_slack
):
    connect(team, ChatKind.SLACK_WEBHOOK, fake_slack.webhook(), events=["action_overdue"])
    today = act(DAY, "Today's guard")
    soon = act(DAY + timedelta(days=2), "Soon guard", owner=member)
    act(DAY + timedelta(days=1), "Tomorrow's guard")  # reminded yesterday and on the day
    act(DAY + timedelta(days=3), "Later guard")
    late = act(DAY - timedelta(days=3), "Late guard", external_key="QA-7")
    yesterday = act(DAY - timedelta(days=1), "Yesterday's guard", owner=None)
    act(None, "Undated guard")

    assert action_reminders_to_chat(AT_NINE) == 1
    link = SUMMARY.format(pk=today.retro_id, escape=escape.pk)
    where = f"escape: {escape.title}"
    assert reminder_sections() == {
        "Due today": [f"Ada Lovelace: Today's guard ({where}; due Thu 2026-12-10) {link}"],
        "Due in 2 days": [f"mia: Soon guard ({where}; due Sat 2026-12-12) {link}"],
        "Overdue": [
            f"Ada Lovelace: Late guard ({where}; 3 days overdue, due 2026-12-07, ticket QA-7) "
            f"{link}",
            f"No owner (someone needs to take it): Yesterday's guard ({where}; 1 day overdue, "
            f"due 2026-12-09) {link}",
        ],
    }
    notice = Notice.objects.get()
    assert notice.subject == "Preventative actions: 1 due today, 1 due in 2 days, 2 overdue"
    assert soon.title in all_text(notice.payload) and late.title in all_text(notice.payload)
    assert yesterday.owner is None

    assert deliver_all() == ["sent"]
    blocks = all_text(fake_slack.messages()[0]["blocks"])
    assert "*Due today*" in blocks and "*Due in 2 days*" in blocks and "*Overdue*" in blocks
    assert "• Ada Lovelace: Today's guard" in blocks


def test_a_long_group_is_capped_with_the_count_of_the_rest(
    team, act, fake_teams, django_assert_max_num_queries
):
    connect(team, ChatKind.TEAMS_WEBHOOK, fake_teams.workflow(), events=["action_overdue"])
    for n in range(MAX_LISTED + 3):
        act(DAY, f"Guard {n}")

    with django_assert_max_num_queries(QUERIES):  # not one more per action
        assert action_reminders_to_chat(AT_NINE) == 1
    items = reminder_sections()["Due today"]
    assert len(items) == MAX_LISTED + 1 and items[-1] == "…and 3 more in Leakseal"
    assert Notice.objects.get().subject == f"Preventative actions: {MAX_LISTED + 3} due today"
    assert deliver_all() == ["sent"]


def test_an_owner_who_muted_reminders_is_left_out_of_chat_too(
    team, escape, act, ada, member, fake_slack
):
    connect(team, ChatKind.SLACK_WEBHOOK, fake_slack.webhook(), events=["action_overdue"])
    preferences_save(user=ada, mute_reminders=True, digest_all_teams=False, digest_teams=[])
    act(DAY, "Ada's guard today")
    act(DAY - timedelta(days=2), "Ada's late guard")
    mias = act(DAY - timedelta(days=2), "Mia's late guard", owner=member)

    assert action_reminders_to_chat(AT_NINE) == 1
    link = SUMMARY.format(pk=mias.retro_id, escape=escape.pk)
    assert reminder_sections() == {
        "Overdue": [
            f"mia: Mia's late guard (escape: {escape.title}; 2 days overdue, due 2026-12-08) {link}"
        ]
    }
    assert "Ada" not in all_text(Notice.objects.get().payload)


def test_done_actions_never_appear_whether_done_in_leakseal_or_by_their_ticket(
    team, act, fake_slack
):
    connect(team, ChatKind.SLACK_WEBHOOK, fake_slack.webhook(), events=["action_overdue"])
    act(DAY, "Marked done", done_at=timezone.now())
    act(
        DAY - timedelta(days=4),
        "Ticket done",
        external_key="QA-9",
        push_state="pushed",
        external_status="Done",
        done_at=timezone.now(),  # what the tracker's sync sets (integrations/sync.py)
    )
    act(DAY, "Still open")

    assert action_reminders_to_chat(AT_NINE) == 1
    assert list(reminder_sections()) == ["Due today"]
    text = all_text(Notice.objects.get().payload)
    assert "Still open" in text and "Marked done" not in text and "Ticket done" not in text


def test_nothing_is_posted_when_nothing_is_due(team, owner, act, ada, fake_slack):
    connect(team, ChatKind.SLACK_WEBHOOK, fake_slack.webhook(), events=["action_overdue"])
    preferences_save(user=ada, mute_reminders=True, digest_all_teams=False, digest_teams=[])
    act(DAY - timedelta(days=1), "Muted owner's", owner=ada)
    act(DAY, "Done today", owner=owner, done_at=timezone.now())
    act(DAY + timedelta(days=1), "Tomorrow", owner=owner)
    act(DAY + timedelta(days=5), "Next week", owner=owner)
    act(None, "Undated", owner=owner)
    still_open = Retrospective.objects.create(team=team, title="Open retro", facilitator=owner)
    act(DAY - timedelta(days=1), "Still being agreed", owner=owner, retro=still_open)

    assert action_reminders_to_chat(AT_NINE) == 0
    assert not Notice.objects.exists() and fake_slack.messages() == []


def test_each_channel_gets_one_message_a_day_in_slack_and_teams_shapes(
    team, other_team, act, fake_slack, fake_teams
):
    connect(team, ChatKind.SLACK_WEBHOOK, fake_slack.webhook(), events=["action_overdue"])
    connect(team, ChatKind.TEAMS_WEBHOOK, fake_teams.workflow(), events=["action_overdue"])
    connect(
        team, ChatKind.SLACK_WEBHOOK, fake_slack.webhook("s3cretOther"), events=[], name="#quiet"
    )
    act(DAY, "Due today")
    act(DAY + timedelta(days=2), "Due soon")
    act(DAY - timedelta(days=6), "Long overdue")

    assert action_reminders_to_chat(AT_NINE) == 2  # the channel without the event gets none
    assert action_reminders_to_chat(AT_NINE + timedelta(hours=9)) == 0  # same day: once
    assert Notice.objects.count() == 2
    assert deliver_all() == ["sent", "sent"]  # the fakes checked both vendors' contracts
    (slack,) = fake_slack.messages()
    (card,) = fake_teams.cards()
    assert slack["text"].startswith("Preventative actions: 1 due today, 1 due in 2 days")
    assert slack["blocks"][0]["type"] == "header"
    body = card["body"]
    headings = [b["text"] for b in body if b.get("weight") == "Bolder"][1:]
    assert headings == ["Due today", "Due in 2 days", "Overdue"]
    assert "6 days overdue" in all_text(card)

    assert action_reminders_to_chat(AT_NINE + timedelta(days=1)) == 2  # the next morning


def test_the_settings_pages_say_what_the_reminder_covers(team, owner, member):
    chat_page = client_for(owner).get(reverse("chat_connections", kwargs={"team": team.slug}))
    assert "Actions due soon, due today or overdue (daily at 09:00)" in chat_page.content.decode()
    settings_page = client_for(member).get("/settings/notifications/").content.decode()
    assert "also left out of the daily reminder your teams" in settings_page
