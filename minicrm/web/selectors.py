"""Reads for the dashboard: a handful of aggregate queries, cached for a minute.

Customer-level numbers come from the stats columns kept on each customer (one pass over the
customers table, no join); only revenue by period reads orders, within a date range on the
indexed `ordered_at`.
"""

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal

from django.core.cache import cache
from django.db.models import Count, Q, Sum
from django.utils import timezone

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


def _revenue(start: datetime, end: datetime) -> Decimal:
    total = Order.objects.filter(
        status=Order.Status.COMPLETED, ordered_at__gte=start, ordered_at__lt=end
    ).aggregate(total=Sum("amount"))["total"]
    return total or Decimal("0")


def _weekly_revenue(today: date) -> list[WeekRevenue]:
    this_week = today - timedelta(days=today.weekday())
    starts = [this_week - timedelta(weeks=WEEKS - 1 - index) for index in range(WEEKS)]
    bounds = [_local_midnight(start) for start in [*starts, this_week + timedelta(weeks=1)]]
    # One pass over the range with a conditional sum per week: portable across SQLite,
    # PostgreSQL and MariaDB, and on SQLite far quicker than truncating every row's date.
    sums = Order.objects.filter(
        status=Order.Status.COMPLETED, ordered_at__gte=bounds[0], ordered_at__lt=bounds[-1]
    ).aggregate(
        **{
            f"w{index}": Sum(
                "amount", filter=Q(ordered_at__gte=bounds[index], ordered_at__lt=bounds[index + 1])
            )
            for index in range(WEEKS)
        }
    )
    return [
        WeekRevenue(week_start=start, revenue=sums[f"w{index}"] or Decimal("0"))
        for index, start in enumerate(starts)
    ]


def _customer_numbers(now: datetime) -> dict[str, int | Decimal | None]:
    today = timezone.localdate(now)
    active_since = now - timedelta(days=ACTIVE_DAYS)
    buckets: dict[str, Count] = {}
    for index, (_label, low, high) in enumerate(RECENCY_BUCKETS):
        # A customer "N days" since their last order ordered on the local day today - N.
        condition = Q(last_order_at__isnull=False)
        if high is not None:
            condition &= Q(last_order_at__gte=_local_midnight(today - timedelta(days=high)))
        if low:
            condition &= Q(last_order_at__lt=_local_midnight(today - timedelta(days=low - 1)))
        buckets[f"r{index}"] = Count("pk", filter=condition)
    return Customer.objects.aggregate(
        customers=Count("pk"),
        active=Count("pk", filter=Q(last_order_at__gte=active_since)),
        buyers=Count("pk", filter=Q(order_count__gte=1)),
        repeat_buyers=Count("pk", filter=Q(order_count__gte=2)),
        never=Count("pk", filter=Q(last_order_at__isnull=True)),
        spend=Sum("total_spend"),
        orders=Sum("order_count"),
        **buckets,
    )


def dashboard_compute(*, now: datetime | None = None) -> Dashboard:
    now = now or timezone.now()
    today = timezone.localdate(now)
    numbers = _customer_numbers(now)
    month_start = _month_start(today)
    last_month_start = _month_start(month_start - timedelta(days=1))
    # The same stretch of last month (day 1 up to the same moment), capped at its last day.
    elapsed = now - _local_midnight(month_start)
    last_month_cut = min(_local_midnight(last_month_start) + elapsed, _local_midnight(month_start))
    spend = numbers["spend"] or Decimal("0")
    orders = int(numbers["orders"] or 0)
    return Dashboard(
        customers=int(numbers["customers"] or 0),
        active_customers=int(numbers["active"] or 0),
        revenue_this_month=_revenue(_local_midnight(month_start), now),
        revenue_last_month=_revenue(_local_midnight(last_month_start), last_month_cut),
        last_month_start=last_month_start,
        last_month_end=timezone.localdate(last_month_cut - timedelta(microseconds=1)),
        average_order_value=(
            (Decimal(spend) / orders).quantize(Decimal("0.01")) if orders else None
        ),
        buyers=int(numbers["buyers"] or 0),
        repeat_buyers=int(numbers["repeat_buyers"] or 0),
        weekly_revenue=_weekly_revenue(today),
        recency=[
            *(
                (label, int(numbers[f"r{index}"] or 0))
                for index, (label, _low, _high) in enumerate(RECENCY_BUCKETS)
            ),
            (NEVER_ORDERED, int(numbers["never"] or 0)),
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
