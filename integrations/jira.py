"""Jira Cloud and Jira Data Center, through atlassian-python-api.

Both speak REST v2 here (the issue description is plain text there; v3 wants an Atlassian
Document) and the Agile API 1.0 for boards and sprints. The differences that remain:

* sign-in: Cloud takes the account's email and an API token (Basic), Data Center a personal
  access token (Bearer);
* search: Cloud answers JQL at /rest/api/3/search/jql (Atlassian removed /search there,
  changelog CHANGE-2046) with cursor pages; Data Center at /rest/api/2/search with offsets.

The library is told not to retry (it would sleep on a 429's Retry-After inside a worker) and
its timeout is replaced by ours; every failure leaves here as a `TrackerError`.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from datetime import datetime
from typing import Any, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import requests
from atlassian import Jira
from atlassian.errors import ApiError, ApiNotFoundError, ApiPermissionError
from django.conf import settings

from integrations.http import TrackerError, new_session, transport_error
from integrations.models import TrackerConnection, TrackerKind
from integrations.trackers import CheckResult, Placement, RemoteIssue, Ticket, TicketDraft

log = logging.getLogger(__name__)

T = TypeVar("T")

PAGE = 100
MAX_PAGES = 50  # 5,000 issues per poll: a runaway intake query stops here, not in memory
SUMMARY_MAX = 255  # Jira refuses longer summaries
LINK_TYPE = "Relates"
DUPLICATE_LINK_TYPE = "Duplicate"  # inward "is duplicated by", outward "duplicates"
MAX_DUPLICATES = 10  # tickets read per label: more than one is already a finding
# Data Center renders a sprint as "com.atlassian.greenhopper.service.sprint.Sprint@1a2b[id=3,
# rapidViewId=1,state=ACTIVE,name=SHOP Sprint 14,...]"; Cloud as an object with a name.
SPRINT_NAME = re.compile(r"[\[,]name=([^,\]]*)")


def jql_string(value: str) -> str:
    """`value` as a JQL string literal."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def parse_time(value: Any) -> datetime | None:
    """Jira's timestamps: 2023-06-16T11:51:05.291+0000."""
    if not value or not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None


def sprint_name(value: Any) -> str:
    """The name of the latest sprint in a Sprint field's value (Cloud or Data Center shape)."""
    entries = value if isinstance(value, list) else [value]
    for entry in reversed(entries):
        if isinstance(entry, dict) and entry.get("name"):
            return str(entry["name"])
        if isinstance(entry, str):
            match = SPRINT_NAME.search(entry)
            if match:
                return match.group(1)
    return ""


def strip_order_by(jql: str) -> str:
    """A team's JQL without its ORDER BY, so that it can be wrapped and combined."""
    return re.split(r"\border\s+by\b", jql, maxsplit=1, flags=re.IGNORECASE)[0].strip()


