"""The team's test evidence pages (issue 14, points 1, 2 and 5): flakiness, a test's history,
uploads, CI setup. Data is built directly with the models."""

import hashlib
import re
from datetime import UTC, timedelta

import pytest
from django.utils import timezone

from escapes.models import Escape, Release
from evidence.models import (
    DailyResult,
    MeasuredCatch,
    Quarantine,
    ResultUpload,
    TrackedTest,
    UploadStatus,
)
from evidence.selectors import flakiest_tests, window_range
from tests.conftest import client_for

pytestmark = pytest.mark.django_db


def utc_today():
    return timezone.now().astimezone(UTC).date()


def make_test(team, stage, name, **fields) -> TrackedTest:
    now = timezone.now()
    values = {
        "classname": "shop.CheckoutTest",
        "first_run_at": now - timedelta(days=100),
        "last_run_at": now - timedelta(hours=1),
        "last_outcome": "passed",
        "last_passed_at": now - timedelta(hours=1),
    }
    values.update(fields)
    return TrackedTest.objects.create(
        team=team, stage=stage, name=name, key=hashlib.sha256(name.encode()).hexdigest(), **values
    )


def day_row(test, days_ago, **counts) -> DailyResult:
    values = {"runs": 1, "passes": 1, "commits": 1}
    values.update(counts)
    return DailyResult.objects.create(
        test=test,
        team=test.team,
        stage=test.stage,
        day=utc_today() - timedelta(days=days_ago),
        **values,
    )


def make_upload(team, stage, **fields) -> ResultUpload:
    values = {
        "commit": "a1b2c3d4e5f60718293a4b5c6d7e8f9012345678",
        "branch": "main",
        "run_url": "https://ci.example.com/runs/1",
        "identity": hashlib.sha256(repr(fields).encode()).hexdigest(),
        "status": UploadStatus.DONE,
        "cases": 120,
        "passed": 117,
        "failed": 2,
        "skipped": 1,
        "ran_at": timezone.now(),
    }
    values.update(fields)
    return ResultUpload.objects.create(team=team, stage=stage, **values)


@pytest.fixture
def flaky(team, stages):
    """Three Unit tests: one flipping a lot, one a little, one green; one Integration test."""
    unit, integration = stages[0], stages[1]
    make_upload(team, unit)
    big = make_test(team, unit, "test_pays_with_card")
    small = make_test(team, unit, "test_refund_rounding")
    green = make_test(team, unit, "test_lists_items")
    other = make_test(team, integration, "test_gateway_timeout")
    for days_ago in range(20):
        day_row(green, days_ago, runs=3, passes=3, commits=3)
    for days_ago in (1, 2, 3):
        day_row(big, days_ago, runs=4, passes=3, failures=1, retries=1, flips=1, commits=2)
    for days_ago in (4, 5):
        day_row(big, days_ago, runs=2, passes=2, commits=2)
    day_row(small, 2, runs=5, passes=4, failures=1, flips=1, commits=5)
    day_row(other, 3, runs=2, passes=1, failures=1, flips=1, commits=1)
    # A flip outside the 30-day window but inside 90.
    day_row(small, 40, runs=1, passes=1, failures=1, flips=1, commits=1)
    day_row(small, 41, runs=1, passes=1, failures=1, flips=1, commits=1)
    day_row(small, 42, runs=1, passes=1, failures=1, flips=1, commits=1)
    day_row(small, 43, runs=1, passes=1, failures=1, flips=1, commits=1)
    return {"big": big, "small": small, "green": green, "other": other}


def test_the_flakiest_tests_are_those_with_most_flips_in_the_window(team, flaky):
    rows = flakiest_tests(team, *window_range(30))
    assert [row.test.name for row in rows] == [
        "test_pays_with_card",
        "test_gateway_timeout",  # 1 flip of 1 commit: 100 %
        "test_refund_rounding",  # 1 flip of 5 commits: 20 %
    ]
    big = rows[0]
    assert (big.flips, big.retries, big.failures, big.runs, big.commits) == (3, 3, 3, 16, 10)
    assert big.flakiness == pytest.approx(0.3)
    # Over 90 days the older flips of test_refund_rounding count: 5 flips.
    rows = flakiest_tests(team, *window_range(90))
    assert rows[0].test.name == "test_refund_rounding"
    assert rows[0].flips == 5


