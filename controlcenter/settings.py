"""Settings for Relay Control Center, read from environment variables.

Every variable is documented in README.md ("Configuration"). Readers in
``controlcenter.env`` reject bad values with a message naming the variable.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import dj_database_url
import django_stubs_ext
from django.utils.translation import gettext_lazy as _

from controlcenter.env import (
    env_bool,
    env_cache,
    env_int,
    env_list,
    env_origins,
    env_path,
    env_str,
    secret_key,
)

django_stubs_ext.monkeypatch()

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = env_path("CC_VAR_DIR", BASE_DIR / "var", base=BASE_DIR)

DEBUG = env_bool("DEBUG", False)
SECRET_KEY = secret_key(debug=DEBUG, key_file=VAR_DIR / "secret_key")
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["127.0.0.1", "localhost", "[::1]"] if DEBUG else [])
CSRF_TRUSTED_ORIGINS = env_origins("CSRF_TRUSTED_ORIGINS", [])
# Reverse proxies whose X-Forwarded-For is believed (controlcenter.clientip).
CC_TRUSTED_PROXIES = env_list("CC_TRUSTED_PROXIES", [])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "crispy_forms",
    "crispy_bootstrap5",
    "axes",
    "django_tasks",
    "django_tasks_db",
    "controlcenter",
    "relaypolicy",
    "aliases",
    "jobs",
    "maillogs",
    "gateways",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "controlcenter.middleware.ContentSecurityPolicyMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.auth.middleware.LoginRequiredMiddleware",
    "controlcenter.audit.AuditContextMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "controlcenter.urls"
WSGI_APPLICATION = "controlcenter.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.i18n",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "controlcenter.context_processors.navigation",
            ],
        },
    },
]

DATABASES = {
    "default": dj_database_url.parse(
        env_str("DATABASE_URL", f"sqlite:///{VAR_DIR / 'db.sqlite3'}"),
        conn_max_age=env_int("CC_DB_CONN_MAX_AGE", 60),
        conn_health_checks=True,
    )
}
if DATABASES["default"].get("ENGINE") == "django.db.backends.sqlite3":
    # Write transactions take the lock when they begin, so they serialise (and wait up to
    # the timeout) instead of failing with "database is locked" half-way.
    DATABASES["default"].setdefault("OPTIONS", {})["transaction_mode"] = "IMMEDIATE"
    # Tests use a file, not the shared-cache in-memory database: with threads (the live server,
    # the job worker) shared cache fails at once with "table is locked" where a file waits.
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / "test-db.sqlite3")}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Shared by every worker and command: the policy's self-test, lint and export preview are
# computed once per state of the policy (controlcenter.policycache).
CACHES = {"default": env_cache("CC_CACHE_URL")}

AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "controlcenter:dashboard"
LOGOUT_REDIRECT_URL = "login"

# A working day; the session also ends when the browser closes.
SESSION_COOKIE_AGE = env_int("CC_SESSION_HOURS", 9, minimum=1) * 3600
SESSION_EXPIRE_AT_BROWSER_CLOSE = True

# Login throttling: a username from one address is locked after the failures,
# for a finite cool-off.  Unlock early with `python manage.py axes_reset_username NAME`.
AXES_FAILURE_LIMIT = env_int("CC_LOGIN_FAILURE_LIMIT", 5, minimum=1)
AXES_COOLOFF_TIME = timedelta(minutes=env_int("CC_LOGIN_COOLOFF_MINUTES", 15, minimum=1))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"
AXES_CLIENT_IP_CALLABLE = "controlcenter.clientip.client_ip"
AXES_VERBOSE = False

# Background jobs (jobs/): django-tasks with its database backend, so the queue lives in the
# project's own database (SQLite or PostgreSQL) and needs no extra server; `manage.py db_worker`
# runs them (`make run` starts one next to the development server).
TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend", "QUEUES": ["default"]}}

LANGUAGE_CODE = "ja"
LANGUAGES = [("ja", _("Japanese")), ("en", _("English"))]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = "Asia/Tokyo"
# One date format everywhere (2026-12-02 19:49), whatever the language: controlcenter/formats.
FORMAT_MODULE_PATH = ["controlcenter.formats"]
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = VAR_DIR / "staticfiles"
STATIC_ROOT.mkdir(parents=True, exist_ok=True)  # whitenoise warns on every start without it
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "django.contrib.staticfiles.storage.StaticFilesStorage"
            if DEBUG
            else "whitenoise.storage.CompressedManifestStaticFilesStorage"
        )
    },
}

CRISPY_ALLOWED_TEMPLATE_PACKS = "bootstrap5"
CRISPY_TEMPLATE_PACK = "bootstrap5"

MESSAGE_TAGS = {40: "danger"}  # messages.ERROR -> Bootstrap's alert-danger

# Where exports are written when 全設定 leaves the folder blank.
CC_EXPORT_DIR = env_path("CC_EXPORT_DIR", VAR_DIR / "export", base=BASE_DIR)
# Largest CSV the upload page accepts.
CC_UPLOAD_MAX_BYTES = env_int("CC_UPLOAD_MAX_MB", 20, minimum=1) * 1024 * 1024
DATA_UPLOAD_MAX_MEMORY_SIZE = CC_UPLOAD_MAX_BYTES + 1024 * 1024
# Stored upload previews per user (the oldest give way to a new one).
CC_UPLOAD_QUOTA_BYTES = max(
    env_int("CC_UPLOAD_QUOTA_MB", 60, minimum=1) * 1024 * 1024, CC_UPLOAD_MAX_BYTES
)
DATA_UPLOAD_MAX_NUMBER_FIELDS = 20000
# The gateway's mail work folder on this machine (read-only): its logs (<log>/<host>/) and its
# retry queue (domains/, holding/). Empty: the log screens offer uploads only.
CC_MAIL_WORK_DIR = env_str("CC_MAIL_WORK_DIR", "")
# Largest log upload (files or archive) the log analysis page accepts.
CC_LOG_UPLOAD_MAX_BYTES = env_int("CC_LOG_UPLOAD_MAX_MB", 500, minimum=1) * 1024 * 1024
CC_LOG_UPLOAD_DIR = VAR_DIR / "log-uploads"

# Security: on whenever DEBUG is off; each has an explicit opt-out (README "Security").
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
SESSION_COOKIE_HTTPONLY = True
CC_CSP = env_str(
    "CC_CSP",
    "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
    "object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'",
)
if not DEBUG:
    SECURE_SSL_REDIRECT = env_bool("CC_SSL_REDIRECT", True)
    SECURE_HSTS_SECONDS = env_int("CC_HSTS_SECONDS", 31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("CC_HSTS_INCLUDE_SUBDOMAINS", True)
    SECURE_HSTS_PRELOAD = env_bool("CC_HSTS_PRELOAD", True)
    SESSION_COOKIE_SECURE = env_bool("CC_SECURE_COOKIES", True)
    CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
    if env_bool("CC_BEHIND_TLS_PROXY", False):
        SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env_str("CC_LOG_LEVEL", "INFO").upper()},
    # axes logs every login at INFO with masked fields; its failures are WARNING.
    "loggers": {"axes": {"level": "WARNING"}},
}
