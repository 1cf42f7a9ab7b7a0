"""Shared personas: an owner (team admin), a facilitator, a member, a viewer and an outsider.

The outsider is an admin of another team, so "refused" really means "not this team's".
"""

from datetime import timedelta

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.utils import timezone

from escapes.models import Escape, PipelineStage, Release
from teams.models import Role, Team
from teams.services import membership_set, team_create


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
