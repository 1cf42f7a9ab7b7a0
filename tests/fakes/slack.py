"""A fake Slack: incoming webhooks and the Web API's chat.postMessage, over real HTTP.

Webhooks are /services/T…/B…/<secret> URLs on the fake; `revoke(path)` makes one answer
like a deleted webhook (404 "no_service"). chat.postMessage is /api/chat.postMessage:
it wants `Authorization: Bearer <token>` with a JSON body, and answers 200 with
{"ok": true, "channel", "ts"} or {"ok": false, "error": <code>}, as Slack does
(api.slack.com/methods/chat.postMessage; api.slack.com/messaging/webhooks#errors).
Every request is checked against tests/fakes/specs/chat/slack_messages.schema.json.
"""

from __future__ import annotations

import re
import time

from tests.fakes.chat_server import Answer, FakeChat, json_body, problems, validator
from tests.fakes.server import Request

WEBHOOK_PATH = re.compile(r"^/services/T[A-Z0-9]+/B[A-Z0-9]+/[A-Za-z0-9]+$")
POST_MESSAGE = "/api/chat.postMessage"


class FakeSlack(FakeChat):
    def __init__(self) -> None:
        super().__init__()
        self.webhook_check = validator("slack_messages.schema.json", "incoming_webhook")
        self.post_check = validator("slack_messages.schema.json", "chat_postMessage")
        self.webhooks: dict[str, str] = {}  # path -> "live" or an error code
        self.tokens: dict[str, set[str]] = {}  # bot token -> channel ids it may post in

    def webhook(self, secret: str = "s3cretWebhookPart") -> str:  # noqa: S107 (a fake)
        path = f"/services/T0FAKE01/B0FAKE02/{secret}"
        self.webhooks[path] = "live"
        return self.url + path

    def revoke(self, url: str, code: str = "no_service") -> None:
        self.webhooks[url.removeprefix(self.url)] = code

    def bot(self, token: str, *channels: str) -> None:
        self.tokens[token] = set(channels)

    @property
    def api_url(self) -> str:
        return self.url + "/api"

    def messages(self) -> list[dict]:
        return [r.json() for r in self.requests if r.method == "POST"]

    def check(self, request: Request) -> list[str]:
        if request.method != "POST":
            return [f"{request.method}: Slack takes messages by POST"]
        body, complaints = json_body(request)
        if complaints:
            return complaints
        if request.path == POST_MESSAGE:
            auth = request.headers.get("authorization", "")
            if not auth.startswith("Bearer "):
                complaints.append("chat.postMessage with a JSON body needs Authorization: Bearer")
            return complaints + problems(self.post_check, body)
        if WEBHOOK_PATH.match(request.path):
            return problems(self.webhook_check, body)
        return [f"no such Slack endpoint {request.path}"]

    def handle(self, request: Request) -> Answer:
        if request.path == POST_MESSAGE:
            return self._post_message(request)
        state = self.webhooks.get(request.path)
        if state is None:
            return Answer(404, "no_service")
        if state != "live":
            status = {"no_service": 404, "channel_is_archived": 410, "action_prohibited": 403}
            return Answer(status.get(state, 400), state)
        return Answer(200, "ok")

    def _post_message(self, request: Request) -> Answer:
        token = request.headers["authorization"].removeprefix("Bearer ")
        channel = request.json()["channel"]
        if token not in self.tokens:
            return Answer(200, {"ok": False, "error": "invalid_auth"})
        if channel not in self.tokens[token]:
            return Answer(200, {"ok": False, "error": "channel_not_found"})
        return Answer(200, {"ok": True, "channel": channel, "ts": f"{time.time():.6f}"})
