"""`seed()`: the "Payments Platform" demo team that `make run` opens on (`manage.py seed_demo`).

Idempotent: if the team "demo" exists it changes nothing. Everything else is written in one
transaction through the same services the pages use, so the demo obeys every rule a user's
data does. Times are relative to now so the dashboards always have recent data. What the team
holds is data, in `demo/seed_data.py`; this module is the steps that write it.
"""

from datetime import datetime, timedelta

from django.contrib.auth.models import User
from django.db import transaction
from django.utils import timezone

from demo.evidence import test_results_send
from demo.seed_data import (
    ACTIONS,
    DEMO_CLOSE_REQUIRES_ROOT_CAUSE,
    DEMO_PASSWORD,
    DEMO_SLUG,
    DEMO_TEAM,
    DEMO_TIMEZONE,
    DEMO_USERS,
    EARLIER_ACTIONS,
    EARLIER_RETRO_AGO,
    EARLIER_RETRO_TITLE,
    ESCAPES,
    RELEASE_HOUR,
    RELEASES,
    WHYS,
    DemoEscape,
)
from escapes.models import Escape, PipelineStage, Release, Source
from escapes.selectors import escapes_of_team
from escapes.services import escape_create, escape_seal, release_create, stage_catches_report
from retros import follow_through
from retros import services as retro_services
from retros.models import Phase, PreventativeAction, Retrospective, Why
from teams.models import Team
from teams.selectors import teams_all
from teams.services import membership_set, team_close_rule_set, team_create

Users = dict[str, User]
Stages = dict[str, PipelineStage]


def seed() -> bool:
    """Load the demo team; False, and nothing written, when the team is already there."""
    if teams_all().filter(slug=DEMO_SLUG).exists():
        return False
    with transaction.atomic():
        users = users_get_or_create()
        team = team_with_members(users)
        stages = stages_of(team)
        latest, escapes = releases_and_escapes(team, stages, reporter=users["engineer"])
        test_results_send(team, stages, by=users["engineer"])
        earlier_retro_closed(team, stages, users)
        retro = retro_in_five_whys(team, latest, facilitator=users["facilitator"])
        whys_ask(retro, escapes, users)
        actions_agree(retro, team, stages, escapes, users)
    return True


def users_get_or_create() -> Users:
    """The demo logins; an existing user of the same name is reused as it is."""
    users = {}
    for username, _role, first, last in DEMO_USERS:
        user = User.objects.filter(username=username).first()
        if user is None:
            user = User(username=username, first_name=first, last_name=last)
            user.email = f"{username}@demo.leakseal.invalid"
            user.is_staff = user.is_superuser = username == "admin"
            user.set_password(DEMO_PASSWORD)
            user.save()
        users[username] = user
    return users


def team_with_members(users: Users) -> Team:
    team = team_create(name=DEMO_TEAM, slug=DEMO_SLUG, timezone_name=DEMO_TIMEZONE)
    # Said here rather than left to the default, so the demo shows the stricter close even if
    # new teams someday start lenient.
    team_close_rule_set(team=team, requires_root_cause=DEMO_CLOSE_REQUIRES_ROOT_CAUSE)
    for username, role, *_ in DEMO_USERS:
        membership_set(team=team, user=users[username], role=role)
    return team


def stages_of(team: Team) -> Stages:
    """The team's default stages (Unit, Integration, E2E), which team_create gave it."""
    return {s.name: s for s in team.stages.all()}


def releases_and_escapes(
    team: Team, stages: Stages, *, reporter: User
) -> tuple[Release, list[Escape]]:
    """Each release with what its stages caught and the escapes found after it; returns the
    latest release and its escapes, which the retro is about."""
    now = timezone.now()
    made = []
    for version, (ago, caught) in RELEASES.items():
        released_at = _local_hour(now - ago, team, RELEASE_HOUR)
        release = release_create(team=team, version=version, released_at=released_at)
        stage_catches_report(release=release, counts={stages[n]: c for n, c in caught.items()})
        escapes = [_escape(team, release, stages, item, reporter) for item in ESCAPES[version]]
        made.append((release, escapes))
    return max(made, key=lambda pair: pair[0].released_at)


def retro_in_five_whys(team: Team, release: Release, *, facilitator: User) -> Retrospective:
    """A retro of the release, moved on to its Five Whys phase, as if half-way through."""
    retro = retro_services.retro_create(
        team=team,
        facilitator=facilitator,
        title=f"Release {release.version} retro",
        release=release,
    )
    for current, following in ((Phase.GATHER, Phase.CATEGORIZE), (Phase.CATEGORIZE, Phase.WHYS)):
        retro = retro_services.retro_advance(
            retro=retro, expected_phase=current, to_phase=following
        )
    return retro


