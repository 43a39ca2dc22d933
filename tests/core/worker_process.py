"""Real `manage.py db_worker` processes on a SQLite file, for the tests that kill workers.

The processes share a file of their own (whatever database the pass is for), with a 3-second lease
and a 1-second sweep so that recovery takes seconds.
"""

import os
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LEASE_SECONDS = 3


def worker_env(folder: Path, **extra: str) -> dict[str, str]:
    """This process's environment without its database and app settings, pointed at a file."""
    base = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("DJANGO_", "DATABASE_", "MINICRM_", "AI_", "GEMINI_"))
    }
    return {
        **base,
        "DJANGO_SETTINGS_MODULE": "config.settings.test",
        "DATABASE_URL": f"sqlite:///{folder / 'crm.sqlite3'}",
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
    """Run `code` with Django set up against the file; returns what it printed."""
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
    yield started
    for process in started:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=30)


def rows(database: Path, sql: str, *params: object) -> list[tuple[object, ...]]:
    with sqlite3.connect(database, timeout=30) as db:
        return list(db.execute(sql, params))


def wait_for(what: str, check: Callable[[], bool], seconds: float, log: Path) -> None:
    """Poll `check` until it holds; fail with the workers' log after `seconds`."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.02)
    pytest.fail(f"{what} did not happen within {seconds} s; worker log:\n{log.read_text()[-4000:]}")


def running_task_rows(database: Path) -> int:
    [(count,)] = rows(
        database, "SELECT COUNT(*) FROM django_tasks_database_dbtaskresult WHERE status = 'RUNNING'"
    )
    return int(count)  # type: ignore[call-overload]
