"""The leak bucket's guide: guiding questions per category and suggested action kinds.

The defaults per category, a team's own questions on its board and on no other team's, the
edit page (save, reset, limits, who may use it) and the action form's preselected kind.
"""

import re

import pytest
from django.urls import reverse

from escapes.models import Category
from retros import services
from retros.guide import (
    DEFAULT_QUESTIONS,
    QUESTION_LENGTH_MAX,
    QUESTIONS_MAX,
    SUGGESTED_KINDS,
    UNCLASSIFIED_PROMPT,
    guide_questions_reset,
    guide_questions_set,
)
from retros.models import ActionKind, GuidingQuestions, Phase, Retrospective
from retros.selectors import team_guide
from teams.models import Role
from teams.services import membership_set
from tests.conftest import client_for
from tests.retros.conftest import advance_to, make_escape

HX = {"HX-Request": "true"}


def board(client, retro: Retrospective) -> str:
    url = reverse("retro_detail", kwargs={"team": retro.team.slug, "pk": retro.pk})
    response = client.get(url)
    assert response.status_code == 200
    return response.content.decode()


def guide_url(team, name: str = "retro_guide", **kwargs) -> str:
    return reverse(name, kwargs={"team": team.slug, **kwargs})


def card_of(html: str, escape_id: int) -> str:
    start = html.index(f'id="escape-{escape_id}"')
    end = html.find('<article id="escape-', start + 1)
    return html[start : end if end != -1 else len(html)]


def selected_kind(card: str) -> str:
    select = re.search(r'name="kind">(.*?)</select>', card, re.S)
    assert select is not None
    chosen = re.findall(r'<option value="(\w+)" selected>', select.group(1))
    assert len(chosen) == 1
    return chosen[0]


@pytest.fixture
def categorize_retro(team, facilitator, escape) -> Retrospective:
    retro = services.retro_create(team=team, facilitator=facilitator, title="R", escapes=[escape])
    return advance_to(retro, Phase.CATEGORIZE)


def classify(retro, escape, category, stages) -> None:
    services.retro_escape_classify(retro=retro, escape=escape, category=category, stage=stages[0])


# --- The defaults.


def test_every_category_has_blameless_default_questions_and_a_suggested_kind(team):
    guide = team_guide(team)
    for category in Category:
        questions = guide.categories[category].questions
        assert 3 <= len(questions) <= QUESTIONS_MAX
        assert all(len(q) <= QUESTION_LENGTH_MAX and q.endswith("?") for q in questions)
        assert not any(re.search(r"\bwho\b", q, re.I) for q in questions)  # the system, not people
        assert SUGGESTED_KINDS[category][0] in ActionKind.values
    assert SUGGESTED_KINDS[Category.COVERAGE_GAP][0] == ActionKind.NEW_TEST
    assert SUGGESTED_KINDS[Category.ENVIRONMENT_MISMATCH][0] == ActionKind.ENVIRONMENT_PARITY
    assert SUGGESTED_KINDS[Category.FLAKINESS][0] == ActionKind.FLAKE_FIX


@pytest.mark.parametrize(
    ("category", "words"),
    [
        (Category.COVERAGE_GAP, "edge case had no test"),
        (Category.ENVIRONMENT_MISMATCH, "data volume"),
        (Category.FLAKINESS, "retried, quarantined"),
    ],
)
def test_a_classified_escape_shows_its_categorys_questions(
    categorize_retro, escape, member, stages, category, words
):
    classify(categorize_retro, escape, category, stages)
    card = card_of(board(client_for(member), categorize_retro), escape.pk)
    assert words in card
    others = [c for c in Category if c != category]
    assert all(DEFAULT_QUESTIONS[c][0] not in card for c in others)
    assert "Edit the team&#x27;s questions" not in card  # only facilitators get the link


def test_an_unclassified_escape_gets_a_neutral_prompt(categorize_retro, escape, member):
    card = card_of(board(client_for(member), categorize_retro), escape.pk)
    assert UNCLASSIFIED_PROMPT in card
    assert not any(DEFAULT_QUESTIONS[c][0] in card for c in Category)


def test_the_questions_show_while_classifying_and_asking_whys_only(
    categorize_retro, escape, member, stages
):
    classify(categorize_retro, escape, Category.COVERAGE_GAP, stages)
    first = DEFAULT_QUESTIONS[Category.COVERAGE_GAP][0]
    mia = client_for(member)
    assert first in board(mia, categorize_retro)
    advance_to(categorize_retro, Phase.WHYS)
    assert first in board(mia, categorize_retro)
    advance_to(categorize_retro, Phase.ACTIONS)
    assert first not in board(mia, categorize_retro)


def test_a_facilitator_is_linked_from_the_card_to_the_edit_page(
    categorize_retro, escape, facilitator, stages
):
    classify(categorize_retro, escape, Category.FLAKINESS, stages)
    card = card_of(board(client_for(facilitator), categorize_retro), escape.pk)
    assert f'href="{guide_url(categorize_retro.team)}#guide-flakiness"' in card


