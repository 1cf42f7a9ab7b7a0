import re
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.utils import timezone

from escapes.models import Escape, Release, StageCatch
from escapes.services import stage_catches_report
from tests.conftest import client_for

pytestmark = pytest.mark.django_db

LIST = "/t/checkout/releases/"
CREATE = "/t/checkout/releases/new/"


def detail(release: Release) -> str:
    return f"/t/checkout/releases/{release.pk}/"


def catches(release: Release) -> str:
    return f"/t/checkout/releases/{release.pk}/catches/"


def _escape_for(release: Release, title: str) -> Escape:
    return Escape.objects.create(
        team=release.team,
        title=title,
        released_at=release.released_at,
        detected_at=release.released_at + timedelta(hours=5),
        release=release,
    )


# --- the list ---------------------------------------------------------------------------


def test_release_list_shows_escapes_caught_counts_and_escape_rate(member, release, stages):
    for i in range(2):
        _escape_for(release, f"Leak {i}")
    stage_catches_report(release=release, counts={stages[0]: 12, stages[1]: 6})

    response = client_for(member).get(LIST)

    assert response.status_code == 200
    rows = response.context["rows"]
    assert [r.release.version for r in rows] == ["2026.11.1"]
    assert rows[0].escapes == 2
    assert rows[0].caught == [12, 6, None]
    # 2 escaped ÷ (2 + 18 caught) = 10 %
    assert rows[0].escape_rate == pytest.approx(0.1)
    assert b"10.0 %" in response.content
    assert b"Caught in Integration" in response.content


def test_escape_rate_is_blank_until_some_stage_reports(member, release):
    _escape_for(release, "Leak")
    response = client_for(member).get(LIST)
    assert response.context["rows"][0].escape_rate is None
    assert b" %" not in response.content


def test_release_time_is_shown_in_the_team_time_zone(member, team):
    Release.objects.create(
        team=team, version="1.0", released_at=datetime(2026, 1, 15, 12, 0, tzinfo=UTC)
    )
    response = client_for(member).get(LIST)
    assert b"2026-01-15 13:00" in response.content  # Europe/Berlin is UTC+1 in January


def test_release_list_only_shows_the_teams_releases(member, release, other_team):
    Release.objects.create(team=other_team, version="9.9.9", released_at=timezone.now())
    response = client_for(member).get(LIST)
    assert b"2026.11.1" in response.content
    assert b"9.9.9" not in response.content


def test_viewer_sees_releases_but_no_create_form(viewer, release):
    response = client_for(viewer).get(LIST)
    assert response.status_code == 200
    assert b"2026.11.1" in response.content
    assert b"Add release" not in response.content


def test_outsider_cannot_see_the_release_list(outsider, release):
    assert client_for(outsider).get(LIST).status_code == 404


def test_release_list_refuses_post(member):
    assert client_for(member).post(LIST).status_code == 405


def test_htmx_request_gets_only_the_releases_region(member, release):
    response = client_for(member).get(LIST, headers={"HX-Request": "true"})
    assert b'id="releases"' in response.content
    assert b"<html" not in response.content


@pytest.mark.parametrize("count", [3, 30])
def test_release_list_queries_do_not_grow_with_releases(
    member, team, stages, count, django_assert_max_num_queries
):
    now = timezone.now()
    for i in range(count):
        r = Release.objects.create(
            team=team, version=f"1.{i}", released_at=now - timedelta(days=i + 1)
        )
        _escape_for(r, f"Leak {i}")
        stage_catches_report(release=r, counts={stages[0]: i, stages[2]: 1})
    client = client_for(member)
    with django_assert_max_num_queries(6):
        response = client.get(LIST)
    assert len(response.context["rows"]) == count


# --- creating a release ------------------------------------------------------------------


def test_member_creates_a_release_in_team_local_time(member, team):
    response = client_for(member).post(
        CREATE, {"version": " 2026.12.0 ", "released_at": "2026-01-15T09:30"}
    )
    release = Release.objects.get(team=team)
    assert response.status_code == 302
    assert response.headers["Location"] == detail(release)
    assert release.version == "2026.12.0"
    assert release.released_at == datetime(2026, 1, 15, 8, 30, tzinfo=UTC)


