"""Settings for every environment, read from environment variables (see README "Configuration")."""

import copy
import os
from pathlib import Path
from urllib.parse import urlsplit

import dj_database_url
from csp import constants as csp_constants
from django.core.exceptions import ImproperlyConfigured

from minicrm.core.json_log import LOG_FORMATS, logging_config
from minicrm.core.limits import MAX_REQUEST_BODY_BYTES

BASE_DIR = Path(__file__).resolve().parent.parent.parent
VAR_DIR = Path(os.environ.get("MINICRM_VAR_DIR", BASE_DIR / "var"))


def env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    if value.lower() in {"1", "true", "yes", "on"}:
        return True
    if value.lower() in {"0", "false", "no", "off"}:
        return False
    raise ImproperlyConfigured(f"{name} must be true or false, not {value!r}")


def env_list(name: str, default: str) -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


DEBUG = env_bool("DJANGO_DEBUG", False)
SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("Set DJANGO_SECRET_KEY (or DJANGO_DEBUG=true for development).")
    SECRET_KEY = "django-insecure-development-only-key-change-me"  # noqa: S105

ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", "127.0.0.1,localhost")
CSRF_TRUSTED_ORIGINS = env_list("DJANGO_CSRF_TRUSTED_ORIGINS", "")

INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "django_cotton",
    "django_tasks",
    # Before django_tasks_db: its `db_worker` command is minicrm.core's, which adds the worker's
    # heartbeat and the recovery sweep (docs/design.md, "Background work").
    "minicrm.core",
    "django_tasks_db",
    "django_rq",
    "django_tasks_rq",
    "ninja",
    "csp",
    # Sign in with Google / any OIDC provider (minicrm.accounts.oidc); only the provider's
    # login and callback URLs are mounted, none of allauth's own account pages.
    "allauth",
    "allauth.account",
    "allauth.socialaccount",
    "allauth.socialaccount.providers.openid_connect",
    "minicrm.accounts",
    "minicrm.web",
    "minicrm.customers",
    "minicrm.imports",
    "minicrm.segments",
    "minicrm.insights",
    "minicrm.campaigns",
]

MIDDLEWARE = [
    # First, so every record and answer (a refused body too) carries the request's id.
    "minicrm.core.request_id.RequestIdMiddleware",
    "minicrm.core.request_limits.RequestBodyLimitMiddleware",
    "django.middleware.security.SecurityMiddleware",
    # Before WhiteNoise, so static files carry the headers too.
    "csp.middleware.CSPMiddleware",
    "minicrm.core.security_headers.PermissionsPolicyMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    # A request that writes keeps its client's next reads on the primary (read replica only).
    "minicrm.core.replica.ReplicaPinMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.auth.middleware.LoginRequiredMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "allauth.account.middleware.AccountMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last, so it sees a view's exception first: a lock timeout is a 503 with Retry-After.
    "minicrm.core.db_errors.DatabaseBusyMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"
ASGI_APPLICATION = "config.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "minicrm.web.context_processors.shell",
            ],
            "builtins": [
                "minicrm.web.templatetags.icons",
                "minicrm.web.templatetags.formatting",
            ],
        },
    },
]

# --- Database -------------------------------------------------------------------------------
# SQLite in var/ by default; DATABASE_URL selects PostgreSQL or MariaDB/MySQL.
DEFAULT_SQLITE_PATH = VAR_DIR / "minicrm.sqlite3"
DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("DATABASE_URL") or f"sqlite:///{DEFAULT_SQLITE_PATH}",
        conn_max_age=int(os.environ.get("DATABASE_CONN_MAX_AGE", "60")),
        conn_health_checks=True,
    )
}
_engine = DATABASES["default"]["ENGINE"]
# PostgreSQL connection pooling: on with DATABASE_POOL=true (production settings' default) or when
# a pool size is given; ignored on SQLite and MariaDB, which keep their connections as above.
DATABASE_POOL = env_bool(
    "DATABASE_POOL",
    bool(os.environ.get("DATABASE_POOL_MIN_SIZE") or os.environ.get("DATABASE_POOL_MAX_SIZE")),
)
if _engine == "django.db.backends.sqlite3":
    # WAL + busy timeout + IMMEDIATE transactions: the web server and the worker share the file
    # without "database is locked" errors (DESIGN.md, "The flow").
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    DATABASES["default"]["OPTIONS"] = {
        # Seconds a writer waits for the write lock. A full batch (MAX_BATCH_ROWS) holds it for
        # 1-2.5 s, so 24 or more full batches can queue; a writer past it answers 503.
        "timeout": float(os.environ.get("MINICRM_SQLITE_BUSY_TIMEOUT", "60")),
        "transaction_mode": "IMMEDIATE",
        "init_command": (
            "PRAGMA journal_mode=WAL;"
            "PRAGMA synchronous=NORMAL;"
            "PRAGMA foreign_keys=ON;"
            "PRAGMA cache_size=-65536;"
            "PRAGMA temp_store=MEMORY;"
        ),
    }
