"""A fake Jira (Cloud and Data Center) over real HTTP, answering as Atlassian's specs say.

One module over 600 lines on purpose: it is one vendor's API surface, endpoint by endpoint,
and reads best as a single map of what Leakseal calls there.

It serves what integrations/jira.py asks through atlassian-python-api: sign-in (`myself`),
project, board and its sprints, create issue, issue link, move to sprint, get issue and JQL
search (`/rest/api/2/search` as Data Center has it; `/rest/api/3/search/jql`, the enhanced
search that Jira Cloud answers since Atlassian retired `/search` there, see
`enhanced_search_spec`). Every exchange is checked against the specs by FakeTracker.

    fake = FakeJira().start()
    fake.add_escape_issue(summary="Refunds fail")       # an escape reported in Jira
    fake.set_status("SHOP-1", "Done", done=True)        # a person moved a ticket
    fake.set_sprints([("SHOP Sprint 14", "active")])     # no future sprint

Accounts (tests/fakes/accounts.py): Cloud signs in with Basic JIRA_EMAIL:JIRA_TOKEN, Data
Center with Bearer JIRA_PAT. JQL date literals are read in the signed-in user's time zone
(`USER_TIME_ZONE`, as Jira does), so a client that sends UTC times misses issues.
"""

from __future__ import annotations

import base64
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Any
from zoneinfo import ZoneInfo

from referencing import Registry, Resource
from referencing.jsonschema import DRAFT4

from tests.fakes import accounts
from tests.fakes.server import FakeTracker, HttpError, Reply, Request
from tests.fakes.spec import Operation, Spec, spec

# Jira Cloud's Sprint field; a site's id differs, which is why clients find it by its name.
SPRINT_FIELD = "customfield_10020"
USER_TIME_ZONE = "Australia/Sydney"
ISSUE_TYPES = {"Task": "10001", "Bug": "10002", "Story": "10003"}
PRIORITIES = {"Highest": "1", "High": "2", "Medium": "3", "Low": "4", "Lowest": "5"}
LINK_TYPES = {
    "Relates": ("10003", "relates to", "relates to"),
    "Blocks": ("10000", "is blocked by", "blocks"),
    "Duplicate": ("10002", "is duplicated by", "duplicates"),
}
SETTABLE = {
    "project",
    "summary",
    "description",
    "issuetype",
    "labels",
    "priority",
    "components",
    "fixVersions",
    "duedate",
    "assignee",
    "reporter",
}
NEW_STATUSES = {"to do", "open", "backlog", "new"}
UNAUTHORIZED = "Client must be authenticated to access this resource."

ENHANCED_SEARCH = "/rest/api/3/search/jql"


@cache
def enhanced_search_spec() -> Spec:
    """GET /rest/api/3/search/jql, from Atlassian's current Jira Cloud platform document.

    The Aug 2023 snapshot in specs/ predates it (added 2024); Atlassian then removed
    `/rest/api/{2,3}/search` from Jira Cloud (changelog CHANGE-2046), and
    atlassian-python-api sends Cloud searches here. The operation below is transcribed from
    the current document (parameters and the SearchAndReconcileResults schema) and uses the
    snapshot's own IssueBean and JsonTypeBean schemas.
    """
    platform = Spec("jira_platform.json")
    results = {
        "type": "object",
        "properties": {
            "isLast": {"type": "boolean"},
            "issues": {"type": "array", "items": {"$ref": "#/components/schemas/IssueBean"}},
            "names": {"type": "object", "additionalProperties": {"type": "string"}},
            "nextPageToken": {"type": "string"},
            "schema": {
                "type": "object",
                "additionalProperties": {"$ref": "#/components/schemas/JsonTypeBean"},
            },
        },
        "additionalProperties": False,
    }
    string = {"type": "string"}
    strings = {"type": "array", "items": string}
    params = [
        {"name": "jql", "in": "query", "schema": string},
        {"name": "nextPageToken", "in": "query", "schema": string},
        {"name": "maxResults", "in": "query", "schema": {"type": "integer"}},
        {"name": "fields", "in": "query", "schema": strings},
        {"name": "expand", "in": "query", "schema": string},
        {"name": "properties", "in": "query", "schema": strings},
        {"name": "fieldsByKeys", "in": "query", "schema": {"type": "boolean"}},
        {"name": "failFast", "in": "query", "schema": {"type": "boolean"}},
        {"name": "reconcileIssues", "in": "query", "schema": {"type": "array"}},
    ]
    operation = {
        "operationId": "searchAndReconsileIssuesUsingJql",
        "parameters": params,
        "responses": {
            "200": {"content": {"application/json": {"schema": results}}},
            "400": {"description": "Returned if the JQL query is invalid."},
            "401": {"description": "Returned if the authentication credentials are incorrect."},
        },
    }
    # A Spec of this one operation: the snapshot's schemas, none of its paths.
    supplement = platform
    supplement.name = "jira_platform.json (+ enhanced search)"
    supplement.doc = {
        "openapi": platform.doc.get("openapi", "3.0.1"),
        "paths": {ENHANCED_SEARCH: {"get": operation}},
        "components": platform.doc["components"],
    }
    supplement.uri = "urn:leakseal-spec:jira_enhanced_search"
    supplement.registry = Registry().with_resource(
        supplement.uri, Resource.from_contents(supplement.doc, default_specification=DRAFT4)
    )
    pointer = "/paths/~1rest~1api~13~1search~1jql/get"
    supplement.operations = [
        (
            Spec._pattern(ENHANCED_SEARCH),
            Operation("GET", ENHANCED_SEARCH, pointer, operation, params),
        )
    ]
    return supplement


