"""Each field and operator of the compiler at its boundaries, in the configured time zone."""

from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from django.test import override_settings

from minicrm.customers.models import Customer, CustomerTag
from minicrm.segments.compiler import compile_rules, customers_matching, day_start, today_in_zone
from minicrm.segments.rules import parse_rules
from tests.factories import CustomerFactory

KOLKATA = ZoneInfo("Asia/Kolkata")
TODAY = date(2025, 6, 15)


def customer(key: str, **fields: Any) -> Customer:
    tags = fields.pop("tags", [])
    made = CustomerFactory(external_id=key, **fields)
    for tag in tags:
        CustomerTag.objects.create(customer=made, name=tag)
    return made


def ordered(key: str, total: str, count: int, last: datetime, **fields: Any) -> Customer:
    return customer(
        key,
        total_spend=Decimal(total),
        order_count=count,
        first_order_at=fields.pop("first", last),
        last_order_at=last,
        **fields,
    )


def keys(field: str, operator: str, value: Any = None) -> set[str]:
    condition: dict[str, Any] = {"field": field, "operator": operator}
    if value is not None:
        condition["value"] = value
    rules = parse_rules({"match": "all", "conditions": [condition]})
    return set(customers_matching(rules, today=TODAY).values_list("external_id", flat=True))


def local(day: date, hour: int = 0, minute: int = 0, second: int = 0, micro: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute, second, micro, tzinfo=KOLKATA)


@pytest.fixture
def spenders(db: None) -> None:
    customer("never")
    ordered("low", "4999.99", 1, datetime(2025, 1, 1, tzinfo=UTC))
    ordered("exact", "5000.00", 2, datetime(2025, 1, 1, tzinfo=UTC))
    ordered("high", "5000.01", 3, datetime(2025, 1, 1, tzinfo=UTC))


@pytest.mark.parametrize(
    ("operator", "value", "expected"),
    [
        ("gt", 5000, {"high"}),
        ("gte", 5000, {"exact", "high"}),
        ("lt", 5000, {"never", "low"}),
        ("lte", 5000, {"never", "low", "exact"}),
        ("eq", 5000, {"exact"}),
        ("ne", 5000, {"never", "low", "high"}),
        ("between", [4999.99, 5000], {"low", "exact"}),
        ("between", [5000, 5000], {"exact"}),
        ("eq", 0, {"never"}),
    ],
)
def test_total_spend_boundaries(
    spenders: None, operator: str, value: Any, expected: set[str]
) -> None:
    assert keys("total_spend", operator, value) == expected


@pytest.mark.parametrize(
    ("operator", "value", "expected"),
    [
        ("gt", 2, {"high"}),
        ("gte", 2, {"exact", "high"}),
        ("lt", 2, {"never", "low"}),
        ("lte", 2, {"never", "low", "exact"}),
        ("eq", 0, {"never"}),
        ("ne", 2, {"never", "low", "high"}),
        ("between", [1, 2], {"low", "exact"}),
    ],
)
def test_order_count_boundaries(
    spenders: None, operator: str, value: Any, expected: set[str]
) -> None:
    assert keys("order_count", operator, value) == expected


def test_total_spend_is_exact_even_when_the_stored_sum_carries_float_noise(db: None) -> None:
    # 0.1 + 0.2 summed as binary floats (as SQLite does) is 0.30000000000000004.
    ordered("sum", "0.30", 2, datetime(2025, 1, 1, tzinfo=UTC))
    Customer.objects.filter(external_id="sum").update(total_spend=0.1 + 0.2)
    assert keys("total_spend", "eq", 0.3) == {"sum"}
    assert keys("total_spend", "gt", 0.3) == set()
    assert keys("avg_order_value", "eq", 0.15) == {"sum"}


