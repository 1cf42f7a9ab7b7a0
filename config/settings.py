"""Leakseal settings: one module, driven by the environment.

Unset, everything falls back to the embedded default (SQLite, a file-system broker,
DEBUG on). Production sets DEBUG=0, SECRET_KEY, ALLOWED_HOSTS, DATABASE_URL and REDIS_URL.
"""

import os
from datetime import timedelta
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured
from django.utils.csp import CSP

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("LEAKSEAL_VAR_DIR", BASE_DIR / "var"))


def envbool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    if value.lower() in {"1", "true", "yes", "on"}:
        return True
    if value.lower() in {"0", "false", "no", "off"}:
        return False
    raise ImproperlyConfigured(f"{name} must be a boolean (1/0, true/false), got {value!r}")


def envint(name: str, default: int) -> int:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    try:
        return int(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be an integer, got {value!r}") from None


def envlist(name: str, default: str) -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


DEBUG = envbool("DEBUG", True)
_DEV_SECRET_KEY = "django-insecure-leakseal-development-only"  # noqa: S105
SECRET_KEY = os.environ.get("SECRET_KEY") or _DEV_SECRET_KEY
if not DEBUG and SECRET_KEY == _DEV_SECRET_KEY:
    raise ImproperlyConfigured("SECRET_KEY must be set when DEBUG is off")

# Tracker credentials are encrypted with these Fernet keys (comma-separated, newest first;
# `python manage.py rotate_credentials` re-encrypts everything with the first). Without any,
# a development key is derived from SECRET_KEY, which DEBUG=0 refuses.
CREDENTIAL_KEYS = envlist("LEAKSEAL_CREDENTIAL_KEYS", "")
if not DEBUG and not CREDENTIAL_KEYS:
    raise ImproperlyConfigured(
        "LEAKSEAL_CREDENTIAL_KEYS must be set when DEBUG is off (make one: python -c "
        '"from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())")'
    )

ALLOWED_HOSTS = envlist("ALLOWED_HOSTS", "127.0.0.1,localhost,testserver" if DEBUG else "")
CSRF_TRUSTED_ORIGINS = envlist("CSRF_TRUSTED_ORIGINS", "")
SITE_URL = os.environ.get("SITE_URL", "http://127.0.0.1:8000").rstrip("/")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_htmx",
    "ninja",
    "axes",
    "signin",
    "notices",
    "audit",
    "teams",
    "escapes",
    "insights",
    "retros",
    "integrations",
    "evidence",
    "demo",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # Vary: HX-Request on HTML, Cache-Control: private, no-store for signed-in people.
    "config.cache_headers.CacheHeadersMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django.middleware.csp.ContentSecurityPolicyMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    # Turns a locked-out sign-in into signin.views.lockout_response.
    "axes.middleware.AxesMiddleware",
    # Last: it needs request.user and request.htmx, and sees views' exceptions first.
    "config.errors.RefusalPagesMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"
ASGI_APPLICATION = "config.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.csp",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "signin.context.signin_options",
            ],
        },
    },
]

