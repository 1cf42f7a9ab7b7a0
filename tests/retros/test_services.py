from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from escapes.models import Category
from retros import services
from retros.models import (
    ActionKind,
    Phase,
    PreventativeAction,
    RetroEscape,
    Retrospective,
    RootCauseKind,
    Why,
)
from retros.selectors import retro_board
from teams.models import Team
from teams.services import team_close_rule_set
from tests.retros.conftest import add_action, add_root_cause, advance_to, make_escape

# --- Creating a retro.


def test_a_retro_from_a_release_takes_that_releases_escapes(team, facilitator, release, escape):
    other = make_escape(team, title="Not in the release")
    second = make_escape(team, title="Also in the release", release=release)

    retro = services.retro_create(
        team=team, facilitator=facilitator, title="  Retro  ", release=release
    )

    assert retro.title == "Retro"
    assert retro.phase == Phase.GATHER
    assert set(retro.escapes.all()) == {escape, second}
    assert other not in retro.escapes.all()


def test_a_retro_from_chosen_escapes(team, facilitator, escape, second_escape):
    retro = services.retro_create(
        team=team, facilitator=facilitator, title="Retro", escapes=[second_escape, escape]
    )
    order = list(RetroEscape.objects.filter(retro=retro).values_list("escape_id", flat=True))
    assert order == [second_escape.pk, escape.pk]


def test_a_retro_needs_at_least_one_escape(team, facilitator):
    with pytest.raises(ValidationError) as exc:
        services.retro_create(team=team, facilitator=facilitator, title="Empty")
    assert "escapes" in exc.value.message_dict
    assert Retrospective.objects.count() == 0


def test_a_release_without_escapes_is_refused_on_the_release_field(team, facilitator, release):
    with pytest.raises(ValidationError) as exc:
        services.retro_create(team=team, facilitator=facilitator, title="R", release=release)
    assert "release" in exc.value.message_dict


def test_escapes_of_another_team_are_refused(team, other_team, facilitator, escape):
    foreign = make_escape(other_team, title="Theirs")
    with pytest.raises(ValidationError) as exc:
        services.retro_create(
            team=team, facilitator=facilitator, title="R", escapes=[escape, foreign]
        )
    assert exc.value.message_dict["escapes"] == ["Unknown escape for this team."]
    assert Retrospective.objects.count() == 0


def test_an_empty_title_is_refused(team, facilitator, escape):
    with pytest.raises(ValidationError) as exc:
        services.retro_create(team=team, facilitator=facilitator, title="   ", escapes=[escape])
    assert "title" in exc.value.message_dict


def test_a_member_cannot_be_the_facilitator(team, member, escape):
    with pytest.raises(ValidationError) as exc:
        services.retro_create(team=team, facilitator=member, title="R", escapes=[escape])
    assert "facilitator" in exc.value.message_dict


# --- Gather.


def test_escapes_are_added_and_removed_only_while_gathering(retro, team, escape):
    extra = make_escape(team, title="Late addition")
    services.retro_add_escape(retro=retro, escape=extra)
    assert retro.escapes.filter(pk=extra.pk).exists()
    services.retro_remove_escape(retro=retro, escape=extra)
    assert not retro.escapes.filter(pk=extra.pk).exists()

    advance_to(retro, Phase.CATEGORIZE)
    with pytest.raises(ValidationError, match="Gather phase"):
        services.retro_add_escape(retro=retro, escape=extra)
    with pytest.raises(ValidationError, match="Gather phase"):
        services.retro_remove_escape(retro=retro, escape=escape)


def test_the_last_escape_cannot_be_removed(team, facilitator, escape):
    retro = services.retro_create(team=team, facilitator=facilitator, title="R", escapes=[escape])
    with pytest.raises(ValidationError, match="at least one escape"):
        services.retro_remove_escape(retro=retro, escape=escape)


