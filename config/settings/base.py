"""Every setting, read from the environment, with safe development defaults (12-factor)."""

from datetime import timedelta
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

from config.env import email_settings, env

BASE_DIR = Path(__file__).resolve().parent.parent.parent

DJANGO_ENV = env.str("DJANGO_ENV", default="development")

# ---------------------------------------------------------------- SECURITY
SECRET_KEY = env.str("DJANGO_SECRET_KEY", default="django-insecure-development-only-secret-key-change-me")
DEBUG = env.bool("DJANGO_DEBUG", default=False)
ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]", "testserver"])
CSRF_TRUSTED_ORIGINS = env.list("DJANGO_CSRF_TRUSTED_ORIGINS", default=[])
# Behind a load balancer that ends TLS, trust its X-Forwarded-Proto (the LB must overwrite it).
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env.bool("DJANGO_SECURE_SSL_REDIRECT", default=False)
# The balancer's health checks speak plain HTTP.
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$"]
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
SESSION_COOKIE_HTTPONLY = True
# Request bodies: contract default 1 MiB (413 above).
DATA_UPLOAD_MAX_MEMORY_SIZE = env.int("MAX_REQUEST_BODY_BYTES", default=1024 * 1024)
# Clients behind this many proxies: the client IP is taken that far back in X-Forwarded-For.
TRUSTED_PROXY_COUNT = env.int("TRUSTED_PROXY_COUNT", default=0)

# ---------------------------------------------------------------- APPLICATIONS
INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "django_filters",
    "corsheaders",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_tasks",
    "django_tasks_db",
    "core",
    "users",
]

MIDDLEWARE = [
    "core.middleware.RequestIdMiddleware",
    # Sees every answer (middleware ones too) with its final status: access line + request metrics.
    "core.access_log.AccessLogMiddleware",
    # /healthz, /readyz and /metrics answer before Host checks and HTTPS redirects (balancers, Prometheus).
    "core.middleware.HealthCheckMiddleware",
    "core.metrics.MetricsMiddleware",
    # Sends a Bearer GET's auth-state round trip to Redis now; the view reads it after the chain below has run.
    "users.hot_path.AuthStatePrefetchMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "core.middleware.CorsMiddleware",  # django-cors-headers', cheaper when there is no Origin header
    "core.middleware.ErrorEnvelopeMiddleware",
    # Inside CORS, so a 429 carries the CORS headers a browser needs to read it.
    "core.ratelimit.RateLimitMiddleware",
    # The admin's session, auth and messages middleware, skipped under /api/v1/ (Bearer JSON, PERF.md). CSRF stays
    # as Django ships it (check --deploy looks for it by name); DRF's views are csrf_exempt anyway.
    "core.middleware.AdminSessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "core.middleware.AdminAuthenticationMiddleware",
    "core.middleware.AdminMessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

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

# ---------------------------------------------------------------- DATABASE
# Unset DATABASE_URL: a SQLite file, the embedded default. PostgreSQL: postgres://user:pass@host:port/name
DATABASES = {"default": env.db_url("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}")}
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # Persistent, health-checked connections: a new PostgreSQL connection costs several ms.
    DATABASES["default"]["CONN_MAX_AGE"] = env.int("DATABASE_CONN_MAX_AGE", default=600)
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {"connect_timeout": env.int("DATABASE_CONNECT_TIMEOUT", default=3)}
    )
    # Behind PgBouncer in transaction pooling a server connection changes hands between transactions: no
    # server-side cursors (QuerySet.iterator()) and no automatic prepared statements (README, Scaling out).
    if env.bool("DATABASE_TRANSACTION_POOLING", default=False):
        DATABASES["default"]["DISABLE_SERVER_SIDE_CURSORS"] = True
        DATABASES["default"]["OPTIONS"]["prepare_threshold"] = None
else:
    # SQLite: wait for a writer rather than failing with "database is locked".
    DATABASES["default"].setdefault("OPTIONS", {}).update({"timeout": 20, "transaction_mode": "IMMEDIATE"})