def jira_time(value: datetime) -> str:
    """Jira's own timestamp format: 2023-06-16T11:51:05.291+0000."""
    value = value.astimezone(UTC)
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}+0000"


def _as_time(value: Any) -> datetime:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    return datetime.fromisoformat(str(value))


def _error(status: int, message: str, errors: dict[str, str] | None = None) -> HttpError:
    return HttpError(
        status, {"errorMessages": [message] if message else [], "errors": errors or {}}
    )


@dataclass
class Issue:
    id: str
    key: str
    project: str
    fields: dict[str, Any]
    created: datetime
    updated: datetime
    status: str = "To Do"
    category: str = "new"
    resolved: datetime | None = None
    sprint: int | None = None
    leakseal: bool = False  # created through the API (a Leakseal ticket), not an escape
    previous_status: str = ""
    links: list[dict[str, Any]] = field(default_factory=list)
    made_at: float = field(default_factory=time.monotonic)  # for the search's lag


@dataclass
class Sprint:
    id: int
    name: str
    state: str  # closed | active | future


class JqlError(Exception):
    pass


class FakeJira(FakeTracker):
    specs = [spec("jira_platform.json"), spec("jira_software.json"), enhanced_search_spec()]

    def __init__(self, *, latency: float = 0.0, search_lag: float = 0.0) -> None:
        super().__init__(latency=latency)
        # Seconds before a new issue shows in JQL searches (Jira Cloud's search is eventually
        # consistent); reads by key see it at once, as in Jira.
        self.search_lag = search_lag
        self.projects = {accounts.JIRA_PROJECT: {"id": "10000", "name": "Shop"}}
        self.boards = {accounts.JIRA_BOARD: accounts.JIRA_PROJECT}
        self.issues: dict[str, Issue] = {}
        self.sprints: list[Sprint] = []
        self._next_id = 10000
        self._next_number: dict[str, int] = {}
        self._next_sprint = 1
        self.set_sprints(
            [
                ("SHOP Sprint 13", "closed"),
                ("SHOP Sprint 14", "active"),
                ("SHOP Sprint 15", "future"),
            ]
        )

    # --- What tests use (the contract of common fakes).

    def tickets(self) -> list[dict[str, Any]]:
        """The issues Leakseal created, oldest first."""
        with self.lock:
            return [self._ticket(issue) for issue in self.issues.values() if issue.leakseal]

    def issue(self, key: str) -> dict[str, Any]:
        with self.lock:
            return self._ticket(self.issues[key])

    def set_status(self, key: str, status: str, done: bool) -> None:
        with self.lock:
            issue = self.issues[key]
            issue.previous_status = issue.status
            issue.status = status
            issue.category = "done" if done else self._category(status)
            issue.resolved = datetime.now(UTC) if done else None
            issue.updated = datetime.now(UTC)

    def add_escape_issue(self, **fields: Any) -> str:
        """An issue somebody reported in Jira (not Leakseal's); returns its key.

        Defaults: a Bug in SHOP labelled "escape". `created`, `updated`, `resolutiondate`
        take datetimes; `components`/`fixVersions` take names; anything else (customfield_*)
        is stored as given.
        """
        now = datetime.now(UTC)
        project = fields.pop("project", accounts.JIRA_PROJECT)
        created = _as_time(fields.pop("created", now))
        updated = _as_time(fields.pop("updated", created))
        resolved = fields.pop("resolutiondate", None)
        status = fields.pop("status", "Done" if resolved else "To Do")
        values: dict[str, Any] = {
            "summary": "Checkout total ignores the coupon",
            "description": "Customers were charged the full price.",
            "labels": ["escape"],
            "issuetype": "Bug",
            "priority": "High",
            **fields,
        }
        values["issuetype"] = self._issue_type(str(values["issuetype"]))
        values["priority"] = {
            "id": PRIORITIES.get(values["priority"], "3"),
            "name": values["priority"],
        }
        for name in ("components", "fixVersions"):
            values[name] = [
                v if isinstance(v, dict) else {"id": str(i + 1), "name": v}
                for i, v in enumerate(values.get(name) or [])
            ]
        with self.lock:
            issue = self._new_issue(project, values, created=created)
            issue.updated = updated
            issue.status = status
            issue.category = "done" if resolved else self._category(status)
            issue.resolved = _as_time(resolved) if resolved else None
            return issue.key

    def duplicate_ticket(self, key: str) -> str:
        """A second issue made from Leakseal's ticket `key` (same label), as a lost race would."""
        with self.lock:
            original = self.issues[key]
            values = {k: v for k, v in original.fields.items()}
            values["labels"] = list(original.fields.get("labels") or [])
            copy = self._new_issue(original.project, values, created=datetime.now(UTC))
            copy.leakseal = True
            return copy.key

    def set_sprints(self, sprints: list[tuple[str, str]]) -> None:
        """Board 1's sprints, in board order (states: closed, active, future)."""
        with self.lock:
            self.sprints = []
            for name, state in sprints:
                self.sprints.append(Sprint(self._next_sprint, name, state))
                self._next_sprint += 1

    def sprint_named(self, name: str) -> Sprint:
        with self.lock:
            return next(s for s in self.sprints if s.name == name)

    def webhook_body(self, key: str, event: str = "jira:issue_updated") -> dict[str, Any]:
        """What Jira POSTs for `key` (shape of specs/jira_issue_updated_trimmed.json)."""
        with self.lock:
            issue = self.issues[key]
            body: dict[str, Any] = {
                "timestamp": int(datetime.now(UTC).timestamp() * 1000),
                "webhookEvent": event,
                "issue_event_type_name": (
                    "issue_created" if event == "jira:issue_created" else "issue_generic"
                ),
                "user": {
                    "self": f"{self.url}/rest/api/2/user?accountId=557058%3A69f3",
                    "accountId": "557058:69f3",
                    "displayName": "Dana Reporter",
                    "active": True,
                    "accountType": "atlassian",
                },
                "issue": self._issue_json(issue, None),
            }
            if event == "jira:issue_updated":
                body["changelog"] = {
                    "id": str(10000 + len(self.requests)),
                    "items": [
                        {
                            "field": "status",
                            "fieldtype": "jira",
                            "fieldId": "status",
                            "fromString": issue.previous_status or "To Do",
                            "toString": issue.status,
                        }
                    ],
                }
            return body

    def error_body(self, status: int, message: str) -> Any:
        return {"errorMessages": [message], "errors": {}}

    # --- HTTP.

    def handle(self, request: Request) -> Reply:
        user = self._user(request)
        if user is None:
            raise _error(401, UNAUTHORIZED)
        for method, pattern, handler in self._routes():
            match = re.fullmatch(pattern, request.path)
            if match and request.method == method:
                with self.lock:
                    return handler(request, user, *match.groups())
        raise _error(404, "null for uri: " + request.path)

    def _routes(self) -> list[tuple[str, str, Callable[..., Reply]]]:
        api = r"/rest/api/[23]"
        return [
            ("GET", rf"{api}/myself", self._myself),
            ("GET", rf"{api}/serverInfo", self._server_info),
            ("GET", rf"{api}/project/([^/]+)", self._project),
            ("POST", r"/rest/api/([23])/issue", self._create),
            ("GET", rf"{api}/issue/([^/]+)", self._get_issue),
            ("POST", rf"{api}/issueLink", self._link),
            ("GET", rf"{api}/search", self._search),
            ("GET", rf"{api}/search/jql", self._enhanced_search),
            ("GET", r"/rest/agile/1\.0/board/(\d+)", self._board),
            ("GET", r"/rest/agile/1\.0/board/(\d+)/sprint", self._board_sprints),
            ("POST", r"/rest/agile/1\.0/sprint/(\d+)/issue", self._move_to_sprint),
        ]

    def _user(self, request: Request) -> str | None:
        header = request.headers.get("authorization", "")
        basic = base64.b64encode(f"{accounts.JIRA_EMAIL}:{accounts.JIRA_TOKEN}".encode()).decode()
        if header == f"Basic {basic}":
            return "cloud"
        if header == f"Bearer {accounts.JIRA_PAT}":
            return "dc"
        return None

    # --- Platform.

    def _myself(self, request: Request, user: str) -> Reply:
        body: dict[str, Any] = {
            "self": f"{self.url}/rest/api/2/myself",
            "emailAddress": accounts.JIRA_EMAIL,
            "displayName": "Leakseal Bot",
            "active": True,
            "timeZone": USER_TIME_ZONE,
            "locale": "en_US",
        }
        if user == "cloud":
            body.update(accountId="5b10a2844c20165700ede21g", accountType="atlassian")
        else:
            body.update(key="JIRAUSER10100", name="leakseal-bot")
        return Reply(200, body)

    def _server_info(self, request: Request, user: str) -> Reply:
        return Reply(
            200,
            {
                "baseUrl": self.url,
                "version": "1001.0.0-SNAPSHOT" if user == "cloud" else "9.12.2",
                "versionNumbers": [1001, 0, 0] if user == "cloud" else [9, 12, 2],
                "deploymentType": "Cloud" if user == "cloud" else "Server",
                "buildNumber": 100229,
                "serverTime": jira_time(datetime.now(UTC)),
            },
        )

    def _project(self, request: Request, user: str, key: str) -> Reply:
        project = self.projects.get(key.upper())
        if project is None:
            raise _error(404, f"No project could be found with key '{key}'.")
        return Reply(
            200,
            {
                "self": f"{self.url}/rest/api/2/project/{project['id']}",
                "id": project["id"],
                "key": key.upper(),
                "name": project["name"],
                "projectTypeKey": "software",
                "simplified": False,
                "style": "classic",
                "isPrivate": False,
                "issueTypes": [
                    {"id": type_id, "name": name, "subtask": False, "hierarchyLevel": 0}
                    for name, type_id in ISSUE_TYPES.items()
                ],
            },
        )

    def _create(self, request: Request, user: str, version: str) -> Reply:
        body = request.json() or {}
        fields = body.get("fields") or {}
        errors: dict[str, str] = {}
        project = fields.get("project") or {}
        project_key = str(project.get("key") or "").upper()
        if project_key not in self.projects:
            errors["project"] = "valid project is required"
        summary = fields.get("summary")
        if not isinstance(summary, str) or not summary.strip():
            errors["summary"] = "You must specify a summary of the issue."
        elif len(summary) > 255:
            errors["summary"] = "Summary must be less than 255 characters."
        elif "\n" in summary or "\r" in summary:
            errors["summary"] = "The summary is invalid because it contains newline characters."
        issue_type = (fields.get("issuetype") or {}).get("name")
        if not issue_type:
            errors["issuetype"] = "Specify an issue type"
        elif issue_type not in ISSUE_TYPES:
            errors["issuetype"] = "Specify a valid issue type"
        priority = (fields.get("priority") or {}).get("name", "Medium")
        if priority not in PRIORITIES:
            errors["priority"] = f"Priority name '{priority}' is not valid"
        for label in fields.get("labels") or []:
            if not isinstance(label, str) or " " in label or len(label) > 255:
                errors["labels"] = f"The label '{label}' contains spaces which is invalid."
        description = fields.get("description")
        if version == "3" and description is not None and not isinstance(description, dict):
            errors["description"] = "Operation value must be an Atlassian Document (see the "
            errors["description"] += "Atlassian Document Format)"
        for name in fields:
            if name not in SETTABLE and not name.startswith("customfield_"):
                errors[name] = (
                    f"Field '{name}' cannot be set. It is not on the appropriate screen, "
                    "or unknown."
                )
        if errors:
            raise _error(400, "", errors)
        values = dict(fields)
        values.pop("project")
        values["issuetype"] = self._issue_type(str(issue_type))
        values["priority"] = {"id": PRIORITIES[priority], "name": priority}
        values.setdefault("labels", [])
        issue = self._new_issue(project_key, values, created=datetime.now(UTC))
        issue.leakseal = True
        return Reply(
            201,
            {"id": issue.id, "key": issue.key, "self": f"{self.url}/rest/api/2/issue/{issue.id}"},
        )

    def _get_issue(self, request: Request, user: str, key: str) -> Reply:
        issue = self._find(key)
        if issue is None:
            raise _error(404, "Issue does not exist or you do not have permission to see it.")
        body = self._issue_json(issue, self._fields_param(request))
        if "names" in self._param(request, "expand"):
            body["names"] = self._names(body["fields"])
        return Reply(200, body)

    def _link(self, request: Request, user: str) -> Reply:
        body = request.json() or {}
        name = (body.get("type") or {}).get("name")
        if name not in LINK_TYPES:
            raise _error(404, f"No issue link type with name '{name}' found.")
        inward = self._find((body.get("inwardIssue") or {}).get("key", ""))
        outward = self._find((body.get("outwardIssue") or {}).get("key", ""))
        if inward is None or outward is None:
            raise _error(404, "Issue Does Not Exist")
        type_id, inward_text, outward_text = LINK_TYPES[name]
        link_type = {"id": type_id, "name": name, "inward": inward_text, "outward": outward_text}
        outward.links.append({"type": link_type, "inwardIssue": {"key": inward.key}})
        inward.links.append({"type": link_type, "outwardIssue": {"key": outward.key}})
        # The document gives this 201 a JSON body of any shape; real Jira sends none.
        return Reply(201, {})

    def _search(self, request: Request, user: str) -> Reply:
        issues = self._query(self._param(request, "jql"))
        start = int(self._param(request, "startAt") or 0)
        size = min(int(self._param(request, "maxResults") or 50), 100)
        wanted = self._fields_param(request)
        page = [self._issue_json(i, wanted) for i in issues[start : start + size]]
        body: dict[str, Any] = {
            "expand": "schema,names",
            "startAt": start,
            "maxResults": size,
            "total": len(issues),
            "issues": page,
        }
        if "names" in self._param(request, "expand"):
            body["names"] = self._names({k: None for i in page for k in i["fields"]})
        return Reply(200, body)

    def _enhanced_search(self, request: Request, user: str) -> Reply:
        issues = self._query(self._param(request, "jql"))
        start = int(self._param(request, "nextPageToken") or 0)
        size = min(int(self._param(request, "maxResults") or 50), 100)
        # Enhanced search returns only the ids unless asked for fields.
        wanted = self._fields_param(request) if self._param(request, "fields") else ["id"]
        page = issues[start : start + size]
        rendered = [{"id": i.id} if wanted == ["id"] else self._issue_json(i, wanted) for i in page]
        body: dict[str, Any] = {"issues": rendered, "isLast": start + size >= len(issues)}
        if not body["isLast"]:
            body["nextPageToken"] = str(start + size)
        if "names" in self._param(request, "expand"):
            body["names"] = self._names({k: None for i in rendered for k in i.get("fields", {})})
        return Reply(200, body)

    # --- Agile.

    def _board(self, request: Request, user: str, board_id: str) -> Reply:
        project_key = self.boards.get(int(board_id))
        if project_key is None:
            raise _error(
                404,
                "The requested board cannot be viewed because it either does not exist or you "
                "do not have permission to view it.",
            )
        project = self.projects[project_key]
        return Reply(
            200,
            {
                "id": int(board_id),
                "self": f"{self.url}/rest/agile/1.0/board/{board_id}",
                "name": f"{project_key} board",
                "type": "scrum",
                "location": {
                    "projectId": int(project["id"]),
                    "projectKey": project_key,
                    "projectName": project["name"],
                    "projectTypeKey": "software",
                    "displayName": f"{project['name']} ({project_key})",
                    "name": f"{project['name']} ({project_key})",
                },
            },
        )

    def _board_sprints(self, request: Request, user: str, board_id: str) -> Reply:
        if int(board_id) not in self.boards:
            raise _error(404, "Board does not exist or you do not have permission to see it.")
        states = [s for s in self._param(request, "state").split(",") if s]
        for state in states:
            if state not in ("closed", "active", "future"):
                raise _error(400, f"The sprint state '{state}' is not valid.")
        order = {"closed": 0, "active": 1, "future": 2}
        sprints = sorted(
            (s for s in self.sprints if not states or s.state in states),
            key=lambda s: order[s.state],
        )
        start = int(self._param(request, "startAt") or 0)
        size = min(int(self._param(request, "maxResults") or 50), 50)
        page = sprints[start : start + size]
        return Reply(
            200,
            {
                "maxResults": size,
                "startAt": start,
                "isLast": start + size >= len(sprints),
                "values": [self._sprint_json(s, int(board_id)) for s in page],
            },
        )

    def _move_to_sprint(self, request: Request, user: str, sprint_id: str) -> Reply:
        sprint = next((s for s in self.sprints if s.id == int(sprint_id)), None)
        if sprint is None:
            raise _error(404, f"Sprint with id {sprint_id} does not exist.")
        if sprint.state == "closed":
            raise _error(400, "Cannot move issues to a closed sprint.")
        keys = (request.json() or {}).get("issues") or []
        found = [self._find(str(k)) for k in keys]
        if not keys or any(i is None for i in found):
            raise _error(400, "Issue does not exist or you do not have permission to see it.")
        now = datetime.now(UTC)
        for issue in found:
            assert issue is not None
            issue.sprint = sprint.id
            issue.updated = now
        return Reply(204)

    # --- State.

    def _new_issue(self, project: str, values: dict[str, Any], *, created: datetime) -> Issue:
        self._next_id += 1
        number = self._next_number.get(project, 0) + 1
        self._next_number[project] = number
        issue = Issue(
            id=str(self._next_id),
            key=f"{project}-{number}",
            project=project,
            fields=values,
            created=created,
            updated=created,
        )
        self.issues[issue.key] = issue
        return issue

    def _find(self, key_or_id: str) -> Issue | None:
        issue = self.issues.get(key_or_id.upper())
        if issue is None:
            issue = next((i for i in self.issues.values() if i.id == key_or_id), None)
        return issue

    @staticmethod
    def _category(status: str) -> str:
        return "new" if status.lower() in NEW_STATUSES else "indeterminate"

    @staticmethod
    def _issue_type(name: str) -> dict[str, Any]:
        return {"id": ISSUE_TYPES.get(name, "10001"), "name": name, "subtask": False}

    def _sprint_json(self, sprint: Sprint, board_id: int) -> dict[str, Any]:
        body: dict[str, Any] = {
            "id": sprint.id,
            "self": f"{self.url}/rest/agile/1.0/sprint/{sprint.id}",
            "state": sprint.state,
            "name": sprint.name,
            "originBoardId": board_id,
            "goal": "",
        }
        if sprint.state != "future":
            body["startDate"] = "2024-05-06T08:00:00.000Z"
            body["endDate"] = "2024-05-20T08:00:00.000Z"
        if sprint.state == "closed":
            body["completeDate"] = "2024-05-20T09:12:00.000Z"
        return body

    def _ticket(self, issue: Issue) -> dict[str, Any]:
        sprint = next((s for s in self.sprints if s.id == issue.sprint), None)
        return {
            "id": issue.id,
            "key": issue.key,
            "summary": issue.fields.get("summary", ""),
            "description": issue.fields.get("description"),
            "labels": list(issue.fields.get("labels") or []),
            "issuetype": issue.fields["issuetype"]["name"],
            "priority": issue.fields["priority"]["name"],
            "status": issue.status,
            "done": issue.category == "done",
            "sprint": issue.sprint,
            "sprint_name": sprint.name if sprint else None,
            "links": list(issue.links),
        }

    def _issue_json(self, issue: Issue, wanted: list[str] | None) -> dict[str, Any]:
        project = self.projects.get(issue.project, {"id": "10099", "name": issue.project})
        sprint = next((s for s in self.sprints if s.id == issue.sprint), None)
        fields: dict[str, Any] = {
            "components": [],
            "fixVersions": [],
            "description": None,
            **issue.fields,
            "project": {"id": project["id"], "key": issue.project, "name": project["name"]},
            "status": {
                "name": issue.status,
                "id": str(abs(hash(issue.status)) % 10000),
                "statusCategory": {"key": issue.category, "name": issue.category.title()},
            },
            "created": jira_time(issue.created),
            "updated": jira_time(issue.updated),
            "resolutiondate": jira_time(issue.resolved) if issue.resolved else None,
            "resolution": {"name": "Done"} if issue.resolved else None,
            "issuelinks": list(issue.links),
            SPRINT_FIELD: [self._sprint_json(sprint, accounts.JIRA_BOARD) | {"boardId": 1}]
            if sprint
            else None,
        }
        if wanted is not None:
            fields = {k: v for k, v in fields.items() if k in wanted}
        return {
            "expand": "renderedFields,names,schema,operations,editmeta,changelog",
            "id": issue.id,
            "self": f"{self.url}/rest/api/2/issue/{issue.id}",
            "key": issue.key,
            "fields": fields,
        }

    @staticmethod
    def _names(fields: dict[str, Any]) -> dict[str, str]:
        known = {
            SPRINT_FIELD: "Sprint",
            "resolutiondate": "Resolved",
            "fixVersions": "Fix versions",
        }
        return {k: known.get(k, k[:1].upper() + k[1:]) for k in fields}

    @staticmethod
    def _param(request: Request, name: str) -> str:
        return ",".join(request.query.get(name, []))

    def _fields_param(self, request: Request) -> list[str] | None:
        """The `fields` asked for; None for all of them (*all, *navigable, or not given)."""
        asked = [f.strip() for f in self._param(request, "fields").split(",") if f.strip()]
        if not asked or any(f in ("*all", "*navigable") for f in asked):
            return None
        return asked

    # --- JQL: `field op value` clauses with AND, OR, NOT and parentheses, ORDER BY.

    def _query(self, jql: str) -> list[Issue]:
        try:
            predicate, order = Jql(jql).parse()
        except JqlError as exc:
            raise _error(400, str(exc)) from None
        indexed_before = time.monotonic() - self.search_lag
        issues = [i for i in self.issues.values() if i.made_at <= indexed_before and predicate(i)]
        for name, descending in reversed(order):
            issues.sort(key=_SORT_KEYS[name], reverse=descending)
        return issues


