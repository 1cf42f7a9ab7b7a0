"""Template filters for showing escape metrics the same way on every page."""

from datetime import timedelta

from django import template

register = template.Library()


@register.filter
def duration(value: timedelta | None) -> str:
    """A span as "3 d 4 h", "5 h 20 min" or "12 min"; "—" when unknown.

    A negative span is a data problem and is shown with its sign, never clamped to zero.
    """
    if value is None:
        return "—"
    sign = "−" if value < timedelta(0) else ""
    minutes = int(abs(value).total_seconds() // 60)
    days, rest = divmod(minutes, 24 * 60)
    hours, mins = divmod(rest, 60)
    if days:
        return f"{sign}{days} d {hours} h"
    if hours:
        return f"{sign}{hours} h {mins} min"
    return f"{sign}{mins} min"


@register.filter
def is_negative(value: timedelta | None) -> bool:
    return value is not None and value < timedelta(0)
