"""One snapshot per machine: processes share a generation (one builds it), see each other's
writes exactly, switch to a newer generation, and reuse it after a restart.

The in-memory test database is one process's, so tests/segments/snapshot_process.py runs in
subprocesses on a SQLite file, with the generations in a folder of the test's.
"""

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import pytest

from minicrm.segments.snapshot_file import generation_current

ROOT = Path(__file__).resolve().parents[2]
SEED = 200
MATCHING = SEED - 150  # spend 150..199 of the seed


class Process:
    """A snapshot_process subprocess: one command a line in, one JSON answer a line out."""

    def __init__(self, env: dict[str, str]) -> None:
        self.popen = subprocess.Popen(
            [sys.executable, "-W", "ignore", "-m", "tests.segments.snapshot_process"],
            cwd=ROOT,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def send(self, command: str) -> None:
        assert self.popen.stdin is not None
        self.popen.stdin.write(command + "\n")
        self.popen.stdin.flush()

    def receive(self) -> Any:
        assert self.popen.stdout is not None
        line = self.popen.stdout.readline()
        if not line:
            assert self.popen.stderr is not None
            raise AssertionError(self.popen.stderr.read()[-3000:])
        return json.loads(line)

    def ask(self, command: str) -> Any:
        self.send(command)
        return self.receive()

    def close(self) -> None:
        assert self.popen.stdin is not None
        self.popen.stdin.close()
        self.popen.wait(timeout=30)


@contextmanager
def processes(count: int, env: dict[str, str]) -> Iterator[list[Process]]:
    with ExitStack() as stack:
        started = [Process(env) for _ in range(count)]
        for process in started:
            stack.callback(process.popen.kill)
        yield started
        for process in started:
            process.close()


@pytest.mark.once
@pytest.mark.timeout(240)
def test_processes_share_one_generation_with_exact_counts(tmp_path: Path) -> None:
    folder = tmp_path / "snapshot"
    env = {key: value for key, value in os.environ.items() if not key.startswith("DATABASE_")}
    env.update(
        DATABASE_URL=f"sqlite:///{tmp_path / 'shared.sqlite3'}",
        DJANGO_SETTINGS_MODULE="config.settings.test",
        MINICRM_SNAPSHOT_DIR=str(folder),
    )
    with processes(1, env) as (setup,):
        assert setup.ask("migrate") == {"customers": SEED}

    with processes(2, env) as (first, second):
        # Both ask at once: one builds, the other waits for its file.
        first.send("open")
        second.send("open")
        opened = [first.receive(), second.receive()]
        assert opened[0]["generation"] == opened[1]["generation"]
        assert sorted(answer["built"] for answer in opened) == [False, True]
        generation = opened[0]["generation"]
        assert len(list(folder.glob("gen-*"))) == 1

        before = second.ask("preview")
        assert (before["count"], before["sql"], before["total"]) == (MATCHING, MATCHING, SEED)
        # A write in one process; the other's next preview counts it exactly (its delta).
        first.ask("write")
        after = second.ask("preview")
        assert (after["count"], after["sql"]) == (MATCHING + 3 - 1, MATCHING + 3 - 1)
        assert after["total"] == SEED + 3
        assert after["generation"] == generation
        assert after["delta_rows"] == 4

        # One process writes the next generation from its delta; the other switches to it.
        assert first.ask("preview")["count"] == MATCHING + 2
        compacted = first.ask("compact")
        assert compacted["compacted"] is True
        assert compacted["state"]["state"] == "ready"
        current = generation_current(folder)
        assert current is not None
        assert current.name != generation
        assert current.rows["customers"] == SEED + 3
        switched = second.ask("preview")
        assert switched["generation"] == current.name
        assert (switched["count"], switched["sql"]) == (MATCHING + 2, MATCHING + 2)

    # After a restart the generation on disk is used as it is: nothing is built.
    with processes(1, env) as (restarted,):
        reopened = restarted.ask("open")
        assert reopened == {"generation": current.name, "built": False}
        assert restarted.ask("preview")["count"] == MATCHING + 2
