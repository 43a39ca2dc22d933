"""The facts about a segment, from SQL aggregates only: what an insight is written from.

Facts hold counts, sums, shares and ratios, city and country names; never a name, email, phone
or external id, so they are the only data a provider (and so an outside AI service) ever sees.
"""

import copy
from collections.abc import Mapping
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.db.models import Count, Max, Q, QuerySet, Sum

from minicrm.customers.models import Customer, Order
from minicrm.segments.compiler import customers_matching, day_start, today_in_zone
from minicrm.segments.rules import RuleGroup

FACTS_VERSION = 1
TREND_WINDOW_DAYS = 90
# The whole base is the same for every segment and costs the most (a pass over the orders), so
# it is kept until the data changes (see `_data_fingerprint`) or this long has passed.
BASE_CACHE_SECONDS = 3600
TOP_PLACES = 5
MAX_PLACE_PAIRS = 5000

# (key, label, lowest order count, highest order count or None for no upper bound)
ORDER_COUNT_BUCKETS: list[tuple[str, str, int, int | None]] = [
    ("0", "0 orders", 0, 0),
    ("1", "1 order", 1, 1),
    ("2", "2 orders", 2, 2),
    ("3-5", "3-5 orders", 3, 5),
    ("6-10", "6-10 orders", 6, 10),
    ("11+", "11+ orders", 11, None),
]
# (key, label, fewest days since the last order, most days or None); "never" is added after.
RECENCY_BUCKETS: list[tuple[str, str, int, int | None]] = [
    ("0-30", "0-30 days", 0, 30),
    ("31-90", "31-90 days", 31, 90),
    ("91-180", "91-180 days", 91, 180),
    ("181-365", "181-365 days", 181, 365),
    ("365+", "365+ days", 366, None),
]
NEVER_BUCKET = ("never", "Never ordered")
# Active: ordered in the last 90 days. Lapsed: ordered before, but not in the last 180 days.
# New: signed up in the last 90 days.
ACTIVE_DAYS, LAPSED_DAYS, NEW_DAYS = 90, 180, 90
ACTIVE_BUCKETS = ("0-30", "31-90")
LAPSED_BUCKETS = ("181-365", "365+")


def rules_facts(*, rules: RuleGroup, today: date | None = None) -> dict[str, Any]:
    """Facts for the customers a rule tree (a segment) selects."""
    today = today or today_in_zone()
    return members_facts(members=customers_matching(rules, today=today), today=today)


def members_facts(*, members: QuerySet[Customer], today: date | None = None) -> dict[str, Any]:
    """Facts for the customers in `members`, each figure beside the same figure for everyone."""
    today = today or today_in_zone()
    base = base_figures(today=today)
    if members.query.where:
        segment = _group_figures(members, today=today, everyone=False)
    else:
        # Rules that match everyone: the segment is the base, no need to scan twice.
        segment = copy.deepcopy(base)
    _compare_to_base(segment, base)
    return {
        "version": FACTS_VERSION,
        "as_of": today.isoformat(),
        "currency": settings.MINICRM_CURRENCY_SYMBOL,
        "windows": {
            "active_days": ACTIVE_DAYS,
            "lapsed_days": LAPSED_DAYS,
            "new_days": NEW_DAYS,
            "trend_days": TREND_WINDOW_DAYS,
        },
        "segment": segment,
        "base": base,
        "index": _indexes(segment, base),
    }


def base_figures(*, today: date) -> dict[str, Any]:
    """The figures for all customers, from the cache while the data has not changed."""
    key = ":".join(
        [
            "insights-base",
            str(FACTS_VERSION),
            today.isoformat(),
            settings.TIME_ZONE,
            _data_fingerprint(),
        ]
    )
    figures = cache.get(key)
    if figures is None:
        figures = _group_figures(Customer.objects.all(), today=today, everyone=True)
        cache.set(key, figures, BASE_CACHE_SECONDS)
    return copy.deepcopy(figures)


def _data_fingerprint() -> str:
    """Changes whenever customers or their stats change, or an order is added: every order
    change that moves a customer's stats touches the customer's `updated_at`. Index lookups
    only; an order edit that moves no stats waits for BASE_CACHE_SECONDS."""
    customers = Customer.objects.aggregate(n=Count("id"), last=Max("updated_at"), top=Max("id"))
    newest_order = Order.objects.aggregate(top=Max("id"))["top"]
    last = customers["last"].isoformat() if customers["last"] else "-"
    return f"{customers['n']}-{customers['top']}-{last}-{newest_order}"


