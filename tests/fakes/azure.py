"""A fake Azure DevOps organization ("acme", project "Shop", team "Shop Team") over real HTTP.

Over 600 lines on purpose, like tests/fakes/jira.py: one vendor's API surface in one place.

It serves what integrations/azure.py uses, answering as the Work Item Tracking and Work 7.1
documents (specs/ado_wit_7.1.json, specs/ado_work_7.1.json) say, and refuses as Azure DevOps
does: 401 with an empty body for a wrong PAT, 404/400 `{"message", "typeKey"}` otherwise.

    fake = FakeAzure().start()
    fake.set_iterations([("Shop\\Sprint 7", "current"), ("Shop\\Sprint 8", "future")])
    key = fake.add_escape_issue(title="Checkout double-charges")   # tagged "escape"
    fake.set_status(key, "Closed", done=True)

Work items live in memory; `tickets()` lists the ones created over HTTP (Leakseal's).
"""

from __future__ import annotations

import base64
import re
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any
from urllib.parse import unquote

from tests.fakes import accounts
from tests.fakes.server import FakeTracker, HttpError, Reply, Request
from tests.fakes.spec import spec

WORK_ITEM_TYPES = ("Bug", "Epic", "Feature", "Issue", "Task", "Test Case", "User Story")
DONE_STATES = ("Done", "Closed")
DEFAULT_ITERATIONS = [
    ("Shop\\Sprint 40", "past"),
    ("Shop\\Sprint 41", "current"),
    ("Shop\\Sprint 42", "future"),
    ("Shop\\Sprint 43", "future"),
]
SPRINT_DAYS = 14


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _parse_time(value: str) -> datetime:
    when = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return when if when.tzinfo else when.replace(tzinfo=UTC)


@dataclass
class Iteration:
    path: str
    time_frame: str
    start: date
    id: str = field(default_factory=lambda: str(uuid.uuid4()))

    @property
    def name(self) -> str:
        return self.path.rsplit("\\", 1)[-1]


@dataclass
class WorkItem:
    id: int
    fields: dict[str, Any]
    rev: int = 1
    relations: list[dict[str, Any]] = field(default_factory=list)
    made_at: float = field(default_factory=time.monotonic)  # for WIQL's lag

    @property
    def tags(self) -> list[str]:
        raw = self.fields.get("System.Tags") or ""
        return [t.strip() for t in raw.split(";") if t.strip()]


# The relation types a work item takes here (Azure DevOps' link type reference names).
LINK_TYPES = frozenset(
    {
        "Hyperlink",
        "ArtifactLink",
        "System.LinkTypes.Related",
        "System.LinkTypes.Duplicate-Forward",
        "System.LinkTypes.Duplicate-Reverse",
        "System.LinkTypes.Hierarchy-Forward",
        "System.LinkTypes.Hierarchy-Reverse",
        "System.LinkTypes.Dependency-Forward",
        "System.LinkTypes.Dependency-Reverse",
    }
)


def _error(status: int, message: str, type_key: str) -> HttpError:
    # Azure DevOps' error body: {"$id", "innerException", "message", "typeName", "typeKey",
    # "errorCode", "eventId"}; the client reads "message".
    return HttpError(
        status,
        {
            "$id": "1",
            "innerException": None,
            "message": message,
            "typeName": f"Microsoft.TeamFoundation.WorkItemTracking.Server.{type_key}",
            "typeKey": type_key,
            "errorCode": 0,
            "eventId": 3200,
        },
    )