elif _engine == "django.db.backends.mysql":
    # PyMySQL is pure Python, so a fresh clone needs no MySQL client headers to build.
    import pymysql

    pymysql.install_as_MySQLdb()
    DATABASES["default"]["OPTIONS"] = {
        "charset": "utf8mb4",
        "init_command": "SET sql_mode='STRICT_TRANS_TABLES', time_zone='+00:00'",
    }
    DATABASES["default"]["TEST"] = {"CHARSET": "utf8mb4", "COLLATION": "utf8mb4_unicode_ci"}
elif _engine == "django.db.backends.postgresql" and DATABASE_POOL:
    # A pool per process (psycopg_pool): a request borrows a checked connection and gives it back,
    # instead of keeping its own for CONN_MAX_AGE (Django refuses both at once). A sync gunicorn
    # worker uses one at a time; the rest cover threads such as the snapshot's background build.
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
        "min_size": int(os.environ.get("DATABASE_POOL_MIN_SIZE", "1")),
        "max_size": int(os.environ.get("DATABASE_POOL_MAX_SIZE", "4")),
        # Seconds a request waits for a free connection before failing (503 on /readyz).
        "timeout": 10.0,
    }
if os.environ.get("DATABASE_TEST_NAME"):
    DATABASES["default"].setdefault("TEST", {})["NAME"] = os.environ["DATABASE_TEST_NAME"]