def test_an_escape_of_another_team_cannot_be_added(retro, other_team):
    with pytest.raises(ValidationError, match="Unknown escape"):
        services.retro_add_escape(retro=retro, escape=make_escape(other_team))


# --- Phases.


def test_the_full_walk_from_gather_to_closed(retro, escape, second_escape, member, stages):
    assert retro.phase == Phase.GATHER
    services.retro_advance(retro=retro, expected_phase=Phase.GATHER, to_phase=Phase.CATEGORIZE)
    for e in (escape, second_escape):
        services.retro_escape_classify(
            retro=retro, escape=e, category=Category.ENVIRONMENT_MISMATCH, stage=stages[2]
        )
    services.retro_advance(retro=retro, expected_phase=Phase.CATEGORIZE, to_phase=Phase.WHYS)
    first = services.why_add(
        retro=retro, escape=escape, text="Staging had no latency", author=member
    )
    root = services.why_add(
        retro=retro, escape=escape, parent=first, text="Nobody owns parity", author=member
    )
    services.why_mark_root_cause(why=root, kind=RootCauseKind.PROCESS_FAILURE)
    add_root_cause(retro, second_escape, member, text="The retry path had no test")
    services.retro_advance(retro=retro, expected_phase=Phase.WHYS, to_phase=Phase.ACTIONS)
    add_action(retro, escape, member, stages[2])
    add_action(retro, second_escape, member, stages[2])

    services.retro_close(retro=retro, by=retro.facilitator)

    retro.refresh_from_db()
    escape.refresh_from_db()
    assert retro.phase == Phase.CLOSED
    assert retro.closed_at is not None
    assert escape.category == Category.ENVIRONMENT_MISMATCH
    assert escape.stage == stages[2]


def test_phases_move_one_step_at_a_time(retro):
    with pytest.raises(ValidationError, match="one step"):
        services.retro_advance(retro=retro, expected_phase=Phase.GATHER, to_phase=Phase.WHYS)
    retro.refresh_from_db()
    assert retro.phase == Phase.GATHER


def test_advancing_into_closed_must_go_through_close(retro):
    advance_to(retro, Phase.ACTIONS)
    with pytest.raises(ValidationError, match="Close"):
        services.retro_advance(retro=retro, expected_phase=Phase.ACTIONS, to_phase=Phase.CLOSED)
    retro.refresh_from_db()
    assert retro.phase == Phase.ACTIONS


def test_a_stale_advance_is_refused_instead_of_advancing_twice(retro):
    services.retro_advance(retro=retro, expected_phase=Phase.GATHER, to_phase=Phase.CATEGORIZE)
    stale = Retrospective.objects.get(pk=retro.pk)
    # Another facilitator's page still shows Gather and clicks "Next: Categorize" again.
    with pytest.raises(ValidationError, match="already in the Categorize phase"):
        services.retro_advance(retro=stale, expected_phase=Phase.GATHER, to_phase=Phase.CATEGORIZE)
    retro.refresh_from_db()
    assert retro.phase == Phase.CATEGORIZE


def test_reopening_goes_back_one_step(retro):
    advance_to(retro, Phase.WHYS)
    services.retro_reopen(retro=retro, expected_phase=Phase.WHYS)
    retro.refresh_from_db()
    assert retro.phase == Phase.CATEGORIZE


def test_gather_cannot_be_reopened(retro):
    with pytest.raises(ValidationError, match="first phase"):
        services.retro_reopen(retro=retro, expected_phase=Phase.GATHER)


# --- Closing.