def test_the_flakiness_page_filters_by_stage_and_window(member, team, stages, flaky):
    client = client_for(member)
    page = client.get(f"/t/{team.slug}/tests/").content.decode()
    assert "Flakiest tests" in page
    assert "test_pays_with_card" in page and "test_gateway_timeout" in page
    assert "test_lists_items" not in page.split("Quarantined")[0]
    assert "30 %" in page
    page = client.get(f"/t/{team.slug}/tests/?stage={stages[1].pk}&window=7").content.decode()
    assert "test_gateway_timeout" in page and "test_pays_with_card" not in page
    page = client.get(f"/t/{team.slug}/tests/?window=90").content.decode()
    assert page.index("test_refund_rounding") < page.index("test_pays_with_card")
    # A window that is not offered falls back to 30 days and says so beside the field.
    response = client.get(f"/t/{team.slug}/tests/?window=45")
    assert response.status_code == 200
    assert "test_pays_with_card" in response.content.decode()


def test_the_flakiness_page_reads_a_fixed_number_of_queries(
    member, team, stages, flaky, django_assert_max_num_queries
):
    def leaky_release(version, days_ago):
        release = Release.objects.create(
            team=team, version=version, released_at=timezone.now() - timedelta(days=days_ago)
        )
        Escape.objects.create(team=team, title="Leak", detected_at=timezone.now(), release=release)

    leaky_release("9.8", 2)
    Quarantine.objects.create(test=flaky["small"], reason="SHOP-1")
    client = client_for(member)
    with django_assert_max_num_queries(20) as few:
        client.get(f"/t/{team.slug}/tests/")
    for index in range(60):
        test = make_test(team, stages[index % 3], f"test_more_{index}")
        day_row(test, index % 20, runs=2, passes=1, failures=1, flips=1, retries=1, commits=2)
        Quarantine.objects.create(test=test, reason=f"ticket SHOP-{index}")
    for index in range(12):
        leaky_release(f"9.9.{index}", index + 1)
    # Two counts more at most: the quarantine lists are counted once they reach their limit.
    with django_assert_max_num_queries(len(few) + 2):
        response = client.get(f"/t/{team.slug}/tests/")
    assert response.content.decode().count('class="test-name"') == 50 + 50


def test_quarantined_lists_the_list_and_the_tests_skipped_with_a_reason(
    member, owner, team, stages, flaky
):
    Quarantine.objects.create(test=flaky["big"], reason="SHOP-12: card sandbox", added_by=owner)
    skipped_since = timezone.now() - timedelta(days=9)
    make_test(
        team,
        stages[0],
        "test_apple_pay",
        skipped_since=skipped_since,
        skip_reason="waiting for the SDK",
        last_outcome="skipped",
    )
    # A skip without a message is not a quarantine.
    make_test(team, stages[0], "test_silent_skip", skipped_since=skipped_since)
    page = client_for(member).get(f"/t/{team.slug}/tests/").content.decode()
    section = page.split('id="quarantined-heading"')[1].split('id="leaky-heading"')[0]
    assert "SHOP-12: card sandbox" in section and "olivia" in section
    assert "test_apple_pay" in section and "waiting for the SDK" in section
    assert "Skipped in the code" in section
    assert "1\xa0week" in section  # for how long
    assert "test_silent_skip" not in section
    assert re.search(r'class="count">2<', section)


def test_retried_to_green_before_a_release_that_leaked(member, team, stages, flaky):
    leaky = Release.objects.create(
        team=team, version="2.4", released_at=timezone.now() - timedelta(days=2)
    )
    clean = Release.objects.create(
        team=team, version="2.3", released_at=timezone.now() - timedelta(days=3)
    )
    for title in ("Card declined twice", "Refund off by a cent"):
        Escape.objects.create(team=team, title=title, detected_at=timezone.now(), release=leaky)
    old = make_test(team, stages[0], "test_retried_long_ago")
    day_row(old, 20, runs=2, passes=1, failures=1, retries=1, flips=1, commits=1)
    page = client_for(member).get(f"/t/{team.slug}/tests/").content.decode()
    section = page.split('id="leaky-heading"')[1]
    assert "Release 2.4" in section and "2 escapes" in section
    assert "Release 2.3" not in section
    # test_pays_with_card was retried 1, 2 and 3 days ago: the last two are up to 2.4's day.
    assert "test_pays_with_card" in section and "retried 2 times" in section
    assert "Unit" in section
    assert "test_retried_long_ago" not in section
    assert "test_refund_rounding" not in section  # flipped across runs, never retried
    assert clean.pk


