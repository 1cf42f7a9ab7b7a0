"""What a team's chat channels are told about its retros (notices/chat.py posts it).

Called inside the transaction that starts or closes the retro, so the notice exists exactly
when the change commits. A team without a chat channel gets nothing.
"""

from __future__ import annotations

from django.conf import settings
from django.urls import reverse

from notices.chat import chat_notices_enqueue
from notices.models import Notice
from notices.models_chat import ChatEvent
from retros.models import PreventativeAction, Retrospective, Why
from retros.signals import tracker_target
from retros.views_join import retro_join_url

MAX_ITEMS = 25  # per section: a long retro's message stays readable; Leakseal has the rest


def _person(user: object) -> str:
    full = getattr(user, "get_full_name", lambda: "")()
    return full or getattr(user, "get_username", lambda: "someone")()


def _summary_url(retro: Retrospective) -> str:
    path = reverse("retro_summary", kwargs={"team": retro.team.slug, "pk": retro.pk})
    return f"{settings.SITE_URL}{path}"


def _capped(items: list[str]) -> list[str]:
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
        ticket = " — ticket on its way to the tracker"
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
    connected = tracker_target(team).connected
    actions = [
        _action_line(action, connected)
        for action in PreventativeAction.objects.filter(retro=retro)
        .select_related("owner")
        .order_by("pk")
    ]
    escapes = _escape_titles(retro)
    payload = {
        "title": f"Retro closed: {retro.title}",
        "lines": [
            f"Team {team.name} closed the retrospective: {len(escapes)} escape(s), "
            f"{len(roots)} root cause(s), {len(actions)} preventative action(s)."
        ],
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
