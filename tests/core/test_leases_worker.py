"""A worker that starts after another died mid-insight: its start-up sweep queues the insight
again, generates it, and marks the dead worker's task row failed, with nobody pressing anything.

A real `manage.py db_worker` on a SQLite file of its own (tests/core/worker_process.py); the state
the dead worker left is written the way a SIGKILL leaves it.
"""

import json
import signal
from pathlib import Path

import pytest

from .worker_process import (
    manage,
    python,
    rows,
    running_task_rows,
    start_worker,
    wait_for,
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
from minicrm.segments.services import segment_create

customers_bulk_upsert(rows=[{"external_id": f"C-{n}", "city": "Pune"} for n in range(30)])
segment = segment_create(
    name="Pune",
    rules={"match": "all", "conditions": [{"field": "city", "operator": "eq", "value": "Pune"}]},
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


@pytest.mark.once
@pytest.mark.slow
def test_a_new_worker_recovers_the_insight_a_killed_worker_left_running(tmp_path: Path) -> None:
    env = worker_env(tmp_path)
    database = tmp_path / "crm.sqlite3"
    log = tmp_path / "workers.log"
    manage(env, "migrate", "--noinput")
    insight_id = int(python(env, LEFT_BY_A_KILLED_WORKER).strip())

    def insight() -> tuple[object, ...]:
        [row] = rows(
            database,
            "SELECT status, attempts, error, lease_token, facts FROM insights_insight WHERE id = ?",
            insight_id,
        )
        return row

    with worker_processes() as workers:
        worker = start_worker(env, "new", log)
        workers.append(worker)

        def recovered() -> bool:
            return insight()[0] == "succeeded" and running_task_rows(database) == 0

        wait_for("the recovery", recovered, 90, log)
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(timeout=30) == 0

    status, attempts, error, token, facts = insight()
    assert (status, attempts, error, token) == ("succeeded", 2, "", "")
    assert json.loads(str(facts))["segment"]["customers"] == 30
    tasks = rows(
        database,
        "SELECT status, worker_ids, exception_class_path FROM django_tasks_database_dbtaskresult"
        " WHERE task_path = 'minicrm.insights.tasks.insight_generate_task' ORDER BY enqueued_at",
    )
    assert tasks == [
        ("FAILED", '["dead"]', "minicrm.core.leases.WorkerLostError"),
        ("SUCCESSFUL", '["new"]', ""),
    ]
