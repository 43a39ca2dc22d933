"""Rename segments whose names differ only in case, before 0003 makes names unique ignoring case.

The oldest segment (lowest id) keeps its name; each later one gets a suffix, "vip (2)", the first
number that makes its name free ignoring case. Nothing else changes, so links and campaigns that
point at a segment by id keep working; the audit trail keeps the old names.
"""

from django.apps.registry import Apps
from django.db import migrations
from django.db.backends.base.schema import BaseDatabaseSchemaEditor

NAME_MAX_LENGTH = 120


def free_name(name: str, taken: set[str]) -> str:
    """`name` with the first suffix " (n)" whose result is not in `taken` (lower-cased names)."""
    number = 2
    while True:
        suffix = f" ({number})"
        candidate = name[: NAME_MAX_LENGTH - len(suffix)] + suffix
        if candidate.lower() not in taken:
            return candidate
        number += 1


def segment_names_distinct(apps: Apps, schema_editor: BaseDatabaseSchemaEditor) -> None:
    segment_model = apps.get_model("segments", "Segment")
    rows = list(segment_model.objects.order_by("pk").values_list("pk", "name"))
    taken = {name.lower() for _pk, name in rows}
    seen: set[str] = set()
    for pk, name in rows:
        if name.lower() not in seen:
            seen.add(name.lower())
            continue
        renamed = free_name(name, taken)
        taken.add(renamed.lower())
        seen.add(renamed.lower())
        segment_model.objects.filter(pk=pk).update(name=renamed)


class Migration(migrations.Migration):
    dependencies = [("segments", "0001_initial")]

    operations = [
        migrations.RunPython(segment_names_distinct, migrations.RunPython.noop, elidable=True)
    ]
