"""Segment preview benchmark: latency of counting rules at 1M customers / 10M orders.

    # SQLite (generates the data on first use, deterministic for a seed):
    DATABASE_URL=sqlite:////tmp/bench_preview.sqlite3 .venv/bin/python bench/preview.py
    # PostgreSQL: create the database, migrate, copy the same rows from the SQLite file:
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/bench_segengine \\
        .venv/bin/python bench/preview.py --copy-from /tmp/bench_preview.sqlite3

For ten rules of increasing complexity it measures, after a warm-up, p50 and p95 of:
- query: the compiled count alone (`customers_matching(rules).count()`);
- preview: the selector behind the endpoint (count + total customers + a 10-row sample);
- API: `POST /api/v1/segments/preview?funnel=false` end to end through Django's test client
  with a bearer token (routing, auth, validation, JSON), and the same with the funnel;
- DuckDB: the same rule counted by DuckDB over the same customer columns, loaded from the same
  database into memory (the columnar floor), checked to give the same count;
- naive: what many small CRMs do, load every customer with their orders through the ORM and
  filter in Python; timed on a sample of customers and extrapolated to the whole table.

The snapshot is the machine's (minicrm.segments.snapshot): a generation of memory-mapped Arrow
files in `--snapshot-dir` (default /tmp/bench_snapshot_<vendor>), built from the database if
there is none (or with `--rebuild`), then opened as a restarted process would. It reports the
build, the open (+ catch-up delta) of the first preview, a compaction of a delta of `--batch`
changed customers, and the private memory (`/proc/self/smaps_rollup`, Private_Clean +
Private_Dirty) of a fresh process before and after it answers previews, while this one keeps the
files mapped too (as several web workers do).

`--index "CREATE INDEX ..."` adds an index before measuring (and drops it afterwards), to test an
index the customers migrations do not have. Data generation is outside every timed section.
"""
# ruff: noqa: E402  (Django must see DATABASE_URL before it is imported)

import argparse
import csv
import json
import os
import random
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DATABASE_URL", "sqlite:////tmp/bench_preview.sqlite3")
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.test")

import django

django.setup()

import duckdb
from django.conf import settings
from django.core.management import call_command
from django.db import connection
from django.test import Client, override_settings

from bench.rules import rules_under_test
from minicrm.accounts.models import Role, User
from minicrm.accounts.services import api_token_create
from minicrm.customers.models import Customer
from minicrm.segments.compiler import customers_matching, today_in_zone
from minicrm.segments.rules import Condition, RuleGroup, parse_rules
from minicrm.segments.selectors import segment_funnel, segment_preview
from minicrm.segments.snapshot import (
    CustomerSnapshot,
    generation_build,
    snapshot_ready_or_start_build,
)
from minicrm.segments.snapshot_file import generation_current
from tests.segments.reference import Evaluator, Person

CITIES = ["Mumbai", "Delhi", "Bengaluru", "Hyderabad", "Chennai", "Kolkata", "Pune"]
CITIES += ["Ahmedabad", "Jaipur", "Surat", "Lucknow", "Kanpur", "Nagpur", "Indore", "Bhopal"]
COUNTRIES = ["India"] * 9 + ["United States"]
TAGS = [("vip", 5), ("newsletter", 20), ("b2b", 3), ("churn-risk", 8)]


# --- Data ------------------------------------------------------------------------------------


