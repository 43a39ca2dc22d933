"""Currency benchmark: what conversion costs at ingestion, a rate change's re-conversion, and the
migration that adds Order.original_amount, on a SQLite database at scale.

    .venv/bin/python bench/currency.py                           # 100,000 customers, 1M orders
    .venv/bin/python bench/currency.py --customers 1000000 --orders 10000000

Steps: seed the demo data (in the shop currency); store `--batches` batches of 10,000 new orders
in INR, then the same number with every order in USD or EUR (a rate a day, looked up once per
(currency, day) a batch); change the EUR rate of one day and time the re-conversion of the orders
it decides (batches of 10,000, customers' stats recomputed); at the end migrate the customers app
back to 0006 and forward again, timing 0007 (add the column, one UPDATE, NOT NULL). Every
customer's stats are checked against a recount of their orders after the re-conversion.
"""
# ruff: noqa: E402  (Django has to be pointed at the benchmark database before it is imported)

import argparse
import os
import random
import sys
import time
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
DB_PATH = Path(os.environ.get("MINICRM_BENCH_DB", "/tmp/minicrm-bench-currency.sqlite3"))  # noqa: S108
os.environ["DATABASE_URL"] = f"sqlite:///{DB_PATH}"
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.test")
# The re-conversion is timed here, not run by an in-process backend as the rates commit.
os.environ.setdefault("MINICRM_TASKS_BACKEND", "database")
sys.path.insert(0, str(ROOT))

import django

django.setup()

from django.core.management import call_command
from django.db import connection
from django.db.models import Count, Q, Sum

from minicrm.customers.models import Customer, Order, RateReconversion
from minicrm.customers.rates import rates_upsert
from minicrm.customers.reconversion import reconversion_run
from minicrm.customers.services import orders_bulk_upsert

BATCH = 10_000
START = datetime(2027, 1, 1, tzinfo=UTC)


def batch(number: int, customers: list[str], currencies: list[str]) -> list[dict[str, Any]]:
    rng = random.Random(number)
    return [
        {
            "external_id": f"bench-{number:04d}-{index:05d}",
            "customer_external_id": rng.choice(customers),
            "amount": f"{rng.randrange(100, 500_000) / 100:.2f}",
            "currency": rng.choice(currencies),
            # Spread over 30 days: about 60 (currency, day) rate lookups a batch.
            "ordered_at": (START + timedelta(minutes=rng.randrange(30 * 24 * 60))).isoformat(),
        }
        for index in range(BATCH)
    ]


def timed(label: str, work: Any) -> Any:
    started = time.perf_counter()
    result = work()
    print(f"{label}: {time.perf_counter() - started:.2f} s", flush=True)
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--orders", type=int, default=1_000_000)
    parser.add_argument("--batches", type=int, default=5)
    args = parser.parse_args()
    DB_PATH.unlink(missing_ok=True)
    call_command("migrate", verbosity=0)
    timed(
        f"seed {args.customers:,} customers / {args.orders:,} orders",
        lambda: call_command(
            "seed_demo", customers=args.customers, orders=args.orders, verbosity=0
        ),
    )
    rates_upsert(
        rows=[
            {"date": (date(2027, 1, 1) + timedelta(days=day)).isoformat(), "currency": c, "rate": r}
            for day in range(31)
            for c, r in (("USD", "83.1"), ("EUR", "90.7"))
        ]
    )
    customers = list(Customer.objects.values_list("external_id", flat=True)[:50_000])
    for label, currencies, offset in (("INR", ["INR"], 0), ("USD+EUR", ["USD", "EUR"], 1000)):
        started = time.perf_counter()
        for number in range(args.batches):
            rows = batch(offset + number, customers, currencies)
            result = orders_bulk_upsert(rows=rows)
            assert not result.errors, result.errors[:3]
        seconds = time.perf_counter() - started
        rows_done = args.batches * BATCH
        print(
            f"ingest {label}: {rows_done:,} orders in {seconds:.2f} s "
            f"= {rows_done / seconds:,.0f}/s"
        )
    # The 10th's rate decides the EUR orders of the 10th only (the 11th has its own).
    result = rates_upsert(rows=[{"date": "2027-01-10", "currency": "EUR", "rate": "91.3"}])
    assert result.reconversion_id is not None
    job = timed(
        "re-conversion of one day's EUR orders",
        lambda: reconversion_run(reconversion_id=result.reconversion_id),
    )
    print(
        f"  {job.total:,} orders, {job.changed_orders:,} changed, "
        f"{job.changed_customers:,} customers"
    )
    # A week of EUR rates changed in one file: seven days re-converted.
    result = rates_upsert(
        rows=[
            {
                "date": (date(2027, 1, 15) + timedelta(days=day)).isoformat(),
                "currency": "EUR",
                "rate": "92.5",
            }
            for day in range(7)
        ]
    )
    job = timed(
        "re-conversion of a week's EUR orders",
        lambda: reconversion_run(reconversion_id=result.reconversion_id),
    )
    print(
        f"  {job.total:,} orders, {job.changed_orders:,} changed, "
        f"{job.changed_customers:,} customers"
    )
    recount = Customer.objects.annotate(
        spend=Sum("orders__amount", filter=Q(orders__status="completed")),
        count=Count("orders", filter=Q(orders__status="completed")),
    )
    wrong = sum(
        1
        for total, spend, count, orders in recount.values_list(
            "total_spend", "spend", "order_count", "count"
        )
        # SQLite sums decimals as floats: compare at the cent, as the stats store them.
        if Decimal(spend or 0).quantize(Decimal("0.01")) != total or count != orders
    )
    print(f"customers whose stats differ from a recount: {wrong}")
    assert RateReconversion.objects.filter(status="succeeded").count() == 2
    orders = Order.objects.count()
    timed(
        "migrate customers back to 0006",
        lambda: call_command("migrate", "customers", "0006", verbosity=0),
    )
    timed(
        f"migration 0007 at {orders:,} orders",
        lambda: call_command("migrate", "customers", "0007", verbosity=0),
    )
    connection.close()
    DB_PATH.unlink(missing_ok=True)


if __name__ == "__main__":
    main()
