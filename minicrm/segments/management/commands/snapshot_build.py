"""Build the machine's preview snapshot now (for a release step or a cron), instead of in the
background of the first web or worker process that needs it."""

from argparse import ArgumentParser
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand

from minicrm.segments.snapshot import generation_build, snapshot_state
from minicrm.segments.snapshot_file import generation_current


class Command(BaseCommand):
    help = "Write a generation of the preview snapshot from the database unless one exists."

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument(
            "--force",
            action="store_true",
            help="Write a new generation even if one exists (processes switch to it).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        directory = Path(settings.MINICRM_SNAPSHOT_DIR)
        current = generation_current(directory)
        if current is not None and not options["force"]:
            self.stdout.write(f"The snapshot exists: {current.name} in {directory}.")
            return
        built = generation_build(
            directory=directory, replacing=current.name if current is not None else None
        )
        if not built:
            self.stdout.write("Another process is writing the snapshot; nothing done.")
            return
        state = snapshot_state()
        self.stdout.write(f"Wrote the snapshot {state['generation']} in {directory}.")
