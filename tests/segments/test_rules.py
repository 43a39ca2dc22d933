"""Rule parsing: every invalid kind is rejected with its path; valid rules round-trip."""

from datetime import date
from decimal import Decimal
from typing import Any

import pytest

from minicrm.core.limits import MAX_RULE_CONDITIONS
from minicrm.segments.rules import (
    EMPTY_RULES,
    FIELDS,
    Condition,
    RuleGroup,
    RuleValidationError,
    fields_metadata,
    format_path,
    parse_rules,
)


def one(condition: dict[str, Any]) -> dict[str, Any]:
    return {"match": "all", "conditions": [condition]}


def errors_of(data: object) -> list[dict[str, str]]:
    with pytest.raises(RuleValidationError) as caught:
        parse_rules(data)
    return caught.value.errors


def nested(depth: int) -> dict[str, Any]:
    group: dict[str, Any] = {"match": "all", "conditions": []}
    for _ in range(depth - 1):
        group = {"match": "any", "conditions": [group]}
    return group


def test_design_example_parses_into_typed_nodes() -> None:
    data = {
        "match": "all",
        "conditions": [
            {"field": "total_spend", "operator": "gt", "value": 5000},
            {
                "match": "any",
                "conditions": [
                    {"field": "order_count", "operator": "gte", "value": 3},
                    {"field": "last_order_date", "operator": "not_in_last_days", "value": 90},
                ],
            },
        ],
    }
    group = parse_rules(data)
    assert group.match == "all"
    spend, inner = group.conditions
    assert spend == Condition(field="total_spend", operator="gt", value=Decimal("5000.00"))
    assert isinstance(inner, RuleGroup)
    assert inner.conditions[1].value == 90
    assert group.to_dict() == data
    assert parse_rules(group.to_dict()) == group


def test_values_are_typed_and_canonical() -> None:
    group = parse_rules(
        {
            "match": "any",
            "conditions": [
                {"field": "avg_order_value", "operator": "between", "value": ["10.5", 20]},
                {"field": "signup_date", "operator": "on", "value": "2024-02-29"},
                {"field": "city", "operator": "in", "value": ["Pune", "Delhi"]},
                {"field": "email", "operator": "is_empty", "value": None},
                {"field": "order_count", "operator": "eq", "value": "4"},
            ],
        }
    )
    between, on, within, empty, count = group.conditions
    assert between.value == (Decimal("10.50"), Decimal("20.00"))
    assert on.value == date(2024, 2, 29)
    assert within.value == ("Pune", "Delhi")
    assert empty.value is None
    assert count.value == 4
    assert group.to_dict()["conditions"] == [
        {"field": "avg_order_value", "operator": "between", "value": [10.5, 20]},
        {"field": "signup_date", "operator": "on", "value": "2024-02-29"},
        {"field": "city", "operator": "in", "value": ["Pune", "Delhi"]},
        {"field": "email", "operator": "is_empty"},
        {"field": "order_count", "operator": "eq", "value": 4},
    ]


def test_empty_rules_and_json_text_parse() -> None:
    assert parse_rules(EMPTY_RULES).to_dict() == {"match": "all", "conditions": []}
    assert parse_rules('{"match": "any", "conditions": []}').match == "any"