_SORT_KEYS: dict[str, Callable[[Issue], Any]] = {
    "created": lambda i: i.created,
    "updated": lambda i: i.updated,
    "key": lambda i: (i.project, int(i.key.rsplit("-", 1)[1])),
    "id": lambda i: int(i.id),
    "resolved": lambda i: i.resolved or datetime.min.replace(tzinfo=UTC),
}

_TOKEN = re.compile(
    r"""\s*(?:(?P<string>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')"""
    r"""|(?P<op>!=|>=|<=|!~|=|>|<|~|\(|\)|,)"""
    r"""|(?P<word>[^\s=!<>~(),"']+))"""
)
_DATE_FIELDS = {"created", "updated", "resolved", "resolutiondate"}
_FIELDS = {
    "project",
    "labels",
    "issuetype",
    "type",
    "status",
    "statuscategory",
    "key",
    "issuekey",
    "id",
    "summary",
    "text",
    "priority",
    "sprint",
    *_DATE_FIELDS,
}
Predicate = Callable[[Issue], bool]


class Jql:
    """A small JQL reader: enough of the language for the queries teams write for intake."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens: list[tuple[str, str]] = []
        position = 0
        while position < len(text):
            match = _TOKEN.match(text, position)
            if match is None or match.end() == position:
                if text[position:].strip() == "":
                    break
                raise JqlError(
                    f"Error in the JQL Query: The character '{text[position:].strip()[0]}' is a "
                    "reserved JQL character."
                )
            kind = match.lastgroup or ""
            value = match.group(kind)
            if kind == "string":
                value = re.sub(r"\\(.)", r"\1", value[1:-1])
            self.tokens.append((kind, value))
            position = match.end()
        self.position = 0

    def parse(self) -> tuple[Predicate, list[tuple[str, bool]]]:
        if not self.tokens:
            return (lambda issue: True), []
        predicate: Predicate = lambda issue: True  # noqa: E731 - "ORDER BY x" alone
        if not self._is_word("order"):
            predicate = self._or()
        order = self._order_by()
        if self.position < len(self.tokens):
            raise self._expected("AND, OR or ORDER BY")
        return predicate, order

    # Grammar.

    def _or(self) -> Predicate:
        parts = [self._and()]
        while self._is_word("or"):
            self.position += 1
            parts.append(self._and())
        return lambda issue: any(p(issue) for p in parts)

    def _and(self) -> Predicate:
        parts = [self._unary()]
        while self._is_word("and"):
            self.position += 1
            parts.append(self._unary())
        return lambda issue: all(p(issue) for p in parts)

    def _unary(self) -> Predicate:
        if self._is_word("not"):
            self.position += 1
            inner = self._unary()
            return lambda issue: not inner(issue)
        if self._peek() == ("op", "("):
            self.position += 1
            inner = self._or()
            self._take_op(")")
            return inner
        return self._clause()

    def _clause(self) -> Predicate:
        kind, name = self._next("a field name")
        if kind == "op":
            raise self._expected("a field name", name)
        field_name = name.lower()
        if field_name not in _FIELDS:
            raise JqlError(
                f"Field '{name}' does not exist or you do not have permission to view it."
            )
        if self._is_word("is"):
            self.position += 1
            negate = self._is_word("not")
            if negate:
                self.position += 1
            _, what = self._next("EMPTY")
            if what.lower() not in ("empty", "null"):
                raise self._expected("EMPTY or NULL", what)
            return lambda issue: _is_empty(issue, field_name) != negate
        negate = self._is_word("not")
        if negate:
            self.position += 1
        if self._is_word("in"):
            self.position += 1
            values = self._list()
            return lambda issue: any(_matches(issue, field_name, "=", v) for v in values) != negate
        if negate:
            raise self._expected("IN", self._peek()[1])
        kind, op = self._next("an operator")
        if kind != "op" or op in ("(", ")", ","):
            raise self._expected("an operator such as '='", op)
        value = self._value()
        _check(field_name, op, value)
        return lambda issue: _matches(issue, field_name, op, value)

    def _list(self) -> list[str]:
        self._take_op("(")
        values = [self._value()]
        while self._peek() == ("op", ","):
            self.position += 1
            values.append(self._value())
        self._take_op(")")
        return values

    def _value(self) -> str:
        kind, value = self._next("a value")
        if kind == "op":
            raise self._expected("a value", value)
        if self._peek() == ("op", "("):
            raise JqlError(f"Unable to find JQL function '{value}()'.")
        return value

    def _order_by(self) -> list[tuple[str, bool]]:
        if not self._is_word("order"):
            return []
        self.position += 1
        if not self._is_word("by"):
            raise self._expected("BY", self._peek()[1])
        self.position += 1
        order: list[tuple[str, bool]] = []
        while True:
            _, name = self._next("a field to sort by")
            name = {"resolutiondate": "resolved", "issuekey": "key"}.get(name.lower(), name.lower())
            if name not in _SORT_KEYS:
                raise JqlError(f"Not able to sort using field '{name}'.")
            descending = False
            if self._is_word("asc") or self._is_word("desc"):
                descending = self.tokens[self.position][1].lower() == "desc"
                self.position += 1
            order.append((name, descending))
            if self._peek() != ("op", ","):
                return order
            self.position += 1

    # Tokens.

    def _peek(self) -> tuple[str, str]:
        return self.tokens[self.position] if self.position < len(self.tokens) else ("", "")

    def _is_word(self, word: str) -> bool:
        kind, value = self._peek()
        return kind == "word" and value.lower() == word

    def _next(self, wanted: str) -> tuple[str, str]:
        if self.position >= len(self.tokens):
            raise self._expected(wanted, "the end of the query")
        token = self.tokens[self.position]
        self.position += 1
        return token

    def _take_op(self, op: str) -> None:
        kind, value = self._next(f"'{op}'")
        if (kind, value) != ("op", op):
            raise self._expected(f"'{op}'", value)

    def _expected(self, wanted: str, got: str | None = None) -> JqlError:
        got = got if got is not None else self._peek()[1] or "the end of the query"
        return JqlError(f"Error in the JQL Query: Expecting {wanted} but got '{got}'.")


def _check(field_name: str, op: str, value: str) -> None:
    if field_name in _DATE_FIELDS or field_name in ("key", "issuekey", "id"):
        allowed = {"=", "!=", ">", ">=", "<", "<="}
    elif field_name in ("summary", "text"):
        allowed = {"~", "!~"}
    else:
        allowed = {"=", "!="}
    if op not in allowed:
        raise JqlError(f"The operator '{op}' is not supported by the '{field_name}' field.")
    if field_name in _DATE_FIELDS:
        _jql_time(value)


def _jql_time(value: str) -> datetime:
    """A JQL date literal, read in the signed-in user's time zone as Jira does."""
    for fmt in ("%Y-%m-%d %H:%M", "%Y/%m/%d %H:%M", "%Y-%m-%d", "%Y/%m/%d"):
        try:
            parsed = datetime.strptime(value, fmt)
        except ValueError:
            continue
        return parsed.replace(tzinfo=ZoneInfo(USER_TIME_ZONE))
    relative = re.fullmatch(r"([-+]?\d+)([wdhm])", value)
    if relative:
        unit = {"w": "weeks", "d": "days", "h": "hours", "m": "minutes"}[relative.group(2)]
        return datetime.now(UTC) + timedelta(**{unit: int(relative.group(1))})
    raise JqlError(
        f"Date value '{value}' for field is invalid. Valid formats include: 'yyyy/MM/dd HH:mm', "
        "'yyyy-MM-dd HH:mm', 'yyyy/MM/dd', 'yyyy-MM-dd', or a period format e.g. '-5d', '4w 2d'."
    )


