from datetime import timedelta

import pytest
from django.utils import timezone

from escapes.models import Category, Escape, Source
from tests.api.conftest import error_fields


def iso(value) -> str:
    return value.isoformat()


def hours_ago(hours: float):
    return timezone.now() - timedelta(hours=hours)


def new_escape(**overrides):
    body = {
        "title": "Refund rounding loses a cent",
        "merged_at": iso(hours_ago(72)),
        "detected_at": iso(hours_ago(2)),
        "category": "coverage_gap",
        "stage": "Unit",
        "severity": "high",
        "component": "payments",
    }
    body.update(overrides)
    return body


# --- Create ---------------------------------------------------------------------------------


def test_member_reports_an_escape(member_api, member, team, stages, release):
    body = new_escape(
        release="2026.11.1",
        merged_at=iso(hours_ago(24 * 12)),
        external_id="CI-1",
        tracker_url="https://t.example/1",
    )
    response = member_api.post("/teams/checkout/escapes", body)
    assert response.status_code == 201, response.content
    out = response.json()
    escape = Escape.objects.get(pk=out["id"])
    assert escape.team == team
    assert escape.stage == stages[0]
    assert escape.release == release
    assert escape.source == Source.API
    assert escape.external_id == "CI-1"
    assert escape.created_by == member
    assert escape.category == Category.COVERAGE_GAP
    assert out["stage"] == "Unit"
    assert out["release"] == "2026.11.1"
    assert out["released_at"] is not None  # taken from the release
    assert out["status"] == "open"
    assert out["detection_deficit_seconds"] == pytest.approx((24 * 12 - 2) * 3600, abs=5)


def test_times_with_any_offset_are_stored_in_utc(member_api, team):
    detected = hours_ago(3).astimezone(timezone.get_fixed_timezone(-300))
    response = member_api.post("/teams/checkout/escapes", new_escape(detected_at=iso(detected)))
    assert response.status_code == 201
    assert Escape.objects.get().detected_at == detected


def test_resending_an_external_id_returns_the_existing_escape(member_api, team, stages):
    first = member_api.post("/teams/checkout/escapes", new_escape(external_id="CI-7"))
    again = member_api.post(
        "/teams/checkout/escapes", new_escape(external_id="CI-7", title="changed")
    )
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json()["id"] == first.json()["id"]
    assert Escape.objects.count() == 1


def test_viewer_cannot_report_an_escape(viewer_api, team, stages):
    response = viewer_api.post("/teams/checkout/escapes", new_escape())
    assert response.status_code == 403
    assert response.json()["detail"]
    assert not Escape.objects.exists()


def test_outsider_cannot_report_into_another_team(outsider_api, team, stages):
    assert outsider_api.post("/teams/checkout/escapes", new_escape()).status_code == 404
    assert not Escape.objects.exists()


# --- 422 shapes -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "field", "fragment"),
    [
        ({"detected_at": iso(timezone.now() + timedelta(days=1))}, "detected_at", "future"),
        (
            {"merged_at": iso(hours_ago(1)), "detected_at": iso(hours_ago(5))},
            "detected_at",
            "merged",
        ),
        ({"stage": "Smoke"}, "stage", "Unit, Integration, E2E"),
        ({"release": "9.9.9"}, "release", "Unknown release"),
        ({"detected_at": "2026-01-05T10:00:00"}, "detected_at", "UTC offset"),
        ({"title": "x" * 201}, "title", "200 characters"),
        ({"description": "x" * 10_001}, "description", "10000 characters"),
        ({"category": "bad luck"}, "category", "coverage_gap"),
        ({"tracker_url": "not a url"}, "tracker_url", "valid URL"),
        ({"colour": "red"}, "colour", "Extra inputs"),
        ({"title": "   "}, "title", "at least 1 character"),
    ],
)
def test_invalid_escapes_are_422_naming_the_field(
    member_api, team, stages, overrides, field, fragment
):
    response = member_api.post("/teams/checkout/escapes", new_escape(**overrides))
    fields = error_fields(response)
    assert field in fields, fields
    assert any(fragment in msg for msg in fields[field]), fields[field]
    assert all(item["loc"][0] == "body" for item in response.json()["detail"])
    assert not Escape.objects.exists()


