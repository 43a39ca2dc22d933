"""Reads for the dashboard: aggregates over a date range, cached for a few minutes per range.

Every figure follows the range: revenue and orders read completed orders by date (an index on
Order covers (status, ordered_at, amount): with only `ordered_at` each order in a range is also a
lookup in the table, about a minute instead of two seconds at ten million orders on SQLite); new
customers read the indexed `first_order_at`; the RFM grid (web.rfm) the customers whose last
order fell in the range; segments their size history in it; campaigns those created in it.
At a million customers a cold computation takes seconds (bench/README_dashboard.md), longer than
a page may, so the result is cached per range with the moment it was computed, which the page
shows: the presets are kept warm by a task every few minutes (web.tasks), and a range with no
figures at all is computed by a task while the page polls for it, unless the base is small
enough to compute in the request.
"""

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any, Literal

from django.conf import settings
from django.core.cache import cache
from django.db.models import Aggregate, Count, IntegerField, QuerySet, Sum, Value
from django.utils import timezone

from minicrm.campaigns.models import Campaign
from minicrm.campaigns.results import campaign_results
from minicrm.core.replica import replica_reads
from minicrm.customers.models import Customer, Order
from minicrm.segments.models import Segment, SegmentSize

from .date_range import DateRange, day_start
from .rfm import Rfm, rfm_compute

CACHE_KEY = "web:dashboard:v2"
CACHE_SECONDS = 300
# A computation is asked for once per range while it runs: a task that died frees the range
# after this long.
REFRESH_LOCK_SECONDS = CACHE_SECONDS
# How long numbers may be shown, marked with their time, while newer ones are computed.
KEEP_SECONDS = 24 * 3600
RECENT_CAMPAIGNS = 5
LARGEST_SEGMENTS = 5
# Bucket of the charts by the range's length: a bar per day up to a month, per week up to four
# months, per month beyond.
DAILY_UP_TO = 31
WEEKLY_UP_TO = 120
Unit = Literal["day", "week", "month"]


@dataclass(frozen=True)
class Bucket:
    """Whole local days from `start` to `end` (both included), clipped to the range."""

    start: date
    end: date
    revenue: Decimal
    new_customers: int


@dataclass(frozen=True)
class SegmentTrend:
    pk: int
    name: str
    size: int
    # Sizes recorded on each day of the range with a point, oldest first.
    points: list[int] = field(default_factory=list)

    @property
    def change(self) -> int | None:
        """Now against the first point in the range; None without a point."""
        return self.size - self.points[0] if self.points else None


@dataclass(frozen=True)
class Dashboard:
    date_range: DateRange
    computed_at: datetime
    customers: int
    revenue: Decimal
    previous_revenue: Decimal
    orders: int
    previous_orders: int
    new_customers: int
    previous_new_customers: int
    unit: Unit
    buckets: list[Bucket]
    rfm: Rfm
    segments: list[SegmentTrend]
    # Campaigns with `attributed_revenue` set (campaigns.results: recipients' revenue in the
    # attribution window).
    campaigns: list[Campaign]

    @property
    def average_order_value(self) -> Decimal | None:
        return (self.revenue / self.orders).quantize(Decimal("0.01")) if self.orders else None

    @property
    def previous_average_order_value(self) -> Decimal | None:
        if not self.previous_orders:
            return None
        return (self.previous_revenue / self.previous_orders).quantize(Decimal("0.01"))


def change_ratio(now: Decimal | int | None, before: Decimal | int | None) -> float | None:
    """Change as a fraction (0.12 = +12%); None when there is nothing to compare with."""
    if not before or now is None:
        return None
    return float((Decimal(now) - Decimal(before)) / Decimal(before))


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


def _unit(days: int) -> Unit:
    if days <= DAILY_UP_TO:
        return "day"
    return "week" if days <= WEEKLY_UP_TO else "month"


def _next_start(day: date, unit: Unit) -> date:
    if unit == "day":
        return day + timedelta(days=1)
    if unit == "week":
        return day - timedelta(days=day.weekday()) + timedelta(weeks=1)
    return (day.replace(day=1) + timedelta(days=32)).replace(day=1)


def bucket_days(date_range: DateRange, unit: Unit) -> list[tuple[date, date]]:
    """(first, last) day of each bucket: days, weeks from Monday or calendar months, clipped."""
    spans, start = [], date_range.start
    while start <= date_range.end:
        end = min(_next_start(start, unit) - timedelta(days=1), date_range.end)
        spans.append((start, end))
        start = end + timedelta(days=1)
    return spans


def _moments(first: date, last: date) -> tuple[datetime, datetime]:
    return day_start(first), day_start(last + timedelta(days=1))


def _segments(*, date_range: DateRange) -> list[SegmentTrend]:
    largest = list(
        Segment.objects.filter(last_count__isnull=False)
        .order_by("-last_count", "name")
        .values_list("pk", "name", "last_count")[:LARGEST_SEGMENTS]
    )
    # A day may hold a point per version of the rules: the one counted last is the day's size.
    history = SegmentSize.objects.filter(
        segment_id__in=[pk for pk, _name, _size in largest],
        day__gte=date_range.start,
        day__lte=date_range.end,
    ).order_by("day", "counted_at")
    points: dict[int, dict[date, int]] = {}
    for segment_id, day, size in history.values_list("segment_id", "day", "size"):
        points.setdefault(segment_id, {})[day] = size
    return [
        SegmentTrend(pk=pk, name=name, size=size or 0, points=list(points.get(pk, {}).values()))
        for pk, name, size in largest
    ]


