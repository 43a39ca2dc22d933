"""Segment names are unique ignoring case in the database: of two concurrent creates of "VIP"
and "vip", one is stored and the other is a conflict on `name`, on every database."""

from pathlib import Path

import pytest
from django.db import connection

from minicrm.segments.models import Segment
from tests.sqlite_file_load import sqlite_file_load

from .name_race import name_race

EXPECTED = ["conflict on name", "created"]


@pytest.mark.django_db(transaction=True)
@pytest.mark.server_database
@pytest.mark.timeout(120)
def test_concurrent_creates_differing_in_case_store_one() -> None:
    if connection.vendor == "sqlite":
        pytest.skip("the SQLite pass runs the race on a database file (the next test)")
    assert name_race() == EXPECTED
    assert [name.lower() for name in Segment.objects.values_list("name", flat=True)] == ["vip"]


@pytest.mark.once
@pytest.mark.timeout(180)
def test_concurrent_creates_differing_in_case_store_one_on_a_sqlite_file(tmp_path: Path) -> None:
    result = sqlite_file_load("tests.segments.name_race_load", var_dir=tmp_path)
    assert result == {"outcomes": EXPECTED, "stored": ["vip"]}
