"""The escape register: list, filters, search, pagination and detail."""

from datetime import UTC, datetime, timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from escapes.models import Category, Escape, Release, Severity
from retros.models import ActionKind, PreventativeAction, RetroEscape, Retrospective
from tests.conftest import client_for
from tests.escapes.factories import make_escape

pytestmark = pytest.mark.django_db


def list_url(team_slug: str = "checkout") -> str:
    return reverse("escape_list", kwargs={"team": team_slug})


def detail_url(escape: Escape) -> str:
    return reverse("escape_detail", kwargs={"team": escape.team.slug, "pk": escape.pk})


def titles(response) -> list[str]:
    return [e.title for e in response.context["page_obj"].object_list]


# --- list -----------------------------------------------------------------------------------


def test_register_lists_the_teams_escapes_with_their_facts(member, escape, stages):
    escape.category = Category.COVERAGE_GAP
    escape.stage = stages[1]
    escape.severity = Severity.HIGH
    escape.tracker_key = "PAY-77"
    escape.save()

    response = client_for(member).get(list_url())

    assert response.status_code == 200
    html = response.content.decode()
    assert escape.title in html
    assert detail_url(escape) in html
    assert "Coverage Gap" in html
    assert 'class="badge coverage_gap"' in html
    assert "Integration" in html
    assert "High" in html
    assert "payments" in html
    assert "2026.11.1" in html
    assert "PAY-77" in html
    assert "Open" in html
    assert "4 d 0 h" in html  # detected 8 days ago, merged 12 days ago


def test_register_shows_detection_times_in_the_team_time_zone(member, team):
    make_escape(
        team,
        "Summer time escape",
        merged_at=datetime(2025, 7, 1, 8, 0, tzinfo=UTC),
        released_at=datetime(2025, 7, 1, 9, 0, tzinfo=UTC),
        detected_at=datetime(2025, 7, 1, 22, 30, tzinfo=UTC),
    )

    html = client_for(member).get(list_url()).content.decode()

    assert "2025-07-02 00:30" in html  # Europe/Berlin is UTC+2 in July
    assert "Europe/Berlin" in html


def test_an_unknown_merge_time_shows_a_dash_for_the_deficit(member, team):
    make_escape(team, "No merge time", merged_at=None)

    html = client_for(member).get(list_url()).content.decode()

    assert "No merge time" in html
    assert "—" in html


def test_register_never_shows_another_teams_escapes(member, team, other_team):
    make_escape(team, "Ours")
    make_escape(other_team, "Theirs, secret")

    response = client_for(member).get(list_url())

    assert titles(response) == ["Ours"]
    assert b"Theirs, secret" not in response.content


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"category": "coverage_gap"}, ["Gap in payments"]),
        ({"severity": "critical"}, ["Mismatch in search"]),
        ({"component": "search"}, ["Mismatch in search"]),
        ({"status": "resolved"}, ["Mismatch in search"]),
        ({"status": "sealed"}, ["Sealed leak"]),
        ({"status": "open"}, ["Gap in payments"]),
        ({"q": "PAY-9"}, ["Gap in payments"]),
        ({"q": "staging clock"}, ["Mismatch in search"]),
        ({"q": "SEARCH"}, ["Mismatch in search"]),
        ({"category": "coverage_gap", "severity": "critical"}, []),
    ],
)
def test_register_filters_narrow_the_list(member, team, params, expected):
    now = timezone.now()
    make_escape(
        team,
        "Gap in payments",
        category=Category.COVERAGE_GAP,
        component="payments",
        tracker_key="PAY-9",
        detected_at=now - timedelta(hours=3),
    )
    make_escape(
        team,
        "Mismatch in search",
        category=Category.ENVIRONMENT_MISMATCH,
        severity=Severity.CRITICAL,
        component="search",
        description="The staging clock differs.",
        resolved_at=now - timedelta(hours=1),
        detected_at=now - timedelta(hours=4),
    )
    make_escape(
        team,
        "Sealed leak",
        category=Category.FLAKINESS,
        resolved_at=now - timedelta(hours=1),
        sealed_at=now,
        detected_at=now - timedelta(hours=5),
    )

    response = client_for(member).get(list_url(), params)

    assert response.status_code == 200
    assert titles(response) == expected
    assert response.context["filter_warnings"] == []


