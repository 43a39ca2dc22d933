"""Writes for customers and orders: set-based bulk upserts and exact customer stats.

Every entry point (REST, CSV import, demo data) stores rows through these functions. A batch of
up to 10,000 rows costs a fixed number of statements whatever its size: one lookup of existing
rows per IN-list chunk, one `executemany` per kind of write and one for the stats, all in one
transaction, on SQLite, PostgreSQL and MariaDB alike.

Semantics callers rely on:
- Upserts are keyed by `external_id`, or by email (`key="email"`, for files from a shop that
  know no key of ours): an existing customer with that email is updated, a new one keeps the
  row's external_id or gets one derived from the email (`external_id_from_email`), so the same
  export imported twice never duplicates anyone. Orders may find their customer by email too.
  Several customers sharing the email is a row error (nothing says which one is meant).
- A row that changes nothing is counted `unchanged` and not
  written, so resending a payload leaves every row (`updated_at` included) as it was.
- A key left out of a row keeps the stored value (CSV files may carry only some columns).
- The same `external_id` twice in one batch: the first row is stored, later ones are row errors.
- Customer stats (`total_spend`, `order_count`, `first_order_at`, `last_order_at`) count
  completed orders only and change in the same transaction as the orders. New completed orders
  add to the stats in SQL; any change to an existing order (status, amount, date, customer) or a
  deletion recomputes the affected customers with one grouped aggregate.
- A row that would take a customer's stats past their columns (MAX_CUSTOMER_SPEND,
  MAX_CUSTOMER_ORDERS) is a row error, checked in row order; the other rows are stored.
- Every batch locks rows in id order and inserts in key order, so concurrent batches naming the
  same keys in any order wait for each other instead of deadlocking; what the database still
  reports as retryable (a deadlock victim, a concurrent insert of the same key) runs again.
"""

import gc
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from decimal import Decimal
from typing import Any, Literal

from django.db import transaction
from django.db.models import Count, DecimalField, Max, Min, Sum
from django.utils import timezone

from minicrm.core.db_retry import atomic_with_retry
from minicrm.core.errors import NotFoundError
from minicrm.core.limits import (
    MAX_BATCH_ROWS,
    MAX_CUSTOMER_ORDERS,
    MAX_CUSTOMER_SPEND,
)

from ..conversion import orders_convert
from ..ingestion import (
    BulkResult,
    CustomerByEmailRow,
    CustomerRow,
    OrderByEmailRow,
    OrderRow,
    RowError,
    external_id_from_email,
    rows_check_size,
    rows_validate,
)
from ..models import Customer, CustomerTag, Order
from ..sql import (
    chunks,
    column,
    datetime_adapter,
    executemany,
    ids_by_key,
    insert_sql,
    json_adapter,
    rows_by_key,
    update_sql,
)

__all__ = [
    "MAX_BATCH_ROWS",
    "BulkResult",
    "RowError",
    "customer_stats_rebuild",
    "customer_stats_recompute",
    "customers_bulk_upsert",
    "order_delete",
    "orders_bulk_delete",
    "orders_bulk_upsert",
]

Stats = tuple[Decimal, int, datetime | None, datetime | None]
# id, customer id, amount, original amount, currency, status, ordered_at
StoredOrder = tuple[int, int, Decimal, Decimal, str, str, datetime]
CustomerKey = Literal["external_id", "email"]

COMPLETED = Order.Status.COMPLETED.value
ZERO = Decimal("0")
CENTS = Decimal("0.01")
NO_STATS: Stats = (ZERO, 0, None, None)
# The customer columns an upsert writes besides external_id (tags live in CustomerTag rows).
CUSTOMER_FIELDS = (
    "email",
    "first_name",
    "last_name",
    "phone",
    "city",
    "country",
    "attributes",
    "signed_up_at",
    "marketing_consent",
)
STATS_FIELDS = ("total_spend", "order_count", "first_order_at", "last_order_at")
# The columns of a new order, in the order of the parameter tuples (the demo data uses them too).
ORDER_INSERT_FIELDS = (
    "external_id",
    "customer",
    "amount",
    "original_amount",
    "currency",
    "status",
    "ordered_at",
    "created_at",
    "updated_at",
)


