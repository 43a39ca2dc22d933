"""Tasks used only by the task-backend tests (importable by a separate worker process)."""

import os
import time
from pathlib import Path

from django_tasks import task

# How long `workers_meet` waits for the other workers before it gives up.
MEET_SECONDS = 60.0


@task()
def multiply(a: int, b: int) -> int:
    return a * b


@task()
def run_record(log_path: str, key: int) -> int:
    """Append this run to `log_path` as one line ("key pid epoch-seconds"): a key on two lines
    ran twice."""
    _line_append(log_path, f"{key} {os.getpid()} {time.time()}")
    return key


@task()
def workers_meet(log_path: str, workers: int) -> int:
    """Record this run, then wait until `workers` runs of this task are under way at once.

    A worker runs one task at a time, so `workers` of them waiting together prove that many
    worker processes were taking tasks from the queue at the same moment. Returns how many met.
    """
    _line_append(log_path, f"meet {os.getpid()}")
    deadline = time.monotonic() + MEET_SECONDS
    met = _lines(log_path)
    while met < workers and time.monotonic() < deadline:
        time.sleep(0.05)
        met = _lines(log_path)
    return met


def _line_append(path: str, line: str) -> None:
    # One short write to a file opened for appending: lines of concurrent processes never mix.
    with Path(path).open("a") as log:
        log.write(line + "\n")


def _lines(path: str) -> int:
    return len(Path(path).read_text().splitlines())
