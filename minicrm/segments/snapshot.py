"""An in-process columnar copy of the customer stats (DuckDB) for fast, exact live previews.

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
"""
# ruff: noqa: S608  (SQL here is assembled from fixed fragments; values are always parameters)

import csv
import logging
import tempfile
import threading
import time as clock
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from django.db import close_old_connections, connection
from django.utils import timezone

from minicrm.customers.models import Customer, CustomerTag

from .compiler import day_start
from .rules import Condition, RuleGroup

try:
    import duckdb
except ImportError:  # pragma: no cover - duckdb is optional; previews then use SQL only
    duckdb = None  # type: ignore[assignment]

logger = logging.getLogger(__name__)

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# Rows written by a transaction that committed late carry an `updated_at` from before they became
# visible; re-reading this window on every refresh catches them (upserts are idempotent).
WATERMARK_OVERLAP = timedelta(minutes=2)
# Deletions leave no `updated_at`; the id sets are compared this often.
RECONCILE_EVERY_SECONDS = 30.0
# Above this many changed rows a refresh reloads everything (cheaper than row-by-row upserts).
FULL_RELOAD_ABOVE = 50_000
ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")

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
)
SCHEMA = """
CREATE OR REPLACE TABLE customers (
    id BIGINT PRIMARY KEY, cents BIGINT NOT NULL, order_count BIGINT NOT NULL,
    first_order_at BIGINT, last_order_at BIGINT, signed_up_at BIGINT,
    city VARCHAR NOT NULL, country VARCHAR NOT NULL, email VARCHAR NOT NULL,
    city_lc VARCHAR NOT NULL, country_lc VARCHAR NOT NULL, email_lc VARCHAR NOT NULL
);
CREATE OR REPLACE TABLE tags (customer_id BIGINT NOT NULL, name VARCHAR NOT NULL);
"""
DATE_COLUMNS = {
    "last_order_date": "last_order_at",
    "first_order_date": "first_order_at",
    "signup_date": "signed_up_at",
}


def ascii_lower(text: str) -> str:
    return text.translate(ASCII_LOWER)


def micros(moment: datetime | None) -> int | None:
    return None if moment is None else (moment - EPOCH) // timedelta(microseconds=1)


def cents(amount: Decimal | float | int) -> int:
    # Stats hold whole cents; rounding also absorbs SQLite's binary-float noise.
    return int((Decimal(str(amount)) * 100).to_integral_value())


def _row(values: Sequence[Any]) -> tuple[Any, ...]:
    (pk, spend, count, first, last, signed, city, country, email) = values
    city, country, email = city or "", country or "", email or ""
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
        ascii_lower(city),
        ascii_lower(country),
        ascii_lower(email),
    )


