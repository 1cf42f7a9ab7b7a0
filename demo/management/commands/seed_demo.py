"""`manage.py seed_demo`: the "Payments Platform" demo team that `make run` opens on.

Idempotent: if the team "demo" exists it changes nothing. Everything else is written in one
transaction through the same services the pages use, so the demo obeys every rule a user's
data does. Times are relative to now so the dashboards always have recent data.
"""

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.contrib.auth.models import User
from django.core.management.base import BaseCommand
from django.db import transaction
from django.utils import timezone

from escapes.models import Category, Escape, PipelineStage, Release, Severity, Source
from escapes.services import escape_create, release_create, stage_catches_report
from retros import services as retro_services
from retros.models import ActionKind, Phase, RootCauseKind
from teams.models import Role, Team
from teams.services import membership_set, team_create

DEMO_SLUG = "demo"
DEMO_PASSWORD = "leakseal-demo"  # noqa: S105 - published demo login, shown on screen
DEMO_USERS = (  # username, role, first name, last name
    ("admin", Role.ADMIN, "Ada", "Admin"),
    ("facilitator", Role.FACILITATOR, "Fatima", "Facilitator"),
    ("engineer", Role.MEMBER, "Erik", "Engineer"),
    ("manager", Role.VIEWER, "Mona", "Manager"),
)

H = timedelta(hours=1)
D = timedelta(days=1)


@dataclass(frozen=True, kw_only=True)
class DemoEscape:
    title: str = field(kw_only=False)
    component: str
    severity: str
    category: str = ""  # "" = not yet classified
    stage: str = ""  # stage name; "" = not yet attributed
    merged_before: timedelta | None  # before the release; None = merge time unknown
    detected_after: timedelta  # after the release
    resolved_after: timedelta | None = None  # after detection; None = still open
    tracker_key: str = ""
    description: str = ""


# Release, then escapes: each time relative to its release.
RELEASES: dict[str, tuple[timedelta, dict[str, int]]] = {
    "2026.10.0": (42 * D, {"Unit": 118, "Integration": 41, "E2E": 17}),
    "2026.11.0": (14 * D, {"Unit": 131, "Integration": 36, "E2E": 22}),
}

ESCAPES: dict[str, list[DemoEscape]] = {
    "2026.10.0": [
        DemoEscape(
            "Card payments declined for 3-D Secure v2 challenges",
            component="payments",
            severity=Severity.CRITICAL,
            category=Category.COVERAGE_GAP,
            stage="Integration",
            merged_before=3 * D + 4 * H,
            detected_after=6 * H,
            resolved_after=20 * H,
            tracker_key="PAY-1412",
            description="Issuers that force a 3DS2 challenge got a decline; "
            "the sandbox never challenges.",
        ),
        DemoEscape(
            "Search results omit products with accented names",
            component="search",
            severity=Severity.MEDIUM,
            category=Category.COVERAGE_GAP,
            stage="Unit",
            merged_before=5 * D + 6 * H,
            detected_after=4 * D + 5 * H,
            resolved_after=5 * D,
            tracker_key="SRCH-377",
        ),
        DemoEscape(
            "Session lost after SSO redirect in Safari",
            component="auth",
            severity=Severity.HIGH,
            category=Category.ENVIRONMENT_MISMATCH,
            stage="E2E",
            merged_before=2 * D,
            detected_after=1 * D + 2 * H,
            resolved_after=2 * D,
            tracker_key="AUTH-208",
            description="Staging serves everything from one domain, "
            "so the SameSite cookie problem never shows there.",
        ),
        DemoEscape(
            "Coupon applied twice when the basket page is refreshed",
            component="checkout",
            severity=Severity.HIGH,
            category=Category.FLAKINESS,
            stage="E2E",
            merged_before=36 * H,
            detected_after=2 * D + 7 * H,
            resolved_after=2 * D,
            tracker_key="CHK-903",
        ),
        DemoEscape(
            "Refund webhook retries create duplicate ledger entries",
            component="payments",
            severity=Severity.HIGH,
            category=Category.FLAKINESS,
            stage="Integration",
            merged_before=4 * D,
            detected_after=10 * D + 3 * H,
            resolved_after=2 * D,
            tracker_key="PAY-1460",
        ),
    ],
    "2026.11.0": [
        DemoEscape(
            "Checkout times out when the payment gateway responds slowly",
            component="checkout",
            severity=Severity.CRITICAL,
            category=Category.ENVIRONMENT_MISMATCH,
            stage="Integration",
            merged_before=2 * D,
            detected_after=3 * H,
            resolved_after=17 * H,
            tracker_key="CHK-951",
            description="Gateway p99 latency rose to 12 s; "
            "our client gave up at 10 s and showed an error.",
        ),
        DemoEscape(
            "Order confirmation e-mail shows prices in the wrong currency",
            component="checkout",
            severity=Severity.MEDIUM,
            category=Category.COVERAGE_GAP,
            stage="Unit",
            merged_before=6 * D + 3 * H,
            detected_after=2 * D + 6 * H,
            tracker_key="CHK-957",
        ),
        DemoEscape(
            "Search autocomplete returns 500 for queries with emoji",
            component="search",
            severity=Severity.HIGH,
            category=Category.COVERAGE_GAP,
            stage="Unit",
            merged_before=1 * D,
            detected_after=5 * H,
            resolved_after=1 * D,
            tracker_key="SRCH-402",
        ),
        DemoEscape(
            "Password reset link expires at once for users east of UTC",
            component="auth",
            severity=Severity.HIGH,
            merged_before=3 * D,
            detected_after=4 * D + 1 * H,
            tracker_key="AUTH-231",
        ),
        DemoEscape(
            "Saved cards missing after the payments database migration",
            component="payments",
            severity=Severity.HIGH,
            category=Category.ENVIRONMENT_MISMATCH,
            stage="E2E",
            merged_before=None,
            detected_after=1 * D + 4 * H,
            resolved_after=1 * D,
            tracker_key="PAY-1498",
            description="Merged long ago behind a flag; nobody knows when the change went in.",
        ),
        DemoEscape(
            "Quarantined basket-total test hid a rounding error",
            component="checkout",
            severity=Severity.MEDIUM,
            category=Category.FLAKINESS,
            stage="E2E",
            merged_before=4 * D + 5 * H,
            detected_after=6 * D + 2 * H,
            tracker_key="CHK-966",
        ),
        DemoEscape(
            "Login rate limiter locks out a whole office behind one NAT",
            component="auth",
            severity=Severity.MEDIUM,
            merged_before=2 * D,
            detected_after=8 * D + 5 * H,
            tracker_key="AUTH-240",
        ),
    ],
}


