"""Confluence Cloud and Data Center, through atlassian-python-api, and the summary page's body.

Both deployments speak the content REST API (`/rest/api/content`, `/rest/api/space`), which
Cloud serves under `/wiki`: Leakseal reads a space, finds a page by its title in the space
or by its id, creates a page under a parent and updates one in place (version + 1). The
library's Server client issues those calls for both (its Cloud client speaks the v2 API,
which has no lookup by space key and title); Cloud signs in with an account email and an API
token (Basic), Data Center with a personal access token (Bearer).

The library is told not to retry (it would sleep on a 429's Retry-After inside a worker) and
its timeout is replaced by ours; every failure leaves here as a `ConfluenceError` whose
message names what is wrong in our words, never the token, with `transient` set for what a
later try can fix (no answer, 429 with its Retry-After, 5xx).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import requests
from atlassian.confluence import ConfluenceServer
from atlassian.errors import ApiError
from django.conf import settings
from django.urls import reverse
from django.utils import timezone
from django.utils.html import escape as html_escape

from config.retry import retry_after_seconds
from integrations.http import RemoteError, new_session
from integrations.models import ConfluenceConnection
from retros.models import PreventativeAction, Retrospective
from retros.selectors import Board, EscapeCard, WhyNode

log = logging.getLogger(__name__)

T = TypeVar("T")

TITLE_MAX = 255  # Confluence refuses longer titles
PAGE_EXPAND = "version,space,ancestors"


class ConfluenceError(RemoteError):
    """Confluence's answer, worded for the delivery log."""


@dataclass(frozen=True)
class Page:
    id: str
    title: str
    version: int
    url: str
    space_key: str
    parent_id: str  # the direct parent, "" at the space's root


@dataclass(frozen=True)
class Published:
    page: Page
    created: bool  # False: an existing page was updated in place


def site_root(connection: ConfluenceConnection) -> str:
    """The URL the REST paths hang from: Cloud serves Confluence under /wiki."""
    base = connection.base_url.rstrip("/")
    if connection.cloud and not base.endswith("/wiki"):
        base += "/wiki"
    return base


def _status_of(exc: BaseException) -> requests.Response | None:
    reason = getattr(exc, "reason", None) if isinstance(exc, ApiError) else exc
    response = getattr(reason, "response", None)
    return response if isinstance(response, requests.Response) else None