def test_register_filters_by_stage_and_release(member, team, stages, release):
    other_release = Release.objects.create(
        team=team, version="2026.10.0", released_at=timezone.now() - timedelta(days=30)
    )
    make_escape(team, "Unit leak", stage=stages[0], release=release)
    make_escape(team, "E2E leak", stage=stages[2], release=other_release)
    client = client_for(member)

    assert titles(client.get(list_url(), {"stage": stages[2].pk})) == ["E2E leak"]
    assert titles(client.get(list_url(), {"release": release.pk})) == ["Unit leak"]


def test_component_filter_offers_the_teams_distinct_components(member, team, other_team):
    make_escape(team, "a", component="payments")
    make_escape(team, "b", component="payments")
    make_escape(team, "c", component="cart")
    make_escape(other_team, "d", component="secret-component")

    form = client_for(member).get(list_url()).context["form"]

    choices = [value for value, _ in form.fields["component"].choices]
    assert choices == ["", "cart", "payments", "none"]


@pytest.mark.parametrize(
    "params",
    [
        {"stage": "abc"},
        {"stage": "999999"},
        {"stage": "99999999999999999999999999"},
        {"release": "x"},
        {"category": "nonsense"},
        {"severity": "apocalyptic"},
        {"component": "never-seen"},
        {"status": "limbo"},
        {"page": "abc"},
        {"page": "9999"},
    ],
)
def test_an_invalid_filter_is_reported_and_ignored(member, team, params):
    make_escape(team, "Still listed")

    response = client_for(member).get(list_url(), params)

    assert response.status_code == 200
    assert titles(response) == ["Still listed"]
    if "page" not in params:
        (name,) = params
        warnings = response.context["filter_warnings"]
        assert len(warnings) == 1
        assert f"Ignored the {name} filter" in warnings[0]
        assert warnings[0] in response.content.decode()


def test_a_stage_of_another_team_is_an_invalid_filter(member, team, other_team):
    make_escape(team, "Ours")
    their_stage = other_team.stages.first()
    make_escape(other_team, "Theirs", stage=their_stage)

    response = client_for(member).get(list_url(), {"stage": their_stage.pk})

    assert titles(response) == ["Ours"]
    assert "Ignored the stage filter" in response.context["filter_warnings"][0]


def test_an_invalid_filter_does_not_drop_the_valid_ones(member, team):
    make_escape(team, "Gap", category=Category.COVERAGE_GAP)
    make_escape(team, "Other", category=Category.FLAKINESS)

    response = client_for(member).get(list_url(), {"stage": "abc", "category": "coverage_gap"})

    assert titles(response) == ["Gap"]


def test_register_paginates_fifty_per_page_and_keeps_the_filters(member, team):
    now = timezone.now()
    for i in range(55):
        make_escape(
            team, f"Leak {i:02d}", component="cart", detected_at=now - timedelta(hours=i + 1)
        )
    make_escape(team, "Elsewhere", component="search")
    client = client_for(member)

    first = client.get(list_url(), {"component": "cart"})
    second = client.get(list_url(), {"component": "cart", "page": "2"})

    assert len(titles(first)) == 50
    assert titles(first)[0] == "Leak 00"
    assert titles(second) == [f"Leak {i:02d}" for i in range(50, 55)]
    assert "?component=cart&amp;page=2" in first.content.decode()
    assert "Page 2 of 2" in second.content.decode()


def test_an_htmx_request_gets_only_the_results_region(member, team):
    make_escape(team, "Gap", category=Category.COVERAGE_GAP)

    response = client_for(member).get(
        list_url(), {"category": "coverage_gap"}, headers={"HX-Request": "true"}
    )

    html = response.content.decode()
    assert response.status_code == 200
    assert html.lstrip().startswith('<div id="escape-results">')
    assert "Gap" in html
    assert "<html" not in html


def test_the_filter_form_swaps_results_with_htmx_and_works_without_it(member, team):
    html = client_for(member).get(list_url()).content.decode()

    assert 'method="get"' in html
    assert 'hx-get="/t/checkout/escapes/"' in html
    assert 'hx-target="#escape-results"' in html
    assert 'hx-push-url="true"' in html