def _campaigns(*, date_range: DateRange) -> list[Campaign]:
    start, end = date_range.bounds()
    campaigns = list(
        Campaign.objects.filter(created_at__gte=start, created_at__lt=end).defer(
            "template", "rules", "summary", "error", "summary_error"
        )[:RECENT_CAMPAIGNS]
    )
    for campaign in campaigns:
        revenue = campaign_results(campaign)["recipient_revenue"] if campaign.snapshot_at else None
        campaign.attributed_revenue = revenue  # type: ignore[attr-defined]
    return campaigns


@replica_reads()
def dashboard_compute(*, date_range: DateRange, now: datetime | None = None) -> Dashboard:
    now = now or timezone.now()
    today = timezone.localdate(now)
    previous = date_range.previous()
    unit = _unit(date_range.days)
    spans = bucket_days(date_range, unit)
    completed = Order.objects.filter(status=Order.Status.COMPLETED)

    def orders_in(first: date, last: date) -> QuerySet[Order]:
        start, end = _moments(first, last)
        return completed.filter(ordered_at__gte=start, ordered_at__lt=end)

    def new_in(first: date, last: date) -> QuerySet[Customer]:
        start, end = _moments(first, last)
        return Customer.objects.filter(first_order_at__gte=start, first_order_at__lt=end)

    revenues = _each(
        [
            (orders_in(previous.start, previous.end), Sum("amount")),
            *((orders_in(first, last), Sum("amount")) for first, last in spans),
        ]
    )
    orders, previous_orders = _each(
        [
            (orders_in(date_range.start, date_range.end), Count("*")),
            (orders_in(previous.start, previous.end), Count("*")),
        ]
    )
    # COUNT(*) rather than COUNT(id): PostgreSQL can then answer from the filtered column's index.
    customers, previous_new, *new = _each(
        [
            (Customer.objects.all(), Count("*")),
            (new_in(previous.start, previous.end), Count("*")),
            *((new_in(first, last), Count("*")) for first, last in spans),
        ]
    )
    previous_revenue, *bucket_revenue = (value or Decimal("0") for value in revenues)
    buckets = [
        Bucket(start=first, end=last, revenue=revenue, new_customers=int(added or 0))
        for (first, last), revenue, added in zip(spans, bucket_revenue, new, strict=True)
    ]
    return Dashboard(
        date_range=date_range,
        computed_at=now,
        customers=int(customers or 0),
        revenue=sum((bucket.revenue for bucket in buckets), Decimal("0")),
        previous_revenue=previous_revenue,
        orders=int(orders or 0),
        previous_orders=int(previous_orders or 0),
        new_customers=sum(bucket.new_customers for bucket in buckets),
        previous_new_customers=int(previous_new or 0),
        unit=unit,
        buckets=buckets,
        rfm=rfm_compute(date_range=date_range, today=today),
        segments=_segments(date_range=date_range),
        campaigns=_campaigns(date_range=date_range),
    )


def _cache_key(date_range: DateRange) -> str:
    # A preset keeps its key from day to day, so yesterday's numbers can be shown (and say
    # when they were computed) while today's are computed.
    return f"{CACHE_KEY}:{date_range.preset or date_range.key}"


def _lock_key(date_range: DateRange) -> str:
    return f"{_cache_key(date_range)}:refreshing"


def dashboard_refresh_claim(*, date_range: DateRange) -> bool:
    """Whether the caller may compute the range now: False while a computation is asked for or
    running (the lock is freed when it ends, or after REFRESH_LOCK_SECONDS if it died)."""
    return bool(cache.add(_lock_key(date_range), True, REFRESH_LOCK_SECONDS))


def dashboard_refresh(*, date_range: DateRange) -> Dashboard:
    """Compute the range's dashboard and keep it for the next visits."""
    try:
        dashboard = dashboard_compute(date_range=date_range)
    finally:
        cache.delete(_lock_key(date_range))
    # An empty base is cheap to count and should turn into numbers as soon as data arrives.
    if dashboard.customers:
        cache.set(_cache_key(date_range), dashboard, KEEP_SECONDS)
    return dashboard


def dashboard_inline_max_customers() -> int:
    return int(settings.MINICRM_DASHBOARD_INLINE_MAX_CUSTOMERS)


def dashboard_is_small() -> bool:
    """Whether the base is small enough to compute a range in the request: a count that stops
    after the limit, so it reads at most that many index entries however large the base is."""
    limit = dashboard_inline_max_customers()
    return Customer.objects.order_by()[: limit + 1].count() <= limit


def dashboard_get(
    *, date_range: DateRange, refresh: Callable[[DateRange], None]
) -> Dashboard | None:
    """The dashboard for a range, `computed_at` saying when; None while it is being computed.

    Numbers older than CACHE_SECONDS (or for another day's range) are shown as they are while
    `refresh(date_range)` computes new ones in the background, asked once per computation. A
    range never computed in KEEP_SECONDS is computed in the request on a small base
    (`dashboard_is_small`); on a large one `refresh` is asked for it and the answer is None,
    so the page can say the figures are coming instead of taking seconds.
    """
    cached = cache.get(_cache_key(date_range))
    if isinstance(cached, Dashboard):
        if dashboard_is_stale(cached, date_range=date_range) and dashboard_refresh_claim(
            date_range=date_range
        ):
            refresh(date_range)
        return cached
    if dashboard_is_small():
        return dashboard_refresh(date_range=date_range)
    if dashboard_refresh_claim(date_range=date_range):
        refresh(date_range)
    return None


def dashboard_is_stale(dashboard: Dashboard, *, date_range: DateRange) -> bool:
    """Whether the numbers shown are older than a refresh interval or for another range."""
    age = timezone.now() - dashboard.computed_at
    return dashboard.date_range != date_range or age > timedelta(seconds=CACHE_SECONDS)
