"""Concurrent bulk requests on a SQLite file database: writers wait their turn, a writer that
cannot get the lock in time answers 503 with Retry-After (never 500) and stores nothing, and
every customer's stats equal a recount from the orders afterwards.

The in-memory test database cannot show locking, so tests/customers/sqlite_write_load.py runs
in a subprocess on a fresh SQLite file.
"""

from pathlib import Path

import pytest

from minicrm.core.db_errors import BUSY_MESSAGE
from tests.sqlite_file_load import sqlite_file_load

CLIENTS = 12
ROWS = 500
SIZES = (str(CLIENTS), str(ROWS))
BUSY = {"detail": BUSY_MESSAGE}


@pytest.mark.once
@pytest.mark.timeout(180)
def test_concurrent_batches_on_a_sqlite_file_wait_or_answer_503(tmp_path: Path) -> None:
    result = sqlite_file_load(
        "tests.customers.sqlite_write_load",
        *SIZES,
        var_dir=tmp_path,
        unset=("MINICRM_SQLITE_BUSY_TIMEOUT",),
    )

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
