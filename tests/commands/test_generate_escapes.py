from collections import Counter
from datetime import UTC, datetime, timedelta
from io import StringIO
from itertools import pairwise

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db.models import F

from escapes.models import Category, Escape, Release, Severity, StageCatch
from insights.metrics import percentile_cont
from insights.models import EscapeRollup
from retros.models import PreventativeAction
from teams.models import Team
from teams.services import team_create

pytestmark = pytest.mark.django_db

END = "2026-06-30"
END_AT = datetime(2026, 6, 30, 23, 59, 59, 999999, tzinfo=UTC)


def generate(*args: str) -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    call_command("generate_escapes", *args, "--end", END, "--no-rollups", stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def share(part: int, whole: int) -> float:
    return part / whole


# --- Volume and shape --------------------------------------------------------------------


def test_new_teams_get_their_default_stages_and_all_the_escapes_between_them():
    out, _ = generate("--teams", "2", "--escapes", "300", "--seed", "3")

    teams = list(Team.objects.order_by("slug"))
    assert [t.slug for t in teams] == ["gen-001", "gen-002"]
    assert teams[0].timezone != teams[1].timezone
    for team in teams:
        assert list(team.stages.values_list("name", flat=True)) == ["Unit", "Integration", "E2E"]
    assert Escape.objects.count() == 300
    assert "Generated 300 escapes in 2 team(s)" in out
    assert "seed 3" in out


def test_escapes_are_spread_unevenly_over_the_teams():
    generate("--teams", "6", "--escapes", "1200", "--seed", "4")

    per_team = Counter(Escape.objects.values_list("team__slug", flat=True))
    assert sum(per_team.values()) == 1200
    assert max(per_team.values()) > 1.5 * min(per_team.values())


def test_every_team_ships_weekly_over_the_years():
    generate("--teams", "2", "--escapes", "300", "--seed", "3", "--years", "3")

    for team in Team.objects.all():
        releases = list(team.releases.order_by("released_at"))
        # 156 weeks less the December freezes and a few skipped weeks.
        assert 130 <= len(releases) <= 157
        gaps = {(b.released_at - a.released_at).days for a, b in pairwise(releases)}
        assert min(gaps) >= 6
        assert releases[-1].released_at <= END_AT
        assert releases[0].released_at >= END_AT - timedelta(days=3 * 366 + 7)


def test_detections_spread_over_the_years_and_mostly_on_working_days():
    generate("--teams", "2", "--escapes", "3000", "--seed", "5", "--years", "3")

    escapes = list(Escape.objects.select_related("team"))
    assert max(e.detected_at for e in escapes) <= END_AT
    years_back = Counter(min(2, (END_AT - e.detected_at).days // 365) for e in escapes)
    for year in (0, 1, 2):
        assert share(years_back[year], len(escapes)) > 0.15
    weekend = sum(1 for e in escapes if e.detected_at.astimezone(e.team.tzinfo).weekday() >= 5)
    # Uniform would be 2/7 = 29 %; weekend finds mostly wait for Monday.
    assert share(weekend, len(escapes)) < 0.15


def test_data_problems_come_in_realistic_shares():
    generate("--teams", "2", "--escapes", "5000", "--seed", "6")

    total = Escape.objects.count()
    no_merge = Escape.objects.filter(merged_at__isnull=True).count()
    negative = Escape.objects.filter(merged_at__gt=F("detected_at")).count()
    before_release = Escape.objects.filter(released_at__gt=F("detected_at")).count()
    assert 0.06 < share(no_merge, total) < 0.10
    assert 0.001 < share(negative, total) < 0.012
    assert 0.0004 < share(before_release, total) < 0.008


def test_detection_deficit_runs_from_hours_to_weeks_with_a_long_tail():
    generate("--teams", "2", "--escapes", "3000", "--seed", "7")

    deficits = sorted(
        e.detection_deficit
        for e in Escape.objects.filter(merged_at__lte=F("detected_at"))
        if e.detection_deficit is not None
    )
    median = percentile_cont(deficits, 0.5)
    p90 = percentile_cont(deficits, 0.9)
    assert timedelta(hours=12) < median < timedelta(days=10)
    assert p90 > 2.5 * median
    assert deficits[len(deficits) // 50] < timedelta(hours=24)  # the fastest 2 %: hours
    assert p90 > timedelta(days=10)  # the slowest 10 %: weeks


def test_classification_is_skewed_and_each_team_has_5_to_15_components():
    generate("--teams", "3", "--escapes", "3000", "--seed", "8")

    severities = Counter(Escape.objects.values_list("severity", flat=True))
    assert severities[Severity.CRITICAL] < severities[Severity.MEDIUM] / 3
    categories = Counter(Escape.objects.values_list("category", flat=True))
    assert set(categories) == {*Category.values, ""}
    assert max(categories.values()) > 1.5 * min(categories.values())
    for team in Team.objects.all():
        components = set(team.escapes.values_list("component", flat=True))
        assert 5 <= len(components) <= 15
        stages = Counter(team.escapes.values_list("stage__name", flat=True))
        assert stages.most_common(1)[0][1] > 1.5 * min(stages.values())


def test_most_releases_report_what_each_stage_caught():
    generate("--teams", "2", "--escapes", "300", "--seed", "9")

    releases = Release.objects.count()
    with_catches = Release.objects.filter(stage_catches__isnull=False).distinct().count()
    assert 0.75 < share(with_catches, releases) < 0.95
    per_release = Counter(StageCatch.objects.values_list("release_id", flat=True))
    assert set(per_release.values()) == {3}  # every stage of the team, once
    for catch in StageCatch.objects.all():
        assert catch.release.team_id == catch.stage.team_id


def test_sealed_escapes_have_a_done_action_and_some_actions_are_overdue():
    generate("--teams", "2", "--escapes", "3000", "--seed", "10")

    sealed = Escape.objects.filter(sealed_at__isnull=False)
    assert 0.03 < share(sealed.count(), Escape.objects.count()) < 0.4
    for escape in sealed.prefetch_related("actions"):
        assert [a.done_at for a in escape.actions.all()] == [escape.sealed_at]
    actions = PreventativeAction.objects.select_related("escape", "retro")
    overdue = actions.filter(done_at__isnull=True, due_date__lt=END_AT.date())
    assert overdue.exists()
    for action in actions:
        assert action.retro.team_id == action.escape.team_id
        assert action.escape.resolved_at is not None
        assert action.created_at >= action.escape.resolved_at
        assert action.created_at.year < 2026 or action.created_at <= END_AT


def test_times_keep_their_history_instead_of_today():
    generate("--teams", "1", "--escapes", "200", "--seed", "11")

    escape = Escape.objects.order_by("detected_at").first()
    assert escape is not None
    assert escape.detected_at < escape.created_at < escape.detected_at + timedelta(hours=5)


def test_the_progress_bar_goes_to_stderr():
    out, err = generate("--teams", "1", "--escapes", "300", "--seed", "12")

    assert "100% 300/300 escapes" in err
    assert "%" not in out.split("in 1 team(s)")[0]


def test_rollups_are_skipped_when_asked():
    out, _ = generate("--teams", "1", "--escapes", "10", "--seed", "13")

    assert "rollups: skipped (--no-rollups)" in out
    assert not EscapeRollup.objects.exists()


def test_the_rollups_are_recomputed_at_the_end():
    out = StringIO()
    call_command(
        "generate_escapes", "--teams", "2", "--escapes", "400", "--seed", "13", "--end", END,
        stdout=out, stderr=StringIO(),
    )  # fmt: skip

    rollups = EscapeRollup.objects.all()
    assert {r.team.slug for r in rollups} == {"gen-001", "gen-002"}
    assert sum(r.escapes for r in rollups) == 400
    assert f"rollups: {rollups.count()} months written in" in out.getvalue()


# --- Determinism and --into --------------------------------------------------------------


def escape_rows(team: Team) -> list[tuple[object, ...]]:
    return list(
        team.escapes.order_by("detected_at", "title").values_list(
            "title", "merged_at", "released_at", "detected_at", "resolved_at", "sealed_at",
            "category", "stage__name", "severity", "component", "release__version", "source",
        )
    )  # fmt: skip


def test_the_same_seed_gives_the_same_data_and_another_seed_other_data():
    first = team_create(name="A", slug="a", timezone_name="Europe/Berlin")
    second = team_create(name="B", slug="b", timezone_name="Europe/Berlin")
    third = team_create(name="C", slug="c", timezone_name="Europe/Berlin")

    generate("--into", "a", "--escapes", "400", "--seed", "42")
    generate("--into", "b", "--escapes", "400", "--seed", "42")
    generate("--into", "c", "--escapes", "400", "--seed", "43")

    assert escape_rows(first) == escape_rows(second)
    assert escape_rows(first) != escape_rows(third)
    catches = [
        list(
            StageCatch.objects.filter(release__team=t)
            .order_by("release__released_at", "stage__position")
            .values_list("release__version", "stage__name", "caught")
        )
        for t in (first, second)
    ]
    assert catches[0] == catches[1]


def test_into_adds_to_an_existing_team_and_keeps_what_it_had(team, escape):
    release = Release.objects.create(team=team, version="2026.10.0", released_at=END_AT)

    out, _ = generate("--into", "checkout", "--escapes", "250", "--seed", "14", "--years", "1")

    assert Team.objects.count() == 1
    assert team.escapes.count() == 251
    assert Escape.objects.filter(pk=escape.pk).exists()
    versions = list(team.releases.values_list("version", flat=True))
    assert len(versions) == len(set(versions))
    assert Release.objects.filter(pk=release.pk).exists()
    assert "Generated 250 escapes in 1 team(s)" in out


def test_zero_escapes_still_makes_the_teams_and_their_releases():
    generate("--teams", "2", "--escapes", "0", "--seed", "15")

    assert Team.objects.count() == 2
    assert Release.objects.exists()
    assert not Escape.objects.exists()


# --- Bad arguments -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--escapes", "10"], r"Give either --teams N \(new teams\) or --into SLUG"),
        (["--teams", "2", "--into", "x", "--escapes", "1"], "Give either --teams N"),
        (["--teams", "0", "--escapes", "10"], "Give either --teams N"),
        (["--teams", "-3", "--escapes", "10"], "--teams must be between 1 and 999, got -3"),
        (["--teams", "1000", "--escapes", "10"], "--teams must be between 1 and 999"),
        (["--teams", "2"], "--escapes M is required"),
        (["--teams", "2", "--escapes", "-1"], "--escapes must be between 0 and 10,000,000"),
        (["--teams", "2", "--escapes", "5", "--years", "0"], "--years must be between 1 and 20"),
        (["--teams", "2", "--escapes", "5", "--batch", "0"], "--batch must be between"),
        (["--into", "nowhere", "--escapes", "5"], "Unknown team 'nowhere'"),
    ],
)
def test_bad_arguments_are_refused_with_a_clear_message(args, message):
    with pytest.raises(CommandError, match=message):
        generate(*args)
    assert not Escape.objects.exists()
    assert not Team.objects.exists()


def test_an_end_in_the_future_or_not_a_date_is_refused():
    with pytest.raises(CommandError, match="--end is in the future"):
        call_command("generate_escapes", "--teams", "1", "--escapes", "5", "--end", "2999-01-01")
    with pytest.raises(CommandError, match="argument --end: 'soon' is not an ISO date"):
        call_command("generate_escapes", "--teams", "1", "--escapes", "5", "--end", "soon")


def test_generated_teams_are_not_generated_twice():
    generate("--teams", "1", "--escapes", "5", "--seed", "1")

    with pytest.raises(CommandError, match="Team gen-001 already exists; use --into gen-001"):
        generate("--teams", "2", "--escapes", "5", "--seed", "1")
    assert Team.objects.count() == 1