# A read replica of the primary (same engine): the read-heavy paths (previews' SQL, members,
# exports, dashboard, customer list, facts) read it, unless the request or its client wrote in
# the last MINICRM_REPLICA_PIN_SECONDS (minicrm.core.db_router). Tests point it at the test
# database (MIRROR); migrations run on the primary only.
DATABASE_REPLICA_URL = os.environ.get("DATABASE_REPLICA_URL", "")
MINICRM_REPLICA_PIN_SECONDS = float(os.environ.get("MINICRM_REPLICA_PIN_SECONDS", "5"))
if DATABASE_REPLICA_URL:
    _replica = dj_database_url.parse(DATABASE_REPLICA_URL, conn_health_checks=True)
    if _replica["ENGINE"] != _engine:
        raise ImproperlyConfigured("DATABASE_REPLICA_URL must name the same engine as the primary.")
    _replica["CONN_MAX_AGE"] = DATABASES["default"]["CONN_MAX_AGE"]
    _replica["OPTIONS"] = copy.deepcopy(DATABASES["default"].get("OPTIONS", {}))
    _replica["TEST"] = {"MIRROR": "default"}
    DATABASES["replica"] = _replica
    DATABASE_ROUTERS = ["minicrm.core.db_router.ReplicaRouter"]

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Accounts -------------------------------------------------------------------------------
AUTH_USER_MODEL = "accounts.User"
LOGIN_URL = "accounts:login"
LOGIN_REDIRECT_URL = "web:dashboard"
LOGOUT_REDIRECT_URL = "accounts:login"
PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.Argon2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {
        "NAME": "django.contrib.auth.password_validation.MinimumLengthValidator",
        "OPTIONS": {"min_length": 10},
    },
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_THROTTLE_ATTEMPTS = int(os.environ.get("MINICRM_LOGIN_THROTTLE_ATTEMPTS", "5"))
LOGIN_THROTTLE_WINDOW_SECONDS = int(os.environ.get("MINICRM_LOGIN_THROTTLE_WINDOW", "900"))
# Sign-in throttling (minicrm.accounts.throttle): LOGIN_THROTTLE_ATTEMPTS per email and address,
# more per address over all accounts, and per account over all addresses a growing, capped wait
# between password checks instead of a lock; the sign-in link by email always gets the owner in.
LOGIN_THROTTLE_ADDRESS_ATTEMPTS = int(
    os.environ.get("MINICRM_LOGIN_THROTTLE_ADDRESS_ATTEMPTS", str(LOGIN_THROTTLE_ATTEMPTS * 4))
)
LOGIN_THROTTLE_ACCOUNT_ATTEMPTS = int(
    os.environ.get("MINICRM_LOGIN_THROTTLE_ACCOUNT_ATTEMPTS", str(LOGIN_THROTTLE_ATTEMPTS * 2))
)
LOGIN_THROTTLE_MAX_DELAY_SECONDS = int(os.environ.get("MINICRM_LOGIN_THROTTLE_MAX_DELAY", "60"))
LOGIN_LINK_MAX_AGE_SECONDS = int(os.environ.get("MINICRM_LOGIN_LINK_MAX_AGE", "900"))
# Requests each API token may make per fixed window of seconds (429 past it); 0 = no limit.
MINICRM_API_RATE_LIMIT = int(os.environ.get("MINICRM_API_RATE_LIMIT", "600"))
MINICRM_API_RATE_WINDOW_SECONDS = max(1, int(os.environ.get("MINICRM_API_RATE_WINDOW", "60")))
# Days an invitation link stays valid (minicrm.accounts.invitations).
MINICRM_INVITATION_DAYS = int(os.environ.get("MINICRM_INVITATION_DAYS", "7"))

# --- Sign in with Google / OIDC ------------------------------------------------------------
# Any OpenID Connect provider with discovery (Google by default; Keycloak, Okta, Azure AD alike).
# No client id, no "Sign in with ..." button, and its URLs refuse. Its redirect URI is
# <public URL>/sign-in/oidc/<OIDC_PROVIDER_ID>/callback/.
OIDC_PROVIDER_ID = os.environ.get("OIDC_PROVIDER_ID", "google")
OIDC_PROVIDER_NAME = os.environ.get("OIDC_PROVIDER_NAME", "Google")
OIDC_SERVER_URL = os.environ.get("OIDC_SERVER_URL", "https://accounts.google.com")
OIDC_CLIENT_ID = os.environ.get("OIDC_CLIENT_ID", "")
OIDC_CLIENT_SECRET = os.environ.get("OIDC_CLIENT_SECRET", "")
# The first sign-in of an unknown email needs an open invitation, or a domain listed here
# (the user then gets MINICRM_DEFAULT_SIGNUP_ROLE).
MINICRM_ALLOWED_SIGNUP_DOMAINS = [
    domain.lower().lstrip("@") for domain in env_list("MINICRM_ALLOWED_SIGNUP_DOMAINS", "")
]
MINICRM_DEFAULT_SIGNUP_ROLE = os.environ.get("MINICRM_DEFAULT_SIGNUP_ROLE", "viewer")
if MINICRM_DEFAULT_SIGNUP_ROLE not in {"viewer", "marketer", "admin"}:
    raise ImproperlyConfigured("MINICRM_DEFAULT_SIGNUP_ROLE must be viewer, marketer or admin.")
SOCIALACCOUNT_PROVIDERS: dict[str, dict[str, object]] = {}
if OIDC_CLIENT_ID:
    SOCIALACCOUNT_PROVIDERS["openid_connect"] = {
        "OAUTH_PKCE_ENABLED": True,
        "APPS": [
            {
                "provider_id": OIDC_PROVIDER_ID,
                "name": OIDC_PROVIDER_NAME,
                "client_id": OIDC_CLIENT_ID,
                "secret": OIDC_CLIENT_SECRET,
                "settings": {"server_url": OIDC_SERVER_URL, "oauth_pkce_enabled": True},
            }
        ],
    }
