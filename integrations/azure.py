"""Azure DevOps Services / Server: work items over plain HTTP (REST API 7.1).

Endpoints used, all from the Work Item Tracking and Work 7.1 documents (tests/fakes/specs/):

* GET  {org}/{project}/{team}/_apis/work/teamsettings/iterations — placement, and the proof
  that the PAT, the project and the team are right ("Test connection");
* GET  {org}/{project}/{team}/_apis/work/teamsettings/teamfieldvalues — the team's area, so
  the work item shows on the team's board and not only in the project's;
* GET  {org}/{project}/_apis/wit/workitemtypes/{type} — "Test connection" of the type;
* POST {org}/{project}/_apis/wit/workitems/${type} — create, a JSON Patch list;
* GET/PATCH {org}/{project}/_apis/wit/workitems/{id}, GET ...workitems?ids= — read, update;
* POST {org}/{project}/{team}/_apis/wit/wiql — find our earlier ticket by its tag, escapes.

Auth is Basic with an empty user name and the personal access token as the password. Every
request carries api-version=7.1; collections come as {"count", "value"}.

Choices worth knowing:

* Done: the states "Done" (Basic, Scrum) and "Closed" (Agile, CMMI). "Resolved" is not done:
  in Agile and CMMI it means fixed but not yet verified, and "Removed" means it will not be.
* Priority (Microsoft.VSTS.Common.Priority, 1 highest … 4 lowest): "1".."4", or a name —
  Critical/Highest → 1, High → 2, Medium/Normal → 3, Low/Lowest → 4 (see `ado_priority`).
* No future or current iteration: the work item goes to the project's root iteration, which
  is the backlog, with a warning.
"""

from __future__ import annotations

import base64
import html
import re
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, urlsplit

import requests

from integrations.http import TrackerError, check, new_session, transport_error
from integrations.models import TrackerConnection
from integrations.trackers import CheckResult, Placement, RemoteIssue, Ticket, TicketDraft

API_VERSION = "7.1"
DONE_STATES = frozenset({"Done", "Closed"})
PRIORITY_NAMES = {
    "critical": 1,
    "highest": 1,
    "high": 2,
    "medium": 3,
    "normal": 3,
    "low": 4,
    "lowest": 4,
}
DEFAULT_ESCAPE_TAG = "escape"
MAX_TITLE = 255  # System.Title's limit
BATCH = 200  # the most ids GET workitems?ids= takes
DUPLICATE_LINK = "System.LinkTypes.Duplicate-Forward"  # "Duplicate"; its reverse "Duplicate Of"
MAX_DUPLICATES = 10  # work items read per tag: more than one is already a finding


def ado_priority(value: str) -> int | None:
    """Microsoft.VSTS.Common.Priority for a priority as a person writes it; None if blank."""
    text = value.strip()
    if not text:
        return None
    if text in ("1", "2", "3", "4"):
        return int(text)
    if text.lower() in PRIORITY_NAMES:
        return PRIORITY_NAMES[text.lower()]
    raise ValueError(f"Priority {text!r} is not 1-4 or one of Critical, High, Medium, Low")


def wiql_string(value: str) -> str:
    """A WIQL string literal: single quotes, a quote inside doubled."""
    return "'" + value.replace("'", "''") + "'"


def html_text(text: str) -> str:
    """Plain text as the HTML System.Description holds: escaped, line breaks kept."""
    lines = html.escape(text.strip()).replace("\r\n", "\n").split("\n")
    return "<br>".join(lines)


def plain_text(value: str) -> str:
    """System.Description / Repro Steps (HTML) as plain text."""
    text = re.sub(r"(?i)<br\s*/?>|</p>|</div>|</li>", "\n", value or "")
    text = re.sub(r"<[^>]+>", "", text)
    return re.sub(r"\n{3,}", "\n\n", html.unescape(text)).strip()


def parse_time(value: Any) -> datetime | None:
    if not value or not isinstance(value, str):
        return None
    try:
        when = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


