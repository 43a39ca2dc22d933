"""An in-process columnar copy of the customer stats (DuckDB) for fast, exact live previews
and segment facts.

DESIGN.md, "Scale": at a million customers a row-store database scans too slowly to count an
arbitrary rule within a keystroke's budget, while a column store counts it in milliseconds.
This module keeps such a copy per process and brings it up to date before every preview from
the `updated_at` watermark (every write to a customer, its stats or its tags moves
`updated_at`), so counts stay exact. The SQL compiler stays the source of truth for saved
segments, members, exports and campaigns; the property tests check both select the same
customers.

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
import tempfile
import threading
import time as clock
from collections.abc import Iterable, Iterator, Sequence
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

from django.db import close_old_connections, connection
from django.db.models import BigIntegerField, Count, TextField
from django.db.models.expressions import RawSQL
from django.db.models.functions import Cast
from django.utils import timezone

from minicrm.core.statement_timeout import StatementTimeoutError, active_timeout_seconds
from minicrm.customers.models import Customer, CustomerTag, Order

from .compiler import day_start, today_in_zone
from .duck_where import CODED_TEXT, Where, ascii_lower, cents, micros
from .rules import RuleGroup

try:
    import duckdb
except ImportError:  # pragma: no cover - duckdb is optional; previews then use SQL only
    duckdb = None  # type: ignore[assignment]

logger = logging.getLogger(__name__)

__all__ = ["CustomerSnapshot", "cents", "micros", "shared_snapshot"]
# The most common tags get one bit each of `tag_bits`; other tags use the `tags` table.
TAG_BITS = 63

# Rows written by a transaction that committed late carry an `updated_at` from before they became
# visible; re-reading this window on every refresh catches them (upserts are idempotent).
WATERMARK_OVERLAP = timedelta(minutes=2)
# Deletions leave no `updated_at`; the id sets are compared this often.
RECONCILE_EVERY_SECONDS = 30.0
# Above this many changed rows a refresh reloads everything (cheaper than row-by-row upserts).
FULL_RELOAD_ABOVE = 50_000
# Above this many new orders (by id) a refresh reloads everything too.
FULL_RELOAD_ABOVE_ORDERS = 500_000
# After a failed load, callers use SQL for this long before a new load is tried: a load costs
# seconds of CPU at scale, and a cause that persists must not turn every preview into one.
LOAD_RETRY_SECONDS = 300.0
# Completed orders kept in `recent_orders`: the insight trend reads the last 2 x 90 days; the
# margin keeps those windows covered across day changes and time zones without a reload (the
# held range only ever starts earlier than needed as days pass).
RECENT_ORDER_DAYS = 2 * 90 + 30
# Customers per query when their recent orders are read again (an IN list of ids).
ORDER_READ_CHUNK = 2_000

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
SCHEMA = """
CREATE OR REPLACE TABLE customers (
    id BIGINT PRIMARY KEY, cents BIGINT NOT NULL, order_count BIGINT NOT NULL,
    first_order_at BIGINT, last_order_at BIGINT, signed_up_at BIGINT,
    city VARCHAR NOT NULL, country VARCHAR NOT NULL, email VARCHAR NOT NULL,
    city_lc VARCHAR NOT NULL, country_lc VARCHAR NOT NULL, email_lc VARCHAR NOT NULL,
    city_code INTEGER NOT NULL, country_code INTEGER NOT NULL, tag_bits BIGINT NOT NULL,
    marketing_consent BOOLEAN NOT NULL, unsubscribed BOOLEAN NOT NULL, attributes VARCHAR
);
CREATE OR REPLACE TABLE tags (customer_id BIGINT NOT NULL, name VARCHAR NOT NULL);
CREATE OR REPLACE TABLE recent_orders (
    id BIGINT NOT NULL, customer_id BIGINT NOT NULL, ordered_at BIGINT NOT NULL,
    cents BIGINT NOT NULL
);
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