def generate_sqlite(path: str, *, customers: int, orders: int, seed: int) -> None:
    """Fill the migrated SQLite file with deterministic rows, stats computed from the orders."""
    rng = random.Random(seed)
    anchor = datetime.now(UTC).replace(microsecond=0)
    db = sqlite3.connect(path)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=OFF")
    started = time.perf_counter()

    def stamp(seconds_ago: int) -> str:
        return (anchor - timedelta(seconds=seconds_ago)).strftime("%Y-%m-%d %H:%M:%S")

    now_text = stamp(0)
    batch: list[tuple[Any, ...]] = []
    tag_rows: list[tuple[int, str]] = []
    for customer_id in range(1, customers + 1):
        domain = rng.choice(["gmail.com", "yahoo.com", "example.com", "outlook.com", "test.in"])
        batch.append(
            (
                customer_id,
                now_text,
                now_text,
                f"cust-{customer_id:07d}",
                f"person{customer_id}@{domain}",
                f"First{customer_id % 997}",
                f"Last{customer_id % 1009}",
                "",
                rng.choice(CITIES) if rng.random() > 0.03 else "",
                rng.choice(COUNTRIES),
                "{}",
                1,
                stamp(rng.randrange(4 * 365 * 86400)) if rng.random() > 0.05 else None,
            )
        )
        for tag, percent in TAGS:
            if rng.randrange(100) < percent:
                tag_rows.append((customer_id, tag))
        if len(batch) == 50_000:
            _insert_customers(db, batch)
            batch.clear()
    _insert_customers(db, batch)
    db.executemany("INSERT INTO customers_customertag (customer_id, name) VALUES (?, ?)", tag_rows)
    db.commit()
    print(f"  customers: {customers:,} in {time.perf_counter() - started:.0f}s", flush=True)

    # One customer in ten never orders; the rest share the orders unevenly.
    buyers = [cid for cid in range(1, customers + 1) if cid % 10 != 0]
    weights_cut = len(buyers)
    order_batch: list[tuple[Any, ...]] = []
    for order_id in range(1, orders + 1):
        # Squaring a uniform draw skews orders towards low ids: some customers order a lot.
        customer_id = buyers[int((rng.random() ** 1.6) * weights_cut)]
        roll = rng.random()
        status = "completed" if roll < 0.9 else ("cancelled" if roll < 0.95 else "refunded")
        amount = f"{rng.randrange(100, 500_000) / 100:.2f}"
        order_batch.append(
            (
                order_id,
                now_text,
                now_text,
                f"ord-{order_id:08d}",
                customer_id,
                amount,
                amount,
                "INR",
                status,
                stamp(rng.randrange(3 * 365 * 86400)),
            )
        )
        if len(order_batch) == 100_000:
            _insert_orders(db, order_batch)
            order_batch.clear()
    _insert_orders(db, order_batch)
    db.commit()
    print(f"  orders: {orders:,} in {time.perf_counter() - started:.0f}s", flush=True)

    db.executescript(
        """
        CREATE TEMP TABLE stats AS
            SELECT customer_id, SUM(amount) AS total, COUNT(*) AS n,
                   MIN(ordered_at) AS first_at, MAX(ordered_at) AS last_at
            FROM customers_order WHERE status = 'completed' GROUP BY customer_id;
        UPDATE customers_customer SET total_spend = stats.total, order_count = stats.n,
            first_order_at = stats.first_at, last_order_at = stats.last_at
        FROM stats WHERE stats.customer_id = customers_customer.id;
        DROP TABLE stats;
        ANALYZE;
        """
    )
    db.commit()
    db.close()
    print(f"  stats and ANALYZE done in {time.perf_counter() - started:.0f}s", flush=True)


def _insert_customers(db: sqlite3.Connection, rows: list[tuple[Any, ...]]) -> None:
    db.executemany(
        "INSERT INTO customers_customer (id, created_at, updated_at, external_id, email,"
        " first_name, last_name, phone, city, country, attributes, marketing_consent,"
        " signed_up_at, total_spend, order_count) VALUES"
        " (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0, 0)",
        rows,
    )


def _insert_orders(db: sqlite3.Connection, rows: list[tuple[Any, ...]]) -> None:
    db.executemany(
        "INSERT INTO customers_order (id, created_at, updated_at, external_id, customer_id,"
        " amount, original_amount, currency, status, ordered_at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        rows,
    )