class FakeAzure(FakeTracker):
    specs = [spec("ado_wit_7.1.json"), spec("ado_work_7.1.json")]

    def __init__(self, *, latency: float = 0.0, search_lag: float = 0.0) -> None:
        super().__init__(latency=latency)
        # Seconds before a new work item shows in WIQL queries (eventually consistent); reads
        # by id see it at once.
        self.search_lag = search_lag
        self.org = accounts.ADO_ORG
        self.project = accounts.ADO_PROJECT
        self.team = accounts.ADO_TEAM
        self.pat = accounts.ADO_PAT
        self.area_path = self.project  # the team's area: the default team owns the root
        self.items: dict[int, WorkItem] = {}
        self.ours: list[int] = []  # created over HTTP, i.e. by Leakseal
        self._next_id = 101
        self.iterations: list[Iteration] = []
        self.set_iterations(DEFAULT_ITERATIONS)

    # --- What tests set up and look at.

    def set_iterations(self, iterations: Sequence[tuple[str, ...]]) -> None:
        """(path, timeFrame) or (path, timeFrame, "YYYY-MM-DD" start), in any order.

        Without a start date, sprints are two weeks long, listed in date order, the
        current one (or the first future one) starting this week.
        """
        today = date.today()
        monday = today - timedelta(days=today.weekday())
        frames = [it[1] for it in iterations]
        anchor = frames.index("current") if "current" in frames else len(frames)
        if "current" not in frames and "future" in frames:
            anchor = frames.index("future")
        made = []
        for index, item in enumerate(iterations):
            path, frame = item[0], item[1]
            assert frame in ("past", "current", "future"), frame
            if len(item) > 2:
                start = date.fromisoformat(item[2])
            else:
                start = monday + timedelta(days=SPRINT_DAYS * (index - anchor))
            made.append(Iteration(path, frame, start))
        with self.lock:
            self.iterations = made

    def tickets(self) -> list[dict[str, Any]]:
        with self.lock:
            return [self._summary(self.items[i]) for i in self.ours]

    def duplicate_ticket(self, key: str | int) -> str:
        """A second work item made from Leakseal's `key` (same tag), as a lost race would."""
        with self.lock:
            original = self.items[int(key)]
            values = {
                k: v
                for k, v in original.fields.items()
                if k not in ("System.Id", "System.CreatedDate", "System.ChangedDate", "System.Rev")
            }
            copy = self._new_item(str(original.fields["System.WorkItemType"]), values)
            self.ours.append(copy.id)
            return str(copy.id)

    def item(self, key: str | int) -> WorkItem:
        with self.lock:
            return self.items[int(key)]

    def set_status(self, key: str | int, status: str, done: bool) -> None:
        # Leakseal decides done-ness by the state's name (integrations/azure.py).
        assert done == (status in DONE_STATES), f"{status!r} is done only if in {DONE_STATES}"
        with self.lock:
            item = self.items[int(key)]
            item.fields["System.State"] = status
            if done:
                item.fields["Microsoft.VSTS.Common.ClosedDate"] = _now()
            self._touch(item)

    def add_escape_issue(self, **fields: Any) -> str:
        """A Bug reported by someone in the tracker (not Leakseal's), tagged "escape".

        Keyword arguments: title, description, tags ("a; b"), state, or any field by its
        reference name ("Custom.MergedAt"="...", "Microsoft.VSTS.Common.Severity"=...).
        """
        values: dict[str, Any] = {
            "System.Title": fields.pop("title", "Payment page fails for saved cards"),
            "Microsoft.VSTS.TCM.ReproSteps": fields.pop("description", "Steps: pay with a card"),
            "System.Tags": fields.pop("tags", "escape"),
            "System.State": fields.pop("state", "New"),
        }
        values.update(fields)
        with self.lock:
            item = self._new_item("Bug", values)
        return str(item.id)

    def webhook_body(self, key: str | int, event: str = "workitem.updated") -> dict[str, Any]:
        """The service hook delivery (shape of specs/ado_workitem_updated_trimmed.json)."""
        with self.lock:
            item = self.items[int(key)]
            revision = {
                "id": item.id,
                "rev": item.rev,
                "fields": dict(item.fields),
                "url": f"{self._api()}/wit/workItems/{item.id}/revisions/{item.rev}",
            }
        org_url = f"{self.url}/{self.org}/"
        resource: dict[str, Any] = {
            "id": item.rev,
            "workItemId": item.id,
            "rev": item.rev,
            "revisedDate": "9999-01-01T00:00:00Z",
            "fields": {
                "System.Rev": {"oldValue": item.rev - 1, "newValue": item.rev},
                "System.State": {"newValue": item.fields.get("System.State")},
                "System.ChangedDate": {"newValue": item.fields.get("System.ChangedDate")},
            },
            "url": f"{self._api()}/wit/workItems/{item.id}/updates/{item.rev}",
            "revision": revision,
        }
        if event == "workitem.created":
            resource = {**revision, "_links": {"self": {"href": revision["url"]}}}
        title = item.fields.get("System.Title", "")
        return {
            "subscriptionId": str(uuid.uuid4()),
            "notificationId": item.rev,
            "id": str(uuid.uuid4()),
            "eventType": event,
            "publisherId": "tfs",
            "message": {"text": f"{item.fields['System.WorkItemType']} #{item.id} ({title})"},
            "resource": resource,
            "resourceVersion": "1.0",
            "resourceContainers": {
                "collection": {"id": str(uuid.uuid4()), "baseUrl": org_url},
                "account": {"id": str(uuid.uuid4()), "baseUrl": org_url},
                "project": {"id": str(uuid.uuid4()), "baseUrl": org_url},
            },
            "createdDate": _now(),
        }

    # --- HTTP.

    def error_body(self, status: int, message: str) -> Any:
        return {"message": message, "typeKey": "FakeFault"}

    def handle(self, request: Request) -> Reply:
        self._authenticate(request)
        version = (request.query.get("api-version") or [""])[0]
        if not version.startswith("7.1"):
            raise _error(
                400,
                f"The requested REST API version of {version} is out of range for this server.",
                "VssVersionOutOfRangeException",
            )
        parts = [unquote(p) for p in request.path.strip("/").split("/")]
        if parts[0] != self.org:
            raise _error(404, f"The organization {parts[0]} does not exist.", "NotFound")
        if parts[1] != self.project:
            raise _error(
                404,
                f"TF200016: The following project does not exist: {parts[1]}. Verify that the "
                "name of the project is correct and that the project exists on the specified "
                "Azure DevOps Server.",
                "ProjectDoesNotExistWithNameException",
            )
        with self.lock:
            if parts[2] == "_apis":
                return self._project_call(request, parts[3:])
            if parts[2] != self.team:
                raise _error(
                    404, f"The team with id {parts[2]} does not exist.", "TeamNotFoundException"
                )
            return self._team_call(request, parts[4:])

    def _authenticate(self, request: Request) -> None:
        # "Personal access token. Use any value for the user name and the token as the
        # password." Azure DevOps answers a bad one with 401 and no JSON.
        header = request.headers.get("authorization", "")
        password = None
        if header.startswith("Basic "):
            try:
                decoded = base64.b64decode(header[6:]).decode()
            except ValueError:
                decoded = ""
            password = decoded.partition(":")[2]
        if password != self.pat:
            raise HttpError(401, None)

    def _project_call(self, request: Request, rest: list[str]) -> Reply:
        method = request.method
        if rest[:2] == ["wit", "workitems"]:
            if len(rest) == 2 and method == "GET":
                return self._batch(request)
            if len(rest) == 3 and rest[2].startswith("$") and method == "POST":
                return self._create(rest[2][1:], request.json())
            if len(rest) == 3 and method in ("GET", "PATCH"):
                item = self._get(rest[2])
                if method == "PATCH":
                    self._apply(item, request.json())
                    self._touch(item)
                return Reply(200, self._work_item(item))
        if rest[:2] == ["wit", "workitemtypes"] and len(rest) == 3 and method == "GET":
            return Reply(200, self._work_item_type(rest[2]))
        raise self._not_served(request)

    def _team_call(self, request: Request, rest: list[str]) -> Reply:
        if rest == ["wit", "wiql"] and request.method == "POST":
            return self._wiql(request)
        if rest == ["work", "teamsettings", "iterations"] and request.method == "GET":
            return Reply(200, self._iterations(request))
        if rest == ["work", "teamsettings", "teamfieldvalues"] and request.method == "GET":
            return Reply(200, self._team_field_values())
        raise self._not_served(request)

    def _not_served(self, request: Request) -> HttpError:
        # In the spec, but nothing Leakseal calls: a test reaching here found a new call.
        return _error(404, f"FakeAzure does not serve {request.method} {request.path}", "Fake")

    # --- Work items.

    def _api(self) -> str:
        return f"{self.url}/{self.org}/{self.project}/_apis"

    def _touch(self, item: WorkItem) -> None:
        item.rev += 1
        item.fields["System.Rev"] = item.rev
        item.fields["System.ChangedDate"] = _now()

    def _new_item(self, kind: str, values: dict[str, Any]) -> WorkItem:
        now = _now()
        item = WorkItem(
            self._next_id,
            {
                "System.Id": self._next_id,
                "System.AreaPath": self.project,
                "System.TeamProject": self.project,
                "System.IterationPath": self.project,
                "System.WorkItemType": kind,
                "System.State": "New",
                "System.Reason": "New",
                "System.CreatedDate": now,
                "System.ChangedDate": now,
                "System.Rev": 1,
                **values,
            },
        )
        self._next_id += 1
        self.items[item.id] = item
        return item

    def _get(self, raw_id: str) -> WorkItem:
        item = self.items.get(int(raw_id)) if raw_id.isdigit() else None
        if item is None:
            raise _error(
                404,
                f"TF401232: Work item {raw_id} does not exist, or you do not have permissions "
                "to read it.",
                "WorkItemUnauthorizedAccessException",
            )
        return item

    def _create(self, kind: str, patch: list[dict[str, Any]]) -> Reply:
        if kind not in WORK_ITEM_TYPES:
            raise _error(
                400,
                f"VS402323: Work item type {kind} does not exist in project {self.project} or "
                "you do not have permission to access it.",
                "WorkItemTypeNotFoundException",
            )
        item = WorkItem(0, {})
        self._apply(item, patch)
        if not str(item.fields.get("System.Title") or "").strip():
            raise _error(
                400,
                "TF401320: Rule Error for field Title. Error code: Required, InvalidEmpty.",
                "RuleValidationException",
            )
        created = self._new_item(kind, item.fields)
        created.relations = item.relations
        self.ours.append(created.id)
        return Reply(200, self._work_item(created))

    def _apply(self, item: WorkItem, patch: list[dict[str, Any]]) -> None:
        """Validate the whole JSON Patch first, so a refused one changes nothing."""
        fields: dict[str, Any] = {}
        relations: list[dict[str, Any]] = []
        for op in patch:
            path, value = op.get("path", ""), op.get("value")
            if op.get("op") in ("add", "replace") and path.startswith("/fields/"):
                name = path.removeprefix("/fields/")
                fields[name] = self._field_value(name, value)
            elif op.get("op") == "add" and path == "/relations/-":
                relations.append(self._relation(value))
            else:
                raise _error(
                    400,
                    f"FakeAzure does not support the JSON Patch operation {op}",
                    "JsonPatchOperationNotSupported",
                )
        item.fields.update(fields)
        item.relations.extend(relations)

    def _field_value(self, name: str, value: Any) -> Any:
        if name == "System.Title" and len(str(value or "")) > 255:
            raise _error(
                400,
                "TF401320: Rule Error for field Title. Error code: MaxLength.",
                "RuleValidationException",
            )
        if name == "System.IterationPath":
            known = {self.project, *(it.path for it in self.iterations)}
            if value not in known:
                raise self._invalid_tree(name)
        if name == "System.AreaPath" and value != self.area_path and value != self.project:
            raise self._invalid_tree(name)
        if name == "Microsoft.VSTS.Common.Priority":
            if str(value) not in ("1", "2", "3", "4"):
                raise _error(
                    400,
                    "TF401320: Rule Error for field Priority. Error code: LimitedToValues.",
                    "RuleValidationException",
                )
            return int(value)
        return value

    def _invalid_tree(self, name: str) -> HttpError:
        return _error(
            400,
            f"TF401347: Invalid tree name given for work item -1, field '{name}'.",
            "WorkItemFieldInvalidTreeNameException",
        )

    def _relation(self, value: Any) -> dict[str, Any]:
        if not isinstance(value, dict) or not value.get("rel") or not value.get("url"):
            raise _error(400, "A relation needs rel and url.", "WorkItemLinkInvalidException")
        if value["rel"] not in LINK_TYPES:
            raise _error(
                400,
                f"TF201036: You cannot add a link of type {value['rel']}: it does not exist.",
                "WorkItemLinkTypeNotFoundException",
            )
        if value["rel"] != "Hyperlink":
            target = re.search(r"/workItems/(\d+)$", value["url"], re.IGNORECASE)
            if target is None or int(target.group(1)) not in self.items:
                raise _error(
                    400,
                    f"TF201063: The link target {value['url']} is not a work item that exists.",
                    "WorkItemLinkInvalidException",
                )
        return {"attributes": {}, **value}

    def _work_item(self, item: WorkItem) -> dict[str, Any]:
        body: dict[str, Any] = {
            "id": item.id,
            "rev": item.rev,
            "fields": dict(item.fields),
            "url": f"{self._api()}/wit/workItems/{item.id}",
            "_links": {
                "self": {"href": f"{self._api()}/wit/workItems/{item.id}"},
                "html": {"href": f"{self.url}/{self.org}/{self.project}/_workitems/edit/{item.id}"},
            },
        }
        if item.relations:
            body["relations"] = [dict(r) for r in item.relations]
        return body

    def _batch(self, request: Request) -> Reply:
        raw = (request.query.get("ids") or [""])[0]
        ids = [part.strip() for part in raw.split(",") if part.strip()]
        if len(ids) > 200:
            raise _error(400, "VS402335: The maximum number of ids is 200.", "ArgumentException")
        value = [self._work_item(self._get(i)) for i in ids]
        return Reply(200, {"count": len(value), "value": value})

    def _work_item_type(self, raw: str) -> dict[str, Any]:
        if raw not in WORK_ITEM_TYPES:
            raise _error(
                404,
                f"VS402323: Work item type {raw} does not exist in project {self.project} or "
                "you do not have permission to access it.",
                "WorkItemTypeNotFoundException",
            )
        return {"name": raw, "referenceName": f"Microsoft.VSTS.WorkItemTypes.{raw}"}

    def _summary(self, item: WorkItem) -> dict[str, Any]:
        iteration = item.fields.get("System.IterationPath")
        return {
            "key": str(item.id),
            "labels": item.tags,
            "title": item.fields.get("System.Title"),
            "summary": item.fields.get("System.Title"),
            "status": item.fields.get("System.State"),
            "sprint": None if iteration in (None, self.project) else iteration,
            "priority": item.fields.get("Microsoft.VSTS.Common.Priority"),
            "description": item.fields.get("System.Description"),
            "area": item.fields.get("System.AreaPath"),
            "type": item.fields.get("System.WorkItemType"),
            "relations": [dict(r) for r in item.relations],
        }

    # --- WIQL: the few forms Leakseal sends.

    def _wiql(self, request: Request) -> Reply:
        text = (request.json() or {}).get("query") or ""
        precise = (request.query.get("timePrecision") or [""])[0].lower() == "true"
        match = re.fullmatch(
            r"\s*SELECT\s+\[System\.Id\]\s+FROM\s+WorkItems\s+WHERE\s+(?P<where>.+?)"
            r"(?:\s+ORDER\s+BY\s+\[(?P<order>[\w.]+)\](?:\s+(?P<dir>ASC|DESC))?)?\s*",
            text,
            re.IGNORECASE | re.DOTALL,
        )
        if match is None:
            raise self._wiql_error(f"only a flat id query over work items is served: {text}")
        test = _Where(match["where"], self.project, precise, self._wiql_error).parse()
        indexed_before = time.monotonic() - self.search_lag
        found = [
            item
            for item in self.items.values()
            if item.made_at <= indexed_before and test(item.fields, item.tags)
        ]
        order = match["order"] or "System.Id"
        found.sort(key=lambda it: str(it.fields.get(order, "")).zfill(20))
        if (match["dir"] or "").upper() == "DESC":
            found.reverse()
        return Reply(
            200,
            {
                "queryType": "flat",
                "queryResultType": "workItem",
                "asOf": _now(),
                "columns": [{"referenceName": "System.Id", "name": "ID"}],
                "sortColumns": [],
                "workItems": [
                    {"id": it.id, "url": f"{self._api()}/wit/workItems/{it.id}"} for it in found
                ],
            },
        )

    def _wiql_error(self, message: str) -> HttpError:
        return _error(400, f"TF51006: The query statement is not supported: {message}", "Wiql")

    # --- Team settings.

    def _iterations(self, request: Request) -> dict[str, Any]:
        timeframe = (request.query.get("$timeframe") or [""])[0].lower()
        chosen = [it for it in self.iterations if not timeframe or it.time_frame == timeframe]
        value = [
            {
                "id": it.id,
                "name": it.name,
                "path": it.path,
                "attributes": {
                    "startDate": f"{it.start.isoformat()}T00:00:00Z",
                    "finishDate": (
                        f"{(it.start + timedelta(days=SPRINT_DAYS - 3)).isoformat()}T00:00:00Z"
                    ),
                    "timeFrame": it.time_frame,
                },
                "url": f"{self.url}/{self.org}/{self.project}/_apis/work/teamsettings/"
                f"iterations/{it.id}",
            }
            for it in chosen
        ]
        return {"count": len(value), "value": value}

    def _team_field_values(self) -> dict[str, Any]:
        return {
            "defaultValue": self.area_path,
            "field": {"referenceName": "System.AreaPath"},
            "values": [{"value": self.area_path, "includeChildren": True}],
        }


