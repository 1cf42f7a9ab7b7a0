from datetime import timedelta

from django.utils import timezone

from escapes.models import Escape, Release, StageCatch
from tests.api.conftest import error_fields


def test_member_records_a_release(member_api, team):
    at = (timezone.now() - timedelta(days=1)).replace(microsecond=0)
    response = member_api.post(
        "/teams/checkout/releases", {"version": " 2026.12.0 ", "released_at": at.isoformat()}
    )
    assert response.status_code == 201, response.content
    assert response.json() == {
        "version": "2026.12.0",
        "released_at": at.isoformat().replace("+00:00", "Z"),
        "escapes": 0,
        "stage_catches": {},
    }
    assert Release.objects.get(team=team).version == "2026.12.0"


def test_a_duplicate_version_is_409(member_api, release):
    response = member_api.post(
        "/teams/checkout/releases", {"version": "2026.11.1", "released_at": "2026-01-01T00:00:00Z"}
    )
    assert response.status_code == 409
    assert "2026.11.1" in response.json()["detail"]
    assert Release.objects.count() == 1


def test_release_validation_is_422(member_api, team):
    future = (timezone.now() + timedelta(days=2)).isoformat()
    assert "released_at" in error_fields(
        member_api.post("/teams/checkout/releases", {"version": "1", "released_at": future})
    )
    assert "released_at" in error_fields(
        member_api.post(
            "/teams/checkout/releases", {"version": "1", "released_at": "2026-01-01T00:00"}
        )
    )
    assert "version" in error_fields(
        member_api.post(
            "/teams/checkout/releases", {"version": "v" * 65, "released_at": "2026-01-01T00:00Z"}
        )
    )
    assert not Release.objects.exists()


def test_releases_list_with_escape_counts_and_catches(member_api, team, stages, release, escape):
    StageCatch.objects.create(release=release, stage=stages[1], caught=25)
    StageCatch.objects.create(release=release, stage=stages[0], caught=50)
    response = member_api.get("/teams/checkout/releases")
    assert response.status_code == 200
    body = response.json()
    assert body["count"] == 1
    assert body["items"][0]["escapes"] == 1
    assert list(body["items"][0]["stage_catches"].items()) == [("Unit", 50), ("Integration", 25)]


def test_releases_list_issues_a_bounded_number_of_queries(
    member_api, team, stages, django_assert_max_num_queries
):
    for n in (3, 30):
        Release.objects.all().delete()
        for i in range(n):
            r = Release.objects.create(team=team, version=f"v{i}", released_at=timezone.now())
            StageCatch.objects.create(release=r, stage=stages[0], caught=i)
        # token, its last use, membership, count, releases, catches
        with django_assert_max_num_queries(6):
            assert (
                len(member_api.get("/teams/checkout/releases", {"limit": 100}).json()["items"]) == n
            )


def test_viewer_cannot_record_a_release(viewer_api, team):
    response = viewer_api.post(
        "/teams/checkout/releases", {"version": "1", "released_at": "2026-01-01T00:00Z"}
    )
    assert response.status_code == 403
    assert not Release.objects.exists()


def test_outsider_sees_no_releases(outsider_api, release):
    assert outsider_api.get("/teams/checkout/releases").status_code == 404


def test_stage_catches_are_reported_by_stage_name(member_api, release, stages):
    response = member_api.post(
        f"/teams/checkout/releases/{release.version}/stage-catches",
        {"counts": {"Unit": 50, "Integration": 25}},
    )
    assert response.status_code == 200, response.content
    assert response.json()["stage_catches"] == {"Unit": 50, "Integration": 25}
    again = member_api.post(
        f"/teams/checkout/releases/{release.version}/stage-catches", {"counts": {"Unit": 40}}
    )
    assert again.json()["stage_catches"] == {"Unit": 40, "Integration": 25}
    assert StageCatch.objects.get(release=release, stage=stages[0]).caught == 40


def test_an_unknown_stage_in_catches_is_422_and_saves_nothing(member_api, release, stages):
    response = member_api.post(
        f"/teams/checkout/releases/{release.version}/stage-catches",
        {"counts": {"Unit": 50, "Smoke": 3}},
    )
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "payload", "counts", "Smoke"]
    assert "Unit, Integration, E2E" in response.json()["detail"][0]["msg"]
    assert not StageCatch.objects.exists()


def test_negative_catches_are_422(member_api, release, stages):
    response = member_api.post(
        f"/teams/checkout/releases/{release.version}/stage-catches", {"counts": {"Unit": -1}}
    )
    assert response.status_code == 422
    assert not StageCatch.objects.exists()


def test_catches_for_an_unknown_or_foreign_release_are_404(
    member_api, outsider_api, release, other_team
):
    Release.objects.create(team=other_team, version="9.0", released_at=timezone.now())
    assert (
        member_api.post(
            "/teams/checkout/releases/9.0/stage-catches", {"counts": {"Unit": 1}}
        ).status_code
        == 404
    )
    assert (
        outsider_api.post(
            f"/teams/checkout/releases/{release.version}/stage-catches", {"counts": {"Unit": 1}}
        ).status_code
        == 404
    )
    assert not StageCatch.objects.exists()


def test_viewer_cannot_report_catches(viewer_api, release, stages):
    response = viewer_api.post(
        f"/teams/checkout/releases/{release.version}/stage-catches", {"counts": {"Unit": 1}}
    )
    assert response.status_code == 403
    assert not StageCatch.objects.exists()


def test_an_escape_can_name_a_release_created_through_the_api(member_api, team, stages):
    released = timezone.now() - timedelta(days=2)
    member_api.post(
        "/teams/checkout/releases", {"version": "3.1", "released_at": released.isoformat()}
    )
    response = member_api.post(
        "/teams/checkout/escapes",
        {"title": "Crash", "detected_at": timezone.now().isoformat(), "release": "3.1"},
    )
    assert response.status_code == 201
    assert Escape.objects.filter(release__version="3.1").count() == 1