def test_closing_a_retro_needs_an_action_per_escape(retro, escape, second_escape, member, stages):
    team_close_rule_set(team=retro.team, requires_root_cause=False)  # actions alone
    third = make_escape(retro.team, title="Search index stale after deploy")
    services.retro_add_escape(retro=retro, escape=third)
    advance_to(retro, Phase.ACTIONS)
    add_action(retro, escape, member, stages[0])

    with pytest.raises(ValidationError) as exc:
        services.retro_close(retro=retro, by=retro.facilitator)

    assert exc.value.messages == [
        "“Coupon applied twice on retry” has no preventative action yet; add one before closing.",
        "“Search index stale after deploy” has no preventative action yet; add one before closing.",
    ]
    assert [e.code for e in exc.value.error_list] == ["missing_action", "missing_action"]
    retro.refresh_from_db()
    assert retro.phase == Phase.ACTIONS
    assert retro.closed_at is None


def test_without_the_root_cause_rule_a_retro_closes_on_actions_alone(
    retro, escape, second_escape, member, stages
):
    team_close_rule_set(team=retro.team, requires_root_cause=False)
    advance_to(retro, Phase.ACTIONS)
    for e in (escape, second_escape):
        add_action(retro, e, member, stages[0])

    services.retro_close(retro=retro, by=retro.facilitator)

    assert Retrospective.objects.get(pk=retro.pk).phase == Phase.CLOSED
    assert not Why.objects.filter(retro=retro).exists()


def test_a_new_team_requires_a_root_cause_for_every_escape_to_close(team):
    assert team.close_requires_root_cause
    assert team.close_rule == (
        "Closing needs a preventative action and a root cause for every escape."
    )


def test_closing_names_each_escape_without_a_root_cause_or_action_once(
    retro, escape, second_escape, member, stages
):
    third = make_escape(retro.team, title="Search index stale after deploy")
    fourth = make_escape(retro.team, title="Invoice PDF cut off at page two")
    for e in (third, fourth):
        services.retro_add_escape(retro=retro, escape=e)
    advance_to(retro, Phase.ACTIONS)
    # escape: both. second: an action, and whys without a root cause. third: a root cause
    # only. fourth: nothing.
    add_root_cause(retro, escape, member)
    add_action(retro, escape, member, stages[0])
    services.why_add(retro=retro, escape=second_escape, text="Retries were off", author=member)
    add_action(retro, second_escape, member, stages[0])
    add_root_cause(retro, third, member)
    version = Retrospective.objects.get(pk=retro.pk).version

    with pytest.raises(ValidationError) as exc:
        services.retro_close(retro=retro, by=retro.facilitator)

    assert exc.value.messages == [
        "“Coupon applied twice on retry” has no root cause yet; mark the last why of a chain "
        "as its root cause before closing.",
        "“Search index stale after deploy” has no preventative action yet; add one before closing.",
        "“Invoice PDF cut off at page two” has no root cause and no preventative action yet; "
        "mark the last why of a chain as its root cause and add an action before closing.",
    ]
    assert [e.code for e in exc.value.error_list] == [
        "missing_root_cause",
        "missing_action",
        "missing_root_cause_and_action",
    ]
    fresh = Retrospective.objects.get(pk=retro.pk)
    assert (fresh.phase, fresh.closed_at, fresh.version) == (Phase.ACTIONS, None, version)


def test_closing_with_a_root_cause_and_an_action_for_every_escape_goes_through(
    retro, escape, second_escape, member, stages
):
    advance_to(retro, Phase.ACTIONS)
    for e in (escape, second_escape):
        add_root_cause(retro, e, member)
        add_action(retro, e, member, stages[0])

    services.retro_close(retro=retro, by=retro.facilitator)

    assert Retrospective.objects.get(pk=retro.pk).phase == Phase.CLOSED


def test_an_unmarked_root_cause_no_longer_counts_for_closing(
    retro, escape, second_escape, member, stages
):
    advance_to(retro, Phase.ACTIONS)
    whys = [add_root_cause(retro, e, member) for e in (escape, second_escape)]
    for e in (escape, second_escape):
        add_action(retro, e, member, stages[0])
    services.why_unmark_root_cause(why=whys[1])

    with pytest.raises(ValidationError) as exc:
        services.retro_close(retro=retro, by=retro.facilitator)

    assert [e.code for e in exc.value.error_list] == ["missing_root_cause"]
    assert "Coupon applied twice on retry" in exc.value.messages[0]


