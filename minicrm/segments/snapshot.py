"""A columnar copy of the customer stats (DuckDB over memory-mapped Arrow files) for fast, exact
live previews and segment facts: one copy per machine, shared by every process.

DESIGN.md, "Scale": at a million customers a row-store database scans too slowly to count an
arbitrary rule within a keystroke's budget, while a column store counts it in milliseconds.
One process at a time writes a *generation* of the copy to MINICRM_SNAPSHOT_DIR
(`snapshot_file`); every process memory-maps the current one (the pages live once, in the OS
page cache) and keeps only a small private *delta*: the customers changed or deleted since the
generation's `updated_at` watermark and the orders since its top order id. The views
`customers`, `tags` and `recent_orders` show the generation with the delta applied, so the SQL
of `duck_where` and the facts reads one table each. The delta is brought up to date before
every use (every write to a customer, its stats or its tags moves `updated_at`), so counts stay
exact; when it grows or ages, a process writes the next generation from the current one plus
its delta (seconds), and the others switch to it at their next refresh. No request waits for a
copy: while none is ready, callers use SQL and one process builds it in the background. The SQL
compiler stays the source of truth for saved segments, members, exports and campaigns; the
property tests check both select the same customers.

Values are stored pre-normalised so the SQL here is plain integer and string comparison: money
as whole cents, instants as microseconds since the epoch (UTC), text also in ASCII lower case
(the case folding SQLite's LIKE applies). Every value reaches DuckDB as a parameter.

Beside the customers it holds their recent completed orders (`recent_orders`: every completed
order since `orders_since`, a little more than the insight trend's two 90-day windows), for the
facts' order trend. They are kept exact on refresh: orders above the highest id seen are added,
and every customer whose `updated_at` moved has its recent orders read again (every change to a
customer's completed orders moves it, see `customer_stats_recompute`); deleted customers lose
theirs at the reconcile.
"""
# ruff: noqa: S608  (SQL here is assembled from fixed fragments; values are always parameters)

import csv
import logging
import math
import shutil
import tempfile
import threading
import time as clock
import weakref
from collections.abc import Iterable, Iterator, Sequence
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import close_old_connections, connection
from django.db.models import BigIntegerField, Count, Sum, TextField
from django.db.models.expressions import RawSQL
from django.db.models.functions import Cast
from django.utils import timezone

from minicrm.core.statement_timeout import StatementTimeoutError, active_timeout_seconds
from minicrm.customers.models import Customer, CustomerTag, Order

from .compiler import day_start, today_in_zone
from .duck_where import CODED_TEXT, Where, ascii_lower, cents, micros
from .rules import RuleGroup
from .snapshot_file import (
    TABLES,
    Manifest,
    build_lock,
    build_running,
    generation_applied,
    generation_applied_write,
    generation_current,
    generation_open,
    generation_publish,
    generation_sort_customers,
    generation_start,
    generation_write,
)

try:
    import duckdb
except ImportError:  # pragma: no cover - duckdb is optional; previews then use SQL only
    duckdb = None  # type: ignore[assignment]

logger = logging.getLogger(__name__)

__all__ = [
    "CustomerSnapshot",
    "cents",
    "generation_build",
    "micros",
    "snapshot_ready_or_start_build",
    "snapshot_state",
]
# The most common tags get one bit each of `tag_bits`; other tags use the `tags` table.
TAG_BITS = 63

# Rows written by a transaction that committed late carry an `updated_at` from before they became
# visible; re-reading this window on every refresh catches them (upserts are idempotent).
WATERMARK_OVERLAP = timedelta(minutes=2)
# Deletions leave no `updated_at`; the id sets are compared this often, in chunks of ids.
RECONCILE_EVERY_SECONDS = 30.0
RECONCILE_CHUNK = 50_000
# Above this many changed rows a delta costs more than a new generation: the process answers
# from SQL while one is built from the database (an explicit `refresh()` rebuilds at once).
FULL_RELOAD_ABOVE = 50_000
# Above this many new orders (by id) likewise.
FULL_RELOAD_ABOVE_ORDERS = 500_000
# A process writes the next generation from the current one plus its delta (which the others
# then need not hold) once the delta holds this many rows, or has held new changes this long.
# Not every few seconds: every process reads each change from the database anyway, a delta of
# thousands of rows costs a query well under a millisecond (a hash anti-join), and a compaction
# costs seconds of CPU at 1M customers on cores the web workers share.
COMPACT_ABOVE_ROWS = 100_000
COMPACT_AFTER_SECONDS = 60.0
# After a failed build, callers use SQL for this long before a new build is tried: a build costs
# seconds of CPU at scale, and a cause that persists must not turn every preview into one.
LOAD_RETRY_SECONDS = 300.0
# While another process builds, this process asks for the build lock at most this often.
BUILD_TRY_EVERY_SECONDS = 1.0
# Completed orders kept in `recent_orders`: the insight trend reads the last 2 x 90 days; the
# margin keeps those windows covered across day changes and time zones without a reload (the
# held range only ever starts earlier than needed as days pass).
RECENT_ORDER_DAYS = 2 * 90 + 30
# Customers per query when their recent orders are read again (an IN list of ids).
ORDER_READ_CHUNK = 2_000
# Each process's DuckDB holds only the delta and the working memory of a query: the generation
# is scanned from the mapped files. Two threads: the cores are shared with the web workers.
DUCK_MEMORY_LIMIT = "256MB"
DUCK_THREADS = 2
# Rows per Arrow record batch when a generation is written.
BATCH_ROWS = 122_880
# The sample's top rows are looked for in the generation's first rows (by spend) in slices of
# this many, then 4 times as many, and so on (see `top_ids`).
TOP_FIRST_SLICE_ROWS = 65_536