def test_a_missing_detection_time_is_422(member_api, team):
    body = new_escape()
    del body["detected_at"]
    assert "detected_at" in error_fields(member_api.post("/teams/checkout/escapes", body))


def test_malformed_json_is_422(member_api, team):
    response = member_api.post("/teams/checkout/escapes", raw='{"title": "unterminated')
    assert response.status_code == 422
    assert response.json() == {
        "detail": [{"type": "json_invalid", "loc": ["body"], "msg": "Malformed JSON body."}]
    }


def test_a_json_array_instead_of_an_object_is_422(member_api, team):
    assert member_api.post("/teams/checkout/escapes", [1, 2]).status_code == 422


def test_service_errors_have_the_same_shape_as_schema_errors(member_api, team, stages):
    schema = member_api.post("/teams/checkout/escapes", new_escape(title="x" * 201)).json()
    service = member_api.post("/teams/checkout/escapes", new_escape(stage="Smoke")).json()
    assert schema["detail"][0]["loc"] == ["body", "payload", "title"]
    assert service["detail"][0]["loc"] == ["body", "payload", "stage"]
    assert set(schema["detail"][0]) >= set(service["detail"][0]) == {"type", "loc", "msg"}


# --- Read -----------------------------------------------------------------------------------


def test_escape_detail(member_api, escape):
    response = member_api.get(f"/teams/checkout/escapes/{escape.pk}")
    assert response.status_code == 200
    body = response.json()
    assert body["title"] == escape.title
    assert body["release"] == "2026.11.1"
    assert body["category"] is None
    assert body["data_problems"] == []


def test_another_teams_escape_under_my_slug_is_404(member_api, outsider_api, escape, other_team):
    theirs = Escape.objects.create(
        team=other_team, title="Search is slow", detected_at=hours_ago(1)
    )
    assert member_api.get(f"/teams/checkout/escapes/{theirs.pk}").status_code == 404
    assert (
        member_api.patch(f"/teams/checkout/escapes/{theirs.pk}", {"title": "x"}).status_code == 404
    )
    assert outsider_api.get(f"/teams/search/escapes/{escape.pk}").status_code == 404
    assert outsider_api.get(f"/teams/checkout/escapes/{escape.pk}").status_code == 404
    theirs.refresh_from_db()
    assert theirs.title == "Search is slow"


def test_viewer_reads_escapes(viewer_api, escape):
    assert viewer_api.get(f"/teams/checkout/escapes/{escape.pk}").status_code == 200
    assert viewer_api.get("/teams/checkout/escapes").json()["count"] == 1


def test_list_filters(member_api, team, stages, release, escape):
    escape.category = Category.FLAKINESS
    escape.stage = stages[1]
    escape.save()
    Escape.objects.create(
        team=team, title="Search box eats emoji", detected_at=hours_ago(1), severity="low"
    )
    old = Escape.objects.create(
        team=team, title="Ancient bug", detected_at=hours_ago(24 * 400), resolved_at=hours_ago(1)
    )

    def ids(**params):
        response = member_api.get("/teams/checkout/escapes", params)
        assert response.status_code == 200, response.content
        return {item["id"] for item in response.json()["items"]}

    assert ids(category="flakiness") == {escape.pk}
    assert ids(stage="Integration") == {escape.pk}
    assert ids(release="2026.11.1") == {escape.pk}
    assert ids(severity="low") == {Escape.objects.get(title__startswith="Search").pk}
    assert ids(component="payments") == {escape.pk}
    assert ids(status="resolved") == {old.pk}
    assert ids(q="EMOJI") == {Escape.objects.get(title__startswith="Search").pk}
    assert ids(detected_before=iso(hours_ago(24 * 300))) == {old.pk}
    assert old.pk not in ids(detected_after=iso(hours_ago(24 * 30)))
    assert len(ids()) == 3


def test_list_filter_errors_are_422(member_api, team):
    assert "stage" in error_fields(member_api.get("/teams/checkout/escapes", {"stage": "Nope"}))
    naive = member_api.get("/teams/checkout/escapes", {"detected_after": "2026-01-01T00:00:00"})
    assert "detected_after" in error_fields(naive)
    assert "limit" in error_fields(member_api.get("/teams/checkout/escapes", {"limit": 1000}))