def test_htmx_create_redirects_the_client(member, team):
    response = client_for(member).post(
        CREATE,
        {"version": "3.0", "released_at": "2026-01-15T09:30"},
        headers={"HX-Request": "true"},
    )
    release = Release.objects.get(team=team)
    assert response.status_code == 200
    assert response.headers["HX-Redirect"] == detail(release)


def test_duplicate_version_is_a_version_error(member, release):
    response = client_for(member).post(
        CREATE, {"version": "2026.11.1", "released_at": "2026-01-15T09:30"}
    )
    assert response.status_code == 200
    assert response.context["form"].errors["version"] == ["Release 2026.11.1 already exists."]
    assert Release.objects.count() == 1


def test_the_same_version_may_exist_in_another_team(member, other_team, team):
    Release.objects.create(team=other_team, version="5.0", released_at=timezone.now())
    client_for(member).post(CREATE, {"version": "5.0", "released_at": "2026-01-15T09:30"})
    assert Release.objects.filter(team=team, version="5.0").exists()


def test_a_release_in_the_future_is_refused(member, team):
    later = timezone.localtime(timezone.now() + timedelta(days=2), team.tzinfo)
    response = client_for(member).post(
        CREATE, {"version": "4.0", "released_at": later.strftime("%Y-%m-%dT%H:%M")}
    )
    assert response.context["form"].errors["released_at"] == ["This time is in the future."]
    assert not Release.objects.exists()


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"version": "", "released_at": "2026-01-15T09:30"}, "version"),
        ({"version": "4.0", "released_at": "yesterday"}, "released_at"),
        ({"version": "4.0", "released_at": ""}, "released_at"),
        ({"version": "x" * 65, "released_at": "2026-01-15T09:30"}, "version"),
        # 02:30 on the spring-forward night does not exist in Europe/Berlin.
        ({"version": "4.0", "released_at": "2026-03-29T02:30"}, "released_at"),
    ],
)
def test_bad_release_input_shows_the_field_error(member, data, field):
    response = client_for(member).post(CREATE, data, headers={"HX-Request": "true"})
    assert response.status_code == 200
    assert field in response.context["form"].errors
    assert b'id="release-form"' in response.content
    assert not Release.objects.exists()


def test_viewer_cannot_create_a_release(viewer):
    response = client_for(viewer).post(
        CREATE, {"version": "4.0", "released_at": "2026-01-15T09:30"}
    )
    assert response.status_code == 403
    assert not Release.objects.exists()


def test_outsider_cannot_create_a_release(outsider, team):
    response = client_for(outsider).post(
        CREATE, {"version": "4.0", "released_at": "2026-01-15T09:30"}
    )
    assert response.status_code == 404
    assert not Release.objects.exists()


def test_create_refuses_get(member):
    assert client_for(member).get(CREATE).status_code == 405


# --- one release -------------------------------------------------------------------------


def test_release_page_lists_its_escapes_with_links(member, release, escape, team):
    other = Escape.objects.create(
        team=team, title="Unrelated leak", detected_at=timezone.now() - timedelta(days=1)
    )
    response = client_for(member).get(detail(release))
    assert response.status_code == 200
    assert f'href="/t/checkout/escapes/{escape.pk}/"'.encode() in response.content
    assert escape.title.encode() in response.content
    assert other.title.encode() not in response.content


def test_a_release_with_ten_thousand_escapes_shows_the_newest_and_links_the_rest(
    member, release, django_assert_max_num_queries
):
    """Issue 13: no page grows with the number of escapes."""
    client = client_for(member)
    _escape_for(release, "First")
    small = len(client.get(detail(release)).content)
    Escape.objects.bulk_create(
        Escape(
            team=release.team,
            title="Leak",
            released_at=release.released_at,
            detected_at=release.released_at + timedelta(hours=5, seconds=i),
            release=release,
        )
        for i in range(9_999)
    )
    with django_assert_max_num_queries(20):
        response = client.get(detail(release))
    html = response.content.decode()
    assert len(re.findall(r'href="/t/checkout/escapes/\d+/"', html)) == 50  # the newest 50
    link = f'href="/t/checkout/escapes/?release={release.pk}">all 10000 in the register</a>'
    assert "The newest 50 of 10000" in html and link in html
    assert len(response.content) < small + 50 * 1_000


