from datetime import timedelta

from django.utils import timezone

from escapes.models import Escape
from tests.api.conftest import error_fields


def item(n: int, **overrides):
    now = timezone.now()
    body = {
        "title": f"Escape {n}",
        "merged_at": (now - timedelta(days=3)).isoformat(),
        "detected_at": (now - timedelta(hours=n + 1)).isoformat(),
        "stage": "Integration",
        "external_id": f"PIPE-{n}",
    }
    body.update(overrides)
    return body


def test_bulk_creates_every_item(member_api, team, stages):
    response = member_api.post(
        "/teams/checkout/escapes/bulk", {"escapes": [item(i) for i in range(3)]}
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["created"], body["existing"]) == (3, 0)
    assert [i["status"] for i in body["items"]] == ["created"] * 3
    assert [i["escape"]["external_id"] for i in body["items"]] == ["PIPE-0", "PIPE-1", "PIPE-2"]
    assert Escape.objects.filter(team=team, source="api", stage=stages[1]).count() == 3


def test_one_invalid_item_saves_nothing_and_names_each_error(member_api, team, stages):
    batch = [
        item(0),
        item(1, stage="Smoke"),
        item(2),
        item(3, release="0.0.0"),
        item(
            4,
            merged_at=timezone.now().isoformat(),
            detected_at=(timezone.now() - timedelta(days=1)).isoformat(),
        ),
    ]
    response = member_api.post("/teams/checkout/escapes/bulk", {"escapes": batch})
    assert response.status_code == 422
    locs = {tuple(d["loc"]) for d in response.json()["detail"]}
    assert locs == {
        ("body", "payload", "escapes", 1, "stage"),
        ("body", "payload", "escapes", 3, "release"),
        ("body", "payload", "escapes", 4, "detected_at"),
    }
    assert not Escape.objects.exists()


def test_schema_errors_are_listed_by_item_index(member_api, team, stages):
    batch = [item(0), item(1, detected_at="2026-01-01T10:00:00"), item(2, title="x" * 300)]
    response = member_api.post("/teams/checkout/escapes/bulk", {"escapes": batch})
    locs = {tuple(d["loc"]) for d in response.json()["detail"]}
    assert locs == {
        ("body", "payload", "escapes", 1, "detected_at"),
        ("body", "payload", "escapes", 2, "title"),
    }
    assert not Escape.objects.exists()


def test_resending_a_batch_is_idempotent(member_api, team, stages):
    first = member_api.post("/teams/checkout/escapes/bulk", {"escapes": [item(0), item(1)]})
    again = member_api.post(
        "/teams/checkout/escapes/bulk", {"escapes": [item(0), item(1), item(2)]}
    )
    assert (first.status_code, again.status_code) == (201, 201)
    body = again.json()
    assert (body["created"], body["existing"]) == (1, 2)
    assert [i["status"] for i in body["items"]] == ["existing", "existing", "created"]
    assert body["items"][0]["escape"]["id"] == first.json()["items"][0]["escape"]["id"]
    assert Escape.objects.count() == 3
    third = member_api.post(
        "/teams/checkout/escapes/bulk", {"escapes": [item(0), item(1), item(2)]}
    )
    assert third.status_code == 200
    assert third.json()["created"] == 0
    assert Escape.objects.count() == 3


def test_the_same_external_id_twice_in_one_batch_is_refused(member_api, team, stages):
    response = member_api.post("/teams/checkout/escapes/bulk", {"escapes": [item(0), item(0)]})
    assert error_fields(response) == {"external_id": ["Same external_id as item 0."]}
    assert not Escape.objects.exists()


def test_items_without_external_id_are_always_created(member_api, team, stages):
    batch = [item(0, external_id=""), item(1, external_id="")]
    member_api.post("/teams/checkout/escapes/bulk", {"escapes": batch})
    member_api.post("/teams/checkout/escapes/bulk", {"escapes": batch})
    assert Escape.objects.count() == 4


def test_a_batch_is_at_most_500_and_not_empty(member_api, team):
    too_many = member_api.post("/teams/checkout/escapes/bulk", {"escapes": [item(0)] * 501})
    assert "escapes" in error_fields(too_many)
    assert "escapes" in error_fields(
        member_api.post("/teams/checkout/escapes/bulk", {"escapes": []})
    )


def test_a_full_batch_of_500_goes_in(member_api, team, stages):
    batch = [item(i % 20, external_id=f"X-{i}") for i in range(500)]
    response = member_api.post("/teams/checkout/escapes/bulk", {"escapes": batch})
    assert response.status_code == 201
    assert Escape.objects.count() == 500


def test_viewer_cannot_bulk_report(viewer_api, team, stages):
    assert (
        viewer_api.post("/teams/checkout/escapes/bulk", {"escapes": [item(0)]}).status_code == 403
    )
    assert not Escape.objects.exists()


def test_outsider_cannot_bulk_report(outsider_api, team, stages):
    assert (
        outsider_api.post("/teams/checkout/escapes/bulk", {"escapes": [item(0)]}).status_code == 404
    )
    assert not Escape.objects.exists()


def test_bulk_is_post_only(member_api, team):
    assert member_api.get("/teams/checkout/escapes/bulk").status_code == 405


def test_a_body_over_the_upload_limit_is_413_not_500(member_api, team, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    response = member_api.post(
        "/teams/checkout/escapes/bulk", {"escapes": [item(i) for i in range(20)]}
    )
    assert response.status_code == 413
    assert "fewer escapes" in response.json()["detail"]
    assert not Escape.objects.exists()
