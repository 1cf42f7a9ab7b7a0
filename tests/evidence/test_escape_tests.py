"""An escape's tests (evidence/escape_tests.py): which tests are the escape's, their history in
the weeks before its release, and attaching them (issue 14, point 4; docs/metrics.md, "Test
evidence"). Data is built with the models directly."""

import hashlib
from datetime import UTC, date, datetime, timedelta

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from audit.models import Action, AuditEntry
from escapes.models import Category, Escape, PipelineStage
from evidence import escape_tests
from evidence.escape_tests import PANEL_LIMIT, WINDOW_DAYS, escape_test_attach, escape_test_detach
from evidence.models import DailyResult, EscapeTest, Quarantine, ResultUpload, TrackedTest
from retros import events as retro_events
from retros import services as retro_services
from retros.models import Retrospective
from teams.models import Team
from tests.conftest import client_for


def make_test(
    team: Team,
    stage: PipelineStage,
    name: str,
    *,
    classname: str = "",
    file: str = "",
    component: str = "",
    **fields,
) -> TrackedTest:
    now = timezone.now()
    fields.setdefault("first_run_at", now - timedelta(days=200))
    fields.setdefault("last_run_at", now - timedelta(days=1))
    fields.setdefault("last_outcome", "passed")
    return TrackedTest.objects.create(
        team=team,
        stage=stage,
        classname=classname,
        name=name,
        file=file,
        component=component,
        key=hashlib.sha256(f"{classname}\0{name}".encode()).hexdigest(),
        **fields,
    )


def day_of(test: TrackedTest, day: date, **counts) -> DailyResult:
    counts.setdefault(
        "runs", counts.get("passes", 0) + counts.get("failures", 0) + counts.get("skips", 0)
    )
    counts.setdefault("commits", 1)
    return DailyResult.objects.create(
        test=test, team=test.team, stage=test.stage, day=day, **counts
    )


def upload(team: Team, stage: PipelineStage) -> ResultUpload:
    return ResultUpload.objects.create(
        team=team, stage=stage, commit="a1", identity="x" * 64, ran_at=timezone.now(), status="done"
    )


@pytest.fixture
def integration(stages) -> PipelineStage:
    return stages[1]


@pytest.fixture
def flaky_escape(escape, integration) -> Escape:
    """The shared escape (component payments, release 10 days ago), Integration, Flakiness."""
    escape.stage = integration
    escape.category = Category.FLAKINESS
    escape.save()
    upload(escape.team, integration)
    return escape


def release_day(escape: Escape) -> date:
    assert escape.release is not None
    return escape.release.released_at.date()


def ids(tests) -> list[str]:
    return [h.test.name for h in tests]


# --- Which tests are the escape's.


def test_the_tests_of_the_escapes_stage_and_component_that_flipped_or_were_skipped(
    flaky_escape, integration, stages, team, other_team
):
    day = release_day(flaky_escape) - timedelta(days=3)
    by_component = make_test(team, integration, "charges", component="PAYMENTS")
    by_classname = make_test(team, integration, "refunds", classname="com.acme.payments.RefundIT")
    by_file = make_test(team, integration, "test_card", file="tests/Payments/test_card.py")
    other_component = make_test(team, integration, "search", classname="com.acme.search.SearchIT")
    other_stage = make_test(team, stages[0], "unit_charges", component="payments")
    failed_only = make_test(team, integration, "failed_only", component="payments")
    green = make_test(team, integration, "green", component="payments")
    for test in (by_component, other_component, other_stage):
        day_of(test, day, passes=3, failures=1, flips=1)
    day_of(by_classname, day, passes=2, failures=1, retries=1, flips=1)
    day_of(by_file, day, skips=4)
    day_of(failed_only, day, failures=3)  # failing for real is not ignoring: not listed
    day_of(green, day, passes=9)
    other_stage_of_other_team = other_team.stages.get(name=integration.name)
    outsider = make_test(other_team, other_stage_of_other_team, "x", component="payments")
    day_of(outsider, day, passes=1, failures=1, flips=1)

    panel = escape_tests.escape_tests(flaky_escape)

    # The most flips first, then the most retries, then quarantined, then the most skips.
    assert ids(panel.tests) == ["refunds", "charges", "test_card"]
    assert [h.reasons for h in panel.tests] == [["flaky", "retried"], ["flaky"], ["skipped"]]
    assert panel.more == 0 and panel.has_uploads and not panel.needs_stage