def test_release_of_another_team_is_not_found(member, other_team):
    theirs = Release.objects.create(team=other_team, version="1.0", released_at=timezone.now())
    assert client_for(member).get(f"/t/checkout/releases/{theirs.pk}/").status_code == 404
    response = client_for(member).post(f"/t/checkout/releases/{theirs.pk}/catches/", {})
    assert response.status_code == 404


def test_outsider_cannot_see_a_release(outsider, release):
    assert client_for(outsider).get(detail(release)).status_code == 404


def test_release_page_refuses_post(member, release):
    assert client_for(member).post(detail(release)).status_code == 405


def test_member_records_caught_counts_blank_means_not_reported(member, release, stages):
    unit, integration, e2e = stages
    response = client_for(member).post(
        catches(release),
        {f"stage_{unit.pk}": "40", f"stage_{integration.pk}": "0", f"stage_{e2e.pk}": ""},
    )
    assert response.status_code == 302
    saved = dict(StageCatch.objects.filter(release=release).values_list("stage__name", "caught"))
    assert saved == {"Unit": 40, "Integration": 0}


def test_blanking_a_count_clears_it(member, release, stages):
    unit, integration, _ = stages
    stage_catches_report(release=release, counts={unit: 5, integration: 7})
    client_for(member).post(catches(release), {f"stage_{unit.pk}": "6"})
    saved = dict(StageCatch.objects.filter(release=release).values_list("stage__name", "caught"))
    assert saved == {"Unit": 6}


def test_caught_counts_form_shows_current_counts(member, release, stages):
    stage_catches_report(release=release, counts={stages[1]: 17})
    response = client_for(member).get(detail(release))
    form = response.context["form"]
    assert form.initial == {
        f"stage_{stages[0].pk}": None,
        f"stage_{stages[1].pk}": 17,
        f"stage_{stages[2].pk}": None,
    }
    assert b'value="17"' in response.content


@pytest.mark.parametrize("bad", ["-1", "many", "1.5", "99999999999"])
def test_bad_caught_count_is_refused_and_nothing_is_saved(member, release, stages, bad):
    response = client_for(member).post(
        catches(release), {f"stage_{stages[0].pk}": "3", f"stage_{stages[1].pk}": bad}
    )
    assert response.status_code == 200
    assert f"stage_{stages[1].pk}" in response.context["form"].errors
    assert not StageCatch.objects.exists()


def test_htmx_catches_update_returns_the_region_with_the_new_rate(member, release, stages):
    _escape_for(release, "Leak")
    response = client_for(member).post(
        catches(release), {f"stage_{stages[0].pk}": "3"}, headers={"HX-Request": "true"}
    )
    assert response.status_code == 200
    assert b'id="catches"' in response.content
    assert b"<html" not in response.content
    assert b"25.0 %" in response.content  # 1 ÷ (1 + 3)
    assert b"Caught counts saved." in response.content


def test_viewer_cannot_record_caught_counts(viewer, release, stages):
    response = client_for(viewer).post(catches(release), {f"stage_{stages[0].pk}": "3"})
    assert response.status_code == 403
    assert not StageCatch.objects.exists()


def test_outsider_cannot_record_caught_counts(outsider, release, stages):
    response = client_for(outsider).post(catches(release), {f"stage_{stages[0].pk}": "3"})
    assert response.status_code == 404
    assert not StageCatch.objects.exists()


def test_catches_refuses_get(member, release):
    assert client_for(member).get(catches(release)).status_code == 405


