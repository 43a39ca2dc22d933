"""Migration 0002 renames segments whose names differ only in case (the oldest keeps its name,
later ones get the first free " (n)"), so 0003's unique constraint can be added over old data."""

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

BEFORE = [("segments", "0001_initial")]
AFTER = [("segments", "0003_segment_name_unique_ignoring_case")]


def migrate(target: list[tuple[str, str]]) -> MigrationExecutor:
    executor = MigrationExecutor(connection)
    executor.migrate(target)
    executor.loader.build_graph()  # what is applied now
    return executor


@pytest.mark.django_db(transaction=True)
def test_case_duplicates_are_renamed_before_names_become_unique() -> None:
    long_name = "x" * 120
    if connection.vendor == "mysql":
        # MariaDB's case-insensitive collation never let case-duplicates in: there the migration
        # must keep every name as it is and add the lower-case key.
        created = ("VIP", "Vip (2)", "Other", long_name)
        expected = [(name, name.lower()) for name in created]
    else:
        created = ("VIP", "vip", "Vip (2)", "Other", "vIp", long_name, long_name.upper())
        expected = [
            ("VIP", "vip"),
            ("vip (3)", "vip (3)"),
            ("Vip (2)", "vip (2)"),
            ("Other", "other"),
            ("vIp (4)", "vip (4)"),
            (long_name, long_name),
            ("X" * 116 + " (2)", "x" * 116 + " (2)"),
        ]
    try:
        old_apps = migrate(BEFORE).loader.project_state(BEFORE).apps
        old_segment = old_apps.get_model("segments", "Segment")
        for name in created:
            old_segment.objects.create(name=name, rules={"match": "all", "conditions": []})
    finally:
        new_apps = migrate(AFTER).loader.project_state(AFTER).apps
    names = list(
        new_apps.get_model("segments", "Segment")
        .objects.order_by("pk")
        .values_list("name", "name_key")
    )
    assert names == expected