def test_only_the_weeks_before_the_release_count(flaky_escape, integration, team):
    released = release_day(flaky_escape)
    before = make_test(team, integration, "before", component="payments")
    day_of(before, released - timedelta(days=WINDOW_DAYS + 1), passes=1, failures=1, flips=1)
    after = make_test(team, integration, "after", component="payments")
    day_of(after, released + timedelta(days=1), passes=1, failures=1, flips=1)
    inside = make_test(team, integration, "inside", component="payments")
    day_of(inside, released - timedelta(days=WINDOW_DAYS - 1), passes=1, failures=1, flips=1)

    panel = escape_tests.escape_tests(flaky_escape)

    assert ids(panel.tests) == ["inside"]
    assert panel.window_end == flaky_escape.release.released_at
    assert panel.window_from == f"release {flaky_escape.release.version}"


def test_without_a_release_the_window_ends_at_the_release_time_else_the_detection(
    flaky_escape, integration, team
):
    flaky_escape.release = None
    flaky_escape.released_at = timezone.now() - timedelta(days=40)
    flaky_escape.save()
    test = make_test(team, integration, "old", component="payments")
    day_of(test, (timezone.now() - timedelta(days=45)).date(), passes=1, failures=1, flips=1)

    assert ids(escape_tests.escape_tests(flaky_escape).tests) == ["old"]

    flaky_escape.released_at = None
    flaky_escape.save()
    panel = escape_tests.escape_tests(flaky_escape)
    assert panel.window_end == flaky_escape.detected_at and panel.window_from == "its detection"
    assert panel.tests == []  # 45 days ago is before the 28 days before the detection (8 ago)


def test_quarantined_tests_are_listed_with_why_and_since_when(flaky_escape, integration, team):
    end = flaky_escape.release.released_at
    listed = make_test(team, integration, "listed", component="payments")
    Quarantine.objects.create(test=listed, reason="flaky on CI since the DB upgrade")
    Quarantine.objects.filter(test=listed).update(added_at=end - timedelta(days=60))
    later = make_test(team, integration, "later", component="payments")
    Quarantine.objects.create(test=later, reason="after the release")
    make_test(
        team,
        integration,
        "by_code",
        component="payments",
        skipped_since=end - timedelta(days=90),
        skip_reason="@skip: times out on ARM",
        last_passed_at=end - timedelta(days=91),
    )

    panel = escape_tests.escape_tests(flaky_escape)

    assert sorted(ids(panel.tests)) == ["by_code", "listed"]
    got = {h.test.name: h for h in panel.tests}
    assert got["listed"].quarantine_reason == "flaky on CI since the DB upgrade"
    assert got["listed"].quarantined_since == end - timedelta(days=60)
    assert got["by_code"].quarantine_reason == "@skip: times out on ARM"
    assert got["by_code"].reasons == ["quarantined"]


def test_the_history_counts_every_day_of_the_window(flaky_escape, integration, team):
    released = release_day(flaky_escape)
    test = make_test(team, integration, "checkout", component="payments")
    # A noteworthy day and two plain green days: runs and commits count them all.
    day_of(test, released - timedelta(days=2), passes=3, failures=2, retries=1, flips=2, commits=3)
    day_of(test, released - timedelta(days=3), passes=4, commits=3)
    day_of(test, released - timedelta(days=4), passes=2, commits=2)
    day_of(test, released - timedelta(days=5), skips=1, commits=0)

    (h,) = escape_tests.escape_tests(flaky_escape).tests

    assert (h.runs, h.passes, h.failures, h.retries, h.flips, h.skips) == (12, 9, 2, 1, 2, 1)
    assert h.commits == 8 and h.flakiness == 0.25 and h.flakiness_text == "25 %"


