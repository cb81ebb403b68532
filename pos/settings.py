"""Settings, read from the environment.

With nothing set the service runs embedded: a SQLite file under ``var/``, the in-memory channel
layer, Celery tasks run eagerly, DEBUG on. ``DATABASE_URL`` and ``REDIS_URL`` switch to
PostgreSQL and Redis (channel layer, Celery broker, cache). Outside DEBUG the service refuses
to start with the built-in secret key or without ``DJANGO_ALLOWED_HOSTS``.
"""

from __future__ import annotations

import contextlib
import os
from datetime import timedelta
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("POS_VAR_DIR", BASE_DIR / "var"))


def env_str(name: str, default: str = "") -> str:
    return os.environ.get(name, default).strip()


def env_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    return raw.strip().lower() in {"1", "true", "yes", "on"}


def env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    return int(raw) if raw not in (None, "") else default


def env_list(name: str, default: list[str]) -> list[str]:
    raw = os.environ.get(name)
    if raw is None:
        return default
    return [item.strip() for item in raw.split(",") if item.strip()]


DATABASE_URL = env_str("DATABASE_URL")
REDIS_URL = env_str("REDIS_URL")
# Embedded mode: no external service at all. It is the only mode where DEBUG defaults on.
EMBEDDED = not DATABASE_URL and not REDIS_URL

DEBUG = env_bool("DJANGO_DEBUG", EMBEDDED)

_EMBEDDED_SECRET_KEY = "embedded-mode-only-insecure-key-do-not-deploy"
SECRET_KEY = env_str("DJANGO_SECRET_KEY") or _EMBEDDED_SECRET_KEY
ALLOWED_HOSTS = env_list(
    "DJANGO_ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]"] if DEBUG else []
)
if not DEBUG:
    if SECRET_KEY == _EMBEDDED_SECRET_KEY or len(SECRET_KEY) < 32:
        raise ImproperlyConfigured(
            "DJANGO_SECRET_KEY must be set to a random string of at least 32 characters "
            "when DEBUG is off."
        )
    if not ALLOWED_HOSTS:
        raise ImproperlyConfigured("DJANGO_ALLOWED_HOSTS must be set when DEBUG is off.")

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "corsheaders",
    "rest_framework",
    "rest_framework_simplejwt.token_blacklist",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "channels",
    "pos",
    "tenants",
    "catalog",
    "orders",
    "kds",
    "payments",
]

MIDDLEWARE = [
    "pos.observability.RequestContextMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "corsheaders.middleware.CorsMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "pos.urls"
ASGI_APPLICATION = "asgi.application"
AUTH_USER_MODEL = "tenants.User"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

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
            ],
        },
    },
]

# --- Database -------------------------------------------------------------------------------
_SQLITE_OPTIONS = {
    # Writers queue instead of failing with "database is locked"; WAL lets readers proceed.
    "timeout": 20,
    "transaction_mode": "IMMEDIATE",
    "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
}
if DATABASE_URL:
    _db = dj_database_url.parse(
        DATABASE_URL,
        conn_max_age=env_int("DB_CONN_MAX_AGE", 60),
        conn_health_checks=True,
    )
    if _db["ENGINE"] == "django.db.backends.sqlite3":
        _db["OPTIONS"] = {**_SQLITE_OPTIONS, **_db.get("OPTIONS", {})}
        _db["CONN_MAX_AGE"] = 0
    elif env_bool("DB_PREPARED_STATEMENTS", True):
        # Parameters sent apart from the SQL (not quoted into it by the client), and a
        # statement a connection has run 5 times prepared: the server stops parsing and
        # planning the same few statements every write runs (about half of PostgreSQL's CPU
        # per order change on the bench machine). Off behind a pooler that cannot follow
        # prepared statements (PgBouncer in transaction mode before 1.21).
        _db["OPTIONS"] = {
            "server_side_binding": True, "prepare_threshold": 5, **_db.get("OPTIONS", {})
        }
else:
    VAR_DIR.mkdir(parents=True, exist_ok=True)
    _db = {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": str(VAR_DIR / "db.sqlite3"),
        "OPTIONS": dict(_SQLITE_OPTIONS),
    }
DATABASES = {"default": _db}

