"""Read replica (minicrm.core.db_router, minicrm.core.replica): the read-heavy paths read the
replica, a client that has just written reads the primary, and without a replica nothing
changes.

The routing rules are tested in process on any database; the paths themselves against two real
PostgreSQL databases holding different customers (tests/core/replica_process.py), so each
answer shows which database gave it.
"""

import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dj_database_url
import psycopg
import pytest
from django.conf import settings
from django.contrib.sessions.models import Session
from django.core.cache.backends.db import DatabaseCache
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.test import RequestFactory

from minicrm.core.db_router import (
    REPLICA_DB_ALIAS,
    ReplicaRouter,
    _pin_ignored_tables,
    read_alias,
    sql_writes,
)
from minicrm.core.replica import PIN_COOKIE, ReplicaPinMiddleware, replica_reads
from minicrm.customers.models import Customer
from tests.conftest import service_url

ROOT = Path(__file__).resolve().parents[2]
MIGRATE_SECONDS = 240
SCENARIO_SECONDS = 120
ADMIN_SECONDS = 60


def _with_database(url: str, name: str) -> str:
    base, _sep, _old = url.rpartition("/")
    return f"{base}/{name}"


def _env(primary: str, replica: str | None) -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("DATABASE_", "DJANGO_"))
    }
    env.update(DJANGO_SETTINGS_MODULE="config.settings.test", DATABASE_URL=primary)
    env.update(MINICRM_REPLICA_PIN_SECONDS="5", MINICRM_PREVIEW_SNAPSHOT="false")
    if replica is not None:
        env["DATABASE_REPLICA_URL"] = replica
    return env