def test_at_most_twenty_tests_the_flakiest_first_and_the_count_of_the_rest(
    flaky_escape, integration, team
):
    day = release_day(flaky_escape) - timedelta(days=1)
    for n in range(PANEL_LIMIT + 5):
        test = make_test(team, integration, f"t{n:02}", component="payments")
        day_of(test, day, passes=n + 1, failures=n + 1, flips=n + 1, commits=n + 1)

    panel = escape_tests.escape_tests(flaky_escape)

    assert len(panel.tests) == PANEL_LIMIT and panel.more == 5
    assert panel.tests[0].test.name == "t24" and panel.tests[-1].test.name == "t05"


def test_without_a_component_every_test_of_the_stage(flaky_escape, integration, team):
    flaky_escape.component = ""
    flaky_escape.save()
    day = release_day(flaky_escape) - timedelta(days=1)
    for name in ("a", "b"):
        day_of(make_test(team, integration, name, component=name), day, skips=1)

    assert sorted(ids(escape_tests.escape_tests(flaky_escape).tests)) == ["a", "b"]


def test_a_like_wildcard_in_the_component_is_taken_literally(flaky_escape, integration, team):
    flaky_escape.component = "pay_%"
    flaky_escape.save()
    day = release_day(flaky_escape) - timedelta(days=1)
    day_of(make_test(team, integration, "literal", file="src/pay_%/x.py"), day, skips=1)
    day_of(make_test(team, integration, "wild", file="src/payXY/x.py"), day, skips=1)

    assert ids(escape_tests.escape_tests(flaky_escape).tests) == ["literal"]


def test_no_stage_asks_for_it(escape):
    panel = escape_tests.escape_tests(escape)
    assert panel.needs_stage and panel.tests == []


# --- The panel's page.


def url(escape: Escape, view: str = "board") -> str:
    return f"/t/{escape.team.slug}/escapes/{escape.pk}/tests/?view={view}"


def test_a_team_without_uploads_is_told_where_to_start(escape, integration, member):
    escape.stage = integration
    escape.save()
    response = client_for(member).get(url(escape), HTTP_HX_REQUEST="true")
    assert response.status_code == 200
    body = response.content.decode()
    assert "No CI test results uploaded yet" in body
    assert 'href="/t/checkout/tests/setup/"' in body
    assert "<html" not in body  # a fragment for htmx


def test_the_panel_shows_the_history_and_offers_to_attach_on_flakiness(
    flaky_escape, integration, team, member, viewer
):
    day = release_day(flaky_escape) - timedelta(days=2)
    test = make_test(
        team,
        integration,
        "test_pay_twice",
        classname="tests.payments.test_api",
        component="payments",
        last_passed_at=datetime(2026, 11, 2, 9, 30, tzinfo=UTC),
    )
    day_of(test, day, passes=3, failures=1, retries=1, flips=1, commits=4)

    body = client_for(member).get(url(flaky_escape), HTTP_HX_REQUEST="true").content.decode()
    assert "tests.payments.test_api::test_pay_twice" in body
    assert "4 runs" in body and "1 failure" in body and "1 flip (25 % flaky)" in body
    assert "1 retry" in body and "0 skips" in body and "last green" in body
    assert f"/tests/{test.pk}/attach/" in body
    assert f'href="/t/{team.slug}/tests/{test.pk}/"' in body, "the name links the test's history"

    seen_by_viewer = client_for(viewer).get(url(flaky_escape), HTTP_HX_REQUEST="true")
    assert "test_pay_twice" in seen_by_viewer.content.decode()
    assert "/attach/" not in seen_by_viewer.content.decode()

    flaky_escape.category = Category.COVERAGE_GAP
    flaky_escape.save()
    body = client_for(member).get(url(flaky_escape), HTTP_HX_REQUEST="true").content.decode()
    assert "/attach/" not in body and "Classify it as Flakiness / False Negative" in body


