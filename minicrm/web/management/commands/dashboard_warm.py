"""Compute the dashboard's preset ranges now and make sure the chain that keeps them warm runs."""

import time
from argparse import ArgumentParser
from typing import Any

from django.core.management.base import BaseCommand

from minicrm.web.services import dashboard_presets_refresh, dashboard_warm_ensure


class Command(BaseCommand):
    help = (
        "Compute the dashboard's last 30/90/365 days now (a release step: the first visit after "
        "a deploy finds them) and start the task that recomputes them every 5 minutes unless it "
        "is already scheduled."
    )

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument(
            "--schedule-only",
            action="store_true",
            help="Only make sure the chain is scheduled; the worker computes the presets.",
        )
        parser.add_argument(
            "--force",
            action="store_true",
            help="Start a new chain even if one looks scheduled (the old one then stops).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if not options["schedule_only"]:
            started = time.perf_counter()
            computed = dashboard_presets_refresh(force=True)
            seconds = time.perf_counter() - started
            days = ", ".join(str(dashboard.date_range.days) for dashboard in computed)
            self.stdout.write(f"Computed the dashboard for the last {days} days in {seconds:.1f}s.")
        slot = dashboard_warm_ensure(force=options["force"])
        if slot is None:
            self.stdout.write("The dashboard's warm-up is already scheduled.")
        else:
            self.stdout.write("Scheduled the dashboard's warm-up every 5 minutes.")
