"""Ingestion benchmark: orders per second through the bulk service, the REST endpoint and raw SQL.

    .venv/bin/python bench/ingest.py          # quick: 20,000 customers, 200,000 orders
    .venv/bin/python bench/ingest.py --customers 1000000 --orders 10000000

On a fresh SQLite file configured like the app (WAL, synchronous=NORMAL, 64 MB cache, IMMEDIATE
transactions: the base settings), it loads the customers through `customers_bulk_upsert`, then
sends the orders in 10,000-row batches through `orders_bulk_upsert` (validation, upsert, stats in
the same transaction: exactly what `POST /orders/bulk` runs), a sample of batches through the REST
endpoint with Django's test client, a sample of batches grouped by customer (1,000 customers
each instead of ~10,000: the stats writes are most of the cost), a sample of re-sent batches (all
unchanged), and finally the
same order rows through a bare `executemany` into an identical copy of the orders table (same
columns and indexes, no validation, no stats) as the floor to compare with. Row generation is
outside every timed section. The database file is deleted at the end unless --keep is given.
"""
# ruff: noqa: E402  (Django has to be pointed at the benchmark database before it is imported)

import argparse
import json
import os
import platform
import random
import sqlite3
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
DB_PATH = Path(os.environ.get("MINICRM_BENCH_DB", "/tmp/minicrm-bench-ingest.sqlite3"))  # noqa: S108
os.environ["DATABASE_URL"] = f"sqlite:///{DB_PATH}"
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.test")
sys.path.insert(0, str(ROOT))

import django

django.setup()

from django.core.management import call_command
from django.db import connection, transaction
from django.test import Client
from tqdm import tqdm

from minicrm.accounts.models import Role, User
from minicrm.accounts.services import api_token_create
from minicrm.customers.models import Customer, Order
from minicrm.customers.services import customers_bulk_upsert, orders_bulk_upsert

BATCH = 10_000
START = datetime(2023, 1, 1, tzinfo=UTC)
SPAN_SECONDS = 3 * 365 * 24 * 3600
FIRST_NAMES = ["Aarav", "Priya", "Rohan", "Ananya", "Vikram", "Meera", "Arjun", "Sara", "Liam"]
LAST_NAMES = ["Sharma", "Iyer", "Patel", "Khan", "Reddy", "Das", "Smith", "Garcia", "Müller"]
CITIES = [("Mumbai", "India"), ("Bengaluru", "India"), ("Delhi", "India"), ("London", "UK")]
RAW_TABLE = "bench_raw_order"


@dataclass
class Measurement:
    path: str
    rows: int
    seconds: float

    @property
    def per_second(self) -> float:
        return self.rows / self.seconds if self.seconds else 0.0


def customer_key(number: int) -> str:
    return f"c{number:08d}"


def customer_batches(count: int) -> Iterator[list[dict[str, Any]]]:
    rng = random.Random(1)
    for start in range(0, count, BATCH):
        batch = []
        for number in range(start, min(start + BATCH, count)):
            first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
            city, country = rng.choice(CITIES)
            signed_up = START + timedelta(seconds=rng.randrange(SPAN_SECONDS))
            batch.append(
                {
                    "external_id": customer_key(number),
                    "email": f"{first[:3]}.{number}@example.com".lower(),
                    "first_name": first,
                    "last_name": last,
                    "city": city,
                    "country": country,
                    "tags": ["vip"] if number % 10 == 0 else [],
                    "signed_up_at": signed_up.isoformat(),
                }
            )
        yield batch