@contextmanager
def _gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector for one batch.

    A 10,000-row batch allocates a few hundred thousand short-lived objects without reference
    cycles; the collections they trigger scan the whole heap and cost about an eighth of the
    batch (measured in bench/ingest.py). Reference counting still frees everything at once.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _atomic_with_retry(store: Callable[[], BulkResult]) -> BulkResult:
    """Run `store` in a transaction, again if a concurrent batch inserted one of our keys first
    (the retry sees its rows as existing and updates them) or the database chose this one as a
    deadlock victim. SQLite never retries: its IMMEDIATE transactions run one writer at a time.
    """
    return atomic_with_retry(store, retry_integrity_error=True)


def _with_errors(result: BulkResult, errors: list[RowError]) -> BulkResult:
    result.errors = sorted([*errors, *result.errors], key=lambda error: error.index)
    return result


# --- Customers --------------------------------------------------------------------------------


def customers_bulk_upsert(*, rows: Sequence[Any], key: CustomerKey = "external_id") -> BulkResult:
    """Create or update up to 10,000 customers by `external_id` (or by email, `key="email"`);
    invalid rows are reported.

    `tags`, when given, replace the customer's tags (stored lower-case, one CustomerTag each).
    """
    rows_check_size(rows)
    with _gc_paused():
        if key == "email":
            by_email, errors = rows_validate(rows, CustomerByEmailRow, key="email")
            return _with_errors(
                _atomic_with_retry(lambda: _customers_store_by_email(by_email)), errors
            )
        if key != "external_id":
            raise ValueError(f"Unknown customer key {key!r}")
        valid, errors = rows_validate(rows, CustomerRow)
        return _with_errors(_atomic_with_retry(lambda: _customers_store(valid)), errors)


def _external_ids_by_email(emails: Iterable[str]) -> dict[str, list[str]]:
    """Every stored customer's external_id under each of these emails, oldest customer first."""
    found: dict[str, list[str]] = {}
    stored = rows_by_key(Customer, "email", sorted(set(emails)), ["external_id"])
    for email, (external_id,) in stored:
        found.setdefault(email, []).append(external_id)
    return found


def _email_owner(email: str, owners: list[str], given: str | None) -> str | RowError:
    """The external_id that `email` names; a RowError (index filled in later) when ambiguous."""
    if not owners:
        return given or external_id_from_email(email)
    if len(owners) == 1:
        return owners[0]
    for preferred in (given, external_id_from_email(email)):
        if preferred in owners:
            return preferred
    return RowError(
        -1,
        "email",
        f"{len(owners)} customers have the email {email!r}; import them by external_id to say "
        "which one is meant.",
    )


def _customers_store_by_email(valid: list[tuple[int, CustomerByEmailRow]]) -> BulkResult:
    owners = _external_ids_by_email(row.email for _index, row in valid)
    keyed: list[tuple[int, CustomerRow]] = []
    errors: list[RowError] = []
    for index, row in valid:
        owner = _email_owner(row.email, owners.get(row.email, []), row.external_id)
        if isinstance(owner, RowError):
            errors.append(RowError(index, owner.field, owner.message))
            continue
        values = {**row.__dict__, "external_id": owner}
        fields_set = row.model_fields_set | {"external_id"}
        keyed.append((index, CustomerRow.model_construct(fields_set, **values)))
    # Two rows with different emails may still name one customer by the same given external_id.
    keys_seen: dict[str, int] = {}
    unique: list[tuple[int, CustomerRow]] = []
    for index, customer in keyed:
        earlier = keys_seen.setdefault(customer.external_id, index)
        if earlier != index:
            message = f"{customer.external_id!r} already appears in row {earlier} of this batch."
            errors.append(RowError(index, "external_id", message))
        else:
            unique.append((index, customer))
    return _with_errors(_customers_store(unique), errors)


