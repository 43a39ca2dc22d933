"""The facts benchmark still runs end to end and finds SQL and the snapshot in agreement."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _run(command: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *command],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


@pytest.mark.slow
def test_facts_benchmark_compares_both_paths_on_demo_data(tmp_path: Path) -> None:
    if os.environ.get("DATABASE_URL"):
        pytest.skip("the facts benchmark measures SQLite; this pass is for another database")
    env = {key: value for key, value in os.environ.items() if not key.startswith("DATABASE_")}
    env.update(
        DATABASE_URL=f"sqlite:///{tmp_path / 'demo.sqlite3'}",
        DJANGO_DEBUG="true",
        MINICRM_VAR_DIR=str(tmp_path),
    )
    for command in (["manage.py", "migrate", "-v0"], ["manage.py", "seed_demo"]):
        prepared = _run(command, env)
        assert prepared.returncode == 0, prepared.stderr[-2000:]

    finished = _run(["bench/facts.py", "--runs", "1", "--batch", "200"], env)

    assert finished.returncode == 0, finished.stderr[-2000:]
    lines = finished.stdout.splitlines()
    compared = [line for line in lines if "same facts" in line or "differences" in line]
    refreshed = [line for line in lines if "after the refresh" in line]
    assert len(compared) == 5, finished.stdout
    assert all("same facts" in line for line in compared), finished.stdout
    assert len(refreshed) == 4, finished.stdout
    assert all("same figures as SQL" in line for line in refreshed), finished.stdout