COPY_TABLES = {
    "customers_customer": [
        "id", "created_at", "updated_at", "external_id", "email", "first_name", "last_name",
        "phone", "city", "country", "attributes", "marketing_consent", "signed_up_at",
        "total_spend", "order_count", "first_order_at", "last_order_at",
    ],
    "customers_customertag": ["id", "customer_id", "name"],
    "customers_order": [
        "id", "created_at", "updated_at", "external_id", "customer_id", "amount",
        "original_amount", "currency", "status", "ordered_at",
    ],
}  # fmt: skip


def copy_into_postgres(source: str) -> None:
    """Copy the SQLite rows into the (migrated, empty) PostgreSQL database with COPY."""
    started = time.perf_counter()
    sqlite_db = sqlite3.connect(source)
    raw = connection.cursor().connection  # psycopg connection
    with raw.cursor() as cursor:
        # Copying 10M orders takes many minutes: past the test settings' statement cap.
        cursor.execute("SET statement_timeout = 0")
    for table, columns in COPY_TABLES.items():
        column_list = ", ".join(columns)
        rows = sqlite_db.execute(f"SELECT {column_list} FROM {table}")
        with raw.cursor() as cursor:
            with cursor.copy(f"COPY {table} ({column_list}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(_pg_row(table, columns, row))
            cursor.execute(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), MAX(id)) FROM {table}"
            )
        raw.commit()
        print(f"  copied {table} in {time.perf_counter() - started:.0f}s", flush=True)
    with raw.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")
    raw.commit()


def _pg_row(table: str, columns: list[str], row: tuple[Any, ...]) -> tuple[Any, ...]:
    values = list(row)
    for index, column in enumerate(columns):
        value = values[index]
        if column.endswith("_at") and isinstance(value, str):
            values[index] = value + "+00"
        elif column == "marketing_consent":
            values[index] = bool(value)
        elif column in ("total_spend", "amount", "original_amount") and value is not None:
            values[index] = f"{Decimal(str(value)):.2f}"
    return tuple(values)


# --- DuckDB ----------------------------------------------------------------------------------


def load_duckdb() -> duckdb.DuckDBPyConnection:
    """The customer stats and tags, read from the Django database into an in-memory DuckDB."""
    duck = duckdb.connect()
    with tempfile.TemporaryDirectory() as folder, connection.cursor() as cursor:
        for name, sql in [
            (
                "customers",
                "SELECT id, total_spend, order_count, first_order_at, last_order_at,"
                " signed_up_at, city, country, email FROM customers_customer",
            ),
            ("tags", "SELECT customer_id, name FROM customers_customertag"),
        ]:
            path = Path(folder) / f"{name}.csv"
            with path.open("w", newline="") as handle:
                writer = csv.writer(handle)
                cursor.execute(sql)
                while chunk := cursor.fetchmany(50_000):
                    writer.writerows(chunk)
            duck.execute(
                f"CREATE TABLE {name}_raw AS SELECT * FROM read_csv('{path}', header=false)"
            )
    duck.execute(
        """
        CREATE TABLE customers AS SELECT
            column0::BIGINT AS id, column1::DECIMAL(14, 2) AS total_spend,
            column2::INTEGER AS order_count,
            TRY_CAST(column3 AS TIMESTAMPTZ) AS first_order_at,
            TRY_CAST(column4 AS TIMESTAMPTZ) AS last_order_at,
            TRY_CAST(column5 AS TIMESTAMPTZ) AS signed_up_at,
            COALESCE(column6::VARCHAR, '') AS city, COALESCE(column7::VARCHAR, '') AS country,
            COALESCE(column8::VARCHAR, '') AS email
        FROM customers_raw;
        CREATE TABLE tags AS SELECT column0::BIGINT AS customer_id, column1::VARCHAR AS name
        FROM tags_raw;
        DROP TABLE customers_raw; DROP TABLE tags_raw;
        SET TimeZone = 'UTC';
        """
    )
    return duck


