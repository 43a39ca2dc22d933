"""Dashboard benchmark: the page at 1M customers / 10M orders answers without computing.

    # SQLite (the standard bench data; bench/preview.py generates it on first use):
    DATABASE_URL=sqlite:////tmp/bench_preview.sqlite3 .venv/bin/python bench/dashboard.py
    # PostgreSQL (a database bench/preview.py --copy-from filled):
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/bench_segengine \\
        .venv/bin/python bench/dashboard.py

It measures, in this process unless said otherwise:
- compute: what the warm-up task does for each preset (`dashboard_refresh`, the same call the
  task makes), twice: the first run reads the pages from disk, the second from the page cache;
- baseline: `GET /healthz` through Django's test client (routing, middleware), the floor that
  the page's times are read against (ratios hold whatever the machine's load);
- warm preset: `GET /?range=30|90|365` with the preset's figures cached (what every visit
  between two warm-up runs gets);
- cold range: `GET /?range=custom&from=..&to=..` for ranges never computed, a new one each time
  (the base is large: a bounded count, the placeholder, the task queued once);
- poll: the placeholder's `GET /dashboard/figures/` while the task runs (204) and once the
  figures are there (200, the fragment swapped in);
- fresh process: a new Python process (`--probe`) that imports Django, then times its first
  `GET /?range=30` and first cold range, as a web worker just started would.

Tasks go to Django's dummy backend (kept, never run), so no request computes by accident; the
cache is a file cache in --cache-dir shared with the probe process (production shares the
database cache or Redis the same way). Data generation is outside every timed section.
"""
# ruff: noqa: E402  (Django must see DATABASE_URL before it is imported)

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DATABASE_URL", "sqlite:////tmp/bench_preview.sqlite3")
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.test")
CACHE_DIR = "/tmp/bench_dashboard_cache"  # noqa: S108

import django

django.setup()

from django.db import connection
from django.test import Client, override_settings
from django.utils import timezone

from minicrm.accounts.models import Role, User
from minicrm.customers.models import Customer, Order
from minicrm.web.date_range import PRESETS, date_range_parse, date_range_preset
from minicrm.web.selectors import dashboard_is_small, dashboard_refresh

DUMMY_TASKS = {"default": {"BACKEND": "django_tasks.backends.dummy.DummyBackend"}}


def overrides(cache_dir: str) -> override_settings:
    return override_settings(
        TASKS=DUMMY_TASKS,
        CACHES={
            "default": {
                "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
                "LOCATION": cache_dir,
            }
        },
    )


def timed(run: Callable[[int], Any], runs: int) -> tuple[float, float]:
    run(-1)  # warm-up
    samples = []
    for index in range(runs):
        started = time.perf_counter()
        run(index)
        samples.append((time.perf_counter() - started) * 1000)
    samples.sort()
    p95 = samples[min(len(samples) - 1, round(0.95 * (len(samples) - 1)))]
    return statistics.median(samples), p95


def viewer_client() -> Client:
    user = User.objects.filter(email="bench-dashboard@example.com").first()
    if user is None:
        user = User.objects.create_user(
            "bench-dashboard@example.com", "bench-password-123", role=Role.VIEWER
        )
    client = Client()
    client.force_login(user)
    return client


def cold_query(index: int, salt: int = 0) -> dict[str, str]:
    """A custom range nobody asked for yet: one more day back for each index."""
    end = timezone.localdate() - timedelta(days=3 + salt)
    start = end - timedelta(days=40 + index)
    return {"range": "custom", "from": start.isoformat(), "to": end.isoformat()}


def get(client: Client, path: str, query: dict[str, str], status: int) -> Any:
    response = client.get(path, query)
    assert response.status_code == status, (path, query, response.status_code)
    return response