def test_list_paginates_with_a_count(member_api, team):
    for i in range(7):
        Escape.objects.create(team=team, title=f"Bug {i}", detected_at=hours_ago(i + 1))
    page = member_api.get("/teams/checkout/escapes", {"limit": 3, "offset": 3}).json()
    assert page["count"] == 7
    assert (page["limit"], page["offset"]) == (3, 3)
    assert [item["title"] for item in page["items"]] == ["Bug 3", "Bug 4", "Bug 5"]


@pytest.mark.parametrize("rows", [3, 30])
def test_list_issues_a_bounded_number_of_queries(
    member_api, team, stages, release, rows, django_assert_max_num_queries
):
    for i in range(rows):
        Escape.objects.create(
            team=team,
            title=f"Bug {i}",
            detected_at=hours_ago(1),
            stage=stages[i % 3],
            release=release,
        )
    with django_assert_max_num_queries(5):
        response = member_api.get("/teams/checkout/escapes", {"limit": 200})
    assert len(response.json()["items"]) == rows


def test_outsider_cannot_list_another_teams_escapes(outsider_api, escape):
    assert outsider_api.get("/teams/checkout/escapes").status_code == 404


# --- Update ---------------------------------------------------------------------------------


def test_patch_changes_only_the_fields_sent(member_api, escape, stages):
    response = member_api.patch(
        f"/teams/checkout/escapes/{escape.pk}",
        {"category": "environment_mismatch", "stage": "E2E", "resolved_at": iso(hours_ago(1))},
    )
    assert response.status_code == 200, response.content
    escape.refresh_from_db()
    assert escape.category == Category.ENVIRONMENT_MISMATCH
    assert escape.stage == stages[2]
    assert escape.resolved_at is not None
    assert escape.title == "Checkout times out under payment gateway latency"
    assert response.json()["status"] == "resolved"


def test_patch_with_null_clears_an_optional_field(member_api, escape):
    response = member_api.patch(f"/teams/checkout/escapes/{escape.pk}", {"release": None})
    assert response.status_code == 200
    escape.refresh_from_db()
    assert escape.release is None


def test_invalid_patch_saves_nothing(member_api, escape):
    response = member_api.patch(
        f"/teams/checkout/escapes/{escape.pk}",
        {"title": "New title", "resolved_at": iso(escape.detected_at - timedelta(days=1))},
    )
    assert "resolved_at" in error_fields(response)
    escape.refresh_from_db()
    assert escape.title == "Checkout times out under payment gateway latency"


def test_patch_cannot_null_a_required_field(member_api, escape):
    response = member_api.patch(f"/teams/checkout/escapes/{escape.pk}", {"detected_at": None})
    assert "detected_at" in error_fields(response)


def test_viewer_cannot_patch(viewer_api, escape):
    response = viewer_api.patch(f"/teams/checkout/escapes/{escape.pk}", {"title": "Mine now"})
    assert response.status_code == 403
    escape.refresh_from_db()
    assert escape.title != "Mine now"


def test_wrong_method_on_an_escape_is_405(member_api, escape):
    assert member_api.post(f"/teams/checkout/escapes/{escape.pk}", {}).status_code == 405


# --- Hostile input is refused, never a 500 --------------------------------------------------


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"offset": 10**30}, "offset"),
        ({"stage": "Unit\x00"}, "stage"),
        ({"detected_after": "9999-12-31T23:59:59-23:59"}, "detected_after"),
    ],
)
def test_hostile_list_parameters_are_422(member_api, team, params, field):
    assert field in error_fields(member_api.get("/teams/checkout/escapes", params))


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"title": "NUL\x00byte"}, "title"),
        ({"detected_at": "0001-01-01T00:00:00+23:59"}, "detected_at"),
        ({"detected_at": 1e20}, "detected_at"),
    ],
)
def test_hostile_bodies_are_422(member_api, team, overrides, field):
    response = member_api.post("/teams/checkout/escapes", new_escape(**overrides))
    assert field in error_fields(response)
    assert not Escape.objects.exists()