# --- Database: DATABASE_URL (PostgreSQL in production) or the embedded SQLite file.
VAR_DIR.mkdir(parents=True, exist_ok=True)
if os.environ.get("DATABASE_URL"):
    # Under the ASGI server a request's sync code runs in whichever executor thread is free,
    # so a connection kept open for reuse is rarely reused and fifty browsers re-fetching a
    # board exhaust PostgreSQL's max_connections (measured: bench/live_board.py --refetch).
    # Close each connection at the end of its request unless told otherwise.
    DATABASES = {
        "default": dj_database_url.parse(
            os.environ["DATABASE_URL"], conn_max_age=envint("DB_CONN_MAX_AGE", 0)
        )
    }
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
    if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql" and envbool(
        "DB_POOL", True
    ):
        # psycopg's pool, one per process: a burst of requests (a thousand people opening
        # the live board within a minute) waits up to DB_POOL_TIMEOUT seconds for one of
        # DB_POOL_MAX_SIZE connections instead of opening one each and running past
        # PostgreSQL's max_connections. Budget: web processes x DB_POOL_MAX_SIZE + worker
        # processes x DB_POOL_MAX_SIZE stays below it (docs/architecture.md "## The live board").
        if DATABASES["default"]["CONN_MAX_AGE"]:
            raise ImproperlyConfigured(
                "DB_CONN_MAX_AGE must be 0 while the connection pool is on (DB_POOL=1): "
                "the pool keeps connections itself; set DB_POOL=0 to keep them per thread"
            )
        _pool = {
            "min_size": envint("DB_POOL_MIN_SIZE", 1),
            "max_size": envint("DB_POOL_MAX_SIZE", 10),
            "timeout": envint("DB_POOL_TIMEOUT", 10),
        }
        if not 0 <= _pool["min_size"] <= _pool["max_size"] or _pool["max_size"] < 1:
            raise ImproperlyConfigured(
                f"DB_POOL_MIN_SIZE ({_pool['min_size']}) must be between 0 and "
                f"DB_POOL_MAX_SIZE ({_pool['max_size']}), which must be at least 1"
            )
        if _pool["timeout"] < 1:
            raise ImproperlyConfigured(
                f"DB_POOL_TIMEOUT must be at least 1 second, got {_pool['timeout']}"
            )
        DATABASES["default"].setdefault("OPTIONS", {})["pool"] = _pool
        # The same backend, recording who holds each pooled connection (the 503's log line).
        DATABASES["default"]["ENGINE"] = "config.postgresql"
else:
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": str(VAR_DIR / "leakseal.sqlite3"),
            # The web process and the worker write to one file: WAL lets readers go on while
            # one writes, IMMEDIATE takes the write lock up front so two writers queue
            # instead of failing with "database is locked" half-way through a transaction.
            "OPTIONS": {
                "transaction_mode": "IMMEDIATE",
                "timeout": 20,
                "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
            },
        }
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Redis, Celery and the cache.
REDIS_URL = os.environ.get("REDIS_URL", "")
if REDIS_URL:
    CELERY_BROKER_URL = REDIS_URL
    CELERY_BROKER_TRANSPORT_OPTIONS: dict[str, object] = {"visibility_timeout": 3600}
    CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}
    }
else:
    # A broker that needs no server: kombu's file-system transport, shared by the web
    # process and a real worker process through a folder.
    _broker_dir = VAR_DIR / "broker"
    for _sub in ("queue", "processed", "control"):
        (_broker_dir / _sub).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_URL = "filesystem://"
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_broker_dir / "queue"),
        "data_folder_out": str(_broker_dir / "queue"),
        "processed_folder": str(_broker_dir / "processed"),
        "control_folder": str(_broker_dir / "control"),
        "store_processed": False,
    }
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_ALWAYS_EAGER = envbool("CELERY_TASK_ALWAYS_EAGER", False)
CELERY_TIMEZONE = "UTC"
CELERY_BEAT_SCHEDULE = {
    # The outbox's backstop: pushes whose task was lost (the broker was down at commit).
    "integrations-outbox-sweep": {"task": "integrations.outbox_sweep", "schedule": 30.0},
    # Status and escape intake when webhooks are missed or not configured.
    "integrations-poll": {"task": "integrations.poll_all", "schedule": 300.0},
    # The dashboard rollups' backstop: recomputes lost to a broker outage, emptied months.
    "insights-rollup-full": {"task": "insights.rollup_full", "schedule": 3600.0},
    # The audit trail's retention: entries older than AUDIT_RETENTION_DAYS go.
    "audit-prune": {"task": "audit.prune", "schedule": 86400.0},
    # The notices outbox (notices/delivery.py): lost tasks, long Retry-Afters, dead workers.
    "notices-sweep": {"task": "notices.sweep", "schedule": 30.0},
    # Reminders and digests whose local time has come in each team's time zone.
    "notices-tick": {"task": "notices.tick", "schedule": 300.0},
    # CI test results (evidence/retention.py): retention daily, lost processing tasks.
    "evidence-prune": {"task": "evidence.prune", "schedule": 86400.0},
    "evidence-sweep": {"task": "evidence.sweep", "schedule": 300.0},
    "evidence-recount": {"task": "evidence.recount", "schedule": 86400.0},
}

