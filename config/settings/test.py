"""Test settings: the base settings with fast hashing and in-process tasks."""

import os

os.environ.setdefault("DJANGO_DEBUG", "false")
os.environ.setdefault("DJANGO_SECRET_KEY", "test-only-secret-key-not-for-production")
os.environ.setdefault("MINICRM_TASKS_BACKEND", "immediate")

from .base import *  # noqa: F403
from .base import CACHES, DATABASES, RQ_QUEUES, STORAGES

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
STORAGES["staticfiles"]["BACKEND"] = "django.contrib.staticfiles.storage.StaticFilesStorage"
CACHES["default"] = {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}
SECURE_COOKIES = False
SESSION_COOKIE_SECURE = False
CSRF_COOKIE_SECURE = False
ALLOWED_HOSTS = ["*"]
# Tests and benchmarks send thousands of calls with one token; the rate-limit tests turn it on.
MINICRM_API_RATE_LIMIT = 0
# Tests exercise the SQL compiler by default; the snapshot tests turn the copy on themselves.
MINICRM_PREVIEW_SNAPSHOT = False
# The Redis tests (MINICRM_TEST_REDIS_URL) use their own database number, never the app's.
RQ_QUEUES["default"]["URL"] = (
    os.environ.get("MINICRM_TEST_REDIS_URL") or "redis://127.0.0.1:6379/15"
)

# A runaway query fails its test instead of holding the run (pytest's own timeout ends the rest).
# Generous, so only a query that would never return meets it.
TEST_STATEMENT_TIMEOUT_SECONDS = 120
_database = DATABASES["default"]
if _database["ENGINE"] == "django.db.backends.postgresql":
    _database.setdefault("OPTIONS", {})["options"] = (
        f"-c statement_timeout={TEST_STATEMENT_TIMEOUT_SECONDS * 1000}"
    )
elif _database["ENGINE"] == "django.db.backends.mysql":
    # MariaDB's variable (MySQL would need max_execution_time, SELECTs only).
    _database["OPTIONS"]["init_command"] += f", max_statement_time={TEST_STATEMENT_TIMEOUT_SECONDS}"