# The gate, the ID token checks and the sign-in itself are ours (minicrm.accounts.oidc); allauth
# never creates accounts, and password sign-in stays our own form (ModelBackend only).
SOCIALACCOUNT_ADAPTER = "minicrm.accounts.oidc.OidcSocialAccountAdapter"
ACCOUNT_ADAPTER = "minicrm.accounts.oidc.ClosedAccountAdapter"
SOCIALACCOUNT_AUTO_SIGNUP = False
SOCIALACCOUNT_STORE_TOKENS = False
SOCIALACCOUNT_REQUESTS_TIMEOUT = 10
ACCOUNT_USER_MODEL_USERNAME_FIELD = None
ACCOUNT_LOGIN_METHODS = {"email"}
ACCOUNT_SIGNUP_FIELDS = ["email*"]
ACCOUNT_EMAIL_VERIFICATION = "none"

# --- Security -------------------------------------------------------------------------------
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
SESSION_COOKIE_AGE = 60 * 60 * 12
CSRF_COOKIE_SAMESITE = "Lax"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
# Content-Security-Policy (django-csp): scripts and styles only from our own files, plus inline
# scripts carrying the page's nonce; no inline styles at all (templates use CSS classes).
# form-action also names the OIDC provider: browsers apply it to the redirect that follows our
# own "Sign in with Google" form. By default the origin of OIDC_SERVER_URL (the authorization
# endpoint lives there for Google, Keycloak, Okta and Azure AD); MINICRM_CSP_FORM_ACTION, origins
# separated by commas, replaces it.
# (Read from the environment, like OIDC_SERVER_URL itself, with the same default.)
_oidc_origin = urlsplit(os.environ.get("OIDC_SERVER_URL", "https://accounts.google.com"))
MINICRM_CSP_FORM_ACTION = env_list(
    "MINICRM_CSP_FORM_ACTION",
    f"{_oidc_origin.scheme}://{_oidc_origin.netloc}" if _oidc_origin.netloc else "",
)
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [csp_constants.SELF],
        "script-src": [csp_constants.SELF, csp_constants.NONCE],
        "style-src": [csp_constants.SELF],
        "img-src": [csp_constants.SELF, "data:"],
        "font-src": [csp_constants.SELF],
        "connect-src": [csp_constants.SELF],
        "object-src": [csp_constants.NONE],
        "base-uri": [csp_constants.SELF],
        "frame-ancestors": [csp_constants.NONE],
        "form-action": [csp_constants.SELF, *MINICRM_CSP_FORM_ACTION],
    }
}
# Browser features no page of ours uses, switched off (minicrm.core.security_headers).
MINICRM_PERMISSIONS_POLICY = "camera=(), microphone=(), geolocation=(), payment=(), usb=()"
# Behind HTTPS (the default outside DEBUG) cookies never travel in clear text.
SECURE_COOKIES = env_bool("DJANGO_SECURE_COOKIES", not DEBUG)
SESSION_COOKIE_SECURE = SECURE_COOKIES
CSRF_COOKIE_SECURE = SECURE_COOKIES
SECURE_SSL_REDIRECT = env_bool("DJANGO_SECURE_SSL_REDIRECT", False)
SECURE_HSTS_SECONDS = int(os.environ.get("DJANGO_SECURE_HSTS_SECONDS", "0"))
SECURE_HSTS_INCLUDE_SUBDOMAINS = SECURE_HSTS_SECONDS > 0
SECURE_HSTS_PRELOAD = SECURE_HSTS_SECONDS > 0
# Behind our reverse proxy (production settings), the client address is the one the proxy adds
# to X-Forwarded-For, MINICRM_TRUSTED_PROXY_COUNT entries from the right; otherwise the header
# is anyone's to forge and only REMOTE_ADDR counts (minicrm.accounts.client_address).
MINICRM_BEHIND_PROXY = env_bool("DJANGO_BEHIND_PROXY", False)
MINICRM_TRUSTED_PROXY_COUNT = max(1, int(os.environ.get("MINICRM_TRUSTED_PROXY_COUNT", "1")))
if MINICRM_BEHIND_PROXY:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

