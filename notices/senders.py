"""Who sends a notice of each channel: one function per channel, registered at import.

    @sender(Channel.SLACK)
    def send(notice: Notice) -> dict | None: ...

A sender raises `Transient` when trying again later can help (a timeout, 5xx, 429 with its
Retry-After) and `Permanent` when it cannot (a refused address, a revoked webhook); its
message is shown in the delivery log, so it names what is wrong and holds no secret. What it
returns (a page's id and address, say) is kept on the notice.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from notices.models import Notice

Send = Callable[["Notice"], dict[str, Any] | None]
SENDERS: dict[str, Send] = {}


class Transient(Exception):
    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.retry_after = retry_after


class Permanent(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def sender(channel: str) -> Callable[[Send], Send]:
    def register(send: Send) -> Send:
        SENDERS[str(channel)] = send
        return send

    return register
