"""A fake Confluence (Cloud and Data Center) over real HTTP, checked against Atlassian's spec.

It serves what integrations/confluence.py asks through atlassian-python-api: a space by key,
content by space and title, content by id, create content (a page under a parent), update
content (the next version). Every request and every answer is checked against
specs/confluence_content_trimmed.json, the operations of Atlassian's Confluence Cloud REST API
document that Leakseal calls. Cloud serves them under /wiki; Data Center serves the same
resources at its root (or context path), which is checked as the /wiki path.

    fake = FakeConfluence().start()          # spaces ENG ("Engineering") with "Retrospectives"
    fake.delete_page(page_id)                # someone deleted the page in Confluence
    fake.fail("GET", r"/content$", status=429, retry_after="7")
    fake.fail("POST", r"/content$", stall_after_handling=2.0)   # created, answer lost

Accounts (tests/fakes/accounts.py): Cloud signs in with Basic CONFLUENCE_EMAIL:CONFLUENCE_TOKEN,
Data Center with Bearer CONFLUENCE_PAT. Like Confluence, it refuses a second current page of
the same title in a space, an update whose version is not the current one + 1, and a parent
that is not a current page of the space.
"""

from __future__ import annotations

import base64
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from tests.fakes import accounts
from tests.fakes.server import FakeTracker, HttpError, Reply, Request
from tests.fakes.spec import spec

SPEC = "confluence_content_trimmed.json"
API = "/wiki/rest/api"


@dataclass
class FakePage:
    id: str
    space: str
    title: str
    parent: str  # "" at the space's root
    body: str
    version: int = 1
    status: str = "current"  # "trashed" once deleted
    versions: list[str] = field(default_factory=list)  # every body stored, oldest first