# --- Notices (notices/): email, chat and Confluence messages through an outbox.
# The modules that register a sender (@sender) or a calendar job (@scheduled) at import.
NOTICE_SENDER_MODULES = [
    "notices.channels",
    "notices.chat",
    "retros.reminders",
    "retros.chat_reminders",
    "insights.digest",
    "integrations.confluence_publish",
]
# Chat notices (notices/chat.py): Slack's Web API for bot tokens, and the timeouts of a post.
SLACK_API_URL = os.environ.get("SLACK_API_URL", "https://slack.com/api")
CHAT_CONNECT_TIMEOUT = float(os.environ.get("CHAT_CONNECT_TIMEOUT", "5"))
CHAT_READ_TIMEOUT = float(os.environ.get("CHAT_READ_TIMEOUT", "15"))
# Origins accepted as chat webhook URLs besides Slack's and Microsoft's (the tests' fakes).
CHAT_EXTRA_ORIGINS: list[str] = []
NOTICE_MAX_ATTEMPTS = envint("NOTICE_MAX_ATTEMPTS", 8)
NOTICE_COUNTDOWN_MAX = 60.0  # a longer wait is the sweep's, not a broker countdown's
NOTICE_BACKOFF_MAX = 3600.0  # backoff's ceiling (a Retry-After: up to TRACKER_RETRY_AFTER_MAX)
NOTICE_SWEEP_GRACE = 60  # seconds a due notice's own task has before the sweep queues it

# How long the audit trail keeps an entry (audit/services.py): at least a year.
AUDIT_RETENTION_DAYS = envint("AUDIT_RETENTION_DAYS", 400)
if AUDIT_RETENTION_DAYS < 365:
    raise ImproperlyConfigured(
        f"AUDIT_RETENTION_DAYS must be at least 365 (a year), got {AUDIT_RETENTION_DAYS}"
    )

# Tracker calls: connect and read timeouts in seconds (integrations/http.py).
TRACKER_CONNECT_TIMEOUT = float(os.environ.get("TRACKER_CONNECT_TIMEOUT", "5"))
TRACKER_READ_TIMEOUT = float(os.environ.get("TRACKER_READ_TIMEOUT", "20"))
# Seconds a tracker's search may lag behind its creates (Jira Cloud's /search/jql and Azure
# DevOps' WIQL are eventually consistent): a create whose answer was lost is not repeated
# until the label search has had this long to show the ticket (integrations/push.py).
TRACKER_SEARCH_LAG = float(os.environ.get("TRACKER_SEARCH_LAG", "60"))
# The longest a push obeys a tracker's Retry-After (seconds; the connection page shows it).
# A longer one is cut to this, and the action says so.
TRACKER_RETRY_AFTER_MAX = float(os.environ.get("TRACKER_RETRY_AFTER_MAX", "3600"))
if TRACKER_RETRY_AFTER_MAX < 60:
    raise ImproperlyConfigured(
        f"TRACKER_RETRY_AFTER_MAX must be at least 60 seconds, got {TRACKER_RETRY_AFTER_MAX:g}"
    )

# --- Auth.
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
# Password sign-in protection (signin/throttle.py, through django-axes): failures are counted
# per account and per address, each against its own limit; a counter that reaches it refuses
# sign-ins until SIGNIN_LOCKOUT_MINUTES after its last failure. The counters live in the cache
# when it is shared (Redis), else in the database: local memory is one per process.
AUTHENTICATION_BACKENDS = [
    "signin.backends.ThrottleBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_HANDLER = "signin.throttle.SigninThrottle"
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]
AXES_FAILURE_LIMIT = envint("SIGNIN_FAILURE_LIMIT", 5)
SIGNIN_ADDRESS_FAILURE_LIMIT = envint("SIGNIN_ADDRESS_FAILURE_LIMIT", 30)
AXES_COOLOFF_TIME = timedelta(minutes=envint("SIGNIN_LOCKOUT_MINUTES", 15))
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_CALLABLE = "signin.views.lockout_response"
AXES_HTTP_RESPONSE_CODE = 429
AXES_ENABLE_ADMIN = False  # the counters are signin's, not axes' tables
SIGNIN_STORE = "cache" if REDIS_URL else "database"
SIGNIN_CACHE = "default"

LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

# --- Single sign-on with the company's OpenID Connect provider (signin/sso.py, through
# mozilla-django-oidc): on when OIDC_ISSUER is set. Endpoints and keys come from the issuer's
# discovery document; the code flow uses PKCE (S256) and a nonce, and the ID token's
# signature, issuer, audience and expiry are checked. Users are created at their first
# sign-in, matched by email address; OIDC_ALLOWED_DOMAINS (comma-separated, empty: any) limits
# which addresses may sign in. OIDC_TEAMS joins people to teams by a claim (OIDC_GROUPS_CLAIM,
# default "groups"): "group=team-slug:role, ..." adds a missing membership with that role at
# each sign-in (never changes or removes one: the team's admins manage those in Leakseal).
# PASSWORD_SIGNIN=false turns password sign-in off, only when SSO is on.
OIDC_ISSUER = os.environ.get("OIDC_ISSUER", "").rstrip("/")
SSO_ENABLED = bool(OIDC_ISSUER)
SSO_NAME = os.environ.get("OIDC_NAME", "") or "single sign-on"
OIDC_RP_CLIENT_ID = os.environ.get("OIDC_CLIENT_ID", "")
OIDC_RP_CLIENT_SECRET = os.environ.get("OIDC_CLIENT_SECRET", "")
OIDC_RP_SIGN_ALGO = os.environ.get("OIDC_SIGN_ALGO", "RS256")
OIDC_RP_SCOPES = os.environ.get("OIDC_SCOPES", "openid email profile")
OIDC_USE_PKCE = True
OIDC_USE_NONCE = True
OIDC_TIMEOUT = envint("OIDC_TIMEOUT", 10)
OIDC_ALLOWED_DOMAINS = [d.lower().lstrip("@") for d in envlist("OIDC_ALLOWED_DOMAINS", "")]
OIDC_GROUPS_CLAIM = os.environ.get("OIDC_GROUPS_CLAIM", "groups")
OIDC_AUTHENTICATION_CALLBACK_URL = "sso_callback"
PASSWORD_SIGNIN = envbool("PASSWORD_SIGNIN", True)


def _team_map(value: str) -> dict[str, list[tuple[str, str]]]:
    """OIDC_TEAMS "group=team:role, ..." -> {group: [(team slug, role), ...]}."""
    roles = {"admin", "facilitator", "member", "viewer"}
    mapping: dict[str, list[tuple[str, str]]] = {}
    for item in (part.strip() for part in value.split(",")):
        if not item:
            continue
        group, _, target = item.rpartition("=")
        team, _, role = target.partition(":")
        role = role or "member"
        if not group or not team or role not in roles:
            raise ImproperlyConfigured(
                f"OIDC_TEAMS: {item!r} is not group=team-slug:role with a role of "
                f"{', '.join(sorted(roles))}"
            )
        mapping.setdefault(group, []).append((team, role))
    return mapping


OIDC_TEAMS = _team_map(os.environ.get("OIDC_TEAMS", ""))
if SSO_ENABLED:
    if not (OIDC_RP_CLIENT_ID and OIDC_RP_CLIENT_SECRET):
        raise ImproperlyConfigured("OIDC_ISSUER is set: OIDC_CLIENT_ID and OIDC_CLIENT_SECRET too")
    AUTHENTICATION_BACKENDS.append("signin.sso.SSOBackend")
if not PASSWORD_SIGNIN:
    if not SSO_ENABLED:
        raise ImproperlyConfigured(
            "PASSWORD_SIGNIN=false needs single sign-on (OIDC_ISSUER): nobody could sign in"
        )
    AUTHENTICATION_BACKENDS = ["signin.sso.SSOBackend"]

