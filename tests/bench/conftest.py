"""Helpers for the benchmark smoke tests: each runs a benchmark script on SQLite in a tmp dir."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent


@pytest.hookimpl(tryfirst=True)  # before `-m` deselects by marker
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every benchmark smoke test measures SQLite whatever the database under test: `once`.
    Each script run is bounded by `run_script`; the test as a whole gets more than one run's."""
    for item in items:
        if item.path.is_relative_to(HERE):
            item.add_marker(pytest.mark.once)
            item.add_marker(pytest.mark.timeout(900))


def sqlite_env(**extra: str) -> dict[str, str]:
    """This process's environment without its database settings, plus `extra`; skips the test
    in the passes for other databases (the benchmarks measure SQLite)."""
    if os.environ.get("DATABASE_URL"):
        pytest.skip("the benchmarks measure SQLite; this pass is for another database")
    env = {key: value for key, value in os.environ.items() if not key.startswith("DATABASE_")}
    return {**env, **extra}


def run_script(arguments: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """`python arguments...` from the project root, its output captured."""
    return subprocess.run(
        [sys.executable, *arguments],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