def duck_sql(group: RuleGroup, today: date, params: list[Any]) -> str:
    """A DuckDB WHERE clause with the compiler's semantics (UTC zone), values as parameters."""
    parts = [
        duck_sql(node, today, params)
        if isinstance(node, RuleGroup)
        else duck_condition(node, today, params)
        for node in group.conditions
    ]
    if not parts:
        return "TRUE"
    return "(" + (" AND " if group.match == "all" else " OR ").join(parts) + ")"


def duck_condition(condition: Condition, today: date, params: list[Any]) -> str:
    field, op, value = condition.field, condition.operator, condition.value

    def p(item: Any) -> str:
        params.append(item)
        return "?"

    def day(d: date) -> str:
        return p(datetime.combine(d, datetime.min.time(), tzinfo=UTC))

    comparisons = {"eq": "=", "ne": "<>", "gt": ">", "gte": ">=", "lt": "<", "lte": "<="}
    if field == "total_spend":
        if op == "between":
            return f"total_spend BETWEEN {p(value[0])} AND {p(value[1])}"
        return f"total_spend {comparisons[op]} {p(value)}"
    if field == "order_count":
        if op == "between":
            return f"order_count BETWEEN {p(value[0])} AND {p(value[1])}"
        return f"order_count {comparisons[op]} {p(value)}"
    if field == "avg_order_value":
        # Half-even rounding of total / count to the cent, in whole numbers (as the compiler).
        def at_least(cents: int) -> str:
            if cents <= 0:
                return "order_count > 0"
            sign = ">=" if cents % 2 == 0 else ">"
            doubled = "CAST(ROUND(total_spend * 200) AS HUGEINT)"
            return f"(order_count > 0 AND {doubled} {sign} order_count * {p(2 * cents - 1)})"

        def below(cents: int) -> str:
            return f"(order_count > 0 AND NOT {at_least(cents)})"

        if op == "between":
            low, high = (int(bound * 100) for bound in value)
            return f"({at_least(low)} AND {below(high + 1)})"
        cents = int(value * 100)
        choices: dict[str, Callable[[], str]] = {
            "gt": lambda: at_least(cents + 1),
            "gte": lambda: at_least(cents),
            "lt": lambda: below(cents),
            "lte": lambda: below(cents + 1),
            "eq": lambda: f"({at_least(cents)} AND {below(cents + 1)})",
            "ne": lambda: f"(order_count > 0 AND NOT ({at_least(cents)} AND {below(cents + 1)}))",
        }
        return choices[op]()
    if field == "days_since_last_order":
        days = f"DATE_DIFF('day', CAST(last_order_at AS DATE), {p(today)}::DATE)"
        if op == "between":
            return f"{days} BETWEEN {p(value[0])} AND {p(value[1])}"
        return f"{days} {comparisons[op]} {p(value)}"
    column = {"last_order_date": "last_order_at", "first_order_date": "first_order_at"}.get(
        field, "signed_up_at"
    )
    if field in ("last_order_date", "first_order_date", "signup_date"):
        if op == "is_empty":
            return f"{column} IS NULL"
        if op == "is_not_empty":
            return f"{column} IS NOT NULL"
        if op == "before":
            return f"{column} < {day(value)}"
        if op == "after":
            return f"{column} >= {day(value + timedelta(days=1))}"
        if op == "on":
            return f"({column} >= {day(value)} AND {column} < {day(value + timedelta(days=1))})"
        if op == "between":
            return (
                f"({column} >= {day(value[0])} AND {column} < {day(value[1] + timedelta(days=1))})"
            )
        if op == "in_last_days":
            return f"{column} >= {day(today - timedelta(days=value))}"
        return f"({column} IS NULL OR {column} < {day(today - timedelta(days=value))})"
    if field == "tags":
        names = [name.lower() for name in value]

        def has(*wanted: str) -> str:
            marks = ", ".join(p(name) for name in wanted)
            return f"id IN (SELECT customer_id FROM tags WHERE name IN ({marks}))"

        if op == "has_any":
            return has(*names)
        if op == "has_none":
            return f"NOT {has(*names)}"
        return "(" + " AND ".join(has(name) for name in dict.fromkeys(names)) + ")"
    text = f"lower({field})"
    if op == "is_empty":
        return f"{field} = ''"
    if op == "is_not_empty":
        return f"{field} <> ''"
    if op == "eq":
        return f"{text} = lower({p(value)})"
    if op == "ne":
        return f"({field} <> '' AND {text} <> lower({p(value)}))"
    if op == "contains":
        return f"contains({text}, lower({p(value)}))"
    if op == "not_contains":
        return f"({field} <> '' AND NOT contains({text}, lower({p(value)})))"
    if op == "starts_with":
        return f"starts_with({text}, lower({p(value)}))"
    marks = ", ".join(p(item.lower()) for item in value)
    if op == "in":
        return f"{text} IN ({marks})"
    return f"({field} <> '' AND {text} NOT IN ({marks}))"