DATABASE_TRANSACTION_POOLING = env.bool("DATABASE_TRANSACTION_POOLING", default=False)
# Web workers' PostgreSQL sessions bound each statement and each lock wait (core/db.py), in seconds (0: no bound):
# a stuck query or a row locked elsewhere then answers 503 before gunicorn's worker timeout (30 s) kills the
# worker. Management commands (migrations, seed_users) and the mail worker run without them.
DATABASE_STATEMENT_TIMEOUT = env.float("DATABASE_STATEMENT_TIMEOUT", default=20.0)
DATABASE_LOCK_TIMEOUT = env.float("DATABASE_LOCK_TIMEOUT", default=5.0)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# ---------------------------------------------------------------- CACHE
REDIS_URL = env.str("REDIS_URL", default="")
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": env.str("CACHE_KEY_PREFIX", default="users"),
            "OPTIONS": {
                "CLIENT_CLASS": "django_redis.client.DefaultClient",
                # Short timeouts: a dead Redis must cost milliseconds, not the request.
                "SOCKET_CONNECT_TIMEOUT": env.float("REDIS_CONNECT_TIMEOUT", default=0.25),
                "SOCKET_TIMEOUT": env.float("REDIS_SOCKET_TIMEOUT", default=0.5),
            },
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "users"}}
# Cache auth state and user bodies only in a cache every process shares: a local-memory cache is per gunicorn
# worker, so a logout served by one worker could not reach the others. Unshared, every request reads the database.
SHARED_STATE_CACHE = env.bool("SHARED_STATE_CACHE", default=bool(REDIS_URL))
# Positive auth-state entries (session open, user flags) live this long; revocation overwrites them at once.
AUTH_STATE_CACHE_TTL = env.int("AUTH_STATE_CACHE_TTL", default=300)
# Seconds a process may keep using a cache generation after another process bumped it (a failed invalidation).
STATE_CACHE_EPOCH_POLL = env.float("STATE_CACHE_EPOCH_POLL", default=2.0)
# Cached user entries (auth flags + the user's JSON body); every write path replaces them after commit.
USER_CACHE_TTL = env.int("USER_CACHE_TTL", default=3600)

# ---------------------------------------------------------------- AUTH
AUTH_USER_MODEL = "users.User"
AUTHENTICATION_BACKENDS = ["django.contrib.auth.backends.ModelBackend"]
PASSWORD_HASHERS = [
    "users.hashers.Argon2PasswordHasher",  # Django's Argon2, in kept memory and ARGON2_THREADS threads
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2SHA1PasswordHasher",
    "django.contrib.auth.hashers.ScryptPasswordHasher",
]
# A process keeps Argon2's 100 MiB between hashes instead of faulting it in afresh each time (core/allocator.py).
ARGON2_KEEP_MEMORY = env.bool("ARGON2_KEEP_MEMORY", default=True)
# ...on transparent huge pages where the kernel offers them on request (core/allocator.py); needs the above.
ARGON2_HUGE_PAGES = env.bool("ARGON2_HUGE_PAGES", default=True)
# Threads computing one hash's lanes (users/hashers.py): 1, as a worker serves one request per core; 0: one a lane.
ARGON2_THREADS = env.int("ARGON2_THREADS", default=1)
if ARGON2_THREADS < 0:
    raise ImproperlyConfigured("ARGON2_THREADS must be 0 (one thread per lane) or more")
# Hashes one process runs at once (users/hashers.py): the others wait, and a process holds that many hashes' memory.
ARGON2_MAX_CONCURRENT = env.int("ARGON2_MAX_CONCURRENT", default=1)
if ARGON2_MAX_CONCURRENT < 1:
    raise ImproperlyConfigured("ARGON2_MAX_CONCURRENT must be 1 or more")
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 10}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
ALLOW_REGISTRATION = env.bool("ALLOW_REGISTRATION", default=True)

