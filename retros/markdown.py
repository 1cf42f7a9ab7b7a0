"""The retro summary as a Markdown document, for a wiki page or a tracker comment.

All user text goes through `md_escape`: it must read as the words people typed wherever
the file is rendered, never as markup, links or raw HTML. And since the file is read raw
as often as rendered (a tracker comment, a diff), it escapes only what would otherwise
be markup where it stands: a version like 2026.12.0 stays 2026.12.0 in a heading, a fact
or a table cell, and only `1. ` at the start of a block is an ordered list. The rules
are CommonMark's (https://spec.commonmark.org/0.31.2/) with GitHub's tables and
strikethrough.
"""

import re

from django.utils import timezone

from escapes.models import Escape
from retros.models import PreventativeAction, Retrospective, VotingState
from retros.selectors import Board, EscapeCard, WhyNode

# Escaped wherever they stand: the escape character itself, code spans, emphasis, links and
# images, raw HTML and autolinks (`<`), table cells and strikethrough. A `>` without a `<`
# before it closes nothing, so it is left alone except where it opens a quote.
_ANYWHERE = re.compile(r"([\\`*\[\]<|~])")
# An entity or numeric character reference would be decoded; a lone `&` (R&D) is text.
_REFERENCE = re.compile(r"&(?=#[0-9]{1,7};|#[xX][0-9a-fA-F]{1,6};|[A-Za-z][A-Za-z0-9]*;)")
# A run of `_` between two letters or digits can neither open nor close emphasis, so
# snake_case_names stay as typed; any other run is escaped.
_UNDERSCORES = re.compile(r"_+")
# Only where text starts a block (a line, or the first words of a list item) do these open
# a heading, a quote, a list item, or a setext underline or thematic break.
_BLOCK_START = re.compile(
    r"^(?:"
    r"#{1,6}(?=\s|$)"  # an ATX heading: one to six #, then a space or nothing
    r"|>"  # a block quote
    r"|[-+](?=\s|$)"  # a bullet list item (`*` is escaped anywhere)
    r"|[-=](?=[-=\s]*$)"  # a line of only - or =: setext underline, thematic break
    r")"
)
# An ordered list item: one to nine digits, then `.` or `)` and a space or nothing. The dot
# of 2026.12.0 is followed by a digit, so it starts nothing.
_ORDERED = re.compile(r"^(\d{1,9})([.)])(?=\s|$)")
# In a heading, a last run of # after a space is its optional closing sequence, dropped. The
# text always follows a space there ("## 1. "), so a run that is all of it counts too.
_CLOSING_HASHES = re.compile(r"(?:^|(?<=\s))#(?=#*$)")


def _underscores(match: re.Match[str]) -> str:
    text, start, end = match.string, match.start(), match.end()
    inside_word = (
        start > 0 and end < len(text) and text[start - 1].isalnum() and text[end].isalnum()
    )
    return match.group() if inside_word else match.group().replace("_", "\\_")


def md_escape(text: str, *, starts_block: bool = False, in_heading: bool = False) -> str:
    """One line of plain text, safe where it is put in a Markdown line.

    `starts_block`: the text begins a line or a list item (`- {text}`), where `# `, `> `,
    `- `, `1. ` and the like would open a block. `in_heading`: it ends an ATX heading,
    where trailing `#`s would be dropped.
    """
    one_line = " ".join(str(text).split())
    escaped = _ANYWHERE.sub(r"\\\1", one_line)
    escaped = _REFERENCE.sub(r"\\&", escaped)
    escaped = _UNDERSCORES.sub(_underscores, escaped)
    if starts_block:
        escaped = _BLOCK_START.sub(lambda m: "\\" + m.group(), escaped)
        escaped = _ORDERED.sub(lambda m: m.group(1) + "\\" + m.group(2), escaped)
    if in_heading:
        escaped = _CLOSING_HASHES.sub(r"\\#", escaped)
    return escaped


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
    title = md_escape(retro.title, in_heading=True)
    return [f"# Retrospective: {title}", "", " · ".join(facts), ""]