def _customers_store(valid: list[tuple[int, CustomerRow]]) -> BulkResult:
    result = BulkResult()
    now = timezone.now()
    keys = sorted(row.external_id for _index, row in valid)
    stored_by_key: dict[str, dict[str, Any]] = {}
    for chunk in chunks(keys):
        locked = Customer.objects.select_for_update().filter(external_id__in=chunk).order_by("id")
        for values in locked.values("id", "external_id", *CUSTOMER_FIELDS):
            stored_by_key[values["external_id"]] = values
    tags_by_customer = _tags_of(
        [
            stored_by_key[row.external_id]["id"]
            for _index, row in valid
            if row.external_id in stored_by_key and "tags" in row.model_fields_set
        ]
    )

    inserts: list[dict[str, Any]] = []
    new_tags: dict[str, list[str]] = {}
    updates: list[dict[str, Any]] = []
    tag_adds: list[tuple[int, str]] = []
    tag_removes: list[int] = []
    for _index, row in valid:
        given = row.model_fields_set
        stored = stored_by_key.get(row.external_id)
        if stored is None:
            values = {name: getattr(row, name) for name in CUSTOMER_FIELDS}
            if values["marketing_consent"] is None:
                values["marketing_consent"] = True
            inserts.append({"external_id": row.external_id, **values})
            if row.tags:
                new_tags[row.external_id] = row.tags
            result.created += 1
            continue
        merged = dict(stored)
        for name in CUSTOMER_FIELDS:
            value = getattr(row, name)
            if name in given and not (name == "marketing_consent" and value is None):
                merged[name] = value
        changed = merged != stored
        if "tags" in given:
            have = tags_by_customer.get(stored["id"], {})
            adds = [(stored["id"], tag) for tag in row.tags if tag not in have]
            removes = [tag_id for tag, tag_id in have.items() if tag not in row.tags]
            tag_adds += adds
            tag_removes += removes
            changed = changed or bool(adds or removes)
        if changed:
            updates.append(merged)
            result.updated += 1
        else:
            result.unchanged += 1

    params = _customer_params()
    stamp = datetime_adapter()(now)
    executemany(
        insert_sql(
            Customer, ["external_id", *CUSTOMER_FIELDS, *STATS_FIELDS, "created_at", "updated_at"]
        ),
        [
            (values["external_id"], *params(values), ZERO, 0, None, None, stamp, stamp)
            for values in sorted(inserts, key=lambda values: values["external_id"])
        ],
    )
    executemany(
        update_sql(Customer, [*CUSTOMER_FIELDS, "updated_at"]),
        [
            (*params(values), stamp, values["id"])
            for values in sorted(updates, key=lambda values: values["id"])
        ],
    )
    if new_tags:
        ids = ids_by_key(Customer, "external_id", list(new_tags))
        tag_adds += [(ids[key], tag) for key, tags in new_tags.items() for tag in tags]
    for tag_ids in chunks(sorted(tag_removes)):
        CustomerTag.objects.filter(id__in=tag_ids).delete()
    executemany(insert_sql(CustomerTag, ["customer", "name"]), sorted(tag_adds))
    return result


def _customer_params() -> Callable[[dict[str, Any]], tuple[Any, ...]]:
    """A function turning a customer's CUSTOMER_FIELDS values into statement parameters."""
    adapt = datetime_adapter()
    as_json = json_adapter(Customer, "attributes")

    def params(values: dict[str, Any]) -> tuple[Any, ...]:
        return (
            *(values[name] for name in CUSTOMER_FIELDS[:6]),
            as_json(values["attributes"]),
            adapt(values["signed_up_at"]),
            values["marketing_consent"],
        )

    return params


def _tags_of(customer_ids: list[int]) -> dict[int, dict[str, int]]:
    """Each customer's tags as {name: tag row id}."""
    tags: dict[int, dict[str, int]] = {}
    for chunk in chunks(customer_ids):
        rows = CustomerTag.objects.filter(customer_id__in=chunk)
        for tag_id, customer_id, name in rows.values_list("id", "customer_id", "name"):
            tags.setdefault(customer_id, {})[name] = tag_id
    return tags


# --- Orders -----------------------------------------------------------------------------------


def orders_bulk_upsert(
    *, rows: Sequence[Any], customer_key: CustomerKey = "external_id"
) -> BulkResult:
    """Create or update up to 10,000 orders by `external_id` and keep customer stats exact.

    The customer is named by `customer_external_id` (or by `customer_email` with
    `customer_key="email"`); an unknown one is a row error on that field. An existing order may
    change status, amount, date, currency or customer.
    """
    rows_check_size(rows)
    with _gc_paused():
        if customer_key == "email":
            by_email, errors = rows_validate(rows, OrderByEmailRow)
            return _with_errors(
                _atomic_with_retry(lambda: _orders_store_by_email(by_email)), errors
            )
        if customer_key != "external_id":
            raise ValueError(f"Unknown customer key {customer_key!r}")
        valid, errors = rows_validate(rows, OrderRow)
        return _with_errors(_atomic_with_retry(lambda: _orders_store(valid)), errors)


