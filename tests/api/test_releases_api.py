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
        "stage_catch_sources": {},
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


def test_a_version_with_a_slash_is_422_naming_the_field(member_api, team):
    response = member_api.post(
        "/teams/checkout/releases", {"version": "2026/12", "released_at": "2026-01-01T00:00Z"}
    )
    assert error_fields(response) == {
        "version": ["A version cannot contain “/” ('2026/12'); use “-” or “.”."]
    }
    assert not Release.objects.exists()


def test_the_api_says_which_counts_are_measured_and_reports_typed_ones(member_api, release, stages):
    from evidence.catches import measured_catches_refresh
    from evidence.models import MeasuredCatch, TrackedTest

    at = release.released_at - timedelta(hours=1)
    for stage, n in ((stages[0], 3), (stages[1], 2)):
        for i in range(n):
            test = TrackedTest.objects.create(
                team=release.team, stage=stage, name=f"t{i}", key=f"{stage.pk}-{i}",
                first_run_at=at, last_run_at=at, last_outcome="passed",
            )  # fmt: skip
            MeasuredCatch.objects.create(
                team=release.team, stage=stage, test=test, failed_at=at, failed_commit="a",
                fixed_at=at, fixed_commit="b",
            )  # fmt: skip
    measured_catches_refresh(release.team_id, {stages[0].pk, stages[1].pk}, at)
    listed = member_api.get("/teams/checkout/releases").json()["items"][0]
    assert listed["stage_catches"] == {"Unit": 3, "Integration": 2}
    assert listed["stage_catch_sources"] == {"Unit": "measured", "Integration": "measured"}

    response = member_api.post(
        f"/teams/checkout/releases/{release.version}/stage-catches", {"counts": {"Unit": 50}}
    )

    body = response.json()
    assert body["stage_catches"] == {"Unit": 50, "Integration": 2}
    assert body["stage_catch_sources"] == {"Unit": "typed", "Integration": "measured"}


def test_a_member_corrects_a_release_time_and_the_audit_trail_says_who(member, member_api, release):
    from audit.models import Action, AuditEntry

    at = (release.released_at - timedelta(hours=2)).replace(microsecond=0)
    response = member_api.patch(
        f"/teams/checkout/releases/{release.version}", {"released_at": at.isoformat()}
    )

    assert response.status_code == 200, response.content
    assert response.json()["released_at"] == at.isoformat().replace("+00:00", "Z")
    release.refresh_from_db()
    assert release.released_at == at
    entry = AuditEntry.objects.get(action=Action.RELEASE_MOVED)
    assert entry.actor == member and entry.target == f"Release {release.version}"


def test_a_release_time_in_the_future_or_naive_is_422_and_nothing_changes(member_api, release):
    before = release.released_at
    url = f"/teams/checkout/releases/{release.version}"
    future = member_api.patch(url, {"released_at": "2999-01-01T00:00:00Z"})
    assert future.status_code == 422
    assert error_fields(future) == {"released_at": ["This time is in the future."]}
    naive = member_api.patch(url, {"released_at": "2026-01-01T00:00:00"})
    assert naive.status_code == 422 and "released_at" in error_fields(naive)
    release.refresh_from_db()
    assert release.released_at == before


def test_only_members_who_write_correct_a_release_time(
    viewer_api, outsider_api, member_api, release
):
    before = release.released_at
    body = {"released_at": "2026-01-01T00:00:00Z"}
    url = f"/teams/checkout/releases/{release.version}"
    assert viewer_api.patch(url, body).status_code == 403
    assert outsider_api.patch(url, body).status_code == 404
    assert member_api.patch("/teams/checkout/releases/no-such", body).status_code == 404
    release.refresh_from_db()
    assert release.released_at == before