# --- Cache ----------------------------------------------------------------------------------
REDIS_URL = os.environ.get("REDIS_URL", "")
if REDIS_URL:
    CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}
    }
else:
    # Shared between the web process and the worker so throttles hold across processes.
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.db.DatabaseCache",
            "LOCATION": "minicrm_cache",
        }
    }

# --- Background tasks -----------------------------------------------------------------------
TASKS_BACKEND = os.environ.get("MINICRM_TASKS_BACKEND", "database")
if TASKS_BACKEND == "database":
    TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend", "QUEUES": ["default"]}}
elif TASKS_BACKEND == "rq":
    if not REDIS_URL:
        raise ImproperlyConfigured("MINICRM_TASKS_BACKEND=rq needs REDIS_URL.")
    TASKS = {"default": {"BACKEND": "django_tasks_rq.RQBackend", "QUEUES": ["default"]}}
elif TASKS_BACKEND == "immediate":
    TASKS = {"default": {"BACKEND": "django_tasks.backends.immediate.ImmediateBackend"}}
else:
    raise ImproperlyConfigured("MINICRM_TASKS_BACKEND must be database, rq or immediate.")
# RQ kills a job that runs longer than this. A 2 GB import or a campaign to a million people runs
# for longer than RQ's usual 10 minutes; a worker that dies is caught by the work leases instead
# (`manage.py work_recover --every 10` beside RQ workers, see docs/scaling.md).
RQ_QUEUES = {
    "default": {
        "URL": REDIS_URL or "redis://127.0.0.1:6379/0",
        "DEFAULT_TIMEOUT": int(os.environ.get("MINICRM_RQ_JOB_TIMEOUT", "21600")),
    }
}
if TASKS_BACKEND != "rq":
    # django_rq imports redis when its app loads (about 0.9 s for every process and command);
    # only the RQ backend and `rqworker` need it.
    INSTALLED_APPS = [app for app in INSTALLED_APPS if app not in {"django_rq", "django_tasks_rq"}]
# A task that met a transient database error (locked, dropped connection) tries this often in
# all, waiting base x 2^n seconds between tries (minicrm.core.tasks.DATABASE_RETRY: imports and
# rate re-conversions). Other families have their own: INSIGHT_*, MINICRM_DELIVERY_*.
MINICRM_TASK_DATABASE_MAX_ATTEMPTS = int(os.environ.get("MINICRM_TASK_DATABASE_MAX_ATTEMPTS", "5"))
MINICRM_TASK_DATABASE_RETRY_BASE_SECONDS = float(
    os.environ.get("MINICRM_TASK_DATABASE_RETRY_BASE_SECONDS", "10")
)