def _orders_store_by_email(valid: list[tuple[int, OrderByEmailRow]]) -> BulkResult:
    owners = _external_ids_by_email(row.customer_email for _index, row in valid)
    keyed: list[tuple[int, OrderRow]] = []
    errors: list[RowError] = []
    for index, row in valid:
        found = owners.get(row.customer_email, [])
        if not found:
            message = f"No customer has the email {row.customer_email!r}; import customers first."
            errors.append(RowError(index, "customer_email", message))
            continue
        owner = _email_owner(row.customer_email, found, None)
        if isinstance(owner, RowError):
            errors.append(RowError(index, "customer_email", owner.message))
            continue
        values = {
            name: getattr(row, name)
            for name in OrderByEmailRow.model_fields
            if name != "customer_email"
        }
        fields_set = (row.model_fields_set - {"customer_email"}) | {"customer_external_id"}
        keyed.append(
            (index, OrderRow.model_construct(fields_set, customer_external_id=owner, **values))
        )
    return _with_errors(_orders_store(keyed), errors)


def _orders_store(valid: list[tuple[int, OrderRow]]) -> BulkResult:
    result = BulkResult()
    now = timezone.now()
    adapt = datetime_adapter()
    stamp = adapt(now)
    existing = ids_by_key(
        Order, "external_id", [row.external_id for _index, row in valid], lock=True
    )
    stored_by_key: dict[str, StoredOrder] = {}
    for chunk in chunks(sorted(existing.values())):
        for order_id, key, *values in Order.objects.filter(id__in=chunk).values_list(
            "id",
            "external_id",
            "customer_id",
            "amount",
            "original_amount",
            "currency",
            "status",
            "ordered_at",
        ):
            stored_by_key[key] = (order_id, *values)  # type: ignore[assignment]
    customer_ids: dict[str, int] = {}
    stored_stats: dict[int, tuple[Decimal, int]] = {}
    for key, (customer_id, spend, count) in rows_by_key(
        Customer,
        "external_id",
        list({row.customer_external_id for _index, row in valid}),
        ["id", "total_spend", "order_count"],
        lock=True,
    ):
        customer_ids[key] = customer_id
        stored_stats[customer_id] = (_decimal(spend), count)
    room = _StatsRoom(stored_stats)
    converted = orders_convert(
        valid, stored_currencies={key: stored[4] for key, stored in stored_by_key.items()}
    )

    inserts: list[tuple[Any, ...]] = []
    updates: list[tuple[Any, ...]] = []
    # customer id -> [total, count, first, last] of the new completed orders in this batch
    additions: dict[int, list[Any]] = {}
    recompute: set[int] = set()
    for index, row in valid:
        customer_id = customer_ids.get(row.customer_external_id)
        if customer_id is None:
            message = f"No customer has external_id {row.customer_external_id!r}."
            result.errors.append(RowError(index, "customer_external_id", message))
            continue
        conversion = converted[index]
        if isinstance(conversion, RowError):
            result.errors.append(conversion)
            continue
        currency, amount = conversion
        stored = stored_by_key.get(row.external_id)
        if stored is None:
            status = row.status or COMPLETED
            if status == COMPLETED:
                problem = room.move(None, (customer_id, amount), row.customer_external_id)
                if problem:
                    result.errors.append(RowError(index, *problem))
                    continue
            ordered_at = adapt(row.ordered_at)
            inserts.append(
                (
                    row.external_id,
                    customer_id,
                    amount,
                    row.amount,
                    currency,
                    status,
                    ordered_at,
                    stamp,
                    stamp,
                )
            )
            if status == COMPLETED:
                _stats_add(additions, customer_id, amount, ordered_at)
            result.created += 1
            continue
        order_id, old_customer, old_amount, old_original, old_currency, old_status, old_at = stored
        status = row.status or old_status
        counted = (customer_id, amount, status, row.ordered_at)
        counted_before = (old_customer, old_amount, old_status, old_at)
        if counted == counted_before and (currency, row.amount) == (old_currency, old_original):
            result.unchanged += 1
            continue
        if COMPLETED in (status, old_status) and counted != counted_before:
            problem = room.move(
                (old_customer, old_amount) if old_status == COMPLETED else None,
                (customer_id, amount) if status == COMPLETED else None,
                row.customer_external_id,
            )
            if problem:
                result.errors.append(RowError(index, *problem))
                continue
        updates.append(
            (
                customer_id,
                amount,
                row.amount,
                currency,
                status,
                adapt(row.ordered_at),
                stamp,
                order_id,
            )
        )
        result.updated += 1
        if COMPLETED in (status, old_status) and counted != counted_before:
            recompute.update((old_customer, customer_id))

    # Keys sorted: two batches inserting the same new keys wait for each other at the first one.
    executemany(insert_sql(Order, ORDER_INSERT_FIELDS), sorted(inserts))
    executemany(
        update_sql(
            Order,
            [
                "customer",
                "amount",
                "original_amount",
                "currency",
                "status",
                "ordered_at",
                "updated_at",
            ],
        ),
        sorted(updates, key=lambda params: params[-1]),
    )
    _stats_increment(
        {key: value for key, value in additions.items() if key not in recompute}, now=now
    )
    customer_stats_recompute(customer_ids=recompute, now=now, touch=True)
    return result


