"""The ingestion benchmark still runs end to end and its own stats check finds nothing wrong."""

import re
from pathlib import Path

import pytest

from .conftest import run_script, sqlite_env


@pytest.mark.slow
def test_ingest_benchmark_measures_every_path_and_keeps_stats_exact(tmp_path: Path) -> None:
    env = sqlite_env(
        MINICRM_BENCH_DB=str(tmp_path / "bench.sqlite3"), MINICRM_VAR_DIR=str(tmp_path)
    )
    arguments = [
        "bench/ingest.py",
        *("--customers", "2000", "--orders", "20000", "--batches", "1"),
        *("--shopify-orders", "3000"),
    ]

    finished = run_script(arguments, env)

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
        "Shopify orders export",
    ]:
        row = next((line for line in table.splitlines() if path in line), None)
        assert row is not None, f"no row for {path!r} in:\n{table}"
        rows_per_second = float(row.split("|")[4].replace(",", ""))
        assert rows_per_second > 0
    assert re.search(r"checked against their\norders: 0 wrong\.", table), table
    assert "| Shopify orders export (" in table
    assert re.search(r"Stats of [\d,]+ customers of the Shopify export: 0 wrong\.", table), table
    assert not list(tmp_path.glob("bench.sqlite3*")), "the database file must be removed"
    assert not [path for path in tmp_path.rglob("*.csv") if path.is_file()], "uploads must go"
