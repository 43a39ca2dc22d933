"""The ingestion benchmark still runs end to end and its own stats check finds nothing wrong."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_ingest_benchmark_measures_every_path_and_keeps_stats_exact(tmp_path: Path) -> None:
    if os.environ.get("DATABASE_URL"):
        pytest.skip("the ingestion benchmark measures SQLite; this pass is for another database")
    env = {key: value for key, value in os.environ.items() if not key.startswith(("DATABASE_",))}
    env.update(MINICRM_BENCH_DB=str(tmp_path / "bench.sqlite3"), MINICRM_VAR_DIR=str(tmp_path))
    command = [sys.executable, "bench/ingest.py", "--customers", "2000", "--orders", "20000"]
    finished = subprocess.run(
        [*command, "--batches", "1"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )

    assert finished.returncode == 0, finished.stderr[-2000:]
    table = finished.stdout
    for path in [
        "raw executemany (no validation, no stats)",
        "random customers: orders_bulk_upsert",
        "POST /api/v1/orders/bulk",
        "CSV import",
        "re-sent (all unchanged)",
        "grouped by customer: orders_bulk_upsert",
        "demo generator",
    ]:
        row = next((line for line in table.splitlines() if path in line), None)
        assert row is not None, f"no row for {path!r} in:\n{table}"
        rows_per_second = float(row.split("|")[4].replace(",", ""))
        assert rows_per_second > 0
    assert re.search(r"checked against their\norders: 0 wrong\.", table), table
    assert not list(tmp_path.glob("bench.sqlite3*")), "the database file must be removed"
    assert not [path for path in tmp_path.rglob("*.csv") if path.is_file()], "uploads must go"
