"""A worker that starts after another died mid-insight: its start-up sweep queues the insight
again, generates it, and marks the dead worker's task row failed, with nobody pressing anything.

A real `manage.py db_worker` on a database of its own on this pass's server
(tests/core/worker_process.py); the state the dead worker left is written as a SIGKILL leaves it.
"""

import signal
from pathlib import Path

import pytest

from .worker_process import (
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

# The state a worker killed while generating an insight leaves: the insight RUNNING under a lease
# that ran out, its task row RUNNING under the dead worker, whose heartbeat ran out too.
LEFT_BY_A_KILLED_WORKER = """
from datetime import timedelta
from django.utils import timezone
from django_tasks_db.models import DBTaskResult
from minicrm.core.models import WorkerHeartbeat
from minicrm.customers.services import customers_bulk_upsert
from minicrm.insights.models import Insight
from minicrm.insights.tasks import insight_generate_task
from minicrm.segments.rules import parse_rules
from minicrm.segments.services import segment_create

customers_bulk_upsert(rows=[{"external_id": f"C-{n}", "city": "Pune"} for n in range(30)])
segment = segment_create(
    name="Pune",
    rules=parse_rules(
        {"match": "all", "conditions": [{"field": "city", "operator": "eq", "value": "Pune"}]}
    ),
    created_by=None,
)
now = timezone.now()
insight = Insight.objects.create(
    segment=segment, rules=segment.rules, status="running", provider="offline", attempts=1,
    started_at=now - timedelta(minutes=1), lease_token="a" * 32,
    lease_expires_at=now - timedelta(seconds=1),
)
row = insight_generate_task.enqueue(insight.pk)
DBTaskResult.objects.filter(pk=row.id).update(
    status="RUNNING", worker_ids=["dead"], started_at=now - timedelta(minutes=1)
)
WorkerHeartbeat.objects.create(
    worker_id="dead", started_at=now - timedelta(minutes=5),
    expires_at=now - timedelta(seconds=30),
)
print(insight.pk)
"""


@pytest.mark.slow
def test_a_new_worker_recovers_the_insight_a_killed_worker_left_running(tmp_path: Path) -> None:
    with worker_database(tmp_path) as database:
        recover_at_start_up(tmp_path, database)


def recover_at_start_up(folder: Path, database: WorkerDatabase) -> None:
    env = worker_env(folder, database)
    log = folder / "workers.log"
    manage(env, "migrate", "--noinput")
    insight_id = int(python(env, LEFT_BY_A_KILLED_WORKER).strip())

    def insight() -> tuple[object, ...]:
        [row] = database.rows(
            "SELECT status, attempts, error, lease_token, facts FROM insights_insight"
            " WHERE id = %s",
            insight_id,
        )
        return row

    with worker_processes() as workers:
        worker = start_worker(env, "new", log)
        workers.append(worker)
        wait_for(
            "the recovery",
            lambda: insight()[0] == "succeeded" and running_task_rows(database) == 0,
            90,
            log,
        )
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(timeout=30) == 0, log.read_text()[-4000:]

    status, attempts, error, token, facts = insight()
    assert (status, attempts, error, token) == ("succeeded", 2, "", "")
    assert decoded(facts)["segment"]["customers"] == 30
    tasks = database.rows(
        "SELECT status, worker_ids, exception_class_path FROM django_tasks_database_dbtaskresult"
        " WHERE task_path = 'minicrm.insights.tasks.insight_generate_task' ORDER BY enqueued_at"
    )
    assert [(status, decoded(workers), error) for status, workers, error in tasks] == [
        ("FAILED", ["dead"], "minicrm.core.leases.WorkerLostError"),
        ("SUCCESSFUL", ["new"], ""),
    ]