class Where:
    """Builds one DuckDB WHERE clause with the compiler's semantics; values go to `params`."""

    def __init__(self, today: date) -> None:
        self.today = today
        self.params: list[Any] = []

    def p(self, value: Any) -> str:
        self.params.append(value)
        return "?"

    def group(self, group: RuleGroup) -> str | None:
        """SQL for the group, or None for "every customer" (an empty group)."""
        mark = len(self.params)
        parts: list[str] = []
        for node in group.conditions:
            sql = self.group(node) if isinstance(node, RuleGroup) else self.condition(node)
            if sql is None:
                if group.match == "any":
                    del self.params[mark:]  # the SQL built so far is dropped, so its values too
                    return None
                continue
            parts.append(sql)
        if not parts:
            return None
        return "(" + (" AND " if group.match == "all" else " OR ").join(parts) + ")"

    def condition(self, condition: Condition) -> str:
        handler: Callable[[Condition], str] = {
            "total_spend": self._money,
            "order_count": self._count,
            "avg_order_value": self._average,
            "days_since_last_order": self._days_since,
            "tags": self._tags,
        }.get(condition.field) or (self._date if condition.field in DATE_COLUMNS else self._text)
        return handler(condition)

    def _compare(self, column: str, op: str, value: Any) -> str:
        if op == "between":
            return f"({column} BETWEEN {self.p(value[0])} AND {self.p(value[1])})"
        symbol = {"eq": "=", "ne": "<>", "gt": ">", "gte": ">=", "lt": "<", "lte": "<="}[op]
        return f"{column} {symbol} {self.p(value)}"

    def _money(self, condition: Condition) -> str:
        value = condition.value
        whole = tuple(cents(v) for v in value) if condition.operator == "between" else cents(value)
        return self._compare("cents", condition.operator, whole)

    def _count(self, condition: Condition) -> str:
        return self._compare("order_count", condition.operator, condition.value)

    def _aov_at_least(self, target: int) -> str:
        # round_half_even(cents / n) >= x, in whole numbers (see compiler._aov_at_least).
        if target <= 0:
            return "(order_count > 0)"
        sign = ">=" if target % 2 == 0 else ">"
        limit = self.p(2 * target - 1)
        return f"(order_count > 0 AND 2 * cents::HUGEINT {sign} order_count * {limit}::HUGEINT)"

    def _aov_below(self, target: int) -> str:
        return f"(order_count > 0 AND NOT {self._aov_at_least(target)})"

    def _average(self, condition: Condition) -> str:
        op, value = condition.operator, condition.value
        if op == "between":
            low, high = cents(value[0]), cents(value[1])
            return f"({self._aov_at_least(low)} AND {self._aov_below(high + 1)})"
        x = cents(value)
        choices: dict[str, Callable[[], str]] = {
            "gt": lambda: self._aov_at_least(x + 1),
            "gte": lambda: self._aov_at_least(x),
            "lt": lambda: self._aov_below(x),
            "lte": lambda: self._aov_below(x + 1),
            "eq": lambda: f"({self._aov_at_least(x)} AND {self._aov_below(x + 1)})",
            "ne": lambda: (
                f"(order_count > 0 AND NOT ({self._aov_at_least(x)} AND {self._aov_below(x + 1)}))"
            ),
        }
        return choices[op]()

    def _start(self, day: date) -> str:
        return self.p(micros(day_start(day)))

    def _on_or_after(self, column: str, day: date) -> str:
        return f"{column} >= {self._start(day)}"

    def _before(self, column: str, day: date) -> str:
        return f"{column} < {self._start(day)}"

    def _days(self, column: str, first: date, last: date) -> str:
        after = self._on_or_after(column, first)
        return f"({after} AND {self._before(column, last + timedelta(days=1))})"

    def _date(self, condition: Condition) -> str:
        column = DATE_COLUMNS[condition.field]
        op, value = condition.operator, condition.value
        if op == "is_empty":
            return f"{column} IS NULL"
        if op == "is_not_empty":
            return f"{column} IS NOT NULL"
        if op == "before":
            return self._before(column, value)
        if op == "after":
            return self._on_or_after(column, value + timedelta(days=1))
        if op == "on":
            return self._days(column, value, value)
        if op == "between":
            return self._days(column, value[0], value[1])
        since = self.today - timedelta(days=value)
        if op == "in_last_days":
            return self._on_or_after(column, since)
        return f"({column} IS NULL OR {self._before(column, since)})"

    def _days_since(self, condition: Condition) -> str:
        column, op, value = "last_order_at", condition.operator, condition.value

        def day(days: int) -> date:
            return self.today - timedelta(days=days)

        if op == "between":
            return self._days(column, day(value[1]), day(value[0]))
        choices: dict[str, Callable[[], str]] = {
            "eq": lambda: self._days(column, day(value), day(value)),
            "ne": lambda: (
                f"({self._before(column, day(value))} OR "
                f"{self._on_or_after(column, day(value - 1))})"
            ),
            "gt": lambda: self._before(column, day(value)),
            "gte": lambda: self._before(column, day(value - 1)),
            "lt": lambda: self._on_or_after(column, day(value - 1)),
            "lte": lambda: self._on_or_after(column, day(value)),
        }
        return choices[op]()

    def _text(self, condition: Condition) -> str:
        raw, op, value = condition.field, condition.operator, condition.value
        column = f"{raw}_lc"
        if op == "is_empty":
            return f"{raw} = ''"
        if op == "is_not_empty":
            return f"{raw} <> ''"
        if op in ("in", "not_in"):
            marks = ", ".join(self.p(ascii_lower(item)) for item in dict.fromkeys(value))
            if op == "in":
                return f"{column} IN ({marks})"
            return f"({raw} <> '' AND {column} NOT IN ({marks}))"
        target = self.p(ascii_lower(value))
        return {
            "eq": f"{column} = {target}",
            "ne": f"({raw} <> '' AND {column} <> {target})",
            "contains": f"contains({column}, {target})",
            "not_contains": f"({raw} <> '' AND NOT contains({column}, {target}))",
            "starts_with": f"starts_with({column}, {target})",
        }[op]

    def _tags(self, condition: Condition) -> str:
        names = list(dict.fromkeys(name.lower() for name in condition.value))

        def having(*wanted: str) -> str:
            marks = ", ".join(self.p(name) for name in wanted)
            return f"id IN (SELECT customer_id FROM tags WHERE name IN ({marks}))"

        if condition.operator == "has_any":
            return having(*names)
        if condition.operator == "has_none":
            return f"NOT {having(*names)}"
        return "(" + " AND ".join(having(name) for name in names) + ")"


