"""The numbers that make the generated volume look like a busy organisation (see __init__)."""

from datetime import timedelta

from escapes.models import Category, Severity, Source
from retros.models import ActionKind

H = timedelta(hours=1)
D = timedelta(days=1)
TEAM_PREFIX = "gen"
FACILITATOR = "generate-escapes"  # the retros' facilitator; an account nobody can sign in to
MAX_TEAMS = 999
MAX_ESCAPES = 10_000_000
MAX_YEARS = 20
MAX_BATCH = 100_000

TIMEZONES = (
    "Europe/Berlin",
    "America/New_York",
    "Asia/Kolkata",
    "UTC",
    "America/Los_Angeles",
    "Europe/London",
    "Asia/Tokyo",
    "Australia/Sydney",
    "America/Sao_Paulo",
    "Europe/Warsaw",
)
COMPONENTS = (
    "checkout", "payments", "search", "auth", "catalog", "cart", "notifications", "billing",
    "accounts", "pricing", "inventory", "shipping", "reporting", "api-gateway", "mobile-app",
    "admin", "recommendations", "orders", "ledger", "onboarding", "media", "i18n",
)  # fmt: skip
FAULTS = (
    "timeout under load",
    "wrong currency rounding",
    "500 on empty input",
    "stale cache after deploy",
    "race between two writers",
    "time-zone off by one day",
    "missing translation key",
    "retry creates duplicates",
    "permission check skipped",
    "pagination drops the last item",
    "crash on older clients",
    "config differs from staging",
    "flaky alert silenced",
    "memory leak in worker",
    "wrong default after migration",
)
SEVERITY_WEIGHTS: dict[str, float] = {
    Severity.LOW: 30,
    Severity.MEDIUM: 42,
    Severity.HIGH: 22,
    Severity.CRITICAL: 6,
}
CATEGORY_WEIGHTS: dict[str, float] = {
    Category.COVERAGE_GAP: 50,
    Category.ENVIRONMENT_MISMATCH: 28,
    Category.FLAKINESS: 22,
}
SOURCE_WEIGHTS: dict[str, float] = {
    Source.API: 45,
    Source.JIRA: 25,
    Source.FORM: 15,
    Source.CSV: 10,
    Source.AZURE_DEVOPS: 5,
}
ACTION_KINDS: dict[str, str] = {
    Category.COVERAGE_GAP: ActionKind.NEW_TEST,
    Category.ENVIRONMENT_MISMATCH: ActionKind.ENVIRONMENT_PARITY,
    Category.FLAKINESS: ActionKind.FLAKE_FIX,
}
# Retros are held for the escapes that hurt; the share of each severity that gets an action.
RETRO_SHARE: dict[str, float] = {
    Severity.CRITICAL: 0.8,
    Severity.HIGH: 0.4,
    Severity.MEDIUM: 0.12,
    Severity.LOW: 0.05,
}

SHARE_NO_MERGE = 0.08
SHARE_NEGATIVE = 0.005
SHARE_BEFORE_RELEASE = 0.003
SHARE_RELEASES_WITH_CATCHES = 0.85
SHARE_PUSHED = 0.88  # actions whose ticket reached the tracker; the rest draft or failed
RECENT = 21 * D  # younger escapes are often not yet classified in a retro