@pytest.mark.parametrize("count", [3, 30])
def test_register_issues_a_bounded_number_of_queries(
    member, team, stages, release, count, django_assert_max_num_queries
):
    for i in range(count):
        make_escape(team, f"Leak {i}", stage=stages[i % 3], release=release, component=f"c{i % 4}")
    client = client_for(member)

    with django_assert_max_num_queries(10):
        response = client.get(list_url())

    assert len(titles(response)) == count


def test_viewer_sees_the_register_without_write_buttons(viewer, escape):
    html = client_for(viewer).get(list_url()).content.decode()

    assert escape.title in html
    assert reverse("escape_create", kwargs={"team": "checkout"}) not in html


def test_member_sees_the_write_buttons(member):
    html = client_for(member).get(list_url()).content.decode()

    assert reverse("escape_create", kwargs={"team": "checkout"}) in html
    assert reverse("escape_import", kwargs={"team": "checkout"}) in html


# --- detail ---------------------------------------------------------------------------------


def test_detail_shows_every_fact_in_the_team_time_zone(member, team, stages, release):
    escape = make_escape(
        team,
        "Refund rounding",
        description="Rounding\nin refunds.",
        merged_at=datetime(2025, 1, 10, 9, 0, tzinfo=UTC),
        released_at=datetime(2025, 1, 12, 9, 0, tzinfo=UTC),
        detected_at=datetime(2025, 1, 15, 13, 0, tzinfo=UTC),
        resolved_at=datetime(2025, 1, 16, 9, 0, tzinfo=UTC),
        category=Category.ENVIRONMENT_MISMATCH,
        stage=stages[2],
        component="refunds",
        release=release,
        tracker_key="PAY-5",
        tracker_url="https://tracker.example.com/browse/PAY-5",
    )

    response = client_for(member).get(detail_url(escape))

    html = response.content.decode()
    assert response.status_code == 200
    assert "Refund rounding" in html
    assert "Rounding<br>in refunds." in html
    assert "2025-01-15 14:00" in html  # detected, Europe/Berlin (UTC+1 in January)
    assert "2025-01-10 10:00" in html  # merged
    assert "5 d 4 h" in html  # detection deficit
    assert "3 d 4 h" in html  # time in production
    assert "Environment Mismatch" in html
    assert "E2E" in html
    assert "refunds" in html
    assert "2026.11.1" in html
    assert 'href="https://tracker.example.com/browse/PAY-5"' in html
    assert "Resolved" in html


def test_detail_lists_data_problems(member, team):
    now = timezone.now()
    escape = make_escape(
        team,
        "Bad times",
        merged_at=now - timedelta(days=1),
        released_at=now - timedelta(days=3),
        detected_at=now - timedelta(days=4),
    )

    html = client_for(member).get(detail_url(escape)).content.decode()

    assert "Detected before it was merged" in html
    assert "Detected before its release: not an escape" in html
    assert "−3 d 0 h" in html


def test_detail_links_the_retros_and_actions_of_the_escape(member, owner, team, escape):
    retro = Retrospective.objects.create(team=team, title="November retro", facilitator=owner)
    RetroEscape.objects.create(retro=retro, escape=escape)
    PreventativeAction.objects.create(
        retro=retro,
        escape=escape,
        kind=ActionKind.NEW_TEST,
        title="Contract test for gateway latency",
        external_key="PAY-900",
    )

    html = client_for(member).get(detail_url(escape)).content.decode()

    assert "November retro" in html
    assert f'href="/t/checkout/retros/{retro.pk}/"' in html
    assert "Contract test for gateway latency" in html
    assert "PAY-900" in html


def test_detail_of_another_teams_escape_is_404(member, other_team):
    theirs = make_escape(other_team, "Theirs")

    response = client_for(member).get(
        reverse("escape_detail", kwargs={"team": "checkout", "pk": theirs.pk})
    )

    assert response.status_code == 404


