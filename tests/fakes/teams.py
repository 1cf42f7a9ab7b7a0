"""A fake Microsoft Teams workflow ("Post to a channel when a webhook request is received")
over real HTTP.

A workflow URL is /workflows/<id>/triggers/manual/paths/invoke?api-version=…&sp=…&sv=…&sig=…
on the fake, as Power Automate gives it out: the `sig` query parameter is the URL's secret (a
shared access signature), and a trigger without it, or with another, is refused 401 as Logic
Apps does (DirectApiAuthorizationRequired / DirectApiInvalidAuthorizationSignature). It takes
the Adaptive Card message envelope (tests/fakes/specs/chat/teams_message.schema.json), refuses
a message over 28 KB (Microsoft's limit for webhooks) with 413, and answers 202 Accepted with
no body as a workflow trigger does. `remove(url)` makes it answer like a deleted workflow.
"""

from __future__ import annotations

import re
import secrets
from urllib.parse import urlsplit

from tests.fakes.chat_server import Answer, FakeChat, json_body, problems, validator
from tests.fakes.server import Request

WORKFLOW_PATH = re.compile(r"^/workflows/[a-f0-9]+/triggers/manual/paths/invoke$")
MAX_BYTES = 28 * 1024


class FakeTeams(FakeChat):
    def __init__(self) -> None:
        super().__init__()
        self.message_check = validator("teams_message.schema.json", "message")
        self.workflows: dict[str, str | None] = {}  # path -> its sig; None once removed

    def workflow(self, workflow_id: str = "0a1b2c3d4e5f") -> str:
        path = f"/workflows/{workflow_id}/triggers/manual/paths/invoke"
        sig = secrets.token_urlsafe(32)
        self.workflows[path] = sig
        query = f"api-version=2016-06-01&sp=%2Ftriggers%2Fmanual%2Frun&sv=1.0&sig={sig}"
        return f"{self.url}{path}?{query}"

    @staticmethod
    def path(url: str) -> str:
        return urlsplit(url).path

    def remove(self, url: str) -> None:
        self.workflows[self.path(url)] = None

    def cards(self) -> list[dict]:
        return [r.json()["attachments"][0]["content"] for r in self.requests]

    def check(self, request: Request) -> list[str]:
        if request.method != "POST":
            return [f"{request.method}: a workflow is triggered by POST"]
        if not WORKFLOW_PATH.match(request.path):
            return [f"no such workflow trigger {request.path}"]
        if not request.query.get("api-version"):
            return ["a workflow trigger needs its api-version query parameter"]
        body, complaints = json_body(request)
        return complaints or problems(self.message_check, body)

    def handle(self, request: Request) -> Answer:
        sig = self.workflows.get(request.path)
        if not sig:
            return Answer(
                404,
                {"error": {"code": "WorkflowNotFound", "message": "The workflow was not found."}},
            )
        sent = request.query.get("sig", [])
        if not sent:
            return Answer(
                401,
                {
                    "error": {
                        "code": "DirectApiAuthorizationRequired",
                        "message": "The request must be authenticated only by Shared Access "
                        "scheme.",
                    }
                },
            )
        if sent != [sig]:
            return Answer(
                401,
                {
                    "error": {
                        "code": "DirectApiInvalidAuthorizationSignature",
                        "message": "The provided authorization signature is invalid.",
                    }
                },
            )
        if len(request.body) > MAX_BYTES:
            return Answer(413, {"error": {"code": "MessageTooLarge", "message": "Too large."}})
        return Answer(202)
