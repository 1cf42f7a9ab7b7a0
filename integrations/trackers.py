"""What Leakseal asks of a tracker, whichever it is: the contract of jira.py and azure.py.

Every method talks HTTP through integrations/http.py and raises `TrackerError` (transient or
permanent) for anything that went wrong; none of them retries by itself — the push task
decides (integrations/tasks.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    pass


@dataclass(frozen=True)
class TicketDraft:
    """One preventative action as a ticket."""

    title: str
    description: str  # plain text with line breaks; each client formats it for its tracker
    label: str  # leakseal-<uuid>: how a retried push finds its own earlier ticket
    issue_type: str
    priority: str = ""
    escape_key: str = ""  # the escape's own issue in this tracker, to link to (if any)
    retro_url: str = ""


@dataclass(frozen=True)
class Placement:
    """Where a new ticket goes: a sprint (Jira) or an iteration path (Azure DevOps)."""

    name: str  # shown to people: the sprint's or iteration's name; "" for the backlog
    ref: str = ""  # Jira: the sprint id; Azure DevOps: the iteration path
    warning: str = ""  # e.g. "No future or active sprint: the ticket goes to the backlog"


@dataclass(frozen=True)
class Ticket:
    key: str  # Jira: PROJ-123; Azure DevOps: the work item id
    url: str  # a page a person can open
    status: str = ""
    done: bool = False
    sprint: str = ""


@dataclass(frozen=True)
class CheckResult:
    """What "Test connection" reports, a line per thing checked."""

    ok: bool
    lines: list[str] = field(default_factory=list)
    placement: Placement | None = None


@dataclass(frozen=True)
class RemoteIssue:
    """An issue or work item that matches the team's escape rule."""

    external_id: str  # Jira: the issue id; Azure DevOps: the work item id
    key: str
    url: str
    title: str
    description: str
    created_at: datetime | None
    updated_at: datetime | None
    resolved_at: datetime | None
    fields: dict[str, Any] = field(default_factory=dict)  # the raw fields, for the mapping


class TrackerClient(Protocol):
    def check(self) -> CheckResult: ...

    def find_ticket(self, label: str) -> Ticket | None:
        """The ticket carrying `label`, if an earlier try made one."""
        ...

    def find_tickets(self, label: str) -> list[Ticket]:
        """Every ticket carrying `label`, oldest first (more than one is a duplicate)."""
        ...

    def link_duplicate(self, duplicate: str, original: str) -> None:
        """Link ticket `duplicate` to `original` as its duplicate, in the tracker's own way."""
        ...

    def next_placement(self) -> Placement: ...

    def create_ticket(self, draft: TicketDraft, placement: Placement) -> Ticket: ...

    def place(self, ticket: Ticket, placement: Placement) -> None:
        """Put an existing ticket in the sprint (a no-op where creation placed it)."""
        ...

    def ticket(self, key: str) -> Ticket:
        """The ticket's current status."""
        ...

    def search_escapes(self, since: datetime | None) -> list[RemoteIssue]:
        """Issues matching the intake rule, changed since `since` (all of them if None)."""
        ...

    def remote_issue(self, key: str) -> RemoteIssue: ...
