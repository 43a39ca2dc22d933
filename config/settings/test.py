"""Test settings: the base settings with fast hashing and in-process tasks."""

import os
import tempfile
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

os.environ.setdefault("DJANGO_DEBUG", "false")
os.environ.setdefault("DJANGO_SECRET_KEY", "test-only-secret-key-not-for-production")
# MINICRM_TEST_TASKS_BACKEND=database or rq runs the suite's tasks through that real backend
# and its worker code, in the test's process (tests/core/real_backends.py); the default runs
# them in place (immediate). A worker process a test starts sets MINICRM_TASKS_BACKEND itself.
TEST_TASKS_BACKEND = os.environ.get("MINICRM_TEST_TASKS_BACKEND", "")
if TEST_TASKS_BACKEND:
    os.environ["MINICRM_TASKS_BACKEND"] = TEST_TASKS_BACKEND
os.environ.setdefault("MINICRM_TASKS_BACKEND", "immediate")
# The Redis tests (MINICRM_TEST_REDIS_URL) use their own database number, never the app's.
TEST_REDIS_URL = os.environ.get("MINICRM_TEST_REDIS_URL") or "redis://127.0.0.1:6379/15"
if TEST_TASKS_BACKEND == "rq":
    os.environ["REDIS_URL"] = TEST_REDIS_URL

# After the environment above, which the base settings read.
from .base import *  # noqa: E402, F403
from .base import CACHES, DATABASES, RQ_QUEUES, STORAGES, TASKS  # noqa: E402

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
# A test that turns it on without a folder of its own never writes into the developer's var/.
MINICRM_SNAPSHOT_DIR = Path(
    os.environ.get("MINICRM_SNAPSHOT_DIR") or Path(tempfile.gettempdir()) / "minicrm-test-snapshot"
)
RQ_QUEUES["default"]["URL"] = TEST_REDIS_URL
if TEST_TASKS_BACKEND == "database":
    TASKS["default"]["BACKEND"] = "tests.core.real_backends.DatabaseBackendWorked"
elif TEST_TASKS_BACKEND == "rq":
    TASKS["default"]["BACKEND"] = "tests.core.real_backends.RQBackendWorked"
elif TEST_TASKS_BACKEND:
    raise ImproperlyConfigured("MINICRM_TEST_TASKS_BACKEND must be database or rq.")

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
