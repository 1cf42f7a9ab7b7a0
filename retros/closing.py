"""What a retro still lacks before it can close, worded once for the refusal and the board.

Every escape needs a preventative action. Where the team asks for it
(`Team.close_requires_root_cause`, on for new teams) every escape also needs a why marked
as its root cause. `retro_close` refuses with one coded `ValidationError` per escape that
falls short, and the board lists the same gaps before anyone presses Close.
"""

from collections.abc import Collection, Iterable
from dataclasses import dataclass

from django.core.exceptions import ValidationError

from escapes.models import Escape

MISSING_ACTION = "missing_action"
MISSING_ROOT_CAUSE = "missing_root_cause"
MISSING_BOTH = "missing_root_cause_and_action"

GAP_CODES = (MISSING_ACTION, MISSING_ROOT_CAUSE, MISSING_BOTH)

_MESSAGES = {
    MISSING_ACTION: "“%(title)s” has no preventative action yet; add one before closing.",
    MISSING_ROOT_CAUSE: (
        "“%(title)s” has no root cause yet; mark the last why of a chain as its root cause "
        "before closing."
    ),
    MISSING_BOTH: (
        "“%(title)s” has no root cause and no preventative action yet; mark the last why of "
        "a chain as its root cause and add an action before closing."
    ),
}

_LACKS = {
    MISSING_ACTION: "no preventative action",
    MISSING_ROOT_CAUSE: "no root cause",
    MISSING_BOTH: "no root cause and no preventative action",
}


@dataclass(frozen=True)
class CloseGap:
    """One escape that keeps the retro from closing, and what it lacks."""

    escape: Escape
    needs_action: bool
    needs_root_cause: bool

    @property
    def code(self) -> str:
        if self.needs_action and self.needs_root_cause:
            return MISSING_BOTH
        return MISSING_ACTION if self.needs_action else MISSING_ROOT_CAUSE

    @property
    def lacks(self) -> str:
        """What is missing, for a list that names the escape beside it."""
        return _LACKS[self.code]

    def error(self) -> ValidationError:
        """The refusal for this escape: both gaps in one message when both are open."""
        return ValidationError(
            _MESSAGES[self.code], code=self.code, params={"title": self.escape.title}
        )


def close_gaps(
    escapes: Iterable[Escape],
    *,
    with_action: Collection[int],
    with_root_cause: Collection[int],
    requires_root_cause: bool,
) -> list[CloseGap]:
    """The escapes, in the order given, that keep the retro open.

    `with_action` and `with_root_cause` are the ids of the escapes that have one in this
    retro; root causes count only when the team's rule asks for them.
    """
    gaps = []
    for escape in escapes:
        needs_action = escape.pk not in with_action
        needs_root_cause = requires_root_cause and escape.pk not in with_root_cause
        if needs_action or needs_root_cause:
            gaps.append(CloseGap(escape, needs_action, needs_root_cause))
    return gaps