# --- Channels, Celery, cache ----------------------------------------------------------------
CHANNELS_PREFIX = env_str("CHANNELS_PREFIX", "pos")
if REDIS_URL:
    CHANNEL_LAYERS = {
        "default": {
            # channels-redis' layer, its group send in two requests (pos/streams/channel_layer.py)
            "BACKEND": "pos.streams.channel_layer.RedisChannelLayer",
            "CONFIG": {
                "hosts": [{"address": REDIS_URL}],
                "prefix": CHANNELS_PREFIX,
                # One channel per server process carries every outlet stream it follows
                # (pos.streams.hub), so its queue must absorb a burst across outlets.
                "capacity": env_int("CHANNELS_CAPACITY", 5000),
                # Undelivered messages older than this are stale: the outbox log serves them.
                "expiry": env_int("CHANNELS_EXPIRY", 30),
                "group_expiry": env_int("CHANNELS_GROUP_EXPIRY", 86400),
            },
        }
    }
    CELERY_BROKER_URL = REDIS_URL
    CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", False)
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": CHANNELS_PREFIX,
        }
    }
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    CELERY_BROKER_URL = "memory://"
    CELERY_TASK_ALWAYS_EAGER = True
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_BEAT_SCHEDULE = {
    "outbox-relay": {"task": "pos.tasks.outbox_relay", "schedule": 2.0},
    "outbox-prune": {"task": "pos.tasks.outbox_prune", "schedule": 3600.0},
    "idempotency-prune": {"task": "pos.tasks.idempotency_prune", "schedule": 3600.0},
    "payments-expire": {"task": "payments.tasks.payments_expire", "schedule": 30.0},
    "payments-poll": {"task": "payments.tasks.payments_poll_pending", "schedule": 60.0},
}

# --- Auth -----------------------------------------------------------------------------------
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework_simplejwt.authentication.JWTAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PAGINATION_CLASS": "pos.pagination.PagePagination",
    "PAGE_SIZE": 50,
    "DEFAULT_FILTER_BACKENDS": [
        "django_filters.rest_framework.DjangoFilterBackend",
        "rest_framework.filters.SearchFilter",
        "rest_framework.filters.OrderingFilter",
    ],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "pos.api_errors.exception_handler",
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "DEFAULT_THROTTLE_RATES": {
        "login": env_str("THROTTLE_LOGIN", "10/min"),
        "token_refresh": env_str("THROTTLE_TOKEN_REFRESH", "30/min"),
        "payments": env_str("THROTTLE_PAYMENTS", "120/min"),
        "webhooks": env_str("THROTTLE_WEBHOOKS", "600/min"),
    },
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
}
if DEBUG:
    REST_FRAMEWORK["DEFAULT_RENDERER_CLASSES"].append("rest_framework.renderers.BrowsableAPIRenderer")

SIMPLE_JWT = {
    "ACCESS_TOKEN_LIFETIME": timedelta(minutes=env_int("JWT_ACCESS_MINUTES", 15)),
    "REFRESH_TOKEN_LIFETIME": timedelta(days=env_int("JWT_REFRESH_DAYS", 7)),
    "ROTATE_REFRESH_TOKENS": True,
    "BLACKLIST_AFTER_ROTATION": True,
    "UPDATE_LAST_LOGIN": True,
    "ALGORITHM": "HS256",
    "SIGNING_KEY": env_str("JWT_SIGNING_KEY") or SECRET_KEY,
    "USER_ID_FIELD": "id",
    "USER_ID_CLAIM": "user_id",
}

SPECTACULAR_SETTINGS = {
    "TITLE": "Restaurant realtime backend API",
    "DESCRIPTION": (
        "REST API of the restaurant backend. Realtime sockets are described in "
        "docs/realtime.md. Errors always use the envelope "
        '{"error": {"code", "message", "details"}}.'
    ),
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "pos.schema.add_error_responses",
    ],
    # Several models have a "status"/"payment_status" with different choices; name each
    # enum explicitly, or drf-spectacular gives two of them one name.
    "ENUM_NAME_OVERRIDES": {
        "OrderStatusEnum": "orders.models.OrderStatus",
        "OrderPaymentStatusEnum": "orders.models.PaymentStatus",
        "PaymentStatusEnum": "payments.models.PaymentStatus",
    },
}

# --- HTTP, static, security -----------------------------------------------------------------
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = Path(os.environ.get("DJANGO_STATIC_ROOT", VAR_DIR / "static"))
with contextlib.suppress(OSError):  # whitenoise expects it to exist, even if empty
    STATIC_ROOT.mkdir(parents=True, exist_ok=True)