COLUMNS = (
    "id",
    "total_spend",
    "order_count",
    "first_order_at",
    "last_order_at",
    "signed_up_at",
    "city",
    "country",
    "email",
    "marketing_consent",
    "unsubscribed_at",
    # The attributes as the database's JSON text (see `_stream`), not decoded into Python.
    "attributes_text",
)
# The delta tables (the generation's files hold the same columns in the same order).
SCHEMA = """
CREATE OR REPLACE TABLE delta_customers (
    id BIGINT PRIMARY KEY, cents BIGINT NOT NULL, order_count BIGINT NOT NULL,
    first_order_at BIGINT, last_order_at BIGINT, signed_up_at BIGINT,
    city VARCHAR NOT NULL, country VARCHAR NOT NULL, email VARCHAR NOT NULL,
    city_lc VARCHAR NOT NULL, country_lc VARCHAR NOT NULL, email_lc VARCHAR NOT NULL,
    city_code INTEGER NOT NULL, country_code INTEGER NOT NULL, tag_bits BIGINT NOT NULL,
    marketing_consent BOOLEAN NOT NULL, unsubscribed BOOLEAN NOT NULL, attributes VARCHAR
);
CREATE OR REPLACE TABLE delta_tags (customer_id BIGINT NOT NULL, name VARCHAR NOT NULL);
CREATE OR REPLACE TABLE delta_recent_orders (
    id BIGINT NOT NULL, customer_id BIGINT NOT NULL, ordered_at BIGINT NOT NULL,
    cents BIGINT NOT NULL
);
-- Customers whose generation rows no longer hold: changed (their rows are in the delta) or gone.
CREATE OR REPLACE TABLE changed (id BIGINT PRIMARY KEY);
"""
# The views the queries read: the generation alone while the delta is empty (the common case:
# no join), else its rows of unchanged customers and the delta's.
VIEWS_PLAIN = """
CREATE OR REPLACE VIEW customers AS SELECT * FROM base_customers;
CREATE OR REPLACE VIEW tags AS SELECT * FROM base_tags;
CREATE OR REPLACE VIEW recent_orders AS SELECT * FROM base_recent_orders;
"""
VIEWS_DELTA = """
CREATE OR REPLACE VIEW customers AS
    SELECT b.* FROM base_customers b ANTI JOIN changed c ON b.id = c.id
    UNION ALL SELECT * FROM delta_customers;
CREATE OR REPLACE VIEW tags AS
    SELECT b.* FROM base_tags b ANTI JOIN changed c ON b.customer_id = c.id
    UNION ALL SELECT * FROM delta_tags;
CREATE OR REPLACE VIEW recent_orders AS
    SELECT b.* FROM base_recent_orders b ANTI JOIN changed c ON b.customer_id = c.id
    UNION ALL SELECT * FROM delta_recent_orders;
"""
CSV_COLUMNS = (
    "{'id': 'BIGINT', 'cents': 'BIGINT', 'order_count': 'BIGINT', 'first_order_at': 'BIGINT', "
    "'last_order_at': 'BIGINT', 'signed_up_at': 'BIGINT', 'city': 'VARCHAR', "
    "'country': 'VARCHAR', 'email': 'VARCHAR', 'city_lc': 'VARCHAR', 'country_lc': 'VARCHAR', "
    "'email_lc': 'VARCHAR', 'city_code': 'INTEGER', 'country_code': 'INTEGER', "
    "'tag_bits': 'BIGINT', 'marketing_consent': 'BOOLEAN', 'unsubscribed': 'BOOLEAN', "
    "'attributes': 'VARCHAR'}"
)
TAG_CSV_COLUMNS = "{'customer_id': 'BIGINT', 'name': 'VARCHAR'}"
ORDER_COLUMNS = ("id", "customer_id", "ordered_at", "amount")
ORDER_CSV_COLUMNS = (
    "{'id': 'BIGINT', 'customer_id': 'BIGINT', 'ordered_at': 'BIGINT', 'cents': 'BIGINT'}"
)

# Databases whose SQL here turns `ordered_at` into microseconds since the epoch (UTC) and
# `amount` into whole cents (at millions of rows, converting in Python is most of a load).
DATABASE_CONVERTS_ORDERS = ("sqlite", "postgresql", "mysql")


def _order_values(orders: Any, *, status: bool = False) -> Any:
    """`orders` as (id, customer id, ordered_at, amount[, status]) rows; converted to
    microseconds and cents by the database where it can (DATABASE_CONVERTS_ORDERS)."""
    extra = ("status",) if status else ()
    if connection.vendor not in DATABASE_CONVERTS_ORDERS:
        return orders.values_list(*ORDER_COLUMNS, *extra)
    quote = connection.ops.quote_name
    table = quote(Order._meta.db_table)
    at, amount = f"{table}.{quote('ordered_at')}", f"{table}.{quote('amount')}"
    if connection.vendor == "sqlite":
        # Stored as UTC text, "YYYY-MM-DD HH:MM:SS[.ffffff]": whole seconds from the first 19
        # characters (SQLite's own parse rounds fractions to milliseconds), microseconds from
        # the rest. Decimals are binary floats whose rounding to the cent is exact. %% is a
        # literal % once the parameters are bound.
        at_micros = (
            f"CAST(strftime('%%s', substr({at}, 1, 19)) AS INTEGER) * 1000000 "
            f"+ CAST(substr(substr({at}, 21) || '000000', 1, 6) AS INTEGER)"
        )
        amount_cents = f"CAST(ROUND({amount} * 100) AS INTEGER)"
    elif connection.vendor == "postgresql":
        at_micros = f"CAST(ROUND(EXTRACT(EPOCH FROM {at}) * 1000000) AS BIGINT)"
        amount_cents = f"CAST({amount} * 100 AS BIGINT)"
    else:  # MariaDB / MySQL: UTC DATETIME(6), exact DECIMAL
        at_micros = f"TIMESTAMPDIFF(MICROSECOND, '1970-01-01 00:00:00', {at})"
        amount_cents = f"CAST({amount} * 100 AS SIGNED)"
    # Fixed SQL fragments: column names quoted by the backend, no values.
    return orders.annotate(
        at_micros=RawSQL(at_micros, (), output_field=BigIntegerField()),  # noqa: S611
        amount_cents=RawSQL(amount_cents, (), output_field=BigIntegerField()),  # noqa: S611
    ).values_list("id", "customer_id", "at_micros", "amount_cents", *extra)