def test_closing_obeys_the_rule_as_it_is_when_close_is_pressed(
    retro, escape, second_escape, member, stages
):
    advance_to(retro, Phase.ACTIONS)
    for e in (escape, second_escape):
        add_action(retro, e, member, stages[0])
    loaded = Retrospective.objects.select_related("team").get(pk=retro.pk)
    assert loaded.team.close_requires_root_cause
    # An admin relaxes the rule on the settings page while the board is open.
    team_close_rule_set(team=Team.objects.get(pk=retro.team_id), requires_root_cause=False)

    services.retro_close(retro=loaded, by=retro.facilitator)

    assert Retrospective.objects.get(pk=retro.pk).phase == Phase.CLOSED


def test_closing_is_only_possible_from_the_actions_phase(retro):
    advance_to(retro, Phase.WHYS)
    with pytest.raises(ValidationError, match="Actions phase"):
        services.retro_close(retro=retro, by=retro.facilitator)


def test_a_closed_retro_is_read_only_for_every_service(closed_retro, escape, team, member, stages):
    why = Why.objects.filter(retro=closed_retro).first()
    action = PreventativeAction.objects.filter(retro=closed_retro).first()
    assert why is not None and action is not None
    before = (Retrospective.objects.get(pk=closed_retro.pk).version, Why.objects.count())
    writes = [
        lambda: services.retro_add_escape(retro=closed_retro, escape=make_escape(team)),
        lambda: services.retro_remove_escape(retro=closed_retro, escape=escape),
        lambda: services.retro_advance(
            retro=closed_retro, expected_phase=Phase.CLOSED, to_phase=Phase.CLOSED
        ),
        lambda: services.retro_reopen(retro=closed_retro, expected_phase=Phase.CLOSED),
        lambda: services.retro_close(retro=closed_retro, by=member),
        lambda: services.retro_escape_classify(
            retro=closed_retro, escape=escape, category=Category.FLAKINESS, stage=stages[0]
        ),
        lambda: services.why_add(retro=closed_retro, escape=escape, text="More", author=member),
        lambda: services.why_edit(
            why=why, text="Changed", expected_revision=why.revision, by=member
        ),
        lambda: services.why_delete(why=why, by=member),
        lambda: services.why_mark_root_cause(why=why, kind=RootCauseKind.PROCESS_FAILURE),
        lambda: services.why_unmark_root_cause(why=why),
        lambda: add_action(closed_retro, escape, member, stages[0]),
        lambda: services.action_update(
            action=action,
            kind=ActionKind.PROCESS_CHANGE,
            stage=None,
            title="Changed",
            owner=member,
        ),
        lambda: services.action_delete(action=action),
    ]
    for write in writes:
        with pytest.raises(ValidationError, match="closed"):
            write()
    escape.refresh_from_db()
    assert escape.category == Category.COVERAGE_GAP
    assert (Retrospective.objects.get(pk=closed_retro.pk).version, Why.objects.count()) == before
    assert PreventativeAction.objects.get(pk=action.pk).title == action.title


# --- Categorize.


def test_classifying_waits_for_the_categorize_phase(retro, escape, stages):
    with pytest.raises(ValidationError, match="Categorize"):
        services.retro_escape_classify(
            retro=retro, escape=escape, category=Category.COVERAGE_GAP, stage=stages[0]
        )
    escape.refresh_from_db()
    assert escape.category == ""