# --- Internationalisation -------------------------------------------------------------------
LANGUAGE_CODE = "en-us"
TIME_ZONE = os.environ.get("MINICRM_TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True
# The shop currency (ISO 4217): every amount summed or compared (stats, rules, facts, dashboard)
# is in it; orders in another currency are converted at ingestion (minicrm.customers.currency).
MINICRM_CURRENCY = os.environ.get("MINICRM_CURRENCY", "INR").strip().upper()
# How money is written (Babel locale: grouping, symbol, decimal mark); the symbol comes from the
# currency and this locale, never from a setting of its own. en_IN writes ₹69,04,874.
MINICRM_LOCALE = os.environ.get(
    "MINICRM_LOCALE", "en_IN" if MINICRM_CURRENCY == "INR" else "en"
).strip()
# How many days before an order's date its currency's latest rate may be, for want of one that day.
MINICRM_RATE_MAX_AGE_DAYS = int(os.environ.get("MINICRM_RATE_MAX_AGE_DAYS", "7"))
# Live previews count on a columnar copy of the customer stats (DuckDB over memory-mapped Arrow
# files), refreshed from the updated_at watermark before each preview so counts stay exact
# (DESIGN.md, Scale). One copy per machine, in MINICRM_SNAPSHOT_DIR, shared by every process.
MINICRM_PREVIEW_SNAPSHOT = env_bool("MINICRM_PREVIEW_SNAPSHOT", True)
MINICRM_SNAPSHOT_DIR = Path(os.environ.get("MINICRM_SNAPSHOT_DIR", VAR_DIR / "snapshot"))
# Up to this many customers, a dashboard range nobody has computed yet is computed in the request
# (well under a second); above it the page answers at once and the worker computes it.
MINICRM_DASHBOARD_INLINE_MAX_CUSTOMERS = int(
    os.environ.get("MINICRM_DASHBOARD_INLINE_MAX_CUSTOMERS", "50000")
)
# Seconds one statement of a segment preview, size, members page, export or facts may run before
# the database stops it (a clear error for that request or task, minicrm.core.statement_timeout).
MINICRM_WEB_STATEMENT_TIMEOUT = float(os.environ.get("MINICRM_WEB_STATEMENT_TIMEOUT", "10"))
MINICRM_WORKER_STATEMENT_TIMEOUT = float(os.environ.get("MINICRM_WORKER_STATEMENT_TIMEOUT", "120"))

# --- Static files ---------------------------------------------------------------------------
STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"
# Front-end packages from npm, copied here by `manage.py vendor_assets` (never committed).
VENDOR_DIR = VAR_DIR / "vendor"
STATICFILES_DIRS = [("vendor", VENDOR_DIR)]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if not DEBUG
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}
MEDIA_ROOT = VAR_DIR / "media"
FILE_UPLOAD_MAX_MEMORY_SIZE = 5 * 1024 * 1024
DATA_UPLOAD_MAX_MEMORY_SIZE = MAX_REQUEST_BODY_BYTES
# The largest CSV an import stores (10M orders are about 0.7 GB); larger files are refused
# with a message asking to split them, so uploads cannot fill the disk.
MINICRM_MAX_IMPORT_BYTES = int(os.environ.get("MINICRM_MAX_IMPORT_BYTES", str(2 * 1024**3)))

# --- AI -------------------------------------------------------------------------------------
GEMINI_API_KEY = os.environ.get("GEMINI_API_KEY", "")
AI_PROVIDER = os.environ.get("AI_PROVIDER", "") or ("gemini" if GEMINI_API_KEY else "offline")
GEMINI_MODEL = os.environ.get("GEMINI_MODEL", "gemini-2.5-flash")
GEMINI_BASE_URL = os.environ.get("GEMINI_BASE_URL", "")
GEMINI_TIMEOUT_SECONDS = float(os.environ.get("GEMINI_TIMEOUT_SECONDS", "30"))
# Retries inside one call to the model (SDK level), then whole-task retries in the worker.
GEMINI_RETRY_ATTEMPTS = int(os.environ.get("GEMINI_RETRY_ATTEMPTS", "3"))
GEMINI_RETRY_INITIAL_DELAY = float(os.environ.get("GEMINI_RETRY_INITIAL_DELAY", "1"))
INSIGHT_MAX_ATTEMPTS = int(os.environ.get("INSIGHT_MAX_ATTEMPTS", "4"))
INSIGHT_RETRY_BASE_SECONDS = float(os.environ.get("INSIGHT_RETRY_BASE_SECONDS", "30"))
# How long the worker waits for its columnar snapshot to load before computing facts in SQL:
# at 1M customers the load (~23 s, once per process) beats the first SQL facts with a cold base.
INSIGHT_SNAPSHOT_WAIT_SECONDS = float(os.environ.get("INSIGHT_SNAPSHOT_WAIT_SECONDS", "60"))