def _voting(retro: Retrospective, votes: int) -> str:
    if retro.voting == VotingState.NOT_STARTED:
        return "not used"
    state = "open" if retro.voting == VotingState.OPEN else "closed"
    return f"{retro.votes_per_person} votes per person, {votes} cast ({state})"


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
        f"- Dot voting: {_voting(board.retro, totals.votes)}",
        "",
    ]


def _why_lines(nodes: list[WhyNode], *, anonymous: bool, depth: int = 0) -> list[str]:
    lines = []
    for node in nodes:
        why = node.why
        line = f"{'  ' * depth}- {md_escape(why.text, starts_block=True)}"
        if not anonymous and why.author is not None:
            line += f" ({md_escape(why.author.get_username())})"
        if why.edited_at is not None:
            editor = why.edited_by if not anonymous else None
            line += f" (edited by {md_escape(editor.get_username())})" if editor else " (edited)"
        if why.is_root_cause:
            line += f" **Root cause: {why.get_root_cause_kind_display()}**"
        lines.append(line)
        lines.extend(_why_lines(node.children, anonymous=anonymous, depth=depth + 1))
    return lines


def _fact_lines(card: EscapeCard, *, anonymous: bool) -> list[str]:
    """What was gathered about the escape, oldest first: kind, text, link, author and time."""
    lines = []
    for fact in card.facts:
        line = f"- {fact.get_kind_display()}: {md_escape(fact.text)}"
        if fact.url:
            line += f" — {md_escape(fact.url)}"
        who = fact.author.get_username() if fact.author is not None and not anonymous else ""
        when = f"{timezone.localtime(fact.created_at):%Y-%m-%d %H:%M}"
        line += f" ({md_escape(who)}, {when})" if who else f" ({when})"
        lines.append(line)
    return lines or ["No facts."]


def _escape_facts(escape: Escape, card: EscapeCard, *, voted: bool) -> list[str]:
    facts = [
        f"- Category: {escape.get_category_display() or 'not classified'}",
        f"- Stage that should have caught it: {md_escape(str(escape.stage or 'not set'))}",
        f"- Detection deficit: {card.deficit_text}",
        f"- Severity: {escape.get_severity_display()}",
    ]
    if voted:  # how many dots it got from everybody; who cast them is never shown
        facts.append(f"- Votes: {card.votes}")
    if card.proposed:  # only while the retro is in Gather
        by = card.proposed_by
        facts.append(
            f"- Proposed{f' by {md_escape(by.get_username())}' if by else ''}; not kept yet"
        )
    return facts


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
            lines.append(f"  {md_escape(action.description, starts_block=True)}")
        if action.done_at is not None:
            lines.append(f"  {_done(action)}")
    return lines


def _done(action: PreventativeAction) -> str:
    """ "Done <date> by <name>: <note> — <link>", as the board's follow-through block says it."""
    when = timezone.localtime(action.done_at).date().isoformat() if action.done_at else ""
    text = f"Done {when}"
    if action.done_by is not None:
        text += f" by {md_escape(action.done_by.get_username())}"
    elif action.external_key:
        text += " in the tracker"
    if action.done_note:
        text += f": {md_escape(action.done_note)}"
    if action.done_url:
        text += f" — {md_escape(action.done_url)}"
    return text


def _escape_section(number: int, card: EscapeCard, *, retro: Retrospective) -> list[str]:
    whys = _why_lines(card.whys, anonymous=retro.anonymous) or ["No whys."]
    voted = retro.voting != VotingState.NOT_STARTED
    return [
        f"## {number}. {md_escape(card.escape.title, in_heading=True)}",
        "",
        *_escape_facts(card.escape, card, voted=voted),
        "",
        "### Facts",
        "",
        *_fact_lines(card, anonymous=retro.anonymous),
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
        lines.extend(_escape_section(number, card, retro=retro))
    return "\n".join(lines).rstrip() + "\n"
