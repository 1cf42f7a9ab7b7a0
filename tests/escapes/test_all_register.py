"""The register of every team of the user (`/escapes/`): where the all-teams dashboard links."""

from datetime import UTC, datetime

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from escapes.models import Category, PipelineStage, Release
from teams.models import Role
from teams.services import membership_set, team_create
from tests.conftest import client_for
from tests.escapes.factories import make_escape

pytestmark = pytest.mark.django_db

URL = "/escapes/"
# 23:30 UTC on 31 January is 00:30 on 1 February in Berlin and still January in UTC.
NEW_YEAR_EVE_UTC = datetime(2026, 1, 31, 23, 30, tzinfo=UTC)


@pytest.fixture
def both(team, other_team, member):
    """The member sees Checkout (Berlin) and, as a viewer, Search (UTC)."""
    membership_set(team=other_team, user=member, role=Role.VIEWER)
    return team, other_team


def titles(response) -> set[str]:
    return {e.title for e in response.context["page_obj"].object_list}


def test_it_lists_the_escapes_of_every_team_of_the_user_and_no_other(both, member):
    team, other_team = both
    make_escape(team, "checkout escape")
    make_escape(other_team, "search escape")
    stranger = team_create(name="Billing", slug="billing", timezone_name="UTC")
    hidden = make_escape(stranger, "billing escape")

    response = client_for(member).get(URL)

    assert response.status_code == 200
    assert titles(response) == {"checkout escape", "search escape"}
    html = response.content.decode()
    assert "/t/checkout/escapes/" in html and "/t/search/escapes/" in html  # team links
    # Another team's escape stays out even when asked for by id.
    assert titles(client_for(member).get(URL, {"ids": str(hidden.pk)})) == set()


def test_local_dates_are_read_in_each_teams_own_time_zone(both, member):
    team, other_team = both
    make_escape(team, "berlin: 1 February", detected_at=NEW_YEAR_EVE_UTC)
    make_escape(other_team, "utc: 31 January", detected_at=NEW_YEAR_EVE_UTC)
    client = client_for(member)

    january = client.get(URL, {"detected_from": "2026-01-01", "detected_to": "2026-01-31"})
    february = client.get(URL, {"detected_from": "2026-02-01", "detected_to": "2026-02-28"})

    assert titles(january) == {"utc: 31 January"}
    assert titles(february) == {"berlin: 1 February"}
    # Each row shows its detection time in its own team's zone.
    html = february.content.decode()
    assert "2026-02-01 00:30" in html


def test_team_stage_release_category_and_component_filters(both, member):
    team, other_team = both
    stage = PipelineStage.objects.filter(team=other_team).first()
    assert stage is not None
    release = Release.objects.create(
        team=team, version="2026.1.0", released_at=datetime(2026, 1, 1, tzinfo=UTC)
    )
    make_escape(team, "a", category=Category.COVERAGE_GAP, component="cart", release=release)
    make_escape(team, "b", component="")
    make_escape(other_team, "c", stage=stage, component="cart")
    client = client_for(member)

    assert titles(client.get(URL, {"team": "search"})) == {"c"}
    assert titles(client.get(URL, {"stage": stage.pk})) == {"c"}
    assert titles(client.get(URL, {"stage": "none"})) == {"a", "b"}
    assert titles(client.get(URL, {"release": release.pk})) == {"a"}
    assert titles(client.get(URL, {"category": "coverage_gap"})) == {"a"}
    assert titles(client.get(URL, {"category": "none"})) == {"b", "c"}
    assert titles(client.get(URL, {"component": "cart"})) == {"a", "c"}
    assert titles(client.get(URL, {"component": "none"})) == {"b"}


def test_a_value_outside_the_users_teams_is_named_and_ignored(both, member):
    stranger = team_create(name="Billing", slug="billing", timezone_name="UTC")
    foreign_stage = PipelineStage.objects.filter(team=stranger).first()
    assert foreign_stage is not None
    foreign_release = Release.objects.create(
        team=stranger, version="9.9", released_at=datetime(2026, 1, 1, tzinfo=UTC)
    )
    make_escape(both[0], "mine")
    client = client_for(member)

    for params, label in (
        ({"stage": foreign_stage.pk}, "Stage"),
        ({"release": foreign_release.pk}, "Release"),
        ({"team": "billing"}, "Team"),
        ({"detected_from": "yesterday"}, "Detected from"),
    ):
        response = client.get(URL, params)
        assert response.status_code == 200
        warnings = response.context["filter_warnings"]
        assert warnings and label.lower() in warnings[0].lower(), (params, warnings)
        assert titles(response) == {"mine"}
    assert "9.9" not in client.get(URL).content.decode()


def test_the_queries_do_not_grow_with_teams_or_escapes(both, member):
    team, _ = both
    client = client_for(member)
    make_escape(team, "first")

    def count() -> int:
        with CaptureQueriesContext(connection) as queries:
            assert client.get(URL, {"detected_from": "2026-01-01"}).status_code == 200
        return len(queries)

    before = count()
    for i in range(5):
        extra = team_create(name=f"Team {i}", slug=f"team-{i}", timezone_name="Asia/Tokyo")
        membership_set(team=extra, user=member, role=Role.VIEWER)
        for j in range(3):
            make_escape(extra, f"escape {i}.{j}", component=f"c{j}")
    assert count() == before


def test_anonymous_is_sent_to_sign_in_and_only_get_is_answered(member):
    response = Client().get(URL)
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]
    assert client_for(member).post(URL).status_code == 405


def test_a_user_without_teams_sees_an_empty_register(outsider, team):
    make_escape(team, "not theirs")
    response = client_for(outsider).get(URL)
    assert response.status_code == 200
    assert titles(response) == set()