# --- Background work ------------------------------------------------------------------------
# A worker renews the lease of the import or insight it works on (and its own heartbeat); a lease
# this old means the worker is gone, and the next sweep (every MINICRM_WORK_SWEEP_SECONDS, in
# every db_worker) resumes or fails that work: recovery within lease + sweep seconds.
MINICRM_WORK_LEASE_SECONDS = float(os.environ.get("MINICRM_WORK_LEASE_SECONDS", "30"))
MINICRM_WORK_SWEEP_SECONDS = float(os.environ.get("MINICRM_WORK_SWEEP_SECONDS", "10"))
# What each sweep recovers, by name: every app with leased work names its recoverer here.
MINICRM_WORK_RECOVERERS = {
    "imports": "minicrm.imports.services.imports_recover",
    "insights": "minicrm.insights.services.insights_recover",
    "campaigns": "minicrm.campaigns.recovery.campaigns_recover",
    "campaign_summaries": "minicrm.campaigns.summary.summaries_recover",
    "rate_reconversions": "minicrm.customers.reconversion.reconversions_recover",
}
# Rows an import stores per transaction (at most the bulk batch limit).
MINICRM_IMPORT_CHUNK_ROWS = int(os.environ.get("MINICRM_IMPORT_CHUNK_ROWS", "10000"))

# --- Campaigns ------------------------------------------------------------------------------
# Where recipients reach this CRM: the unsubscribe links in messages are absolute.
MINICRM_PUBLIC_URL = os.environ.get("MINICRM_PUBLIC_URL", "http://127.0.0.1:8000")
# The webhook channel's messaging vendor (docs/design.md, "Campaign delivery"): batches are POSTed
# to the URL, signed with the secret, and the vendor's receipts must carry the same signature.
MINICRM_WEBHOOK_URL = os.environ.get("MINICRM_WEBHOOK_URL", "")
MINICRM_WEBHOOK_SECRET = os.environ.get("MINICRM_WEBHOOK_SECRET", "")
# The email channel: Django's SMTP backend, set up from the environment.
EMAIL_HOST = os.environ.get("EMAIL_HOST", "localhost")
EMAIL_PORT = int(os.environ.get("EMAIL_PORT", "25"))
EMAIL_HOST_USER = os.environ.get("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = os.environ.get("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)
EMAIL_TIMEOUT = float(os.environ.get("EMAIL_TIMEOUT", "30"))
DEFAULT_FROM_EMAIL = os.environ.get("DEFAULT_FROM_EMAIL", "Mini CRM <crm@localhost>")
# Delivery (minicrm.campaigns.delivery): deliveries per worker batch (one vendor request, one
# write of outcomes), and how often a batch that met a transient failure (vendor 5xx, 429 or
# timeout, SMTP 4xx) is tried in all before its deliveries fail, waiting base x 2^n between tries.
MINICRM_DELIVERY_BATCH_SIZE = int(os.environ.get("MINICRM_DELIVERY_BATCH_SIZE", "500"))
MINICRM_DELIVERY_MAX_ATTEMPTS = int(os.environ.get("MINICRM_DELIVERY_MAX_ATTEMPTS", "5"))
MINICRM_DELIVERY_RETRY_BASE_SECONDS = float(
    os.environ.get("MINICRM_DELIVERY_RETRY_BASE_SECONDS", "10")
)
MINICRM_WEBHOOK_TIMEOUT_SECONDS = float(os.environ.get("MINICRM_WEBHOOK_TIMEOUT_SECONDS", "10"))
# Messages per second per channel, for all workers together (0: unlimited). Kept on the database
# (minicrm.campaigns.ratelimit), so it holds across processes without Redis.
MINICRM_CHANNEL_RATES = {
    "log": float(os.environ.get("MINICRM_RATE_LOG", "0")),
    "email": float(os.environ.get("MINICRM_RATE_EMAIL", "20")),
    "webhook": float(os.environ.get("MINICRM_RATE_WEBHOOK", "10000")),
}

# --- Logging --------------------------------------------------------------------------------
# `plain` lines for a terminal, or `json` (production settings' default): one object a line with
# time, level, logger, message and the request id; gunicorn's access lines get the same shape.
MINICRM_LOG_FORMAT = os.environ.get("MINICRM_LOG_FORMAT", "plain")
if MINICRM_LOG_FORMAT not in LOG_FORMATS:
    raise ImproperlyConfigured(f"MINICRM_LOG_FORMAT must be one of {', '.join(LOG_FORMATS)}.")
LOGGING = logging_config(
    log_format=MINICRM_LOG_FORMAT, level=os.environ.get("DJANGO_LOG_LEVEL", "INFO")
)
