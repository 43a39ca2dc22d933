"""The ten rules the preview benchmarks measure, from one condition to nine in nested groups.

Plain data (no Django), so that every bench script, whatever settings it runs under, asks for
the same rules: bench/preview.py all of them, bench/cold_start.py and bench/load.py a marketer's
few.
"""

from datetime import date, timedelta
from typing import Any


def rules_under_test(today: date) -> list[tuple[str, dict[str, Any]]]:
    def c(field: str, operator: str, value: Any = None) -> dict[str, Any]:
        return {"field": field, "operator": operator, "value": value}

    def group(match: str, *conditions: dict[str, Any]) -> dict[str, Any]:
        return {"match": match, "conditions": list(conditions)}

    year_ago = (today - timedelta(days=365)).isoformat()
    return [
        ("1 spend > 5000", group("all", c("total_spend", "gt", 5000))),
        ("2 ordered in 30 days", group("all", c("last_order_date", "in_last_days", 30))),
        ("3 city is pune", group("all", c("city", "eq", "pune"))),
        (
            "4 spend & orders",
            group("all", c("total_spend", "gt", 20000), c("order_count", "gte", 12)),
        ),
        ("5 tagged vip", group("all", c("tags", "has_any", ["VIP"]))),
        (
            "6 DESIGN example",
            group(
                "all",
                c("total_spend", "gt", 5000),
                group(
                    "any", c("order_count", "gte", 3), c("last_order_date", "not_in_last_days", 90)
                ),
            ),
        ),
        (
            "7 AOV & country",
            group("all", c("avg_order_value", "between", [500, 2000]), c("country", "eq", "india")),
        ),
        (
            "8 cities, signup, tags",
            group(
                "all",
                c("city", "in", ["Pune", "Mumbai", "Delhi"]),
                c("signup_date", "in_last_days", 365),
                c("tags", "has_none", ["churn-risk"]),
            ),
        ),
        (
            "9 any of 3 groups",
            group(
                "any",
                group(
                    "all",
                    c("total_spend", "between", [1000, 20000]),
                    c("days_since_last_order", "gt", 60),
                ),
                group("all", c("order_count", "eq", 0), c("signup_date", "before", year_ago)),
                c("email", "contains", "gmail"),
            ),
        ),
        (
            "10 nested, 9 conditions",
            group(
                "all",
                c("country", "ne", "united states"),
                c("total_spend", "gte", 2000),
                group(
                    "any",
                    c("tags", "has_all", ["newsletter", "vip"]),
                    group(
                        "all",
                        c("order_count", "between", [5, 30]),
                        c("avg_order_value", "gt", 800),
                        c("last_order_date", "in_last_days", 180),
                    ),
                    group(
                        "all",
                        c("city", "starts_with", "b"),
                        c("first_order_date", "before", year_ago),
                    ),
                ),
                c("email", "not_contains", "test"),
            ),
        ),
    ]