def test_classifying_refuses_an_unknown_category_and_a_foreign_stage(retro, escape, other_team):
    advance_to(retro, Phase.CATEGORIZE)
    with pytest.raises(ValidationError) as exc:
        services.retro_escape_classify(retro=retro, escape=escape, category="typo", stage=None)
    assert "category" in exc.value.message_dict
    with pytest.raises(ValidationError) as exc:
        services.retro_escape_classify(
            retro=retro,
            escape=escape,
            category=Category.COVERAGE_GAP,
            stage=other_team.stages.first(),
        )
    assert "stage" in exc.value.message_dict


def test_an_escape_outside_the_retro_cannot_be_classified_there(retro, team, stages):
    advance_to(retro, Phase.CATEGORIZE)
    outside = make_escape(team)
    with pytest.raises(ValidationError, match="not part of this retrospective"):
        services.retro_escape_classify(
            retro=retro, escape=outside, category=Category.COVERAGE_GAP, stage=stages[0]
        )


# --- Five Whys.


def test_whys_branch_into_trees(whys_retro, escape, member):
    first = services.why_add(retro=whys_retro, escape=escape, text="Timeout", author=member)
    left = services.why_add(
        retro=whys_retro, escape=escape, parent=first, text="No latency test", author=member
    )
    right = services.why_add(
        retro=whys_retro, escape=escape, parent=first, text="Staging is fast", author=member
    )
    deeper = services.why_add(
        retro=whys_retro, escape=escape, parent=right, text="Stubbed gateway", author=member
    )

    card = retro_board(whys_retro).card(escape.pk)

    [root] = card.whys
    assert root.why == first
    assert [child.why for child in root.children] == [left, right]
    assert [n.why for n in root.children[1].children] == [deeper]
    assert card.why_count == 4


def test_why_text_is_stripped_and_limited(whys_retro, escape, member):
    why = services.why_add(retro=whys_retro, escape=escape, text="  spaced  ", author=member)
    assert why.text == "spaced"
    for bad in ("   ", "x" * 1001):
        with pytest.raises(ValidationError) as exc:
            services.why_add(retro=whys_retro, escape=escape, text=bad, author=member)
        assert "text" in exc.value.message_dict
    assert Why.objects.count() == 1


def test_whys_wait_for_the_whys_phase(retro, escape, member):
    advance_to(retro, Phase.CATEGORIZE)
    with pytest.raises(ValidationError, match="Five Whys"):
        services.why_add(retro=retro, escape=escape, text="Too early", author=member)


def test_a_parent_must_be_of_the_same_escape(whys_retro, escape, second_escape, member):
    other = services.why_add(retro=whys_retro, escape=second_escape, text="Other", author=member)
    with pytest.raises(ValidationError) as exc:
        services.why_add(
            retro=whys_retro, escape=escape, parent=other, text="Crossed", author=member
        )
    assert "parent" in exc.value.message_dict


def test_nothing_is_added_under_a_root_cause(whys_retro, escape, member):
    root = services.why_add(retro=whys_retro, escape=escape, text="Root", author=member)
    services.why_mark_root_cause(why=root, kind=RootCauseKind.AUTOMATION_SHORTFALL)
    with pytest.raises(ValidationError, match="unmark it first"):
        services.why_add(retro=whys_retro, escape=escape, parent=root, text="Deeper", author=member)


def test_a_chain_has_a_depth_limit(whys_retro, escape, member):
    parent = None
    for i in range(services.WHY_DEPTH_MAX):
        parent = services.why_add(
            retro=whys_retro, escape=escape, parent=parent, text=f"why {i}", author=member
        )
    with pytest.raises(ValidationError, match="stops at"):
        services.why_add(
            retro=whys_retro, escape=escape, parent=parent, text="one more", author=member
        )


