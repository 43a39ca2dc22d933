"""Start (or make sure of) the daily chain that records every segment's size."""

from argparse import ArgumentParser
from typing import Any

from django.core.management.base import BaseCommand

from minicrm.segments.services import segment_sizes_ensure


class Command(BaseCommand):
    help = "Schedule the daily segment size count unless it is already scheduled."

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument(
            "--force",
            action="store_true",
            help="Start a new chain today even if one looks scheduled (an old one then stops).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        started_on = segment_sizes_ensure(force=options["force"])
        if started_on is None:
            self.stdout.write("The daily segment size count is already scheduled.")
        else:
            self.stdout.write(f"Scheduled the daily segment size count from {started_on}.")
