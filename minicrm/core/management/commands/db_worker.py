"""django-tasks-db's `db_worker`, with a heartbeat and the recovery sweep of lost work.

It replaces the package's command of the same name (minicrm.core comes first in INSTALLED_APPS,
as django.contrib.staticfiles replaces `runserver`), so every way of starting a worker records
its heartbeat: a task row RUNNING under a worker whose heartbeat expired is known to be lost.
"""

import os
from typing import Any

from django.db import Error as DatabaseDriverError
from django.utils.autoreload import DJANGO_AUTORELOAD_ENV
from django_tasks_db.management.commands.db_worker import Command as DatabaseWorkerCommand

from minicrm.core.recovery import worker_heartbeat


class Command(DatabaseWorkerCommand):
    help = (
        "Run a database background worker; it keeps a heartbeat and resumes or fails the work "
        "of workers that were lost."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        reloader_parent = (
            options["reload"]
            and not options["batch"]
            and os.environ.get(DJANGO_AUTORELOAD_ENV) != "true"
        )
        if reloader_parent:
            # This process only restarts the child on code changes; the child runs the tasks.
            super().handle(*args, **options)
            return
        try:
            with worker_heartbeat(worker_id=options["worker_id"]):
                super().handle(*args, **options)
        except DatabaseDriverError as error:
            if not _stopped_as_asked(error):
                raise
            # The package exits from its SIGTERM handler even in the middle of a query (it only
            # waits for a running task); closing that query's transaction then fails (PyMySQL's
            # half-read connection). The stop was asked for and no task was cut: exit cleanly.
            raise SystemExit(0) from None


def _stopped_as_asked(error: BaseException) -> bool:
    """Whether `error` arose while a clean `sys.exit(0)` was unwinding (in its chain)."""
    seen: set[int] = set()
    cause: BaseException | None = error
    while cause is not None and id(cause) not in seen:
        seen.add(id(cause))
        if isinstance(cause, SystemExit) and cause.code in (0, None):
            return True
        cause = cause.__cause__ or cause.__context__
    return False
