"""Segment facts benchmark: `rules_facts` through SQL and through the columnar snapshot.

    # a copy of the demo data (seed_demo --customers 1000000 --orders 10000000), never the original:
    DATABASE_URL=sqlite:////tmp/facts/demo.sqlite3 .venv/bin/python bench/facts.py

It measures, on the same data in the same run (so the ratios hold whatever the machine's load):
- the snapshot's load (customers, tags and the recent completed orders, in this process);
- the whole base's figures through SQL with an empty cache (what the SQL path pays once per
  data change: its base is cached by a data fingerprint);
- for five contrasting segments, p50 of `--runs` runs of the facts through SQL (base cached) and
  through the snapshot (base computed each time), and their ratio; each segment's facts from
  both paths are compared figure by figure;
- a refresh with nothing to apply, then `--batch` new orders for as many customers written
  through `orders_bulk_upsert` (not timed) and the refresh that applies them, after which the
  segments' figures are compared again (without the base, to spare a second cold base).

The copy is written to (the batch of orders): work on a copy, and delete it afterwards.
"""
# ruff: noqa: E402  (Django must see DATABASE_URL before it is imported)

import argparse
import json
import os
import random
import resource
import statistics
import sys
import time
from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DATABASE_URL", "sqlite:////tmp/facts/demo.sqlite3")
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.test")

import django

django.setup()

from django.core.cache import cache
from django.db import connection
from django.utils import timezone

from minicrm.customers.models import Customer
from minicrm.customers.services import orders_bulk_upsert
from minicrm.insights import facts as facts_module
from minicrm.insights.facts import base_figures, members_facts, snapshot_facts
from minicrm.segments.compiler import customers_matching, today_in_zone
from minicrm.segments.rules import parse_rules
from minicrm.segments.snapshot import CustomerSnapshot

# Keys `_compare_to_base` adds to a group's figures (left out when the base is not computed).
COMPARED = ("share_of_customers", "share_of_revenue")


def segments(today: date) -> list[tuple[str, dict[str, Any]]]:
    def rules(*conditions: dict[str, Any]) -> dict[str, Any]:
        return {"match": "all", "conditions": list(conditions)}

    def c(field: str, operator: str, value: Any) -> dict[str, Any]:
        return {"field": field, "operator": operator, "value": value}

    return [
        ("high spenders (spend ≥ 50,000)", rules(c("total_spend", "gte", 50000))),
        (
            "lapsed (ordered, not in 180 days)",
            rules(c("order_count", "gte", 1), c("last_order_date", "not_in_last_days", 180)),
        ),
        ("new (signed up in 90 days)", rules(c("signup_date", "in_last_days", 90))),
        ("one city (Mumbai)", rules(c("city", "eq", "Mumbai"))),
        ("everyone", rules()),
    ]


def timed(run: Callable[[], Any], runs: int) -> tuple[float, list[float], Any]:
    """p50 of `runs` runs in milliseconds, every sample, and the last result."""
    samples = []
    result = None
    for _ in range(runs):
        started = time.perf_counter()
        result = run()
        samples.append((time.perf_counter() - started) * 1000)
    return statistics.median(samples), samples, result


def differences(left: Any, right: Any, path: str = "") -> list[str]:
    """Where two facts documents differ (empty: identical)."""
    if isinstance(left, dict) and isinstance(right, dict):
        found = []
        for key in sorted(set(left) | set(right)):
            found += differences(left.get(key), right.get(key), f"{path}.{key}")
        return found
    if isinstance(left, list) and isinstance(right, list) and len(left) == len(right):
        found = []
        for index, (a, b) in enumerate(zip(left, right, strict=True)):
            found += differences(a, b, f"{path}[{index}]")
        return found
    return [] if left == right else [f"{path}: {left!r} != {right!r}"]


def without_base(figures: dict[str, Any]) -> dict[str, Any]:
    """A group's figures without what comparing it to the base adds."""
    figures = {key: value for key, value in figures.items() if key not in COMPARED}
    for key in ("top_cities", "top_countries"):
        figures[key] = [
            {name: value for name, value in place.items() if name not in ("base_share", "index")}
            for place in figures[key]
        ]
    return figures