class AzureClient:
    def __init__(self, connection: TrackerConnection) -> None:
        self.connection = connection
        self.base_url = connection.base_url.rstrip("/")
        self.org = urlsplit(self.base_url).path.rstrip("/").rsplit("/", 1)[-1] or self.base_url
        self.project = connection.project
        # Every project has a default team named "<project> Team"; WIQL and iterations are
        # asked of a team.
        self.team = connection.ado_team or f"{connection.project} Team"
        credentials = base64.b64encode(f":{connection.token}".encode()).decode()
        self.session = new_session({"Authorization": f"Basic {credentials}"})

    # --- HTTP.

    def _project_url(self, tail: str) -> str:
        return f"{self.base_url}/{quote(self.project, safe='')}/_apis/{tail}"

    def _team_url(self, tail: str) -> str:
        project, team = quote(self.project, safe=""), quote(self.team, safe="")
        return f"{self.base_url}/{project}/{team}/_apis/{tail}"

    def _call(
        self,
        method: str,
        url: str,
        *,
        params: dict[str, str] | None = None,
        body: Any = None,
        patch: bool = False,
    ) -> Any:
        headers = {"Content-Type": "application/json-patch+json"} if patch else {}
        try:
            response = self.session.request(
                method,
                url,
                params={**(params or {}), "api-version": API_VERSION},
                json=body,
                headers=headers,
                # A bad PAT may be answered with a redirect to the sign-in page.
                allow_redirects=False,
            )
        except requests.RequestException as exc:
            raise transport_error(exc) from None
        check(response)
        if response.status_code != 200:
            raise TrackerError(
                f"HTTP {response.status_code}: Azure DevOps answered with a redirect or a "
                "sign-in page; check the organization URL and the personal access token",
                transient=False,
                status=response.status_code,
            )
        try:
            return response.json()
        except ValueError:
            raise TrackerError(
                "Azure DevOps answered with something that is not JSON; check the organization URL",
                transient=False,
                status=response.status_code,
            ) from None

    def _values(self, answer: Any) -> list[dict[str, Any]]:
        if isinstance(answer, dict) and isinstance(answer.get("value"), list):
            return answer["value"]
        raise TrackerError("Azure DevOps answered without a list of values", transient=False)

    # --- Reads.

    def _iterations(self) -> list[dict[str, Any]]:
        return self._values(self._call("GET", self._team_url("work/teamsettings/iterations")))

    def _work_item(self, key: str) -> dict[str, Any]:
        if not str(key).isdigit():
            raise TrackerError(f"{key!r} is not a work item id", transient=False)
        answer = self._call("GET", self._project_url(f"wit/workitems/{key}"))
        return answer if isinstance(answer, dict) else {}

    def _work_items(self, ids: list[int]) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        for start in range(0, len(ids), BATCH):
            chunk = ",".join(str(i) for i in ids[start : start + BATCH])
            answer = self._call("GET", self._project_url("wit/workitems"), params={"ids": chunk})
            items.extend(self._values(answer))
        return items

    def _query(self, where: str, *, order: str = "[System.Id]") -> list[int]:
        # WIQL, not SQL, and run with the team's own PAT: values come in through wiql_string.
        wiql = f"SELECT [System.Id] FROM WorkItems WHERE {where} ORDER BY {order}"  # noqa: S608
        answer = self._call(
            "POST",
            self._team_url("wit/wiql"),
            # Without timePrecision, dates compare as whole days.
            params={"timePrecision": "true"},
            body={"query": wiql},
        )
        items = answer.get("workItems") if isinstance(answer, dict) else None
        return [int(item["id"]) for item in items or [] if "id" in item]

    def _in_project(self, condition: str) -> str:
        return f"[System.TeamProject] = {wiql_string(self.project)} AND {condition}"

    def _ticket(self, item: dict[str, Any]) -> Ticket:
        fields = item.get("fields") or {}
        state = str(fields.get("System.State") or "")
        return Ticket(
            key=str(item["id"]),
            url=self._html_url(item),
            status=state,
            done=state in DONE_STATES,
            sprint=self._sprint(fields),
        )

    def _sprint(self, fields: dict[str, Any]) -> str:
        # The project's root iteration is the backlog, not a sprint.
        path = str(fields.get("System.IterationPath") or "")
        return "" if path == self.project else path

    def _html_url(self, item: dict[str, Any]) -> str:
        href = ((item.get("_links") or {}).get("html") or {}).get("href")
        if href:
            return str(href)
        return f"{self.base_url}/{quote(self.project, safe='')}/_workitems/edit/{item['id']}"

    # --- The contract.

    def check(self) -> CheckResult:
        lines: list[str] = []
        try:
            iterations = self._iterations()
            lines.append(f"Signed in to {self.org}")
            lines.append(f"Project {self.project}, team {self.team} found")
            kind = self.connection.issue_type
            self._call("GET", self._project_url(f"wit/workitemtypes/{quote(kind, safe='')}"))
            lines.append(f"Work item type {kind} exists")
            placement = self._placement(iterations)
        except TrackerError as exc:
            lines.append(self._explain(exc))
            return CheckResult(ok=False, lines=lines)
        if placement.ref:
            lines.append(f"Next work item goes into iteration {placement.ref}")
        if placement.warning:
            lines.append(placement.warning)
        return CheckResult(ok=True, lines=lines, placement=placement)

    def _explain(self, exc: TrackerError) -> str:
        if exc.status == 401:
            return (
                f"Azure DevOps refused the personal access token for {self.org} "
                f"({exc.message}): it may be wrong, expired, or lack the Work Items scope"
            )
        return exc.message

    def find_ticket(self, label: str) -> Ticket | None:
        ids = self._query(self._in_project(f"[System.Tags] CONTAINS {wiql_string(label)}"))
        if not ids:
            return None
        return self._ticket(self._work_item(str(ids[0])))

    def find_tickets(self, label: str) -> list[Ticket]:
        # Ordered by id: Azure DevOps numbers work items as it creates them.
        ids = self._query(self._in_project(f"[System.Tags] CONTAINS {wiql_string(label)}"))
        items = self._work_items(ids[:MAX_DUPLICATES])
        items.sort(key=lambda item: int(item.get("id") or 0))
        return [self._ticket(item) for item in items]

    def link_duplicate(self, duplicate: str, original: str) -> None:
        # On the original: "Duplicate" (forward) points at the extra one, which then shows
        # "Duplicate Of" the original.
        patch = [
            {
                "op": "add",
                "path": "/relations/-",
                "value": {
                    "rel": DUPLICATE_LINK,
                    "url": f"{self.base_url}/_apis/wit/workItems/{duplicate}",
                    "attributes": {
                        "comment": "Made twice for one Leakseal action; keep the original"
                    },
                },
            }
        ]
        self._call("PATCH", self._project_url(f"wit/workitems/{original}"), body=patch, patch=True)

    def next_placement(self) -> Placement:
        return self._placement(self._iterations())

    def _placement(self, iterations: Iterable[dict[str, Any]]) -> Placement:
        listed = [it for it in iterations if it.get("path")]

        def by_frame(frame: str) -> list[dict[str, Any]]:
            chosen = [it for it in listed if (it.get("attributes") or {}).get("timeFrame") == frame]
            # Undated iterations last; ISO dates sort as text.
            return sorted(
                chosen, key=lambda it: (it["attributes"].get("startDate") or "9999", it["path"])
            )

        future = by_frame("future")
        if future:
            return Placement(name=future[0].get("name") or "", ref=future[0]["path"])
        current = by_frame("current")
        if current:
            return Placement(
                name=current[0].get("name") or "",
                ref=current[0]["path"],
                warning=(
                    f"Team {self.team} has no future iteration: the work item goes into the "
                    f"current one, {current[0]['path']}"
                ),
            )
        return Placement(
            name="",
            warning=(
                f"Team {self.team} has no current or future iteration: the work item goes to "
                "the backlog"
            ),
        )

    def create_ticket(self, draft: TicketDraft, placement: Placement) -> Ticket:
        try:
            priority = ado_priority(draft.priority or self.connection.priority)
        except ValueError as exc:
            raise TrackerError(str(exc), transient=False) from None
        description = html_text(draft.description)
        if draft.retro_url:
            link = html.escape(draft.retro_url, quote=True)
            description += f'<br><br>Retrospective: <a href="{link}">{link}</a>'
        fields: dict[str, Any] = {
            "System.Title": draft.title.strip()[:MAX_TITLE],
            "System.Description": description,
            "System.Tags": draft.label,
        }
        area = self._team_area()
        if area:
            fields["System.AreaPath"] = area
        if placement.ref:
            fields["System.IterationPath"] = placement.ref
        if priority is not None:
            fields["Microsoft.VSTS.Common.Priority"] = priority
        patch: list[dict[str, Any]] = [
            {"op": "add", "path": f"/fields/{name}", "value": value}
            for name, value in fields.items()
        ]
        if draft.escape_key:
            patch.append(self._related(draft.escape_key))
        kind = quote(draft.issue_type or self.connection.issue_type, safe="")
        item = self._call(
            "POST", self._project_url(f"wit/workitems/${kind}"), body=patch, patch=True
        )
        return self._ticket(item)

    def _related(self, escape_key: str) -> dict[str, Any]:
        return {
            "op": "add",
            "path": "/relations/-",
            "value": {
                "rel": "System.LinkTypes.Related",
                "url": f"{self.base_url}/_apis/wit/workItems/{escape_key}",
                "attributes": {"comment": "The escape this preventative action seals"},
            },
        }

    def _team_area(self) -> str:
        """The team's default area path, when the team field is the area (the usual case)."""
        answer = self._call("GET", self._team_url("work/teamsettings/teamfieldvalues"))
        if not isinstance(answer, dict):
            return ""
        field = (answer.get("field") or {}).get("referenceName")
        if field not in (None, "System.AreaPath"):
            return ""
        return str(answer.get("defaultValue") or "")

    def place(self, ticket: Ticket, placement: Placement) -> None:
        # Creation already set the iteration. An earlier try's ticket in the backlog is moved;
        # one somebody put into another sprint stays where they put it.
        if ticket.sprint or not placement.ref:
            return
        patch = [{"op": "add", "path": "/fields/System.IterationPath", "value": placement.ref}]
        self._call(
            "PATCH", self._project_url(f"wit/workitems/{ticket.key}"), body=patch, patch=True
        )

    def ticket(self, key: str) -> Ticket:
        return self._ticket(self._work_item(key))

    def search_escapes(self, since: datetime | None) -> list[RemoteIssue]:
        # The team's WIQL condition, else its intake tag ("escape" unless set).
        tag = self.connection.intake_label or DEFAULT_ESCAPE_TAG
        rule = self.connection.intake_query.strip() or f"[System.Tags] CONTAINS {wiql_string(tag)}"
        condition = f"({rule})"
        if since is not None:
            stamp = since.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
            condition += f" AND [System.ChangedDate] >= {wiql_string(stamp)}"
        ids = self._query(self._in_project(condition), order="[System.ChangedDate]")
        return [self._remote(item) for item in self._work_items(ids)]

    def remote_issue(self, key: str) -> RemoteIssue:
        return self._remote(self._work_item(key))

    def _remote(self, item: dict[str, Any]) -> RemoteIssue:
        fields = dict(item.get("fields") or {})
        # A Bug keeps its text in Repro Steps; the other types in Description.
        text = fields.get("System.Description") or fields.get("Microsoft.VSTS.TCM.ReproSteps")
        return RemoteIssue(
            external_id=str(item["id"]),
            key=str(item["id"]),
            url=self._html_url(item),
            title=str(fields.get("System.Title") or ""),
            description=plain_text(str(text or "")),
            created_at=parse_time(fields.get("System.CreatedDate")),
            updated_at=parse_time(fields.get("System.ChangedDate")),
            resolved_at=parse_time(
                fields.get("Microsoft.VSTS.Common.ResolvedDate")
                or fields.get("Microsoft.VSTS.Common.ClosedDate")
            ),
            fields=fields,
        )