def _group_figures(customers: QuerySet[Customer], *, today: date, everyone: bool) -> dict[str, Any]:
    totals = customers.aggregate(**_aggregates(today))
    size = totals["customers"]
    revenue = totals["revenue"] or Decimal("0")
    orders = totals["orders"] or 0
    active = sum(totals[f"rc_{key}"] for key in ACTIVE_BUCKETS)
    lapsed = sum(totals[f"rc_{key}"] for key in LAPSED_BUCKETS)
    return {
        "customers": size,
        "revenue": _money(revenue),
        "orders": orders,
        "avg_spend": _money(revenue / size) if size else None,
        "median_spend": _median_spend(customers, size),
        "avg_order_value": _money(revenue / orders) if orders else None,
        "orders_per_customer": round(orders / size, 2) if size else None,
        "repeat_rate": _ratio(size - totals["oc_0"] - totals["oc_1"], size),
        "active_customers": active,
        "active_share": _ratio(active, size),
        "lapsed_customers": lapsed,
        "lapsed_share": _ratio(lapsed, size),
        "new_customers": totals["new"],
        "new_share": _ratio(totals["new"], size),
        "order_count_distribution": [
            _bucket(key, label, totals[f"oc_{key}"], size)
            for key, label, _low, _high in ORDER_COUNT_BUCKETS
        ],
        "recency": [
            _bucket(key, label, totals[f"rc_{key}"], size)
            for key, label, _low, _high in RECENCY_BUCKETS
        ]
        + [_bucket(NEVER_BUCKET[0], NEVER_BUCKET[1], totals["rc_never"], size)],
        **_top_places(customers, size),
        "trend": _trend(None if everyone else customers, today=today),
    }


def _compare_to_base(segment: dict[str, Any], base: Mapping[str, Any]) -> None:
    """Add the segment's shares of the base, and each top place's share of the base."""
    segment["share_of_customers"] = _ratio(segment["customers"], base["customers"])
    segment["share_of_revenue"] = _ratio(
        Decimal(str(segment["revenue"])), Decimal(str(base["revenue"]))
    )
    for column, key in [("city", "top_cities"), ("country", "top_countries")]:
        base_counts = {place["name"]: place["customers"] for place in base[key]}
        unknown = [place["name"] for place in segment[key] if place["name"] not in base_counts]
        if unknown:
            base_counts.update(
                Customer.objects.filter(**{f"{column}__in": unknown})
                .values_list(column)
                .annotate(n=Count("id"))
                .values_list(column, "n")
            )
        for place in segment[key]:
            base_count = base_counts.get(place["name"], 0)
            place["base_share"] = _ratio(base_count, base["customers"])
            # From the counts, not the rounded shares, so the index is exact to 2 places.
            place["index"] = (
                round(
                    place["customers"] * base["customers"] / (segment["customers"] * base_count), 2
                )
                if base_count
                else None
            )


def _aggregates(today: date) -> dict[str, Any]:
    aggregates: dict[str, Any] = {
        "customers": Count("id"),
        "revenue": Sum("total_spend"),
        "orders": Sum("order_count"),
    }
    for key, _label, low, high in ORDER_COUNT_BUCKETS:
        condition = Q(order_count__gte=low)
        if high is not None:
            condition &= Q(order_count__lte=high)
        aggregates[f"oc_{key}"] = Count("id", filter=condition)
    for key, _label, fewest_days, most_days in RECENCY_BUCKETS:
        # "N days since the last order" counts calendar days in the configured time zone.
        condition = Q(last_order_at__lt=day_start(today - timedelta(days=fewest_days - 1)))
        if most_days is not None:
            condition &= Q(last_order_at__gte=day_start(today - timedelta(days=most_days)))
        aggregates[f"rc_{key}"] = Count("id", filter=condition)
    aggregates["rc_never"] = Count("id", filter=Q(last_order_at__isnull=True))
    aggregates["new"] = Count(
        "id", filter=Q(signed_up_at__gte=day_start(today - timedelta(days=NEW_DAYS)))
    )
    return aggregates


def _median_spend(customers: QuerySet[Customer], size: int) -> float | None:
    """The median through ORDER BY + OFFSET, which every supported database runs the same way."""
    if not size:
        return None
    middle = (size - 1) // 2
    values = list(
        customers.order_by("total_spend").values_list("total_spend", flat=True)[
            middle : middle + (1 if size % 2 else 2)
        ]
    )
    return _money(sum(values, Decimal("0")) / len(values))