def test_a_version_with_a_slash_is_refused_by_the_form(member, team):
    response = client_for(member).post(
        CREATE, {"version": "release/2026.12", "released_at": "2026-01-15T09:30"}
    )
    assert response.status_code == 200
    assert response.context["form"].errors["version"] == [
        "A version cannot contain “/” ('release/2026.12'); use “-” or “.”."
    ]
    assert not Release.objects.exists()


def test_a_version_with_a_slash_is_refused_in_the_django_admin_too(team, release):
    from django.contrib.auth.models import User

    staff = User.objects.create_superuser("ops", "ops@example.com", "x")
    client = client_for(staff)
    when = timezone.localtime(release.released_at)
    answer = client.post(
        f"/admin/escapes/release/{release.pk}/change/",
        {
            "team": team.pk,
            "version": "2026/12",
            "released_at_0": when.strftime("%Y-%m-%d"),
            "released_at_1": when.strftime("%H:%M:%S"),
        },
    )
    assert answer.status_code == 200
    assert "A version cannot contain “/” (&#x27;2026/12&#x27;)" in answer.content.decode()
    release.refresh_from_db()
    assert "/" not in release.version


# --- measured and typed counts (docs/metrics.md, "Typed and measured counts") -------------


def _measured(release: Release, stage, n: int) -> None:
    """n tests of the stage caught before the release, counted as the worker does."""
    from evidence.catches import measured_catches_refresh
    from evidence.models import MeasuredCatch, TrackedTest

    at = release.released_at - timedelta(hours=1)
    for i in range(n):
        test = TrackedTest.objects.create(
            team=release.team, stage=stage, name=f"t{i}", key=f"k{stage.pk}-{i}",
            first_run_at=at, last_run_at=at, last_outcome="passed",
        )  # fmt: skip
        MeasuredCatch.objects.create(
            team=release.team, stage=stage, test=test, failed_at=at - timedelta(hours=1),
            failed_commit="a", fixed_at=at, fixed_commit="b",
        )  # fmt: skip
    measured_catches_refresh(release.team_id, {stage.pk}, at - timedelta(days=1))


def _text(html: str) -> str:
    text = re.sub(r"<[^>]+>", "", html)
    return text.replace("Caught: ", "").replace("Counted from: ", "").strip()


def _sources(response) -> dict[str, tuple[str, str]]:
    """Per stage row of the release page: (caught, counted from) as shown."""
    found = re.findall(
        r'data-stage="([^"]+)">.*?data-caught>(.*?)</td>.*?data-source>(.*?)</td>',
        response.content.decode(),
        re.S,
    )
    return {name: (_text(caught), _text(source)) for name, caught, source in found}


def test_the_release_page_marks_measured_and_typed_counts(member, viewer, release, stages):
    unit, integration, _ = stages
    _measured(release, unit, 3)
    stage_catches_report(release=release, counts={integration: 7})

    for user in (member, viewer):
        response = client_for(user).get(detail(release))
        assert _sources(response) == {
            "Unit": ("3", "measured"),
            "Integration": ("7", "typed"),
            "E2E": ("—", "not reported"),
        }
    # The box of a measured count is empty: saving the form as it is keeps it measured.
    form = client_for(member).get(detail(release)).context["form"]
    assert form.initial[f"stage_{unit.pk}"] is None
    assert form.initial[f"stage_{integration.pk}"] == 7

    listing = client_for(member).get(LIST).content.decode()
    assert re.search(r"3 <span[^>]*data-source>measured</span>", listing)
    assert re.search(r"7 <span[^>]*data-source>typed</span>", listing)


def test_saving_the_form_unchanged_keeps_measured_counts_measured(member, release, stages):
    unit, integration, _ = stages
    _measured(release, unit, 3)
    response = client_for(member).post(
        catches(release), {f"stage_{unit.pk}": "", f"stage_{integration.pk}": "5"}
    )
    assert response.status_code == 302
    saved = {
        c.stage.name: (c.caught, c.source)
        for c in StageCatch.objects.filter(release=release).select_related("stage")
    }
    assert saved == {"Unit": (3, "measured"), "Integration": (5, "typed")}