def _field_values(issue: Issue, field_name: str) -> list[str]:
    fields = issue.fields
    if field_name == "project":
        return [issue.project]
    if field_name == "labels":
        return list(fields.get("labels") or [])
    if field_name in ("issuetype", "type"):
        return [fields["issuetype"]["name"]]
    if field_name == "status":
        return [issue.status]
    if field_name == "statuscategory":
        return [{"new": "To Do", "indeterminate": "In Progress", "done": "Done"}[issue.category]]
    if field_name in ("key", "issuekey", "id"):
        return [issue.key, issue.id]
    if field_name == "priority":
        return [fields["priority"]["name"]]
    if field_name == "sprint":
        return [] if issue.sprint is None else [str(issue.sprint)]
    return [str(fields.get("summary") or ""), str(fields.get("description") or "")]


def _is_empty(issue: Issue, field_name: str) -> bool:
    if field_name in _DATE_FIELDS:
        return _time_of(issue, field_name) is None
    return not _field_values(issue, field_name)


def _time_of(issue: Issue, field_name: str) -> datetime | None:
    if field_name == "created":
        return issue.created
    if field_name == "updated":
        return issue.updated
    return issue.resolved


def _matches(issue: Issue, field_name: str, op: str, value: str) -> bool:
    if field_name in _DATE_FIELDS:
        when = _time_of(issue, field_name)
        if when is None:
            return False
        limit = _jql_time(value)
        return {
            "=": when == limit,
            "!=": when != limit,
            ">": when > limit,
            ">=": when >= limit,
            "<": when < limit,
            "<=": when <= limit,
        }[op]
    values = [v.lower() for v in _field_values(issue, field_name)]
    wanted = value.lower()
    if op == "=":
        return wanted in values
    if op == "!=":
        return wanted not in values
    if op in ("~", "!~"):
        found = any(wanted in v for v in values)
        return found if op == "~" else not found
    number = int(issue.id)
    other = int(wanted.rsplit("-", 1)[-1]) if "-" in wanted else int(wanted)
    mine = int(issue.key.rsplit("-", 1)[1]) if "-" in wanted else number
    return {">": mine > other, ">=": mine >= other, "<": mine < other, "<=": mine <= other}[op]
