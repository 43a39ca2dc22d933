"""The built-in text parser: common phrasings to exact rule trees; the unknown is never guessed."""

from datetime import date
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from minicrm.insights.audience_text import parse_audience_text
from minicrm.segments.rules import parse_rules

TODAY = date(2025, 6, 30)


def c(field: str, operator: str, value: Any = None) -> dict[str, Any]:
    node: dict[str, Any] = {"field": field, "operator": operator}
    if value is not None:
        node["value"] = value
    return node


def all_of(*conditions: dict[str, Any]) -> dict[str, Any]:
    return {"match": "all", "conditions": list(conditions)}


def any_of(*conditions: dict[str, Any]) -> dict[str, Any]:
    return {"match": "any", "conditions": list(conditions)}


PHRASINGS = [
    # Spend: currency signs, commas, k / lakh, comparisons, ranges.
    ("spent more than ₹5,000", all_of(c("total_spend", "gt", 5000))),
    ("customers who spent over Rs. 10k", all_of(c("total_spend", "gt", 10000))),
    ("spent less than Rs 500", all_of(c("total_spend", "lt", 500))),
    ("spent at least 2.5 lakh", all_of(c("total_spend", "gte", 250000))),
    ("spent at most 999.50", all_of(c("total_spend", "lte", 999.5))),
    ("spent between 1,000 and 5,000", all_of(c("total_spend", "between", [1000, 5000]))),
    ("spent 5000 or more in total", all_of(c("total_spend", "gte", 5000))),
    ("with a total spend above INR 20,000", all_of(c("total_spend", "gt", 20000))),
    ("average order value above 2000", all_of(c("avg_order_value", "gt", 2000))),
    # Order counts.
    ("at least 3 orders", all_of(c("order_count", "gte", 3))),
    ("more than 5 orders", all_of(c("order_count", "gt", 5))),
    ("fewer than 2 orders", all_of(c("order_count", "lt", 2))),
    ("at most 4 orders", all_of(c("order_count", "lte", 4))),
    ("3 or more orders", all_of(c("order_count", "gte", 3))),
    ("exactly 1 order", all_of(c("order_count", "eq", 1))),
    ("between 2 and 5 orders", all_of(c("order_count", "between", [2, 5]))),
    ("ordered at least 3 times", all_of(c("order_count", "gte", 3))),
    ("ordered more than once", all_of(c("order_count", "gt", 1))),
    ("repeat customers", all_of(c("order_count", "gte", 2))),
    ("never ordered", all_of(c("order_count", "eq", 0))),
    ("people who have never placed an order", all_of(c("order_count", "eq", 0))),
    # Recency in days, weeks, months.
    ("ordered in the last 30 days", all_of(c("last_order_date", "in_last_days", 30))),
    ("bought something in the last week", all_of(c("last_order_date", "in_last_days", 7))),
    ("haven't ordered in the last 2 weeks", all_of(c("last_order_date", "not_in_last_days", 14))),
    ("no orders in the last 3 months", all_of(c("last_order_date", "not_in_last_days", 90))),
    ("has not purchased in 60 days", all_of(c("last_order_date", "not_in_last_days", 60))),
    ("inactive for 6 months", all_of(c("last_order_date", "not_in_last_days", 180))),
    ("last ordered more than 60 days ago", all_of(c("days_since_last_order", "gt", 60))),
    # Dates.
    ("last ordered before 2024-01-01", all_of(c("last_order_date", "before", "2024-01-01"))),
    ("ordered after 1 March 2024", all_of(c("last_order_date", "after", "2024-03-01"))),
    ("ordered before March 2024", all_of(c("first_order_date", "before", "2024-03-01"))),
    ("first ordered since 15/08/2023", all_of(c("first_order_date", "after", "2023-08-14"))),
    ("signed up in the last 30 days", all_of(c("signup_date", "in_last_days", 30))),
    ("joined after March 2024", all_of(c("signup_date", "after", "2024-03-31"))),
    ("signed up before Jan 15, 2025", all_of(c("signup_date", "before", "2025-01-15"))),
    ("signed up in 2023", all_of(c("signup_date", "between", ["2023-01-01", "2023-12-31"]))),
    # Places.
    ("from Mumbai", all_of(c("city", "eq", "Mumbai"))),
    ("customers in India", all_of(c("country", "eq", "India"))),
    ("living in the city of Pune", all_of(c("city", "eq", "Pune"))),
    ("from Mumbai, Pune or Delhi", all_of(c("city", "in", ["Mumbai", "Pune", "Delhi"]))),
    ("not from Delhi", all_of(c("city", "ne", "Delhi"))),
    ("country is Sri Lanka", all_of(c("country", "eq", "Sri Lanka"))),
    # Tags.
    ("tagged vip", all_of(c("tags", "has_any", ["vip"]))),
    ("with the tag 'Wholesale'", all_of(c("tags", "has_any", ["wholesale"]))),
    ("with the vip tag", all_of(c("tags", "has_any", ["vip"]))),
    ("tagged vip and gold", all_of(c("tags", "has_all", ["vip", "gold"]))),
    ("tagged vip or gold", all_of(c("tags", "has_any", ["vip", "gold"]))),
    ("not tagged churned", all_of(c("tags", "has_none", ["churned"]))),
    # Email.
    ("email contains gmail", all_of(c("email", "contains", "gmail"))),
    ("email ends with @yahoo.com", all_of(c("email", "contains", "@yahoo.com"))),
    ("email starts with sales", all_of(c("email", "starts_with", "sales"))),
    ("without an email", all_of(c("email", "is_empty"))),
    # Combinations: "and" binds tighter than "or"; "either" and parentheses nest an any-group.
    (
        "customers who spent over 5000 and have not ordered in 90 days",
        all_of(c("total_spend", "gt", 5000), c("last_order_date", "not_in_last_days", 90)),
    ),
    (
        "spent over 5000 and ordered in the last 30 days or tagged vip",
        any_of(
            all_of(c("total_spend", "gt", 5000), c("last_order_date", "in_last_days", 30)),
            c("tags", "has_any", ["vip"]),
        ),
    ),
    (
        "spent over 5000 and either ordered in the last 30 days or tagged vip",
        all_of(
            c("total_spend", "gt", 5000),
            any_of(c("last_order_date", "in_last_days", 30), c("tags", "has_any", ["vip"])),
        ),
    ),
    (
        "at least 2 orders and (from Mumbai or tagged vip)",
        all_of(
            c("order_count", "gte", 2),
            any_of(c("city", "eq", "Mumbai"), c("tags", "has_any", ["vip"])),
        ),
    ),
    (
        "from Pune who spent over ₹20,000, with at least 3 orders",
        all_of(c("city", "eq", "Pune"), c("total_spend", "gt", 20000), c("order_count", "gte", 3)),
    ),
    (
        "customers who spent over 5000 in Mumbai",
        all_of(c("total_spend", "gt", 5000), c("city", "eq", "Mumbai")),
    ),
    (
        "whose email contains @acme.com and that have at least 2 orders",
        all_of(c("email", "contains", "@acme.com"), c("order_count", "gte", 2)),
    ),
    (
        "haven't purchased anything in 60 days but spent over 2k",
        all_of(c("last_order_date", "not_in_last_days", 60), c("total_spend", "gt", 2000)),
    ),
]


