"""Chat notices: Slack (incoming webhook, or a bot's chat.postMessage) and Microsoft Teams
(a Workflows / incoming webhook URL).

A chat notice's payload is the message, in a shape of our own that both vendors' formats
are drawn from (never a secret):

    {"title": "Retro started: Release 4.2",
     "lines": ["Facilitated by Ada.", ...],                  # plain text paragraphs
     "sections": [{"heading": "Escapes", "items": ["...", ...]}, ...],
     "link": {"text": "Join the retro", "url": "https://..."}}

An item is a string, or a ticket: {"key": "SHOP-12", "url": "https://...", "text": "..."},
shown as the key linked to the ticket (plain when there is no url), a dash, and the text.

Slack gets Block Kit (a `text` fallback for notifications, and blocks within Slack's limits:
50 blocks, 3000 characters per section, 150 per header); Teams gets an Adaptive Card 1.4 in
a "message" envelope, as Teams workflows ("Post to a channel when a webhook request is
received") and the older incoming webhooks take it.

The URL or token is read from the ChatConnection named by the notice's recipient when the
notice is sent. No message of ours holds it: errors are said in our words and the vendor's
error code, never `str()` of a requests exception (which quotes the URL).
"""

from __future__ import annotations

import logging
import re
from typing import Any
from urllib.parse import urlsplit

import requests
from django.conf import settings

from config.crypto import CredentialError
from config.retry import retry_after_seconds
from notices.models import Channel, Notice
from notices.models_chat import ChatConnection, ChatEvent, ChatKind
from notices.senders import Permanent, Transient, sender
from notices.services import notice_enqueue

log = logging.getLogger(__name__)

# Slack's Block Kit limits (api.slack.com/reference/block-kit/blocks).
SLACK_MAX_BLOCKS = 50
SLACK_SECTION_TEXT = 3000
SLACK_HEADER_TEXT = 150
SLACK_FALLBACK_TEXT = 3000  # Slack truncates `text` beyond 40,000; a notification needs less

# --- Which URLs and tokens are plausible (checked when an admin saves a connection).

SLACK_WEBHOOK_PATH = re.compile(r"^/services/T[A-Z0-9]+/B[A-Z0-9]+/[A-Za-z0-9]+$")
SLACK_BOT_TOKEN = re.compile(r"^xoxb-[A-Za-z0-9-]+$")
SLACK_CHANNEL_ID = re.compile(r"^[CGD][A-Z0-9]{6,}$")
TEAMS_HOST_SUFFIXES = (
    ".webhook.office.com",  # Office 365 connectors' incoming webhooks (being retired)
    ".logic.azure.com",  # Workflows (Power Automate) HTTP triggers
    ".environment.api.powerplatform.com",  # Workflows' newer trigger URLs
    ".powerautomate.com",
)


def _extra_origin(url: str) -> bool:
    """Whether `url` starts with an origin the settings allow besides the vendors' (the fake
    Slack and Teams servers of the tests; never set in production)."""
    return any(url.startswith(origin.rstrip("/") + "/") for origin in settings.CHAT_EXTRA_ORIGINS)


def slack_webhook_problem(url: str) -> str | None:
    if _extra_origin(url):
        return None
    parts = urlsplit(url)
    if parts.scheme != "https":
        return "The webhook URL must start with https://."
    if parts.hostname != "hooks.slack.com":
        return (
            "This is not a Slack incoming webhook URL: it must be on hooks.slack.com "
            "(Slack: your app → Incoming Webhooks → Add New Webhook to Workspace)."
        )
    if not SLACK_WEBHOOK_PATH.match(parts.path):
        return (
            "This Slack webhook URL is incomplete: it looks like "
            "https://hooks.slack.com/services/T…/B…/… ; copy it again from Slack."
        )
    return None


def teams_webhook_problem(url: str) -> str | None:
    if _extra_origin(url):
        return None
    parts = urlsplit(url)
    if parts.scheme != "https":
        return "The workflow URL must start with https://."
    host = parts.hostname or ""
    if not host.endswith(TEAMS_HOST_SUFFIXES):
        return (
            "This is not a Microsoft Teams workflow or webhook URL: it must be on "
            "*.logic.azure.com, *.environment.api.powerplatform.com or *.webhook.office.com "
            "(Teams: the channel's ⋯ → Workflows → “Post to a channel when a webhook request "
            "is received”)."
        )
    if not parts.path.strip("/"):
        return "This Teams URL has no path: copy the whole URL the workflow shows."
    return None