def test_reclassifying_refreshes_the_questions_on_the_card(
    categorize_retro, escape, member, stages
):
    classify(categorize_retro, escape, Category.COVERAGE_GAP, stages)
    url = reverse(
        "retro_classify",
        kwargs={
            "team": categorize_retro.team.slug,
            "pk": categorize_retro.pk,
            "escape_id": escape.pk,
        },
    )
    response = client_for(member).post(
        url, {"category": Category.ENVIRONMENT_MISMATCH, "stage": stages[1].pk}, headers=HX
    )
    html = response.content.decode()
    assert DEFAULT_QUESTIONS[Category.ENVIRONMENT_MISMATCH][0] in html
    assert DEFAULT_QUESTIONS[Category.COVERAGE_GAP][0] not in html


# --- A team's own questions.


def test_a_teams_questions_show_on_its_board_and_not_on_another_teams(
    categorize_retro, escape, member, facilitator, stages, other_team, outsider
):
    classify(categorize_retro, escape, Category.COVERAGE_GAP, stages)
    guide_questions_set(
        team=categorize_retro.team,
        category=Category.COVERAGE_GAP,
        text="Which contract had no consumer test?\n\n  Where should it run?  \n",
        by=facilitator,
    )
    card = card_of(board(client_for(member), categorize_retro), escape.pk)
    assert "Which contract had no consumer test?" in card
    assert "Where should it run?" in card
    assert DEFAULT_QUESTIONS[Category.COVERAGE_GAP][0] not in card

    theirs = make_escape(other_team, category=Category.COVERAGE_GAP)
    retro = services.retro_create(
        team=other_team, facilitator=outsider, title="T", escapes=[theirs]
    )
    advance_to(retro, Phase.CATEGORIZE)
    their_card = card_of(board(client_for(outsider), retro), theirs.pk)
    assert DEFAULT_QUESTIONS[Category.COVERAGE_GAP][0] in their_card
    assert "Which contract had no consumer test?" not in their_card


def test_saving_the_questions_refreshes_every_open_board_of_the_team(categorize_retro, facilitator):
    before = Retrospective.objects.get(pk=categorize_retro.pk).version
    guide_questions_set(
        team=categorize_retro.team, category=Category.FLAKINESS, text="Q?", by=facilitator
    )
    assert Retrospective.objects.get(pk=categorize_retro.pk).version == before + 1


def test_reset_and_empty_text_and_the_defaults_themselves_leave_no_row(team, facilitator):
    guide_questions_set(team=team, category=Category.FLAKINESS, text="Q?", by=facilitator)
    assert team_guide(team).categories[Category.FLAKINESS].customized
    assert guide_questions_reset(team=team, category=Category.FLAKINESS) == list(
        DEFAULT_QUESTIONS[Category.FLAKINESS]
    )
    assert not GuidingQuestions.objects.exists()

    guide_questions_set(team=team, category=Category.FLAKINESS, text="Q?", by=facilitator)
    guide_questions_set(team=team, category=Category.FLAKINESS, text=" \n ", by=facilitator)
    assert not GuidingQuestions.objects.exists()

    defaults = "\n".join(DEFAULT_QUESTIONS[Category.FLAKINESS])
    guide_questions_set(team=team, category=Category.FLAKINESS, text=defaults, by=facilitator)
    assert not GuidingQuestions.objects.exists()


# --- The edit page.


def test_a_facilitator_edits_and_resets_the_questions_on_the_page(team, facilitator):
    fred = client_for(facilitator)
    page = fred.get(guide_url(team)).content.decode()
    for category in Category:
        assert f'id="guide-{category.value}"' in page
        assert DEFAULT_QUESTIONS[category][0] in page
    assert "Reset to the defaults" not in page  # nothing to reset yet

    save = guide_url(team, "retro_guide_save", category=Category.ENVIRONMENT_MISMATCH)
    response = fred.post(save, {"text": "Which flag differed?\nWhich quota?"})
    assert response.status_code == 302
    page = fred.get(response["Location"]).content.decode()
    assert "Saved the 2 questions for Environment Mismatch." in page
    assert "Which flag differed?\nWhich quota?</textarea>" in page
    assert "Reset to the defaults" in page

    reset = guide_url(team, "retro_guide_reset", category=Category.ENVIRONMENT_MISMATCH)
    response = fred.post(reset, headers=HX)
    html = response.content.decode()
    assert "Environment Mismatch uses the default questions." in html
    assert DEFAULT_QUESTIONS[Category.ENVIRONMENT_MISMATCH][0] in html
    assert "<html" not in html  # the section alone
    assert not GuidingQuestions.objects.exists()


def test_an_empty_list_says_the_defaults_are_used_again(team, owner):
    olivia = client_for(owner)
    save = guide_url(team, "retro_guide_save", category=Category.COVERAGE_GAP)
    olivia.post(save, {"text": "Only this?"})
    response = olivia.post(save, {"text": "  \n"}, headers=HX)
    assert "The list was empty, so Coverage Gap uses the default questions again." in (
        response.content.decode()
    )
    assert not team_guide(team).categories[Category.COVERAGE_GAP].customized