class JiraClient:
    def __init__(self, connection: TrackerConnection) -> None:
        self.connection = connection
        self.base_url = connection.base_url.rstrip("/")
        self.cloud = connection.kind == TrackerKind.JIRA_CLOUD
        self._time_zone: ZoneInfo | None = None
        self._problem = ""
        token = connection.token
        options: dict[str, Any] = {
            "session": new_session(),
            "backoff_and_retry": False,
            "retry_with_header": False,  # else the library sleeps on Retry-After and retries
        }
        if not token:
            self._problem = "No API token is set for this Jira connection"
        if self.cloud:
            if not connection.account_email:
                self._problem = "Jira Cloud signs in with an account email: none is set"
            self.jira = Jira(
                self.base_url,
                username=connection.account_email,
                password=token,
                cloud=True,
                **options,
            )
        else:
            self.jira = Jira(self.base_url, token=token or None, **options)
        # The library passes its own timeout (75 s, an int) to every request, which would win
        # over the session's default; ours is (connect, read) from settings.
        self.jira.timeout = (  # type: ignore[assignment]
            settings.TRACKER_CONNECT_TIMEOUT,
            settings.TRACKER_READ_TIMEOUT,
        )

    # --- The contract (integrations/trackers.py).

    def check(self) -> CheckResult:
        lines: list[str] = []
        step = "Signing in"
        try:
            me = self._myself()
            who = me.get("displayName") or me.get("emailAddress") or me.get("name") or "?"
            lines.append(f"Signed in as {who}")
            step = f"Project {self.connection.project}"
            project = self._dict(self._call(self.jira.project, self.connection.project))
            lines.append(f"Project {project.get('key') or self.connection.project} found")
            types = [t.get("name") for t in project.get("issueTypes") or []]
            if types and self.connection.issue_type not in types:
                lines.append(
                    f"Issue type {self.connection.issue_type} is not in project "
                    f"{self.connection.project} (it has {', '.join(map(str, types))})"
                )
                return CheckResult(ok=False, lines=lines)
            board_id = self.connection.board_id
            if board_id:
                step = f"Board {board_id}"
                self._call(self.jira.get_agile_board, board_id)
                lines.append(f"Board {board_id} found")
            step = "Finding the next sprint"
            placement = self.next_placement()
        except TrackerError as exc:
            lines.append(f"{step}: {exc.message}")
            return CheckResult(ok=False, lines=lines)
        if placement.ref:
            lines.append(f"Next ticket goes into sprint {placement.name}")
        else:
            lines.append(placement.warning)
        return CheckResult(ok=True, lines=lines, placement=placement)

    def find_ticket(self, label: str) -> Ticket | None:
        found = self._labelled(label, limit=1)
        return found[0] if found else None

    def find_tickets(self, label: str) -> list[Ticket]:
        return self._labelled(label, limit=MAX_DUPLICATES)

    def _labelled(self, label: str, *, limit: int) -> list[Ticket]:
        jql = (
            f"project = {jql_string(self.connection.project)} AND labels = {jql_string(label)} "
            "ORDER BY created ASC"
        )
        issues, names = self._search(jql, fields="*navigable", limit=limit)
        return [self._ticket(issue, names) for issue in issues]

    def link_duplicate(self, duplicate: str, original: str) -> None:
        # Jira shows the inward issue as "duplicates" the outward one: the outward issue
        # "is duplicated by" the inward one.
        link = {
            "type": {"name": DUPLICATE_LINK_TYPE},
            "inwardIssue": {"key": duplicate},
            "outwardIssue": {"key": original},
        }
        self._call(self.jira.create_issue_link, link)

    def next_placement(self) -> Placement:
        board_id = self.connection.board_id
        if not board_id:
            return Placement(name="", warning="No board is set: the ticket goes to the backlog")
        sprints = self._sprints(board_id, "future,active")
        # The Agile API orders sprints closed, active, future, each in board order.
        for state in ("future", "active"):
            for sprint in sprints:
                if sprint.get("state") == state:
                    return Placement(name=str(sprint.get("name", "")), ref=str(sprint["id"]))
        return Placement(
            name="",
            warning=f"No future or active sprint on board {board_id}: the ticket goes to the "
            "backlog",
        )

    def create_ticket(self, draft: TicketDraft, placement: Placement) -> Ticket:
        description = draft.description
        if draft.retro_url:
            description = f"{description}\n\nRetrospective: {draft.retro_url}".strip()
        fields: dict[str, Any] = {
            "project": {"key": self.connection.project},
            # Jira refuses a summary with a line break or over 255 characters.
            "summary": " ".join(draft.title.split())[:SUMMARY_MAX],
            "description": description,
            "issuetype": {"name": draft.issue_type or self.connection.issue_type},
            "labels": [draft.label],
        }
        priority = draft.priority or self.connection.priority
        if priority:
            fields["priority"] = {"name": priority}
        created = self._dict(
            self._call(self.jira.create_issue, fields=fields, update_history=False)
        )
        key = str(created.get("key") or "")
        if not key:
            raise TrackerError("Jira created the issue but did not say its key", transient=False)
        if draft.escape_key:
            self._link(key, draft.escape_key)
        return Ticket(key=key, url=self.browse_url(key), sprint=placement.name)

    def place(self, ticket: Ticket, placement: Placement) -> None:
        if not placement.ref:
            return  # the backlog: where a new issue is anyway
        sprint_id = int(placement.ref)
        self._call(self.jira.add_issues_to_sprint, sprint_id, [ticket.key])

    def ticket(self, key: str) -> Ticket:
        issue = self._issue(key)
        return self._ticket(issue, issue.get("names") or {})

    def search_escapes(self, since: datetime | None) -> list[RemoteIssue]:
        rule = strip_order_by(self.connection.intake_query)
        if not rule and self.connection.intake_label:
            rule = f"labels = {jql_string(self.connection.intake_label)}"
        if not rule:
            raise TrackerError(
                "Escape intake needs a JQL query or a label to recognise escapes", transient=False
            )
        clauses = [f"({rule})", f"project = {jql_string(self.connection.project)}"]
        if since is not None:
            # JQL reads dates in the signed-in user's time zone, to the minute; dropping the
            # seconds errs towards seeing an issue twice, which intake deduplicates.
            local = since.astimezone(self._user_time_zone())
            clauses.append(f'updated >= "{local:%Y-%m-%d %H:%M}"')
        jql = " AND ".join(clauses) + " ORDER BY updated ASC"
        issues, _ = self._search(jql, fields="*all")
        return [self._remote(issue) for issue in issues]

    def remote_issue(self, key: str) -> RemoteIssue:
        return self._remote(self._issue(key))

    # --- Helpers.

    def browse_url(self, key: str) -> str:
        return f"{self.base_url}/browse/{key}"

    def _call(self, method: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """`method(*args, **kwargs)` of the library, every failure turned into a TrackerError."""
        if self._problem:
            raise TrackerError(self._problem, transient=False)
        try:
            return method(*args, **kwargs)
        except requests.RequestException as exc:
            # `from None`: the request it carries holds the Authorization header.
            raise transport_error(exc) from None
        except ApiError as exc:
            status = (
                404
                if isinstance(exc, ApiNotFoundError)
                else 403
                if isinstance(exc, ApiPermissionError)
                else None
            )
            raise TrackerError(f"Jira: {exc}", transient=False, status=status) from None

    def _dict(self, body: Any) -> dict[str, Any]:
        if not isinstance(body, dict):
            raise TrackerError(
                f"The answer from {self.base_url} is not Jira's: is the site URL right?",
                transient=False,
            )
        return body

    def _myself(self) -> dict[str, Any]:
        me = self._dict(self._call(self.jira.myself))
        try:
            self._time_zone = ZoneInfo(str(me.get("timeZone") or "UTC"))
        except (ZoneInfoNotFoundError, ValueError):
            self._time_zone = ZoneInfo("UTC")
        return me

    def _user_time_zone(self) -> ZoneInfo:
        if self._time_zone is None:
            self._myself()
        assert self._time_zone is not None
        return self._time_zone

    def _issue(self, key: str) -> dict[str, Any]:
        return self._dict(
            self._call(self.jira.get_issue, key, expand="names", update_history=False)
        )

    def _sprints(self, board_id: int, state: str) -> list[dict[str, Any]]:
        sprints: list[dict[str, Any]] = []
        for _ in range(MAX_PAGES):
            start = len(sprints)
            page = self._dict(
                self._call(
                    self.jira.get_all_sprints_from_board,
                    board_id,
                    state=state,
                    start=start,
                    limit=50,
                )
            )
            values = page.get("values") or []
            sprints.extend(values)
            if page.get("isLast", True) or not values:
                break
        return sprints

    def _search(
        self, jql: str, *, fields: str, limit: int | None = None
    ) -> tuple[list[dict[str, Any]], dict[str, str]]:
        """Issues matching `jql`, all pages (up to `limit`), and the names of their fields."""
        issues: list[dict[str, Any]] = []
        names: dict[str, str] = {}
        token: str | None = None
        size = min(limit or PAGE, PAGE)
        for _ in range(MAX_PAGES):
            if self.cloud:
                page = self._dict(
                    self._call(
                        self.jira.enhanced_jql,
                        jql,
                        fields=fields,
                        nextPageToken=token,
                        limit=size,
                        expand="names",
                    )
                )
            else:
                start = len(issues)
                page = self._dict(
                    self._call(
                        self.jira.jql, jql, fields=fields, start=start, limit=size, expand="names"
                    )
                )
            values = page.get("issues") or []
            issues.extend(values)
            names.update(page.get("names") or {})
            if limit is not None and len(issues) >= limit:
                return issues[:limit], names
            if self.cloud:
                token = page.get("nextPageToken")
                if page.get("isLast", True) or not token:
                    break
            elif not values or len(issues) >= int(page.get("total") or 0):
                break
        else:
            log.warning("Jira search stopped after %d pages: %s", MAX_PAGES, jql)
        return issues, names

    def _ticket(self, issue: dict[str, Any], names: dict[str, str]) -> Ticket:
        fields = issue.get("fields") or {}
        status = fields.get("status") or {}
        category = (status.get("statusCategory") or {}).get("key")
        sprint = ""
        for field_id, name in names.items():
            if name == "Sprint" and fields.get(field_id):
                sprint = sprint_name(fields[field_id])
        key = str(issue.get("key", ""))
        return Ticket(
            key=key,
            url=self.browse_url(key),
            status=str(status.get("name") or ""),
            done=category == "done",
            sprint=sprint,
        )

    def _remote(self, issue: dict[str, Any]) -> RemoteIssue:
        fields = issue.get("fields") or {}
        description = fields.get("description")
        key = str(issue.get("key", ""))
        return RemoteIssue(
            external_id=str(issue.get("id", "")),
            key=key,
            url=self.browse_url(key),
            title=str(fields.get("summary") or ""),
            description=description if isinstance(description, str) else "",
            created_at=parse_time(fields.get("created")),
            updated_at=parse_time(fields.get("updated")),
            resolved_at=parse_time(fields.get("resolutiondate")),
            fields=fields,
        )

    def _link(self, key: str, escape_key: str) -> None:
        """Link the new ticket to the escape's issue; a failure here does not undo the ticket.

        The ticket is what matters and it exists now; failing the push would only make the
        retry find it and skip the link anyway. The failure is logged for the admin.
        """
        link = {
            "type": {"name": LINK_TYPE},
            "inwardIssue": {"key": escape_key},
            "outwardIssue": {"key": key},
        }
        try:
            self._call(self.jira.create_issue_link, link)
        except TrackerError as exc:
            log.warning("Could not link Jira issue %s to %s: %s", key, escape_key, exc.message)
