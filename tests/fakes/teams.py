"""A fake Microsoft Teams workflow ("Post to a channel when a webhook request is received")
over real HTTP.

A workflow URL is /workflows/<id>/triggers/manual/paths/invoke on the fake; it takes the
Adaptive Card message envelope (tests/fakes/specs/chat/teams_message.schema.json), refuses a
message over 28 KB (Microsoft's limit for webhooks) with 413, and answers 202 Accepted with
no body as a workflow trigger does. `remove(url)` makes it answer like a deleted workflow.
"""

from __future__ import annotations

import re

from tests.fakes.chat_server import Answer, FakeChat, json_body, problems, validator
from tests.fakes.server import Request

WORKFLOW_PATH = re.compile(r"^/workflows/[a-f0-9]+/triggers/manual/paths/invoke$")
MAX_BYTES = 28 * 1024


class FakeTeams(FakeChat):
    def __init__(self) -> None:
        super().__init__()
        self.message_check = validator("teams_message.schema.json", "message")
        self.workflows: dict[str, bool] = {}

    def workflow(self, workflow_id: str = "0a1b2c3d4e5f") -> str:
        path = f"/workflows/{workflow_id}/triggers/manual/paths/invoke"
        self.workflows[path] = True
        return self.url + path

    def remove(self, url: str) -> None:
        self.workflows[url.removeprefix(self.url)] = False

    def cards(self) -> list[dict]:
        return [r.json()["attachments"][0]["content"] for r in self.requests]

    def check(self, request: Request) -> list[str]:
        if request.method != "POST":
            return [f"{request.method}: a workflow is triggered by POST"]
        if not WORKFLOW_PATH.match(request.path):
            return [f"no such workflow trigger {request.path}"]
        body, complaints = json_body(request)
        return complaints or problems(self.message_check, body)

    def handle(self, request: Request) -> Answer:
        if not self.workflows.get(request.path):
            return Answer(
                404,
                {"error": {"code": "WorkflowNotFound", "message": "The workflow was not found."}},
            )
        if len(request.body) > MAX_BYTES:
            return Answer(413, {"error": {"code": "MessageTooLarge", "message": "Too large."}})
        return Answer(202)