def probe(cache_dir: str) -> None:
    """The first requests of a process that has just imported Django (the numbers as JSON)."""
    with overrides(cache_dir):
        client = viewer_client()
        # Any first request pays for what Django loads lazily (URLconf, apps' views, templates).
        started = time.perf_counter()
        get(client, "/healthz", {}, 200)
        first_baseline = (time.perf_counter() - started) * 1000
        started = time.perf_counter()
        page = get(client, "/", {"range": "30"}, 200)
        first_warm = (time.perf_counter() - started) * 1000
        assert b"Computed" in page.content
        started = time.perf_counter()
        page = get(client, "/", cold_query(0, salt=int(time.time()) % 300 + 30), 200)
        first_cold = (time.perf_counter() - started) * 1000
        assert "Computing the figures" in page.content.decode()
    numbers = {"first_baseline_ms": first_baseline, "first_warm_ms": first_warm}
    print(json.dumps({**numbers, "first_cold_ms": first_cold}))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=20, help="requests per page measured")
    parser.add_argument("--cache-dir", default=CACHE_DIR)
    parser.add_argument("--json", help="write the results here as JSON")
    parser.add_argument("--probe", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.probe:
        probe(args.cache_dir)
        return
    if Customer._meta.db_table not in connection.introspection.table_names():
        sys.exit("No bench data: run bench/preview.py once to generate it (see its docstring).")
    shutil.rmtree(args.cache_dir, ignore_errors=True)
    results: dict[str, Any] = {"vendor": connection.vendor, "load": os.getloadavg()}
    results["customers"] = Customer.objects.count()
    results["orders"] = Order.objects.count()
    print(f"{connection.vendor}: {results['customers']:,} customers, {results['orders']:,} orders")
    with overrides(args.cache_dir):
        client = viewer_client()
        today = timezone.localdate()
        assert not dashboard_is_small(), "the bench base must be larger than the inline limit"

        compute = {}
        for days in PRESETS:
            date_range = date_range_preset(days=days, today=today)
            runs = []
            for _ in range(2):
                started = time.perf_counter()
                dashboard_refresh(date_range=date_range)
                runs.append(time.perf_counter() - started)
            compute[days] = runs
            print(f"  compute {days} days: {runs[0]:.1f} s, again {runs[1]:.1f} s", flush=True)
        results["compute_s"] = compute

        pages: dict[str, tuple[float, float]] = {}
        pages["baseline /healthz"] = timed(lambda _i: get(client, "/healthz", {}, 200), args.runs)
        for days in PRESETS:
            pages[f"warm preset {days}"] = timed(
                lambda _i, days=days: get(client, "/", {"range": str(days)}, 200), args.runs
            )
        pages["bounded count (is the base small?)"] = timed(
            lambda _i: dashboard_is_small(), args.runs
        )

        def cold(index: int) -> None:
            page = get(client, "/", cold_query(index + 1), 200)
            assert "Computing the figures" in page.content.decode()

        pages["cold range (placeholder)"] = timed(cold, args.runs)
        pages["poll while computing (204)"] = timed(
            lambda _i: get(client, "/dashboard/figures/", cold_query(1), 204), args.runs
        )
        # The task's work for one of them, then the poll that swaps the figures in.
        ready = cold_query(1)
        started = time.perf_counter()
        ready_range, _problem = date_range_parse(
            preset="custom", start=ready["from"], end=ready["to"], today=today
        )
        dashboard_refresh(date_range=ready_range)
        results["compute_custom_s"] = time.perf_counter() - started
        pages["poll once computed (200)"] = timed(
            lambda _i: get(client, "/dashboard/figures/", ready, 200), args.runs
        )
        results["pages_ms"] = pages

    command = [sys.executable, str(Path(__file__).resolve()), "--probe"]
    command += ["--cache-dir", args.cache_dir]
    started = time.perf_counter()
    output = subprocess.run(command, check=True, capture_output=True, text=True).stdout  # noqa: S603
    results["fresh_process"] = {
        **json.loads(output.strip().splitlines()[-1]),
        "process_s": time.perf_counter() - started,
    }
    results["load_after"] = os.getloadavg()

    baseline = pages["baseline /healthz"][0]
    print(f"\nload average {results['load'][0]:.1f} -> {results['load_after'][0]:.1f}")
    print(f"custom range computed by the task in {results['compute_custom_s']:.1f} s")
    print("| request | p50 | p95 | p50 / baseline |")
    print("| --- | --- | --- | --- |")
    for name, (p50, p95) in pages.items():
        print(f"| {name} | {p50:.1f} ms | {p95:.1f} ms | {p50 / baseline:.1f} |")
    fresh = results["fresh_process"]
    print(
        f"| fresh process: first /healthz, then first warm preset, first cold range |"
        f" {fresh['first_baseline_ms']:.0f} ms, {fresh['first_warm_ms']:.0f} ms,"
        f" {fresh['first_cold_ms']:.0f} ms | | (process {fresh['process_s']:.1f} s in all) |"
    )
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2, default=str))


if __name__ == "__main__":
    main()
