from datetime import datetime, timedelta

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from retros import facilitation, services
from retros.models import Retrospective, Vote, VotingState
from tests.facilitation.conftest import make_escape


def version_of(retro: Retrospective) -> int:
    return Retrospective.objects.get(pk=retro.pk).version


def ends_at_of(retro: Retrospective) -> datetime:
    ends_at = Retrospective.objects.get(pk=retro.pk).timer_ends_at
    assert ends_at is not None, "the timer runs"
    return ends_at


def paused_left(retro: Retrospective) -> timedelta:
    left = Retrospective.objects.get(pk=retro.pk).timer_paused_remaining
    assert left is not None, "the timer is paused"
    return left


def refused(write, match: str) -> None:
    with pytest.raises(ValidationError, match=match):
        write()


# --- Timer.


def test_starting_the_timer_sets_its_end_and_bumps_the_version(retro, frozen_clock):
    before = version_of(retro)
    started = timezone.now()

    facilitation.timer_start(retro=retro, minutes=5)

    fresh = Retrospective.objects.get(pk=retro.pk)
    assert fresh.version == before + 1
    assert fresh.timer_paused_remaining is None
    assert timedelta(minutes=5) <= ends_at_of(retro) - started < timedelta(minutes=5, seconds=5)
    assert facilitation.timer_state(fresh).state == "running"


@pytest.mark.parametrize("minutes", [0, -1, 121, 10_000])
def test_the_timer_takes_one_to_120_minutes(retro, minutes):
    before = version_of(retro)
    refused(lambda: facilitation.timer_start(retro=retro, minutes=minutes), "between 1 and 120")
    fresh = Retrospective.objects.get(pk=retro.pk)
    assert fresh.timer_ends_at is None
    assert fresh.version == before


def test_pausing_keeps_what_was_left_and_resuming_counts_on_from_there(retro, frozen_clock):
    facilitation.timer_start(retro=retro, minutes=10)
    Retrospective.objects.filter(pk=retro.pk).update(
        timer_ends_at=timezone.now() + timedelta(minutes=4)
    )

    facilitation.timer_pause(retro=retro)
    paused = Retrospective.objects.get(pk=retro.pk)
    assert paused.timer_ends_at is None
    assert timedelta(minutes=3, seconds=55) < paused_left(retro) <= timedelta(minutes=4)
    assert facilitation.timer_state(paused).state == "paused"

    facilitation.timer_resume(retro=retro)
    assert Retrospective.objects.get(pk=retro.pk).timer_paused_remaining is None
    left = ends_at_of(retro) - timezone.now()
    assert timedelta(minutes=3, seconds=50) < left <= timedelta(minutes=4)


def test_pause_and_resume_refuse_a_timer_in_the_wrong_state(retro):
    refused(lambda: facilitation.timer_pause(retro=retro), "No timer is running")
    refused(lambda: facilitation.timer_resume(retro=retro), "not paused")
    facilitation.timer_start(retro=retro, minutes=1)
    Retrospective.objects.filter(pk=retro.pk).update(timer_ends_at=timezone.now())
    refused(lambda: facilitation.timer_pause(retro=retro), "already up")


def test_extending_adds_minutes_to_a_running_or_paused_timer(retro):
    facilitation.timer_start(retro=retro, minutes=5)
    ends = ends_at_of(retro)
    facilitation.timer_extend(retro=retro, minutes=2)
    assert ends_at_of(retro) == ends + timedelta(minutes=2)

    facilitation.timer_pause(retro=retro)
    left = paused_left(retro)
    facilitation.timer_extend(retro=retro, minutes=1)
    assert paused_left(retro) == left + timedelta(minutes=1)
    assert Retrospective.objects.get(pk=retro.pk).timer_ends_at is None


