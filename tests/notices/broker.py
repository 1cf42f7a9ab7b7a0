"""A broker stand-in for tests that deliver notices by hand: the ids of the deliveries queued,
whether on commit (`notices.services`) or as a retry (`notices.delivery`)."""

from __future__ import annotations

from typing import Any

from notices import delivery


def hold_deliveries(monkeypatch: Any) -> list[int]:
    calls: list[int] = []

    class Task:
        def delay(self, pk: int) -> None:
            calls.append(pk)

        def apply_async(self, args: tuple[int], countdown: float) -> None:
            calls.append(args[0])

    monkeypatch.setattr("notices.services.registered_task", lambda name: Task())
    monkeypatch.setattr(delivery, "registered_task", lambda name: Task())
    return calls