def test_detail_query_count_is_bounded(member, owner, team, escape, django_assert_max_num_queries):
    for i in range(5):
        retro = Retrospective.objects.create(team=team, title=f"Retro {i}", facilitator=owner)
        RetroEscape.objects.create(retro=retro, escape=escape)
        PreventativeAction.objects.create(
            retro=retro, escape=escape, kind=ActionKind.FLAKE_FIX, title=f"A{i}"
        )
    client = client_for(member)

    with django_assert_max_num_queries(8):
        response = client.get(detail_url(escape))

    assert response.content.decode().count("Retro ") >= 5


# --- permissions ----------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["escape_list", "escape_detail"])
def test_read_pages_refuse_outsiders_and_wrong_methods(name, viewer, outsider, escape):
    kwargs = {"team": "checkout"} | ({"pk": escape.pk} if name == "escape_detail" else {})
    url = reverse(name, kwargs=kwargs)

    assert client_for(viewer).get(url).status_code == 200
    assert client_for(outsider).get(url).status_code == 404
    assert client_for(viewer).post(url).status_code == 405


@pytest.mark.parametrize("name", ["escape_list", "escape_detail"])
def test_read_pages_send_anonymous_users_to_sign_in(name, client, escape):
    kwargs = {"team": "checkout"} | ({"pk": escape.pk} if name == "escape_detail" else {})

    response = client.get(reverse(name, kwargs=kwargs))

    assert response.status_code == 302
    assert response.headers["Location"].startswith("/accounts/login/")


# --- filters the dashboard links with --------------------------------------------------------


def test_the_register_filters_by_local_detection_dates(member, team):
    # Berlin: 23:30 UTC on 2 March is already 3 March there.
    make_escape(team, "Late on the 2nd (UTC)", detected_at=datetime(2026, 3, 2, 23, 30, tzinfo=UTC))
    make_escape(team, "On the 2nd", detected_at=datetime(2026, 3, 2, 12, 0, tzinfo=UTC))
    make_escape(team, "In April", detected_at=datetime(2026, 4, 2, 12, 0, tzinfo=UTC))
    client = client_for(member)

    response = client.get(list_url(), {"detected_from": "2026-03-03", "detected_to": "2026-03-31"})
    assert titles(response) == ["Late on the 2nd (UTC)"]
    response = client.get(list_url(), {"detected_to": "2026-03-02"})
    assert titles(response) == ["On the 2nd"]


def test_the_register_lists_each_kind_of_data_problem(member, team):
    now = timezone.now()
    make_escape(team, "Fine", merged_at=now - timedelta(days=2), detected_at=now)
    make_escape(team, "Negative", merged_at=now + timedelta(hours=1), detected_at=now)
    make_escape(team, "No merge time", merged_at=None, detected_at=now)
    make_escape(
        team,
        "Before its release",
        merged_at=None,
        released_at=now + timedelta(days=1),
        detected_at=now,
    )
    client = client_for(member)

    def problem(kind: str) -> list[str]:
        return titles(client.get(list_url(), {"problem": kind}))

    assert problem("negative_deficit") == ["Negative"]
    assert problem("missing_merged_at") == ["No merge time"]
    assert problem("detected_before_release") == ["Before its release"]


def test_the_register_filters_by_ids_and_by_no_stage_category_or_component(member, team, stages):
    now = timezone.now()
    bare = make_escape(team, "Bare", detected_at=now)
    placed = make_escape(
        team,
        "Placed",
        detected_at=now - timedelta(hours=1),
        stage=stages[0],
        category=Category.COVERAGE_GAP,
        component="payments",
    )
    client = client_for(member)

    assert titles(client.get(list_url(), {"stage": "none"})) == ["Bare"]
    assert titles(client.get(list_url(), {"category": "none"})) == ["Bare"]
    assert titles(client.get(list_url(), {"component": "none"})) == ["Bare"]
    assert titles(client.get(list_url(), {"ids": f"{placed.pk}"})) == ["Placed"]
    both = titles(client.get(list_url(), {"ids": f"{placed.pk}, {bare.pk}"}))
    assert sorted(both) == ["Bare", "Placed"]


def test_bad_ids_are_named_and_ignored(member, team):
    make_escape(team, "Any", detected_at=timezone.now())
    response = client_for(member).get(list_url(), {"ids": "1,two"})
    assert response.status_code == 200
    assert titles(response) == ["Any"]
    assert "Give escape ids as numbers separated by commas." in response.content.decode()