# --- Naive ----------------------------------------------------------------------------------


def naive_select(rules: list[RuleGroup], customer_ids: list[int], today: date) -> list[int]:
    """Load customers with their orders and tags through the ORM, filter in Python."""
    evaluator = Evaluator(today=today, time_zone="UTC")
    people = []
    customers = Customer.objects.filter(pk__in=customer_ids).prefetch_related("orders", "tag_rows")
    for customer in customers:
        completed = [order for order in customer.orders.all() if order.status == "completed"]
        moments = sorted(order.ordered_at for order in completed)
        people.append(
            Person(
                key=str(customer.pk),
                total_spend=sum((order.amount for order in completed), Decimal("0")),
                order_count=len(completed),
                first_order_at=moments[0] if moments else None,
                last_order_at=moments[-1] if moments else None,
                signed_up_at=customer.signed_up_at,
                city=customer.city,
                country=customer.country,
                email=customer.email,
                tags={tag.name for tag in customer.tag_rows.all()},
            )
        )
    return [len(evaluator.select(group.to_dict(), people)) for group in rules]


# --- Timing ---------------------------------------------------------------------------------


def timed(run: Callable[[], Any], runs: int) -> tuple[float, float, Any]:
    result = run()  # warm-up (and the value to report)
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        run()
        samples.append((time.perf_counter() - started) * 1000)
    samples.sort()
    p95 = samples[min(len(samples) - 1, round(0.95 * (len(samples) - 1)))]
    return statistics.median(samples), p95, result


def private_mb() -> dict[str, float]:
    """This process's memory from /proc/self/smaps_rollup, in MB: private dirty (its own heap:
    Python, DuckDB's working memory), private clean (file pages only it maps now: the
    generation's pages it alone has touched, shared as soon as another process maps them),
    RSS and PSS (shared pages divided among the processes mapping them)."""
    fields: dict[str, float] = {}
    for line in Path("/proc/self/smaps_rollup").read_text().splitlines()[1:]:
        name, value, *_ = line.split()
        fields[name.rstrip(":")] = int(value) / 1024
    return {
        "private": round(fields["Private_Clean"] + fields["Private_Dirty"], 1),
        "private_dirty": round(fields["Private_Dirty"], 1),
        "private_clean": round(fields["Private_Clean"], 1),
        "rss": round(fields["Rss"], 1),
        "pss": round(fields["Pss"], 1),
    }


