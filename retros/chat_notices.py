"""What a team's chat channels are told about its retros (notices/chat.py posts it).

Called inside the transaction that starts or closes the retro, so the notice exists exactly
when the change commits. A team without a chat channel gets nothing. With a tracker
connected, the close comes before the tickets (workers push them after the commit), so the
tickets follow in a second notice, from the transaction that settles the retro's last push
(`retro_tickets_chat`, called by integrations/push.py).
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.urls import reverse

from notices.chat import chat_notices_enqueue
from notices.models import Notice
from notices.models_chat import ChatEvent
from retros.models import PreventativeAction, Retrospective, Why
from retros.signals import tracker_target
from retros.views_join import retro_join_url

MAX_ITEMS = 25  # per section: a long retro's message stays readable; Leakseal has the rest
MAX_REASON = 300  # a tracker's refusal, as much of it as a chat line can carry


def _person(user: object) -> str:
    full = getattr(user, "get_full_name", lambda: "")()
    return full or getattr(user, "get_username", lambda: "someone")()


def _summary_url(retro: Retrospective) -> str:
    path = reverse("retro_summary", kwargs={"team": retro.team.slug, "pk": retro.pk})
    return f"{settings.SITE_URL}{path}"


def _retro_url(retro: Retrospective) -> str:
    path = reverse("retro_detail", kwargs={"team": retro.team.slug, "pk": retro.pk})
    return f"{settings.SITE_URL}{path}"


def _capped(items: list[Any]) -> list[Any]:
    if len(items) <= MAX_ITEMS:
        return items
    return [*items[:MAX_ITEMS], f"…and {len(items) - MAX_ITEMS} more in Leakseal"]


def _escape_titles(retro: Retrospective) -> list[str]:
    return [item.escape.title for item in retro.items.select_related("escape").order_by("position")]


def retro_started_chat(retro: Retrospective) -> list[Notice]:
    """A retro started: its title, facilitator, escapes, and its join link (which takes a
    member to the board, and a newcomer in when the team allows it: retros/views_join.py)."""
    team = retro.team
    link = f"{settings.SITE_URL}{retro_join_url(retro)}"
    escapes = _escape_titles(retro)
    payload = {
        "title": f"Retro started: {retro.title}",
        "lines": [
            f"{_person(retro.facilitator)} facilitates the retrospective of team {team.name}."
        ],
        "sections": [{"heading": f"Escapes ({len(escapes)})", "items": _capped(escapes)}],
        "link": {"text": "Join the retro", "url": link},
    }
    return chat_notices_enqueue(
        team=team,
        occasion=f"retro-started:{retro.pk}",
        kind=ChatEvent.RETRO_STARTED,
        subject=f"Retro started: {retro.title}"[:300],
        payload=payload,
    )


def _action_line(action: PreventativeAction, tracker_connected: bool) -> str:
    owner = f", owner {_person(action.owner)}" if action.owner else ""
    due = f", due {action.due_date:%Y-%m-%d}" if action.due_date else ""
    if action.external_key:
        ticket = f" — {action.external_key} {action.external_url}".rstrip()
    elif tracker_connected:
        ticket = " — ticket to follow"
    else:
        ticket = " — tracked in Leakseal (no tracker connected)"
    return f"{action.title}{owner}{due}{ticket}"


def retro_closed_chat(retro: Retrospective) -> list[Notice]:
    """A retro closed: its escapes, their root causes, and the actions with their tickets."""
    team = retro.team
    roots = [
        f"{why.escape.title}: {why.text} ({why.get_root_cause_kind_display()})"
        for why in Why.objects.filter(retro=retro)
        .exclude(root_cause_kind="")
        .select_related("escape")
        .order_by("escape_id", "pk")
    ]
    target = tracker_target(team)
    actions_of = list(
        PreventativeAction.objects.filter(retro=retro).select_related("owner").order_by("pk")
    )
    actions = [_action_line(action, target.connected) for action in actions_of]
    escapes = _escape_titles(retro)
    lines = [
        f"Team {team.name} closed the retrospective: {len(escapes)} escape(s), "
        f"{len(roots)} root cause(s), {len(actions)} preventative action(s)."
    ]
    if target.connected and any(not action.external_key for action in actions_of):
        lines.append(
            f"The tickets follow in this channel once {target.tracker or 'the tracker'} has them."
        )
    payload = {
        "title": f"Retro closed: {retro.title}",
        "lines": lines,
        "sections": [
            {"heading": "Escapes", "items": _capped(escapes)},
            {"heading": "Root causes", "items": _capped(roots) or ["none marked"]},
            {"heading": "Actions", "items": _capped(actions)},
        ],
        "link": {"text": "Read the summary", "url": _summary_url(retro)},
    }
    closed = retro.closed_at.isoformat() if retro.closed_at else ""
    return chat_notices_enqueue(
        team=team,
        occasion=f"retro-closed:{retro.pk}:{closed}",
        kind=ChatEvent.RETRO_CLOSED,
        subject=f"Retro closed: {retro.title}"[:300],
        payload=payload,
    )


def _ticket_item(action: PreventativeAction) -> str | dict[str, Any]:
    """One action of the follow-up: its ticket's key linked to the ticket, or why it has none.

    A failed push's reason is the tracker's own answer as the board shows it (integrations
    words it without credentials: integrations/http.py), cut to a line.
    """
    if action.external_key:
        item: dict[str, Any] = {"text": action.title, "key": action.external_key}
        if action.external_url.startswith(("https://", "http://")):
            item["url"] = action.external_url
        return item
    reason = action.last_error.strip() or "the tracker gave no reason"
    if len(reason) > MAX_REASON:
        reason = reason[: MAX_REASON - 1] + "…"
    return f"{action.title} — its ticket could not be made: {reason}"


def retro_tickets_chat(retro: Retrospective) -> list[Notice]:
    """The tickets of a closed retro, once each action's push is settled (pushed, or failed
    for good): each action with its ticket's key linked, or why its ticket could not be made.

    Call in the transaction that settles the retro's last push, holding the retro row lock
    (integrations/push.py decides when that is). One per retro and channel: the occasion has
    no time in it, so a settlement seen twice (two workers, a Retry that settles again) finds
    the notice already there. A closed retro is final, so there is no second close to tell.
    """
    team = retro.team
    actions = list(PreventativeAction.objects.filter(retro=retro).order_by("pk"))
    items = [_ticket_item(action) for action in actions]
    made = sum(1 for action in actions if action.external_key)
    tracker = tracker_target(team).tracker or "the tracker"
    lines = [f"{made} of {len(actions)} preventative action(s) are now tickets in {tracker}."]
    if made < len(actions):
        lines.append(
            "An action without a ticket can be pushed again from the retro (Retry push) once "
            "the cause is fixed."
        )
    payload = {
        "title": f"Tickets for {retro.title}",
        "lines": lines,
        "sections": [{"heading": "Tickets", "items": _capped(items)}],
        "link": {"text": "Open the retro", "url": _retro_url(retro)},
    }
    return chat_notices_enqueue(
        team=team,
        occasion=f"retro-tickets:{retro.pk}",
        kind=ChatEvent.RETRO_CLOSED,
        subject=f"Tickets for {retro.title}"[:300],
        payload=payload,
    )
