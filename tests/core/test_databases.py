"""Migrations apply from scratch on every supported database server."""

import os
import sqlite3
import subprocess
import sys
import uuid
from pathlib import Path

import dj_database_url
import psycopg
import pymysql

from tests.conftest import service_url

ROOT = Path(__file__).resolve().parents[2]


def _with_database(url: str, name: str) -> str:
    base, _sep, _old = url.rpartition("/")
    return f"{base}/{name}"


def _migrate(url: str) -> str:
    env = {**os.environ, "DATABASE_URL": url, "DJANGO_SETTINGS_MODULE": "config.settings.test"}
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput"],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
    )
    result = subprocess.run(
        [sys.executable, "manage.py", "migrate", "--check"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def test_migrations_apply_on_postgresql() -> None:
    url = service_url("MINICRM_TEST_POSTGRES_URL", "PostgreSQL")
    name = f"minicrm_migrate_{uuid.uuid4().hex[:10]}"
    config = dj_database_url.parse(url)
    admin = psycopg.connect(
        host=config["HOST"],
        port=config["PORT"] or 5432,
        user=config["USER"],
        dbname=config["NAME"],
        autocommit=True,
    )
    admin.execute(f'CREATE DATABASE "{name}"')
    try:
        _migrate(_with_database(url, name))
    finally:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


def test_migrations_apply_on_mariadb() -> None:
    url = service_url("MINICRM_TEST_MARIADB_URL", "MariaDB/MySQL")
    name = f"minicrm_migrate_{uuid.uuid4().hex[:10]}"
    config = dj_database_url.parse(url)
    admin = pymysql.connect(
        host=config["HOST"],
        port=int(config["PORT"] or 3306),
        user=config["USER"],
        password=config["PASSWORD"] or "",
    )
    with admin.cursor() as cursor:
        cursor.execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci")
    try:
        _migrate(_with_database(url, name))
    finally:
        with admin.cursor() as cursor:
            cursor.execute(f"DROP DATABASE IF EXISTS `{name}`")
        admin.close()


def test_migrations_apply_on_sqlite_in_wal_mode(tmp_path: Path) -> None:
    database = tmp_path / "fresh.sqlite3"

    _migrate(f"sqlite:///{database}")

    # WAL is a property of the file, so a fresh connection sees what the app's init_command set.
    with sqlite3.connect(database) as connection:
        assert connection.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