class CustomerSnapshot:
    """One process's columnar copy of the customers, refreshed before each use."""

    def __init__(self) -> None:
        if duckdb is None:
            raise RuntimeError("The preview snapshot needs the duckdb package.")
        self._lock = threading.RLock()
        self._duck: Any = None
        self._watermark: datetime | None = None
        self._reconciled_at = 0.0
        self._loading = False

    @property
    def loaded(self) -> bool:
        return self._duck is not None

    # --- Loading and refreshing -------------------------------------------------------------

    def load(self) -> None:
        """Read every customer and tag into a new DuckDB database (seconds at 1M rows)."""
        started = timezone.now()
        duck = duckdb.connect()
        duck.execute(SCHEMA)
        with tempfile.TemporaryDirectory() as folder:
            customers = (_row(values) for values in self._stream(Customer.objects.order_by()))
            tags = CustomerTag.objects.order_by().values_list("customer_id", "name")
            for table, rows, columns in [
                ("customers", customers, self._csv_columns()),
                (
                    "tags",
                    tags.iterator(chunk_size=10_000),
                    "{'customer_id': 'BIGINT', 'name': 'VARCHAR'}",
                ),
            ]:
                path = Path(folder) / f"{table}.csv"
                if self._write_csv(path, rows):
                    duck.execute(
                        f"INSERT INTO {table} SELECT * FROM read_csv('{path}', header=false, "
                        f"quote='\"', escape='\"', nullstr='\\N', columns={columns})"
                    )
        with self._lock:
            self._duck = duck
            self._watermark = started
            self._reconciled_at = clock.monotonic()

    def load_in_background(self) -> None:
        """Start loading in a thread (previews use SQL meanwhile); no-op if already started."""
        with self._lock:
            if self._loading or self.loaded:
                return
            self._loading = True

        def run() -> None:
            try:
                self.load()
            except Exception:  # a failed load leaves previews on SQL; logged, retried later
                logger.exception("Loading the customer preview snapshot failed")
            finally:
                with self._lock:
                    self._loading = False
                close_old_connections()
                connection.close()

        threading.Thread(target=run, name="segment-snapshot", daemon=True).start()

    def refresh(self) -> None:
        """Apply every customer change since the last refresh (exactness before each use)."""
        with self._lock:
            assert self._watermark is not None
            since = self._watermark - WATERMARK_OVERLAP
            now = timezone.now()
            changed = Customer.objects.filter(updated_at__gte=since).order_by()
            rows = [_row(values) for values in self._stream(changed, limit=FULL_RELOAD_ABOVE + 1)]
            if len(rows) > FULL_RELOAD_ABOVE:
                self.load()
                return
            if rows:
                ids = [row[0] for row in rows]
                self._upsert(ids, rows)
            if clock.monotonic() - self._reconciled_at > RECONCILE_EVERY_SECONDS:
                self._reconcile()
            self._watermark = now

    def _upsert(self, ids: list[int], rows: list[tuple[Any, ...]]) -> None:
        marks = ", ".join("?" for _ in ids)
        tags = list(
            CustomerTag.objects.filter(customer_id__in=ids).values_list("customer_id", "name")
        )
        duck = self._duck
        duck.execute("BEGIN")
        duck.execute(f"DELETE FROM customers WHERE id IN ({marks})", ids)
        duck.execute(f"DELETE FROM tags WHERE customer_id IN ({marks})", ids)
        duck.executemany(f"INSERT INTO customers VALUES ({', '.join('?' * 12)})", rows)
        if tags:
            duck.executemany("INSERT INTO tags VALUES (?, ?)", tags)
        duck.execute("COMMIT")

    def _reconcile(self) -> None:
        """Drop customers that were deleted (deletes move no watermark)."""
        present = set(Customer.objects.values_list("id", flat=True).iterator(chunk_size=50_000))
        held = {row[0] for row in self._duck.execute("SELECT id FROM customers").fetchall()}
        gone = sorted(held - present)
        for start in range(0, len(gone), 10_000):
            chunk = gone[start : start + 10_000]
            marks = ", ".join("?" for _ in chunk)
            self._duck.execute(f"DELETE FROM customers WHERE id IN ({marks})", chunk)
            self._duck.execute(f"DELETE FROM tags WHERE customer_id IN ({marks})", chunk)
        self._reconciled_at = clock.monotonic()

    @staticmethod
    def _stream(queryset: Any, limit: int | None = None) -> Iterable[Sequence[Any]]:
        rows = queryset.values_list(*COLUMNS)
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

    @staticmethod
    def _csv_columns() -> str:
        types = ["BIGINT"] * 6 + ["VARCHAR"] * 6
        names = ["id", "cents", "order_count", "first_order_at", "last_order_at"]
        names += ["signed_up_at", "city", "country", "email", "city_lc", "country_lc", "email_lc"]
        return "{" + ", ".join(f"'{n}': '{t}'" for n, t in zip(names, types, strict=True)) + "}"

    # --- Queries ----------------------------------------------------------------------------

    def _where(self, rules: RuleGroup, today: date) -> tuple[str, list[Any]]:
        where = Where(today)
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

    def funnel_counts(self, steps: list[RuleGroup], *, today: date) -> list[int]:
        where = Where(today)
        filters = [f"COUNT(*) FILTER (WHERE {where.group(step) or 'TRUE'})" for step in steps]
        rows = self._fetch(f"SELECT {', '.join(filters)} FROM customers", where.params)
        return [int(value) for value in rows[0]]

    def _fetch(self, sql: str, params: list[Any]) -> list[tuple[Any, ...]]:
        with self._lock:
            return list(self._duck.execute(sql, params).fetchall())


_shared: CustomerSnapshot | None = None
_shared_lock = threading.Lock()


def shared_snapshot() -> CustomerSnapshot | None:
    """The process's snapshot, refreshed and ready, or None while it loads (use SQL then)."""
    global _shared
    if duckdb is None:
        return None
    with _shared_lock:
        if _shared is None:
            _shared = CustomerSnapshot()
    if not _shared.loaded:
        _shared.load_in_background()
        return None
    _shared.refresh()
    return _shared