@pytest.mark.parametrize(
    ("data", "path", "message"),
    [
        (
            one({"field": "age", "operator": "gt", "value": 3}),
            "conditions[0].field",
            "Unknown field 'age'",
        ),
        (
            one({"field": "city", "operator": "gt", "value": "x"}),
            "conditions[0].operator",
            "Unknown operator 'gt' for city",
        ),
        (
            one({"field": "tags", "operator": "eq", "value": ["x"]}),
            "conditions[0].operator",
            "Unknown operator 'eq' for tags",
        ),
        (
            one({"field": "total_spend", "operator": "gt", "value": "lots"}),
            "conditions[0].value",
            "must be an amount of money",
        ),
        (
            one({"field": "total_spend", "operator": "gt", "value": -1}),
            "conditions[0].value",
            "must be 0 or more",
        ),
        (
            one({"field": "total_spend", "operator": "gt", "value": 1.005}),
            "conditions[0].value",
            "at most 2 decimal places",
        ),
        (
            one({"field": "total_spend", "operator": "gt", "value": True}),
            "conditions[0].value",
            "must be an amount of money",
        ),
        (
            one({"field": "total_spend", "operator": "gt", "value": "NaN"}),
            "conditions[0].value",
            "must be an amount of money",
        ),
        (
            one({"field": "order_count", "operator": "gt", "value": 2.5}),
            "conditions[0].value",
            "must be a whole number",
        ),
        (
            one({"field": "order_count", "operator": "gt", "value": -1}),
            "conditions[0].value",
            "must be 0 or more",
        ),
        (
            one({"field": "days_since_last_order", "operator": "gt", "value": 10**6}),
            "conditions[0].value",
            "must be at most 36,500",
        ),
        (
            one({"field": "last_order_date", "operator": "in_last_days", "value": 0}),
            "conditions[0].value",
            "must be 1 or more",
        ),
        (
            one({"field": "signup_date", "operator": "before", "value": "2024-13-01"}),
            "conditions[0].value",
            "is not a real date",
        ),
        (
            one({"field": "signup_date", "operator": "before", "value": "01/02/2024"}),
            "conditions[0].value",
            "YYYY-MM-DD",
        ),
        (
            one({"field": "signup_date", "operator": "before", "value": "0001-01-01"}),
            "conditions[0].value",
            "between 1900-01-01",
        ),
        (
            one({"field": "total_spend", "operator": "between", "value": [5]}),
            "conditions[0].value",
            "two values",
        ),
        (
            one({"field": "total_spend", "operator": "between", "value": 5}),
            "conditions[0].value",
            "two values",
        ),
        (
            one({"field": "total_spend", "operator": "between", "value": [9, 5]}),
            "conditions[0].value",
            "low ≤ high",
        ),
        (
            one({"field": "signup_date", "operator": "between", "value": ["2024-01-01", "x"]}),
            "conditions[0].value",
            "high value",
        ),
        (
            one({"field": "city", "operator": "eq", "value": 5}),
            "conditions[0].value",
            "must be text",
        ),
        (
            one({"field": "city", "operator": "eq", "value": ""}),
            "conditions[0].value",
            "must not be empty",
        ),
        (
            one({"field": "city", "operator": "in", "value": "Pune"}),
            "conditions[0].value",
            "non-empty list",
        ),
        (
            one({"field": "city", "operator": "in", "value": []}),
            "conditions[0].value",
            "non-empty list",
        ),
        (
            one({"field": "tags", "operator": "has_any", "value": ["ok", 3]}),
            "conditions[0].value",
            "item 1: must be text",
        ),
        (
            one({"field": "city", "operator": "is_empty", "value": "Pune"}),
            "conditions[0].value",
            "takes no value",
        ),
        (one({"field": "city", "operator": "eq"}), "conditions[0].value", "a value is required"),
        (
            one({"field": "city", "operator": "eq", "value": "x", "extra": 1}),
            "conditions[0].extra",
            "Unknown key",
        ),
        (one({"field": "city", "value": "x"}), "conditions[0].operator", "This is required"),
        (one("city is Pune"), "conditions[0]", "valid dictionary"),
        ({"match": "some", "conditions": []}, "match", "Input should be 'all' or 'any'"),
        ({"match": "all", "conditions": {}}, "conditions", "valid list"),
        ({"conditions": []}, "match", "This is required"),
        ([], "", "Rules must be an object"),
        ("{not json", "", "Not valid JSON"),
        (
            nested(6),
            "conditions[0].conditions[0].conditions[0].conditions[0].conditions[0]",
            "at most 5 levels",
        ),
        (
            {
                "match": "all",
                "conditions": [{"field": "city", "operator": "is_empty"}]
                * (MAX_RULE_CONDITIONS + 1),
            },
            "",
            "At most 100 conditions",
        ),
    ],
)
def test_invalid_rules_name_the_path(data: object, path: str, message: str) -> None:
    errors = errors_of(data)
    assert errors[0]["path"] == path
    assert message in errors[0]["message"]


