"""Template filters for the leak bucket's guide on the board (retros/guide.py)."""

from django import template

from retros.guide import CategoryGuide, Guide, KindChoices, kind_choices

register = template.Library()


@register.filter
def guide_for(guide: Guide | None, category: str) -> CategoryGuide | None:
    """The category's questions in the team's guide; None when unclassified or no guide."""
    return guide.for_category(category) if guide is not None else None


@register.filter
def kinds_for(category: str) -> KindChoices:
    """The action kinds for a form on an escape of this category, suggested ones first."""
    return kind_choices(category)