def whys_ask(retro: Retrospective, escapes: list[Escape], users: Users) -> None:
    """The whys of WHYS, chain by chain; a root cause is marked as soon as it is asked."""
    by_title = {e.title: e for e in escapes}
    for title, chain in WHYS.items():
        asked: dict[str, Why] = {}
        for item in chain:
            why = retro_services.why_add(
                retro=retro,
                escape=by_title[title],
                parent=asked[item.parent] if item.parent else None,
                text=item.text,
                author=users[item.author],
            )
            if item.root_cause:
                retro_services.why_mark_root_cause(why=why, kind=item.root_cause)
            asked[item.key] = why


def actions_agree(
    retro: Retrospective, team: Team, stages: Stages, escapes: list[Escape], users: Users
) -> None:
    """The preventative actions of ACTIONS, written down by the facilitator."""
    by_title = {e.title: e for e in escapes}
    for item in ACTIONS:
        retro_services.action_add(
            retro=retro,
            escape=by_title[item.escape],
            kind=item.kind,
            stage=stages[item.stage] if item.stage else None,
            title=item.title,
            description=item.description,
            owner=users[item.owner],
            due_date=timezone.localdate(timezone=team.tzinfo) + item.due_in,
            created_by=users["facilitator"],
        )


def earlier_retro_closed(team: Team, stages: Stages, users: Users) -> Retrospective:
    """EARLIER_RETRO: closed through the services, one action marked done in Leakseal, then
    dated back to when it happened.

    The back-dating is the one write around the services (tests/test_architecture.py allows
    it): no service sets a past due date or a past creation time, and history needs both.
    """
    by_title = {e.title: e for e in escapes_of_team(team.pk)}
    chosen = [by_title[item.escape] for item in EARLIER_ACTIONS]
    facilitator = users["facilitator"]
    retro = retro_services.retro_create(
        team=team, facilitator=facilitator, title=EARLIER_RETRO_TITLE, escapes=chosen
    )
    for current, following in zip(Phase.values[:3], Phase.values[1:4], strict=True):
        retro = retro_services.retro_advance(
            retro=retro, expected_phase=current, to_phase=following
        )
    made: list[tuple[PreventativeAction, Escape]] = []
    for item, escape in zip(EARLIER_ACTIONS, chosen, strict=True):
        why = retro_services.why_add(
            retro=retro, escape=escape, text=item.root_cause, author=users["engineer"]
        )
        retro_services.why_mark_root_cause(why=why, kind="automation_shortfall")
        action = retro_services.action_add(
            retro=retro,
            escape=escape,
            kind=item.kind,
            stage=stages[item.stage] if item.stage else None,
            title=item.title,
            owner=users[item.owner],
            created_by=facilitator,
        )
        made.append((action, escape))
    retro_services.retro_close(retro=retro, by=facilitator)
    now = timezone.now()
    today = timezone.localdate(timezone=team.tzinfo)
    created = now - EARLIER_RETRO_AGO
    Retrospective.objects.filter(pk=retro.pk).update(
        created_at=created, closed_at=created + timedelta(hours=1)
    )
    for item, (action, escape) in zip(EARLIER_ACTIONS, made, strict=True):
        PreventativeAction.objects.filter(pk=action.pk).update(
            created_at=created, due_date=today - item.due_ago
        )
        if item.done_ago is None:
            continue
        done_at = now - item.done_ago
        escape_seal(escape=escape, at=done_at)  # sealed then; marking done keeps that time
        follow_through.action_mark_done(
            action=action, by=users[item.owner], note=item.done_note, url=item.done_url
        )
        PreventativeAction.objects.filter(pk=action.pk).update(done_at=done_at)
    return retro


def _local_hour(moment: datetime, team: Team, hour: int) -> datetime:
    """`moment`'s day at a round hour in the team's time zone."""
    local = timezone.localtime(moment, team.tzinfo)
    return local.replace(hour=hour, minute=0, second=0, microsecond=0)


def _escape(
    team: Team,
    release: Release,
    stages: Stages,
    item: DemoEscape,
    reporter: User,
) -> Escape:
    detected = release.released_at + item.detected_after
    data = {
        "title": item.title,
        "description": item.description,
        "component": item.component,
        "severity": item.severity,
        "category": item.category,
        "stage": stages[item.stage] if item.stage else None,
        "release": release,
        "merged_at": None
        if item.merged_before is None
        else release.released_at - item.merged_before,
        "detected_at": detected,
        "resolved_at": None if item.resolved_after is None else detected + item.resolved_after,
        "tracker_key": item.tracker_key,
    }
    return escape_create(team=team, data=data, source=Source.FORM, created_by=reporter)