@pytest.mark.parametrize(
    ("operator", "value", "expected"),
    [
        # Averages: third = 100/3 = 33.33, tie_down = 0.01/2 = 0.005 -> 0.00 (half-even),
        # tie_up = 0.03/2 = 0.015 -> 0.02, whole = 50/2 = 25.00.
        ("eq", 33.33, {"third"}),
        ("ne", 33.33, {"tie_down", "tie_up", "whole"}),
        ("eq", 0, {"tie_down"}),
        ("eq", 0.02, {"tie_up"}),
        ("gt", 25, {"third"}),
        ("gte", 25, {"third", "whole"}),
        ("lt", 0.02, {"tie_down"}),
        ("lte", 0.02, {"tie_down", "tie_up"}),
        ("between", [0.01, 25], {"tie_up", "whole"}),
    ],
)
def test_avg_order_value_is_rounded_half_even_to_the_cent(
    db: None, operator: str, value: Any, expected: set[str]
) -> None:
    moment = datetime(2025, 1, 1, tzinfo=UTC)
    customer("never")
    ordered("third", "100.00", 3, moment)
    ordered("tie_down", "0.01", 2, moment)
    ordered("tie_up", "0.03", 2, moment)
    ordered("whole", "50.00", 2, moment)
    assert keys("avg_order_value", operator, value) == expected


@override_settings(TIME_ZONE="Asia/Kolkata")
@pytest.mark.parametrize(
    ("operator", "value", "expected"),
    [
        ("on", "2025-06-10", {"start", "end"}),
        ("before", "2025-06-10", {"prior"}),
        ("after", "2025-06-10", {"next"}),
        ("between", ["2025-06-09", "2025-06-10"], {"prior", "start", "end"}),
        ("between", ["2025-06-10", "2025-06-11"], {"start", "end", "next"}),
        ("in_last_days", 5, {"start", "end", "next"}),
        ("in_last_days", 4, {"next"}),
        ("not_in_last_days", 5, {"prior", "never"}),
        ("not_in_last_days", 4, {"prior", "start", "end", "never"}),
        ("is_empty", None, {"never"}),
        ("is_not_empty", None, {"prior", "start", "end", "next"}),
    ],
)
def test_dates_compare_local_days_in_the_configured_zone(
    db: None, operator: str, value: Any, expected: set[str]
) -> None:
    day = date(2025, 6, 10)  # TODAY - 5 days
    customer("never")
    # 23:59:59.999999 on the 9th in Kolkata is 18:29:59 UTC on the 9th; midnight on the 10th
    # in Kolkata is 18:30 UTC on the 9th, still the 9th in UTC.
    ordered("prior", "10", 1, local(date(2025, 6, 9), 23, 59, 59, 999999))
    ordered("start", "10", 1, local(day))
    ordered("end", "10", 1, local(day, 23, 59, 59, 999999))
    ordered("next", "10", 1, local(date(2025, 6, 11)))
    assert keys("last_order_date", operator, value) == expected


@override_settings(TIME_ZONE="Asia/Kolkata")
@pytest.mark.parametrize(
    ("operator", "value", "expected"),
    [
        ("eq", 5, {"five_start", "five_end"}),
        ("ne", 5, {"six", "four"}),
        ("gt", 5, {"six"}),
        ("gte", 5, {"six", "five_start", "five_end"}),
        ("lt", 5, {"four"}),
        ("lte", 5, {"four", "five_start", "five_end"}),
        ("between", [4, 5], {"four", "five_start", "five_end"}),
        ("eq", 0, set()),
    ],
)
def test_days_since_last_order_counts_whole_local_days(
    db: None, operator: str, value: Any, expected: set[str]
) -> None:
    customer("never")
    ordered("six", "10", 1, local(date(2025, 6, 9), 23, 59))
    ordered("five_start", "10", 1, local(date(2025, 6, 10)))
    ordered("five_end", "10", 1, local(date(2025, 6, 10), 23, 59, 59))
    ordered("four", "10", 1, local(date(2025, 6, 11)))
    assert keys("days_since_last_order", operator, value) == expected


def test_first_order_and_signup_dates_use_their_own_columns(db: None) -> None:
    early = datetime(2024, 1, 5, 12, tzinfo=UTC)
    late = datetime(2025, 6, 14, 12, tzinfo=UTC)
    ordered("old", "10", 2, late, first=early, signed_up_at=None)
    customer("fresh", signed_up_at=late)
    assert keys("first_order_date", "on", "2024-01-05") == {"old"}
    assert keys("first_order_date", "is_empty") == {"fresh"}
    assert keys("signup_date", "is_empty") == {"old"}
    assert keys("signup_date", "in_last_days", 1) == {"fresh"}
    assert keys("signup_date", "not_in_last_days", 1) == {"old"}


