"""The facts from the process's columnar snapshot (DuckDB): the same totals the SQL path
computes, over the snapshot's customers and recent completed orders, in whole cents and
microseconds (see minicrm.segments.snapshot). About 0.2 s a segment at 1M customers / 10M
orders, where SQLite needs 2-5 s (bench/README_facts.md).
"""
# ruff: noqa: S608  (DuckDB SQL here is assembled from fixed fragments; values are parameters)

import copy
from collections.abc import Iterable
from datetime import date, timedelta
from typing import Any

from minicrm.segments.compiler import day_start
from minicrm.segments.rules import RuleGroup
from minicrm.segments.snapshot import CustomerSnapshot, micros

from .figures import (
    NEW_DAYS,
    ORDER_COUNT_BUCKETS,
    RECENCY_BUCKETS,
    TOP_PLACES,
    compare_to_base,
    facts_document,
    figures_from_totals,
    from_cents,
    ranked_places,
    trend_bounds,
    trend_figures,
)


def snapshot_facts(*, snapshot: CustomerSnapshot, rules: RuleGroup, today: date) -> dict[str, Any]:
    """`rules_facts` from the columnar snapshot, which must hold the trend's orders."""
    with snapshot.lock:  # no refresh lands between the reads
        where, params = snapshot.where(rules, today=today)
        duck = _DuckFigures(snapshot, today=today)
        base = duck.figures(None, [])
        # Rules that match everyone: the segment is the base, no need to scan twice.
        segment = copy.deepcopy(base) if where is None else duck.figures(where, params)
        compare_to_base(segment, base, place_counts=duck.place_counts)
    return facts_document(segment, base, today)


class _DuckFigures:
    """The figures `facts._group_figures` computes in SQL, as DuckDB aggregates over the
    snapshot's tables: money in whole cents, instants in microseconds (see segments.snapshot)."""

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
        totals["revenue"] = from_cents(totals["revenue"])
        size = totals["customers"]
        # DuckDB's median of integers is the mean of the two middle values for an even count,
        # as a double: exact here, the cents' sum stays far below 2^53.
        median = from_cents(totals.pop("median_twice")) / 2 if size else None
        return figures_from_totals(
            totals,
            median=median,
            places=ranked_places(
                {column: self._top(column, where, params) for column in ("city", "country")},
                size,
            ),
            trend=self._trend(where, params),
        )

    def _aggregates(self) -> tuple[list[str], list[str], list[Any]]:
        """The keys `facts._aggregates` names, their DuckDB expressions and their parameters."""
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
        previous_start, current_start, end = (micros(moment) for moment in trend_bounds(self.today))
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
        return trend_figures(
            current_orders=int(current_orders),
            current_revenue=from_cents(current_cents or 0),
            previous_orders=int(previous_orders),
            previous_revenue=from_cents(previous_cents or 0),
        )

    def place_counts(self, column: str, names: list[str]) -> Iterable[tuple[str, int]]:
        """`facts._sql_place_counts` over the snapshot (exact names, as the SQL path compares
        them on every database)."""
        rows = self.snapshot.fetch(
            f"SELECT {column}, COUNT(*) FROM customers WHERE {column} IN (SELECT unnest(?)) "
            f"GROUP BY {column}",
            [names],
        )
        return [(name, int(n)) for name, n in rows]