def _decimal(value: Any) -> Decimal:
    # SQLite hands a raw decimal column back as a float (or an int); its shortest repr is exact
    # to the cent at every value the column holds.
    return value if isinstance(value, Decimal) else Decimal(str(value)).quantize(CENTS)


class _StatsRoom:
    """The spend and completed-order count of a batch's customers as its rows change them, so
    that a row taking either past its column is refused before anything is written."""

    def __init__(self, stored: dict[int, tuple[Decimal, int]]) -> None:
        self.spend = {customer_id: spend for customer_id, (spend, _count) in stored.items()}
        self.count = {customer_id: count for customer_id, (_spend, count) in stored.items()}

    def move(
        self,
        old: tuple[int, Decimal] | None,
        new: tuple[int, Decimal] | None,
        customer_key: str,
    ) -> tuple[str, str] | None:
        """Take `old` (customer, amount) out of the stats and put `new` in; if `new` does not
        fit, change nothing and return the (field, message) of the row error."""
        if old is not None:
            self._add(old[0], -old[1], -1)
        if new is None:
            return None
        customer_id, amount = new
        spend, count = self.spend[customer_id], self.count[customer_id]
        if count + 1 > MAX_CUSTOMER_ORDERS:
            problem = (
                "customer_external_id",
                f"Customer {customer_key!r} already has {count:,} completed orders, the most a "
                "customer's stats can count.",
            )
        elif spend + amount > MAX_CUSTOMER_SPEND:
            problem = (
                "amount",
                f"This order would take the total spend of customer {customer_key!r} to "
                f"{spend + amount:,}, past the most a customer's total can hold "
                f"({MAX_CUSTOMER_SPEND:,}).",
            )
        else:
            self._add(customer_id, amount, 1)
            return None
        if old is not None:
            self._add(old[0], old[1], 1)
        return problem

    def _add(self, customer_id: int, amount: Decimal, orders: int) -> None:
        # An order moved away from a customer the batch does not name: nothing to track.
        if customer_id in self.spend:
            self.spend[customer_id] += amount
            self.count[customer_id] += orders


def _stats_add(additions: dict[int, list[Any]], customer_id: int, amount: Decimal, at: Any) -> None:
    """Fold one new completed order into the batch's additions (`at` as the database stores it:
    text in one fixed format on SQLite and MariaDB, which sorts like time, or a datetime)."""
    stats = additions.get(customer_id)
    if stats is None:
        additions[customer_id] = [amount, 1, at, at]
        return
    stats[0] += amount
    stats[1] += 1
    if at < stats[2]:
        stats[2] = at
    if at > stats[3]:
        stats[3] = at


def _stats_increment(additions: dict[int, list[Any]], *, now: datetime) -> None:
    """Add new completed orders to their customers' stats in SQL, without reading them first.

    Adding is exact because stats only ever grow when orders are added; SQLite and MariaDB
    compare the stored date-times as text, which sorts like time in Django's fixed format.
    """
    first, last = column(Customer, "first_order_at"), column(Customer, "last_order_at")
    total, count = column(Customer, "total_spend"), column(Customer, "order_count")
    sql = update_sql(
        Customer,
        [
            # SQLite adds decimals as floats; rounding keeps the stored value the one "12.34"
            # would store, so SQL comparisons against cents stay exact.
            f"{total} = ROUND({total} + %s, 2)",
            f"{count} = {count} + %s",
            f"{first} = CASE WHEN {first} IS NULL OR {first} > %s THEN %s ELSE {first} END",
            f"{last} = CASE WHEN {last} IS NULL OR {last} < %s THEN %s ELSE {last} END",
            "updated_at",
        ],
    )
    stamp = datetime_adapter()(now)
    params = []
    for customer_id in sorted(additions):
        amount, orders, earliest, latest = additions[customer_id]
        params.append((amount, orders, earliest, earliest, latest, latest, stamp, customer_id))
    executemany(sql, params)