# ---------------------------------------------------------------- DRF
REST_FRAMEWORK = {
    "EXCEPTION_HANDLER": "core.exception_handler.api_exception_handler",
    # JWT first: DRF takes the first class's authenticate_header, so a missing token is a 401, not a 403.
    "DEFAULT_AUTHENTICATION_CLASSES": ["users.authentication.SessionJWTAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PARSER_CLASSES": ["core.parsers.JSONParser"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PAGINATION_CLASS": "core.pagination.KeysetCursorPagination",
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    # RATELIMIT_USER per user (and RATELIMIT_ANON for ignored Bearer headers); see core/ratelimit.py.
    "DEFAULT_THROTTLE_CLASSES": ["core.ratelimit.RequestRateThrottle"],
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
    "PAGE_SIZE": 20,
}

# ---------------------------------------------------------------- JWT
JWT_ACCESS_TTL = env.int("JWT_ACCESS_TTL", default=15 * 60)
JWT_REFRESH_TTL = env.int("JWT_REFRESH_TTL", default=7 * 24 * 3600)
JWT_REFRESH_GRACE = env.int("JWT_REFRESH_GRACE", default=10)
SIMPLE_JWT = {
    "ALGORITHM": env.str("JWT_ALGORITHM", default="HS256"),
    "SIGNING_KEY": env.str("JWT_SIGNING_KEY", default="development-only-jwt-signing-key-change-me-please"),
    "ACCESS_TOKEN_LIFETIME": timedelta(seconds=JWT_ACCESS_TTL),
    "REFRESH_TOKEN_LIFETIME": timedelta(seconds=JWT_REFRESH_TTL),
    "AUTH_HEADER_TYPES": ("Bearer",),
    "USER_ID_FIELD": "id",
    "USER_ID_CLAIM": "user_id",
    "UPDATE_LAST_LOGIN": False,
    "LEEWAY": 0,
}

# ---------------------------------------------------------------- RATE LIMITS (django-ratelimit syntax)
RATELIMIT_ENABLE = env.bool("RATELIMIT_ENABLE", default=True)
RATELIMIT_USE_CACHE = "default"
RATELIMIT_VIEW = "core.views.rate_limited"
RATELIMIT_LOGIN_IP = env.str("RATELIMIT_LOGIN_IP", default="10/m")
RATELIMIT_LOGIN_EMAIL = env.str("RATELIMIT_LOGIN_EMAIL", default="5/m")
RATELIMIT_REGISTER_IP = env.str("RATELIMIT_REGISTER_IP", default="10/h")
RATELIMIT_RESET_IP = env.str("RATELIMIT_RESET_IP", default="10/h")
RATELIMIT_RESET_EMAIL = env.str("RATELIMIT_RESET_EMAIL", default="3/h")
RATELIMIT_USER = env.str("RATELIMIT_USER", default="1200/m")
RATELIMIT_ANON = env.str("RATELIMIT_ANON", default="300/m")
RATELIMIT_ADMIN_LOGIN_IP = env.str("RATELIMIT_ADMIN_LOGIN_IP", default="10/m")
RATELIMIT_ADMIN_LOGIN_USERNAME = env.str("RATELIMIT_ADMIN_LOGIN_USERNAME", default="5/m")

# ---------------------------------------------------------------- CORS
CORS_ALLOWED_ORIGINS = env.list("CORS_ALLOWED_ORIGINS", default=[])
CORS_ALLOW_CREDENTIALS = False  # Bearer tokens, not cookies: never credentials across origins.
CORS_EXPOSE_HEADERS = ["X-Request-ID", "Retry-After", "Location"]

# ---------------------------------------------------------------- MAIL
EMAIL_URL = env.str("EMAIL_URL", default="console:")
globals().update(email_settings(EMAIL_URL))
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="no-reply@localhost")
FRONTEND_URL = env.str("FRONTEND_URL", default="http://localhost:3000").rstrip("/")
# Mail leaves the request path as a django-tasks task, enqueued after commit. "immediate": sent in the web process
# as the request ends (development, tests); "database": queued in the database and sent by `manage.py db_worker`
# (the Procfile's worker), which survives a crash of the worker without losing a message.
TASKS_BACKEND = env.str("TASKS_BACKEND", default="database" if DJANGO_ENV == "production" else "immediate")
TASKS = {
    "default": {
        "BACKEND": {
            "immediate": "django_tasks.backends.immediate.ImmediateBackend",
            "database": "django_tasks_db.DatabaseBackend",
        }[TASKS_BACKEND]
    }
}
MAIL_MAX_ATTEMPTS = env.int("MAIL_MAX_ATTEMPTS", default=5)
MAIL_RETRY_DELAY = env.int("MAIL_RETRY_DELAY", default=30)  # seconds before the 2nd attempt, doubling after
# A mail task still running after this long lost its worker (killed mid-send): the worker puts it back in the queue.
MAIL_TASK_STALE_AFTER = env.int("MAIL_TASK_STALE_AFTER", default=300)

# ---------------------------------------------------------------- ACCOUNT LIFECYCLE
REQUIRE_EMAIL_VERIFICATION = env.bool("REQUIRE_EMAIL_VERIFICATION", default=False)
REGISTRATION_ENUMERATION_PROTECTION = env.bool("REGISTRATION_ENUMERATION_PROTECTION", default=False)
EMAIL_VERIFICATION_TIMEOUT = env.int("EMAIL_VERIFICATION_TIMEOUT", default=3 * 24 * 3600)
PASSWORD_RESET_TIMEOUT = env.int("PASSWORD_RESET_TIMEOUT", default=3600)  # Django's own setting, in seconds
RATELIMIT_VERIFY_RESEND = env.str("RATELIMIT_VERIFY_RESEND", default="3/h")
# Per-account lockout, counted per submitted email (Keycloak's brute-force detection is the model).
LOCKOUT_THRESHOLD = env.int("LOCKOUT_THRESHOLD", default=10)  # failed logins ...
LOCKOUT_WINDOW = env.int("LOCKOUT_WINDOW", default=3600)  # ... within this many seconds lock the account
LOCKOUT_DURATION = env.int("LOCKOUT_DURATION", default=15 * 60)  # first lock; each further lock doubles it
LOCKOUT_MAX_DURATION = env.int("LOCKOUT_MAX_DURATION", default=24 * 3600)

# ---------------------------------------------------------------- DOCS
SPECTACULAR_SETTINGS = {
    "TITLE": "Users service API",
    "DESCRIPTION": (
        "Users, JWT sessions and accounts. Every error uses one envelope (see ErrorEnvelope), requests the HTTP "
        "server refuses before the application included: 400 `bad_request` (a request line or header it cannot "
        "parse), and four codes the contract's table lacks: 414 `uri_too_long`, 417 `expectation_failed`, "
        "431 `header_fields_too_large`, 501 `not_implemented` (a transfer coding it does not know)."
    ),
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_PERMISSIONS": ["rest_framework.permissions.AllowAny"],
    "SERVE_AUTHENTICATION": [],
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    # Swagger UI would otherwise send the schema URL to validator.swagger.io for its badge: no outside network.
    "SWAGGER_UI_SETTINGS": {"deepLinking": True, "validatorUrl": None},
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "ENUM_NAME_OVERRIDES": {},
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "core.schema.add_error_responses",
        "core.schema.strip_trailing_slashes",
    ],
}
API_DOCS_PUBLIC = env.bool("API_DOCS_PUBLIC", default=True)

