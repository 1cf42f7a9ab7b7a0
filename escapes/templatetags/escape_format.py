"""Template filters for showing escape metrics the same way on every page."""

from datetime import timedelta

from django import template
from django.utils.html import format_html, format_html_join

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


@register.simple_tag
def linked(value: object, links: list) -> str:
    """A dashboard number with the register link(s) of the escapes behind it.

    One link: the number is the link. Several (one per team): the number, then a link per
    team. A tag rather than a template partial: a three-year weekly table has a thousand.
    """
    if len(links) == 1:
        return format_html('<a href="{}">{}</a>', links[0].url, value)
    if not links or not value:
        return format_html("{}", value)
    teams = format_html_join(
        " ", '<a href="{}" title="{}">{}</a>', ((x.url, x.team.name, x.team.slug) for x in links)
    )
    return format_html('{} <span class="team-links">{}</span>', value, teams)
