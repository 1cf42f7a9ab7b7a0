"""What the demo team holds, as data: its people, releases, escapes, and the retro's whys and
actions. `demo/seed.py` writes it; every time is relative to a release or to now.
"""

from dataclasses import dataclass, field
from datetime import timedelta

from escapes.models import Category, Severity
from retros.models import ActionKind, RootCauseKind
from teams.models import Role

DEMO_SLUG = "demo"
DEMO_TEAM = "Payments Platform"
DEMO_TIMEZONE = "Europe/Berlin"
# The stricter close: every escape needs a root cause as well as an action. The retro is left
# with one root cause, so closing it shows the refusal for each escape still without one.
DEMO_CLOSE_REQUIRES_ROOT_CAUSE = True
DEMO_PASSWORD = "leakseal-demo"  # noqa: S105 - published demo login, shown on screen
DEMO_USERS = (  # username, role, first name, last name
    ("admin", Role.ADMIN, "Ada", "Admin"),
    ("facilitator", Role.FACILITATOR, "Fatima", "Facilitator"),
    ("engineer", Role.MEMBER, "Erik", "Engineer"),
    ("manager", Role.VIEWER, "Mona", "Manager"),
)
RELEASE_HOUR = 10  # releases ship at 10:00 in the team's time zone, not at 10:07

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


@dataclass(frozen=True, kw_only=True)
class DemoWhy:
    key: str = field(kw_only=False)  # the name a later why of the chain answers it by
    text: str = field(kw_only=False)
    parent: str = ""  # the key of the why this one answers; "" = the first why of a chain
    author: str = "engineer"
    root_cause: str = ""  # a RootCauseKind: this why ends its chain as the root cause


@dataclass(frozen=True, kw_only=True)
class DemoAction:
    title: str = field(kw_only=False)
    escape: str  # the title of the escape it prevents
    kind: str
    stage: str = ""  # stage name; "" = no stage
    description: str = ""
    owner: str
    due_in: timedelta  # from today in the team's time zone


# Release, then escapes: each time relative to its release.
RELEASES: dict[str, tuple[timedelta, dict[str, int]]] = {
    "2026.10.0": (42 * D, {"Unit": 118, "Integration": 41, "E2E": 17}),
    # E2E's count of 2026.11.0 is measured from the demo's CI results (demo/evidence.py).
    "2026.11.0": (14 * D, {"Unit": 131, "Integration": 36}),
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

# The retro of the latest release, half-way through its Five Whys: per escape, its whys in
# the order they were asked. One chain branches, one why is marked as the root cause.
GATEWAY = "Checkout times out when the payment gateway responds slowly"
CURRENCY = "Order confirmation e-mail shows prices in the wrong currency"
QUARANTINED = "Quarantined basket-total test hid a rounding error"

WHYS: dict[str, list[DemoWhy]] = {
    GATEWAY: [
        DemoWhy("w1", "The checkout request gave up after 10 s while the gateway took 12 s."),
        DemoWhy(
            "w2", "Integration tests stub the gateway, and the stub answers instantly.", parent="w1"
        ),
        DemoWhy(
            "w3",
            "The stub has no way to inject latency, so slow answers were never tried.",
            parent="w2",
            root_cause=RootCauseKind.AUTOMATION_SHORTFALL,
        ),
        # The second branch: why was 10 s the limit at all?
        DemoWhy(
            "b2",
            "The 10 s timeout is a library default nobody chose.",
            parent="w1",
            author="facilitator",
        ),
        DemoWhy(
            "b3",
            "Timeouts are not on the review checklist for outbound calls.",
            parent="b2",
            author="facilitator",
        ),
    ],
    CURRENCY: [
        DemoWhy("c1", "The e-mail template formats prices with the server's locale."),
        DemoWhy("c2", "Unit tests only ever run with the en_GB locale.", parent="c1"),
    ],
    QUARANTINED: [
        DemoWhy("q1", "The failing basket-total test had been quarantined for three weeks."),
        DemoWhy(
            "q2",
            "Quarantined tests have no owner and no expiry date.",
            parent="q1",
            author="facilitator",
        ),
    ],
}

ACTIONS: list[DemoAction] = [
    DemoAction(
        "Contract test: payment gateway client under 15 s latency",
        escape=GATEWAY,
        kind=ActionKind.NEW_TEST,
        stage="Integration",
        description="Give the gateway stub latency injection; checkout must wait or retry.",
        owner="engineer",
        due_in=14 * D,
    ),
    DemoAction(
        "Quarantined tests expire after 7 days and page their owner",
        escape=QUARANTINED,
        kind=ActionKind.PROCESS_CHANGE,
        owner="facilitator",
        due_in=21 * D,
    ),
]

# An earlier retro, closed weeks ago, over two October escapes (issue 12, point 6): the new
# retro's board opens with its actions. One was marked done in Leakseal (no tracker is
# connected), which sealed its escape before the November basket-total escape of the same
# component and category was detected: that one shows as a re-escape. The other is overdue.
EARLIER_RETRO_TITLE = "October leaks follow-up"
EARLIER_RETRO_AGO = 30 * D  # created; closed an hour later
COUPON = "Coupon applied twice when the basket page is refreshed"
ACCENTS = "Search results omit products with accented names"


@dataclass(frozen=True, kw_only=True)
class DemoEarlierAction:
    title: str = field(kw_only=False)
    escape: str
    kind: str
    stage: str = ""
    owner: str
    root_cause: str  # the why marked as the escape's root cause
    due_ago: timedelta  # before today: negative is still ahead
    done_ago: timedelta | None = None  # marked done in Leakseal this long ago; None = open
    done_note: str = ""
    done_url: str = ""


EARLIER_ACTIONS: list[DemoEarlierAction] = [
    DemoEarlierAction(
        "Make the basket-refresh test deterministic and take it out of quarantine",
        escape=COUPON,
        kind=ActionKind.FLAKE_FIX,
        stage="E2E",
        owner="engineer",
        root_cause="The refresh test was quarantined as flaky, so nothing checked coupons.",
        due_ago=20 * D,
        done_ago=21 * D,
        done_note="Test waits for the basket event instead of sleeping; back in the suite.",
        done_url="https://ci.demo.leakseal.invalid/pipelines/4180",
    ),
    DemoEarlierAction(
        "Unit tests for search normalisation with accented and composed characters",
        escape=ACCENTS,
        kind=ActionKind.NEW_TEST,
        stage="Unit",
        owner="engineer",
        root_cause="The tokenizer's tests only use ASCII product names.",
        due_ago=6 * D,
    ),
]
