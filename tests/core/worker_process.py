"""Real `manage.py db_worker` processes, for the tests that kill workers.

The workers share a database of their own on the server of this pass (a SQLite file, or a fresh
PostgreSQL or MariaDB database that is always dropped afterwards), with a 3-second lease and a
1-second sweep so that recovery takes seconds. The test reads it with the plain driver.
"""

import json
import os
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pymysql
import pytest

ROOT = Path(__file__).resolve().parents[2]
LEASE_SECONDS = 3


@dataclass(frozen=True)
class WorkerDatabase:
    """The workers' database: its URL for Django, and reads for the test."""

    url: str
    vendor: str

    def rows(self, sql: str, *params: object) -> list[tuple[Any, ...]]:
        """Run a query written with %s placeholders (JSON columns: see `decoded`)."""
        if self.vendor == "sqlite":
            with closing(sqlite3.connect(urlsplit(self.url).path, timeout=30)) as lite:
                return list(lite.execute(sql.replace("%s", "?"), params))
        if self.vendor == "postgresql":
            with psycopg.connect(self.url, autocommit=True) as postgres:
                return [tuple(row) for row in postgres.execute(sql.encode(), params).fetchall()]
        with _mysql(self.url) as maria:
            cursor = maria.cursor()
            cursor.execute(sql, params)
            found = [tuple(row) for row in cursor.fetchall()]
        return found


def _mysql(url: str, database: str | None = None) -> "pymysql.connections.Connection[Any]":
    parts = urlsplit(url)
    return pymysql.connect(
        host=parts.hostname or "127.0.0.1",
        port=parts.port or 3306,
        user=parts.username or "root",
        password=parts.password or "",
        database=parts.path.lstrip("/") if database is None else database,
        autocommit=True,
    )


def decoded(value: Any) -> Any:
    """A JSON column as its value, whichever driver read it (SQLite and MariaDB give text)."""
    return json.loads(value) if isinstance(value, str) else value


@contextmanager
def worker_database(folder: Path) -> Iterator[WorkerDatabase]:
    """A database for the workers on this pass's server; a server database is always dropped."""
    server = os.environ.get("DATABASE_URL", "")
    if not server:
        yield WorkerDatabase(url=f"sqlite:///{folder / 'crm.sqlite3'}", vendor="sqlite")
        return
    name = (os.environ.get("DATABASE_TEST_NAME") or f"test_minicrm_{os.getpid()}") + "_workers"
    parts = urlsplit(server)
    url = urlunsplit(parts._replace(path=f"/{name}"))
    if parts.scheme.startswith("postgres"):
        statements = [f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)', f'CREATE DATABASE "{name}"']
        with psycopg.connect(server, autocommit=True) as postgres:
            for statement in statements:
                postgres.execute(statement.encode())
        try:
            yield WorkerDatabase(url=url, vendor="postgresql")
        finally:
            with psycopg.connect(server, autocommit=True) as postgres:
                postgres.execute(statements[0].encode())
        return
    with _mysql(server) as maria:
        maria.cursor().execute(f"DROP DATABASE IF EXISTS `{name}`")
        maria.cursor().execute(
            f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"
        )
    try:
        yield WorkerDatabase(url=url, vendor="mysql")
    finally:
        with _mysql(server) as maria:
            maria.cursor().execute(f"DROP DATABASE IF EXISTS `{name}`")


def worker_env(folder: Path, database: WorkerDatabase, **extra: str) -> dict[str, str]:
    """This process's environment without its database and app settings, pointed at `database`."""
    base = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("DJANGO_", "DATABASE_", "MINICRM_", "AI_", "GEMINI_"))
    }
    return {
        **base,
        "DJANGO_SETTINGS_MODULE": "config.settings.test",
        "DATABASE_URL": database.url,
        "MINICRM_VAR_DIR": str(folder / "var"),
        "MINICRM_TASKS_BACKEND": "database",
        "MINICRM_WORK_LEASE_SECONDS": str(LEASE_SECONDS),
        "MINICRM_WORK_SWEEP_SECONDS": "1",
        "AI_PROVIDER": "offline",
        "PYTHONUNBUFFERED": "1",
        **extra,
    }


def manage(env: dict[str, str], *arguments: str) -> str:
    return _run(env, ["manage.py", *arguments])


def python(env: dict[str, str], code: str) -> str:
    """Run `code` with Django set up against the workers' database; returns what it printed."""
    return _run(env, ["-c", "import django; django.setup()\n" + code])


def _run(env: dict[str, str], arguments: list[str]) -> str:
    done = subprocess.run(
        [sys.executable, *arguments],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def start_worker(env: dict[str, str], worker_id: str, log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen(
            [
                sys.executable,
                "manage.py",
                "db_worker",
                "--interval",
                "0.1",
                "--no-startup-delay",
                "--no-reload",
                "--worker-id",
                worker_id,
            ],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )


@contextmanager
def worker_processes() -> Iterator[list[subprocess.Popen[bytes]]]:
    """Worker processes a test starts; any still alive at the end is killed."""
    started: list[subprocess.Popen[bytes]] = []
    try:
        yield started
    finally:
        for process in started:
            if process.poll() is None:
                process.kill()
                process.wait(timeout=30)


def wait_for(what: str, check: Callable[[], bool], seconds: float, log: Path) -> None:
    """Poll `check` until it holds; fail with the workers' log after `seconds`."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.05)
    pytest.fail(f"{what} did not happen within {seconds} s; worker log:\n{log.read_text()[-4000:]}")


def running_task_rows(database: WorkerDatabase) -> int:
    [(count,)] = database.rows(
        "SELECT COUNT(*) FROM django_tasks_database_dbtaskresult WHERE status = 'RUNNING'"
    )
    return int(count)
