"""The scale benchmarks still run end to end on a small SQLite file: the cold start script gets
previews answered and reads every worker's memory; the load test sends every kind of request
without a failure and removes the rows it created."""

import json
import sqlite3
from pathlib import Path

import pytest

from tests.production_env import production_env

from .conftest import run_script, sqlite_env

LOAD_ENDPOINTS = [
    "GET / (dashboard)",
    "POST /api/v1/customers/bulk",
    "POST /api/v1/orders/bulk",
    "POST /api/v1/segments/preview",
]


@pytest.fixture
def small_database(tmp_path: Path) -> Path:
    """A migrated SQLite file with 300 demo customers and 2,000 orders."""
    path = tmp_path / "small.sqlite3"
    env = production_env(tmp_path / "setup")
    env["DATABASE_URL"] = f"sqlite:///{path}"
    for arguments in (
        ["migrate", "--noinput"],
        ["seed_demo", "--customers", "300", "--orders", "2000"],
    ):
        finished = run_script(["manage.py", *arguments], env)
        assert finished.returncode == 0, finished.stderr[-2000:]
    return path


def test_cold_start_answers_previews_and_measures_each_worker(
    small_database: Path, tmp_path: Path
) -> None:
    output = tmp_path / "cold.json"
    arguments = ["bench/cold_start.py", "--database-url", f"sqlite:///{small_database}"]
    arguments += ["--workers", "2", "--previews", "3", "--settle-seconds", "60"]

    finished = run_script([*arguments, "--json", str(output)], sqlite_env())

    assert finished.returncode == 0, finished.stderr[-2000:]
    result = json.loads(output.read_text())
    assert result["customers"] == 300
    assert result["first_preview_s"] > 0
    assert [preview["status"] for preview in result["previews"]] == [200, 200, 200]
    assert result["errors_after_first"] == {}
    assert result["counts_consistent"] is True
    assert result["warm_s"] is not None
    assert result["workers"] == 2
    assert [row["process"] for row in result["memory"]] == ["master", "worker 1", "worker 2"]
    for row in result["memory"]:
        assert 0 < row["private_mb"] <= row["rss_mb"] <= row["peak_rss_mb"]
    assert "| first preview (200) |" in finished.stdout
    assert "| worker 2 |" in finished.stdout


def test_load_runs_every_request_without_failure_and_removes_its_rows(
    small_database: Path, tmp_path: Path
) -> None:
    output = tmp_path / "load.json"
    arguments = ["bench/load.py", "--database-url", f"sqlite:///{small_database}"]
    arguments += ["--users", "5", "--spawn-rate", "5", "--seconds", "8", "--think", "0.2,0.4"]
    arguments += ["--var-dir", str(tmp_path / "var"), "--json", str(output)]

    finished = run_script(arguments, sqlite_env())

    assert finished.returncode == 0, finished.stdout[-2000:] + finished.stderr[-2000:]
    result = json.loads(output.read_text())
    rows = {row["endpoint"]: row for row in result["rows"]}
    for endpoint in LOAD_ENDPOINTS:
        assert rows[endpoint]["requests"] > 0, finished.stdout
    assert rows["all"]["failures"] == 0
    assert result["ramp_failures"] == 0
    assert result["errors"] == []
    assert "| POST /api/v1/segments/preview |" in finished.stdout
    with sqlite3.connect(small_database) as database:
        (left,) = database.execute(
            "SELECT COUNT(*) FROM customers_customer WHERE external_id LIKE 'load-%'"
        ).fetchone()
        (customers,) = database.execute("SELECT COUNT(*) FROM customers_customer").fetchone()
    assert left == 0
    assert customers == 300
    assert result["deleted_rows"] > 0
