"""The process's snapshot made fresh for a test: its generations in a folder of the test's, and
builds run in the test's thread (a background thread cannot see the test's transaction)."""

import threading
from pathlib import Path
from typing import Any

import pytest

from minicrm.segments import snapshot as snapshot_module
from minicrm.segments.snapshot import CustomerSnapshot
from minicrm.segments.snapshot_file import generation_publish


def snapshot_process_reset(monkeypatch: pytest.MonkeyPatch) -> None:
    """As at process start: no copy, no build or compaction under way or tried."""
    for name in ("_shared", "_build_thread", "_compact_thread", "_build_failed_at"):
        monkeypatch.setattr(snapshot_module, name, None)
    monkeypatch.setattr(
        snapshot_module, "_build_tried_at", -snapshot_module.BUILD_TRY_EVERY_SECONDS
    )


def snapshot_machine(
    monkeypatch: pytest.MonkeyPatch, settings: Any, folder: Path, *, publish_after: float = 0.0
) -> list[threading.Timer]:
    """Reset the process's copy to none and point it at `folder`. A build reads the database
    when started; it is published at once, or `publish_after` seconds later (a build under way
    meanwhile). The timers of delayed publications are returned (to cancel)."""
    snapshot_process_reset(monkeypatch)
    settings.MINICRM_SNAPSHOT_DIR = folder
    settings.MINICRM_PREVIEW_SNAPSHOT = True
    timers: list[threading.Timer] = []

    def build_in_this_thread(directory: Path, *, replacing: str | None) -> None:
        if publish_after <= 0:
            snapshot_module.generation_build(directory=directory, replacing=replacing)
            return
        if timers:
            return  # one build under way
        folder, manifest = CustomerSnapshot(directory=directory).generation_write_from_database()
        timer = threading.Timer(publish_after, generation_publish, (directory, folder, manifest))
        timer.daemon = True
        timers.append(timer)
        timer.start()

    monkeypatch.setattr(snapshot_module, "_build_start", build_in_this_thread)
    return timers