# Serve straight from the apps' static folders so no collectstatic step is needed to run.
WHITENOISE_USE_FINDERS = env_bool("WHITENOISE_USE_FINDERS", True)
WHITENOISE_AUTOREFRESH = DEBUG

CORS_ALLOWED_ORIGINS = env_list("CORS_ALLOWED_ORIGINS", [])
CORS_ALLOW_HEADERS = [
    "accept",
    "authorization",
    "content-type",
    "idempotency-key",
    "if-match",
    "x-request-id",
]
CORS_EXPOSE_HEADERS = ["idempotent-replayed", "x-request-id", "etag"]
# Browser origins allowed to open sockets; empty means "same host as ALLOWED_HOSTS".
WS_ALLOWED_ORIGINS = env_list("WS_ALLOWED_ORIGINS", [])

SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env_bool("DJANGO_SECURE_SSL_REDIRECT", False)
SESSION_COOKIE_SECURE = not DEBUG
CSRF_COOKIE_SECURE = not DEBUG
SECURE_HSTS_SECONDS = env_int("DJANGO_HSTS_SECONDS", 0)

# --- Product settings -----------------------------------------------------------------------
EVENT_RETENTION_DAYS = env_int("EVENT_RETENTION_DAYS", 7)
# Events still unpublished this long after commit are published by the relay task.
OUTBOX_RELAY_AFTER_S = env_int("OUTBOX_RELAY_AFTER_S", 3)
IDEMPOTENCY_TTL_HOURS = env_int("IDEMPOTENCY_TTL_HOURS", 24)
# A claim still "in progress" after this long belonged to a request that died: take it over.
IDEMPOTENCY_STALE_CLAIM_S = env_int("IDEMPOTENCY_STALE_CLAIM_S", 300)
WS_MAX_FRAME_BYTES = env_int("WS_MAX_FRAME_BYTES", 64 * 1024)
# Per-socket bound of queued outgoing events; past it the socket resyncs from the log.
WS_SEND_QUEUE_LIMIT = env_int("WS_SEND_QUEUE_LIMIT", 2000)
# Recent events each process keeps per outlet it serves, so catch-ups rarely read the log.
WS_RECENT_EVENTS = env_int("WS_RECENT_EVENTS", 2000)
# Abuse limits on sockets: connections per user per minute, and client messages per socket
# (a token bucket: sustained rate per second, with a burst). Exceeding either closes with 4429.
WS_CONNECTS_PER_MINUTE = env_int("WS_CONNECTS_PER_MINUTE", 120)
WS_MESSAGES_PER_SECOND = env_int("WS_MESSAGES_PER_SECOND", 20)
WS_MESSAGE_BURST = env_int("WS_MESSAGE_BURST", 60)
# Test hook for fault tests: skip the on-commit publication, as a crash would.
OUTBOX_SKIP_ON_COMMIT_PUBLISH = env_bool("OUTBOX_SKIP_ON_COMMIT_PUBLISH", False)

PAYMENT_QR_TTL = env_int("PAYMENT_QR_TTL", 15 * 60)
PAYMENTS_DEFAULT_PROVIDER = env_str("PAYMENTS_DEFAULT_PROVIDER", "sandbox")
PAYMENTS_SANDBOX_SECRET = env_str("PAYMENTS_SANDBOX_SECRET")
if not PAYMENTS_SANDBOX_SECRET and DEBUG:
    PAYMENTS_SANDBOX_SECRET = "embedded-sandbox-secret"
MIDTRANS_SERVER_KEY = env_str("MIDTRANS_SERVER_KEY")
MIDTRANS_BASE_URL = env_str("MIDTRANS_BASE_URL", "https://api.sandbox.midtrans.com")

# --- Logging --------------------------------------------------------------------------------
LOG_LEVEL = env_str("LOG_LEVEL", "INFO")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "json": {"()": "pos.observability.JsonLogFormatter"},
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": env_str("LOG_FORMAT", "plain" if DEBUG else "json"),
        }
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        "django.request": {"level": "ERROR"},
        "daphne": {"level": "WARNING"},
        # One line per task run every two seconds (the relay) drowns everything else.
        "celery.app.trace": {"level": "WARNING"},
    },
}

# pos sits below the tenancy app; it asks this function "may this user see this outlet?".
STREAM_OUTLET_RESOLVER = "tenants.selectors.outlet_for_user"
