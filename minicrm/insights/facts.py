"""The facts about a segment, from aggregates only: what an insight is written from.

Facts hold counts, sums, shares and ratios, city and country names; never a name, email, phone
or external id, so they are the only data a provider (and so an outside AI service) ever sees.

Two ways to the same figures, to the cent: SQL aggregates over the database (the base cached by
a data fingerprint), or, when the process holds the columnar snapshot (DESIGN.md, "Scale"), the
same aggregates in DuckDB over its copy of the customers and their recent completed orders
(about 0.2 s at 1M customers / 10M orders where SQLite needs 2-5 s; the base is computed each
time, about 0.1 s: see bench/README_facts.md).
"""
# ruff: noqa: S608  (DuckDB SQL here is assembled from fixed fragments; values are parameters)

import copy
from collections.abc import Callable, Iterable, Mapping
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.db.models import Count, Max, Q, QuerySet, Sum

from minicrm.customers.models import Customer, Order
from minicrm.segments.compiler import customers_matching, day_start, today_in_zone
from minicrm.segments.rules import RuleGroup
from minicrm.segments.snapshot import CustomerSnapshot, micros, shared_snapshot

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


def rules_facts(
    *, rules: RuleGroup, today: date | None = None, snapshot: CustomerSnapshot | None = None
) -> dict[str, Any]:
    """Facts for the customers a rule tree (a segment) selects.

    From the columnar snapshot when one is given, or enabled and loaded in this process (see
    `facts_snapshot`), and it holds the orders the trend needs; from SQL otherwise. Both give
    the same facts."""
    today = today or today_in_zone()
    if snapshot is None:
        snapshot = facts_snapshot()
    if snapshot is not None and snapshot.holds_orders_since(_trend_bounds(today)[0]):
        return snapshot_facts(snapshot=snapshot, rules=rules, today=today)
    return members_facts(members=customers_matching(rules, today=today), today=today)


def facts_snapshot(*, wait_seconds: float = 0.0) -> CustomerSnapshot | None:
    """The process's columnar snapshot when enabled (MINICRM_PREVIEW_SNAPSHOT), refreshed, or
    None. The first call starts loading it in the background; until it is loaded facts come
    from SQL, unless the caller waits `wait_seconds` for it (the worker does: at a million
    customers the load takes about as long as one segment's SQL facts with a cold base)."""
    if not settings.MINICRM_PREVIEW_SNAPSHOT:
        return None
    return shared_snapshot(wait_seconds=wait_seconds)


def members_facts(*, members: QuerySet[Customer], today: date | None = None) -> dict[str, Any]:
    """Facts for the customers in `members`, each figure beside the same figure for everyone."""
    today = today or today_in_zone()
    base = base_figures(today=today)
    if members.query.where:
        segment = _group_figures(members, today=today, everyone=False)
    else:
        # Rules that match everyone: the segment is the base, no need to scan twice.
        segment = copy.deepcopy(base)
    _compare_to_base(segment, base, place_counts=_sql_place_counts)
    return _document(segment, base, today)


def snapshot_facts(*, snapshot: CustomerSnapshot, rules: RuleGroup, today: date) -> dict[str, Any]:
    """`rules_facts` from the columnar snapshot, which must hold the trend's orders."""
    with snapshot.lock:  # no refresh lands between the reads
        where, params = snapshot.where(rules, today=today)
        duck = _DuckFigures(snapshot, today=today)
        base = duck.figures(None, [])
        # Rules that match everyone: the segment is the base, no need to scan twice.
        segment = copy.deepcopy(base) if where is None else duck.figures(where, params)
        _compare_to_base(segment, base, place_counts=duck.place_counts)
    return _document(segment, base, today)


def _document(segment: dict[str, Any], base: dict[str, Any], today: date) -> dict[str, Any]:
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
    return _figures(
        totals,
        median=_median_spend(customers, size),
        places=_top_places(customers, size),
        trend=_trend(None if everyone else customers, today=today),
    )


def _figures(
    totals: Mapping[str, Any],
    *,
    median: Decimal | None,
    places: dict[str, list[dict[str, Any]]],
    trend: dict[str, Any],
) -> dict[str, Any]:
    """The figures of one group of customers from its totals (the keys `_aggregates` names)."""
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


PlaceCounts = Callable[[str, list[str]], Iterable[tuple[str, int]]]


def _sql_place_counts(column: str, names: list[str]) -> Iterable[tuple[str, int]]:
    """How many customers of the whole base live in each of these cities (or countries)."""
    return (
        Customer.objects.filter(**{f"{column}__in": names})
        .values_list(column)
        .annotate(n=Count("id"))
        .values_list(column, "n")
    )


