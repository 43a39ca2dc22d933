"""The facts document from aggregate totals: buckets, windows, shares against the whole base,
indexes. Shared by both ways the totals are computed (SQL in `facts`, DuckDB in `facts_duck`),
so the two cannot write a figure differently.
"""

from collections.abc import Callable, Iterable, Mapping
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from minicrm.core.formatting import shop_currency
from minicrm.segments.compiler import day_start

FACTS_VERSION = 1
TREND_WINDOW_DAYS = 90
TOP_PLACES = 5

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

PlaceCounts = Callable[[str, list[str]], Iterable[tuple[str, int]]]


def facts_document(segment: dict[str, Any], base: dict[str, Any], today: date) -> dict[str, Any]:
    """The whole document: the segment's figures beside the base's, and the indexes between."""
    return {
        "version": FACTS_VERSION,
        "as_of": today.isoformat(),
        "currency": shop_currency(),
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


def figures_from_totals(
    totals: Mapping[str, Any],
    *,
    median: Decimal | None,
    places: dict[str, list[dict[str, Any]]],
    trend: dict[str, Any],
) -> dict[str, Any]:
    """The figures of one group of customers from its totals (the keys `facts._aggregates`
    names)."""
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
        "median_spend": None if median is None else _money(median),
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
        **places,
        "trend": trend,
    }


def compare_to_base(
    segment: dict[str, Any], base: Mapping[str, Any], *, place_counts: PlaceCounts
) -> None:
    """Add the segment's shares of the base, and each top place's share of the base."""
    segment["share_of_customers"] = _ratio(segment["customers"], base["customers"])
    segment["share_of_revenue"] = _ratio(
        Decimal(str(segment["revenue"])), Decimal(str(base["revenue"]))
    )
    for column, key in [("city", "top_cities"), ("country", "top_countries")]:
        base_counts = {place["name"]: place["customers"] for place in base[key]}
        unknown = [place["name"] for place in segment[key] if place["name"] not in base_counts]
        if unknown:
            base_counts.update(place_counts(column, unknown))
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


def ranked_places(
    ranked: Mapping[str, Mapping[str, int]], size: int
) -> dict[str, list[dict[str, Any]]]:
    """The top places from customer counts by city and by country (at least the top 5 of
    each, names that are not empty), ranked by count then name."""
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


def trend_bounds(today: date) -> tuple[datetime, datetime, datetime]:
    """The start of the previous window, the start of the current one, the end of today."""
    return (
        day_start(today - timedelta(days=2 * TREND_WINDOW_DAYS - 1)),
        day_start(today - timedelta(days=TREND_WINDOW_DAYS - 1)),
        day_start(today + timedelta(days=1)),
    )


def trend_figures(
    *,
    current_orders: int,
    current_revenue: Decimal,
    previous_orders: int,
    previous_revenue: Decimal,
) -> dict[str, Any]:
    return {
        "window_days": TREND_WINDOW_DAYS,
        "current": {"orders": current_orders, "revenue": _money(current_revenue)},
        "previous": {"orders": previous_orders, "revenue": _money(previous_revenue)},
        "orders_change": _change(current_orders, previous_orders),
        "revenue_change": _change(current_revenue, previous_revenue),
    }


def from_cents(cents: int) -> Decimal:
    return Decimal(int(cents)).scaleb(-2)


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