def load_average() -> str:
    return " / ".join(f"{value:.2f}" for value in os.getloadavg())


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--batch", type=int, default=10_000, help="new orders for the refresh")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", help="write the results here as JSON")
    args = parser.parse_args()
    if connection.vendor != "sqlite":
        print(f"(running on {connection.vendor})")
    today = today_in_zone()
    total = Customer.objects.count()
    print(f"{total:,} customers; today {today}; load average {load_average()}", flush=True)
    results: dict[str, Any] = {"customers": total, "load_average_start": os.getloadavg()}

    started = time.perf_counter()
    snapshot = CustomerSnapshot()
    snapshot.load()
    results["load_s"] = time.perf_counter() - started
    held = snapshot.fetch("SELECT COUNT(*) FROM recent_orders", [])[0][0]
    results["recent_orders"] = held
    results["max_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"snapshot load {results['load_s']:.1f} s ({held:,} recent completed orders since "
        f"{snapshot.orders_since:%Y-%m-%d}); max RSS {results['max_rss_mb']:.0f} MB",
        flush=True,
    )

    cache.clear()
    started = time.perf_counter()
    base_figures(today=today)
    results["sql_base_cold_s"] = time.perf_counter() - started
    print(f"SQL base figures, empty cache: {results['sql_base_cold_s']:.1f} s", flush=True)

    rows = []
    for name, rules in segments(today):
        group = parse_rules(rules)

        def sql(group: Any = group) -> dict[str, Any]:
            return members_facts(members=customers_matching(group, today=today), today=today)

        def duck(group: Any = group) -> dict[str, Any]:
            return snapshot_facts(snapshot=snapshot, rules=group, today=today)

        sql_p50, sql_samples, sql_facts = timed(sql, args.runs)
        duck_p50, duck_samples, duck_facts = timed(duck, args.runs)
        diff = differences(sql_facts, duck_facts)
        row = {
            "segment": name,
            "customers": duck_facts["segment"]["customers"],
            "sql_p50_ms": sql_p50,
            "snapshot_p50_ms": duck_p50,
            "ratio": sql_p50 / duck_p50,
            "sql_samples": sql_samples,
            "snapshot_samples": duck_samples,
            "differences": diff,
        }
        rows.append(row)
        print(
            f"  {name:36} {row['customers']:>9,}  SQL {sql_p50:8.0f} ms  snapshot "
            f"{duck_p50:6.0f} ms  x{row['ratio']:5.1f}  "
            + ("same facts" if not diff else f"{len(diff)} differences: {diff[:3]}"),
            flush=True,
        )
    results["segments"] = rows

    idle_p50, _samples, _ = timed(snapshot.refresh, max(args.runs, 5))
    results["refresh_idle_ms"] = idle_p50
    rng = random.Random(args.seed)
    keys = list(Customer.objects.order_by("?").values_list("external_id", flat=True)[: args.batch])
    stamp = int(time.time())
    now = timezone.now()
    batch = [
        {
            "external_id": f"bench-facts-{stamp}-{index}",
            "customer_external_id": key,
            "amount": f"{rng.randint(100, 500_000) / 100:.2f}",
            "ordered_at": (now - timedelta(seconds=rng.randint(0, 86_400 * 200))).isoformat(),
            "status": rng.choice(["completed"] * 9 + ["cancelled"]),
        }
        for index, key in enumerate(keys)
    ]
    started = time.perf_counter()
    for start in range(0, len(batch), 5_000):
        result = orders_bulk_upsert(rows=batch[start : start + 5_000])
        assert not result.errors, result.errors[:3]
    results["batch_write_s"] = time.perf_counter() - started
    started = time.perf_counter()
    snapshot.refresh()
    results["refresh_after_batch_ms"] = (time.perf_counter() - started) * 1000
    print(
        f"refresh: nothing new {idle_p50:.0f} ms; after {len(batch):,} new orders for as many "
        f"customers (written in {results['batch_write_s']:.1f} s) "
        f"{results['refresh_after_batch_ms']:.0f} ms",
        flush=True,
    )
    after = []
    for name, rules in segments(today)[:4]:
        group = parse_rules(rules)
        expected = facts_module._group_figures(
            customers_matching(group, today=today), today=today, everyone=False
        )
        duck_p50, _samples, facts = timed(
            lambda group=group: snapshot_facts(snapshot=snapshot, rules=group, today=today),
            args.runs,
        )
        diff = differences(expected, without_base(facts["segment"]))
        after.append({"segment": name, "snapshot_p50_ms": duck_p50, "differences": diff})
        print(
            f"  after the refresh: {name:36} snapshot {duck_p50:6.0f} ms  "
            + ("same figures as SQL" if not diff else f"{len(diff)} differences: {diff[:3]}"),
            flush=True,
        )
    results["after_refresh"] = after
    results["load_average_end"] = os.getloadavg()
    print(f"load average {load_average()}")
    print()
    print_table(results)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2, default=str))


def print_table(results: dict[str, Any]) -> None:
    print("| segment | customers | SQL p50 (base cached) | snapshot p50 | SQL ÷ snapshot |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for row in results["segments"]:
        print(
            f"| {row['segment']} | {row['customers']:,} | {row['sql_p50_ms'] / 1000:.2f} s "
            f"| {row['snapshot_p50_ms']:.0f} ms | {row['ratio']:.1f} |"
        )


if __name__ == "__main__":
    main()