class _Where:
    """A WIQL condition: comparisons joined by AND / OR, with parentheses.

    Fields: System.Tags CONTAINS, System.TeamProject, System.WorkItemType, System.State,
    System.Title (=, <>, CONTAINS), System.ChangedDate / System.CreatedDate (>=, >, <=, <).
    Anything else is refused with a 400, as Azure DevOps refuses a query it cannot run.
    """

    TOKEN = re.compile(
        r"\s*(?:(?P<field>\[[\w.]+\])|(?P<string>'(?:[^']|'')*')|(?P<macro>@\w+)"
        r"|(?P<op><>|>=|<=|=|<|>)|(?P<paren>[()])|(?P<word>[A-Za-z]+))"
    )

    def __init__(self, text: str, project: str, precise: bool, error: Any) -> None:
        self.project, self.precise, self.error = project, precise, error
        self.tokens: list[tuple[str, str]] = []
        position = 0
        text = text.rstrip()
        while position < len(text):
            match = self.TOKEN.match(text, position)
            if match is None or match.end() == position:
                raise error(f"cannot read {text[position:]!r}")
            kind = match.lastgroup or ""
            self.tokens.append((kind, match[kind]))
            position = match.end()
        self.position = 0

    def _next(self) -> tuple[str, str]:
        if self.position >= len(self.tokens):
            raise self.error("the condition ends too early")
        token = self.tokens[self.position]
        self.position += 1
        return token

    def _peek_word(self) -> str:
        if self.position < len(self.tokens) and self.tokens[self.position][0] == "word":
            return self.tokens[self.position][1].upper()
        return ""

    def parse(self) -> Any:
        test = self._or()
        if self.position != len(self.tokens):
            raise self.error(f"unexpected {self.tokens[self.position][1]!r}")
        return test

    def _or(self) -> Any:
        tests = [self._and()]
        while self._peek_word() == "OR":
            self.position += 1
            tests.append(self._and())
        return lambda f, t: any(test(f, t) for test in tests)

    def _and(self) -> Any:
        tests = [self._term()]
        while self._peek_word() == "AND":
            self.position += 1
            tests.append(self._term())
        return lambda f, t: all(test(f, t) for test in tests)

    def _term(self) -> Any:
        kind, text = self._next()
        if kind == "paren" and text == "(":
            test = self._or()
            if self._next() != ("paren", ")"):
                raise self.error("a parenthesis is not closed")
            return test
        if kind != "field":
            raise self.error(f"expected a field, got {text!r}")
        name = text[1:-1]
        op_kind, op = self._next()
        if op_kind == "word" and op.upper() == "CONTAINS":
            op = "CONTAINS"
        elif op_kind != "op":
            raise self.error(f"unsupported operator {op!r}")
        value = self._value()
        return self._comparison(name, op, value)

    def _value(self) -> str:
        kind, text = self._next()
        if kind == "string":
            return text[1:-1].replace("''", "'")
        if kind == "macro" and text.lower() == "@project":
            return self.project
        raise self.error(f"unsupported value {text!r}")

    def _comparison(self, name: str, op: str, value: str) -> Any:
        if name == "System.Tags" and op == "CONTAINS":
            wanted = value.lower()
            return lambda f, tags: wanted in (t.lower() for t in tags)
        if name in ("System.TeamProject", "System.WorkItemType", "System.State", "System.Title"):
            if op == "=":
                return lambda f, t: str(f.get(name, "")).lower() == value.lower()
            if op == "<>":
                return lambda f, t: str(f.get(name, "")).lower() != value.lower()
            if op == "CONTAINS":
                return lambda f, t: value.lower() in str(f.get(name, "")).lower()
        if name in ("System.ChangedDate", "System.CreatedDate") and op in (">=", ">", "<=", "<"):
            if "T" in value and not self.precise:
                # Without timePrecision=true Azure DevOps compares whole days only.
                raise self.error(
                    f"{value} has a time; ask with timePrecision=true to compare times"
                )
            bound = _parse_time(value if "T" in value else f"{value}T00:00:00Z")
            compare = {
                ">=": lambda a: a >= bound,
                ">": lambda a: a > bound,
                "<=": lambda a: a <= bound,
                "<": lambda a: a < bound,
            }[op]
            return lambda f, t: bool(f.get(name)) and compare(_parse_time(f[name]))
        raise self.error(f"FakeAzure does not support [{name}] {op}")
