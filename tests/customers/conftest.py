"""Fixtures for the customers tests."""

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from minicrm.imports.models import Import
from minicrm.imports.services import import_create, import_process
from tests.imports.conftest import csv_file


@pytest.fixture
def csv_import(settings: Any, tmp_path: Path) -> Callable[..., Import]:
    """Run a CSV import in this process: `csv_import(content, kind="orders")` returns the
    finished Import. Uploads land in a temporary MEDIA_ROOT, not the project's var/."""
    settings.MEDIA_ROOT = tmp_path / "media"

    def run(content: str, *, kind: str | None, mapping: str | None = None) -> Import:
        upload = csv_file(content, f"{kind or 'data'}.csv")
        created = import_create(
            file=upload, kind=kind, created_by=None, mapping=mapping, enqueue=False
        )
        return import_process(import_id=created.pk)

    return run