@pytest.fixture
def places(db: None) -> None:
    customer("pune", city="Pune", email="Asha@Example.com", country="India")
    customer("pune_upper", city="PUNE", email="b@example.org", country="india")
    customer("spaced", city="Pune ", email="c@example.com", country="")
    customer("percent", city="50%_off", email="d_e@x.io", country="USA")
    customer("empty", city="", email="", country="")


@pytest.mark.parametrize(
    ("field", "operator", "value", "expected"),
    [
        ("city", "eq", "pune", {"pune", "pune_upper"}),
        ("city", "ne", "pune", {"spaced", "percent", "empty"}),
        ("city", "contains", "UN", {"pune", "pune_upper", "spaced"}),
        ("city", "contains", "%", {"percent"}),
        ("city", "contains", "_", {"percent"}),
        ("city", "not_contains", "un", {"percent", "empty"}),
        ("city", "starts_with", "pu", {"pune", "pune_upper", "spaced"}),
        ("city", "starts_with", "%", set()),
        ("city", "in", ["PUNE", "50%_OFF"], {"pune", "pune_upper", "percent"}),
        ("city", "not_in", ["pune"], {"spaced", "percent", "empty"}),
        ("city", "is_empty", None, {"empty"}),
        ("city", "is_not_empty", None, {"pune", "pune_upper", "spaced", "percent"}),
        ("email", "contains", "@example.", {"pune", "pune_upper", "spaced"}),
        ("email", "eq", "asha@example.COM", {"pune"}),
        ("email", "starts_with", "D_", {"percent"}),
        ("email", "starts_with", "dx", set()),
        ("country", "ne", "India", {"percent", "spaced", "empty"}),
        ("country", "is_empty", None, {"spaced", "empty"}),
    ],
)
def test_text_ignores_case_and_a_negation_includes_the_empty_text(
    places: None, field: str, operator: str, value: Any, expected: set[str]
) -> None:
    assert keys(field, operator, value) == expected


@pytest.mark.parametrize(
    ("operator", "value", "expected"),
    [
        ("has_any", ["VIP", "b2b"], {"vip", "both"}),
        ("has_all", ["vip", "New"], {"both"}),
        ("has_all", ["vip", "VIP"], {"vip", "both"}),
        ("has_none", ["vip"], {"new", "untagged"}),
        ("has_none", ["nobody-has-this"], {"vip", "new", "both", "untagged"}),
    ],
)
def test_tags_ignore_case(db: None, operator: str, value: Any, expected: set[str]) -> None:
    customer("vip", tags=["vip"])
    customer("new", tags=["new"])
    customer("both", tags=["vip", "new"])
    customer("untagged")
    assert keys("tags", operator, value) == expected


def test_groups_nest_and_empty_groups_match_everyone(spenders: None) -> None:
    def run(rules: dict[str, Any]) -> set[str]:
        group = parse_rules(rules)
        return set(customers_matching(group, today=TODAY).values_list("external_id", flat=True))

    everyone = {"never", "low", "exact", "high"}
    assert run({"match": "all", "conditions": []}) == everyone
    assert run({"match": "any", "conditions": []}) == everyone
    spend = {"field": "total_spend", "operator": "gte", "value": 5000}
    few = {"field": "order_count", "operator": "lt", "value": 1}
    assert (
        run({"match": "any", "conditions": [spend, {"match": "all", "conditions": []}]}) == everyone
    )
    assert run({"match": "all", "conditions": [spend, {"match": "any", "conditions": []}]}) == {
        "exact",
        "high",
    }
    assert run({"match": "any", "conditions": [spend, few]}) == {"never", "exact", "high"}
    assert run(
        {"match": "all", "conditions": [spend, {"match": "any", "conditions": [few, spend]}]}
    ) == {"exact", "high"}


def test_values_travel_as_parameters(db: None) -> None:
    rules = parse_rules(
        {
            "match": "all",
            "conditions": [{"field": "city", "operator": "eq", "value": "x' OR 1=1 --"}],
        }
    )
    sql, params = Customer.objects.filter(compile_rules(rules)).query.sql_with_params()
    assert "OR 1=1" not in sql
    assert "x' OR 1=1 --" in [str(param) for param in params]


@override_settings(TIME_ZONE="Asia/Kolkata")
def test_today_and_day_start_follow_the_configured_zone() -> None:
    assert day_start(date(2025, 6, 10)) == datetime(2025, 6, 9, 18, 30, tzinfo=UTC)
    assert today_in_zone() == datetime.now(KOLKATA).date()
