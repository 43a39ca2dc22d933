"""Readiness: can this process serve requests now? Each check reaches one thing a request or a
queued task needs (every database, the task queue, the cache) with a short bound, and says only
whether it answered, how fast, and the error's type: never a host, a URL or a message, which may
hold credentials (the answer is public)."""

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

from django.conf import settings
from django.core.cache import caches
from django.core.cache.backends.db import DatabaseCache
from django.db import DEFAULT_DB_ALIAS, connections, router
from django_tasks_db.models import DBTaskResult

from minicrm.core.statement_timeout import statement_timeout
from minicrm.segments.snapshot import snapshot_state

logger = logging.getLogger(__name__)

# Seconds any one check may take: a probe answers in well under a load balancer's timeout.
CHECK_TIMEOUT_SECONDS = 2.0
CACHE_PROBE_KEY = "minicrm:readyz"
# The error of a check not tried because the database it lives in is down.
DATABASE_DOWN = "database unavailable"


@dataclass(frozen=True)
class CheckResult:
    name: str
    ok: bool
    milliseconds: float
    error: str = ""
    detail: str = ""

    def as_dict(self) -> dict[str, object]:
        answer: dict[str, object] = {"ok": self.ok, "ms": round(self.milliseconds, 1)}
        if self.detail:
            answer["backend"] = self.detail
        if self.error:
            answer["error"] = self.error
        return answer


def database_check(alias: str) -> None:
    """SELECT 1 on the database `alias` (connecting first if need be). A pooled PostgreSQL
    connection is borrowed from the process's own pool with the check's bound: through Django
    the check would wait the pool's timeout (10 s) for a server that is down."""
    pool = getattr(connections[alias], "pool", None)
    if pool is not None:
        pool.open()  # as Django does on first use; a no-op once open
        with pool.connection(timeout=CHECK_TIMEOUT_SECONDS) as raw:
            raw.execute("SELECT 1").fetchone()
        return
    with (
        statement_timeout(CHECK_TIMEOUT_SECONDS, using=alias),
        connections[alias].cursor() as cursor,
    ):
        cursor.execute("SELECT 1")
        cursor.fetchone()


def database_queue_check() -> None:
    """django-tasks-db: the table the workers claim tasks from can be read."""
    with statement_timeout(CHECK_TIMEOUT_SECONDS, using=DEFAULT_DB_ALIAS):
        list(DBTaskResult.objects.order_by().values_list("pk", flat=True)[:1])


def rq_queue_check() -> None:
    """RQ: every queue's Redis answers PING."""
    # Imported here: redis costs every process 0.4 s to import, and only the RQ backend needs it
    # (settings leave django_rq out of INSTALLED_APPS otherwise for the same reason).
    import redis

    for queue in settings.TASKS["default"].get("QUEUES", ["default"]):
        client = redis.Redis.from_url(
            str(settings.RQ_QUEUES[queue]["URL"]),
            socket_connect_timeout=CHECK_TIMEOUT_SECONDS,
            socket_timeout=CHECK_TIMEOUT_SECONDS,
        )
        try:
            client.ping()
        finally:
            client.close()


def in_process_queue_check() -> None:
    """The immediate backend runs tasks inside the request: nothing to reach."""


# The task backends settings can select (MINICRM_TASKS_BACKEND), by class path, with their label.
TASK_QUEUE_CHECKS: dict[str, tuple[str, Callable[[], None]]] = {
    "django_tasks_db.DatabaseBackend": ("database", database_queue_check),
    "django_tasks_rq.RQBackend": ("rq", rq_queue_check),
    "django_tasks.backends.immediate.ImmediateBackend": ("immediate", in_process_queue_check),
}


def task_backend() -> str:
    """The class path of the default task backend (settings.TASKS)."""
    return str(settings.TASKS["default"]["BACKEND"])


def task_queue_check() -> None:
    backend = task_backend()
    if backend not in TASK_QUEUE_CHECKS:
        raise NotImplementedError(f"no readiness check for the task backend {backend}")
    TASK_QUEUE_CHECKS[backend][1]()


def task_queue_label() -> str:
    backend = task_backend()
    return TASK_QUEUE_CHECKS[backend][0] if backend in TASK_QUEUE_CHECKS else "unknown"


def task_queue_database() -> str | None:
    """The database the task queue lives in, if it lives in one."""
    return DEFAULT_DB_ALIAS if task_backend() == "django_tasks_db.DatabaseBackend" else None


def cache_check() -> None:
    """A read from the default cache (the database table or Redis the throttles live in)."""
    caches["default"].get(CACHE_PROBE_KEY)


def cache_database() -> str | None:
    """The database the default cache lives in (DatabaseCache reads through the router)."""
    if isinstance(caches["default"], DatabaseCache):
        return router.db_for_read(caches["default"].cache_model_class) or DEFAULT_DB_ALIAS
    return None


def check_run(name: str, check: Callable[[], None], *, detail: str = "") -> CheckResult:
    """Runs one check; any error it meets makes it fail (that is what readiness means), logged
    with its traceback here and named by type only in the answer."""
    started = time.perf_counter()
    try:
        check()
    except Exception as error:
        logger.exception("Readiness check %s failed", name)
        return CheckResult(
            name=name,
            ok=False,
            milliseconds=(time.perf_counter() - started) * 1000,
            error=type(error).__name__,
            detail=detail,
        )
    return CheckResult(
        name=name, ok=True, milliseconds=(time.perf_counter() - started) * 1000, detail=detail
    )


def database_check_name(alias: str) -> str:
    return "database" if alias == "default" else f"database_{alias}"


def readiness_checks() -> list[CheckResult]:
    """Every check, in order: each database (the primary is "database", a replica
    "database_replica"), the task queue, the cache."""
    results = [
        check_run(database_check_name(alias), partial(database_check, alias))
        for alias in connections
    ]
    # A check that lives in a database found down fails without being tried: it could only
    # fail too, after waiting for its own connection.
    down = {alias for alias, result in zip(connections, results, strict=True) if not result.ok}
    for name, check, database, detail in (
        ("task_queue", task_queue_check, task_queue_database(), task_queue_label()),
        ("cache", cache_check, cache_database(), ""),
    ):
        if database in down:
            results.append(
                CheckResult(
                    name=name, ok=False, milliseconds=0.0, error=DATABASE_DOWN, detail=detail
                )
            )
        else:
            results.append(check_run(name, check, detail=detail))
    return results


def snapshot_report() -> dict[str, object]:
    """The preview snapshot's state, for the answer only: readiness never depends on it (without
    it previews and facts come from SQL), so a failure to tell is reported, not raised."""
    try:
        return snapshot_state()
    except Exception as error:
        logger.exception("Reading the snapshot's state failed")
        return {"state": "unknown", "error": type(error).__name__}
