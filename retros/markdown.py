"""The retro summary as a Markdown document, for a wiki page or a tracker comment.

All user text goes through `md_escape`: it must read as the words people typed wherever
the file is rendered, never as markup, links or raw HTML.
"""

import re

from django.utils import timezone

from escapes.models import Escape
from retros.models import PreventativeAction, Retrospective
from retros.selectors import Board, EscapeCard, WhyNode

# Backslash-escaped everywhere: emphasis, code, links and images, tables, strikethrough,
# raw HTML and entity references. All are ASCII punctuation, which CommonMark escapes.
_INLINE = re.compile(r"([\\`*_\[\]<>|~&])")
# Only at the start of a line do these open a heading, list, quote or setext underline.
_LINE_START = re.compile(r"^(\s*)([#+\-=>])")
_ORDERED = re.compile(r"^(\s*\d+)([.)])")


def md_escape(text: str) -> str:
    """One line of plain text, safe to put anywhere in a Markdown line."""
    one_line = " ".join(str(text).split())
    escaped = _INLINE.sub(r"\\\1", one_line)
    escaped = _LINE_START.sub(lambda m: m.group(1) + "\\" + m.group(2), escaped)
    return _ORDERED.sub(lambda m: m.group(1) + "\\" + m.group(2), escaped)


def _header(retro: Retrospective) -> list[str]:
    facts = [
        f"Team: {md_escape(retro.team.name)}",
        f"Facilitator: {md_escape(retro.facilitator.get_username())}",
        f"Phase: {retro.get_phase_display()}",
    ]
    if retro.release is not None:
        facts.insert(2, f"Release: {md_escape(retro.release.version)}")
    if retro.closed_at is not None:
        facts.append(f"Closed: {timezone.localtime(retro.closed_at):%Y-%m-%d %H:%M %Z}")
    if retro.anonymous:
        facts.append("Anonymous")
    return [f"# Retrospective: {md_escape(retro.title)}", "", " · ".join(facts), ""]


def _totals(board: Board) -> list[str]:
    totals = board.totals
    kinds = ", ".join(f"{n} {kind.lower()}" for kind, n in totals.root_causes.items())
    categories = ", ".join(f"{label} {n}" for label, n in totals.categories.items())
    return [
        "## Totals",
        "",
        f"- Escapes: {totals.escapes}",
        f"- Whys: {totals.whys}",
        f"- Root causes: {kinds}",
        f"- Preventative actions: {totals.actions}",
        f"- Escapes without a preventative action: {totals.escapes_without_action}",
        f"- By category: {categories or 'none classified'}",
        "",
    ]


def _why_lines(nodes: list[WhyNode], *, anonymous: bool, depth: int = 0) -> list[str]:
    lines = []
    for node in nodes:
        why = node.why
        line = f"{'  ' * depth}- {md_escape(why.text)}"
        if not anonymous and why.author is not None:
            line += f" ({md_escape(why.author.get_username())})"
        if why.is_root_cause:
            line += f" **Root cause: {why.get_root_cause_kind_display()}**"
        lines.append(line)
        lines.extend(_why_lines(node.children, anonymous=anonymous, depth=depth + 1))
    return lines


def _escape_facts(escape: Escape, card: EscapeCard) -> list[str]:
    return [
        f"- Category: {escape.get_category_display() or 'not classified'}",
        f"- Stage that should have caught it: {md_escape(str(escape.stage or 'not set'))}",
        f"- Detection deficit: {card.deficit_text}",
        f"- Severity: {escape.get_severity_display()}",
    ]


def _ticket(action: PreventativeAction) -> str:
    """The ticket's state in the board's words, with its key, sprint and tracker status."""
    state = action.ticket_state
    facts = [action.external_key, action.sprint, action.external_status]
    text = " · ".join([state.label, *(md_escape(fact) for fact in facts if fact)])
    return f"{text} — {md_escape(state.note)}" if state.note else text


def _action_lines(card: EscapeCard) -> list[str]:
    if not card.actions:
        return ["No preventative action."]
    lines = []
    for action in card.actions:
        parts = [
            action.get_kind_display(),
            f"stage {md_escape(action.stage.name) if action.stage else 'not set'}",
            f"owner {md_escape(action.owner.get_username()) if action.owner else 'none'}",
            f"due {action.due_date.isoformat() if action.due_date else 'not set'}",
            f"tracker: {_ticket(action)}",
        ]
        lines.append(f"- **{md_escape(action.title)}** — {'; '.join(parts)}")
        if action.description:
            lines.append(f"  {md_escape(action.description)}")
    return lines


def _escape_section(number: int, card: EscapeCard, *, anonymous: bool) -> list[str]:
    whys = _why_lines(card.whys, anonymous=anonymous) or ["No whys."]
    return [
        f"## {number}. {md_escape(card.escape.title)}",
        "",
        *_escape_facts(card.escape, card),
        "",
        "### Five Whys",
        "",
        *whys,
        "",
        "### Preventative actions",
        "",
        *_action_lines(card),
        "",
    ]


def retro_markdown(board: Board) -> str:
    """The summary document. Times are shown in the current (the team's) time zone."""
    retro = board.retro
    lines = [*_header(retro), *_totals(board)]
    for number, card in enumerate(board.cards, start=1):
        lines.extend(_escape_section(number, card, anonymous=retro.anonymous))
    return "\n".join(lines).rstrip() + "\n"