def memory_probe(snapshot_dir: str) -> None:
    """Run in a fresh process: memory before and after the snapshot answers every rule's
    preview and funnel (the selectors behind the API route); prints JSON."""
    settings.MINICRM_SNAPSHOT_DIR = Path(snapshot_dir)
    today = today_in_zone()
    before = private_mb()
    with override_settings(MINICRM_PREVIEW_SNAPSHOT=True):
        started = time.perf_counter()
        group = parse_rules(rules_under_test(today)[0][1])
        assert segment_preview(rules=group, today=today)["total_customers"] > 0
        segment_funnel(rules=group, today=today)
        first_ms = (time.perf_counter() - started) * 1000
        after_first = private_mb()
        for _name, rules in rules_under_test(today):
            group = parse_rules(rules)
            segment_preview(rules=group, today=today)
            segment_funnel(rules=group, today=today)
    print(
        json.dumps(
            {
                "first_preview_ms": round(first_ms, 1),
                "before": before,
                "after_first": after_first,
                "after_all": private_mb(),
            }
        )
    )


def snapshot_prepare(
    snapshot_dir: Path, *, rebuild: bool, batch: int
) -> tuple[CustomerSnapshot, dict[str, Any]]:
    """The machine's snapshot for the run: built if absent (timed), opened as after a restart
    (timed), a compaction of a delta (timed), a fresh process's memory. Returns the opened copy
    and the numbers."""
    settings.MINICRM_SNAPSHOT_DIR = snapshot_dir
    numbers: dict[str, Any] = {}
    current = generation_current(snapshot_dir)
    if current is None or rebuild:
        started = time.perf_counter()
        generation_build(directory=snapshot_dir, replacing=current.name if current else None)
        numbers["build_s"] = round(time.perf_counter() - started, 1)
        current = generation_current(snapshot_dir)
        assert current is not None
    numbers["generation_rows"] = current.rows
    numbers["generation_mb"] = round(
        sum(path.stat().st_size for path in (snapshot_dir / current.name).iterdir()) / 2**20, 1
    )
    started = time.perf_counter()
    snapshot = snapshot_ready_or_start_build()
    numbers["open_s"] = round(time.perf_counter() - started, 2)
    assert snapshot is not None, "the snapshot did not open"
    # A delta of `batch` customers, applied as a refresh applies changed customers (read from
    # the database, which stays read-only here), then written into the next generation.
    ids = list(Customer.objects.order_by("-id").values_list("id", flat=True)[:batch])
    started = time.perf_counter()
    with snapshot.lock:
        snapshot._upsert(list(snapshot._stream(Customer.objects.filter(id__in=ids).order_by())))
        snapshot._reread_orders(ids)
        snapshot._count_delta()
        snapshot._fresh = True
    numbers["apply_batch_ms"] = round((time.perf_counter() - started) * 1000, 1)
    numbers["delta_rows"] = snapshot.delta_rows
    started = time.perf_counter()
    assert snapshot.compact()
    numbers["compact_s"] = round(time.perf_counter() - started, 1)
    started = time.perf_counter()
    snapshot = snapshot_ready_or_start_build()
    numbers["switch_ms"] = round((time.perf_counter() - started) * 1000, 1)
    assert snapshot is not None
    probe = subprocess.run(  # noqa: S603 (this same script, in a fresh process)
        [sys.executable, __file__, "--probe", str(snapshot_dir)],
        capture_output=True,
        text=True,
        check=True,
        env=os.environ,
    )
    numbers["fresh_process"] = json.loads(probe.stdout.strip().splitlines()[-1])
    return snapshot, numbers


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--orders", type=int, default=10_000_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--runs", type=int, default=30, help="runs of the fast paths")
    parser.add_argument("--sql-runs", type=int, default=5, help="runs of the SQL-only paths")
    parser.add_argument("--naive-sample", type=int, default=5_000)
    parser.add_argument("--copy-from", help="SQLite file to copy the rows from (PostgreSQL run)")
    parser.add_argument("--index", action="append", default=[], help="CREATE INDEX to try")
    parser.add_argument("--only", help="comma-separated rule numbers to run")
    parser.add_argument("--skip-sql", action="store_true", help="skip the SQL-only paths")
    parser.add_argument("--json", help="write the results here as JSON")
    parser.add_argument("--snapshot-dir", help="the snapshot's folder (default per vendor)")
    parser.add_argument("--rebuild", action="store_true", help="build a new generation")
    parser.add_argument("--batch", type=int, default=10_000, help="customers in the delta")
    parser.add_argument("--probe", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.probe:
        memory_probe(args.probe)
        return

    vendor = connection.vendor
    # Only a new database is migrated: an existing one is measured as it is (migrations another
    # change has not committed yet must not reach a shared benchmark database).
    if Customer._meta.db_table not in connection.introspection.table_names():
        call_command("migrate", verbosity=0)
    if not Customer.objects.exists():
        print(f"Generating {args.customers:,} customers / {args.orders:,} orders...", flush=True)
        if vendor == "sqlite":
            generate_sqlite(
                str(connection.settings_dict["NAME"]),
                customers=args.customers,
                orders=args.orders,
                seed=args.seed,
            )
        elif args.copy_from:
            copy_into_postgres(args.copy_from)
        else:
            sys.exit("Empty database: on PostgreSQL pass --copy-from <sqlite file>.")
    total = Customer.objects.count()
    for statement in args.index:
        started = time.perf_counter()
        with connection.cursor() as cursor:
            cursor.execute(statement)
            cursor.execute("ANALYZE")
        print(f"  {statement} ({time.perf_counter() - started:.0f}s)", flush=True)

    user = User.objects.filter(email="bench@example.com").first() or User.objects.create_user(
        "bench@example.com", "bench-password-123", role=Role.MARKETER
    )
    _token, raw_token = api_token_create(user=user, name="bench")
    client = Client(headers={"Authorization": f"Bearer {raw_token}"})

    # The snapshot first: its memory is measured before the DuckDB floor fills this process.
    snapshot_dir = Path(args.snapshot_dir or f"/tmp/bench_snapshot_{vendor}")  # noqa: S108
    snapshot, snapshot_numbers = snapshot_prepare(
        snapshot_dir, rebuild=args.rebuild, batch=args.batch
    )
    refresh_p50, refresh_p95, _ = timed(snapshot.refresh, args.runs)
    snapshot_numbers["refresh_idle_ms"] = [round(refresh_p50, 2), round(refresh_p95, 2)]
    print(f"Snapshot: {json.dumps(snapshot_numbers)}", flush=True)
    load_s = snapshot_numbers.get("build_s", 0.0)
    started = time.perf_counter()
    duck = load_duckdb()
    print(f"DuckDB floor loaded in {time.perf_counter() - started:.1f}s", flush=True)

    today = today_in_zone()
    cases = rules_under_test(today)
    if args.only:
        wanted = {int(number) for number in args.only.split(",")}
        cases = [case for case in cases if int(case[0].split()[0]) in wanted]

    # The naive path: one sample load serves every rule (the load is what costs).
    sample_ids = random.Random(args.seed).sample(range(1, total + 1), min(args.naive_sample, total))
    groups = [parse_rules(rules) for _name, rules in cases]
    started = time.perf_counter()
    naive_select(groups, sample_ids, today)
    naive_ms = (time.perf_counter() - started) * 1000 * total / len(sample_ids)

    rows = []
    for (name, rules), group in zip(cases, groups, strict=True):
        body = json.dumps({"rules": rules})

        def api(funnel: bool, body: str = body) -> Any:
            path = "/api/v1/segments/preview" + ("" if funnel else "?funnel=false")
            response = client.post(path, body, content_type="application/json")
            assert response.status_code == 200, response.content
            return response.json()

        params: list[Any] = []
        where = duck_sql(group, today, params)
        row: dict[str, Any] = {"rule": name}
        if not args.skip_sql:
            with override_settings(MINICRM_PREVIEW_SNAPSHOT=False):
                row["query"] = timed(lambda g=group: customers_matching(g).count(), args.sql_runs)
                row["api_sql"] = timed(lambda: api(False), args.sql_runs)
        with override_settings(MINICRM_PREVIEW_SNAPSHOT=True):
            row["api"] = timed(lambda: api(False), args.runs)
            row["api_funnel"] = timed(lambda: api(True), args.runs)
        row["snapshot"] = timed(lambda g=group: snapshot.count(g, today=today), args.runs)
        row["duckdb"] = timed(
            lambda where=where, params=params: duck.execute(
                f"SELECT COUNT(*) FROM customers WHERE {where}", params
            ).fetchone()[0],
            args.runs,
        )
        row["count"] = row["api"][2]["count"]
        counts = {row["duckdb"][2], row["snapshot"][2], row["count"]}
        if "query" in row:
            counts.add(row["query"][2])
        row["agree"] = "yes" if len(counts) == 1 else f"NO {sorted(counts)}"
        row["naive_ms"] = naive_ms
        rows.append(row)
        sql_part = ""
        if "query" in row:
            sql_part = f"SQL {row['query'][0]:7.1f}  API(SQL) {row['api_sql'][0]:7.1f}  "
        print(
            f"{name:<26} {row['count']:>8,}  {sql_part}"
            f"API {row['api'][0]:6.1f}/{row['api'][1]:6.1f}  "
            f"+funnel {row['api_funnel'][0]:6.1f}  snapshot {row['snapshot'][0]:6.2f}  "
            f"duckdb {row['duckdb'][0]:6.2f}  agree {row['agree']}",
            flush=True,
        )
    for statement in args.index:
        index_name = statement.split("INDEX", 1)[1].split()[0]
        with connection.cursor() as cursor:
            cursor.execute(f"DROP INDEX IF EXISTS {index_name}")

    print_table(rows, vendor=vendor, total=total, naive_sample=len(sample_ids), load_s=load_s)
    if args.json:
        plain = [
            {
                key: (list(value[:2]) if isinstance(value, tuple) else value)
                for key, value in row.items()
            }
            for row in rows
        ]
        Path(args.json).write_text(
            json.dumps({"vendor": vendor, "rows": plain, "snapshot": snapshot_numbers}, indent=2)
        )


def print_table(
    rows: list[dict[str, Any]], *, vendor: str, total: int, naive_sample: int, load_s: float
) -> None:
    def ms(pair: tuple[float, float, Any] | None) -> str:
        return "-" if pair is None else f"{pair[0]:.1f} / {pair[1]:.1f}"

    print()
    print(f"{vendor}, {total:,} customers; times in ms, p50 / p95; ratios of p50")
    print()
    print(
        "| rule | matches | SQL count | API, SQL only | API (snapshot) | API + funnel "
        "| snapshot count | DuckDB | API ÷ DuckDB | naive (extrapolated) | naive ÷ API |"
    )
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for row in rows:
        api_p50, duck_p50 = row["api"][0], row["duckdb"][0]
        print(
            f"| {row['rule']} | {row['count']:,} | {ms(row.get('query'))} "
            f"| {ms(row.get('api_sql'))} | {ms(row['api'])} | {ms(row['api_funnel'])} "
            f"| {row['snapshot'][0]:.2f} / {row['snapshot'][1]:.2f} "
            f"| {duck_p50:.2f} / {row['duckdb'][1]:.2f} | {api_p50 / duck_p50:.1f}x "
            f"| {row['naive_ms'] / 1000:,.0f} s | {row['naive_ms'] / api_p50:,.0f}x |"
        )
    print()
    print(
        f"naive: customers + orders + tags loaded through the ORM (prefetch) and filtered in "
        f"Python, timed on {naive_sample:,} random customers and scaled to {total:,}. "
        f"Snapshot build (once per machine, in the background): {load_s:.1f} s "
        f"(0 when an existing generation was reused)."
    )


if __name__ == "__main__":
    main()