def _run(command: list[str], env: dict[str, str], timeout: int) -> str:
    done = subprocess.run(
        command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


@pytest.fixture(scope="module")
def postgres_databases() -> Iterator[dict[str, str]]:
    """A migrated primary, and two databases made from it before any row: the replica and a
    primary that runs alone (one migration for both tests). All three dropped whatever
    happens."""
    url = service_url("MINICRM_TEST_POSTGRES_URL", "PostgreSQL")
    config = dj_database_url.parse(url)
    stem = f"test_replica_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    names = {role: f"{stem}_{role}" for role in ("primary", "replica", "alone")}
    admin = psycopg.connect(
        host=config["HOST"],
        port=config["PORT"] or 5432,
        user=config["USER"],
        password=config["PASSWORD"] or None,
        dbname=config["NAME"],
        autocommit=True,
        connect_timeout=ADMIN_SECONDS,
        options=f"-c statement_timeout={ADMIN_SECONDS * 1000}",
    )
    try:
        admin.execute(f'CREATE DATABASE "{names["primary"]}"')
        primary = _with_database(url, names["primary"])
        _run(
            [sys.executable, "manage.py", "migrate", "--noinput"],
            _env(primary, None),
            MIGRATE_SECONDS,
        )
        for role in ("replica", "alone"):
            admin.execute(f'CREATE DATABASE "{names[role]}" TEMPLATE "{names["primary"]}"')
        yield {role: _with_database(url, name) for role, name in names.items()}
    finally:
        for name in names.values():
            # FORCE ends any session a killed scenario left behind.
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


def _scenarios(primary: str, replica: str | None) -> dict[str, Any]:
    command = [sys.executable, "tests/core/replica_process.py"]
    output = _run(command, _env(primary, replica), SCENARIO_SECONDS)
    return json.loads(output.strip().splitlines()[-1])


ON_PRIMARY = 3  # the customers seeded on the primary (replica_process.PRIMARY_CUSTOMERS)
ON_REPLICA = 8  # ... and on the replica


def _every_path(count: int) -> dict[str, int]:
    paths = ("members", "members_page", "export", "preview", "dashboard", "customers_page")
    return dict.fromkeys(paths, count)


@pytest.mark.once
@pytest.mark.timeout(MIGRATE_SECONDS + 3 * SCENARIO_SECONDS + 4 * ADMIN_SECONDS)
def test_read_paths_use_the_replica_until_the_client_writes(
    postgres_databases: dict[str, str],
) -> None:
    found = _scenarios(postgres_databases["primary"], postgres_databases["replica"])

    assert found["first"] == _every_path(ON_REPLICA)
    # A statement budget bounds the replica, whichever block starts first.
    assert found["replica_budgets"] == ["5s", "4s"]
    # Within a request: the replica until it writes, then the primary (which has the new row).
    assert found["same_request"] == {
        "before": ON_REPLICA,
        "after": ON_PRIMARY + 1,
        "pin_cookie": True,
    }
    # The next requests of the client that wrote (two rows by now) read the primary ...
    assert found["pin_cookie_after_write"] is True
    assert found["pinned"] == _every_path(ON_PRIMARY + 2)
    # ... until the pin expires; a client that wrote nothing never left the replica.
    assert found["expired"] == _every_path(ON_REPLICA)
    assert found["other_client"] == ON_REPLICA


@pytest.mark.once
@pytest.mark.timeout(MIGRATE_SECONDS + 3 * SCENARIO_SECONDS + 4 * ADMIN_SECONDS)
def test_without_a_replica_every_path_reads_the_primary(
    postgres_databases: dict[str, str],
) -> None:
    found = _scenarios(postgres_databases["alone"], None)

    assert found == {"first": _every_path(ON_PRIMARY)}


# --- The routing rules, in process (no replica database is ever queried) ----------------------
# Django warns that overriding DATABASES does not reconnect: nothing here connects to it.
pytestmark_replica_settings = pytest.mark.filterwarnings("ignore:Overriding setting DATABASES")


@pytest.fixture
def replica_settings(settings: Any) -> Iterator[None]:
    """A replica in the settings only: the routing decisions, never a query on it."""
    settings.DATABASES = {**settings.DATABASES, REPLICA_DB_ALIAS: {}}
    settings.MINICRM_REPLICA_PIN_SECONDS = 5
    yield
    _pin_ignored_tables.cache_clear()


def test_without_a_replica_nothing_is_routed(rf: RequestFactory) -> None:
    # The suite's own settings: no replica, no router; blocks and middleware do nothing.
    assert set(settings.DATABASES) == {"default"}
    assert settings.DATABASE_ROUTERS == []
    with replica_reads():
        assert read_alias() == "default"
    response = ReplicaPinMiddleware(lambda request: HttpResponse("ok"))(rf.get("/"))
    assert PIN_COOKIE not in response.cookies


@pytestmark_replica_settings
def test_reads_go_to_the_replica_only_inside_a_block(replica_settings: None) -> None:
    router = ReplicaRouter()
    assert read_alias() == "default"
    assert router.db_for_read(Customer) == "default"
    with replica_reads():
        assert read_alias() == REPLICA_DB_ALIAS
        assert router.db_for_read(Customer) == REPLICA_DB_ALIAS
        # The cache and the sessions are read where they were just written.
        assert router.db_for_read(DatabaseCache("t", {}).cache_model_class) == "default"
        assert router.db_for_read(Session) == "default"
        with replica_reads():
            assert read_alias() == REPLICA_DB_ALIAS
        assert read_alias() == REPLICA_DB_ALIAS
    assert read_alias() == "default"


@pytestmark_replica_settings
def test_writes_and_migrations_stay_on_the_primary(replica_settings: None) -> None:
    router = ReplicaRouter()
    from_replica = Customer(pk=1)
    from_replica._state.db = REPLICA_DB_ALIAS
    from_primary = Customer(pk=2)
    from_primary._state.db = "default"
    with replica_reads():
        # Left to Django, an instance read from the replica would be saved back to it.
        assert router.db_for_write(Customer, instance=from_replica) == "default"
    assert router.allow_migrate(REPLICA_DB_ALIAS, "customers") is False
    assert router.allow_migrate("default", "customers") is None
    assert router.allow_relation(from_replica, from_primary) is True


@pytestmark_replica_settings
@pytest.mark.django_db
def test_a_write_in_a_block_returns_its_reads_to_the_primary(replica_settings: None) -> None:
    with replica_reads():
        assert read_alias() == REPLICA_DB_ALIAS
        Customer.objects.create(external_id="c-1", email="c1@example.com")
        assert read_alias() == "default"
        with replica_reads():
            assert read_alias() == "default"
    # Outside a request each block is its own unit of work: the next one starts on the replica.
    with replica_reads():
        assert read_alias() == REPLICA_DB_ALIAS


@pytest.mark.parametrize(
    ("sql", "writes"),
    [
        ('INSERT INTO "customers_customer" ("email") VALUES (%s)', True),
        (" update `customers_customer` SET `email` = %s", True),
        ('DELETE FROM "segments_segment" WHERE "id" = %s', True),
        ("INSERT IGNORE INTO `customers_customertag` VALUES (%s)", True),
        ("REPLACE INTO customers_customer VALUES (%s)", True),
        ('SELECT "id" FROM "customers_customer" FOR UPDATE', False),
        ('UPDATE "django_session" SET "expire_date" = %s', False),
        ('INSERT INTO "minicrm_cache" VALUES (%s)', False),
        ('DELETE FROM "public"."minicrm_cache" WHERE "expires" < %s', False),
    ],
)
def test_writes_are_seen_in_the_sql_except_sessions_and_the_cache(
    settings: Any, sql: str, writes: bool
) -> None:
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.db.DatabaseCache",
            "LOCATION": "minicrm_cache",
        }
    }
    _pin_ignored_tables.cache_clear()
    try:
        assert sql_writes(sql) is writes
    finally:
        _pin_ignored_tables.cache_clear()