class CustomerSnapshot:
    """One process's columnar copy of the customers, refreshed before each use."""

    def __init__(self, *, recent_order_days: int | None = None) -> None:
        if duckdb is None:
            raise RuntimeError("The preview snapshot needs the duckdb package.")
        self._lock = threading.RLock()
        self._duck: Any = None
        self._watermark: datetime | None = None
        self._reconciled_at = 0.0
        self._loading = False
        self._failed_at: float | None = None
        self.recent_order_days = recent_order_days or RECENT_ORDER_DAYS
        # `recent_orders` holds every completed order ordered at or after this instant...
        self.orders_since: datetime | None = None
        # ...with an id up to this one, or above it and seen by a refresh since.
        self._top_order_id = 0
        # The `updated_at` of each customer the last refresh read (in the watermark overlap).
        self._applied: dict[int, datetime] = {}
        self._reset_dictionaries()

    def _reset_dictionaries(self) -> None:
        self.codes: dict[str, dict[str, int]] = {field: {} for field in CODED_TEXT}
        self.tag_bits: dict[str, int] = {}
        self.tag_names: set[str] = set()
        self.max_order_count = 0

    @property
    def loaded(self) -> bool:
        return self._duck is not None

    # --- Loading and refreshing -------------------------------------------------------------

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
        """Read every customer and tag into a new DuckDB database (seconds at 1M rows)."""
        with self._lock:
            self._load()

    def _load(self) -> None:
        started = timezone.now()
        self._reset_dictionaries()
        duck = duckdb.connect()
        duck.execute(SCHEMA)
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
        with tempfile.TemporaryDirectory() as folder:
            tags_path = Path(folder) / "tags.csv"
            tag_rows = CustomerTag.objects.order_by().values_list("customer_id", "name")

            def tags_with_bits() -> Iterable[tuple[int, str]]:
                for customer_id, name in tag_rows.iterator(chunk_size=10_000):
                    if name in self.tag_bits:
                        bits_of[customer_id] = bits_of.get(customer_id, 0) | (
                            1 << self.tag_bits[name]
                        )
                    yield customer_id, name

            if self._write_csv(tags_path, tags_with_bits()):
                self._read_csv(duck, "tags", tags_path, TAG_CSV_COLUMNS)
            customers_path = Path(folder) / "customers.csv"
            customers = (
                self._row(values, bits_of.get(values[0], 0))
                for values in self._stream(Customer.objects.order_by())
            )
            if self._write_csv(customers_path, customers):
                self._read_csv(duck, "customers", customers_path, CSV_COLUMNS)
            # Orders last: one changed during the load moves its customer's `updated_at`
            # (re-read at the next refresh from `started`); one added has an id above `top`.
            orders_since = day_start(today_in_zone() - timedelta(days=self.recent_order_days))
            top = Order.objects.order_by("-id").values_list("id", flat=True).first() or 0
            self._load_orders(duck, Path(folder) / "orders.csv", since=orders_since, top=top)
        self._duck = duck
        self._watermark = started
        self._applied = {}
        self.orders_since = orders_since
        self._top_order_id = top
        self._reconciled_at = clock.monotonic()

    @staticmethod
    def _read_csv(duck: Any, table: str, path: Path, columns: str, select: str = "*") -> None:
        duck.execute(
            f"INSERT INTO {table} SELECT {select} FROM read_csv('{path}', header=false, "
            f"quote='\"', escape='\"', nullstr='\\N', columns={columns})"
        )

    def _load_orders(self, duck: Any, path: Path, *, since: datetime, top: int) -> None:
        """Fill `recent_orders` with the completed orders from `since` with ids up to `top`."""
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
            if written:
                self._read_csv(
                    duck,
                    "recent_orders",
                    path,
                    ORDER_CSV_COLUMNS.replace(
                        "'ordered_at': 'BIGINT'", "'ordered_at': 'TIMESTAMP'"
                    ),
                    select="id, customer_id, epoch_us(ordered_at), cents",
                )
            return
        recent = _completed_since(since).filter(id__lte=top)
        if self._write_order_csv(path, recent):
            self._read_csv(duck, "recent_orders", path, ORDER_CSV_COLUMNS)

    def load_in_background(self) -> None:
        """Start loading in a thread (previews use SQL meanwhile); no-op if already started."""
        with self._lock:
            if self._loading or self.loaded:
                return
            failed_at = self._failed_at
            if failed_at is not None and clock.monotonic() - failed_at < LOAD_RETRY_SECONDS:
                return
            self._loading = True

        def run() -> None:
            try:
                self.load()
            except Exception:  # previews stay on SQL; logged, tried again after a pause
                logger.exception("Loading the customer preview snapshot failed")
                self._failed_at = clock.monotonic()
            else:
                self._failed_at = None
            finally:
                with self._lock:
                    self._loading = False
                close_old_connections()
                connection.close()

        threading.Thread(target=run, name="segment-snapshot", daemon=True).start()

    def discard(self) -> None:
        """Drop the copy; the next use loads it again (in the background)."""
        with self._lock:
            self._duck = None

    def wait_loaded(self, seconds: float) -> bool:
        """Wait up to `seconds` for a load under way; whether the snapshot is loaded."""
        deadline = clock.monotonic() + seconds
        while not self.loaded and self._loading and clock.monotonic() < deadline:
            clock.sleep(min(0.1, max(deadline - clock.monotonic(), 0.0)))
        return self.loaded

    def refresh(self) -> None:
        """Apply every customer change since the last refresh (exactness before each use)."""
        with self._lock:
            assert self._watermark is not None
            since = self._watermark - WATERMARK_OVERLAP
            now = timezone.now()
            changed = Customer.objects.filter(updated_at__gte=since).order_by()
            stamped = list(self._stream(changed, limit=FULL_RELOAD_ABOVE + 1, stamped=True))
            if len(stamped) > FULL_RELOAD_ABOVE:
                self._load()
                return
            # The overlap reads the same customers again for two minutes: those whose
            # `updated_at` is the one already applied are skipped.
            found = [row[:-1] for row in stamped if self._applied.get(row[0]) != row[-1]]
            top = Order.objects.order_by("-id").values_list("id", flat=True).first() or 0
            if top > self._top_order_id:
                # By id alone (a primary-key range): SQLite would otherwise walk the status
                # index over every recent order. Status and date are checked here.
                new = Order.objects.filter(id__gt=self._top_order_id, id__lte=top).order_by()
                rows = list(self._order_rows(new, limit=FULL_RELOAD_ABOVE_ORDERS + 1, status=True))
                if len(rows) > FULL_RELOAD_ABOVE_ORDERS:
                    self._load()
                    return
                assert self.orders_since is not None
                since_micros = micros(self.orders_since) or 0
                recent = [
                    row[:4]
                    for row in rows
                    if row[4] == Order.Status.COMPLETED and row[2] >= since_micros
                ]
                if recent:
                    self._add_orders(recent)
            if found:
                self._upsert(found)
                self._reread_orders([values[0] for values in found])
            if clock.monotonic() - self._reconciled_at > RECONCILE_EVERY_SECONDS:
                self._reconcile()
            self._watermark = now
            self._top_order_id = max(self._top_order_id, top)
            self._applied = {row[0]: row[-1] for row in stamped}

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
        duck.execute("DELETE FROM customers WHERE id IN (SELECT unnest(?))", [ids])
        duck.execute("DELETE FROM tags WHERE customer_id IN (SELECT unnest(?))", [ids])
        _insert_columns(duck, "customers", rows)
        if tags:
            _insert_columns(duck, "tags", tags)
        duck.execute("COMMIT")

    def _reconcile(self) -> None:
        """Drop customers that were deleted (deletes move no watermark)."""
        present = set(Customer.objects.values_list("id", flat=True).iterator(chunk_size=50_000))
        held = {row[0] for row in self._duck.execute("SELECT id FROM customers").fetchall()}
        gone = sorted(held - present)
        if gone:
            self._duck.execute("DELETE FROM customers WHERE id IN (SELECT unnest(?))", [gone])
            for table in ("tags", "recent_orders"):
                self._duck.execute(
                    f"DELETE FROM {table} WHERE customer_id IN (SELECT unnest(?))", [gone]
                )
        self._reconciled_at = clock.monotonic()

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
        """Insert these orders, replacing any row with the same id."""
        duck = self._duck
        duck.execute("BEGIN")
        duck.execute(
            "DELETE FROM recent_orders WHERE id IN (SELECT unnest(?))", [[row[0] for row in rows]]
        )
        _insert_columns(duck, "recent_orders", rows)
        duck.execute("COMMIT")

    def _reread_orders(self, customer_ids: list[int]) -> None:
        """Replace these customers' recent orders by what the database holds now."""
        assert self.orders_since is not None
        for start in range(0, len(customer_ids), ORDER_READ_CHUNK):
            chunk = customer_ids[start : start + ORDER_READ_CHUNK]
            rows = list(
                self._order_rows(_completed_since(self.orders_since).filter(customer_id__in=chunk))
            )
            duck = self._duck
            duck.execute("BEGIN")
            duck.execute(
                "DELETE FROM recent_orders WHERE customer_id IN (SELECT unnest(?))", [chunk]
            )
            if rows:
                _insert_columns(duck, "recent_orders", rows)
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
        return int(self._fetch("SELECT COUNT(*) FROM customers", [])[0][0])

    def matching_ids(self, rules: RuleGroup, *, today: date) -> set[int]:
        sql, params = self._where(rules, today)
        return {row[0] for row in self._fetch(f"SELECT id FROM customers WHERE {sql}", params)}

    def top_ids(self, rules: RuleGroup, *, today: date, limit: int) -> list[int]:
        """Ids of the biggest spenders that match, as the SQL sample orders them."""
        sql, params = self._where(rules, today)
        order = f"ORDER BY cents DESC, id DESC LIMIT {int(limit)}"
        return [
            row[0] for row in self._fetch(f"SELECT id FROM customers WHERE {sql} {order}", params)
        ]

    def funnel_counts(self, rules: RuleGroup, *, today: date) -> list[int]:
        """The funnel of the rules' top-level conditions (see `selectors._funnel_counts`): each
        condition once in the SQL, the index of the first one each customer fails (`all`) or
        passes (`any`) counted in one scan. A NULL test counts as not passed, as in WHERE."""
        if not rules.conditions:
            return []
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


_shared: CustomerSnapshot | None = None
_shared_lock = threading.Lock()


def shared_snapshot(*, wait_seconds: float = 0.0) -> CustomerSnapshot | None:
    """The process's snapshot, refreshed and ready, or None while it loads (use SQL then).

    The first call starts the load in the background; `wait_seconds` waits that long for a
    load under way (for callers whose SQL path is slower than the load, the insights worker)."""
    global _shared
    if duckdb is None:
        return None
    with _shared_lock:
        if _shared is None:
            _shared = CustomerSnapshot()
    if not _shared.loaded:
        _shared.load_in_background()
        if wait_seconds <= 0 or not _shared.wait_loaded(wait_seconds):
            return None
    try:
        _shared.refresh()
    except Exception:
        # A copy that could not be brought up to date must not answer (it would not be exact)
        # nor fail the request: the caller uses SQL, and the copy is loaded again from scratch.
        logger.exception("Refreshing the customer snapshot failed; using SQL, reloading it")
        _shared.discard()
        return None
    return _shared