class ConfluenceClient:
    def __init__(self, connection: ConfluenceConnection) -> None:
        self.connection = connection
        self.root = site_root(connection)
        token = connection.token
        options: dict[str, Any] = {
            "session": new_session(),
            "backoff_and_retry": False,
            "retry_with_header": False,  # else the library sleeps on Retry-After and retries
        }
        if connection.cloud:
            self.api = ConfluenceServer(
                self.root, username=connection.account_email, password=token, **options
            )
        else:
            self.api = ConfluenceServer(self.root, token=token or None, **options)
        # The library passes its own timeout to every request, which would win over the
        # session's default; ours is (connect, read) from settings.
        self.api.timeout = (  # type: ignore[assignment]
            settings.TRACKER_CONNECT_TIMEOUT,
            settings.TRACKER_READ_TIMEOUT,
        )

    # --- Failures, in our words.

    def _error(self, exc: BaseException, doing: str) -> ConfluenceError:
        if isinstance(exc, requests.Timeout):
            return ConfluenceError(
                f"Confluence did not answer in time while {doing}", transient=True
            )
        if isinstance(exc, requests.ConnectionError):
            return ConfluenceError(f"Could not connect to Confluence while {doing}", transient=True)
        response = _status_of(exc)
        if response is None:
            return ConfluenceError(
                f"The request to Confluence failed while {doing} ({type(exc).__name__})",
                transient=True,
            )
        status = response.status_code
        if status == 429 or status >= 500:
            retry_after = retry_after_seconds(response.headers.get("Retry-After"))
            busy = "is rate limiting Leakseal" if status == 429 else "had a server error"
            return ConfluenceError(
                f"Confluence {busy} while {doing} (HTTP {status})",
                transient=True,
                status=status,
                retry_after=retry_after,
            )
        if status == 401:
            who = (
                "the account email and API token"
                if self.connection.cloud
                else "the personal access token"
            )
            message = f"Confluence refused {who} (HTTP 401): reconnect with a valid token"
        elif status == 403:
            message = (
                f"The Confluence account may not do this in space {self.connection.space_key} "
                f"(HTTP 403) while {doing}: give it permission to add pages there"
            )
        elif status == 404:
            message = f"Confluence found nothing (HTTP 404) while {doing}"
        else:
            message = f"Confluence refused the request (HTTP {status}) while {doing}"
        return ConfluenceError(message, transient=False, status=status)

    def _call(self, doing: str, method: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        try:
            return method(*args, **kwargs)
        except (requests.RequestException, ApiError) as exc:
            # `from None`: the request it carries holds the Authorization header.
            raise self._error(exc, doing) from None

    def _page(self, body: Any) -> Page:
        if not isinstance(body, dict) or not body.get("id"):
            raise ConfluenceError(
                f"The answer from {self.root} is not Confluence's: is the URL right?",
                transient=False,
            )
        links = body.get("_links") or {}
        base = str(links.get("base") or self.root).rstrip("/")
        webui = str(links.get("webui") or f"/pages/viewpage.action?pageId={body['id']}")
        ancestors = body.get("ancestors") or []
        return Page(
            id=str(body["id"]),
            title=str(body.get("title") or ""),
            version=int((body.get("version") or {}).get("number") or 1),
            url=f"{base}{webui}",
            space_key=str((body.get("space") or {}).get("key") or ""),
            parent_id=str(ancestors[-1].get("id")) if ancestors else "",
        )

    # --- What the settings page checks.

    def space_name(self, key: str) -> str:
        """The space's name; a ConfluenceError naming the key when there is none."""
        try:
            space = self._call(f"reading space {key}", self.api.get_space, key)
        except ConfluenceError as exc:
            if exc.status == 404:
                raise ConfluenceError(
                    f"Confluence has no space with the key {key}, or the account cannot see it",
                    transient=False,
                    status=404,
                ) from None
            raise
        if not isinstance(space, dict) or "key" not in space:
            raise ConfluenceError(
                f"The answer from {self.root} is not Confluence's: is the URL right?",
                transient=False,
            )
        return str(space.get("name") or key)

    def find_page(self, space_key: str, title: str) -> Page | None:
        """The current page of that title in the space (titles are unique in a space)."""
        found = self._call(
            f"looking for the page “{title}”",
            self.api.get_page_by_title,
            space_key,
            title,
            expand=PAGE_EXPAND,
        )
        results = found.get("results") if isinstance(found, dict) else None
        if not results:
            return None
        return self._page(results[0])

    def page(self, page_id: str) -> Page | None:
        """The current page with this id; None when it is gone (deleted, or never was)."""
        try:
            body = self._call(
                f"reading page {page_id}",
                self.api.get_page_by_id,
                page_id,
                expand=PAGE_EXPAND,
                status="current",
            )
        except ConfluenceError as exc:
            if exc.status == 404:
                return None
            raise
        return self._page(body)

    def parent(self, space_key: str, parent: str) -> Page:
        """The page an admin named as parent, by its id (digits) or its title in the space."""
        page = self.page(parent) if parent.isdigit() else self.find_page(space_key, parent)
        if page is None:
            what = f"id {parent}" if parent.isdigit() else f"the title “{parent}”"
            raise ConfluenceError(
                f"Space {space_key} has no page with {what}, or the account cannot see it",
                transient=False,
                status=404,
            )
        if page.space_key and page.space_key != space_key:
            raise ConfluenceError(
                f"Page {parent} is in space {page.space_key}, not {space_key}", transient=False
            )
        return page

    # --- Publishing.

    def publish(self, *, title: str, body: str, page_id: str = "") -> Published:
        """Update the page in place (version + 1), or create it under the parent.

        The page is the one published before (`page_id`) if it still exists, else the page of
        this title in the space: Confluence has no idempotency key, and an earlier try may
        have created it without Leakseal hearing the answer. Only when neither exists is a
        page created, so a retried publish never makes a second page.
        """
        connection = self.connection
        existing = self.page(page_id) if page_id else None
        if existing is None:
            existing = self.find_page(connection.space_key, title)
        if existing is not None:
            return Published(self._update(existing, title=title, body=body), created=False)
        created = self._call(
            f"creating the page “{title}” in space {connection.space_key}",
            self.api.create_page,
            connection.space_key,
            title,
            body,
            parent_id=connection.parent_id,
            representation="storage",
        )
        return Published(self._page(created), created=True)

    def _update(self, page: Page, *, title: str, body: str) -> Page:
        data = {
            "id": page.id,
            "type": "page",
            "title": title,
            "status": "current",
            "version": {"number": page.version + 1, "message": "Published again by Leakseal"},
            "ancestors": [{"id": self.connection.parent_id}],
            "body": {"storage": {"value": body, "representation": "storage"}},
        }
        updated = self._call(
            f"updating page {page.id}",
            self.api.put,
            f"rest/api/content/{page.id}",
            data=data,
        )
        return self._page(updated)


# --- The page: the retro summary in Confluence's storage format (XHTML).


def escape(value: object) -> str:
    """Text as XHTML character data or an attribute value: &, <, >, " and ' escaped (the
    last as &#x27;, a numeric reference XHTML reads without a DTD)."""
    return str(html_escape(value))


def page_title(retro: Retrospective) -> str:
    """Unique in the space (Confluence requires it): the retro's number and its team."""
    suffix = f" — retro #{retro.pk}, {retro.team.name}"
    return f"{retro.title[: TITLE_MAX - len(suffix)]}{suffix}"


def _person(user: Any) -> str:
    return str(user.get_username()) if user is not None else ""


def _why_items(nodes: list[WhyNode], *, anonymous: bool) -> str:
    items = []
    for node in nodes:
        why = node.why
        text = escape(why.text)
        if not anonymous and why.author is not None:
            text += f" <em>({escape(_person(why.author))})</em>"
        if why.is_root_cause:
            text += f" <strong>Root cause: {escape(why.get_root_cause_kind_display())}</strong>"
        if node.children:
            text += _why_items(node.children, anonymous=anonymous)
        items.append(f"<li>{text}</li>")
    return f"<ul>{''.join(items)}</ul>"


def _ticket(action: PreventativeAction) -> str:
    state = action.ticket_state
    key = escape(action.external_key)
    if action.external_key and action.external_url.startswith(("https://", "http://")):
        key = f'<a href="{escape(action.external_url)}">{key}</a>'
    facts = [f for f in (key, escape(action.sprint), escape(action.external_status)) if f]
    text = " · ".join([escape(state.label), *facts])
    return f"{text} — {escape(state.note)}" if state.note else text


def _action_items(card: EscapeCard) -> str:
    if not card.actions:
        return "<p>No preventative action.</p>"
    items = []
    for action in card.actions:
        parts = [
            escape(action.get_kind_display()),
            f"stage {escape(action.stage.name) if action.stage else 'not set'}",
            f"owner {escape(_person(action.owner)) if action.owner else 'none'}",
            f"due {action.due_date.isoformat() if action.due_date else 'not set'}",
            f"tracker: {_ticket(action)}",
        ]
        item = f"<strong>{escape(action.title)}</strong> — {'; '.join(parts)}"
        if action.description:
            item += f"<br/>{escape(action.description)}"
        items.append(f"<li>{item}</li>")
    return f"<ul>{''.join(items)}</ul>"


def _escape_section(number: int, card: EscapeCard, retro: Retrospective) -> str:
    escape_ = card.escape
    facts = [
        f"Category: {escape(escape_.get_category_display() or 'not classified')}",
        f"Stage that should have caught it: {escape(str(escape_.stage or 'not set'))}",
        f"Detection deficit: {escape(card.deficit_text)}",
        f"Severity: {escape(escape_.get_severity_display())}",
    ]
    whys = _why_items(card.whys, anonymous=retro.anonymous) if card.whys else "<p>No whys.</p>"
    return (
        f"<h2>{number}. {escape(escape_.title)}</h2>"
        f"<ul>{''.join(f'<li>{fact}</li>' for fact in facts)}</ul>"
        f"<h3>Five Whys</h3>{whys}"
        f"<h3>Preventative actions</h3>{_action_items(card)}"
    )


def storage_body(board: Board) -> str:
    """The summary page: header facts, totals, and per escape its whys (root causes marked)
    and its actions with their tickets. Every text is escaped: it reads as typed."""
    retro = board.retro
    totals = board.totals
    summary = f"{settings.SITE_URL}" + reverse(
        "retro_summary", kwargs={"team": retro.team.slug, "pk": retro.pk}
    )
    facts = [
        f"Team {escape(retro.team.name)}",
        f"facilitated by {escape(_person(retro.facilitator))}",
    ]
    if retro.release is not None:
        facts.append(f"release {escape(retro.release.version)}")
    if retro.closed_at is not None:
        facts.append(f"closed {timezone.localtime(retro.closed_at):%Y-%m-%d %H:%M %Z}")
    kinds = ", ".join(f"{n} {escape(kind.lower())}" for kind, n in totals.root_causes.items())
    sections = "".join(
        _escape_section(number, card, retro) for number, card in enumerate(board.cards, start=1)
    )
    return (
        f"<p>{' · '.join(facts)}. "
        f'<a href="{escape(summary)}">The summary in Leakseal</a>.</p>'
        "<h2>Totals</h2><ul>"
        f"<li>Escapes: {totals.escapes}</li>"
        f"<li>Root causes: {kinds or 'none marked'}</li>"
        f"<li>Preventative actions: {totals.actions}</li>"
        f"<li>Escapes without a preventative action: {totals.escapes_without_action}</li>"
        "</ul>"
        f"{sections}"
        f"<p><em>Published by Leakseal on {timezone.localtime():%Y-%m-%d %H:%M %Z}; "
        "changes made here are replaced when the summary is published again.</em></p>"
    )
