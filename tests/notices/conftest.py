"""Fixtures of the notice tests: a broker stand-in and a real SMTP server on loopback."""

from __future__ import annotations

from collections.abc import Iterator
from email import message_from_bytes, policy
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from notices import delivery
from tests.browser.stack import free_port


@pytest.fixture
def queued(monkeypatch) -> list[tuple[int, float | None]]:
    """The deliveries queued (notice id, countdown) instead of a broker."""
    calls: list[tuple[int, float | None]] = []

    class Task:
        def delay(self, pk: int) -> None:
            calls.append((pk, None))

        def apply_async(self, args: tuple[int], countdown: float) -> None:
            calls.append((args[0], countdown))

    monkeypatch.setattr(delivery, "registered_task", lambda name: Task())
    return calls


class SMTPServer:
    """An SMTP server on loopback (aiosmtpd) that keeps what it accepts, or refuses with
    `answer` (e.g. "550 5.1.1 no such user")."""

    def __init__(self) -> None:
        self.received: list[Any] = []
        self.answer = ""

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if self.answer:
            return self.answer
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        self.received.append(message_from_bytes(envelope.content, policy=policy.default))
        return "250 Message accepted"


@pytest.fixture
def smtp(settings) -> Iterator[SMTPServer]:
    handler = SMTPServer()
    controller = Controller(handler, hostname="127.0.0.1", port=free_port())
    controller.start()
    settings.MAILERS = {
        "default": {
            "BACKEND": "django.core.mail.backends.smtp.EmailBackend",
            "OPTIONS": {
                "host": "127.0.0.1",
                "port": controller.port,
                "use_tls": False,
                "timeout": 5,
            },
        }
    }
    yield handler
    controller.stop()