def test_no_uploads_yet_explains_how_to_send_results(member, team):
    page = client_for(member).get(f"/t/{team.slug}/tests/").content.decode()
    assert "No test results yet" in page
    assert f'href="/t/{team.slug}/tests/setup/"' in page
    assert "Flakiest tests" not in page


def test_a_tests_history(member, owner, team, stages, flaky):
    test = flaky["big"]
    test.runs, test.failures, test.skips, test.retries, test.flips = 40, 5, 2, 3, 3
    test.failing_since = timezone.now() - timedelta(hours=5)
    test.failing_commit = "deadbeefcafe0123456789"
    test.save()
    MeasuredCatch.objects.create(
        team=team,
        stage=test.stage,
        test=test,
        failed_at=timezone.now() - timedelta(days=3),
        failed_commit="c3c3c3c3c3c3c3c3",
        fixed_at=timezone.now() - timedelta(days=2),
        fixed_commit="e5e5e5e5e5e5e5e5",
        release_version="2.4",
    )
    page = client_for(member).get(f"/t/{team.slug}/tests/{test.pk}/").content.decode()
    assert "test_pays_with_card" in page and "shop.CheckoutTest" in page
    assert "<dt>Passes</dt><dd>33</dd>" in page
    assert "<dt>Retries</dt><dd>3</dd>" in page
    assert "30 %" in page  # 3 flips of 10 commits in the last 90 days
    assert "deadbeefcafe" in page
    assert page.count('class="day day-') == 90 + 5  # the strip and its legend
    assert page.count("day day-flaky") == 3 + 1
    assert "1 run, 1 passed" not in page
    today = utc_today() - timedelta(days=1)
    assert f"{today.day} {today:%b}: 4 runs, 3 passed, 1 failed, 1 retried, 1 flipped" in page
    assert "c3c3c3c3c3" in page and "e5e5e5e5e5" in page and "before release 2.4" in page
    assert "Not quarantined" in page


def test_a_tests_page_reads_a_fixed_number_of_queries(
    member, team, flaky, django_assert_max_num_queries
):
    test = flaky["big"]
    client = client_for(member)
    with django_assert_max_num_queries(12) as few:
        client.get(f"/t/{team.slug}/tests/{test.pk}/")
    for days_ago in range(6, 90):
        day_row(test, days_ago, runs=3, passes=2, failures=1, flips=1, commits=2)
    for index in range(30):
        MeasuredCatch.objects.create(
            team=team,
            stage=test.stage,
            test=test,
            failed_at=timezone.now(),
            failed_commit=f"f{index}",
            fixed_at=timezone.now(),
            fixed_commit=f"x{index}",
        )
    with django_assert_max_num_queries(len(few)):
        client.get(f"/t/{team.slug}/tests/{test.pk}/")


def test_the_uploads_list(member, team, stages, django_assert_max_num_queries):
    make_upload(team, stages[0], run_url="https://ci.example.com/runs/77", branch="release/2.4")
    make_upload(
        team,
        stages[1],
        status=UploadStatus.FAILED,
        error="results.xml, line 12: the testcase element has no name.",
        cases=0,
    )
    make_upload(team, stages[0], status=UploadStatus.QUEUED)
    client = client_for(member)
    with django_assert_max_num_queries(12) as few:
        page = client.get(f"/t/{team.slug}/tests/uploads/").content.decode()
    assert "release/2.4" in page and 'href="https://ci.example.com/runs/77"' in page
    assert "Refused" in page and "line 12: the testcase element has no name" in page
    assert "Queued" in page and "Processed" in page
    assert "117 passed, 2 failed, 1 skipped" in page
    for index in range(120):
        make_upload(team, stages[0], run_url=f"https://ci.example.com/runs/{index}")
    with django_assert_max_num_queries(len(few)):
        page = client.get(f"/t/{team.slug}/tests/uploads/?page=2").content.decode()
    assert "Page 2 of 3" in page