def test_the_panel_page_without_scripts(flaky_escape, member):
    response = client_for(member).get(f"/t/checkout/escapes/{flaky_escape.pk}/tests/")
    assert response.status_code == 200
    assert "<html" in response.content.decode()


def test_an_outsider_gets_404_and_another_teams_escape_is_none(
    flaky_escape, outsider, member, other_team
):
    assert client_for(outsider).get(url(flaky_escape)).status_code == 404
    theirs = Escape.objects.create(team=other_team, title="x", detected_at=timezone.now())
    assert client_for(member).get(f"/t/checkout/escapes/{theirs.pk}/tests/").status_code == 404


@pytest.mark.django_db
def test_a_fixed_number_of_queries_however_many_tests(
    flaky_escape, integration, team, member, django_assert_max_num_queries
):
    day = release_day(flaky_escape) - timedelta(days=1)
    for n in range(40):
        test = make_test(team, integration, f"t{n}", component="payments")
        day_of(test, day, passes=1, failures=1, flips=1)
        day_of(test, day - timedelta(days=1), passes=5)
        if n % 2:
            Quarantine.objects.create(test=test, reason="noisy")
        if n < 3:
            EscapeTest.objects.create(escape=flaky_escape, test=test)
    client = client_for(member)
    client.get(url(flaky_escape))  # warm: the session, the membership
    # session, user, membership, escape; a savepoint, (PostgreSQL: the planner settings), the
    # candidates, its release; the attached, the tests, their counts.
    with django_assert_max_num_queries(11):
        response = client.get(url(flaky_escape), HTTP_HX_REQUEST="true")
    assert response.content.decode().count('class="escape-test"') == PANEL_LIMIT + 3


# --- Attaching.


def attach_url(escape: Escape, test: TrackedTest, what: str = "attach") -> str:
    return f"/t/{escape.team.slug}/escapes/{escape.pk}/tests/{test.pk}/{what}/"


def test_a_member_attaches_and_detaches_a_test_audited(flaky_escape, integration, team, member):
    test = make_test(team, integration, "test_pay", component="payments")
    client = client_for(member)

    response = client.post(
        attach_url(flaky_escape, test), {"view": "board"}, HTTP_HX_REQUEST="true"
    )

    assert response.status_code == 200
    assert EscapeTest.objects.filter(escape=flaky_escape, test=test, added_by=member).exists()
    assert "Attached:" in response.content.decode() and "Detach" in response.content.decode()
    entry = AuditEntry.objects.get(action=Action.ESCAPE_TEST_ATTACHED)
    assert entry.actor == member and entry.changes["test"] == test.pk and "test_pay" in entry.target

    client.post(attach_url(flaky_escape, test), HTTP_HX_REQUEST="true")  # again: nothing new
    assert EscapeTest.objects.count() == 1
    assert AuditEntry.objects.filter(action=Action.ESCAPE_TEST_ATTACHED).count() == 1

    response = client.post(attach_url(flaky_escape, test, "detach"))
    assert response.status_code == 302  # without scripts: back to the panel's page
    assert not EscapeTest.objects.exists()
    assert AuditEntry.objects.filter(action=Action.ESCAPE_TEST_DETACHED, actor=member).count() == 1


def test_attaching_needs_the_flakiness_category(escape, integration, team, member):
    escape.stage = integration
    escape.category = Category.COVERAGE_GAP
    escape.save()
    test = make_test(team, integration, "test_pay", component="payments")

    response = client_for(member).post(attach_url(escape, test), HTTP_HX_REQUEST="true")

    assert response.status_code == 200
    assert "classified as Flakiness / False Negative" in response.content.decode()
    assert 'role="alert"' in response.content.decode()
    assert (
        not EscapeTest.objects.exists()
        and not AuditEntry.objects.filter(action=Action.ESCAPE_TEST_ATTACHED).exists()
    )


