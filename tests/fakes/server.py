"""A fake tracker served over real HTTP from a thread, checked against the vendor's spec.

Subclasses (tests/fakes/jira.py, tests/fakes/azure.py) define `handle` with the tracker's
behaviour; this base does the HTTP, the spec checks of every request and every response,
the faults a test asks for, and the record of what was asked.

    fake = FakeJira().start()          # fake.url: http://127.0.0.1:<port>
    fake.fail("POST", r"/issue$", status=500, times=3)
    ...
    fake.stop()
    assert fake.violations == []       # the `fake_jira` fixtures check it at teardown

A worker or web process started by a test reaches the fake through its URL like any tracker.
"""

from __future__ import annotations

import json
import re
import threading
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self
from urllib.parse import parse_qs, urlsplit

from tests.fakes.spec import Spec, SpecViolation


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]  # lower-case names
    body: bytes
    at: float = field(default_factory=time.monotonic)  # when it arrived

    def json(self) -> Any:
        return json.loads(self.body or b"null")


@dataclass
class Reply:
    status: int
    body: Any = None  # JSON-able, or None for no body
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Fault:
    """Answer matching requests differently, `times` times (None: until cleared)."""

    method: str
    path: re.Pattern[str]
    status: int = 500
    times: int | None = 1
    retry_after: str | None = None
    # Handle the request for real first, then stall this long before answering: "the tracker
    # did it, but the answer never came back in time".
    stall_after_handling: float = 0.0
    body: Any = None


class HttpError(Exception):
    """Raised by a handler to answer with an error in the tracker's own shape."""

    def __init__(self, status: int, body: Any) -> None:
        super().__init__(status)
        self.status = status
        self.body = body


class FakeTracker(ABC):
    specs: list[Spec] = []  # the documents every exchange is checked against, in order

    def __init__(self, *, latency: float = 0.0) -> None:
        self.latency = latency
        self.lock = threading.RLock()
        self.requests: list[Request] = []
        self.violations: list[str] = []
        self.faults: list[Fault] = []
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # --- Lifecycle.

    @property
    def url(self) -> str:
        assert self._server is not None, "start() the fake first"
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> Self:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _serve(self) -> None:
                fake._serve(self)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _serve

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        # A short poll interval: stop() waits for one, and every test stops a fake.
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.02,), daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    # --- What tests ask of it.

    def fail(
        self,
        method: str,
        path: str,
        *,
        status: int = 500,
        times: int | None = 1,
        retry_after: str | None = None,
        stall_after_handling: float = 0.0,
        body: Any = None,
    ) -> None:
        with self.lock:
            self.faults.append(
                Fault(
                    method.upper(),
                    re.compile(path),
                    status,
                    times,
                    retry_after,
                    stall_after_handling,
                    body,
                )
            )

    def clear_faults(self) -> None:
        with self.lock:
            self.faults.clear()

    def calls(self, method: str, path: str) -> list[Request]:
        pattern = re.compile(path)
        with self.lock:
            return [r for r in self.requests if r.method == method and pattern.search(r.path)]

    # --- To be defined by each tracker.

    @abstractmethod
    def handle(self, request: Request) -> Reply:
        """The tracker's answer to a request that no fault intercepted."""

    def error_body(self, status: int, message: str) -> Any:
        return {"message": message}

    # --- HTTP.

    def _fault_for(self, request: Request) -> Fault | None:
        with self.lock:
            for fault in self.faults:
                if fault.method == request.method and fault.path.search(request.path):
                    if fault.times is not None:
                        fault.times -= 1
                        if fault.times <= 0:
                            self.faults.remove(fault)
                    return fault
        return None

    def _spec_for(self, request: Request) -> Spec | None:
        for spec in self.specs:
            try:
                spec.operation(request.method, request.path)
            except SpecViolation:
                continue
            return spec
        return None

    def _serve(self, handler: BaseHTTPRequestHandler) -> None:
        parts = urlsplit(handler.path)
        length = int(handler.headers.get("Content-Length") or 0)
        request = Request(
            method=handler.command,
            path=parts.path,
            query=parse_qs(parts.query, keep_blank_values=True),
            headers={k.lower(): v for k, v in handler.headers.items()},
            body=handler.rfile.read(length) if length else b"",
        )
        with self.lock:
            self.requests.append(request)
        if self.latency:
            time.sleep(self.latency)
        reply = self._reply(request)
        payload = b"" if reply.body is None else json.dumps(reply.body).encode()
        try:
            handler.send_response(reply.status, HTTPStatus(reply.status).phrase)
            handler.send_header("Content-Length", str(len(payload)))
            if payload:
                handler.send_header("Content-Type", "application/json; charset=utf-8")
            for name, value in reply.headers.items():
                handler.send_header(name, value)
            handler.end_headers()
            handler.wfile.write(payload)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up waiting (a timeout test): nothing to answer

    def _reply(self, request: Request) -> Reply:
        spec = self._spec_for(request)
        if spec is None:
            return self._violation(request, f"no operation {request.method} {request.path}")
        try:
            spec.check_request(
                request.method,
                request.path,
                request.query,
                request.body,
                request.headers.get("content-type", ""),
            )
        except SpecViolation as exc:
            return self._violation(request, str(exc))
        fault = self._fault_for(request)
        if fault is not None and not fault.stall_after_handling:
            headers = {"Retry-After": fault.retry_after} if fault.retry_after else {}
            body = fault.body if fault.body is not None else self.error_body(fault.status, "fake")
            return Reply(fault.status, body, headers)
        try:
            reply = self.handle(request)
        except HttpError as exc:
            reply = Reply(exc.status, exc.body)
        try:
            if reply.status < 400:
                spec.check_response(request.method, request.path, reply.status, reply.body)
        except SpecViolation as exc:
            return self._violation(request, f"the fake's own answer: {exc}")
        if fault is not None:
            time.sleep(fault.stall_after_handling)
        return reply

    def _violation(self, request: Request, message: str) -> Reply:
        with self.lock:
            self.violations.append(message)
        return Reply(500, self.error_body(500, f"spec violation: {message}"))
