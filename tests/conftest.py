"""Shared personas: an owner (team admin), a facilitator, a member, a viewer and an outsider.

The outsider is an admin of another team, so "refused" really means "not this team's".

The suite must pass on any day. A test that needs "now" takes it from the clock and derives
every other time from that one base (the `release` and `escape` fixtures and the factories do).
A fixed date is for a test in which nothing compares it with now, directly or through the app,
or only checks that it is not in the future (long past, or 2999). Where the app reads now
around fixed dates (default ranges, "recent" escapes, overdue actions), the test fixes the
clock: `time_machine.move_to(<a moment after its data>)`, or `frozen_clock` where the test
compares its own "now" or "today" with the app's. To check that it holds, run on another day:

    LEAKSEAL_TEST_TODAY=2027-03-29 pytest                 # that day, at the current time of day
    LEAKSEAL_TEST_TODAY=2027-03-28T00:59:30+00:00 pytest  # from that instant on

The whole session's wall clock then runs from there (time-machine; it keeps ticking), and so
does that of every Python process the tests start (uvicorn, Celery workers, manage.py): they
import tests/clock/sitecustomize.py and run at the same offset. time.monotonic is not moved;
PostgreSQL, Redis and Chromium keep the real time (Leakseal reads "now" only in Python).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.utils import timezone

from escapes.models import Escape, PipelineStage, Release
from teams.models import Role, Team
from teams.services import membership_set, team_create

if TYPE_CHECKING:
    from tests.fakes.slack import FakeSlack
    from tests.fakes.teams import FakeTeams

CLOCK_DIR = Path(__file__).parent / "clock"
_moved: list = []  # the session's time_machine.travel while LEAKSEAL_TEST_TODAY moves the clock


def _destination(value: str, real_now: float) -> float:
    """LEAKSEAL_TEST_TODAY as a Unix time: a date keeps the real UTC time of day."""
    try:
        day = date.fromisoformat(value)
    except ValueError:
        moment = datetime.fromisoformat(value)
        return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()
    time_of_day = datetime.fromtimestamp(real_now, UTC).timetz()
    return datetime.combine(day, time_of_day).timestamp()


def pytest_configure(config: pytest.Config) -> None:
    """With LEAKSEAL_TEST_TODAY set, the session and the processes it starts run on that day."""
    today = os.environ.get("LEAKSEAL_TEST_TODAY", "")
    if not today:
        return
    from tests.clock.sitecustomize import OFFSET_VARIABLE, real_time, shift_clock

    real_now = real_time()
    offset = _destination(today, real_now) - real_now
    os.environ[OFFSET_VARIABLE] = repr(offset)
    os.environ["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(CLOCK_DIR), os.environ.get("PYTHONPATH", "")) if p
    )
    _moved.append(shift_clock(offset))


def pytest_unconfigure(config: pytest.Config) -> None:
    while _moved:
        _moved.pop().stop()


def pytest_report_header(config: pytest.Config) -> str | None:
    if not _moved:
        return None
    now = datetime.now(UTC)
    return f"clock moved by LEAKSEAL_TEST_TODAY: it is {now:%Y-%m-%d %H:%M:%S} UTC"


@pytest.fixture
def team(db) -> Team:
    return team_create(name="Checkout", slug="checkout", timezone_name="Europe/Berlin")


@pytest.fixture
def other_team(db) -> Team:
    return team_create(name="Search", slug="search", timezone_name="UTC")


def _user(username: str) -> User:
    return User.objects.create_user(username=username, password="pw-" + username)


@pytest.fixture
def owner(team) -> User:
    user = _user("olivia")
    membership_set(team=team, user=user, role=Role.ADMIN)
    return user


@pytest.fixture
def facilitator(team) -> User:
    user = _user("fred")
    membership_set(team=team, user=user, role=Role.FACILITATOR)
    return user


@pytest.fixture
def member(team) -> User:
    user = _user("mia")
    membership_set(team=team, user=user, role=Role.MEMBER)
    return user


@pytest.fixture
def viewer(team) -> User:
    user = _user("victor")
    membership_set(team=team, user=user, role=Role.VIEWER)
    return user


@pytest.fixture
def outsider(other_team) -> User:
    user = _user("oscar")
    membership_set(team=other_team, user=user, role=Role.ADMIN)
    return user


def client_for(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def stages(team) -> list[PipelineStage]:
    return list(team.stages.order_by("position"))


@pytest.fixture
def release(team) -> Release:
    return Release.objects.create(
        team=team, version="2026.11.1", released_at=timezone.now() - timedelta(days=10)
    )


@pytest.fixture
def escape(team, release, stages) -> Escape:
    now = timezone.now()
    return Escape.objects.create(
        team=team,
        title="Checkout times out under payment gateway latency",
        merged_at=now - timedelta(days=12),
        released_at=release.released_at,
        detected_at=now - timedelta(days=8),
        release=release,
        component="payments",
    )


@pytest.fixture
def frozen_clock(time_machine):
    """The wall clock stands still from the start of the test: a time the test reads before a
    call equals the one the call reads, however long a busy machine takes in between."""
    time_machine.move_to(timezone.now(), tick=False)
    return time_machine


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    """PBKDF2's deliberate slowness is for attackers, not for a suite that makes many users."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def _fresh_dashboard_caches():
    """Rollup blocks, dashboard answers and their renderings are kept per process by row ids
    and digests, and ids repeat across tests (rolled back): every test starts with none."""
    from insights.dashboard_cache import dashboard_results_clear
    from insights.dashboard_page import dashboard_fragments_clear
    from insights.rollup_blocks import rollups_cache_clear

    for clear in (rollups_cache_clear, dashboard_results_clear, dashboard_fragments_clear):
        clear()
    yield
    for clear in (rollups_cache_clear, dashboard_results_clear, dashboard_fragments_clear):
        clear()


# --- Chat fakes (tests/notices, tests/integrations).


@pytest.fixture
def fake_slack(settings) -> Iterator[FakeSlack]:
    """A Slack (Web API and incoming webhooks) over real HTTP that checks Slack's contract."""
    from tests.fakes.slack import FakeSlack

    fake = FakeSlack().start()
    settings.SLACK_API_URL = fake.api_url
    settings.CHAT_EXTRA_ORIGINS = [*settings.CHAT_EXTRA_ORIGINS, fake.url]
    yield fake
    fake.stop()
    assert fake.violations == [], "Slack's contract was broken"


@pytest.fixture
def fake_teams(settings) -> Iterator[FakeTeams]:
    """A Teams workflow over real HTTP that checks the message contract Teams documents."""
    from tests.fakes.teams import FakeTeams

    fake = FakeTeams().start()
    settings.CHAT_EXTRA_ORIGINS = [*settings.CHAT_EXTRA_ORIGINS, fake.url]
    yield fake
    fake.stop()
    assert fake.violations == [], "the Teams workflow's contract was broken"
