"""The facts about a segment, from aggregates only: what an insight is written from.

Facts hold counts, sums, shares and ratios, city and country names; never a name, email, phone
or external id, so they are the only data a provider (and so an outside AI service) ever sees.

Two ways to the same figures, to the cent: SQL aggregates over the database (here; the base
cached by a data fingerprint), or, when the process holds the columnar snapshot (DESIGN.md,
"Scale"), the same aggregates in DuckDB (`facts_duck`: about 0.2 s at 1M customers / 10M orders
where SQLite needs 2-5 s). Both turn their totals into the document through `figures`.
"""

import copy
from collections.abc import Iterable
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.db import connection
from django.db.models import Count, F, Max, Q, QuerySet, Sum
from django.db.models.functions import Collate

from minicrm.core.replica import replica_reads
from minicrm.core.statement_timeout import statement_timeout, worker_timeout_seconds
from minicrm.customers.models import Customer, Order
from minicrm.segments.compiler import customers_matching, day_start, today_in_zone
from minicrm.segments.rules import RuleGroup
from minicrm.segments.snapshot import CustomerSnapshot, snapshot_ready_or_start_build

from .facts_duck import snapshot_facts
from .figures import (
    FACTS_VERSION,
    NEW_DAYS,
    ORDER_COUNT_BUCKETS,
    RECENCY_BUCKETS,
    TOP_PLACES,
    compare_to_base,
    facts_document,
    figures_from_totals,
    ranked_places,
    trend_bounds,
    trend_figures,
)

# The names other modules read here (the views' chart labels, the benchmarks, the tests).
__all__ = [
    "ORDER_COUNT_BUCKETS",
    "RECENCY_BUCKETS",
    "base_figures",
    "facts_snapshot_or_start_build",
    "members_facts",
    "rules_facts",
    "snapshot_facts",
]

# The whole base is the same for every segment and costs the most (a pass over the orders), so
# it is kept until the data changes (see `_data_fingerprint`) or this long has passed.
BASE_CACHE_SECONDS = 3600
MAX_PLACE_PAIRS = 5000


def rules_facts(
    *, rules: RuleGroup, today: date | None = None, snapshot: CustomerSnapshot | None = None
) -> dict[str, Any]:
    """Facts for the customers a rule tree (a segment) selects.

    From the columnar snapshot when one is given, or enabled and ready (see
    `facts_snapshot_or_start_build`), and it holds the orders the trend needs; from SQL
    otherwise. Both give the same facts.

    Every query runs under the worker's statement timeout (or the caller's, if shorter): past
    it, StatementTimeoutError, which fails the insight with that reason."""
    today = today or today_in_zone()
    if snapshot is None:
        snapshot = facts_snapshot_or_start_build()
    with statement_timeout(worker_timeout_seconds()):
        if snapshot is not None and snapshot.holds_orders_since(trend_bounds(today)[0]):
            return snapshot_facts(snapshot=snapshot, rules=rules, today=today)
        with replica_reads():
            return members_facts(members=customers_matching(rules, today=today), today=today)


def facts_snapshot_or_start_build(*, wait_seconds: float = 0.0) -> CustomerSnapshot | None:
    """The machine's columnar snapshot when enabled (MINICRM_PREVIEW_SNAPSHOT), refreshed, or
    None. While none is ready it starts building one in a background thread and facts come
    from SQL, unless the caller waits `wait_seconds` for it (the worker does: at a million
    customers a build takes about as long as one segment's SQL facts with a cold base)."""
    if not settings.MINICRM_PREVIEW_SNAPSHOT:
        return None
    return snapshot_ready_or_start_build(wait_seconds=wait_seconds)


def members_facts(*, members: QuerySet[Customer], today: date | None = None) -> dict[str, Any]:
    """Facts for the customers in `members`, each figure beside the same figure for everyone."""
    today = today or today_in_zone()
    base = base_figures(today=today)
    if members.query.where:
        segment = _group_figures(members, today=today, everyone=False)
    else:
        # Rules that match everyone: the segment is the base, no need to scan twice.
        segment = copy.deepcopy(base)
    compare_to_base(segment, base, place_counts=_sql_place_counts)
    return facts_document(segment, base, today)


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
    return figures_from_totals(
        totals,
        median=_median_spend(customers, size),
        places=_top_places(customers, size),
        trend=_trend(None if everyone else customers, today=today),
    )


def _place(column: str) -> F | Collate:
    """A city or country column compared as exact text. MariaDB's default collation would
    merge "Pune" and "pune" into one place; SQLite, PostgreSQL and the snapshot keep them
    apart, and the facts must not depend on the database."""
    if connection.vendor == "mysql":
        return Collate(F(column), "utf8mb4_bin")
    return F(column)


def _sql_place_counts(column: str, names: list[str]) -> Iterable[tuple[str, int]]:
    """How many customers of the whole base live in each of these cities (or countries)."""
    return (
        Customer.objects.annotate(place=_place(column))
        .filter(place__in=names)
        .values_list("place")
        .annotate(n=Count("id"))
        .values_list("place", "n")
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
    places = customers.annotate(place_city=_place("city"), place_country=_place("country"))
    pairs = list(
        places.values_list("place_city", "place_country")
        .annotate(n=Count("id"))
        .order_by("-n", "place_city", "place_country")
        .values_list("place_city", "place_country", "n")[:MAX_PLACE_PAIRS]
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
                places.values_list(f"place_{column}")
                .annotate(n=Count("id"))
                .order_by("-n", f"place_{column}")
                .values_list(f"place_{column}", "n")[: TOP_PLACES + 1]
            )
            for column in ("city", "country")
        }
    return ranked_places(ranked, size)


def _trend(customers: QuerySet[Customer] | None, *, today: date) -> dict[str, Any]:
    """Completed orders in the last 90 days against the 90 before (for members, or everyone)."""
    previous_start, current_start, end = trend_bounds(today)
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
    return trend_figures(
        current_orders=totals["current_orders"],
        current_revenue=totals["current_revenue"] or Decimal("0"),
        previous_orders=totals["previous_orders"],
        previous_revenue=totals["previous_revenue"] or Decimal("0"),
    )
