"""Closed retros' summaries published to Confluence, through the notices outbox.

    retro_close ──retro_closed──> summary_publish_queue: SummaryPage.publishes = 1 and a
        notice (channel confluence, recipient "space:KEY", occasion "retro-summary:<retro>:1"),
        in the close's transaction; no connection (or switched off): nothing.
    "Publish again" (a team admin, on the closed retro's summary) ──> summary_publish_again:
        publishes + 1, a notice "retro-summary:<retro>:<n>", audited.
    notices.deliver ──> send(): the page of the previous publish, else the page of this title
        in the space, is updated in place (version + 1); only when neither exists is a page
        created under the parent. So a retried publish whose answer was lost, or a publish
        after the page was deleted in Confluence, never makes a second page beside the first.

A closed retro is final (docs/design.md): "updated in place" is publishing again, with the
tickets' current states, never reopening the retro.
"""

from __future__ import annotations

import logging
from typing import Any

from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.db import transaction
from django.http import Http404
from django.utils import timezone

from audit.models import Action
from audit.services import record
from config.crypto import CredentialError
from integrations.confluence import ConfluenceClient, ConfluenceError, page_title, storage_body
from integrations.models import ConfluenceConnection, SummaryPage
from notices.models import Channel, Notice
from notices.selectors import latest_notice
from notices.senders import Permanent, Transient, sender
from notices.services import notice_enqueue
from retros.models import Phase, Retrospective
from retros.selectors import get_retro_for_team, retro_board
from retros.signals import NOT_PUBLISHED, SummaryPublishing

log = logging.getLogger(__name__)

KIND = "retro_summary"


def connection_of(team: Any) -> ConfluenceConnection | None:
    """The team's Confluence connection if it is switched on."""
    return ConfluenceConnection.objects.filter(team=team, enabled=True).first()


def _occasion_prefix(retro: Retrospective) -> str:
    return f"retro-summary:{retro.pk}:"


def _enqueue(retro: Retrospective, connection: ConfluenceConnection) -> Notice | None:
    """The next publish of the retro's summary, inside the caller's transaction."""
    page, _ = SummaryPage.objects.select_for_update().get_or_create(retro=retro)
    page.publishes += 1
    page.save(update_fields=["publishes"])
    return notice_enqueue(
        team=retro.team,
        channel=Channel.CONFLUENCE,
        recipient=f"space:{connection.space_key}",
        occasion=f"{_occasion_prefix(retro)}{page.publishes}",
        kind=KIND,
        subject=f"Retro summary to Confluence: {retro.title}"[:300],
        payload={"retro": retro.pk, "publish": page.publishes},
    )


def summary_publish_queue(*, retro: Retrospective) -> Notice | None:
    """On close, in its transaction: the first publish. No connection: nothing at all."""
    connection = connection_of(retro.team)
    if connection is None:
        return None
    return _enqueue(retro, connection)


@transaction.atomic
def summary_publish_again(*, retro: Retrospective, by: User | None) -> Notice | None:
    """An admin's "Publish again": the same page, updated with what is true now (tickets'
    states), or a new page if the old one was deleted in Confluence. Audited. The summary
    page's row lock (in `_enqueue`) orders two admins pressing at once: two publishes."""
    retro.refresh_from_db(fields=["phase"])
    if retro.phase != Phase.CLOSED:
        raise ValidationError("Only a closed retrospective's summary is published.")
    connection = connection_of(retro.team)
    if connection is None:
        raise ValidationError(
            "No Confluence connection is switched on for this team: connect Confluence first."
        )
    notice = _enqueue(retro, connection)
    record(
        team=retro.team,
        actor=by,
        action=Action.SUMMARY_REPUBLISHED,
        target=f"Retro #{retro.pk} “{retro.title}”",
        changes={
            "space": connection.space_key,
            "publish": notice.payload["publish"] if notice else None,
        },
    )
    return notice


# --- Sending (notices.deliver calls it with the notice taken).


@sender(Channel.CONFLUENCE)
def send(notice: Notice) -> dict[str, Any]:
    try:
        if notice.team is None:
            raise Http404
        retro = get_retro_for_team(notice.team, int(notice.payload.get("retro") or 0))
    except Http404:
        raise Permanent("The retrospective was deleted: there is nothing to publish.") from None
    connection = ConfluenceConnection.objects.filter(team=retro.team).first()
    if connection is None or not connection.enabled:
        raise Permanent(
            "Confluence was disconnected or switched off before the summary was published."
        )
    page, _ = SummaryPage.objects.get_or_create(retro=retro)
    try:
        published = ConfluenceClient(connection).publish(
            title=page_title(retro),
            body=storage_body(retro_board(retro)),
            # The page of an earlier publish to this same space; another space starts afresh.
            page_id=page.page_id if page.space_key == connection.space_key else "",
        )
    except CredentialError:
        raise Permanent(
            "The stored Confluence token cannot be read (its key is gone): reconnect Confluence."
        ) from None
    except ConfluenceError as exc:
        if exc.transient:
            raise Transient(exc.message, retry_after=exc.retry_after) from None
        raise Permanent(exc.message) from None
    SummaryPage.objects.filter(pk=page.pk).update(
        space_key=connection.space_key,
        page_id=published.page.id,
        url=published.page.url,
        version=published.page.version,
        published_at=timezone.now(),
    )
    log.info(
        "retro %s summary %s as Confluence page %s version %s",
        retro.pk,
        "created" if published.created else "updated",
        published.page.id,
        published.page.version,
    )
    return {
        "page_id": published.page.id,
        "url": published.page.url,
        "version": published.page.version,
        "created": published.created,
    }


# --- What the summary page shows (the answer to retros' summary_publishing_asked).


def publishing_of(retro: Retrospective) -> SummaryPublishing:
    """Three queries for a closed retro (its summary alone is ever published), none else."""
    if not retro.is_closed:
        return NOT_PUBLISHED
    connection = connection_of(retro.team)
    page = SummaryPage.objects.filter(retro=retro).first()
    latest = latest_notice(channel=Channel.CONFLUENCE, occasion_prefix=_occasion_prefix(retro))
    return SummaryPublishing(
        connected=connection is not None,
        where=connection.where if connection else "",
        page_url=page.url if page else "",
        version=page.version if page else None,
        state=latest.get_state_display().lower() if latest else "",
        error=latest.last_error if latest and latest.state != "sent" else "",
    )