def test_the_setup_page_shows_this_teams_values_and_no_token(member, team, stages):
    page = client_for(member).get(f"/t/{team.slug}/tests/setup/").content.decode()
    assert f"http://testserver/api/v1/teams/{team.slug}/test-results" in page
    for stage in stages:
        assert f"<code>{stage.name}</code>" in page
    for variable in (
        "$GITHUB_SHA",
        "$GITHUB_REF_NAME",
        "$GITHUB_SERVER_URL/$GITHUB_REPOSITORY/actions/runs/$GITHUB_RUN_ID",
        "secrets.LEAKSEAL_TOKEN",
        "$CI_COMMIT_SHA",
        "$CI_COMMIT_REF_NAME",
        "$CI_JOB_URL",
        "$GIT_COMMIT",
        "$BRANCH_NAME",
        "$BUILD_URL",
        "$BUILD_SOURCEVERSION",
        "$BUILD_SOURCEBRANCHNAME",
        "$(System.CollectionUri)$(System.TeamProject)/_build/results?buildId=$(Build.BuildId)",
    ):
        assert variable in page, variable
    assert page.count("Authorization: Bearer $LEAKSEAL_TOKEN") == 5
    assert "lks_" not in page
    assert 'href="/tokens/"' in page
    body = page.split("<body")[1]
    assert re.findall(r"<script(?![^>]*\bsrc=)", body) == [], "no inline script (CSP)"
    assert '<script src="/static/js/copy.js" defer></script>' in body


def test_a_stage_name_with_a_space_is_quoted_for_the_shell(member, team, stages):
    stages[0].name = "End to end"
    stages[0].save()
    page = client_for(member).get(f"/t/{team.slug}/tests/setup/").content.decode()
    assert "-F &#x27;stage=End to end&#x27;" in page


@pytest.mark.parametrize(
    "path", ["", "uploads/", "setup/", "{test}/"], ids=["flakiness", "uploads", "setup", "test"]
)
def test_members_read_outsiders_get_404(path, viewer, outsider, team, flaky):
    url = f"/t/{team.slug}/tests/" + path.format(test=flaky["big"].pk)
    assert client_for(viewer).get(url).status_code == 200
    assert client_for(outsider).get(url).status_code == 404


def test_another_teams_test_is_404(member, team, other_team, flaky):
    stranger = make_test(other_team, other_team.stages.first(), "test_theirs")
    client = client_for(member)
    assert client.get(f"/t/{team.slug}/tests/{stranger.pk}/").status_code == 404
    response = client.post(
        f"/t/{team.slug}/tests/{stranger.pk}/quarantine/", {"reason": "not ours"}
    )
    assert response.status_code == 404
    assert not Quarantine.objects.exists()


def test_the_team_nav_and_home_link_to_the_flakiness_page(member, team):
    page = client_for(member).get(f"/t/{team.slug}/").content.decode()
    assert page.count(f'href="/t/{team.slug}/tests/"') == 2


def test_ties_on_flips_go_to_the_higher_flakiness_then_the_latest_run(team, stages):
    """More tests tie at the last place than fit: the list keeps the flakiest of them."""
    now = timezone.now()
    leader = make_test(team, stages[0], "test_leader")
    day_row(leader, 1, runs=4, passes=2, failures=2, flips=2, commits=40)
    for index in range(55):
        test = make_test(
            team, stages[0], f"test_tied_{index:02}", last_run_at=now - timedelta(minutes=index)
        )
        # One flip each; commits 1, 1, 2, 2, ...: the fewer commits, the flakier.
        day_row(test, 2, runs=2, passes=1, failures=1, flips=1, commits=1)
        if index // 2:
            day_row(test, 3, runs=index // 2, passes=index // 2, commits=index // 2)
    rows = flakiest_tests(team, *window_range(30))
    assert len(rows) == 50
    assert rows[0].test.name == "test_leader"
    names = [row.test.name for row in rows[1:]]
    # Same flakiness: the latest run first (test_tied_00 ran last).
    assert names[:4] == ["test_tied_00", "test_tied_01", "test_tied_02", "test_tied_03"]
    assert names[-1] == "test_tied_48"
    assert "test_tied_49" not in names and "test_tied_54" not in names


def test_the_window_select_shows_the_window_used(member, team, stages, flaky):
    client = client_for(member)
    for query in ("", f"?stage={stages[0].pk}"):
        page = client.get(f"/t/{team.slug}/tests/{query}").content.decode()
        assert re.search(r'<option value="30" selected>', page), query


def test_a_filter_change_swaps_only_the_results(member, team, stages, flaky):
    response = client_for(member).get(
        f"/t/{team.slug}/tests/?window=7&stage={stages[1].pk}", headers={"HX-Request": "true"}
    )
    page = response.content.decode()
    assert "<html" not in page and 'id="flakiness-results"' in page
    assert "test_gateway_timeout" in page and "test_pays_with_card" not in page


def test_no_upload_yet_on_the_uploads_page_links_the_setup(member, team):
    page = client_for(member).get(f"/t/{team.slug}/tests/uploads/").content.decode()
    assert "No upload yet" in page and f'href="/t/{team.slug}/tests/setup/"' in page
