"""Run the recovery sweep: resume or fail work whose worker was lost.

Every `db_worker` sweeps by itself; this is for workers that do not (RQ's `rqworker`): run it
with `--every 10` as one more process beside them (or once from cron), and for an operator who
does not want to wait.
"""

import time
from typing import Any

from django.core.management.base import BaseCommand, CommandParser
from django.db import close_old_connections

from minicrm.core.recovery import work_recover


class Command(BaseCommand):
    help = "Resume or fail imports, insights and task rows whose worker was lost."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--every",
            type=float,
            default=0,
            metavar="SECONDS",
            help="sweep again every SECONDS until stopped (default: sweep once)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        every = options["every"]
        while True:
            self._sweep(quiet=every > 0)
            if every <= 0:
                return
            time.sleep(every)
            # A long-lived loop must not hold a connection the server has dropped.
            close_old_connections()

    def _sweep(self, *, quiet: bool) -> None:
        recovered = work_recover()
        if quiet and not any(recovered.values()):
            return
        # Every kind of work named in MINICRM_WORK_RECOVERERS, then the task rows.
        handled = "; ".join(f"{name.replace('_', ' ')}: {n}" for name, n in recovered.items())
        self.stdout.write(f"Lost work resumed or failed. {handled}.")
