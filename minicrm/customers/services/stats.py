"""Customer stats (total spend, completed-order count, first and last order): added to in SQL
for new completed orders, recomputed with one grouped aggregate for anything else, and checked
against their columns' limits before a batch writes."""

from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

from django.db import transaction
from django.db.models import Count, DecimalField, Max, Min, Sum
from django.utils import timezone

from minicrm.core.limits import MAX_CUSTOMER_ORDERS, MAX_CUSTOMER_SPEND

from ..models import Customer, Order
from ..sql import chunks, column, datetime_adapter, executemany, update_sql

Stats = tuple[Decimal, int, datetime | None, datetime | None]

COMPLETED = Order.Status.COMPLETED.value
ZERO = Decimal("0")
CENTS = Decimal("0.01")
NO_STATS: Stats = (ZERO, 0, None, None)
STATS_FIELDS = ("total_spend", "order_count", "first_order_at", "last_order_at")


class StatsRoom:
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


def stats_add(additions: dict[int, list[Any]], customer_id: int, amount: Decimal, at: Any) -> None:
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


def stats_increment(additions: dict[int, list[Any]], *, now: datetime) -> None:
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