def order_batch(number: int, *, customers: int, total_orders: int) -> list[dict[str, Any]]:
    """Batch `number` of the order stream: chronological, random customers, like a shop export.

    The same number always gives the same rows, so every path stores identical data.
    """
    rng = random.Random(number)
    batch = []
    first = number * BATCH
    for index in range(first, min(first + BATCH, total_orders)):
        moment = START + timedelta(seconds=SPAN_SECONDS * index // total_orders)
        cents = max(100, int(rng.lognormvariate(7.2, 0.9) * 100))
        roll = rng.random()
        status = "completed" if roll < 0.9 else "cancelled" if roll < 0.96 else "refunded"
        batch.append(
            {
                "external_id": f"o{index:09d}",
                "customer_external_id": customer_key(rng.randrange(customers)),
                "amount": f"{cents // 100}.{cents % 100:02d}",
                "ordered_at": moment.isoformat(),
                "status": status,
            }
        )
    return batch


def grouped_batch(number: int, *, customers: int) -> list[dict[str, Any]]:
    """10 orders each for 1,000 neighbouring customers, as in an export sorted by customer.

    Same service, far fewer distinct customers per batch: it shows what the stats cost.
    """
    rng = random.Random(-1 - number)
    first_customer = (number * 1000) % max(customers - 1000, 1)
    moment = START + timedelta(seconds=SPAN_SECONDS)
    return [
        {
            "external_id": f"g{number:05d}-{index:05d}",
            "customer_external_id": customer_key(first_customer + index // 10),
            "amount": f"{rng.randrange(100, 500_000) / 100:.2f}",
            "ordered_at": (moment + timedelta(seconds=index)).isoformat(),
        }
        for index in range(BATCH)
    ]


def timed(
    label: str, items: Iterable[tuple[Any, int]], send: Callable[[Any], object]
) -> Measurement:
    """Call `send` on each (payload, rows) item, timing only the calls."""
    measurement = Measurement(label, 0, 0.0)
    for payload, rows in tqdm(items, desc=label, unit="batch", leave=False):
        started = time.perf_counter()
        send(payload)
        measurement.seconds += time.perf_counter() - started
        measurement.rows += rows
    return measurement


def check_service(batch: list[dict[str, Any]]) -> None:
    result = orders_bulk_upsert(rows=batch)
    if result.errors or result.created + result.updated + result.unchanged != len(batch):
        raise SystemExit(
            f"unexpected result: {result.created} created, {len(result.errors)} "
            f"errors, first: {result.errors[:1]}"
        )


def rest_sender(client: Client) -> Callable[[str], None]:
    def send(body: str) -> None:
        response = client.post("/api/v1/orders/bulk", data=body, content_type="application/json")
        if response.status_code != 200 or response.json()["errors"]:
            raise SystemExit(
                f"REST batch failed: {response.status_code} {response.content[:300]!r}"
            )

    return send


def raw_table_create() -> None:
    """An empty copy of the orders table with the same columns, constraints and indexes."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT type, sql FROM sqlite_master WHERE tbl_name = %s AND sql IS NOT NULL",
            [Order._meta.db_table],
        )
        statements = cursor.fetchall()
        for kind, sql in sorted(statements, key=lambda item: item[0] != "table"):
            renamed = sql.replace(f'"{Order._meta.db_table}"', f'"{RAW_TABLE}"')
            if kind == "index":
                renamed = renamed.replace('INDEX "', 'INDEX "raw_', 1)
            cursor.execute(renamed)


def raw_rows(batch: list[dict[str, Any]], ids: dict[str, int], stamp: str) -> list[tuple[Any, ...]]:
    # Values already in SQLite's storage format, so the timed part is executemany alone.
    return [
        (
            row["external_id"],
            ids[row["customer_external_id"]],
            row["amount"],
            "INR",
            row["status"],
            datetime.fromisoformat(row["ordered_at"]).replace(tzinfo=None).isoformat(" "),
            stamp,
            stamp,
        )
        for row in batch
    ]


def raw_insert(params: list[tuple[Any, ...]]) -> None:
    sql = (
        f'INSERT INTO "{RAW_TABLE}" (external_id, customer_id, amount, currency, status, '
        "ordered_at, created_at, updated_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)"
    )
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.executemany(sql, params)


def stats_mismatches(sample: int) -> tuple[int, int]:
    """Compare the stats of `sample` random customers with an aggregate of their orders."""
    ids = list(Customer.objects.values_list("id", flat=True))
    chosen = random.Random(7).sample(ids, min(sample, len(ids)))
    wrong = 0
    for customer in Customer.objects.filter(id__in=chosen[:900]).iterator():
        completed = [
            (amount, at)
            for amount, at in Order.objects.filter(
                customer=customer, status=Order.Status.COMPLETED
            ).values_list("amount", "ordered_at")
        ]
        expected = (
            sum((amount for amount, _at in completed), start=customer.total_spend * 0),
            len(completed),
            min((at for _amount, at in completed), default=None),
            max((at for _amount, at in completed), default=None),
        )
        actual = (
            customer.total_spend,
            customer.order_count,
            customer.first_order_at,
            customer.last_order_at,
        )
        wrong += expected != actual
    return wrong, min(len(chosen), 900)


def report(measurements: list[Measurement], floor: Measurement, args: argparse.Namespace) -> str:
    lines = [
        f"SQLite {sqlite3.sqlite_version}, Python {platform.python_version()}, "
        f"{os.cpu_count()} CPUs; {args.customers:,} customers, {args.orders:,} orders, "
        f"batches of {BATCH:,}",
        "",
        "| path | rows | seconds | rows/s | vs executemany |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for item in measurements:
        ratio = item.per_second / floor.per_second if floor.per_second else 0.0
        lines.append(
            f"| {item.path} | {item.rows:,} | {item.seconds:.1f} | {item.per_second:,.0f} "
            f"| {ratio:.2f} |"
        )
    return "\n".join(lines)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=20_000)
    parser.add_argument("--orders", type=int, default=200_000)
    parser.add_argument("--rest-batches", type=int, default=5, help="batches sent over REST")
    parser.add_argument("--resend-batches", type=int, default=5, help="batches sent twice")
    parser.add_argument(
        "--grouped-batches", type=int, default=5, help="batches of orders grouped by customer"
    )
    parser.add_argument("--verify", type=int, default=500, help="customers whose stats to check")
    parser.add_argument("--keep", action="store_true", help="keep the database file")
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    for suffix in ("", "-wal", "-shm"):
        Path(f"{DB_PATH}{suffix}").unlink(missing_ok=True)
    call_command("migrate", verbosity=0)
    batches = -(-args.orders // BATCH)
    rest_batches = min(args.rest_batches, batches - 1)
    service_numbers = range(batches - rest_batches)

    def stream(numbers: Iterable[int]) -> Iterator[list[dict[str, Any]]]:
        for number in numbers:
            yield order_batch(number, customers=args.customers, total_orders=args.orders)

    def with_size(batches: Iterable[list[dict[str, Any]]]) -> Iterator[tuple[Any, int]]:
        return ((batch, len(batch)) for batch in batches)

    measurements: list[Measurement] = []
    try:
        measurements.append(
            timed(
                "customers: customers_bulk_upsert",
                with_size(customer_batches(args.customers)),
                lambda batch: customers_bulk_upsert(rows=batch),
            )
        )
        measurements.append(
            timed(
                "orders: orders_bulk_upsert (service, stats kept)",
                with_size(stream(service_numbers)),
                check_service,
            )
        )
        user = User.objects.create_user("bench@example.com", role=Role.MARKETER)
        _token, raw_token = api_token_create(user=user, name="bench")
        client = Client(headers={"Authorization": f"Bearer {raw_token}"})
        # The first request imports the URLconf and every API module: not ingestion time.
        client.get("/api/v1/me")
        bodies = (
            (json.dumps({"rows": batch}), len(batch))
            for batch in stream(range(batches - rest_batches, batches))
        )
        measurements.append(
            timed("orders: POST /api/v1/orders/bulk (REST)", bodies, rest_sender(client))
        )
        measurements.append(
            timed(
                "orders: grouped by customer, 1,000 a batch (service)",
                with_size(
                    grouped_batch(number, customers=args.customers)
                    for number in range(args.grouped_batches)
                ),
                check_service,
            )
        )
        measurements.append(
            timed(
                "orders: re-sent batches (all unchanged)",
                with_size(stream(range(min(args.resend_batches, batches)))),
                check_service,
            )
        )
        raw_table_create()
        ids = dict(Customer.objects.values_list("external_id", "id"))
        stamp = datetime.now(UTC).replace(tzinfo=None).isoformat(" ")
        raw_batches = (
            (raw_rows(batch, ids, stamp), len(batch)) for batch in stream(range(batches))
        )
        floor = timed("orders: raw executemany (no validation, no stats)", raw_batches, raw_insert)
        measurements.append(floor)

        wrong, checked = stats_mismatches(args.verify)
        print(report(measurements, floor, args))
        print(
            f"\nStats checked against the orders for {checked:,} random customers: {wrong} wrong."
        )
        print(f"Database size: {DB_PATH.stat().st_size / 1e9:.2f} GB")
    finally:
        connection.close()
        if not args.keep:
            for suffix in ("", "-wal", "-shm"):
                Path(f"{DB_PATH}{suffix}").unlink(missing_ok=True)


if __name__ == "__main__":
    main()