def test_only_a_leaf_can_be_the_root_cause(whys_retro, escape, member):
    first = services.why_add(retro=whys_retro, escape=escape, text="First", author=member)
    leaf = services.why_add(
        retro=whys_retro, escape=escape, parent=first, text="Leaf", author=member
    )
    with pytest.raises(ValidationError, match="last why"):
        services.why_mark_root_cause(why=first, kind=RootCauseKind.PROCESS_FAILURE)

    services.why_mark_root_cause(why=leaf, kind=RootCauseKind.PROCESS_FAILURE)

    leaf.refresh_from_db()
    first.refresh_from_db()
    assert leaf.root_cause_kind == RootCauseKind.PROCESS_FAILURE
    assert first.root_cause_kind == ""


def test_a_root_cause_needs_a_valid_kind(whys_retro, escape, member):
    why = services.why_add(retro=whys_retro, escape=escape, text="Leaf", author=member)
    for bad in ("", "bad_luck"):
        with pytest.raises(ValidationError) as exc:
            services.why_mark_root_cause(why=why, kind=bad)
        assert "kind" in exc.value.message_dict
    why.refresh_from_db()
    assert why.root_cause_kind == ""


def test_unmarking_a_root_cause_allows_digging_deeper(whys_retro, escape, member):
    why = services.why_add(retro=whys_retro, escape=escape, text="Leaf", author=member)
    services.why_mark_root_cause(why=why, kind=RootCauseKind.PROCESS_FAILURE)
    services.why_unmark_root_cause(why=why)
    child = services.why_add(
        retro=whys_retro, escape=escape, parent=why, text="Deeper", author=member
    )
    assert child.parent == why


def test_a_stale_edit_is_refused_and_shows_the_newer_text(whys_retro, escape, member):
    why = services.why_add(retro=whys_retro, escape=escape, text="Original", author=member)
    services.why_edit(why=why, text="Alice's wording", expected_revision=1, by=member)

    with pytest.raises(ValidationError) as exc:
        services.why_edit(why=why, text="Bob's wording", expected_revision=1, by=member)

    assert "It now reads: “Alice's wording”" in exc.value.message_dict["text"][0]
    why.refresh_from_db()
    assert why.text == "Alice's wording"
    assert why.revision == 2


def test_a_why_with_answers_under_it_is_not_deleted(whys_retro, escape, member):
    first = services.why_add(retro=whys_retro, escape=escape, text="First", author=member)
    child = services.why_add(
        retro=whys_retro, escape=escape, parent=first, text="Child", author=member
    )
    with pytest.raises(ValidationError, match="delete those first"):
        services.why_delete(why=first, by=member)
    services.why_delete(why=child, by=member)
    services.why_delete(why=first, by=member)
    assert not Why.objects.exists()


def test_an_anonymous_retro_does_not_store_why_authors(team, facilitator, escape, member):
    retro = services.retro_create(
        team=team, facilitator=facilitator, title="Anon", escapes=[escape], anonymous=True
    )
    advance_to(retro, Phase.WHYS)
    why = services.why_add(retro=retro, escape=escape, text="Secret", author=member)
    why.refresh_from_db()
    assert why.author is None


# --- Preventative actions.


def test_an_action_needs_an_owner_from_the_team(whys_retro, escape, outsider, stages):
    for owner, message in ((None, "needs an owner"), (outsider, "member of this team")):
        with pytest.raises(ValidationError) as exc:
            add_action(whys_retro, escape, owner, stages[0])
        assert message in exc.value.message_dict["owner"][0]
    assert not PreventativeAction.objects.exists()


def test_an_action_checks_kind_stage_title_and_due_date(whys_retro, escape, member, other_team):
    with pytest.raises(ValidationError) as exc:
        services.action_add(
            retro=whys_retro,
            escape=escape,
            kind="hotfix",
            stage=other_team.stages.first(),
            title="x" * 201,
            description="d" * 10_001,
            owner=member,
            due_date=timezone.localdate() - timedelta(days=2),
        )
    assert set(exc.value.message_dict) == {"kind", "stage", "title", "description", "due_date"}


