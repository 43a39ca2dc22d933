"""Ingestion benchmark: orders per second into a database already at scale, beside raw SQL.

    .venv/bin/python bench/ingest.py                      # quick: 20,000 customers, 200,000 orders
    .venv/bin/python bench/ingest.py --customers 1000000 --orders 10000000
    .venv/bin/python bench/ingest.py --base /path/to/seeded.sqlite3   # reuse a seeded database

The database is brought to scale first, with the demo generator (`seed_demo`, itself an
ingestion entry point) or by copying `--base`. Then, on that database, in the app's own SQLite
settings (WAL, synchronous=NORMAL, IMMEDIATE transactions), each path stores `--batches`
batches of 10,000 new orders:

- orders for random customers (a chronological shop feed: ~10,000 distinct customers a batch)
  through a bare `executemany` into the same orders table, one transaction a batch, values
  already converted: no validation, no lookups, no stats. The floor every other row is
  compared with;
- the same kind of batches through `orders_bulk_upsert` (validation, upsert, customer stats in
  the same transaction: what `POST /orders/bulk` runs), through `POST /api/v1/orders/bulk`
  with a bearer token, and through a CSV import processed as the worker does (10,000-row chunks,
  progress saved per chunk);
- the service batches sent again (every row unchanged, nothing written);
- batches grouped by customer (10 orders each for 1,000 customers, as in an export sorted by
  customer) through `executemany` and through the service, compared with each other;
- a Shopify orders export (`--shopify-orders`, 100,000 orders by default, 1-3 line items each,
  about 2 on average, in Shopify's 79 columns; customers found by email; paid, refunded,
  partially refunded, voided and free orders) imported with `--mapping shopify-orders`.

Row generation is outside every timed section. The stats of the customers the batches touched
are checked against their orders at the end. The database is deleted unless --keep is given.
"""
# ruff: noqa: E402  (Django has to be pointed at the benchmark database before it is imported)

import argparse
import csv
import json
import os
import platform
import random
import shutil
import sqlite3
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
DB_PATH = Path(os.environ.get("MINICRM_BENCH_DB", "/tmp/minicrm-bench-ingest.sqlite3"))  # noqa: S108
os.environ["DATABASE_URL"] = f"sqlite:///{DB_PATH}"
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.test")
sys.path.insert(0, str(ROOT))

import django

django.setup()

from django.core.files import File
from django.core.management import call_command
from django.db import connection, transaction
from django.db.models import Count, Max, Min, Q, Sum
from django.test import Client
from tqdm import tqdm

from minicrm.accounts.models import Role, User
from minicrm.accounts.services import api_token_create
from minicrm.customers.models import Customer, Order
from minicrm.customers.services import orders_bulk_upsert
from minicrm.imports.models import Import
from minicrm.imports.services import CHUNK_SIZE, import_create, import_process

BATCH = 10_000
GROUP_SIZE = 10  # orders per customer in a grouped batch
CSV_COLUMNS = ["external_id", "customer_external_id", "amount", "ordered_at", "status"]
# Shopify's orders export header, as in the sample the tests import.
SHOPIFY_SAMPLE = ROOT / "tests" / "imports" / "data" / "shopify_orders_export.csv"
IST = timezone(timedelta(hours=5, minutes=30))


@dataclass
class Measurement:
    path: str
    rows: int
    seconds: float
    floor: "Measurement | None" = None

    @property
    def per_second(self) -> float:
        return self.rows / self.seconds if self.seconds else 0.0