@pytest.mark.parametrize(("text", "expected"), PHRASINGS, ids=[text for text, _ in PHRASINGS])
def test_phrasing_becomes_exact_rules(text: str, expected: dict[str, Any]) -> None:
    parsed = parse_audience_text(text, today=TODAY)

    assert parsed.rules == expected
    assert parsed.unparsed == []
    # The rules are valid and already canonical.
    assert parse_rules(parsed.rules).to_dict() == expected


def test_there_are_at_least_thirty_phrasings() -> None:
    assert len(PHRASINGS) >= 30


@pytest.mark.parametrize(
    ("text", "unparsed"),
    [
        ("blah", ["blah"]),
        ("high value customers", ["high value customers"]),
        ("spent over ₹20,000 in the last year", ["spent over ₹20,000 in the last year"]),
        ("ordered in 2024", ["ordered in 2024"]),
    ],
)
def test_what_cannot_be_read_is_left_out_not_guessed(text: str, unparsed: list[str]) -> None:
    parsed = parse_audience_text(text, today=TODAY)

    assert parsed.rules == {"match": "all", "conditions": []}
    assert parsed.unparsed == unparsed


def test_a_partly_understood_text_keeps_what_it_understood() -> None:
    parsed = parse_audience_text("who love shoes and spent over 100", today=TODAY)

    assert parsed.rules == all_of(c("total_spend", "gt", 100))
    assert parsed.unparsed == ["love shoes"]


@pytest.mark.parametrize(
    ("text", "rules", "unparsed"),
    [
        ("from Pune and love shoes", all_of(c("city", "eq", "Pune")), ["love shoes"]),
        ("from mumbai or delhi", all_of(c("city", "eq", "mumbai")), ["delhi"]),
        ("tagged vip and big spenders", all_of(c("tags", "has_any", ["vip"])), ["big spenders"]),
    ],
)
def test_only_names_that_look_like_list_items_extend_a_list(
    text: str, rules: dict[str, Any], unparsed: list[str]
) -> None:
    parsed = parse_audience_text(text, today=TODAY)

    assert (parsed.rules, parsed.unparsed) == (rules, unparsed)


def test_a_bare_name_after_a_non_list_condition_is_not_guessed() -> None:
    parsed = parse_audience_text("spent over 5000 or loyal", today=TODAY)

    assert parsed.rules == all_of(c("total_spend", "gt", 5000))
    assert parsed.unparsed == ["loyal"]


def test_filler_words_alone_are_not_reported() -> None:
    parsed = parse_audience_text("show me customers that spent over 100", today=TODAY)

    assert parsed.rules == all_of(c("total_spend", "gt", 100))
    assert parsed.unparsed == []


def test_approximations_are_explained_in_notes() -> None:
    months = parse_audience_text("no orders in the last 3 months", today=TODAY)
    ends_with = parse_audience_text("email ends with @yahoo.com", today=TODAY)

    assert months.notes == [
        "“no orders in the last 3 months” counts a month as 30 days and a year as 365."
    ]
    assert ends_with.notes == [
        "“email ends with @yahoo.com” is read as email contains “@yahoo.com” (no ends-with rule)."
    ]


def test_a_date_without_a_year_is_in_the_current_year() -> None:
    parsed = parse_audience_text("signed up after 1 Jan", today=TODAY)

    assert parsed.rules == all_of(c("signup_date", "after", "2025-01-01"))


@settings(max_examples=100, deadline=None)
@given(st.text(max_size=120))
def test_any_text_gives_valid_rules_or_nothing(text: str) -> None:
    parsed = parse_audience_text(text, today=TODAY)

    # Whatever comes out is a valid tree (or empty), never an exception.
    rules = parse_rules(parsed.rules)
    assert isinstance(parsed.unparsed, list)
    assert len(list(rules.walk())) <= 100
