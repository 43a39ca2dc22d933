"""Concurrent bulk requests on a SQLite file database: writers wait their turn, a writer that
cannot get the lock in time answers 503 with Retry-After (never 500) and stores nothing, and
every customer's stats equal a recount from the orders afterwards.

The in-memory test database cannot show locking, so tests/customers/sqlite_write_load.py runs
in a subprocess on a fresh SQLite file.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from minicrm.core.db_errors import BUSY_MESSAGE

ROOT = Path(__file__).resolve().parents[2]
CLIENTS = 12
ROWS = 500
SIZES = (str(CLIENTS), str(ROWS))
BUSY = {"detail": BUSY_MESSAGE}


@pytest.mark.once
@pytest.mark.timeout(180)
def test_concurrent_batches_on_a_sqlite_file_wait_or_answer_503(tmp_path: Path) -> None:
    env = {key: value for key, value in os.environ.items() if not key.startswith("DATABASE_")}
    env.update(MINICRM_VAR_DIR=str(tmp_path), DJANGO_SETTINGS_MODULE="config.settings.test")
    env.pop("MINICRM_SQLITE_BUSY_TIMEOUT", None)
    done = subprocess.run(
        [sys.executable, "-W", "ignore", "-m", "tests.customers.sqlite_write_load", *SIZES],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=170,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout)

    # Writers queue for the lock: every batch is stored whole.
    assert result["busy_timeout"] == 60.0
    assert [(answer["status"], answer["stored"]) for answer in result["queue"]] == [
        (200, ROWS)
    ] * CLIENTS
    assert all(answer["body"]["created"] == ROWS for answer in result["queue"])
    # With the lock held past the busy timeout: 503, Retry-After, a JSON detail, nothing stored.
    assert [
        (answer["status"], answer["retry_after"], answer["body"], answer["stored"])
        for answer in result["busy"]
    ] == [(503, "5", BUSY, 0)] * 4
    # Sent again once the lock is free, the same batches are stored.
    assert [(answer["status"], answer["stored"]) for answer in result["again"]] == [(200, 50)] * 4
    total = CLIENTS * ROWS + 4 * 50
    assert (result["orders"], result["order_count_total"]) == (total, total)
    assert result["stats_wrong"] == 0