class Feed:
    """New orders after everything already stored: same batch number, same rows."""

    def __init__(self, customer_keys: list[str], start: datetime) -> None:
        self.keys = customer_keys
        self.start = start

    def _row(self, rng: random.Random, key: str, customer: str, moment: datetime) -> dict[str, Any]:
        cents = max(100, int(rng.lognormvariate(7.2, 0.9) * 100))
        roll = rng.random()
        return {
            "external_id": key,
            "customer_external_id": customer,
            "amount": f"{cents // 100}.{cents % 100:02d}",
            "ordered_at": moment.isoformat(),
            "status": "completed" if roll < 0.9 else "cancelled" if roll < 0.96 else "refunded",
        }

    def random_batch(self, label: str, number: int) -> list[dict[str, Any]]:
        """Chronological orders, each for a random customer."""
        rng = random.Random(f"{label}-{number}")
        first = self.start + timedelta(hours=number)
        return [
            self._row(
                rng,
                f"bench-{label}-{number:04d}-{index:05d}",
                rng.choice(self.keys),
                first + timedelta(seconds=index * 3600 // BATCH),
            )
            for index in range(BATCH)
        ]

    def grouped_batch(self, label: str, number: int) -> list[dict[str, Any]]:
        """GROUP_SIZE orders each for BATCH // GROUP_SIZE neighbouring customers."""
        rng = random.Random(f"{label}-{number}")
        customers = BATCH // GROUP_SIZE
        offset = rng.randrange(len(self.keys) - customers)
        moment = self.start + timedelta(days=30, hours=number)
        return [
            self._row(
                rng,
                f"bench-{label}-{number:04d}-{index:05d}",
                self.keys[offset + index // GROUP_SIZE],
                moment + timedelta(seconds=index % GROUP_SIZE),
            )
            for index in range(BATCH)
        ]


def timed(label: str, items: Iterable[Any], send: Callable[[Any], object]) -> Measurement:
    """Call `send` on each batch (every one holds BATCH orders), timing only the calls."""
    measurement = Measurement(label, 0, 0.0)
    for batch in tqdm(list(items), desc=label, unit="batch", leave=False):
        started = time.perf_counter()
        send(batch)
        measurement.seconds += time.perf_counter() - started
        measurement.rows += BATCH
    return measurement


def service_send(batch: list[dict[str, Any]]) -> None:
    result = orders_bulk_upsert(rows=batch)
    if result.errors or result.created + result.updated + result.unchanged != len(batch):
        raise SystemExit(f"unexpected result: {result}")


def rest_sender(client: Client) -> Callable[[str], None]:
    def send(body: str) -> None:
        response = client.post("/api/v1/orders/bulk", data=body, content_type="application/json")
        if response.status_code != 200 or response.json()["errors"]:
            raise SystemExit(
                f"REST batch failed: {response.status_code} {response.content[:300]!r}"
            )

    return send


# A batch already in SQLite's storage format, so only `executemany` is timed.
RawRows = list[tuple[Any, ...]]


def raw_rows(batch: list[dict[str, Any]], ids: dict[str, int], stamp: str) -> RawRows:
    return [
        (
            row["external_id"],
            ids[row["customer_external_id"]],
            row["amount"],
            row["amount"],
            "INR",
            row["status"],
            datetime.fromisoformat(row["ordered_at"]).replace(tzinfo=None).isoformat(" "),
            stamp,
            stamp,
        )
        for row in batch
    ]


def raw_remove(label: str) -> None:
    """Delete the floor's rows again (untimed): they moved no stats, and the check would see it."""
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            f"DELETE FROM {Order._meta.db_table} WHERE external_id LIKE %s", [f"bench-{label}-%"]
        )


def raw_insert(params: RawRows) -> None:
    sql = (
        f"INSERT INTO {Order._meta.db_table} (external_id, customer_id, amount, original_amount, "
        "currency, status, ordered_at, created_at, updated_at) "
        "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)"
    )
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.executemany(sql, params)


class CsvImport:
    """All batches in one orders CSV, imported as the worker does; only the import is timed."""

    def __init__(self, batches: list[list[dict[str, Any]]], folder: Path) -> None:
        self.path = folder / "orders.csv"
        with self.path.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=CSV_COLUMNS)
            writer.writeheader()
            for batch in batches:
                writer.writerows(batch)
        self.rows = sum(len(batch) for batch in batches)

    def run(self) -> Measurement:
        with self.path.open("rb") as handle:
            import_ = import_create(
                file=File(handle), kind="orders", created_by=None, enqueue=False
            )
        started = time.perf_counter()
        done = import_process(import_id=import_.pk)
        seconds = time.perf_counter() - started
        if done.status != Import.Status.SUCCEEDED or done.error_count:
            raise SystemExit(f"CSV import failed: {done.status} {done.failure_reason}")
        label = f"CSV import (the worker's path, {CHUNK_SIZE:,}-row chunks)"
        return Measurement(label, self.rows, seconds)