def slack_token_problem(token: str) -> str | None:
    if not SLACK_BOT_TOKEN.match(token):
        return "A Slack bot token starts with xoxb- (your app → OAuth & Permissions)."
    return None


def slack_channel_problem(channel_id: str) -> str | None:
    if not SLACK_CHANNEL_ID.match(channel_id):
        return (
            "A Slack channel id looks like C0123ABCD (the channel's details, at the bottom), "
            "not its #name."
        )
    return None


# --- Enqueueing.


def chat_notices_enqueue(
    *, team: Any, occasion: str, kind: str, subject: str, payload: dict[str, Any]
) -> list[Notice]:
    """One notice per chat connection of `team` that gets `kind` (a ChatEvent value), inside
    the transaction that caused it. No connection: nothing, and nothing is posted."""
    notices = []
    for connection in ChatConnection.objects.filter(team=team).order_by("pk"):
        if not connection.gets(kind):
            continue
        notice = notice_enqueue(
            team=team,
            channel=connection.channel,
            recipient=str(connection.pk),
            occasion=occasion,
            kind=kind,
            subject=subject,
            payload=payload,
        )
        if notice is not None:
            notices.append(notice)
    return notices


def chat_team_ids(event: str) -> set[int]:
    """The teams with a chat channel that gets `event` (for scheduled notices)."""
    # In Python: JSONField's `contains` is not available on SQLite, and the table is small.
    return {c.team_id for c in ChatConnection.objects.all() if c.gets(event)}


def test_payload(connection: ChatConnection) -> dict[str, Any]:
    return {
        "title": "Leakseal test message",
        "lines": [
            f"This channel ({connection.name}) is connected to the Leakseal team "
            f"{connection.team.name}. Notices it gets: "
            + (", ".join(ChatEvent(e).label.lower() for e in connection.events) or "none")
            + "."
        ],
    }


# --- Slack's Block Kit.


def _slack_escape(text: str) -> str:
    # mrkdwn's three control characters (api.slack.com/reference/surfaces/formatting#escaping).
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _chunks(lines: list[str], limit: int) -> list[str]:
    """Lines joined into texts of at most `limit` characters (a longer line is cut)."""
    texts: list[str] = []
    current = ""
    for line in lines:
        line = line if len(line) <= limit else line[: limit - 1] + "…"
        if current and len(current) + 1 + len(line) > limit:
            texts.append(current)
            current = line
        else:
            current = f"{current}\n{line}" if current else line
    if current:
        texts.append(current)
    return texts


def _slack_item(item: Any) -> str:
    if not isinstance(item, dict):
        return _slack_escape(str(item))
    key = _slack_escape(str(item.get("key", "")))
    url = str(item.get("url", ""))
    # mrkdwn's link is <url|text>; a "|" or ">" in the URL would end it early.
    linked = f"<{_slack_escape(url).replace('|', '%7C')}|{key}>" if url else key
    return f"{linked} — {_slack_escape(str(item.get('text', '')))}"


def _section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}


def slack_message(payload: dict[str, Any]) -> dict[str, Any]:
    title = str(payload.get("title", ""))
    blocks: list[dict[str, Any]] = [
        {
            "type": "header",
            "text": {"type": "plain_text", "text": _cut(title, SLACK_HEADER_TEXT), "emoji": True},
        }
    ]
    for text in _chunks(
        [_slack_escape(str(line)) for line in payload.get("lines", [])], SLACK_SECTION_TEXT
    ):
        blocks.append(_section(text))
    for part in payload.get("sections", []):
        items = [f"• {_slack_item(item)}" for item in part.get("items", [])]
        heading = f"*{_slack_escape(str(part.get('heading', '')))}*"
        for text in _chunks([heading, *items], SLACK_SECTION_TEXT):
            blocks.append(_section(text))
    link = payload.get("link")
    if link:
        blocks.append(
            {
                "type": "actions",
                "elements": [
                    {
                        "type": "button",
                        "text": {"type": "plain_text", "text": _cut(str(link["text"]), 75)},
                        "url": str(link["url"]),
                    }
                ],
            }
        )
    if len(blocks) > SLACK_MAX_BLOCKS:
        kept = blocks[: SLACK_MAX_BLOCKS - 1]
        more = len(blocks) - len(kept)
        blocks = [*kept, _section(f"…and {more} more parts: see Leakseal.")]
    # The fallback is mrkdwn too (notifications, screen readers): its control characters escaped.
    fallback = _slack_escape(title)
    if link:
        fallback = f"{fallback}: {link['url']}"
    return {"text": _cut(fallback, SLACK_FALLBACK_TEXT), "blocks": blocks}


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