def test_too_many_or_too_long_questions_are_refused_beside_the_field(team, facilitator):
    fred = client_for(facilitator)
    save = guide_url(team, "retro_guide_save", category=Category.COVERAGE_GAP)
    many = "\n".join(f"Question {i}?" for i in range(QUESTIONS_MAX + 1))
    response = fred.post(save, {"text": many}, headers=HX)
    html = response.content.decode()
    assert response.status_code == 200
    assert f"Keep it to {QUESTIONS_MAX} questions (there are {QUESTIONS_MAX + 1})" in html
    assert 'aria-invalid="true"' in html
    assert f"Question {QUESTIONS_MAX}?</textarea>" in html  # what was typed stays

    long = "Short?\n" + "x" * (QUESTION_LENGTH_MAX + 1)
    response = fred.post(save, {"text": long})  # without JavaScript: the page, refused
    html = response.content.decode()
    assert response.status_code == 200
    assert f"Question 2 has {QUESTION_LENGTH_MAX + 1} characters; keep each to" in html
    assert "<html" in html
    assert not GuidingQuestions.objects.exists()


def test_an_unknown_category_is_a_404(team, facilitator):
    fred = client_for(facilitator)
    assert (
        fred.post(guide_url(team, "retro_guide_save", category="bugs"), {"text": "Q?"}).status_code
        == 404
    )
    assert fred.post(guide_url(team, "retro_guide_reset", category="bugs")).status_code == 404


@pytest.mark.parametrize("role", [Role.MEMBER, Role.VIEWER])
def test_members_and_viewers_may_not_edit_the_questions(team, django_user_model, role):
    user = django_user_model.objects.create_user(username="someone", password="pw")
    membership_set(team=team, user=user, role=role)
    client = client_for(user)
    save = guide_url(team, "retro_guide_save", category=Category.COVERAGE_GAP)
    assert client.get(guide_url(team)).status_code == 403
    assert client.post(save, {"text": "Q?"}).status_code == 403
    reset = guide_url(team, "retro_guide_reset", category=Category.COVERAGE_GAP)
    assert client.post(reset).status_code == 403
    assert not GuidingQuestions.objects.exists()


def test_an_outsider_gets_404_and_the_wrong_method_405(team, outsider, owner):
    save = guide_url(team, "retro_guide_save", category=Category.COVERAGE_GAP)
    outside = client_for(outsider)
    assert outside.get(guide_url(team)).status_code == 404
    assert outside.post(save, {"text": "Q?"}).status_code == 404
    olivia = client_for(owner)
    assert olivia.post(guide_url(team)).status_code == 405
    assert olivia.get(save).status_code == 405
    assert olivia.get(guide_url(team, "retro_guide_reset", category="flakiness")).status_code == 405


# --- Suggested kinds of action.


@pytest.mark.parametrize(
    ("category", "kind"),
    [
        (Category.COVERAGE_GAP, ActionKind.NEW_TEST),
        (Category.ENVIRONMENT_MISMATCH, ActionKind.ENVIRONMENT_PARITY),
        (Category.FLAKINESS, ActionKind.FLAKE_FIX),
    ],
)
def test_the_action_form_preselects_and_lists_first_the_suggested_kind(
    categorize_retro, escape, member, stages, category, kind
):
    classify(categorize_retro, escape, category, stages)
    advance_to(categorize_retro, Phase.ACTIONS)
    card = card_of(board(client_for(member), categorize_retro), escape.pk)
    assert selected_kind(card) == kind
    suggested = card.index('<optgroup label="Suggested for')
    assert (
        suggested
        < card.index(f'<option value="{kind}"')
        < card.index('<optgroup label="Other kinds">')
    )


def test_an_unclassified_escapes_action_form_lists_the_kinds_plainly(
    categorize_retro, escape, member
):
    advance_to(categorize_retro, Phase.ACTIONS)
    card = card_of(board(client_for(member), categorize_retro), escape.pk)
    assert "<optgroup" not in card
    assert selected_kind(card) == ActionKind.NEW_TEST


def test_an_existing_action_keeps_its_own_kind_in_its_edit_form(
    categorize_retro, escape, member, stages
):
    classify(categorize_retro, escape, Category.COVERAGE_GAP, stages)
    advance_to(categorize_retro, Phase.ACTIONS)
    action = services.action_add(
        retro=categorize_retro,
        escape=escape,
        kind=ActionKind.PROCESS_CHANGE,
        stage=None,
        title="Review checklist names edge cases",
        owner=member,
    )
    html = card_of(board(client_for(member), categorize_retro), escape.pk)
    edit_form = html[
        html.index(f'id="action-{action.pk}"') : html.index("Add a preventative action")
    ]
    assert selected_kind(edit_form) == ActionKind.PROCESS_CHANGE


def test_the_retro_list_links_facilitators_only_to_the_guide(team, facilitator, member):
    url = reverse("retro_list", kwargs={"team": team.slug})
    link = f'href="{guide_url(team)}"'
    assert link in client_for(facilitator).get(url).content.decode()
    assert link not in client_for(member).get(url).content.decode()