def customer_stats_recompute(
    *, customer_ids: Iterable[int], now: datetime | None = None, touch: bool = False
) -> int:
    """Recompute the stats of these customers from their completed orders; return how many changed.

    Call it inside the transaction that changed their orders. Customers whose stats are already
    right are not written, so their `updated_at` stays, unless `touch`: callers that changed
    these customers' completed orders pass it, because an order moved between two dates inside
    the customer's first and last leaves the stats equal but changes what the insight trend
    windows (and the columnar snapshot's recent orders, refreshed by `updated_at`) count.
    """
    ids = sorted(set(customer_ids))
    if not ids:
        return 0
    stored: dict[int, Stats] = {}
    for id_chunk in chunks(ids):
        locked = Customer.objects.select_for_update().filter(id__in=id_chunk).order_by("id")
        for customer_id, *stats in locked.values_list("id", *STATS_FIELDS):
            stored[customer_id] = tuple(stats)
    fresh = dict.fromkeys(stored, NO_STATS)
    for id_chunk in chunks(list(stored)):
        fresh.update(_stats_aggregate(id_chunk))
    adapt = datetime_adapter()
    stamp = adapt(now or timezone.now())
    changes = [
        (total, count, adapt(first), adapt(last), stamp, customer_id)
        for customer_id, (total, count, first, last) in fresh.items()
        if touch or (total, count, first, last) != stored[customer_id]
    ]
    executemany(update_sql(Customer, [*STATS_FIELDS, "updated_at"]), changes)
    return len(changes)


def _stats_aggregate(customer_ids: Sequence[int]) -> dict[int, Stats]:
    completed = Order.objects.filter(customer_id__in=customer_ids, status=COMPLETED)
    grouped = (
        completed.order_by()
        .values("customer_id")
        .annotate(
            # The sum can outgrow one order's 12 digits; read it at the stats column's size.
            total=Sum("amount", output_field=DecimalField(max_digits=14, decimal_places=2)),
            count=Count("id"),
            first=Min("ordered_at"),
            last=Max("ordered_at"),
        )
        .values_list("customer_id", "total", "count", "first", "last")
    )
    # SQLite sums its decimals as floats and Django hands an aggregate back unrounded
    # (97509.4600000001 for fifty orders): round to cents, or the customer row would store it.
    return {
        customer_id: (total.quantize(CENTS), count, first, last)
        for customer_id, total, count, first, last in grouped
    }


def customer_stats_rebuild(
    *, batch_size: int = 5000, on_progress: Callable[[int], object] | None = None
) -> int:
    """Recompute every customer's stats from the orders, a batch of customers per transaction.

    Returns how many customers had wrong stats (and were corrected). `on_progress` receives the
    number of customers checked after each batch.
    """
    changed = 0
    last_id = 0
    while True:
        with transaction.atomic():
            ids = list(
                Customer.objects.filter(id__gt=last_id)
                .order_by("id")
                .values_list("id", flat=True)[:batch_size]
            )
            if not ids:
                return changed
            changed += customer_stats_recompute(customer_ids=ids)
        last_id = ids[-1]
        if on_progress:
            on_progress(len(ids))


def orders_bulk_delete(*, external_ids: Sequence[str]) -> int:
    """Delete the orders with these external ids and correct their customers' stats.

    Unknown ids are skipped; returns how many orders were deleted.
    """
    keys = sorted(set(external_ids))

    def delete() -> int:
        found: list[tuple[int, int, str]] = []
        for chunk in chunks(keys):
            locked = Order.objects.select_for_update().filter(external_id__in=chunk)
            found += locked.order_by("id").values_list("id", "customer_id", "status")
        for order_ids in chunks(sorted(order_id for order_id, _customer, _status in found)):
            Order.objects.filter(id__in=order_ids).delete()
        customer_stats_recompute(
            customer_ids={customer for _id, customer, status in found if status == COMPLETED},
            touch=True,
        )
        return len(found)

    return atomic_with_retry(delete)


def order_delete(*, external_id: str) -> None:
    """Delete one order (raises NotFoundError if there is none) and correct its customer's stats."""
    if not orders_bulk_delete(external_ids=[external_id]):
        raise NotFoundError(f"No order has external_id {external_id!r}.")