class Command(BaseCommand):
    help = "Load the demo team (slug 'demo') with releases, escapes and a retro in progress."

    def handle(self, *args: Any, **options: Any) -> None:
        if Team.objects.filter(slug=DEMO_SLUG).exists():
            self.stdout.write("demo data already present")
            return
        with transaction.atomic():
            users = _users()
            team = team_create(
                name="Payments Platform", slug=DEMO_SLUG, timezone_name="Europe/Berlin"
            )
            for username, role, *_ in DEMO_USERS:
                membership_set(team=team, user=users[username], role=role)
            latest, escapes = _releases_and_escapes(team, users["engineer"])
            _retro(team, latest, escapes, users)
        self.stdout.write(self.style.SUCCESS("Demo team “Payments Platform” loaded (slug demo)."))
        self.stdout.write("Sign in with any of these (password: leakseal-demo):")
        for username, role, *_ in DEMO_USERS:
            extra = ", Django superuser" if username == "admin" else ""
            self.stdout.write(f"  {username:<12} {role}{extra}")


def _users() -> dict[str, User]:
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


def _local_hour(moment: datetime, team: Team, hour: int) -> datetime:
    """`moment`'s day at a round hour in the team's time zone: releases ship at 10:00, not 10:07."""
    local = timezone.localtime(moment, team.tzinfo)
    return local.replace(hour=hour, minute=0, second=0, microsecond=0)


def _releases_and_escapes(team: Team, reporter: User) -> tuple[Release, list[Escape]]:
    stages = {s.name: s for s in team.stages.all()}
    now = timezone.now()
    latest: Release | None = None
    latest_escapes: list[Escape] = []
    for version, (ago, caught) in RELEASES.items():
        release = release_create(
            team=team, version=version, released_at=_local_hour(now - ago, team, 10)
        )
        stage_catches_report(release=release, counts={stages[n]: c for n, c in caught.items()})
        created = [_escape(team, release, stages, item, reporter) for item in ESCAPES[version]]
        if latest is None or release.released_at > latest.released_at:
            latest, latest_escapes = release, created
    assert latest is not None
    return latest, latest_escapes


def _escape(
    team: Team,
    release: Release,
    stages: dict[str, PipelineStage],
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


def _retro(team: Team, release: Release, escapes: list[Escape], users: dict[str, User]) -> None:
    """A retro of the latest release, in its Five Whys phase, as if half-way through."""
    facilitator, engineer = users["facilitator"], users["engineer"]
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
    by_title = {e.title: e for e in escapes}
    stages = {s.name: s for s in team.stages.all()}

    def why(escape: Escape, text: str, parent: Any = None, author: User = engineer) -> Any:
        return retro_services.why_add(
            retro=retro, escape=escape, parent=parent, text=text, author=author
        )

    gateway = by_title["Checkout times out when the payment gateway responds slowly"]
    w1 = why(gateway, "The checkout request gave up after 10 s while the gateway took 12 s.")
    w2 = why(gateway, "Integration tests stub the gateway, and the stub answers instantly.", w1)
    w3 = why(
        gateway, "The stub has no way to inject latency, so slow answers were never tried.", w2
    )
    retro_services.why_mark_root_cause(why=w3, kind=RootCauseKind.AUTOMATION_SHORTFALL)
    # The second branch: why was 10 s the limit at all?
    b2 = why(gateway, "The 10 s timeout is a library default nobody chose.", w1, facilitator)
    why(gateway, "Timeouts are not on the review checklist for outbound calls.", b2, facilitator)

    currency = by_title["Order confirmation e-mail shows prices in the wrong currency"]
    c1 = why(currency, "The e-mail template formats prices with the server's locale.")
    why(currency, "Unit tests only ever run with the en_GB locale.", c1)

    quarantined = by_title["Quarantined basket-total test hid a rounding error"]
    q1 = why(quarantined, "The failing basket-total test had been quarantined for three weeks.")
    why(quarantined, "Quarantined tests have no owner and no expiry date.", q1, facilitator)

    retro_services.action_add(
        retro=retro,
        escape=gateway,
        kind=ActionKind.NEW_TEST,
        stage=stages["Integration"],
        title="Contract test: payment gateway client under 15 s latency",
        description="Give the gateway stub latency injection; checkout must wait or retry.",
        owner=engineer,
        due_date=timezone.localdate(timezone=team.tzinfo) + timedelta(days=14),
        created_by=facilitator,
    )
    retro_services.action_add(
        retro=retro,
        escape=quarantined,
        kind=ActionKind.PROCESS_CHANGE,
        stage=None,
        title="Quarantined tests expire after 7 days and page their owner",
        owner=facilitator,
        due_date=timezone.localdate(timezone=team.tzinfo) + timedelta(days=21),
        created_by=facilitator,
    )
