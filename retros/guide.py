"""The leak bucket as a guide: guiding questions for the Five Whys, suggested kinds of action.

Each category of escape (escapes.models.Category) brings its own questions for the Five
Whys and the kinds of preventative action that usually seal it. The questions ask about
the system, never about people, so that the whys that follow them stay blameless.

A team may rewrite the questions of a category (`guide_questions_set`); a category without
a row of its own uses the defaults below, and resetting (`guide_questions_reset`) deletes
the row. The suggested kinds are the same for every team. Saving or resetting bumps every
open retro of the team, so boards showing the questions re-fetch them at once; reads go
through `retros.selectors.team_guide`.
"""

from dataclasses import dataclass

from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.db import transaction

from escapes.models import Category
from retros.models import ActionKind, GuidingQuestions, Phase, Retrospective
from retros.services import _bump
from teams.models import Team

# Enough for one card without burying it; short enough to read on a phone.
QUESTIONS_MAX = 8
QUESTION_LENGTH_MAX = 200

# The phases whose board shows the questions: while classifying and asking the whys.
GUIDE_PHASES: tuple[str, ...] = (Phase.CATEGORIZE, Phase.WHYS)

UNCLASSIFIED_PROMPT = "Classify this escape to get its guiding questions."

DEFAULT_QUESTIONS: dict[str, tuple[str, ...]] = {
    Category.COVERAGE_GAP: (
        "Which requirement, rule or edge case had no test that would have failed?",
        "At which stage should that test live, and what kept it from existing there?",
        "What in how changes are planned and reviewed let the gap go unnoticed?",
        "What could have shown the gap before the release (a test plan, a coverage report, "
        "a review checklist)?",
    ),
    Category.ENVIRONMENT_MISMATCH: (
        "What differed between the test environment and production: data volume, data shape, "
        "configuration, infrastructure or a third party?",
        "Why did no test environment have that difference?",
        "Could the drift between the environments be detected automatically, and where?",
        "What would it take for a test stage to run under production-like conditions here?",
    ),
    Category.FLAKINESS: (
        "Did a test fail or warn and get retried, quarantined, skipped or ignored? What made "
        "that the easy choice?",
        "Was the test's assertion too weak to fail on this defect?",
        "How long had the test been unreliable, and what signal showed it?",
        "What would make a real failure stand out from the noise?",
    ),
}

# The kinds of preventative action that usually seal a leak of each category, best first.
SUGGESTED_KINDS: dict[str, tuple[str, ...]] = {
    Category.COVERAGE_GAP: (ActionKind.NEW_TEST, ActionKind.PROCESS_CHANGE),
    Category.ENVIRONMENT_MISMATCH: (ActionKind.ENVIRONMENT_PARITY, ActionKind.NEW_TEST),
    Category.FLAKINESS: (ActionKind.FLAKE_FIX, ActionKind.PROCESS_CHANGE),
}


@dataclass(frozen=True)
class KindChoices:
    """The action kinds of a form for one category: the suggested ones first."""

    suggested: list[tuple[str, str]]
    others: list[tuple[str, str]]

    @property
    def preselected(self) -> str:
        return self.suggested[0][0] if self.suggested else ActionKind.NEW_TEST.value


def kind_choices(category: str) -> KindChoices:
    suggested = SUGGESTED_KINDS.get(category, ())
    labels = dict(ActionKind.choices)
    return KindChoices(
        suggested=[(kind, labels[kind]) for kind in suggested],
        others=[(kind, label) for kind, label in ActionKind.choices if kind not in suggested],
    )


@dataclass(frozen=True)
class CategoryGuide:
    """One category's questions for one team."""

    category: str
    label: str
    questions: list[str]
    customized: bool  # the team's own questions, not the defaults

    @property
    def text(self) -> str:
        """The questions as the edit form shows them, one a line."""
        return "\n".join(self.questions)

    @property
    def kinds(self) -> KindChoices:
        return kind_choices(self.category)


@dataclass(frozen=True)
class Guide:
    """A team's guide for every category."""

    categories: dict[str, CategoryGuide]

    def for_category(self, category: str) -> CategoryGuide | None:
        """The category's guide; None for an unclassified escape."""
        return self.categories.get(category)


def guide_of(rows: list[GuidingQuestions]) -> Guide:
    """The guide from a team's rows; categories without a row get the defaults."""
    own = {row.category: row.questions for row in rows}
    return Guide(
        {
            category.value: CategoryGuide(
                category=category.value,
                label=category.label,
                questions=own.get(category.value) or list(DEFAULT_QUESTIONS[category.value]),
                customized=category.value in own,
            )
            for category in Category
        }
    )


def questions_parse(text: str) -> list[str]:
    """One question a line, trimmed, blank lines dropped; refused past the limits.

    An empty list is not an error: it means the defaults (the caller resets).
    """
    questions = [line.strip() for line in text.splitlines() if line.strip()]
    errors: list[str] = []
    if len(questions) > QUESTIONS_MAX:
        errors.append(
            f"Keep it to {QUESTIONS_MAX} questions (there are {len(questions)}): "
            "a card shows them all."
        )
    for number, question in enumerate(questions, start=1):
        if len(question) > QUESTION_LENGTH_MAX:
            errors.append(
                f"Question {number} has {len(question)} characters; "
                f"keep each to {QUESTION_LENGTH_MAX}."
            )
    if errors:
        raise ValidationError({"text": errors}, code="invalid")
    return questions


def _category(category: str) -> str:
    if category not in Category.values:
        raise ValidationError({"category": "Unknown category."}, code="invalid")
    return category


def _bump_open_retros(team: Team) -> None:
    """Every open board of the team re-fetches (and shows the new questions).

    Locks in id order, as two guide writes of one team may race.
    """
    retros = (
        Retrospective.objects.select_for_update()
        .filter(team=team)
        .exclude(phase=Phase.CLOSED)
        .order_by("pk")
    )
    for retro in retros:
        _bump(retro)


def guide_questions_set(*, team: Team, category: str, text: str, by: User) -> list[str]:
    """Save the team's questions for the category; empty text resets to the defaults.

    Returns the questions now in force. Text equal to the defaults is stored as no row, so
    the team follows the defaults from then on.
    """
    category = _category(category)
    questions = questions_parse(text)
    with transaction.atomic():
        if not questions or questions == list(DEFAULT_QUESTIONS[category]):
            GuidingQuestions.objects.filter(team=team, category=category).delete()
            questions = list(DEFAULT_QUESTIONS[category])
        else:
            GuidingQuestions.objects.update_or_create(
                team=team,
                category=category,
                defaults={"text": "\n".join(questions), "updated_by": by},
            )
        _bump_open_retros(team)
    return questions


def guide_questions_reset(*, team: Team, category: str) -> list[str]:
    """Back to the default questions for the category."""
    category = _category(category)
    with transaction.atomic():
        GuidingQuestions.objects.filter(team=team, category=category).delete()
        _bump_open_retros(team)
    return list(DEFAULT_QUESTIONS[category])
