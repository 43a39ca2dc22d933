"""The real task backends for the test suite, each running its own worker code in this process
right after an enqueue (MINICRM_TEST_TASKS_BACKEND=database or rq, config/settings/test.py).

A task goes the whole way a production task goes: stored as a django-tasks-db row or as an RQ
job in the real Redis, claimed by the backend's worker (django-tasks-db's `Worker` in batch
mode, RQ's `SimpleWorker` in burst mode with its scheduler), run, and its result stored there.
The worker runs in the test's thread, on the test's database connection, so it sees the test's
uncommitted rows, as the immediate backend does. A task deferred (`run_after`) runs when it is
due, as a polling worker process would run it: the worker waits for work due within
`DUE_SOON` (a retry after a few milliseconds' backoff); later work (tomorrow's count) stays queued.
"""

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any
from unittest import mock

import django_rq
from django.db.models import Min
from django.utils import timezone
from django_tasks import TaskResult, TaskResultStatus
from django_tasks_db.backend import DatabaseBackend
from django_tasks_db.management.commands import db_worker
from django_tasks_db.models import DBTaskResult, get_date_max
from django_tasks_rq.backend import Job, RQBackend
from rq.registry import ScheduledJobRegistry
from rq.timeouts import TimerDeathPenalty
from rq.worker import SimpleWorker

WORKER_ID = "tests-in-process"
# Work due within this long is waited for and run; anything later stays queued.
DUE_SOON = timedelta(seconds=1)
# A task still due after this long is one the worker cannot take: fail, do not spin.
STUCK_SECONDS = 60.0

_state = threading.local()


@contextmanager
def _working() -> Iterator[bool]:
    """Whether this call is the outermost: an enqueue from inside a running task only stores
    its task, and the worker already running picks it up next (no worker inside a worker)."""
    outermost = not getattr(_state, "working", False)
    _state.working = True
    try:
        yield outermost
    finally:
        if outermost:
            _state.working = False


class DatabaseBackendWorked(DatabaseBackend):
    """django-tasks-db; each enqueue is followed by the package's worker in batch mode."""

    def enqueue(self, task: Any, args: Any, kwargs: Any) -> TaskResult[Any]:
        result = super().enqueue(task, args, kwargs)
        with _working() as outermost:
            if outermost:
                self.work()
        return self.get_result(result.id)

    def work(self) -> None:
        give_up = time.monotonic() + STUCK_SECONDS
        while time.monotonic() < give_up:
            self._work_ready()
            soonest = (
                DBTaskResult.objects.filter(
                    status=TaskResultStatus.READY,
                    backend_name=self.alias,
                    queue_name__in=self.queues,
                )
                .exclude(run_after=get_date_max())
                .aggregate(soonest=Min("run_after"))["soonest"]
            )
            if soonest is None or soonest > timezone.now() + DUE_SOON:
                return
            time.sleep(max(0.0, (soonest - timezone.now()).total_seconds()))
        raise RuntimeError(f"Tasks stayed due for {STUCK_SECONDS} s without running.")

    def _work_ready(self) -> None:
        worker = db_worker.Worker(
            queue_names=sorted(self.queues),
            interval=0,
            batch=True,
            backend_name=self.alias,
            startup_delay=False,
            max_tasks=None,
            worker_id=WORKER_ID,
            excluded_queue_names=[],
        )
        # The worker closes "old" connections between tasks; in a test the connection is the
        # test's own, inside its transaction, and must stay open.
        with mock.patch.object(db_worker, "close_old_connections", return_value=None):
            worker.run()


class _InProcessWorker(SimpleWorker):
    """RQ's worker that runs each job in the calling thread (no fork); it leaves the test
    runner's signal handlers alone, and times jobs out with a timer thread, not SIGALRM."""

    death_penalty_class = TimerDeathPenalty

    def _install_signal_handlers(self) -> None:
        return None


class RQBackendWorked(RQBackend):
    """django-tasks-rq on the real Redis; each enqueue is followed by RQ's worker in burst
    mode (its scheduler first moves the deferred jobs that are due onto the queue)."""

    def enqueue(self, task: Any, args: Any, kwargs: Any) -> TaskResult[Any]:
        result = super().enqueue(task, args, kwargs)
        with _working() as outermost:
            if outermost:
                self.work()
        return self.get_result(result.id)

    def work(self) -> None:
        queues = [django_rq.get_queue(name, job_class=Job) for name in sorted(self.queues)]
        give_up = time.monotonic() + STUCK_SECONDS
        while time.monotonic() < give_up:
            worker = _InProcessWorker(queues, connection=queues[0].connection, job_class=Job)
            # A job enqueued by a job (not after commit) lands while the worker is still in
            # burst mode and runs in the same loop; the loop ends when the queues are empty.
            worker.work(burst=True, with_scheduler=True, logging_level="WARNING")
            scheduled = [
                score
                for queue in queues
                for _id, score in queue.connection.zrange(
                    ScheduledJobRegistry(queue=queue).key, 0, 0, withscores=True
                )
            ]
            # RQ schedules in whole seconds: a job is due from the start of its second.
            if not scheduled or min(scheduled) > time.time() + DUE_SOON.total_seconds():
                return
            time.sleep(max(0.0, min(scheduled) - time.time()))
        raise RuntimeError(f"Jobs stayed scheduled for {STUCK_SECONDS} s without running.")
