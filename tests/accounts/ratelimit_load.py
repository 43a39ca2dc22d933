"""Parallel API calls with one token against a SQLite FILE database and the database cache
(run by test_api_ratelimit.py; the in-memory test database cannot show locking).

`python -m tests.accounts.ratelimit_load THREADS LIMIT` migrates a fresh database in
$MINICRM_VAR_DIR, then sends THREADS requests with one token at the same moment, each thread on
its own database connection (as separate web processes would be), and prints one JSON document:
the statuses, and how many of THREADS bare `cache.add` + `cache.incr` calls on the same cache
were lost (Django's database cache increments by a read then a write).
"""

import json
import os
import sys
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.test")
django.setup()

from django.core.cache import cache  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402
from django.test import Client, override_settings  # noqa: E402

from minicrm.accounts.models import Role, User  # noqa: E402
from minicrm.accounts.services import api_token_create  # noqa: E402

DATABASE_CACHE = {
    "default": {
        "BACKEND": "django.core.cache.backends.db.DatabaseCache",
        "LOCATION": "minicrm_cache",
    }
}


def _at_once(threads: int, work: Callable[[], Any]) -> list[Any]:
    start = threading.Barrier(threads)

    def run(_: int) -> Any:
        try:
            start.wait(timeout=30)
            return work()
        finally:
            connection.close()

    with ThreadPoolExecutor(threads) as pool:
        return list(pool.map(run, range(threads), timeout=90))


def main(threads: int, limit: int) -> dict[str, Any]:
    call_command("migrate", verbosity=0)
    user = User.objects.create_user("load@example.com", "x" * 12, role=Role.VIEWER)
    _token, raw = api_token_create(user=user, name="load")
    connection.close()

    def call() -> int:
        client = Client(headers={"Authorization": f"Bearer {raw}"}, raise_request_exception=False)
        return client.get("/api/v1/me").status_code

    def bare_increment() -> int:
        cache.add("bare", 0, timeout=300)
        return int(cache.incr("bare"))

    settings = {"CACHES": DATABASE_CACHE, "MINICRM_API_RATE_LIMIT": limit}
    # A window long enough that it cannot end during the burst.
    with override_settings(**settings, MINICRM_API_RATE_WINDOW_SECONDS=10**9):
        statuses = _at_once(threads, call)
        _at_once(threads, bare_increment)
        bare_lost = threads - int(cache.get("bare", 0))
    return {"statuses": sorted(statuses), "bare_increments_lost": bare_lost}


if __name__ == "__main__":
    print(json.dumps(main(int(sys.argv[1]), int(sys.argv[2]))))
