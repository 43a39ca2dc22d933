"""The delivery benchmark still runs end to end: worker, web and vendor simulator in their own
processes, every receipt back, the outcome checked, and its scratch database removed."""

from pathlib import Path

import pytest

from .conftest import run_script, sqlite_env


@pytest.mark.slow
def test_delivery_benchmark_runs_the_whole_loop_and_checks_it(tmp_path: Path) -> None:
    env = sqlite_env(TMPDIR=str(tmp_path), MINICRM_VAR_DIR=str(tmp_path))

    finished = run_script(["bench/delivery.py", "--recipients", "1500", "--batch-size", "200"], env)

    assert finished.returncode == 0, finished.stdout[-2000:] + finished.stderr[-3000:]
    lines = finished.stdout.splitlines()
    assert any("checks passed" in line for line in lines), finished.stdout
    rows = [line.split(" | ") for line in lines if line.startswith("| ") and "---" not in line]
    assert [row[1] for row in rows[1:]] == ["1,500"] * 5  # every stage moved every message
    assert "sqlite, 1,500 recipients, batches of 200" in finished.stdout
    assert list(tmp_path.glob("minicrm-bench-delivery-*")) == []  # the scratch database is gone