def test_extending_a_timer_whose_time_is_up_counts_from_now(retro, frozen_clock):
    facilitation.timer_start(retro=retro, minutes=1)
    Retrospective.objects.filter(pk=retro.pk).update(
        timer_ends_at=timezone.now() - timedelta(minutes=10)
    )
    facilitation.timer_extend(retro=retro, minutes=3)
    left = ends_at_of(retro) - timezone.now()
    assert timedelta(minutes=2, seconds=55) < left <= timedelta(minutes=3)


def test_extending_needs_a_timer_and_sensible_minutes(retro):
    refused(lambda: facilitation.timer_extend(retro=retro, minutes=1), "Start a timer first")
    facilitation.timer_start(retro=retro, minutes=1)
    refused(lambda: facilitation.timer_extend(retro=retro, minutes=0), "between 1 and 120")


def test_clearing_the_timer(retro):
    before = version_of(retro)
    facilitation.timer_clear(retro=retro)
    assert version_of(retro) == before, "nothing to clear, nothing changed"
    facilitation.timer_start(retro=retro, minutes=3)
    facilitation.timer_pause(retro=retro)
    facilitation.timer_clear(retro=retro)
    fresh = Retrospective.objects.get(pk=retro.pk)
    assert (fresh.timer_ends_at, fresh.timer_paused_remaining) == (None, None)
    assert fresh.version == before + 3
    assert facilitation.timer_state(fresh).state == "off"


def test_the_timer_state_shows_minutes_and_seconds_left(retro):
    now = timezone.now()
    retro.timer_ends_at = now + timedelta(minutes=2, seconds=5)
    state = facilitation.timer_state(retro, now=now)
    assert (state.state, state.display, state.seconds_left) == ("running", "02:05", 125)
    assert state.ends_at_iso.endswith("Z")
    assert facilitation.timer_state(retro, now=now + timedelta(minutes=3)).state == "up"


# --- Focus.


def test_putting_an_escape_in_focus_and_clearing_it(retro, escape):
    before = version_of(retro)
    facilitation.focus_set(retro=retro, escape=escape)
    assert Retrospective.objects.get(pk=retro.pk).focus_escape == escape
    facilitation.focus_set(retro=retro, escape=None)
    fresh = Retrospective.objects.get(pk=retro.pk)
    assert fresh.focus_escape is None
    assert fresh.version == before + 2


def test_only_an_escape_of_the_retro_can_be_in_focus(retro, team):
    elsewhere = make_escape(team, title="Not on this board")
    refused(
        lambda: facilitation.focus_set(retro=retro, escape=elsewhere),
        "not part of this retrospective",
    )
    assert Retrospective.objects.get(pk=retro.pk).focus_escape is None


# --- Dot voting.


def test_votes_are_refused_until_voting_opens(retro, escape, member):
    refused(
        lambda: facilitation.vote_cast(retro=retro, escape=escape, voter=member),
        "Voting is not open",
    )
    assert not Vote.objects.exists()


def test_a_participant_spends_their_votes_and_is_told_when_none_are_left(
    retro, escape, second_escape, member
):
    facilitation.voting_open(retro=retro, votes_per_person=3)
    facilitation.vote_cast(retro=retro, escape=escape, voter=member)
    facilitation.vote_cast(retro=retro, escape=escape, voter=member)  # dots may stack
    facilitation.vote_cast(retro=retro, escape=second_escape, voter=member)
    before = version_of(retro)

    refused(
        lambda: facilitation.vote_cast(retro=retro, escape=second_escape, voter=member),
        "You have used all 3 of your votes.",
    )

    assert Vote.objects.filter(voter=member).count() == 3
    assert version_of(retro) == before


def test_each_participant_has_their_own_allowance(retro, escape, member, facilitator):
    facilitation.voting_open(retro=retro, votes_per_person=1)
    facilitation.vote_cast(retro=retro, escape=escape, voter=member)
    facilitation.vote_cast(retro=retro, escape=escape, voter=facilitator)
    assert Vote.objects.filter(escape=escape).count() == 2