# ---------------------------------------------------------------- STATIC
STATIC_URL = "static/"
STATIC_ROOT = env.str("STATIC_ROOT", default="") or None
# Serve app assets (admin, Swagger UI, Redoc) straight from the installed packages: no collectstatic needed.
WHITENOISE_USE_FINDERS = True

# ---------------------------------------------------------------- I18N
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

# ---------------------------------------------------------------- LOGGING
LOG_LEVEL = env.str("LOG_LEVEL", default="INFO").upper()
LOG_FORMAT = env.str("LOG_FORMAT", default="json" if DJANGO_ENV == "production" else "text")
if LOG_FORMAT not in ("json", "text"):
    raise ImproperlyConfigured("LOG_FORMAT must be json or text")
# One line per request from core.access_log (gunicorn's own access log is off: config/gunicorn.py).
ACCESS_LOG = env.bool("ACCESS_LOG", default=True)
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"request_id": {"()": "core.logging.RequestIdFilter"}},
    "formatters": {
        "json": {"()": "core.logging.JsonFormatter"},
        "text": {"format": "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"},
    },
    "handlers": {
        "stdout": {
            "class": "logging.StreamHandler",
            "stream": "ext://sys.stdout",
            "formatter": LOG_FORMAT,
            "filters": ["request_id"],
        }
    },
    "root": {"handlers": ["stdout"], "level": LOG_LEVEL},
    "loggers": {
        # The access log is ours (core.access_log); Django's own request logger would repeat each 4xx/5xx.
        "django.request": {"level": "ERROR", "propagate": True},
        "django.server": {"level": "WARNING"},
    },
}

# ---------------------------------------------------------------- METRICS
# /metrics: these networks, or `Authorization: Bearer $METRICS_TOKEN` from anywhere (empty: no token accepted).
METRICS_ALLOWED_IPS = env.list("METRICS_ALLOWED_IPS", default=["127.0.0.0/8", "::1"])
METRICS_TOKEN = env.str("METRICS_TOKEN", default="")