def test_viewers_may_not_attach_and_outsiders_do_not_see(
    flaky_escape, integration, team, other_team, viewer, outsider, member
):
    test = make_test(team, integration, "test_pay", component="payments")
    assert client_for(viewer).post(attach_url(flaky_escape, test)).status_code == 403
    assert client_for(outsider).post(attach_url(flaky_escape, test)).status_code == 404
    theirs = make_test(other_team, other_team.stages.first(), "theirs")
    assert client_for(member).post(attach_url(flaky_escape, theirs)).status_code == 404
    assert client_for(member).get(attach_url(flaky_escape, test)).status_code == 405
    assert not EscapeTest.objects.exists()


def test_another_teams_test_is_refused_by_the_service(flaky_escape, other_team, member):
    theirs = make_test(other_team, other_team.stages.first(), "theirs")
    with pytest.raises(ValidationError):
        escape_test_attach(escape=flaky_escape, test=theirs, by=member)


def test_attaching_tells_every_open_board_of_the_escape(
    flaky_escape,
    integration,
    team,
    facilitator,
    member,
    django_capture_on_commit_callbacks,
    monkeypatch,
):
    open_retro = retro_services.retro_create(
        team=team, facilitator=facilitator, title="Open", escapes=[flaky_escape]
    )
    closed = retro_services.retro_create(
        team=team, facilitator=facilitator, title="Closed", escapes=[flaky_escape]
    )
    Retrospective.objects.filter(pk=closed.pk).update(phase="closed")
    published = []
    monkeypatch.setattr(
        retro_events,
        "publish_version",
        lambda retro_id, version, **kw: published.append((retro_id, version, kw)),
    )
    test = make_test(team, integration, "test_pay", component="payments")
    before = Retrospective.objects.get(pk=open_retro.pk).version

    with django_capture_on_commit_callbacks(execute=True):
        escape_test_attach(escape=flaky_escape, test=test, by=member)
    with django_capture_on_commit_callbacks(execute=True):
        escape_test_detach(escape=flaky_escape, test=test, by=member)

    assert published == [
        (open_retro.pk, before + 1, {"escape_id": flaky_escape.pk, "by": None}),
        (open_retro.pk, before + 2, {"escape_id": flaky_escape.pk, "by": None}),
    ]
    assert Retrospective.objects.get(pk=closed.pk).version == closed.version


# --- Where the panel is loaded.


def test_the_board_the_escape_page_and_the_summary_load_the_panel_by_url(
    flaky_escape, team, facilitator, member
):
    retro = retro_services.retro_create(
        team=team, facilitator=facilitator, title="Retro", escapes=[flaky_escape]
    )
    client = client_for(member)
    panel = f"/t/checkout/escapes/{flaky_escape.pk}/tests/"

    board = client.get(f"/t/checkout/retros/{retro.pk}/").content.decode()
    assert f'hx-get="{panel}?view=board"' in board and 'hx-trigger="intersect once"' in board
    summary = client.get(f"/t/checkout/retros/{retro.pk}/summary/").content.decode()
    assert f'hx-get="{panel}?view=summary"' in summary
    page = client.get(f"/t/checkout/escapes/{flaky_escape.pk}/").content.decode()
    assert f'hx-get="{panel}?view=page"' in page


def test_attached_tests_are_listed_in_the_summary_view_without_controls(
    flaky_escape, integration, team, member
):
    test = make_test(team, integration, "test_pay", component="payments")
    EscapeTest.objects.create(escape=flaky_escape, test=test, added_by=member)
    body = (
        client_for(member)
        .get(url(flaky_escape, "summary"), HTTP_HX_REQUEST="true")
        .content.decode()
    )
    assert "Attached tests" in body and "test_pay" in body
    assert "Detach" not in body and "<form" not in body