# --- Teams' Adaptive Card.


def _teams_item(item: Any) -> str:
    if not isinstance(item, dict):
        return str(item)
    # TextBlock Markdown's link is [text](url): brackets in the key, and parentheses or spaces
    # in the URL, would end it early.
    key = str(item.get("key", "")).replace("[", "(").replace("]", ")")
    url = str(item.get("url", "")).replace(" ", "%20").replace("(", "%28").replace(")", "%29")
    linked = f"[{key}]({url})" if url else key
    return f"{linked} — {item.get('text', '')}"


def teams_message(payload: dict[str, Any]) -> dict[str, Any]:
    body: list[dict[str, Any]] = [
        {
            "type": "TextBlock",
            "text": str(payload.get("title", "")),
            "weight": "Bolder",
            "size": "Medium",
            "wrap": True,
        }
    ]
    for line in payload.get("lines", []):
        body.append({"type": "TextBlock", "text": str(line), "wrap": True})
    for part in payload.get("sections", []):
        body.append(
            {
                "type": "TextBlock",
                "text": str(part.get("heading", "")),
                "weight": "Bolder",
                "wrap": True,
                "spacing": "Medium",
            }
        )
        items = [_teams_item(item) for item in part.get("items", [])]
        if items:
            # Adaptive Cards' TextBlock takes a Markdown subset: "- " lines are a list.
            body.append(
                {"type": "TextBlock", "text": "\r".join(f"- {i}" for i in items), "wrap": True}
            )
    card: dict[str, Any] = {
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "type": "AdaptiveCard",
        "version": "1.4",
        "body": body,
    }
    link = payload.get("link")
    if link:
        card["actions"] = [
            {"type": "Action.OpenUrl", "title": str(link["text"]), "url": str(link["url"])}
        ]
    return {
        "type": "message",
        "attachments": [
            {
                "contentType": "application/vnd.microsoft.card.adaptive",
                "contentUrl": None,
                "content": card,
            }
        ],
    }


# --- Sending.


def _connection(notice: Notice) -> ChatConnection:
    connection = ChatConnection.objects.filter(pk=int(notice.recipient)).first()
    if connection is None:
        raise Permanent("The chat channel was disconnected before this notice went out.")
    return connection


def _secret(connection: ChatConnection) -> str:
    try:
        return connection.secret
    except CredentialError as exc:
        raise Permanent(str(exc)) from None


def _timeouts() -> tuple[float, float]:
    return (settings.CHAT_CONNECT_TIMEOUT, settings.CHAT_READ_TIMEOUT)


def _post(url: str, vendor: str, **kwargs: Any) -> requests.Response:
    try:
        return requests.post(url, timeout=_timeouts(), **kwargs)
    except requests.Timeout:
        raise Transient(f"{vendor} did not answer in time") from None
    except requests.ConnectionError:
        raise Transient(f"Could not connect to {vendor}") from None
    except requests.RequestException as exc:
        raise Transient(f"The request to {vendor} failed: {type(exc).__name__}") from None


def _body_code(response: requests.Response) -> str:
    """Slack's and Teams' plain-text error code or message, short and without markup."""
    text = (response.text or "").strip()
    try:
        error = response.json().get("error")  # Power Automate: {"error": {"code", "message"}}
    except (ValueError, AttributeError):
        error = None
    if isinstance(error, dict) and error.get("code"):
        return str(error["code"])[:100]
    if not text or text.startswith("<"):
        return response.reason or ""
    return text[:200]


def _transient_if(response: requests.Response, vendor: str) -> None:
    status = response.status_code
    if status == 429 or status >= 500:
        what = "is rate limiting us" if status == 429 else "has a problem"
        raise Transient(
            f"{vendor} {what} ({status} {_body_code(response)})".strip(),
            retry_after=retry_after_seconds(response.headers.get("Retry-After")),
        )


# What Slack's webhook error codes mean for the admin (api.slack.com/messaging/webhooks#errors).
SLACK_WEBHOOK_ADVICE = {
    "no_service": "the webhook no longer exists: reconnect the channel",
    "no_team": "the Slack workspace is gone or deactivated: reconnect the channel",
    "team_disabled": "the Slack workspace is disabled: reconnect the channel",
    "channel_not_found": "the channel is gone: reconnect the channel",
    "channel_is_archived": "the channel is archived: unarchive it or reconnect another",
    "action_prohibited": "a Slack admin restricted this webhook",
    "invalid_token": "the webhook's token is no longer valid: reconnect the channel",
    "posting_to_general_channel_denied": "only admins may post in that channel",
    "invalid_payload": "it refused the message's format",
    "no_text": "it refused the message as empty",
}


