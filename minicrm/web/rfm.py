"""The dashboard's RFM grid: recency x frequency quintiles of the customers who last ordered in a
date range, with each band's edges shown and the rules that select each cell.

Quintile edges are values at fixed ranks, so anyone can check them: with n customers sorted by a
dimension, the edge of band q (q = 1..4) is the value at position ceil(n * q / 5) (1-based), and a
band holds the values above the previous edge up to its own. Equal edges merge their bands (most
customers have one order), so a dimension may show fewer than five. Recency is counted in whole
days since the last order, so each band is a range of days and the builder's
`days_since_last_order between` selects exactly its customers; frequency is the all-time
`order_count`. Monetary (all-time `total_spend`) is shown as its edges and each cell's average.

Queries: a count and four single-row reads at an offset of the last_order_at index (the recency
edges), one GROUP BY (recency band, order_count) that gives the frequency histogram, the 25 counts
and their spend, and four reads at an offset of the total_spend order (the monetary edges).
"""

import math
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from django.db.models import Case, Count, IntegerField, Q, QuerySet, Sum, Value, When
from django.utils import timezone

from minicrm.customers.models import Customer

from .date_range import DateRange, day_start

QUANTILES = 5


@dataclass(frozen=True)
class Band:
    """Values from `low` to `high`, both included; `high` None is open-ended."""

    low: Any
    high: Any


@dataclass(frozen=True)
class RfmCell:
    recency: int  # index into Rfm.recency (0 = most recent)
    frequency: int  # index into Rfm.frequency (0 = fewest orders)
    customers: int
    average_spend: Decimal | None
    rules: dict[str, Any]


@dataclass(frozen=True)
class Rfm:
    customers: int
    recency: list[Band]  # days since the last order, most recent first
    frequency: list[Band]  # orders, fewest first
    monetary: list[Band]  # total spend, lowest first
    cells: list[list[RfmCell]]  # [recency][frequency]


def quantile_positions(total: int) -> list[int]:
    """0-based positions of the four edges among `total` sorted values."""
    return [math.ceil(total * q / QUANTILES) - 1 for q in range(1, QUANTILES)]


def _edges_at(queryset: QuerySet[Customer], order: str, total: int) -> list[Any]:
    field = order.lstrip("-")
    values = queryset.order_by(order).values_list(field, flat=True)
    return [values[position] for position in quantile_positions(total)]


def _frequency_edges(histogram: list[tuple[int, int]], total: int) -> list[int]:
    """The edges from a histogram of order counts (value, customers), ascending."""
    edges, seen = [], 0
    positions = iter(quantile_positions(total))
    position = next(positions)
    for value, customers in histogram:
        seen += customers
        while position < seen:
            edges.append(value)
            position = next(positions, total)
    return edges


def _bands(edges: list[Any], *, low: Any, high: Any, step: Any) -> list[Band]:
    """Bands up to each distinct edge, then the rest up to `high`; empty bands dropped."""
    bands: list[Band] = []
    for edge in [*edges, high]:
        if edge is not None and edge < low:
            continue
        if edge is None or not bands or edge > bands[-1].high:
            bands.append(Band(low=low, high=edge))
            low = edge + step if edge is not None else low
    return bands


def _days_since(moment: Any, today: date) -> int:
    return (today - timezone.localdate(moment)).days


def _recency_rule(band: Band) -> dict[str, Any]:
    return {"field": "days_since_last_order", "operator": "between", "value": [band.low, band.high]}


def _frequency_rule(band: Band) -> dict[str, Any]:
    if band.high is None:
        return {"field": "order_count", "operator": "gte", "value": band.low}
    return {"field": "order_count", "operator": "between", "value": [band.low, band.high]}


def _case(conditions: list[Q]) -> Case:
    return Case(
        *(When(condition, then=Value(index)) for index, condition in enumerate(conditions)),
        default=Value(len(conditions)),
        output_field=IntegerField(),
    )


def _read_whole(queryset: QuerySet[Customer], start: datetime, end: datetime) -> QuerySet[Customer]:
    """The customers whose last order is in [start, end), found by reading the stats index whole.

    The range is written as an expression no index answers, on purpose: the reads that cover a
    fifth or more of the customers then scan `customer_stats_cover_idx` (total_spend,
    order_count, last_order_at: narrow, already in total_spend order) instead of looking up each
    customer of the range in the wide table. Measured on the 1M-customer SQLite bench: the
    grid's GROUP BY 1.1 s instead of 18 s, a monetary edge 0.13 s instead of 10 s.
    """
    in_range = Case(
        When(Q(last_order_at__gte=start, last_order_at__lt=end), then=Value(1)),
        default=Value(0),
        output_field=IntegerField(),
    )
    return queryset.alias(in_range=in_range).filter(in_range=1)


def rfm_compute(*, date_range: DateRange, today: date) -> Rfm:
    start, end = date_range.bounds()
    # Counted and ranked by recency through the last_order_at index; grouped and ranked by
    # spend through the stats index (`_read_whole`).
    buyers = Customer.objects.filter(last_order_at__gte=start, last_order_at__lt=end)
    scanned = _read_whole(Customer.objects.all(), start, end)
    total = buyers.count()
    if not total:
        return Rfm(customers=0, recency=[], frequency=[], monetary=[], cells=[])
    recency = _bands(
        [_days_since(moment, today) for moment in _edges_at(buyers, "-last_order_at", total)],
        low=(today - date_range.end).days,
        high=(today - date_range.start).days,
        step=1,
    )
    # A customer falls in the first band whose condition holds: the cases go in band order.
    recency_case = _case(
        [Q(last_order_at__gte=day_start(today - timedelta(days=band.high))) for band in recency]
    )
    # One pass gives the grid and the frequency histogram: customers and spend per
    # (recency band, order count); the frequency bands then group the order counts.
    groups = list(
        scanned.annotate(r=recency_case)
        .order_by()
        .values("r", "order_count")
        .annotate(customers=Count("*"), spend=Sum("total_spend"))
        .values_list("r", "order_count", "customers", "spend")
    )
    histogram: dict[int, int] = {}
    for _r, orders, customers, _spend in groups:
        histogram[orders] = histogram.get(orders, 0) + customers
    frequency = _bands(_frequency_edges(sorted(histogram.items()), total), low=1, high=None, step=1)
    monetary = _bands(
        _edges_at(scanned, "total_spend", total), low=Decimal("0"), high=None, step=Decimal("0.01")
    )
    found: dict[tuple[int, int], tuple[int, Decimal]] = {}
    for r, orders, customers, spend in groups:
        f = next(
            index
            for index, band in enumerate(frequency)
            if band.high is None or orders <= band.high
        )
        before, before_spend = found.get((r, f), (0, Decimal("0")))
        found[(r, f)] = (before + customers, before_spend + Decimal(spend or 0))
    cells = []
    for r, recency_band in enumerate(recency):
        row = []
        for f, frequency_band in enumerate(frequency):
            customers, spend = found.get((r, f), (0, Decimal("0")))
            average = (spend / customers).quantize(Decimal("0.01")) if customers else None
            rules = {
                "match": "all",
                "conditions": [_recency_rule(recency_band), _frequency_rule(frequency_band)],
            }
            row.append(RfmCell(r, f, customers, average, rules))
        cells.append(row)
    return Rfm(
        customers=total, recency=recency, frequency=frequency, monetary=monetary, cells=cells
    )
