"""`python -m tests.segments.name_race_load` migrates a fresh SQLite file (tests.sqlite_file_load)
and prints the outcomes of `name_race` and the names stored, as JSON: the test database in
memory cannot hold two writers at once."""

import json
import os

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.test")
django.setup()

from django.core.management import call_command  # noqa: E402

from minicrm.segments.models import Segment  # noqa: E402
from tests.segments.name_race import name_race  # noqa: E402

if __name__ == "__main__":
    call_command("migrate", verbosity=0)
    outcomes = name_race()
    stored = sorted(name.lower() for name in Segment.objects.values_list("name", flat=True))
    print(json.dumps({"outcomes": outcomes, "stored": stored}))