# An email invitation's link works this many days (teams/invitations.py).
LEAKSEAL_INVITATION_DAYS = envint("LEAKSEAL_INVITATION_DAYS", 7)

# --- Email (invitations), through Django's mailers (MAILERS, Django 6.1). The embedded default
# (DEBUG on, no EMAIL_HOST) prints each message to the web process's output with the console
# backend, so `make run` shows invitation links there. Otherwise SMTP, to EMAIL_HOST (default
# localhost; `check --deploy` refuses a development backend in production). EMAIL_BACKEND
# overrides both (the browser tests use Django's file backend and read EMAIL_FILE_PATH); the
# code that sends is the same.
_email_host = os.environ.get("EMAIL_HOST", "")
_email_backend = os.environ.get("EMAIL_BACKEND") or (
    "django.core.mail.backends.console.EmailBackend"
    if DEBUG and not _email_host
    else "django.core.mail.backends.smtp.EmailBackend"
)
_email_options: dict[str, object] = {}
if _email_backend.endswith("smtp.EmailBackend"):
    _email_options = {
        "host": _email_host or "localhost",
        "port": envint("EMAIL_PORT", 587),
        "username": os.environ.get("EMAIL_HOST_USER", ""),
        "password": os.environ.get("EMAIL_HOST_PASSWORD", ""),
        "use_tls": envbool("EMAIL_USE_TLS", True),
        "timeout": envint("EMAIL_TIMEOUT", 10),
    }
elif _email_backend.endswith("filebased.EmailBackend"):
    _email_options = {"file_path": os.environ.get("EMAIL_FILE_PATH", str(VAR_DIR / "mail"))}
MAILERS = {"default": {"BACKEND": _email_backend, "OPTIONS": _email_options}}
DEFAULT_FROM_EMAIL = os.environ.get("DEFAULT_FROM_EMAIL", "Leakseal <leakseal@localhost>")
SERVER_EMAIL = DEFAULT_FROM_EMAIL

LANGUAGE_CODE = "en-gb"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = Path(os.environ.get("STATIC_ROOT", BASE_DIR / "staticfiles"))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
        if DEBUG
        else "whitenoise.storage.CompressedManifestStaticFilesStorage"
    },
}
# In development WhiteNoise finds files through the finders on each request instead of
# indexing every static file whenever a handler (and so every test client) starts.
WHITENOISE_USE_FINDERS = DEBUG
WHITENOISE_AUTOREFRESH = DEBUG

# Uploads: a CSV of escapes is read in memory; this bounds it.
DATA_UPLOAD_MAX_MEMORY_SIZE = 5 * 1024 * 1024
FILE_UPLOAD_MAX_MEMORY_SIZE = 5 * 1024 * 1024
LEAKSEAL_CSV_MAX_ROWS = envint("LEAKSEAL_CSV_MAX_ROWS", 5000)

# --- Security. A Content Security Policy is sent always, in development too, so that
# nothing that works here breaks in production: no inline script, no CDN.
SECURE_CSP = {
    "default-src": [CSP.SELF],
    "script-src": [CSP.SELF, CSP.NONCE],
    "style-src": [CSP.SELF],
    "img-src": [CSP.SELF, "data:"],
    "connect-src": [CSP.SELF],
    "font-src": [CSP.SELF],
    "object-src": [CSP.NONE],
    "base-uri": [CSP.SELF],
    "frame-ancestors": [CSP.NONE],
    "form-action": [CSP.SELF],
}
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
SESSION_COOKIE_HTTPONLY = True
# A stale form (signed in or out in another tab) gets a page of the site, not Django's.
CSRF_FAILURE_VIEW = "config.errors.csrf_failure"
if not DEBUG:
    SECURE_SSL_REDIRECT = envbool("SECURE_SSL_REDIRECT", True)
    SECURE_HSTS_SECONDS = envint("SECURE_HSTS_SECONDS", 31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    if envbool("SECURE_PROXY_SSL_HEADER", False):
        SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    # urllib3's debug lines quote request paths, and a chat webhook's path is its secret.
    "loggers": {"urllib3": {"level": "WARNING"}},
}