def test_nested_error_path_and_readable_text() -> None:
    data = {
        "match": "all",
        "conditions": [
            {"field": "city", "operator": "is_empty"},
            {"match": "any", "conditions": [{"field": "city", "operator": "near", "value": "x"}]},
        ],
    }
    with pytest.raises(RuleValidationError) as caught:
        parse_rules(data)
    assert caught.value.errors == [
        {
            "loc": ("conditions", 1, "conditions", 0, "operator"),
            "path": "conditions[1].conditions[0].operator",
            "message": "Unknown operator 'near' for city (text). Use one of: eq, ne, contains, "
            "not_contains, starts_with, in, not_in, is_empty, is_not_empty",
        }
    ]
    assert str(caught.value).startswith("conditions[1].conditions[0].operator: Unknown operator")


def test_limits_allow_exactly_five_levels_and_a_hundred_conditions() -> None:
    assert parse_rules(nested(5))
    hundred = {"match": "all", "conditions": [{"field": "city", "operator": "is_empty"}] * 100}
    assert len(parse_rules(hundred).conditions) == 100


def test_every_error_is_reported() -> None:
    data = {
        "match": "all",
        "conditions": [
            {"field": "nope", "operator": "eq", "value": 1},
            {"field": "order_count", "operator": "gt", "value": "many"},
        ],
    }
    assert [error["path"] for error in errors_of(data)] == [
        "conditions[0].field",
        "conditions[1].value",
    ]


def test_errors_carry_their_location_as_parts_and_as_text() -> None:
    # The API answers `loc` from the parts, the builder matches rows by the text: both agree,
    # for the budget checks on the raw tree as for the typed nodes.
    too_deep = nested(6)
    over_budget = one({"field": "tags", "operator": "has_any", "value": ["t"] * 10_001})
    not_json = "{"
    for data in (too_deep, over_budget, not_json, {"match": "all", "conditions": [{"x": 1}]}):
        for error in errors_of(data):
            assert isinstance(error["loc"], tuple)
            assert error["path"] == format_path(error["loc"])
    assert [error["loc"] for error in errors_of(not_json)] == [()]


def test_field_metadata_covers_the_design_table_in_builder_order() -> None:
    assert [spec.key for spec in FIELDS] == [
        "total_spend",
        "order_count",
        "avg_order_value",
        "last_order_date",
        "days_since_last_order",
        "first_order_date",
        "signup_date",
        "city",
        "country",
        "email",
        "tags",
        "marketing_consent",
        "unsubscribed",
    ]
    operators = {spec.key: sorted(op.key for op in spec.operators) for spec in FIELDS}
    assert operators["total_spend"] == sorted(["eq", "ne", "gt", "gte", "lt", "lte", "between"])
    date_operators = "before after on between in_last_days not_in_last_days is_empty is_not_empty"
    assert operators["signup_date"] == sorted(date_operators.split())
    text_operators = "eq ne contains not_contains starts_with in not_in is_empty is_not_empty"
    assert operators["email"] == sorted(text_operators.split())
    assert operators["tags"] == ["has_all", "has_any", "has_none"]
    assert operators["marketing_consent"] == operators["unsubscribed"] == ["is_false", "is_true"]
    spend = fields_metadata()[0]
    assert spend["label"] == "Total spend"
    assert spend["type"] == "money"
    assert spend["operators"][0] == {"key": "gt", "label": "is more than", "value_kind": "money"}
    last_order = fields_metadata()[3]["operators"][0]
    assert last_order == {
        "key": "in_last_days",
        "label": "is in the last N days",
        "value_kind": "days",
    }