class ShopifyOrdersImport:
    """A Shopify orders export of new orders for random customers, found by their email."""

    def __init__(self, emails: list[str], orders: int, start: datetime, folder: Path) -> None:
        self.path = folder / "shopify_orders.csv"
        self.orders = orders
        self.rows = 0
        with SHOPIFY_SAMPLE.open(encoding="utf-8") as sample:
            header = next(csv.reader(sample))
        column = {name: index for index, name in enumerate(header)}
        rng = random.Random("shopify")
        with self.path.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(header)
            for number in range(orders):
                items = rng.choice((1, 2, 2, 3))
                prices = [max(0, int(rng.lognormvariate(6.5, 0.9))) for _ in range(items)]
                total = sum(prices) if rng.random() > 0.02 else 0  # ~2 % free orders
                roll = rng.random()
                status = (
                    "paid" if roll < 0.85 else "refunded" if roll < 0.9
                    else "partially_refunded" if roll < 0.95 else "voided"
                )  # fmt: skip
                refunded = (
                    total if status == "refunded" else total // 2 if status == "partially_refunded"
                    else 0
                )  # fmt: skip
                moment = (start + timedelta(seconds=number * 30)).astimezone(IST)
                created = moment.strftime("%Y-%m-%d %H:%M:%S %z")
                for item, price in enumerate(prices):
                    row = [""] * len(header)
                    row[column["Name"]] = f"#S{number + 1:07d}"
                    row[column["Email"]] = rng.choice(emails) if item == 0 else ""
                    row[column["Created at"]] = created
                    row[column["Lineitem quantity"]] = "1"
                    row[column["Lineitem name"]] = f"Item {price}"
                    row[column["Lineitem price"]] = f"{price}.00"
                    if item == 0:
                        row[column["Financial Status"]] = status
                        row[column["Currency"]] = "INR"
                        row[column["Total"]] = f"{total}.00"
                        row[column["Subtotal"]] = f"{total}.00"
                        row[column["Refunded Amount"]] = f"{refunded}.00"
                        if status == "voided":
                            row[column["Cancelled at"]] = created
                    writer.writerow(row)
                    self.rows += 1

    def run(self) -> Measurement:
        with self.path.open("rb") as handle:
            import_ = import_create(
                file=File(handle), kind=None, mapping="shopify-orders", created_by=None,
                enqueue=False,
            )  # fmt: skip
        started = time.perf_counter()
        done = import_process(import_id=import_.pk)
        seconds = time.perf_counter() - started
        if (
            done.status != Import.Status.SUCCEEDED
            or done.error_count
            or done.created != self.orders
        ):
            raise SystemExit(
                f"Shopify import failed: {done.status} {done.failure_reason} {done.errors[:3]}"
            )
        label = f"Shopify orders export ({self.rows:,} line-item rows; orders/s)"
        return Measurement(label, self.orders, seconds)


def stats_mismatches(keys: list[str]) -> int:
    """Customers among `keys` whose stored stats differ from an aggregate of their orders."""
    wrong = 0
    completed = Q(orders__status=Order.Status.COMPLETED)
    for start in range(0, len(keys), 500):
        rows = (
            Customer.objects.filter(external_id__in=keys[start : start + 500])
            .annotate(
                spend=Sum("orders__amount", filter=completed),
                count=Count("orders", filter=completed),
                first=Min("orders__ordered_at", filter=completed),
                last=Max("orders__ordered_at", filter=completed),
            )
            .values_list(
                "total_spend", "order_count", "first_order_at", "last_order_at",
                "spend", "count", "first", "last",
            )
        )  # fmt: skip
        for total, count, first, last, spend, real_count, real_first, real_last in rows:
            expected = (Decimal(spend or 0).quantize(Decimal("0.01")), real_count, real_first)
            wrong += (total, count, first, last) != (*expected, real_last)
    return wrong


def report(measurements: list[Measurement], args: argparse.Namespace, scale: str) -> str:
    lines = [
        f"SQLite {sqlite3.sqlite_version}, Python {platform.python_version()}, "
        f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}; {scale}; "
        f"{args.batches} batches of {BATCH:,} a path",
        "",
        "| path | rows | seconds | rows/s | vs executemany of the same rows |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for item in measurements:
        ratio = f"{item.per_second / item.floor.per_second:.2f}" if item.floor else "1.00"
        lines.append(
            f"| {item.path} | {item.rows:,} | {item.seconds:.1f} | {item.per_second:,.0f} "
            f"| {ratio} |"
        )
    return "\n".join(lines)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=20_000, help="demo customers to seed")
    parser.add_argument("--orders", type=int, default=200_000, help="demo orders to seed")
    parser.add_argument("--base", type=Path, help="copy this seeded SQLite database instead")
    parser.add_argument("--batches", type=int, default=10, help="batches of 10,000 a path")
    parser.add_argument("--keep", action="store_true", help="keep the database file")
    parser.add_argument(
        "--shopify-orders", type=int, default=100_000, help="orders in the Shopify export (0: skip)"
    )
    return parser.parse_args()


