"""django-tasks-db's `db_worker`, with a heartbeat and the recovery sweep of lost work.

It replaces the package's command of the same name (minicrm.core comes first in INSTALLED_APPS,
as django.contrib.staticfiles replaces `runserver`), so every way of starting a worker records
its heartbeat: a task row RUNNING under a worker whose heartbeat expired is known to be lost.
"""

import os
from typing import Any

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
        with worker_heartbeat(worker_id=options["worker_id"]):
            super().handle(*args, **options)
