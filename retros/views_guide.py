"""The team's guiding questions for the Five Whys, per category (retros/guide.py).

Facilitators and admins edit them on /t/<team>/retros/guide/: one form per category, which
saves or resets to the defaults. For htmx the answer is that category's section of the page,
with its error or notice inside it; without JavaScript a save redirects back to the page and
a refused one renders the page with the error beside the field.
"""

from typing import Any

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from escapes.models import Category
from retros.guide import (
    QUESTION_LENGTH_MAX,
    QUESTIONS_MAX,
    guide_questions_reset,
    guide_questions_set,
)
from retros.selectors import team_guide
from teams.decorators import team_view
from teams.models import Membership

PAGE = "retros/guide.html"


def _page_context(membership: Membership, **extra: Any) -> dict[str, Any]:
    guide = team_guide(membership.team)
    return {
        "team": membership.team,
        "membership": membership,
        "sections": list(guide.categories.values()),
        "questions_max": QUESTIONS_MAX,
        "question_length_max": QUESTION_LENGTH_MAX,
        **extra,
    }


def _answer(
    request: HttpRequest,
    membership: Membership,
    category: str,
    *,
    notice: str = "",
    errors: list[str] | None = None,
    typed: str | None = None,
) -> HttpResponse:
    """The category's section for htmx; otherwise back to the page (or the page, refused)."""
    if not getattr(request, "htmx", False) and not errors:
        messages.success(request, notice)
        url = reverse("retro_guide", kwargs={"team": membership.team.slug})
        return redirect(f"{url}#guide-{category}")
    context = _page_context(
        membership, edited=category, notice=notice, errors=errors or [], typed=typed
    )
    if not getattr(request, "htmx", False):
        return render(request, PAGE, context)
    context["section"] = team_guide(membership.team).categories[category]
    return render(request, f"{PAGE}#category_form", context)


def _category(category: str) -> Category:
    if category not in Category.values:
        raise Http404("No such category")
    return Category(category)


@require_GET
@team_view(facilitate=True)
def retro_guide(request: HttpRequest, membership: Membership) -> HttpResponse:
    return render(request, PAGE, _page_context(membership))


@require_POST
@team_view(facilitate=True)
def retro_guide_save(request: HttpRequest, membership: Membership, category: str) -> HttpResponse:
    label = _category(category).label
    text = request.POST.get("text", "")
    try:
        questions = guide_questions_set(
            team=membership.team, category=category, text=text, by=membership.user
        )
    except ValidationError as exc:
        return _answer(request, membership, category, errors=exc.messages, typed=text)
    if text.strip():
        notice = f"Saved the {len(questions)} questions for {label}."
    else:
        notice = f"The list was empty, so {label} uses the default questions again."
    return _answer(request, membership, category, notice=notice)


@require_POST
@team_view(facilitate=True)
def retro_guide_reset(request: HttpRequest, membership: Membership, category: str) -> HttpResponse:
    label = _category(category).label
    guide_questions_reset(team=membership.team, category=category)
    return _answer(request, membership, category, notice=f"{label} uses the default questions.")