def test_a_vote_can_be_taken_back_while_voting_is_open(retro, escape, member):
    facilitation.voting_open(retro=retro, votes_per_person=2)
    facilitation.vote_cast(retro=retro, escape=escape, voter=member)
    facilitation.vote_retract(retro=retro, escape=escape, voter=member)
    assert not Vote.objects.exists()
    refused(
        lambda: facilitation.vote_retract(retro=retro, escape=escape, voter=member),
        "no vote on this escape",
    )


def test_votes_only_go_to_escapes_of_the_retro(retro, team, member):
    facilitation.voting_open(retro=retro, votes_per_person=2)
    elsewhere = make_escape(team, title="Not on this board")
    refused(
        lambda: facilitation.vote_cast(retro=retro, escape=elsewhere, voter=member),
        "not part of this retrospective",
    )


def test_closing_voting_stops_votes_and_keeps_them(retro, escape, member):
    facilitation.voting_open(retro=retro, votes_per_person=2)
    facilitation.vote_cast(retro=retro, escape=escape, voter=member)
    facilitation.voting_close(retro=retro)

    assert Retrospective.objects.get(pk=retro.pk).voting == VotingState.CLOSED
    refused(
        lambda: facilitation.vote_cast(retro=retro, escape=escape, voter=member),
        "Voting has closed",
    )
    refused(
        lambda: facilitation.vote_retract(retro=retro, escape=escape, voter=member),
        "Voting has closed",
    )
    assert Vote.objects.count() == 1
    refused(lambda: facilitation.voting_close(retro=retro), "Voting is not open")


@pytest.mark.parametrize("votes", [0, 13, -2])
def test_votes_per_person_is_between_1_and_12(retro, votes):
    refused(
        lambda: facilitation.voting_open(retro=retro, votes_per_person=votes), "between 1 and 12"
    )
    assert Retrospective.objects.get(pk=retro.pk).voting == VotingState.NOT_STARTED


def test_reopening_cannot_shrink_the_allowance_below_votes_already_cast(retro, escape, member):
    facilitation.voting_open(retro=retro, votes_per_person=3)
    for _ in range(3):
        facilitation.vote_cast(retro=retro, escape=escape, voter=member)
    facilitation.voting_close(retro=retro)
    refused(lambda: facilitation.voting_open(retro=retro, votes_per_person=2), "allow at least 3")
    facilitation.voting_open(retro=retro, votes_per_person=4)
    facilitation.vote_cast(retro=retro, escape=escape, voter=member)
    assert Vote.objects.count() == 4
    refused(lambda: facilitation.voting_open(retro=retro, votes_per_person=5), "already open")


def test_removing_an_escape_takes_its_votes_with_it(retro, escape, member):
    facilitation.voting_open(retro=retro, votes_per_person=2)
    facilitation.vote_cast(retro=retro, escape=escape, voter=member)
    services.retro_remove_escape(retro=retro, escape=escape)
    assert not Vote.objects.exists()


# --- A closed retro is read-only for facilitation too.


def test_a_closed_retro_refuses_every_facilitation_service(closed_retro, escape, member):
    before = version_of(closed_retro)
    writes = [
        lambda: facilitation.timer_start(retro=closed_retro, minutes=5),
        lambda: facilitation.timer_pause(retro=closed_retro),
        lambda: facilitation.timer_resume(retro=closed_retro),
        lambda: facilitation.timer_extend(retro=closed_retro, minutes=5),
        lambda: facilitation.timer_clear(retro=closed_retro),
        lambda: facilitation.focus_set(retro=closed_retro, escape=escape),
        lambda: facilitation.voting_open(retro=closed_retro, votes_per_person=3),
        lambda: facilitation.voting_close(retro=closed_retro),
        lambda: facilitation.vote_cast(retro=closed_retro, escape=escape, voter=member),
        lambda: facilitation.vote_retract(retro=closed_retro, escape=escape, voter=member),
    ]
    for write in writes:
        refused(write, "closed")
    assert version_of(closed_retro) == before