def database_prepare(args: argparse.Namespace) -> Measurement | None:
    """Bring the database to scale; the demo generator's own speed is worth reporting too."""
    for suffix in ("", "-wal", "-shm"):
        Path(f"{DB_PATH}{suffix}").unlink(missing_ok=True)
    if args.base:
        shutil.copyfile(args.base, DB_PATH)
        call_command("migrate", verbosity=0)
        return None
    call_command("migrate", verbosity=0)
    started = time.perf_counter()
    call_command("seed_demo", customers=args.customers, orders=args.orders, seed=1)
    seconds = time.perf_counter() - started
    return Measurement("demo generator (customers and their orders)", args.orders, seconds)


def main() -> None:
    args = parse_args()
    measurements: list[Measurement] = []
    try:
        seeded = database_prepare(args)
        ids = dict(Customer.objects.values_list("external_id", "id"))
        orders = Order.objects.count()
        scale = f"{len(ids):,} customers, {orders:,} orders before the run"
        last = Order.objects.aggregate(last=Max("ordered_at"))["last"] or datetime.now(UTC)
        feed = Feed(sorted(ids), start=last + timedelta(hours=1))
        stamp = datetime.now(UTC).replace(tzinfo=None).isoformat(" ")
        numbers = range(args.batches)

        def batches(label: str, kind: str = "random") -> list[list[dict[str, Any]]]:
            make = feed.random_batch if kind == "random" else feed.grouped_batch
            return [make(label, number) for number in numbers]

        # One untimed batch first, so no path pays for a cold page cache.
        service_send(feed.random_batch("warm-up", 0))
        floor = timed(
            "orders, random customers: raw executemany (no validation, no stats)",
            [raw_rows(batch, ids, stamp) for batch in batches("raw")],
            raw_insert,
        )
        raw_remove("raw")
        service_batches = batches("service")
        measurements += [
            floor,
            timed("orders, random customers: orders_bulk_upsert", service_batches, service_send),
        ]
        user = User.objects.create_user("bench@example.com", role=Role.MARKETER)
        _token, raw_token = api_token_create(user=user, name="bench")
        client = Client(headers={"Authorization": f"Bearer {raw_token}"})
        client.get("/api/v1/me")  # imports the URLconf and the API modules: not ingestion
        bodies = [json.dumps({"rows": batch}) for batch in batches("rest")]
        measurements.append(
            timed("orders, random customers: POST /api/v1/orders/bulk", bodies, rest_sender(client))
        )
        with tempfile.TemporaryDirectory() as folder:
            measurements.append(CsvImport(batches("csv"), Path(folder)).run())
        measurements.append(
            timed(
                "orders re-sent (all unchanged): orders_bulk_upsert", service_batches, service_send
            )
        )
        for item in measurements[1:]:
            item.floor = floor
        grouped_floor = timed(
            "orders grouped by customer: raw executemany",
            [raw_rows(batch, ids, stamp) for batch in batches("raw-grouped", "grouped")],
            raw_insert,
        )
        raw_remove("raw-grouped")
        grouped = timed(
            "orders grouped by customer: orders_bulk_upsert",
            batches("service-grouped", "grouped"),
            service_send,
        )
        grouped.floor = grouped_floor
        measurements += [grouped_floor, grouped]
        shopify_touched: list[str] = []
        if args.shopify_orders:
            emails = dict(Customer.objects.values_list("email", "external_id"))
            start = (Order.objects.aggregate(last=Max("ordered_at"))["last"]) + timedelta(hours=1)
            with tempfile.TemporaryDirectory() as folder:
                shopify = ShopifyOrdersImport(
                    sorted(emails), args.shopify_orders, start, Path(folder)
                )
                measurements.append(shopify.run())
            shopify_touched = sorted(
                Customer.objects.filter(orders__external_id__startswith="#S")
                .values_list("external_id", flat=True)
                .distinct()[:2000]
            )
        if seeded:
            measurements.append(seeded)

        touched = sorted(
            {row["customer_external_id"] for batch in service_batches for row in batch}
        )
        sample = random.Random(7).sample(touched, min(2000, len(touched)))
        print(report(measurements, args, scale))
        print(f"\nStats of {len(sample):,} customers the batches touched, checked against their")
        print(f"orders: {stats_mismatches(sample)} wrong.")
        if shopify_touched:
            print(
                f"Stats of {len(shopify_touched):,} customers of the Shopify export: "
                f"{stats_mismatches(shopify_touched)} wrong."
            )
        print(f"Database size: {DB_PATH.stat().st_size / 1e9:.2f} GB")
    finally:
        connection.close()
        if not args.keep:
            for suffix in ("", "-wal", "-shm"):
                Path(f"{DB_PATH}{suffix}").unlink(missing_ok=True)


if __name__ == "__main__":
    main()