def test_typing_over_a_measured_count_then_clearing_it_gives_the_measured_back(
    member, release, stages
):
    unit = stages[0]
    _measured(release, unit, 3)
    client_for(member).post(catches(release), {f"stage_{unit.pk}": "40"})
    assert StageCatch.objects.get(release=release, stage=unit).source == "typed"
    page = client_for(member).get(detail(release))
    assert _sources(page)["Unit"] == ("40", "typed")
    assert f'name="clear" value="{unit.pk}"'.encode() in page.content

    response = client_for(member).post(
        catches(release),
        {f"stage_{unit.pk}": "40", "clear": str(unit.pk)},
        headers={"HX-Request": "true"},
    )

    assert response.status_code == 200
    assert b"Typed count of Unit cleared." in response.content
    assert _sources(response)["Unit"] == ("3", "measured")
    catch = StageCatch.objects.get(release=release, stage=unit)
    assert (catch.caught, catch.source) == (3, "measured")


def test_clearing_a_typed_count_without_a_measured_one_leaves_it_unreported(
    member, release, stages
):
    unit, integration, _ = stages
    stage_catches_report(release=release, counts={unit: 4, integration: 2})
    response = client_for(member).post(
        catches(release),
        {f"stage_{unit.pk}": "4", f"stage_{integration.pk}": "9", "clear": str(unit.pk)},
    )
    assert response.status_code == 302
    saved = dict(StageCatch.objects.filter(release=release).values_list("stage__name", "caught"))
    assert saved == {"Integration": 9}  # the other box was saved with it


def test_a_viewer_cannot_clear_a_typed_count(viewer, release, stages):
    stage_catches_report(release=release, counts={stages[0]: 4})
    response = client_for(viewer).post(catches(release), {"clear": str(stages[0].pk)})
    assert response.status_code == 403
    assert StageCatch.objects.get(release=release).caught == 4


# --- correcting the release time ------------------------------------------------------------


def time_url(release: Release) -> str:
    return f"/t/checkout/releases/{release.pk}/time/"


def test_a_member_corrects_the_release_time_and_the_audit_trail_says_so(member, team, release):
    from audit.models import Action, AuditEntry

    before = release.released_at
    client = client_for(member)
    page = client.get(detail(release)).content.decode()
    assert "Correct the release time" in page and time_url(release) in page

    local = timezone.localtime(before - timedelta(hours=3), ZoneInfo(team.timezone))
    answer = client.post(time_url(release), {"released_at": local.strftime("%Y-%m-%dT%H:%M")})

    assert answer.status_code == 302 and answer["Location"] == detail(release)
    release.refresh_from_db()
    assert release.released_at == local.replace(second=0, microsecond=0)
    shown = client.get(detail(release)).content.decode()
    was = timezone.localtime(before, ZoneInfo(team.timezone))
    assert f"Release time corrected from {was:%Y-%m-%d %H:%M}" in shown
    entry = AuditEntry.objects.get(team=team, action=Action.RELEASE_MOVED)
    assert entry.actor == member and entry.target == f"Release {release.version}"
    assert set(entry.changes["released_at"]) == {"from", "to"}


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("2999-01-01T10:00", "This time is in the future."),
        ("last Tuesday", "Enter a valid date/time."),
        ("", "This field is required."),
    ],
)
def test_a_wrong_release_time_is_refused_and_nothing_changes(member, release, value, message):
    before = release.released_at
    answer = client_for(member).post(time_url(release), {"released_at": value})

    assert answer.status_code == 200
    assert answer.context["time_form"].errors["released_at"] == [message]
    assert '<details class="card release-time" open>' in answer.content.decode()
    release.refresh_from_db()
    assert release.released_at == before


def test_a_viewer_sees_no_time_form_and_cannot_post_it(viewer, outsider, release):
    before = release.released_at
    page = client_for(viewer).get(detail(release)).content.decode()
    assert "Correct the release time" not in page
    moved = {"released_at": "2026-01-01T10:00"}
    assert client_for(viewer).post(time_url(release), moved).status_code == 403
    assert client_for(outsider).post(time_url(release), moved).status_code == 404
    release.refresh_from_db()
    assert release.released_at == before
