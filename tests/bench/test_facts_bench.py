"""The facts benchmark still runs end to end and finds SQL and the snapshot in agreement."""

from pathlib import Path

import pytest

from .conftest import run_script, sqlite_env


@pytest.mark.slow
def test_facts_benchmark_compares_both_paths_on_demo_data(tmp_path: Path) -> None:
    env = sqlite_env(
        DATABASE_URL=f"sqlite:///{tmp_path / 'demo.sqlite3'}",
        DJANGO_DEBUG="true",
        MINICRM_VAR_DIR=str(tmp_path),
    )
    for command in (["manage.py", "migrate", "-v0"], ["manage.py", "seed_demo"]):
        prepared = run_script(command, env)
        assert prepared.returncode == 0, prepared.stderr[-2000:]

    finished = run_script(["bench/facts.py", "--runs", "1", "--batch", "200"], env)

    assert finished.returncode == 0, finished.stderr[-2000:]
    lines = finished.stdout.splitlines()
    compared = [line for line in lines if "same facts" in line or "differences" in line]
    refreshed = [line for line in lines if "after the refresh" in line]
    assert len(compared) == 5, finished.stdout
    assert all("same facts" in line for line in compared), finished.stdout
    assert len(refreshed) == 4, finished.stdout
    assert all("same figures as SQL" in line for line in refreshed), finished.stdout
