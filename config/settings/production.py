"""Production settings: the base settings with HTTPS hardening, PostgreSQL connection pooling and
JSON logs on by default.

`DJANGO_SETTINGS_MODULE=config.settings.production manage.py check --deploy` is clean.
"""

import os

os.environ.setdefault("DJANGO_SECURE_SSL_REDIRECT", "true")
os.environ.setdefault("DJANGO_SECURE_HSTS_SECONDS", "31536000")
os.environ.setdefault("DJANGO_BEHIND_PROXY", "true")
# A pool of PostgreSQL connections per process (ignored on SQLite and MariaDB), and log lines a
# collector can parse.
os.environ.setdefault("DATABASE_POOL", "true")
os.environ.setdefault("MINICRM_LOG_FORMAT", "json")

from .base import *  # noqa: F403
from .base import DEBUG

# Load balancers and orchestrators probe the app itself, over plain HTTP: answer, not redirect.
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$"]

if DEBUG:
    from django.core.exceptions import ImproperlyConfigured

    raise ImproperlyConfigured("config.settings.production refuses DJANGO_DEBUG=true.")
