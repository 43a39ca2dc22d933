"""Migrations apply from scratch on every supported database server, the cache table with them.

The server tests make their own database, so they do not depend on the database under test and
run in one pass only (`once`); each drops its database whatever happens, bounded in time.
"""

import os
import sqlite3
import subprocess
import sys
import uuid
from importlib import import_module
from pathlib import Path

import dj_database_url
import psycopg
import pymysql
import pytest
from django.db import connection

from tests.conftest import service_url

ROOT = Path(__file__).resolve().parents[2]
CACHE_TABLE = "minicrm_cache"
# How long a whole `migrate` may take, and how long creating or dropping a database may wait.
MIGRATE_SECONDS = 240
ADMIN_SECONDS = 60

# A module name that starts with a digit is reachable only through import_module.
cache_table_migration = import_module("minicrm.core.migrations.0001_cache_table")


def _with_database(url: str, name: str) -> str:
    base, _sep, _old = url.rpartition("/")
    return f"{base}/{name}"


def _manage(env: dict[str, str], *arguments: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "manage.py", *arguments],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=MIGRATE_SECONDS,
        check=False,
    )


def _migrate(url: str) -> str:
    env = {**os.environ, "DATABASE_URL": url, "DJANGO_SETTINGS_MODULE": "config.settings.test"}
    applied = _manage(env, "migrate", "--noinput")
    assert applied.returncode == 0, applied.stdout + applied.stderr
    result = _manage(env, "migrate", "--check")
    assert result.returncode == 0, result.stdout + result.stderr
    # The cache table came with the migrations (test settings use a local cache, so the name is
    # given): Django's own command finds it and has nothing to do.
    cache = _manage(env, "createcachetable", CACHE_TABLE, "--dry-run")
    assert cache.stdout == f"Cache table '{CACHE_TABLE}' already exists.\n", cache.stderr
    return result.stdout


@pytest.mark.once
@pytest.mark.timeout(3 * MIGRATE_SECONDS + 2 * ADMIN_SECONDS)
def test_migrations_apply_on_postgresql() -> None:
    url = service_url("MINICRM_TEST_POSTGRES_URL", "PostgreSQL")
    name = f"minicrm_migrate_{uuid.uuid4().hex[:10]}"
    config = dj_database_url.parse(url)
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
        admin.execute(f'CREATE DATABASE "{name}"')
        _migrate(_with_database(url, name))
    finally:
        # FORCE ends any session a killed migrate left behind, so the drop cannot wait on it.
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


@pytest.mark.once
@pytest.mark.timeout(3 * MIGRATE_SECONDS + 2 * ADMIN_SECONDS)
def test_migrations_apply_on_mariadb() -> None:
    url = service_url("MINICRM_TEST_MARIADB_URL", "MariaDB/MySQL")
    name = f"minicrm_migrate_{uuid.uuid4().hex[:10]}"
    config = dj_database_url.parse(url)
    admin = pymysql.connect(
        host=config["HOST"],
        port=int(config["PORT"] or 3306),
        user=config["USER"],
        password=config["PASSWORD"] or "",
        connect_timeout=ADMIN_SECONDS,
        read_timeout=ADMIN_SECONDS,
        write_timeout=ADMIN_SECONDS,
    )
    try:
        with admin.cursor() as cursor:
            # A session still holding the database makes DROP wait for its metadata lock.
            cursor.execute(f"SET SESSION lock_wait_timeout = {ADMIN_SECONDS}")
            cursor.execute(
                f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"
            )
        _migrate(_with_database(url, name))
    finally:
        with admin.cursor() as cursor:
            cursor.execute(f"DROP DATABASE IF EXISTS `{name}`")
        admin.close()


@pytest.mark.once
@pytest.mark.timeout(3 * MIGRATE_SECONDS + 2 * ADMIN_SECONDS)
def test_migrations_apply_on_sqlite_in_wal_mode(tmp_path: Path) -> None:
    database = tmp_path / "fresh.sqlite3"

    _migrate(f"sqlite:///{database}")

    # WAL is a property of the file, so a fresh connection sees what the app's init_command set.
    with sqlite3.connect(database) as fresh:
        assert fresh.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


@pytest.mark.django_db(transaction=True)
def test_the_cache_table_migration_is_reversible_on_the_database_under_test() -> None:
    assert CACHE_TABLE in connection.introspection.table_names()
    try:
        with connection.schema_editor() as editor:
            cache_table_migration.drop_cache_table(None, editor)
        assert CACHE_TABLE not in connection.introspection.table_names()
    finally:
        with connection.schema_editor() as editor:
            cache_table_migration.create_cache_table(None, editor)
    assert CACHE_TABLE in connection.introspection.table_names()
    with connection.cursor() as cursor:
        table = connection.ops.quote_name(CACHE_TABLE)
        cursor.execute(f"SELECT COUNT(*) FROM {table}")  # noqa: S608 (a constant name)
        assert cursor.fetchone() == (0,)


@pytest.mark.django_db
def test_no_test_can_hang_a_run(pytestconfig: pytest.Config) -> None:
    # pytest-timeout ends any test after five minutes, whatever it is blocked in ...
    assert (pytestconfig.getini("timeout"), pytestconfig.getini("timeout_method")) == (
        "300",
        "thread",
    )
    # ... and a query that never returns fails its test after two minutes on a server.
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SHOW statement_timeout")
            assert cursor.fetchone() == ("2min",)
        elif connection.vendor == "mysql":
            cursor.execute("SELECT @@max_statement_time")
            assert cursor.fetchone() == (120.0,)
        else:
            assert connection.vendor == "sqlite"  # in process: the pytest timeout covers it