def _compare_to_base(
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


def _median_spend(customers: QuerySet[Customer], size: int) -> Decimal | None:
    """The median (for an even size the mean of the two middle values) through ORDER BY +
    OFFSET, which every supported database runs the same way."""
    if not size:
        return None
    middle = (size - 1) // 2
    values = list(
        customers.order_by("total_spend").values_list("total_spend", flat=True)[
            middle : middle + (1 if size % 2 else 2)
        ]
    )
    return sum(values, Decimal("0")) / len(values)


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
    return _ranked_places(ranked, size)


def _ranked_places(
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


def _trend_bounds(today: date) -> tuple[datetime, datetime, datetime]:
    """The start of the previous window, the start of the current one, the end of today."""
    return (
        day_start(today - timedelta(days=2 * TREND_WINDOW_DAYS - 1)),
        day_start(today - timedelta(days=TREND_WINDOW_DAYS - 1)),
        day_start(today + timedelta(days=1)),
    )


def _trend(customers: QuerySet[Customer] | None, *, today: date) -> dict[str, Any]:
    """Completed orders in the last 90 days against the 90 before (for members, or everyone)."""
    previous_start, current_start, end = _trend_bounds(today)
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
    return _trend_figures(
        current_orders=totals["current_orders"],
        current_revenue=totals["current_revenue"] or Decimal("0"),
        previous_orders=totals["previous_orders"],
        previous_revenue=totals["previous_revenue"] or Decimal("0"),
    )


def _trend_figures(
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


class _DuckFigures:
    """The figures `_group_figures` computes, as DuckDB aggregates over the snapshot's tables:
    money in whole cents, instants in microseconds (see minicrm.segments.snapshot)."""

    def __init__(self, snapshot: CustomerSnapshot, *, today: date) -> None:
        self.snapshot = snapshot
        self.today = today

    def figures(self, where: str | None, params: list[Any]) -> dict[str, Any]:
        """The figures of the customers `where` selects (None: everyone)."""
        keys, select, select_params = self._aggregates()
        sql = f"SELECT {', '.join(select)} FROM customers"
        if where is not None:
            sql += f" WHERE {where}"
        row = self.snapshot.fetch(sql, [*select_params, *params])[0]
        totals: dict[str, Any] = {
            key: int(value or 0) for key, value in zip(keys, row, strict=True)
        }
        totals["revenue"] = _from_cents(totals["revenue"])
        size = totals["customers"]
        # DuckDB's median of integers is the mean of the two middle values for an even count,
        # as a double: exact here, the cents' sum stays far below 2^53.
        median = _from_cents(totals.pop("median_twice")) / 2 if size else None
        return _figures(
            totals,
            median=median,
            places=_ranked_places(
                {column: self._top(column, where, params) for column in ("city", "country")},
                size,
            ),
            trend=self._trend(where, params),
        )

    def _aggregates(self) -> tuple[list[str], list[str], list[Any]]:
        """The keys `_aggregates` names, their DuckDB expressions and their parameters."""
        keys: list[str] = []
        select: list[str] = []
        params: list[Any] = []

        def add(key: str, sql: str, *values: Any) -> None:
            keys.append(key)
            select.append(sql)
            params.extend(values)

        def start(days_ago: int) -> int | None:
            return micros(day_start(self.today - timedelta(days=days_ago)))

        add("customers", "COUNT(*)")
        add("revenue", "SUM(cents)")
        add("orders", "SUM(order_count)")
        for key, _label, low, high in ORDER_COUNT_BUCKETS:
            if high is None:
                add(f"oc_{key}", "COUNT(*) FILTER (WHERE order_count >= ?)", low)
            else:
                add(f"oc_{key}", "COUNT(*) FILTER (WHERE order_count BETWEEN ? AND ?)", low, high)
        for key, _label, fewest_days, most_days in RECENCY_BUCKETS:
            if most_days is None:
                sql = "COUNT(*) FILTER (WHERE last_order_at < ?)"
                add(f"rc_{key}", sql, start(fewest_days - 1))
            else:
                sql = "COUNT(*) FILTER (WHERE last_order_at < ? AND last_order_at >= ?)"
                add(f"rc_{key}", sql, start(fewest_days - 1), start(most_days))
        add("rc_never", "COUNT(*) FILTER (WHERE last_order_at IS NULL)")
        add("new", "COUNT(*) FILTER (WHERE signed_up_at >= ?)", start(NEW_DAYS))
        add("median_twice", "CAST(2 * median(cents) AS BIGINT)")
        return keys, select, params

    def _top(self, column: str, where: str | None, params: list[Any]) -> dict[str, int]:
        """The largest cities (or countries) that have a name, by count then name."""
        condition = f"{column} <> ''" + ("" if where is None else f" AND {where}")
        rows = self.snapshot.fetch(
            f"SELECT {column}, COUNT(*) AS n FROM customers WHERE {condition} "
            f"GROUP BY {column} ORDER BY n DESC, {column} LIMIT {TOP_PLACES}",
            params,
        )
        return {name: int(n) for name, n in rows}

    def _trend(self, where: str | None, params: list[Any]) -> dict[str, Any]:
        previous_start, current_start, end = (
            micros(moment) for moment in _trend_bounds(self.today)
        )
        sql = (
            "SELECT COUNT(*) FILTER (WHERE ordered_at >= ?), "
            "SUM(cents) FILTER (WHERE ordered_at >= ?), "
            "COUNT(*) FILTER (WHERE ordered_at < ?), "
            "SUM(cents) FILTER (WHERE ordered_at < ?) "
            "FROM recent_orders WHERE ordered_at >= ? AND ordered_at < ?"
        )
        if where is not None:
            sql += f" AND customer_id IN (SELECT id FROM customers WHERE {where})"
        bounds = [current_start] * 4 + [previous_start, end]
        current_orders, current_cents, previous_orders, previous_cents = self.snapshot.fetch(
            sql, [*bounds, *params]
        )[0]
        return _trend_figures(
            current_orders=int(current_orders),
            current_revenue=_from_cents(current_cents or 0),
            previous_orders=int(previous_orders),
            previous_revenue=_from_cents(previous_cents or 0),
        )

    def place_counts(self, column: str, names: list[str]) -> Iterable[tuple[str, int]]:
        """`_sql_place_counts` over the snapshot (exact names, as SQLite and PostgreSQL match)."""
        rows = self.snapshot.fetch(
            f"SELECT {column}, COUNT(*) FROM customers WHERE {column} IN (SELECT unnest(?)) "
            f"GROUP BY {column}",
            [names],
        )
        return [(name, int(n)) for name, n in rows]


def _from_cents(cents: int) -> Decimal:
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
