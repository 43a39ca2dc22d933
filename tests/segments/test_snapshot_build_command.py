"""`manage.py snapshot_build`: writes a generation once, again only with --force."""

from decimal import Decimal
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command

from minicrm.segments.snapshot_file import build_lock, generation_current
from tests.factories import CustomerFactory


def run(*args: str) -> str:
    out = StringIO()
    call_command("snapshot_build", *args, stdout=out)
    return out.getvalue()


@pytest.mark.django_db
def test_the_command_builds_once_then_only_when_forced(settings: Any, tmp_path: Path) -> None:
    settings.MINICRM_SNAPSHOT_DIR = tmp_path
    CustomerFactory(total_spend=Decimal("10.00"), order_count=1)

    assert "Wrote the snapshot" in run()
    first = generation_current(tmp_path)
    assert first is not None
    assert first.rows["customers"] == 1
    assert "The snapshot exists" in run()
    assert generation_current(tmp_path) == first

    with build_lock(tmp_path):  # another process is writing one
        assert "nothing done" in run("--force")
    assert "Wrote the snapshot" in run("--force")
    forced = generation_current(tmp_path)
    assert forced is not None
    assert forced.name != first.name
