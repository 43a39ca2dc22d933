"""Leases: how work that lost its worker is told apart from work that is only slow.

The process working on an import or an insight holds a lease on it (a token and an expiry) and
renews it while it works; a worker process renews its own heartbeat the same way. A lease older
than MINICRM_WORK_LEASE_SECONDS means the process is gone (killed, out of memory, redeployed),
and the recovery sweep (minicrm.core.recovery) resumes or fails what it held.
"""

import logging
import os
import secrets
import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta

from django.conf import settings
from django.db import DatabaseError, close_old_connections, connection
from django.utils import timezone
from django_tasks import TaskResultStatus
from django_tasks_db.models import DBTaskResult

from .models import WorkerHeartbeat

logger = logging.getLogger(__name__)

# Renewals per lease period: two may fail (a busy database) before the lease runs out.
RENEWALS_PER_LEASE = 3
# A dead worker's heartbeat row is kept this many lease periods for the record, then deleted.
HEARTBEAT_KEEP_LEASES = 100


class WorkerLostError(Exception):
    """Recorded on a task row whose worker stopped renewing its heartbeat while running it."""


def lease_seconds() -> float:
    return float(settings.MINICRM_WORK_LEASE_SECONDS)


def lease_until(now: datetime | None = None) -> datetime:
    """When a lease taken or renewed now expires."""
    return (now or timezone.now()) + timedelta(seconds=lease_seconds())


def lease_token() -> str:
    """A new holder's token: a run writes only while the work still carries its token."""
    return secrets.token_hex(16)


@contextmanager
def lease_kept(renew: Callable[[], object], *, name: str) -> Iterator[None]:
    """Call `renew` every lease/3 seconds from a thread while the block runs.

    The thread keeps a lease alive through steps that give no chance to renew it (counting a
    large file's rows, waiting for the AI provider). A renewal that fails is logged and tried
    again on the next tick; the work itself checks its token before each write, so a lease lost
    anyway costs a duplicate run's time, never a row applied twice.
    """

    def keep() -> None:
        try:
            renew()
        except DatabaseError as error:
            logger.warning("Could not renew the lease of %s: %s", name, error)

    with repeated_in_thread(keep, every=lease_seconds() / RENEWALS_PER_LEASE, name=f"lease {name}"):
        yield


@contextmanager
def repeated_in_thread(tick: Callable[[], object], *, every: float, name: str) -> Iterator[None]:
    """Call `tick` every `every` seconds from a daemon thread while the block runs; at its end,
    stop the thread and wait for it. `tick` handles its own errors (one it raises ends the thread).

    The thread has its own database connection: one broken by a database restart is replaced
    before each tick instead of failing forever, and it is closed at the end (else it leaks).
    """
    stop = threading.Event()

    def run() -> None:
        try:
            while not stop.wait(every):
                close_old_connections()
                tick()
        finally:
            connection.close()

    thread = threading.Thread(target=run, name=name, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


def worker_beat(*, worker_id: str, now: datetime | None = None) -> None:
    """Record that the worker lives, until one lease from now."""
    now = now or timezone.now()
    updated = WorkerHeartbeat.objects.filter(worker_id=worker_id).update(
        expires_at=lease_until(now)
    )
    if not updated:
        WorkerHeartbeat.objects.update_or_create(
            worker_id=worker_id,
            defaults={
                "host": socket.gethostname()[:255],
                "pid": os.getpid(),
                "started_at": now,
                "expires_at": lease_until(now),
            },
        )


def worker_forget(*, worker_id: str) -> None:
    """A worker that stops cleanly removes its heartbeat (its tasks have finished)."""
    WorkerHeartbeat.objects.filter(worker_id=worker_id).delete()


def task_rows_fail_orphaned(*, now: datetime | None = None) -> int:
    """Mark failed the database task rows RUNNING under a worker whose heartbeat expired.

    A worker killed mid-task leaves its row RUNNING for good (django-tasks-db has no heartbeat
    of its own). The work itself (an import, an insight) is recovered through its own lease;
    this makes the row tell the truth. Returns how many rows were marked.
    """
    now = now or timezone.now()
    # Read before writing: on SQLite even a DELETE that matches nothing waits for the write lock.
    long_dead = WorkerHeartbeat.objects.filter(
        expires_at__lt=now - timedelta(seconds=lease_seconds() * HEARTBEAT_KEEP_LEASES)
    )
    if long_dead.exists():
        long_dead.delete()
    # A row claimed a moment ago may belong to a worker whose first heartbeat is on its way.
    started_before = now - timedelta(seconds=lease_seconds())
    running = list(
        DBTaskResult.objects.filter(
            status=TaskResultStatus.RUNNING, started_at__lt=started_before
        ).values_list("id", "worker_ids")
    )
    if not running:
        return 0
    live = set(
        WorkerHeartbeat.objects.filter(expires_at__gte=now).values_list("worker_id", flat=True)
    )
    orphans = {str(row_id): (workers[-1] if workers else "") for row_id, workers in running}
    orphans = {row_id: worker for row_id, worker in orphans.items() if worker not in live}
    marked = 0
    for row_id, worker in orphans.items():
        # Conditional on RUNNING: a worker that was only slow and finished meanwhile keeps its
        # result.
        marked += DBTaskResult.objects.filter(id=row_id, status=TaskResultStatus.RUNNING).update(
            status=TaskResultStatus.FAILED,
            finished_at=now,
            exception_class_path=f"{WorkerLostError.__module__}.{WorkerLostError.__qualname__}",
            traceback=(
                f"WorkerLostError: worker {worker or '(unknown)'} stopped renewing its heartbeat "
                "while running this task (killed or crashed); the sweep marked it failed.\n"
            ),
        )
    if marked:
        logger.warning("Marked %s task row(s) of lost workers as failed", marked)
    return marked