def _slack_webhook_error(response: requests.Response) -> Permanent:
    code = _body_code(response)
    advice = SLACK_WEBHOOK_ADVICE.get(code, "it refused the message")
    return Permanent(f"Slack says {advice} ({response.status_code} {code})")


@sender(Channel.SLACK)
def send_slack(notice: Notice) -> dict[str, Any] | None:
    return _send_slack(_connection(notice), notice.payload)


def _send_slack(connection: ChatConnection, payload: dict[str, Any]) -> dict[str, Any] | None:
    message = slack_message(payload)
    if connection.kind == ChatKind.SLACK_BOT:
        return _slack_bot_post(connection, message)
    response = _post(_secret(connection), "Slack", json=message)
    _transient_if(response, "Slack")
    if response.status_code >= 400:
        raise _slack_webhook_error(response)
    return None


# chat.postMessage's `error` codes worth another try (api.slack.com/methods/chat.postMessage).
SLACK_TRANSIENT_ERRORS = {
    "ratelimited",
    "rate_limited",
    "internal_error",
    "fatal_error",
    "service_unavailable",
    "request_timeout",
}
SLACK_API_ADVICE = {
    "channel_not_found": "the channel id is wrong or the bot cannot see it",
    "not_in_channel": "the bot is not in the channel: invite it (/invite @yourbot)",
    "is_archived": "the channel is archived",
    "invalid_auth": "the bot token is not valid: reconnect the channel",
    "not_authed": "no bot token was accepted: reconnect the channel",
    "token_revoked": "the bot token was revoked: reconnect the channel",
    "account_inactive": "the bot's app was removed: reconnect the channel",
    "missing_scope": "the bot lacks the chat:write scope: add it and reinstall the app",
    "restricted_action": "a Slack admin restricted posting in that channel",
    "invalid_blocks": "it refused the message's blocks",
    "msg_too_long": "the message is too long",
}


def _slack_bot_post(connection: ChatConnection, message: dict[str, Any]) -> dict[str, Any]:
    response = _post(
        f"{settings.SLACK_API_URL.rstrip('/')}/chat.postMessage",
        "Slack",
        json={"channel": connection.channel_id, **message},
        headers={"Authorization": f"Bearer {_secret(connection)}"},
    )
    _transient_if(response, "Slack")
    try:
        body = response.json()
    except ValueError:
        body = None
    if response.status_code >= 400 or not isinstance(body, dict):
        raise Permanent(f"Slack answered {response.status_code} {_body_code(response)}")
    if body.get("ok"):
        return {"channel": body.get("channel", ""), "ts": body.get("ts", "")}
    code = str(body.get("error", "unknown"))[:100]
    if code in SLACK_TRANSIENT_ERRORS:
        raise Transient(
            f"Slack could not take the message now ({code})",
            retry_after=retry_after_seconds(response.headers.get("Retry-After")),
        )
    advice = SLACK_API_ADVICE.get(code, "it refused the message")
    raise Permanent(f"Slack says {advice} ({code})")


TEAMS_ADVICE = {
    400: "it refused the message's card",
    401: "the workflow URL is not valid any more: reconnect the channel",
    403: "the workflow URL is not allowed to post any more: reconnect the channel",
    404: "the workflow or webhook no longer exists: reconnect the channel",
    410: "the webhook was removed: reconnect the channel",
    413: "the message is too large",
}


@sender(Channel.TEAMS)
def send_teams(notice: Notice) -> dict[str, Any] | None:
    return _send_teams(_connection(notice), notice.payload)


def _send_teams(connection: ChatConnection, payload: dict[str, Any]) -> dict[str, Any] | None:
    response = _post(_secret(connection), "Microsoft Teams", json=teams_message(payload))
    _transient_if(response, "Microsoft Teams")
    if response.status_code >= 400:
        advice = TEAMS_ADVICE.get(response.status_code, "it refused the message")
        raise Permanent(
            f"Microsoft Teams says {advice} ({response.status_code} {_body_code(response)})".strip()
        )
    return None


def send_now(connection: ChatConnection, payload: dict[str, Any]) -> None:
    """Post `payload` right away (the settings page's "Send a test message"); raises
    Transient or Permanent like the senders, whose messages are safe to show."""
    if connection.channel == Channel.TEAMS:
        _send_teams(connection, payload)
    else:
        _send_slack(connection, payload)