def test_a_new_test_needs_its_stage(whys_retro, escape, member):
    with pytest.raises(ValidationError) as exc:
        services.action_add(
            retro=whys_retro,
            escape=escape,
            kind=ActionKind.NEW_TEST,
            stage=None,
            title="A test",
            owner=member,
        )
    assert "stage" in exc.value.message_dict


def test_actions_are_updated_and_deleted(whys_retro, escape, member, owner, stages):
    action = add_action(whys_retro, escape, member, stages[0])
    services.action_update(
        action=action,
        kind=ActionKind.PROCESS_CHANGE,
        stage=None,
        title="  Review gateway timeouts  ",
        description="Every sprint",
        owner=owner,
        due_date=timezone.localdate() + timedelta(days=14),
    )
    action.refresh_from_db()
    assert (action.kind, action.title, action.owner) == (
        ActionKind.PROCESS_CHANGE,
        "Review gateway timeouts",
        owner,
    )
    services.action_delete(action=action)
    assert not PreventativeAction.objects.exists()


def test_actions_wait_for_the_whys_phase(retro, escape, member, stages):
    advance_to(retro, Phase.CATEGORIZE)
    with pytest.raises(ValidationError, match="Actions phase"):
        add_action(retro, escape, member, stages[0])


# --- The version.


def test_every_change_bumps_the_version(retro, escape, second_escape, member, stages, team):
    seen = [Retrospective.objects.get(pk=retro.pk).version]

    def changed() -> None:
        version = Retrospective.objects.get(pk=retro.pk).version
        assert version == seen[-1] + 1
        seen.append(version)

    extra = make_escape(team)
    services.retro_add_escape(retro=retro, escape=extra)
    changed()
    services.retro_remove_escape(retro=retro, escape=extra)
    changed()
    services.retro_advance(retro=retro, expected_phase=Phase.GATHER, to_phase=Phase.CATEGORIZE)
    changed()
    services.retro_reopen(retro=retro, expected_phase=Phase.CATEGORIZE)
    changed()
    advance_to(retro, Phase.CATEGORIZE)
    changed()
    for e in (escape, second_escape):
        services.retro_escape_classify(
            retro=retro, escape=e, category=Category.FLAKINESS, stage=stages[0]
        )
        changed()
    advance_to(retro, Phase.WHYS)
    changed()
    why = services.why_add(retro=retro, escape=escape, text="Flaky retry", author=member)
    changed()
    services.why_edit(why=why, text="Retry hid it", expected_revision=why.revision, by=member)
    changed()
    services.why_mark_root_cause(why=why, kind=RootCauseKind.AUTOMATION_SHORTFALL)
    changed()
    services.why_unmark_root_cause(why=why)
    changed()
    services.why_delete(why=why, by=member)
    changed()
    for e in (escape, second_escape):
        root = services.why_add(retro=retro, escape=e, text="No test for retries", author=member)
        changed()
        services.why_mark_root_cause(why=root, kind=RootCauseKind.AUTOMATION_SHORTFALL)
        changed()
    actions = []
    for e in (escape, second_escape):
        actions.append(add_action(retro, e, member, stages[0]))
        changed()
    services.action_update(
        action=actions[0],
        kind=ActionKind.FLAKE_FIX,
        stage=stages[0],
        title="Quarantine flaky retry test",
        owner=member,
    )
    changed()
    extra_action = add_action(retro, escape, member, stages[0], title="Spare")
    changed()
    services.action_delete(action=extra_action)
    changed()
    advance_to(retro, Phase.ACTIONS)
    changed()
    services.retro_close(retro=retro, by=retro.facilitator)
    changed()
    assert retro.version == seen[-1]


def test_a_refused_change_does_not_bump_the_version(whys_retro, escape, member):
    before = Retrospective.objects.get(pk=whys_retro.pk).version
    with pytest.raises(ValidationError):
        services.why_add(retro=whys_retro, escape=escape, text="", author=member)
    assert Retrospective.objects.get(pk=whys_retro.pk).version == before
