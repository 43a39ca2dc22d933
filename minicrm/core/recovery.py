"""The recovery sweep: work whose worker is gone is resumed or failed without a person.

Every `db_worker` runs it from a thread (at start-up, then every MINICRM_WORK_SWEEP_SECONDS)
next to its heartbeat, so recovery never queues behind a long task; `manage.py work_recover`
runs it once for setups whose workers are not ours (RQ). Each step claims with conditional
UPDATEs, so any number of sweepers may run at once.
"""

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager

from django.conf import settings
from django.db import DatabaseError, connection
from django.utils.module_loading import import_string

from .leases import (
    RENEWALS_PER_LEASE,
    lease_seconds,
    repeated_in_thread,
    task_rows_fail_orphaned,
    worker_beat,
    worker_forget,
)

logger = logging.getLogger(__name__)


def work_recover() -> dict[str, int]:
    """One sweep: the work of each app whose lease expired, then task rows of lost workers.

    The apps' recoverers are named in settings (MINICRM_WORK_RECOVERERS), as Django names its
    middleware, so core knows no app above it. Returns how many were handled, by name.
    """
    recovered = {
        name: import_string(path)() for name, path in settings.MINICRM_WORK_RECOVERERS.items()
    }
    recovered["task_rows"] = task_rows_fail_orphaned()
    return recovered


def sweep_seconds() -> float:
    return float(settings.MINICRM_WORK_SWEEP_SECONDS)


def _tick(worker_id: str, *, sweep: bool) -> None:
    try:
        worker_beat(worker_id=worker_id)
        if sweep:
            work_recover()
    except DatabaseError as error:
        # A busy or briefly unreachable database: the next tick tries again.
        logger.warning("Worker %s: heartbeat or recovery sweep failed: %s", worker_id, error)


@contextmanager
def worker_heartbeat(*, worker_id: str) -> Iterator[None]:
    """While the block runs, keep the worker's heartbeat alive and sweep for lost work.

    The first beat and sweep happen before the block starts, so a restarted worker recovers
    what its predecessor left before it takes new tasks.
    """
    _tick(worker_id, sweep=True)
    last_sweep = time.monotonic()

    def beat() -> None:
        nonlocal last_sweep
        due = time.monotonic() - last_sweep >= sweep_seconds()
        _tick(worker_id, sweep=due)
        if due:
            last_sweep = time.monotonic()

    beat_every = min(sweep_seconds(), lease_seconds() / RENEWALS_PER_LEASE)
    try:
        with repeated_in_thread(beat, every=beat_every, name=f"heartbeat {worker_id}"):
            yield
    finally:
        _forget(worker_id)


def _forget(worker_id: str) -> None:
    # The worker may stop on a signal in the middle of a query, which leaves the connection
    # unusable: a fresh one removes the heartbeat. If even that fails, the heartbeat expires.
    for attempt in (1, 2):
        try:
            worker_forget(worker_id=worker_id)
            return
        except Exception as error:  # noqa: BLE001 (stopping must not fail; logged)
            connection.close()
            if attempt == 2:
                logger.warning("Worker %s: could not remove its heartbeat: %s", worker_id, error)
