"""Forty wrong passwords for one account at the same moment against a SQLite FILE database
(run by test_throttle.py; the in-memory test database cannot take parallel writers).

`python -m tests.accounts.throttle_load THREADS database|redis` migrates the fresh SQLite
file database that DATABASE_URL names, sends THREADS sign-in posts with a wrong password for
one account from one address, each thread on its own database connection (as separate web
processes would be), and prints one JSON document: the statuses and how many passwords were
checked.
"""

import json
import os
import sys
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.test")
django.setup()

import redis  # noqa: E402
from django.contrib.auth.backends import ModelBackend  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402
from django.test import Client, override_settings  # noqa: E402

from minicrm.accounts.models import User  # noqa: E402

REDIS_URL = "redis://127.0.0.1:6379/14"
# Its own prefix, and only its own keys removed: other test runs may share this Redis database.
REDIS_PREFIX = f"throttle-load-{uuid.uuid4().hex}"
CACHES = {
    "database": {
        "BACKEND": "django.core.cache.backends.db.DatabaseCache",
        "LOCATION": "minicrm_cache",
    },
    "redis": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": REDIS_PREFIX,
    },
}


def main(threads: int, backend: str) -> dict[str, Any]:
    call_command("migrate", verbosity=0)
    call_command("createcachetable", verbosity=0)
    User.objects.create_superuser("admin@example.com", "right-password-2026")
    owner = User.objects.create_user("owner@example.com", "right-password-2026")
    connection.close()

    checks = 0
    lock = threading.Lock()
    original = ModelBackend.authenticate

    def counting(backend_: ModelBackend, request: Any, *args: Any, **kwargs: Any) -> Any:
        nonlocal checks
        with lock:
            checks += 1
        return original(backend_, request, *args, **kwargs)

    ModelBackend.authenticate = counting  # type: ignore[method-assign]
    start = threading.Barrier(threads)

    def guess(_: int) -> int:
        client = Client(REMOTE_ADDR="203.0.113.7", raise_request_exception=False)
        try:
            start.wait(timeout=30)
            response = client.post("/sign-in/", {"email": owner.email, "password": "wrong-guess-1"})
            return response.status_code
        finally:
            connection.close()

    with (
        override_settings(CACHES={"default": CACHES[backend]}),
        ThreadPoolExecutor(threads) as pool,
    ):
        statuses = list(pool.map(guess, range(threads), timeout=120))
    if backend == "redis":
        client = redis.Redis.from_url(REDIS_URL)
        for key in client.scan_iter(f"{REDIS_PREFIX}:*"):
            client.delete(key)
    return {"statuses": sorted(statuses), "checks": checks}


if __name__ == "__main__":
    print(json.dumps(main(int(sys.argv[1]), sys.argv[2])))