def _insert_columns(duck: Any, table: str, rows: Sequence[Sequence[Any]]) -> None:
    """Insert rows into a DuckDB table, sent as one list per column."""
    columns = [list(column) for column in zip(*rows, strict=True)]
    duck.execute(f"INSERT INTO {table} SELECT {', '.join('unnest(?)' for _ in columns)}", columns)


def _completed_since(moment: datetime) -> Any:
    """The completed orders ordered at or after `moment` (a queryset)."""
    return Order.objects.filter(status=Order.Status.COMPLETED, ordered_at__gte=moment).order_by()


def _write_table(
    duck: Any, folder: Path, name: str, path: Path, columns: str, written: int, select: str = "*"
) -> int:
    """Write a generation's table from its CSV (or empty, with the delta table's columns),
    streamed through DuckDB in record batches; the rows written."""
    if written:
        source = (
            f"read_csv('{path}', header=false, quote='\"', escape='\"', nullstr='\\N', "
            f"columns={columns})"
        )
    else:
        source, select = f"delta_{name}", "*"
    reader = duck.sql(f"SELECT {select} FROM {source}").to_arrow_reader(BATCH_ROWS)
    return generation_write(folder, name, reader)


def _duck_connect() -> Any:
    duck = duckdb.connect()
    duck.execute(f"SET memory_limit = '{DUCK_MEMORY_LIMIT}'; SET threads = {DUCK_THREADS}")
    return duck


