"""Run the recovery sweep once: resume or fail work whose worker was lost.

Every `db_worker` sweeps by itself; this is for workers that do not (RQ's `rqworker`), from
cron or a loop every few seconds, and for an operator who does not want to wait.
"""

from typing import Any

from django.core.management.base import BaseCommand

from minicrm.core.recovery import work_recover


class Command(BaseCommand):
    help = "Resume or fail imports, insights and task rows whose worker was lost (one sweep)."

    def handle(self, *args: Any, **options: Any) -> None:
        recovered = work_recover()
        self.stdout.write(
            f"Imports queued again or failed: {recovered['imports']}; insights: "
            f"{recovered['insights']}; task rows of lost workers marked failed: "
            f"{recovered['task_rows']}."
        )