class FakeConfluence(FakeTracker):
    specs = [spec(SPEC)]

    def __init__(self, *, latency: float = 0.0) -> None:
        super().__init__(latency=latency)
        self.spaces: dict[str, str] = {accounts.CONFLUENCE_SPACE: "Engineering"}
        self.pages: dict[str, FakePage] = {}
        self._next_id = 98000
        self.parent_id = self.add_page(accounts.CONFLUENCE_SPACE, accounts.CONFLUENCE_PARENT)

    # --- What tests set up and read.

    def add_page(self, space: str, title: str, *, parent: str = "", body: str = "") -> str:
        with self.lock:
            self._next_id += 1
            page_id = str(self._next_id)
            self.pages[page_id] = FakePage(page_id, space, title, parent, body, versions=[body])
            return page_id

    def delete_page(self, page_id: str) -> None:
        with self.lock:
            self.pages[page_id].status = "trashed"

    def children(self, parent_id: str) -> list[FakePage]:
        with self.lock:
            return [
                p for p in self.pages.values() if p.parent == parent_id and p.status == "current"
            ]

    # --- HTTP.

    @property
    def context(self) -> str:
        return f"{self.url}/wiki"

    def error_body(self, status: int, message: str) -> Any:
        # Confluence's error shape (the document's "Status codes" section).
        return {"statusCode": status, "data": {"authorized": status != 401}, "message": message}

    def _reply(self, request: Request) -> Reply:
        # Data Center serves /rest/api/... where Cloud serves /wiki/rest/api/...; both accept a
        # trailing slash (the library posts to /content/).
        path = request.path.rstrip("/")
        if not path.startswith("/wiki/"):
            path = "/wiki" + path
        request.path = path
        return super()._reply(request)

    def _signed_in(self, request: Request) -> None:
        header = request.headers.get("authorization", "")
        cloud = (
            "Basic "
            + base64.b64encode(
                f"{accounts.CONFLUENCE_EMAIL}:{accounts.CONFLUENCE_TOKEN}".encode()
            ).decode()
        )
        if header not in (cloud, f"Bearer {accounts.CONFLUENCE_PAT}"):
            raise HttpError(401, self.error_body(401, "Authentication failed"))

    def handle(self, request: Request) -> Reply:
        self._signed_in(request)
        path, method = request.path, request.method
        with self.lock:
            if method == "GET" and path.startswith(f"{API}/space/"):
                return Reply(200, self._space(path.removeprefix(f"{API}/space/")))
            if method == "GET" and path == f"{API}/content":
                return Reply(200, self._search(request))
            if method == "POST" and path == f"{API}/content":
                return Reply(200, self._create(request.json()))
            if path.startswith(f"{API}/content/"):
                page_id = path.removeprefix(f"{API}/content/")
                if method == "GET":
                    return Reply(200, self._content(self._current(page_id)))
                if method == "PUT":
                    return Reply(200, self._update(page_id, request.json()))
        raise HttpError(404, self.error_body(404, f"no resource {method} {path}"))

    # --- Resources.

    def _space(self, key: str) -> dict[str, Any]:
        if key not in self.spaces:
            raise HttpError(404, self.error_body(404, f"No space with key : {key}"))
        return {
            "id": 1000 + sorted(self.spaces).index(key),
            "key": key,
            "name": self.spaces[key],
            "type": "global",
            "status": "current",
            "_expandable": {"homepage": f"/rest/api/content/{self.parent_id}"},
            "_links": {"webui": f"/spaces/{key}", "self": f"{self.context}/rest/api/space/{key}"},
        }

    def _current(self, page_id: str) -> FakePage:
        page = self.pages.get(page_id)
        if page is None or page.status != "current":
            raise HttpError(404, self.error_body(404, f"No content found with id : {page_id}"))
        return page

    def _content(self, page: FakePage) -> dict[str, Any]:
        ancestors: list[dict[str, Any]] = []
        parent = self.pages.get(page.parent)
        while parent is not None:
            ancestors.insert(
                0, {"id": parent.id, "type": "page", "status": parent.status, "title": parent.title}
            )
            parent = self.pages.get(parent.parent)
        return {
            "id": page.id,
            "type": "page",
            "status": page.status,
            "title": page.title,
            "space": self._space(page.space),
            "version": {
                "number": page.version,
                "when": datetime.now(UTC).isoformat(),
                "minorEdit": False,
            },
            "ancestors": ancestors,
            "body": {"storage": {"value": page.body, "representation": "storage"}},
            "_expandable": {"children": f"/rest/api/content/{page.id}/child"},
            "_links": {
                "webui": f"/spaces/{page.space}/pages/{page.id}/{quote(page.title)}",
                "base": self.context,
                "context": "/wiki",
                "self": f"{self.context}/rest/api/content/{page.id}",
            },
        }

    def _search(self, request: Request) -> dict[str, Any]:
        space = (request.query.get("spaceKey") or [""])[0]
        title = (request.query.get("title") or [""])[0]
        found = [
            self._content(p)
            for p in self.pages.values()
            if p.space == space and p.title == title and p.status == "current"
        ]
        return {
            "results": found,
            "start": 0,
            "limit": 25,
            "size": len(found),
            "_links": {"base": self.context, "context": "/wiki"},
        }

    def _title_taken(self, space: str, title: str, but: str = "") -> bool:
        return any(
            p.space == space and p.title == title and p.status == "current" and p.id != but
            for p in self.pages.values()
        )

    def _parent_of(self, body: dict[str, Any], space: str) -> str:
        ancestors = body.get("ancestors") or []
        if not ancestors:
            return ""
        parent_id = str(ancestors[-1]["id"])
        parent = self.pages.get(parent_id)
        if parent is None or parent.status != "current" or parent.space != space:
            raise HttpError(404, self.error_body(404, f"Parent page {parent_id} not found"))
        return parent_id

    def _storage(self, body: dict[str, Any]) -> str:
        """The storage-format body: well-formed XHTML, or Confluence's 400."""
        storage = (body.get("body") or {}).get("storage") or {}
        value = str(storage.get("value") or "")
        try:
            ET.fromstring(f"<body>{value}</body>")  # noqa: S314 (a test's own request)
        except ET.ParseError as exc:
            raise HttpError(400, self.error_body(400, f"Error parsing xhtml: {exc}")) from None
        return value

    def _create(self, body: dict[str, Any]) -> dict[str, Any]:
        space = (body.get("space") or {}).get("key", "")
        if space not in self.spaces:
            raise HttpError(403, self.error_body(403, f"Space {space} does not exist"))
        title = body.get("title") or ""
        if self._title_taken(space, title):
            raise HttpError(
                400,
                self.error_body(
                    400,
                    "A page with this title already exists: A page already exists with the "
                    "same TITLE in this space",
                ),
            )
        parent = self._parent_of(body, space)
        value = self._storage(body)
        page_id = self.add_page(space, title, parent=parent, body=value)
        return self._content(self.pages[page_id])

    def _update(self, page_id: str, body: dict[str, Any]) -> dict[str, Any]:
        page = self._current(page_id)
        number = (body.get("version") or {}).get("number")
        if number != page.version + 1:
            raise HttpError(
                409,
                self.error_body(
                    409,
                    f"Version must be incremented on update. Current version is: {page.version}",
                ),
            )
        title = body.get("title") or page.title
        if self._title_taken(page.space, title, but=page.id):
            raise HttpError(400, self.error_body(400, "A page with this title already exists"))
        if body.get("ancestors"):
            page.parent = self._parent_of(body, page.space)
        page.title = title
        if "body" in body:
            page.body = self._storage(body)
        page.version = number
        page.versions.append(page.body)
        return self._content(page)