def _top_places(customers: QuerySet[Customer], size: int) -> dict[str, list[dict[str, Any]]]:
    """The five largest cities and countries. One GROUP BY (city, country) pass serves both;
    when the pairs are too many to fetch, one GROUP BY per column instead (same answer)."""
    if not size:
        return {"top_cities": [], "top_countries": []}
    pairs = list(
        customers.values_list("city", "country")
        .annotate(n=Count("id"))
        .order_by("-n", "city", "country")
        .values_list("city", "country", "n")[:MAX_PLACE_PAIRS]
    )
    if len(pairs) < MAX_PLACE_PAIRS:
        cities: dict[str, int] = {}
        countries: dict[str, int] = {}
        for city, country, n in pairs:
            cities[city] = cities.get(city, 0) + n
            countries[country] = countries.get(country, 0) + n
        ranked = {"city": cities, "country": countries}
    else:
        ranked = {
            column: dict(
                customers.values_list(column)
                .annotate(n=Count("id"))
                .order_by("-n", column)
                .values_list(column, "n")[: TOP_PLACES + 1]
            )
            for column in ("city", "country")
        }
    return {
        f"top_{plural}": [
            {"name": name, "customers": n, "share": _ratio(n, size)}
            for name, n in sorted(
                ((name, n) for name, n in ranked[column].items() if name),
                key=lambda item: (-item[1], item[0]),
            )[:TOP_PLACES]
        ]
        for column, plural in (("city", "cities"), ("country", "countries"))
    }


def _trend(customers: QuerySet[Customer] | None, *, today: date) -> dict[str, Any]:
    """Completed orders in the last 90 days against the 90 before (for members, or everyone)."""
    end = day_start(today + timedelta(days=1))
    current_start = day_start(today - timedelta(days=TREND_WINDOW_DAYS - 1))
    previous_start = day_start(today - timedelta(days=2 * TREND_WINDOW_DAYS - 1))
    orders = Order.objects.filter(
        status=Order.Status.COMPLETED, ordered_at__gte=previous_start, ordered_at__lt=end
    )
    if customers is not None:
        orders = orders.filter(customer__in=customers.values("id"))
    current = Q(ordered_at__gte=current_start)
    totals = orders.aggregate(
        current_orders=Count("id", filter=current),
        current_revenue=Sum("amount", filter=current),
        previous_orders=Count("id", filter=~current),
        previous_revenue=Sum("amount", filter=~current),
    )
    current_revenue = totals["current_revenue"] or Decimal("0")
    previous_revenue = totals["previous_revenue"] or Decimal("0")
    return {
        "window_days": TREND_WINDOW_DAYS,
        "current": {"orders": totals["current_orders"], "revenue": _money(current_revenue)},
        "previous": {"orders": totals["previous_orders"], "revenue": _money(previous_revenue)},
        "orders_change": _change(totals["current_orders"], totals["previous_orders"]),
        "revenue_change": _change(current_revenue, previous_revenue),
    }


def _indexes(segment: Mapping[str, Any], base: Mapping[str, Any]) -> dict[str, float | None]:
    keys = [
        "avg_spend",
        "median_spend",
        "avg_order_value",
        "orders_per_customer",
        "repeat_rate",
        "active_share",
        "lapsed_share",
        "new_share",
    ]
    indexes = {key: _index(segment[key], base[key]) for key in keys}
    indexes["never_ordered_share"] = _index(
        _bucket_share(segment["recency"], NEVER_BUCKET[0]),
        _bucket_share(base["recency"], NEVER_BUCKET[0]),
    )
    return indexes


def _bucket(key: str, label: str, customers: int, size: int) -> dict[str, Any]:
    return {"bucket": key, "label": label, "customers": customers, "share": _ratio(customers, size)}


def _bucket_share(buckets: list[dict[str, Any]], key: str) -> float:
    return next(bucket["share"] for bucket in buckets if bucket["bucket"] == key)


def _money(value: Decimal) -> float:
    return float(value.quantize(Decimal("0.01")))


def _ratio(part: int | Decimal, whole: int | Decimal) -> float:
    return round(float(part) / float(whole), 4) if whole else 0.0


def _index(value: float | None, base_value: float | None) -> float | None:
    if value is None or not base_value:
        return None
    return round(value / base_value, 2)


def _change(current: int | Decimal, previous: int | Decimal) -> float | None:
    if not previous:
        return None
    return round((float(current) - float(previous)) / float(previous), 4)