class CustomerSnapshot:
    """One process's view of a generation of the columnar copy plus its own delta, refreshed
    before each use. Made by `snapshot_ready_or_start_build` for the process, or directly
    (tests, benchmarks): `load()` then writes a generation of its own and opens it."""

    def __init__(
        self, *, recent_order_days: int | None = None, directory: Path | None = None
    ) -> None:
        if duckdb is None:
            raise RuntimeError("The preview snapshot needs the duckdb package.")
        self._lock = threading.RLock()
        self._duck: Any = None
        self._tables: dict[str, Any] = {}
        self.manifest: Manifest | None = None
        self._watermark: datetime | None = None
        self._reconciled_at = 0.0
        # Whether the delta holds a change the generation never saw (then it is worth a new one).
        self._fresh = False
        self.delta_rows = 0
        self._total: int | None = None
        # Too many changes for a delta: not to be used until a new generation is opened.
        self.stale = False
        self.recent_order_days = recent_order_days or RECENT_ORDER_DAYS
        # `recent_orders` holds every completed order ordered at or after this instant...
        self.orders_since: datetime | None = None
        # ...with an id up to this one, or above it and seen by a refresh since.
        self._top_order_id = 0
        # The `updated_at` of each customer the last refresh read (in the watermark overlap).
        self._applied: dict[int, datetime] = {}
        if directory is None:
            # A copy of its own (tests, benchmarks): its files go when it does.
            directory = Path(tempfile.mkdtemp(prefix="minicrm-snapshot-"))
            weakref.finalize(self, shutil.rmtree, directory, ignore_errors=True)
        self.directory = directory
        self._reset_dictionaries()

    def _reset_dictionaries(self) -> None:
        self.codes: dict[str, dict[str, int]] = {field: {} for field in CODED_TEXT}
        self.tag_bits: dict[str, int] = {}
        self.tag_names: set[str] = set()
        self.max_order_count = 0

    @property
    def loaded(self) -> bool:
        return self._duck is not None

    @property
    def generation(self) -> str | None:
        return self.manifest.name if self.manifest is not None else None

    # --- Generations ------------------------------------------------------------------------

    def _code(self, field: str, text_lc: str) -> int:
        codes = self.codes[field]
        if text_lc not in codes:
            codes[text_lc] = len(codes)
        return codes[text_lc]

    def _add_tag(self, name: str) -> None:
        if name not in self.tag_names:
            self.tag_names.add(name)
            if len(self.tag_bits) < TAG_BITS:
                self.tag_bits[name] = len(self.tag_bits)

    def _row(self, values: Sequence[Any], tag_bits: int) -> tuple[Any, ...]:
        (pk, spend, count, first, last, signed, city, country, email, consent, gone, extra) = values
        city, country, email = city or "", country or "", email or ""
        city_lc, country_lc = ascii_lower(city), ascii_lower(country)
        self.max_order_count = max(self.max_order_count, count)
        return (
            pk,
            cents(spend),
            count,
            micros(first),
            micros(last),
            micros(signed),
            city,
            country,
            email,
            city_lc,
            country_lc,
            ascii_lower(email),
            self._code("city", city_lc),
            self._code("country", country_lc),
            tag_bits,
            bool(consent),
            gone is not None,
            # The attributes as JSON text, read with DuckDB's json functions by attribute rules;
            # NULL when there are none (most customers at most shops: no bytes held for them).
            extra if extra and extra.strip() != "{}" else None,
        )

    def _bits(self, names: Iterable[str]) -> int:
        return sum(1 << self.tag_bits[name] for name in names if name in self.tag_bits)

    def load(self) -> None:
        """Write a new generation from the database into this copy's folder and open it (seconds
        at 1M rows; explicit: the process's copy is built by `generation_build` instead)."""
        builder = CustomerSnapshot(
            recent_order_days=self.recent_order_days, directory=self.directory
        )
        folder, manifest = builder.generation_write_from_database()
        generation_publish(self.directory, folder, manifest)
        self.attach(manifest)

    def attach(self, manifest: Manifest) -> None:
        """Open a generation (memory-mapped) with an empty delta; raises if its files are
        missing or damaged. Callers `refresh()` before use."""
        tables = generation_open(self.directory, manifest)
        applied = generation_applied(self.directory, manifest)
        duck = _duck_connect()
        for name, table in tables.items():
            duck.register(f"base_{name}", table)
        duck.execute(SCHEMA)
        duck.execute(VIEWS_PLAIN)
        with self._lock:
            self._duck, self._tables, self.manifest = duck, tables, manifest
            self.codes = {field: dict(manifest.codes.get(field, {})) for field in CODED_TEXT}
            self.tag_bits = dict(manifest.tag_bits)
            self.tag_names = set(manifest.tag_names)
            self.max_order_count = manifest.max_order_count
            self._watermark = manifest.watermark_at
            self._top_order_id = manifest.top_order_id
            self.orders_since = manifest.orders_since_at
            self._applied = applied
            # Deletions since the generation was written left no watermark: the first refresh
            # looks for them (a restart would otherwise count deleted customers for a while).
            self._reconciled_at = -math.inf
            self._fresh = False
            self.delta_rows = 0
            self._total = None
            self.stale = False

    def generation_write_from_database(self) -> tuple[Path, Manifest]:
        """Read every customer, tag and recent order into a new generation's files (not yet
        published). Streams through CSV and DuckDB to Arrow: memory stays small at any size."""
        started = timezone.now()
        self._reset_dictionaries()
        # The most common tags get the bits.
        tag_counts = (
            CustomerTag.objects.order_by()
            .values_list("name")
            .annotate(n=Count("id"))
            .order_by("-n", "name")
        )
        for name, _n in tag_counts:
            self._add_tag(name)
        bits_of: dict[int, int] = {}
        folder = generation_start(self.directory)
        rows: dict[str, int] = {}
        duck = _duck_connect()
        duck.execute(SCHEMA)
        with tempfile.TemporaryDirectory() as scratch:
            tags_path = Path(scratch) / "tags.csv"
            tag_rows = CustomerTag.objects.order_by().values_list("customer_id", "name")

            def tags_with_bits() -> Iterable[tuple[int, str]]:
                for customer_id, name in tag_rows.iterator(chunk_size=10_000):
                    if name in self.tag_bits:
                        bits_of[customer_id] = bits_of.get(customer_id, 0) | (
                            1 << self.tag_bits[name]
                        )
                    yield customer_id, name

            written = self._write_csv(tags_path, tags_with_bits())
            rows["tags"] = _write_table(duck, folder, "tags", tags_path, TAG_CSV_COLUMNS, written)
            customers_path = Path(scratch) / "customers.csv"
            # The customers in the watermark's overlap window, as read (see `refresh`).
            overlap_from = started - WATERMARK_OVERLAP
            applied: dict[int, datetime] = {}

            def customers_with_bits() -> Iterable[tuple[Any, ...]]:
                for values in self._stream(Customer.objects.order_by(), stamped=True):
                    if values[-1] >= overlap_from:
                        applied[values[0]] = values[-1]
                    yield self._row(values[:-1], bits_of.get(values[0], 0))

            customers = customers_with_bits()
            written = self._write_csv(customers_path, customers)
            rows["customers"] = _write_table(
                duck, folder, "customers", customers_path, CSV_COLUMNS, written
            )
            generation_sort_customers(folder, batch_rows=BATCH_ROWS)
            # Orders last: one changed during the load moves its customer's `updated_at`
            # (re-read at the next refresh from `started`); one added has an id above `top`.
            orders_since = day_start(today_in_zone() - timedelta(days=self.recent_order_days))
            top = Order.objects.order_by("-id").values_list("id", flat=True).first() or 0
            rows["recent_orders"] = self._write_orders(
                duck, folder, Path(scratch) / "orders.csv", since=orders_since, top=top
            )
        duck.close()
        generation_applied_write(folder, applied)
        return folder, Manifest(
            name=folder.name,
            watermark=started.isoformat(),
            top_order_id=top,
            orders_since=orders_since.isoformat(),
            codes=self.codes,
            tag_bits=self.tag_bits,
            tag_names=sorted(self.tag_names),
            max_order_count=self.max_order_count,
            rows=rows,
            customers_by_spend=True,
        )

    def _write_orders(
        self, duck: Any, folder: Path, path: Path, *, since: datetime, top: int
    ) -> int:
        """Write `recent_orders`: the completed orders from `since` with ids up to `top`."""
        if connection.vendor == "sqlite":
            # Millions of rows: SQLite writes each CSV line and DuckDB parses the stored UTC
            # text (no per-value Python work; about 6 s for 6M orders). A table scan: through
            # the (status, ordered_at) index each order costs a row lookup (4 times slower).
            quote = connection.ops.quote_name
            sql = (
                f"SELECT id || ',' || customer_id || ',' || ordered_at || ',' || "
                f"CAST(ROUND(amount * 100) AS INTEGER) "
                f"FROM {quote(Order._meta.db_table)} NOT INDEXED "
                f"WHERE status = %s AND ordered_at >= %s AND id <= %s"
            )
            params = [Order.Status.COMPLETED, connection.ops.adapt_datetimefield_value(since), top]
            written = 0
            with path.open("w", encoding="utf-8") as handle, connection.cursor() as cursor:
                cursor.execute(sql, params)
                while rows := cursor.fetchmany(50_000):
                    handle.write("".join(f"{row[0]}\n" for row in rows))
                    written += len(rows)
            return _write_table(
                duck,
                folder,
                "recent_orders",
                path,
                ORDER_CSV_COLUMNS.replace("'ordered_at': 'BIGINT'", "'ordered_at': 'TIMESTAMP'"),
                written,
                select="id, customer_id, epoch_us(ordered_at) AS ordered_at, cents",
            )
        recent = _completed_since(since).filter(id__lte=top)
        written = self._write_order_csv(path, recent)
        return _write_table(duck, folder, "recent_orders", path, ORDER_CSV_COLUMNS, written)

    def compaction_due(self) -> bool:
        """Whether this copy's delta is worth a new generation (see COMPACT_*)."""
        manifest = self.manifest
        if manifest is None or self.stale or not self._fresh or not self.delta_rows:
            return False
        aged = clock.time() - manifest.created > COMPACT_AFTER_SECONDS
        return aged or self.delta_rows > COMPACT_ABOVE_ROWS

    def compact(self) -> bool:
        """Write the next generation from this one plus the delta, if this process gets the
        build lock and this is still the current generation; whether it did. Reads run in one
        DuckDB transaction begun under the lock, so refreshes meanwhile neither wait nor leak
        into the files (which then match the watermark written beside them)."""
        with build_lock(self.directory) as mine:
            if not mine:
                return False
            current = generation_current(self.directory)
            if current is None or current.name != self.generation:
                return False
            with self._lock:
                if self.stale or self.manifest is None:
                    return False
                cursor = self._cursor()
                cursor.execute("BEGIN TRANSACTION")
                for name in TABLES:  # pins what the transaction sees
                    cursor.execute(f"SELECT COUNT(*) FROM delta_{name}").fetchall()
                cursor.execute("SELECT COUNT(*) FROM changed").fetchall()
                assert self._watermark is not None
                assert self.orders_since is not None
                # The held orders start no earlier than needed: each generation drops the days
                # that fell out of the window.
                since = max(
                    self.orders_since,
                    day_start(today_in_zone() - timedelta(days=self.recent_order_days)),
                )
                manifest = Manifest(
                    name="",
                    watermark=self._watermark.isoformat(),
                    top_order_id=self._top_order_id,
                    orders_since=since.isoformat(),
                    codes={field: dict(codes) for field, codes in self.codes.items()},
                    tag_bits=dict(self.tag_bits),
                    tag_names=sorted(self.tag_names),
                    max_order_count=self.max_order_count,
                )
                overlap_from = self._watermark - WATERMARK_OVERLAP
                applied = {
                    pk: moment for pk, moment in self._applied.items() if moment >= overlap_from
                }
            try:
                folder = generation_start(self.directory)
                selects = {
                    "customers": ("SELECT * FROM customers", []),
                    "tags": ("SELECT * FROM tags", []),
                    "recent_orders": (
                        "SELECT * FROM recent_orders WHERE ordered_at >= ?",
                        [micros(since)],
                    ),
                }
                for name, (sql, params) in selects.items():
                    reader = cursor.sql(sql, params=params).to_arrow_reader(BATCH_ROWS)
                    manifest.rows[name] = generation_write(folder, name, reader)
            finally:
                cursor.execute("COMMIT")
                cursor.close()
            generation_sort_customers(folder, batch_rows=BATCH_ROWS)
            manifest.customers_by_spend = True
            manifest.name = folder.name
            generation_applied_write(folder, applied)
            generation_publish(self.directory, folder, manifest)
            return True

    def _cursor(self) -> Any:
        """A DuckDB connection of its own to this copy (the generation's tables registered)."""
        cursor = self._duck.cursor()
        for name, table in self._tables.items():
            cursor.register(f"base_{name}", table)
        return cursor

    def refresh(self, *, rebuild: bool = True) -> bool:
        """Apply every customer change since the last refresh to the delta (exactness before
        each use); whether the copy is usable. Past FULL_RELOAD_ABOVE(_ORDERS) changes it
        writes a new generation at once when `rebuild`, else marks itself stale (False)."""
        with self._lock:
            if self.stale:
                return False
            assert self._watermark is not None
            assert self.manifest is not None
            since = self._watermark - WATERMARK_OVERLAP
            now = timezone.now()
            changed = Customer.objects.filter(updated_at__gte=since).order_by()
            stamped = list(self._stream(changed, limit=FULL_RELOAD_ABOVE + 1, stamped=True))
            if len(stamped) > FULL_RELOAD_ABOVE:
                return self._too_many_changes(rebuild=rebuild)
            # The overlap reads the same customers again for two minutes: those whose
            # `updated_at` is the one already applied are skipped.
            found = [row[:-1] for row in stamped if self._applied.get(row[0]) != row[-1]]
            # What the refresh applies, the generation lacks (or may: a late commit).
            fresh = bool(found)
            top = Order.objects.order_by("-id").values_list("id", flat=True).first() or 0
            if top > self._top_order_id:
                # By id alone (a primary-key range): SQLite would otherwise walk the status
                # index over every recent order. Status and date are checked here.
                new = Order.objects.filter(id__gt=self._top_order_id, id__lte=top).order_by()
                rows = list(self._order_rows(new, limit=FULL_RELOAD_ABOVE_ORDERS + 1, status=True))
                if len(rows) > FULL_RELOAD_ABOVE_ORDERS:
                    return self._too_many_changes(rebuild=rebuild)
                assert self.orders_since is not None
                since_micros = micros(self.orders_since) or 0
                recent = [
                    row[:4]
                    for row in rows
                    if row[4] == Order.Status.COMPLETED and row[2] >= since_micros
                ]
                if recent:
                    self._add_orders(recent)
                    fresh = True
            if found:
                self._upsert(found)
                self._reread_orders([values[0] for values in found])
            if clock.monotonic() - self._reconciled_at > RECONCILE_EVERY_SECONDS:
                fresh = self._reconcile() or fresh
            if found or fresh:
                self._count_delta()
            self._fresh = self._fresh or fresh
            self._watermark = now
            self._top_order_id = max(self._top_order_id, top)
            self._applied = {row[0]: row[-1] for row in stamped}
            return True

    def _too_many_changes(self, *, rebuild: bool) -> bool:
        if rebuild:
            self.load()
            return True
        self.stale = True
        return False

    def _count_delta(self) -> None:
        """Size the delta and show it through the views (or the generation alone, if empty)."""
        duck = self._duck
        counts = duck.execute(
            "SELECT (SELECT COUNT(*) FROM changed) + (SELECT COUNT(*) FROM delta_recent_orders)"
        ).fetchall()
        rows = int(counts[0][0])
        if (rows > 0) != (self.delta_rows > 0):
            duck.execute(VIEWS_DELTA if rows else VIEWS_PLAIN)
        self.delta_rows = rows
        self._total = None

    def _upsert(self, found: list[Sequence[Any]]) -> None:
        ids = [values[0] for values in found]
        tags = list(
            CustomerTag.objects.filter(customer_id__in=ids).values_list("customer_id", "name")
        )
        names_of: dict[int, list[str]] = {}
        for customer_id, name in tags:
            self._add_tag(name)
            names_of.setdefault(customer_id, []).append(name)
        rows = [self._row(values, self._bits(names_of.get(values[0], []))) for values in found]
        duck = self._duck
        duck.execute("BEGIN")
        # Values go as one list per column (unnest): executemany and long IN lists cost about
        # a millisecond per row in DuckDB.
        duck.execute("DELETE FROM delta_customers WHERE id IN (SELECT unnest(?))", [ids])
        duck.execute("DELETE FROM delta_tags WHERE customer_id IN (SELECT unnest(?))", [ids])
        duck.execute("INSERT OR IGNORE INTO changed SELECT unnest(?)", [ids])
        _insert_columns(duck, "delta_customers", rows)
        if tags:
            _insert_columns(duck, "delta_tags", tags)
        duck.execute("COMMIT")

    def _reconcile(self) -> bool:
        """Drop customers that were deleted (deletes move no watermark); whether any were.

        The copy holds every customer the database does (the refresh has just applied the
        changes), so it holds exactly them when the count and the sum of ids agree: then one
        aggregate on each side suffices. Otherwise the ids are compared in ranges, a chunk at a
        time (two sets of a million ids would cost a process 100+ MB for a moment)."""
        self._reconciled_at = clock.monotonic()
        duck = self._duck
        held = duck.execute("SELECT COUNT(*), COALESCE(SUM(id), 0) FROM customers").fetchall()[0]
        present = Customer.objects.order_by().aggregate(n=Count("id"), ids=Sum("id"))
        if (int(held[0]), int(held[1])) == (present["n"], int(present["ids"] or 0)):
            return False
        gone: list[int] = []
        after = -1
        while chunk := [
            row[0]
            for row in duck.execute(
                "SELECT id FROM customers WHERE id > ? ORDER BY id LIMIT ?",
                [after, RECONCILE_CHUNK],
            ).fetchall()
        ]:
            found = set(
                Customer.objects.filter(id__gt=after, id__lte=chunk[-1]).values_list(
                    "id", flat=True
                )
            )
            gone.extend(pk for pk in chunk if pk not in found)
            after = chunk[-1]
        if gone:
            duck.execute("BEGIN")
            duck.execute("INSERT OR IGNORE INTO changed SELECT unnest(?)", [gone])
            duck.execute("DELETE FROM delta_customers WHERE id IN (SELECT unnest(?))", [gone])
            for table in ("delta_tags", "delta_recent_orders"):
                duck.execute(f"DELETE FROM {table} WHERE customer_id IN (SELECT unnest(?))", [gone])
            duck.execute("COMMIT")
        return bool(gone)

    @staticmethod
    def _order_rows(
        orders: Any, *, limit: int | None = None, status: bool = False
    ) -> Iterator[tuple[Any, ...]]:
        """(id, customer id, ordered at in micros, cents[, status]) of the orders in `orders`."""
        rows = _order_values(orders, status=status)
        if limit is not None:
            rows = rows[:limit]
        if connection.vendor not in DATABASE_CONVERTS_ORDERS:
            for pk, customer_id, ordered_at, amount, *rest in rows.iterator(chunk_size=10_000):
                yield pk, customer_id, micros(ordered_at) or 0, cents(amount), *rest
            return
        yield from rows.iterator(chunk_size=10_000)

    @staticmethod
    def _write_order_csv(path: Path, orders: Any) -> int:
        """Write the orders' rows as `_order_rows` gives them, straight from a database cursor
        (millions of rows: no per-row Python work where the database converts the values)."""
        if connection.vendor not in DATABASE_CONVERTS_ORDERS:
            return CustomerSnapshot._write_csv(
                path,
                (
                    (pk, customer_id, micros(ordered_at) or 0, cents(amount))
                    for pk, customer_id, ordered_at, amount in _order_values(orders).iterator(
                        chunk_size=10_000
                    )
                ),
            )
        sql, params = _order_values(orders).query.sql_with_params()
        written = 0
        with path.open("w", newline="", encoding="utf-8") as handle, connection.cursor() as cursor:
            writer = csv.writer(handle)
            cursor.execute(sql, params)
            while rows := cursor.fetchmany(50_000):
                writer.writerows(rows)
                written += len(rows)
        return written

    def _add_orders(self, rows: list[tuple[int, int, int, int]]) -> None:
        """Add these orders to the delta, replacing any row with the same id (an order above the
        generation's top id is in no generation file)."""
        duck = self._duck
        duck.execute("BEGIN")
        duck.execute(
            "DELETE FROM delta_recent_orders WHERE id IN (SELECT unnest(?))",
            [[row[0] for row in rows]],
        )
        _insert_columns(duck, "delta_recent_orders", rows)
        duck.execute("COMMIT")

    def _reread_orders(self, customer_ids: list[int]) -> None:
        """Replace these (changed) customers' recent orders by what the database holds now."""
        assert self.orders_since is not None
        for start in range(0, len(customer_ids), ORDER_READ_CHUNK):
            chunk = customer_ids[start : start + ORDER_READ_CHUNK]
            rows = list(
                self._order_rows(_completed_since(self.orders_since).filter(customer_id__in=chunk))
            )
            duck = self._duck
            duck.execute("BEGIN")
            duck.execute(
                "DELETE FROM delta_recent_orders WHERE customer_id IN (SELECT unnest(?))", [chunk]
            )
            if rows:
                _insert_columns(duck, "delta_recent_orders", rows)
            duck.execute("COMMIT")

    @staticmethod
    def _stream(
        queryset: Any, limit: int | None = None, *, stamped: bool = False
    ) -> Iterable[Sequence[Any]]:
        """The customers' COLUMNS (and `updated_at` last, when `stamped`)."""
        # JSON text straight from the database: decoding and encoding each customer's
        # attributes in Python would cost seconds of a load at 1M customers.
        rows = queryset.annotate(
            attributes_text=Cast("attributes", output_field=TextField())
        ).values_list(*COLUMNS, *(("updated_at",) if stamped else ()))
        if limit is not None:
            rows = rows[:limit]
        return rows.iterator(chunk_size=10_000)

    @staticmethod
    def _write_csv(path: Path, rows: Iterable[Sequence[Any]]) -> int:
        written = 0
        with path.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            for row in rows:
                writer.writerow("\\N" if value is None else value for value in row)
                written += 1
        return written

    # --- Queries ----------------------------------------------------------------------------

    def _where(self, rules: RuleGroup, today: date) -> tuple[str, list[Any]]:
        with self._lock:  # the dictionaries must not change while the clause is built
            where = Where(today, self)
            sql = where.group(rules)
        return sql or "TRUE", where.params

    def count(self, rules: RuleGroup, *, today: date) -> int:
        sql, params = self._where(rules, today)
        return int(self._fetch(f"SELECT COUNT(*) FROM customers WHERE {sql}", params)[0][0])

    def total(self) -> int:
        """How many customers the copy holds (kept until the delta changes: every preview asks,
        and through the delta's anti-join it is a scan)."""
        with self._lock:
            if self._total is None:
                self._total = int(self._fetch("SELECT COUNT(*) FROM customers", [])[0][0])
            return self._total

    def matching_ids(self, rules: RuleGroup, *, today: date) -> set[int]:
        sql, params = self._where(rules, today)
        return {row[0] for row in self._fetch(f"SELECT id FROM customers WHERE {sql}", params)}

    def top_ids(self, rules: RuleGroup, *, today: date, limit: int) -> list[int]:
        """Ids of the biggest spenders that match, as the SQL sample orders them."""
        sql, params = self._where(rules, today)
        with self._lock:  # the generation and the delta of one moment
            manifest = self.manifest
            if manifest is not None and manifest.customers_by_spend:
                return self._top_ids_in_order(sql, params, limit=limit)
            order = f"ORDER BY cents DESC, id DESC LIMIT {int(limit)}"
            rows = self._fetch(f"SELECT id FROM customers WHERE {sql} {order}", params)
        return [row[0] for row in rows]

    def _top_ids_in_order(self, sql: str, params: list[Any], *, limit: int) -> list[int]:
        """`top_ids` from a generation stored biggest spenders first: the matching unchanged
        customers of its first rows, a growing slice at a time (every row of a slice outranks
        every row of the next), until `limit` are found, merged with the delta's top rows. Each
        slice is still ordered by its query: DuckDB does not keep storage order through joins."""
        table = self._tables["customers"]
        found: list[tuple[Any, ...]] = []
        start, size = 0, TOP_FIRST_SLICE_ROWS
        try:
            while start < table.num_rows and len(found) < limit:
                self._duck.register("base_slice", table.slice(start, size))
                found += self._fetch(
                    f"SELECT id, cents FROM base_slice WHERE {sql} "
                    "AND id NOT IN (SELECT id FROM changed) "
                    f"ORDER BY cents DESC, id DESC LIMIT {int(limit) - len(found)}",
                    params,
                )
                start, size = start + size, size * 4
        finally:
            self._duck.unregister("base_slice")
        delta = self._fetch(
            f"SELECT id, cents FROM delta_customers WHERE {sql} "
            f"ORDER BY cents DESC, id DESC LIMIT {int(limit)}",
            params,
        )
        rows = sorted([*found, *delta], key=lambda row: (row[1], row[0]), reverse=True)
        return [row[0] for row in rows[:limit]]

    def funnel_counts(self, rules: RuleGroup, *, today: date) -> list[int]:
        """The funnel of the rules' top-level conditions (see `selectors._funnel_counts`): each
        condition once in the SQL, the index of the first one each customer fails (`all`) or
        passes (`any`) counted in one scan. A NULL test counts as not passed, as in WHERE."""
        if not rules.conditions:
            return []
        if len(rules.conditions) == 1:
            # One step is the count itself: a plain WHERE (its filters pushed into the scan) is
            # several times cheaper than the histogram's CASE over every row.
            return [self.count(rules, today=today)]
        with self._lock:
            where = Where(today, self)
            tests = [
                where.group(RuleGroup(match="all", conditions=[node])) or "TRUE"
                for node in rules.conditions
            ]
        when = "NOT COALESCE({}, FALSE)" if rules.match == "all" else "COALESCE({}, FALSE)"
        cases = " ".join(
            f"WHEN {when.format(test)} THEN {index}" for index, test in enumerate(tests)
        )
        first = f"CASE {cases} ELSE {len(tests)} END"
        rows = self._fetch(
            f"SELECT {first} AS first, COUNT(*) FROM customers GROUP BY first", where.params
        )
        histogram = {int(at): int(count) for at, count in rows}
        if rules.match == "all":
            return [sum(n for at, n in histogram.items() if at > i) for i in range(len(tests))]
        return [sum(n for at, n in histogram.items() if at <= i) for i in range(len(tests))]

    def _fetch(self, sql: str, params: list[Any]) -> list[tuple[Any, ...]]:
        with self._lock:
            budget = active_timeout_seconds()
            if budget is None:
                return list(self._duck.execute(sql, params).fetchall())
            # The statement timeout of the enclosing request or task holds here too: DuckDB
            # stops the query when interrupted (the lock keeps any other query off it).
            timer = threading.Timer(budget, self._duck.interrupt)
            timer.start()
            try:
                return list(self._duck.execute(sql, params).fetchall())
            except duckdb.InterruptException as error:
                raise StatementTimeoutError(budget) from error
            finally:
                timer.cancel()

    # --- For other readers (segment facts) --------------------------------------------------

    def holds_orders_since(self, moment: datetime) -> bool:
        """Whether `recent_orders` holds every completed order from `moment` on."""
        return self.orders_since is not None and self.orders_since <= moment

    def where(self, rules: RuleGroup, *, today: date) -> tuple[str | None, list[Any]]:
        """The WHERE clause over `customers` for the rules and its parameters; None when the
        rules select everyone."""
        with self._lock:
            where = Where(today, self)
            sql = where.group(rules)
        return sql, where.params if sql is not None else []

    def fetch(self, sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
        """Run a read over the snapshot's tables (`customers`, `tags`, `recent_orders`)."""
        return self._fetch(sql, list(params))

    @property
    def lock(self) -> threading.RLock:
        """Held across several reads, it keeps a refresh from landing between them."""
        return self._lock


# --- The process's copy ---------------------------------------------------------------------

_shared: CustomerSnapshot | None = None
_shared_lock = threading.Lock()
# One thread of the process opens a generation at a time; the others keep what they have.
_opening = threading.Lock()
_build_thread: threading.Thread | None = None
_compact_thread: threading.Thread | None = None
_build_failed_at: float | None = None
_build_tried_at = -BUILD_TRY_EVERY_SECONDS


def snapshot_ready_or_start_build(*, wait_seconds: float = 0.0) -> CustomerSnapshot | None:
    """The process's copy, refreshed and exact, or None (use SQL then). Never waits for a
    build: when no generation exists, or the delta would be too large, it starts building one
    in a background thread (the process that gets the lock builds; the others wait for its
    file). It opens a newer generation when one was published (milliseconds: the files are
    mapped, not read), and starts compacting its delta into the next one in the background
    when due. `wait_seconds` waits that long for a generation (the insights worker: its SQL
    path is slower than a build)."""
    if duckdb is None:
        return None
    directory = Path(settings.MINICRM_SNAPSHOT_DIR)
    deadline = clock.monotonic() + wait_seconds
    while True:
        snapshot = _snapshot_current(directory)
        if snapshot is not None or clock.monotonic() >= deadline:
            return snapshot
        clock.sleep(min(0.1, max(deadline - clock.monotonic(), 0.0)))


def _snapshot_current(directory: Path) -> CustomerSnapshot | None:
    global _shared
    manifest = generation_current(directory)
    if manifest is None:
        _build_start(directory, replacing=None)
        return None
    shared = _shared if _shared is not None and _shared.directory == directory else None
    if shared is None or shared.generation != manifest.name:
        # Kept meanwhile: the previous generation plus its delta is just as exact.
        shared = _generation_switch(directory, manifest) or shared
        if shared is None:
            return None
    try:
        usable = shared.refresh(rebuild=False)
    except Exception:
        # A copy that could not be brought up to date must not answer (it would not be exact)
        # nor fail the request: the caller uses SQL, and the generation is opened afresh.
        logger.exception("Refreshing the customer snapshot failed; using SQL, reopening it")
        with _shared_lock:
            if _shared is shared:
                _shared = None
        return None
    if not usable:
        _build_start(directory, replacing=shared.generation)
        return None
    if shared.compaction_due():
        _compaction_start(shared)
    return shared


def _generation_switch(directory: Path, manifest: Manifest) -> CustomerSnapshot | None:
    """Open `manifest`'s generation, bring it up to date and make it the process's copy; None
    if another thread is opening one, or it cannot be used (a build is started then)."""
    global _shared
    if not _opening.acquire(blocking=False):
        return None
    try:
        snapshot = CustomerSnapshot(directory=directory)
        snapshot.attach(manifest)
        if not snapshot.refresh(rebuild=False):
            _build_start(directory, replacing=manifest.name)
            return None
        with _shared_lock:
            _shared = snapshot
        return snapshot
    except Exception:
        logger.exception(
            "Opening snapshot generation %s failed; using SQL, rebuilding it", manifest.name
        )
        _build_start(directory, replacing=manifest.name)
        return None
    finally:
        _opening.release()


def generation_build(*, directory: Path, replacing: str | None) -> bool:
    """Write a generation from the database and publish it, if this process gets the build
    lock and `replacing` (None: no generation) is still the current one; whether it did."""
    with build_lock(directory) as mine:
        if not mine:
            return False
        current = generation_current(directory)
        if (current.name if current is not None else None) != replacing:
            return False  # another process published one meanwhile
        builder = CustomerSnapshot(directory=directory)
        folder, manifest = builder.generation_write_from_database()
        generation_publish(directory, folder, manifest)
        return True


def _build_start(directory: Path, *, replacing: str | None) -> None:
    """Start `generation_build` in a background thread, unless one runs in this process or
    the last one failed less than LOAD_RETRY_SECONDS ago."""
    global _build_thread, _build_tried_at
    with _shared_lock:
        if _build_thread is not None and _build_thread.is_alive():
            return
        now = clock.monotonic()
        failed = _build_failed_at
        if failed is not None and now - failed < LOAD_RETRY_SECONDS:
            return
        if now - _build_tried_at < BUILD_TRY_EVERY_SECONDS:
            return
        _build_tried_at = now
        _build_thread = threading.Thread(
            target=_build_run,
            args=(directory, replacing),
            name="segment-snapshot-build",
            daemon=True,
        )
        _build_thread.start()


def _build_run(directory: Path, replacing: str | None) -> None:
    global _build_failed_at
    try:
        generation_build(directory=directory, replacing=replacing)
    except Exception:  # previews stay on SQL; logged, tried again after a pause
        logger.exception("Building the customer preview snapshot failed")
        _build_failed_at = clock.monotonic()
    else:
        _build_failed_at = None
    finally:
        close_old_connections()
        connection.close()


def _compaction_start(snapshot: CustomerSnapshot) -> None:
    """Start `snapshot.compact()` in a background thread unless one runs in this process."""
    global _compact_thread
    with _shared_lock:
        if _compact_thread is not None and _compact_thread.is_alive():
            return

        def run() -> None:
            try:
                snapshot.compact()
            except Exception:  # the delta stays; tried again at the next refresh
                logger.exception("Compacting the customer preview snapshot failed")

        _compact_thread = threading.Thread(target=run, name="segment-snapshot-compact", daemon=True)
        _compact_thread.start()


def snapshot_state() -> dict[str, Any]:
    """The state of the machine's copy as this process sees it, for a readiness check (reads
    files only, never the database): "ready" (a generation exists; `opened` says whether this
    process has it open), "building", "failed" (the last build here failed; SQL meanwhile) or
    "absent"."""
    directory = Path(settings.MINICRM_SNAPSHOT_DIR)
    manifest = generation_current(directory)
    shared = _shared if _shared is not None and _shared.directory == directory else None
    opened = shared is not None and not shared.stale
    building = (_build_thread is not None and _build_thread.is_alive()) or build_running(directory)
    failed = _build_failed_at is not None and not building
    if manifest is not None and not (shared is not None and shared.stale):
        state = "ready"
    elif building:
        state = "building"
    elif failed:
        state = "failed"
    else:
        state = "absent"
    return {
        "state": state,
        "enabled": bool(settings.MINICRM_PREVIEW_SNAPSHOT) and duckdb is not None,
        "opened": opened,
        "generation": manifest.name if manifest is not None else None,
        "watermark": manifest.watermark if manifest is not None else None,
        "age_seconds": round(clock.time() - manifest.created, 3) if manifest is not None else None,
        "delta_rows": shared.delta_rows if shared is not None else 0,
    }
