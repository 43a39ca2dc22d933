"""Reads for the dashboard: four aggregate queries, cached for a minute.

Customer numbers come from the stats columns kept on each customer (counts over indexed ranges,
sums over single-column indexes); revenue by period reads orders by date range only. At ten
million orders the revenue ranges need an index on Order covering (status, ordered_at, amount):
with only the `ordered_at` index every order in a range is also a lookup in the table, measured
at about a minute instead of two seconds on SQLite.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from itertools import pairwise
from typing import Any

from django.core.cache import cache
from django.db.models import Aggregate, Count, IntegerField, Q, QuerySet, Sum, Value
from django.utils import timezone

from minicrm.core.replica import replica_reads
from minicrm.customers.models import Customer, Order

CACHE_KEY = "web:dashboard:v1"
CACHE_SECONDS = 60
WEEKS = 26
ACTIVE_DAYS = 90
# Days since the last order, both ends included, of each recency bucket; the last one is open.
DASH = "\N{EN DASH}"
RECENCY_BUCKETS: tuple[tuple[str, int | None, int | None], ...] = (
    (f"0{DASH}30 days", 0, 30),
    (f"31{DASH}90 days", 31, 90),
    (f"91{DASH}180 days", 91, 180),
    (f"181{DASH}365 days", 181, 365),
    ("365+ days", 366, None),
)
NEVER_ORDERED = "Never ordered"


@dataclass(frozen=True)
class WeekRevenue:
    week_start: date
    revenue: Decimal


@dataclass(frozen=True)
class Dashboard:
    customers: int
    active_customers: int
    revenue_this_month: Decimal
    # Last month over the same number of days, so a month that has just begun is not compared
    # with a whole one.
    revenue_last_month: Decimal
    last_month_start: date
    last_month_end: date
    average_order_value: Decimal | None
    buyers: int
    repeat_buyers: int
    weekly_revenue: list[WeekRevenue]
    recency: list[tuple[str, int]]

    @property
    def revenue_change(self) -> float | None:
        """Change from last month as a fraction (0.12 = +12%); None when last month had none."""
        if not self.revenue_last_month:
            return None
        return float((self.revenue_this_month - self.revenue_last_month) / self.revenue_last_month)

    @property
    def repeat_rate(self) -> float | None:
        return self.repeat_buyers / self.buyers if self.buyers else None


def _local_midnight(day: date) -> datetime:
    return timezone.make_aware(datetime(day.year, day.month, day.day))


def _month_start(day: date) -> date:
    return day.replace(day=1)


def _each(parts: Sequence[tuple[QuerySet[Any], Aggregate]]) -> list[Any]:
    """One aggregate per queryset, all in a single UNION ALL, in the order given.

    Each part is a plain range or equality filter that its own index answers, which at a million
    customers and ten million orders beats any single pass that evaluates every condition on
    every row. The parts must share an aggregate type: the first part's decides the conversion.
    """
    selects = [
        queryset.annotate(part=Value(index, output_field=IntegerField()))
        .values("part")
        .annotate(value=aggregate)
        .values_list("part", "value")
        for index, (queryset, aggregate) in enumerate(parts)
    ]
    values = dict(selects[0].union(*selects[1:], all=True))
    return [values.get(index) for index in range(len(parts))]


def _revenues(ranges: Sequence[tuple[datetime, datetime]]) -> list[Decimal]:
    """Completed revenue in each [start, end) range."""
    completed = Order.objects.filter(status=Order.Status.COMPLETED)
    parts = [
        (completed.filter(ordered_at__gte=start, ordered_at__lt=end), Sum("amount"))
        for start, end in ranges
    ]
    return [total or Decimal("0") for total in _each(parts)]


def _recency_filter(today: date, low: int | None, high: int | None) -> Q:
    # "N days since the last order" means the last order fell on the local day today - N.
    condition = Q(last_order_at__isnull=False)
    if high is not None:
        condition &= Q(last_order_at__gte=_local_midnight(today - timedelta(days=high)))
    if low:
        condition &= Q(last_order_at__lt=_local_midnight(today - timedelta(days=low - 1)))
    return condition


def _customer_counts(now: datetime) -> dict[str, int]:
    today = timezone.localdate(now)
    filters = {
        "customers": Q(),
        "active": Q(last_order_at__gte=now - timedelta(days=ACTIVE_DAYS)),
        "buyers": Q(order_count__gte=1),
        "repeat_buyers": Q(order_count__gte=2),
        "never": Q(last_order_at__isnull=True),
        **{label: _recency_filter(today, low, high) for label, low, high in RECENCY_BUCKETS},
    }
    # COUNT(*) rather than COUNT(id): PostgreSQL can then answer from the filtered column's index.
    counts = _each([(Customer.objects.filter(f), Count("*")) for f in filters.values()])
    return {name: int(value or 0) for name, value in zip(filters, counts, strict=True)}


def _customer_sum(field: str) -> Decimal:
    # Alone in its query, each sum reads only the index on its column, not the table.
    total = Customer.objects.aggregate(total=Sum(field))["total"]
    return Decimal(total or 0)


@replica_reads()
def dashboard_compute(*, now: datetime | None = None) -> Dashboard:
    now = now or timezone.now()
    today = timezone.localdate(now)
    counts = _customer_counts(now)
    month_start = _local_midnight(_month_start(today))
    last_month_day = _month_start(today - timedelta(days=today.day))
    last_month_start = _local_midnight(last_month_day)
    # The same stretch of last month (day 1 up to the same moment), capped at its last day.
    last_month_cut = min(last_month_start + (now - month_start), month_start)
    this_week = today - timedelta(days=today.weekday())
    week_starts = [this_week - timedelta(weeks=WEEKS - 1 - index) for index in range(WEEKS)]
    week_bounds = [_local_midnight(start) for start in [*week_starts, this_week + timedelta(7)]]
    this_month, last_month, *weeks = _revenues(
        [
            (month_start, now),
            (last_month_start, last_month_cut),
            *pairwise(week_bounds),
        ]
    )
    spend, orders = _customer_sum("total_spend"), int(_customer_sum("order_count"))
    return Dashboard(
        customers=counts["customers"],
        active_customers=counts["active"],
        revenue_this_month=this_month,
        revenue_last_month=last_month,
        last_month_start=last_month_day,
        last_month_end=timezone.localdate(last_month_cut - timedelta(microseconds=1)),
        average_order_value=(spend / orders).quantize(Decimal("0.01")) if orders else None,
        buyers=counts["buyers"],
        repeat_buyers=counts["repeat_buyers"],
        weekly_revenue=[
            WeekRevenue(week_start=start, revenue=revenue)
            for start, revenue in zip(week_starts, weeks, strict=True)
        ],
        recency=[
            *((label, counts[label]) for label, _low, _high in RECENCY_BUCKETS),
            (NEVER_ORDERED, counts["never"]),
        ],
    )


def dashboard_get() -> Dashboard:
    """The dashboard numbers, at most a minute old."""
    cached = cache.get(CACHE_KEY)
    if isinstance(cached, Dashboard):
        return cached
    dashboard = dashboard_compute()
    # An empty base is cheap to count and should turn into numbers as soon as data arrives.
    if dashboard.customers:
        cache.set(CACHE_KEY, dashboard, CACHE_SECONDS)
    return dashboard
