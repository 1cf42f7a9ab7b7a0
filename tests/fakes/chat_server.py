"""A fake chat service (Slack, Microsoft Teams) over real HTTP from a thread.

Unlike the trackers (tests/fakes/server.py, OpenAPI-described JSON APIs), chat webhooks
answer in plain text ("ok", "no_service") or with no body, and their contracts are JSON
Schemas written from the vendors' documentation (tests/fakes/specs/chat/*.schema.json). Every
request is checked; a violation is recorded and answered 400, and the tests' fixtures fail
at teardown on any violation.
"""

from __future__ import annotations

import json
import threading
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Self
from urllib.parse import parse_qs, urlsplit

from jsonschema import Draft202012Validator, FormatChecker

from tests.fakes.server import Request

SPECS = Path(__file__).parent / "specs" / "chat"


def validator(schema_file: str, definition: str) -> Draft202012Validator:
    """A validator of `definition` of a schema file of ours (its $defs resolve inside it)."""
    document = json.loads((SPECS / schema_file).read_text())
    return Draft202012Validator(
        {**document, "$ref": f"#/$defs/{definition}"}, format_checker=FormatChecker()
    )


def problems(check: Draft202012Validator, body: Any) -> list[str]:
    return [
        f"{'/'.join(str(p) for p in error.absolute_path) or '(top)'}: {error.message}"
        for error in check.iter_errors(body)
    ]


@dataclass
class Answer:
    status: int
    body: str | dict[str, Any] | None = None  # text/plain, JSON, or nothing
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Scripted:
    """The next `times` requests to `path` get `answer` instead of the normal one."""

    path: str
    answer: Answer
    times: int = 1


class FakeChat(ABC):
    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.requests: list[Request] = []
        self.violations: list[str] = []
        self.scripted: list[Scripted] = []
        self._server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self._server is not None, "start() the fake first"
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> Self:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                fake._serve(self)

            do_GET = do_POST

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, args=(0.02,), daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def answer_next(self, path: str, answer: Answer, *, times: int = 1) -> None:
        with self.lock:
            self.scripted.append(Scripted(path, answer, times))

    def posts(self, path: str | None = None) -> list[Request]:
        with self.lock:
            return [r for r in self.requests if path is None or r.path == path]

    @abstractmethod
    def check(self, request: Request) -> list[str]:
        """The contract's complaints about `request` (empty: it keeps the contract)."""

    @abstractmethod
    def handle(self, request: Request) -> Answer:
        """The vendor's answer to a request that keeps the contract."""

    def _scripted_for(self, request: Request) -> Answer | None:
        with self.lock:
            for scripted in self.scripted:
                if scripted.path == request.path:
                    scripted.times -= 1
                    if scripted.times <= 0:
                        self.scripted.remove(scripted)
                    return scripted.answer
        return None

    def _serve(self, handler: BaseHTTPRequestHandler) -> None:
        length = int(handler.headers.get("Content-Length") or 0)
        parts = urlsplit(handler.path)
        request = Request(
            method=handler.command,
            path=parts.path,
            query=parse_qs(parts.query, keep_blank_values=True),
            headers={k.lower(): v for k, v in handler.headers.items()},
            body=handler.rfile.read(length) if length else b"",
        )
        with self.lock:
            self.requests.append(request)
        complaints = self.check(request)
        if complaints:
            with self.lock:
                self.violations.extend(f"{request.path}: {c}" for c in complaints)
            answer = Answer(400, "invalid_payload")
        else:
            answer = self._scripted_for(request) or self.handle(request)
        if isinstance(answer.body, dict):
            payload, kind = json.dumps(answer.body).encode(), "application/json; charset=utf-8"
        else:
            payload, kind = (answer.body or "").encode(), "text/plain; charset=utf-8"
        try:
            handler.send_response(answer.status, HTTPStatus(answer.status).phrase)
            handler.send_header("Content-Length", str(len(payload)))
            if payload:
                handler.send_header("Content-Type", kind)
            for name, value in answer.headers.items():
                handler.send_header(name, value)
            handler.end_headers()
            handler.wfile.write(payload)
        except (BrokenPipeError, ConnectionResetError):
            pass


def json_body(request: Request) -> tuple[Any, list[str]]:
    """The request's JSON body, or the complaints about it."""
    if not request.headers.get("content-type", "").startswith("application/json"):
        return None, [f"Content-Type {request.headers.get('content-type')!r} is not JSON"]
    try:
        return json.loads(request.body), []
    except ValueError as exc:
        return None, [f"the body is not JSON: {exc}"]