def _reading_view(seen: list[str]) -> Any:
    def view(request: HttpRequest) -> HttpResponse:
        with replica_reads():
            seen.append(read_alias())
        return HttpResponse("ok")

    return view


@pytestmark_replica_settings
@pytest.mark.django_db
def test_a_request_that_writes_pins_its_client_for_a_while(
    replica_settings: None, rf: RequestFactory
) -> None:
    seen: list[str] = []

    def writing_view(request: HttpRequest) -> HttpResponse:
        with replica_reads():
            seen.append(read_alias())
        Customer.objects.create(external_id="c-1", email="c1@example.com")
        with replica_reads():
            seen.append(read_alias())
        return HttpResponse("ok")

    before = time.time()
    response = ReplicaPinMiddleware(writing_view)(rf.post("/"))
    assert seen == [REPLICA_DB_ALIAS, "default"]
    cookie = response.cookies[PIN_COOKIE]
    assert cookie["max-age"] == 5
    assert cookie["httponly"] is True
    # The moment is rounded up to the millisecond: never before 5 s from now, at most 1 ms past.
    assert before + 5 <= float(cookie.value) <= time.time() + 5 + 0.001

    # The next request carries the cookie: the primary, until the moment it names.
    reading = ReplicaPinMiddleware(_reading_view(seen))
    request = rf.get("/")
    request.COOKIES[PIN_COOKIE] = cookie.value
    assert PIN_COOKIE not in reading(request).cookies  # reading alone never pins
    request = rf.get("/")
    request.COOKIES[PIN_COOKIE] = f"{before - 1:.3f}"  # expired
    reading(request)
    request = rf.get("/")
    request.COOKIES[PIN_COOKIE] = "not-a-time"
    reading(request)
    assert seen[2:] == ["default", REPLICA_DB_ALIAS, REPLICA_DB_ALIAS]


@pytestmark_replica_settings
@pytest.mark.django_db
def test_no_pin_when_pinning_is_off(
    replica_settings: None, settings: Any, rf: RequestFactory
) -> None:
    settings.MINICRM_REPLICA_PIN_SECONDS = 0

    def writing_view(request: HttpRequest) -> HttpResponse:
        Customer.objects.create(external_id="c-1", email="c1@example.com")
        return HttpResponse("ok")

    assert PIN_COOKIE not in ReplicaPinMiddleware(writing_view)(rf.post("/")).cookies


@pytestmark_replica_settings
def test_a_streamed_body_reads_as_its_request(replica_settings: None, rf: RequestFactory) -> None:
    def rows() -> Iterator[str]:
        # Runs after the middleware has returned, as a WSGI server reads an export.
        for _ in range(2):
            with replica_reads():
                yield read_alias() + "\n"

    def view(request: HttpRequest) -> StreamingHttpResponse:
        return StreamingHttpResponse(rows())

    pinned = rf.get("/")
    pinned.COOKIES[PIN_COOKIE] = f"{time.time() + 60:.3f}"
    response = ReplicaPinMiddleware(view)(pinned)
    assert isinstance(response, StreamingHttpResponse)
    assert b"".join(response.streaming_content) == b"default\ndefault\n"
    response = ReplicaPinMiddleware(view)(rf.get("/"))
    assert isinstance(response, StreamingHttpResponse)
    assert b"".join(response.streaming_content) == b"replica\nreplica\n"
