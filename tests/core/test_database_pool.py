"""PostgreSQL connection pooling under production settings: on by default (CONN_MAX_AGE 0, as
Django requires), sized from the environment, off with DATABASE_POOL=false; on a real server a
connection given back is the one the next query gets (same backend process), and the readiness
checks go through the pool, failing fast when the server is down."""

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest

from minicrm.web.health import DATABASE_DOWN
from tests.conftest import service_url
from tests.ports import free_port
from tests.production_env import production_env

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.once

SETTINGS = """
import json, django
django.setup()
from django.conf import settings
db = settings.DATABASES["default"]
print(json.dumps({"conn_max_age": db["CONN_MAX_AGE"], "pool": db["OPTIONS"].get("pool")}))
"""

# Three queries, each on a connection closed (given back) after it: the server's process id
# tells whether the pool handed the same connection back.
QUERIES = """
import json, django
django.setup()
from django.db import connection
pids = []
for _ in range(8):
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        pids.append(cursor.fetchone()[0])
    connection.close()
print(json.dumps({"pids": pids, "pool": type(connection.pool).__name__}))
"""

# The readiness checks through that pool: what /readyz answers.
READINESS = """
import json, django
django.setup()
from minicrm.web.health import readiness_checks
print(json.dumps({check.name: [check.ok, check.error] for check in readiness_checks()}))
"""


def _run(code: str, env: dict[str, str]) -> dict[str, Any]:
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    answer: dict[str, Any] = json.loads(result.stdout.splitlines()[-1])
    return answer


def _postgres_env(tmp_path: Path, url: str, **extra: str) -> dict[str, str]:
    return {**production_env(tmp_path), "DATABASE_URL": url, **extra}


def test_production_settings_pool_postgresql_connections(tmp_path: Path) -> None:
    # Settings only: nothing connects, so no server is needed.
    url = "postgres://crm@127.0.0.1:5432/crm"

    default = _run(SETTINGS, _postgres_env(tmp_path, url))
    sized = _run(
        SETTINGS,
        _postgres_env(tmp_path, url, DATABASE_POOL_MIN_SIZE="2", DATABASE_POOL_MAX_SIZE="8"),
    )
    off = _run(SETTINGS, _postgres_env(tmp_path, url, DATABASE_POOL="false"))

    assert default == {
        "conn_max_age": 0,
        "pool": {"min_size": 1, "max_size": 4, "timeout": 10.0},
    }
    assert sized["pool"] == {"min_size": 2, "max_size": 8, "timeout": 10.0}
    assert off == {"conn_max_age": 60, "pool": None}


def test_sqlite_keeps_its_own_connections_under_production_settings(tmp_path: Path) -> None:
    answer = _run(SETTINGS, production_env(tmp_path))

    assert answer == {"conn_max_age": 0, "pool": None}


def test_a_pooled_connection_is_reused_on_a_real_server(tmp_path: Path) -> None:
    url = service_url("MINICRM_TEST_POSTGRES_URL", "PostgreSQL")

    pooled = _run(QUERIES, _postgres_env(tmp_path, url))
    unpooled = _run(QUERIES, _postgres_env(tmp_path, url, DATABASE_POOL="false"))

    assert pooled["pool"] == "ConnectionPool"
    # Eight borrows from a pool of at most 4 connections (it may grow past its 1 while the first
    # borrow waits for it to fill): connections were handed back and reused.
    assert len(set(pooled["pids"])) <= 4, pooled
    assert unpooled["pool"] == "NoneType"
    assert len(set(unpooled["pids"])) == 8, unpooled  # closing really closed it


@pytest.fixture
def empty_postgres_database() -> Iterator[str]:
    """The URL of a new, empty database on the test server (no tables), dropped afterwards."""
    url = service_url("MINICRM_TEST_POSTGRES_URL", "PostgreSQL")
    name = f"test_production_pool_{os.getpid()}"
    with psycopg.connect(url, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}"')
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield urlunsplit(urlsplit(url)._replace(path=f"/{name}"))
    finally:
        with psycopg.connect(url, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_readiness_borrows_from_the_pool_with_its_own_bound(
    tmp_path: Path, empty_postgres_database: str
) -> None:
    down = f"postgres://postgres@127.0.0.1:{free_port()}/nothing"  # connections refused

    live = _run(READINESS, _postgres_env(tmp_path, empty_postgres_database))
    not_ready = _run(READINESS, _postgres_env(tmp_path, down))

    # The server answers, but the database has no tables yet (not migrated): the task table and
    # the cache table cannot be read, so it is not ready, and says why.
    assert live == {
        "database": [True, ""],
        "task_queue": [False, "ProgrammingError"],
        "cache": [False, "ProgrammingError"],
    }
    # The pool gives up after the check's 2 s (not its own 10 s wait); the task table and the
    # database cache live there, so they are not tried.
    assert not_ready == {
        "database": [False, "PoolTimeout"],
        "task_queue": [False, DATABASE_DOWN],
        "cache": [False, DATABASE_DOWN],
    }
