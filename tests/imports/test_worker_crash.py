"""A worker killed mid-import (SIGKILL, as the out-of-memory killer or a redeploy does it): the
next worker resumes the import by itself after its last committed chunk, every order is stored
once, the customers' stats equal a recount from their orders, and no task row stays RUNNING.

Real `manage.py db_worker` processes on a database of their own on this pass's server
(tests/core/worker_process.py).
"""

import signal
from collections import defaultdict
from decimal import Decimal
from pathlib import Path

import pytest

from tests.core.worker_process import (
    WorkerDatabase,
    decoded,
    manage,
    python,
    running_task_rows,
    start_worker,
    wait_for,
    worker_database,
    worker_env,
    worker_processes,
)

CUSTOMERS = 500
ORDERS = 20_000
CHUNK_ROWS = 500
CENT = Decimal("0.01")


def write_files(folder: Path) -> tuple[Path, Path]:
    customers = folder / "customers.csv"
    customers.write_text(
        "external_id,email\n" + "".join(f"C-{n},c{n}@example.com\n" for n in range(CUSTOMERS))
    )
    orders = folder / "orders.csv"
    orders.write_text(
        "external_id,customer_external_id,amount,ordered_at,status\n"
        + "".join(
            f"O-{n},C-{n % CUSTOMERS},{n % 997 + 1}.{n % 100:02d},2025-0{n % 9 + 1}-15,"
            f"{'refunded' if n % 10 == 0 else 'completed'}\n"
            for n in range(ORDERS)
        )
    )
    return customers, orders


@pytest.mark.slow
def test_an_import_whose_worker_is_killed_is_finished_by_the_next_worker_exactly_once(
    tmp_path: Path,
) -> None:
    with worker_database(tmp_path) as database:
        crash_and_recover(tmp_path, database)


def crash_and_recover(folder: Path, database: WorkerDatabase) -> None:
    env = worker_env(folder, database, MINICRM_IMPORT_CHUNK_ROWS=str(CHUNK_ROWS))
    log = folder / "workers.log"
    customers_csv, orders_csv = write_files(folder)
    manage(env, "migrate", "--noinput")
    manage(env, "import_csv", str(customers_csv), "--kind", "customers")
    # Queued through the database backend, as an upload on the imports page is.
    import_id = int(
        python(
            env,
            "from django.core.files import File\n"
            "from minicrm.imports.services import import_create\n"
            f"with open({str(orders_csv)!r}, 'rb') as f:\n"
            "    print(import_create(file=File(f, name='orders.csv'), kind='orders',"
            " created_by=None).pk)\n",
        ).strip()
    )

    def progress() -> tuple[str, int]:
        [(status, processed)] = database.rows(
            "SELECT status, processed_rows FROM imports_import WHERE id = %s", import_id
        )
        return str(status), int(processed)

    with worker_processes() as workers:
        first = start_worker(env, "first", log)
        workers.append(first)
        wait_for("a first chunk", lambda: progress()[1] >= 2 * CHUNK_ROWS, 120, log)
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=30)
        status, processed_at_kill = progress()
        assert status == "running"
        assert 0 < processed_at_kill < ORDERS, "the import finished before the worker was killed"

        second = start_worker(env, "second", log)
        workers.append(second)
        wait_for("the import to move again", lambda: progress()[1] > processed_at_kill, 60, log)
        wait_for(
            "the recovery",
            lambda: progress()[0] == "succeeded" and running_task_rows(database) == 0,
            90,
            log,
        )
        second.send_signal(signal.SIGTERM)
        assert second.wait(timeout=30) == 0, log.read_text()[-4000:]

    [stored] = database.rows(
        "SELECT status, total_rows, processed_rows, created, updated, unchanged, error_count,"
        " recoveries, lease_token, lease_expires_at, notes FROM imports_import WHERE id = %s",
        import_id,
    )
    assert stored[:10] == ("succeeded", ORDERS, ORDERS, ORDERS, 0, 0, 0, 1, "", None)
    assert decoded(stored[10]) == [
        f"The worker stopped after {processed_at_kill:,} of {ORDERS:,} rows; the import was "
        "resumed automatically from there."
    ]
    assert database.rows("SELECT COUNT(*), COUNT(DISTINCT external_id) FROM customers_order") == [
        (ORDERS, ORDERS)
    ]
    assert database.rows("SELECT COUNT(*) FROM customers_customer") == [(CUSTOMERS,)]

    # The stats equal a recount from the orders (only completed ones count).
    spend: dict[int, Decimal] = defaultdict(Decimal)
    count: dict[int, int] = defaultdict(int)
    for customer_id, amount in database.rows(
        "SELECT customer_id, amount FROM customers_order WHERE status = 'completed'"
    ):
        spend[customer_id] += Decimal(str(amount)).quantize(CENT)
        count[customer_id] += 1
    stats = {
        customer_id: (Decimal(str(total)).quantize(CENT), orders)
        for customer_id, total, orders in database.rows(
            "SELECT id, total_spend, order_count FROM customers_customer"
        )
    }
    assert stats == {customer_id: (spend[customer_id], count[customer_id]) for customer_id in stats}
    assert sum(count.values()) == ORDERS - ORDERS // 10

    # The killed worker's task row tells the truth; the resumed run succeeded.
    tasks = database.rows(
        "SELECT status, worker_ids, exception_class_path FROM django_tasks_database_dbtaskresult"
        " WHERE task_path = 'minicrm.imports.tasks.import_process_task' ORDER BY enqueued_at"
    )
    assert [(status, decoded(workers), error) for status, workers, error in tasks] == [
        ("FAILED", ["first"], "minicrm.core.leases.WorkerLostError"),
        ("SUCCESSFUL", ["second"], ""),
    ]
    # A worker that stops cleanly leaves no heartbeat; the killed one's is kept for the record.
    assert database.rows("SELECT worker_id FROM core_workerheartbeat") == [("first",)]
