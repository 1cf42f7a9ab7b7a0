"""Facilitation writes on the live board: the timer, the escape in focus, dot voting.

Like every write in retros/services.py, each service takes the retro row lock first (that
lock is what makes fifty simultaneous clicks queue up instead of racing) and counts the
change with `_bump` in the same transaction. A closed retro refuses them all.
"""

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Count
from django.utils import timezone

from config.celery import registered_task
from escapes.models import Escape
from retros.models import Retrospective, Vote, VotingState
from retros.services import _bump, _lock, _require_in_retro

TIMER_MINUTES_MIN = 1
TIMER_MINUTES_MAX = 120
# A dozen dots is already more than anyone can spread meaningfully over a board.
VOTES_PER_PERSON_MAX = 12


# --- What the board shows of the timer.


def _iso_utc(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass(frozen=True)
class TimerState:
    """The timer as a board renders it; `state` is off, running, paused or up.

    `now` is when it was read: the page sends it along so that the countdown in the
    browser can allow for a laptop clock that is off.
    """

    state: str
    now: datetime
    ends_at: datetime | None = None
    remaining: timedelta = timedelta(0)

    @property
    def ends_at_iso(self) -> str:
        return _iso_utc(self.ends_at) if self.ends_at else ""

    @property
    def now_iso(self) -> str:
        return _iso_utc(self.now)

    @property
    def seconds_left(self) -> int:
        return max(0, int(self.remaining.total_seconds()))

    @property
    def display(self) -> str:
        minutes, seconds = divmod(self.seconds_left, 60)
        return f"{minutes:02d}:{seconds:02d}"


def timer_state(retro: Retrospective, *, now: datetime | None = None) -> TimerState:
    now = now or timezone.now()
    if retro.timer_paused_remaining is not None:
        return TimerState("paused", now, remaining=retro.timer_paused_remaining)
    if retro.timer_ends_at is None:
        return TimerState("off", now)
    if retro.timer_ends_at <= now:
        return TimerState("up", now, ends_at=retro.timer_ends_at)
    return TimerState(
        "running", now, ends_at=retro.timer_ends_at, remaining=retro.timer_ends_at - now
    )


# --- Timer.


def _clean_minutes(minutes: int) -> timedelta:
    if not isinstance(minutes, int) or not TIMER_MINUTES_MIN <= minutes <= TIMER_MINUTES_MAX:
        raise ValidationError(
            {"minutes": f"Choose between {TIMER_MINUTES_MIN} and {TIMER_MINUTES_MAX} minutes."}
        )
    return timedelta(minutes=minutes)


def _schedule_expiry(retro: Retrospective) -> None:
    """Once committed, queue the task that tells every board the time is up.

    Call while holding the retro lock, after setting `timer_ends_at`.
    """
    retro_id, ends_at = retro.pk, retro.timer_ends_at
    assert ends_at is not None
    # Robust: a broker that is down must not fail a change that is already committed; the
    # countdown goes on in every browser, only the server's "time's up" ping is lost.
    transaction.on_commit(
        lambda: registered_task("retros.timer_expire").apply_async(
            args=(retro_id, ends_at.isoformat()), eta=ends_at
        ),
        robust=True,
    )


def _save_timer(retro: Retrospective) -> None:
    retro.save(update_fields=["timer_ends_at", "timer_paused_remaining"])
    _bump(retro)
    if retro.timer_ends_at is not None:
        _schedule_expiry(retro)


@transaction.atomic
def timer_start(*, retro: Retrospective, minutes: int) -> Retrospective:
    """Start (or restart) the timer for `minutes`; any earlier timer is replaced."""
    _lock(retro)
    length = _clean_minutes(minutes)
    retro.timer_ends_at = timezone.now() + length
    retro.timer_paused_remaining = None
    _save_timer(retro)
    return retro


@transaction.atomic
def timer_pause(*, retro: Retrospective) -> Retrospective:
    _lock(retro)
    state = timer_state(retro)
    if state.state != "running":
        raise ValidationError(
            "The time is already up." if state.state == "up" else "No timer is running.",
            code="timer",
        )
    retro.timer_paused_remaining = state.remaining
    retro.timer_ends_at = None
    _save_timer(retro)
    return retro


@transaction.atomic
def timer_resume(*, retro: Retrospective) -> Retrospective:
    _lock(retro)
    if retro.timer_paused_remaining is None:
        raise ValidationError("The timer is not paused.", code="timer")
    retro.timer_ends_at = timezone.now() + retro.timer_paused_remaining
    retro.timer_paused_remaining = None
    _save_timer(retro)
    return retro


@transaction.atomic
def timer_extend(*, retro: Retrospective, minutes: int) -> Retrospective:
    """Add minutes to a running or paused timer; one whose time is up restarts from now."""
    _lock(retro)
    extra = _clean_minutes(minutes)
    state = timer_state(retro)
    if state.state == "off":
        raise ValidationError("Start a timer first.", code="timer")
    if state.state == "paused":
        retro.timer_paused_remaining = state.remaining + extra
    else:
        assert retro.timer_ends_at is not None
        retro.timer_ends_at = max(retro.timer_ends_at, timezone.now()) + extra
    _save_timer(retro)
    return retro


@transaction.atomic
def timer_clear(*, retro: Retrospective) -> Retrospective:
    _lock(retro)
    if retro.timer_ends_at is None and retro.timer_paused_remaining is None:
        return retro
    retro.timer_ends_at = None
    retro.timer_paused_remaining = None
    _save_timer(retro)
    return retro


@transaction.atomic
def timer_expire(*, retro: Retrospective, ends_at: datetime) -> bool:
    """Count the end of the timer that was scheduled to end at `ends_at`.

    Nothing changes but the version: that alone makes every open board re-render and show
    "time's up", even when nobody touches the board. False when the timer was changed,
    cleared or the retro closed or deleted since the expiry was scheduled.
    """
    try:
        _lock(retro)
    except (ValidationError, Retrospective.DoesNotExist):
        return False
    if retro.timer_ends_at != ends_at:
        return False
    _bump(retro)
    return True


# --- Focus.


@transaction.atomic
def focus_set(*, retro: Retrospective, escape: Escape | None) -> Retrospective:
    """Put one escape of the retro in focus on every board, or none."""
    _lock(retro)
    if escape is not None:
        _require_in_retro(retro, escape)
    retro.focus_escape = escape
    retro.save(update_fields=["focus_escape"])
    _bump(retro)
    return retro


# --- Dot voting.


def votes_used(retro: Retrospective, voter: User) -> int:
    return Vote.objects.filter(retro=retro, voter=voter).count()


@transaction.atomic
def voting_open(*, retro: Retrospective, votes_per_person: int) -> Retrospective:
    """Open (or reopen) dot voting with `votes_per_person` dots each; votes cast are kept."""
    _lock(retro)
    if not isinstance(votes_per_person, int) or not 1 <= votes_per_person <= VOTES_PER_PERSON_MAX:
        raise ValidationError(
            {"votes_per_person": f"Choose between 1 and {VOTES_PER_PERSON_MAX} votes per person."}
        )
    if retro.voting == VotingState.OPEN:
        raise ValidationError("Voting is already open.", code="voting")
    most = _most_votes_of_one_voter(retro)
    if votes_per_person < most:
        raise ValidationError(
            {
                "votes_per_person": f"Someone has already cast {most} votes; "
                f"allow at least {most} or they would be over the limit."
            }
        )
    retro.voting = VotingState.OPEN
    retro.votes_per_person = votes_per_person
    retro.save(update_fields=["voting", "votes_per_person"])
    _bump(retro)
    return retro


def _most_votes_of_one_voter(retro: Retrospective) -> int:
    most = (
        Vote.objects.filter(retro=retro)
        .values("voter")
        .annotate(n=Count("id"))
        .order_by("-n")
        .values_list("n", flat=True)
        .first()
    )
    return most or 0


@transaction.atomic
def voting_close(*, retro: Retrospective) -> Retrospective:
    """Close voting; from now on the board orders escapes by their votes."""
    _lock(retro)
    if retro.voting != VotingState.OPEN:
        raise ValidationError("Voting is not open.", code="voting")
    retro.voting = VotingState.CLOSED
    retro.save(update_fields=["voting"])
    _bump(retro)
    return retro


def _require_voting_open(retro: Retrospective) -> None:
    if retro.voting != VotingState.OPEN:
        raise ValidationError(
            "Voting has closed." if retro.voting == VotingState.CLOSED else "Voting is not open.",
            code="voting",
        )


@transaction.atomic
def vote_cast(*, retro: Retrospective, escape: Escape, voter: User) -> Vote:
    """One more dot on `escape`; refused once `voter` has used all of their votes.

    The count is read under the retro lock, so votes cast at the same moment queue up and
    none can slip past the allowance.
    """
    _lock(retro)
    _require_voting_open(retro)
    _require_in_retro(retro, escape)
    allowance = retro.votes_per_person
    if votes_used(retro, voter) >= allowance:
        raise ValidationError(f"You have used all {allowance} of your votes.", code="no_votes_left")
    vote = Vote.objects.create(retro=retro, escape=escape, voter=voter)
    _bump(retro)
    return vote


@transaction.atomic
def vote_retract(*, retro: Retrospective, escape: Escape, voter: User) -> None:
    """Take back one of `voter`'s dots from `escape`."""
    _lock(retro)
    _require_voting_open(retro)
    _require_in_retro(retro, escape)
    vote = Vote.objects.filter(retro=retro, escape=escape, voter=voter).order_by("-id").first()
    if vote is None:
        raise ValidationError("You have no vote on this escape to take back.", code="no_vote")
    vote.delete()
    _bump(retro)
