"""The builder's rules mid-edit (segments.draft): what the live count leaves out, and error paths
mapped back to the rows as the builder shows them."""

from typing import Any

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from minicrm.core.limits import MAX_RULE_DEPTH
from minicrm.segments.draft import condition_unfinished, draft_split
from minicrm.segments.rules import RuleValidationError, parse_rules


@pytest.mark.parametrize(
    ("condition", "unfinished"),
    [
        ({"field": "city", "operator": "eq", "value": None}, True),
        ({"field": "city", "operator": "eq"}, True),
        ({"field": "city", "operator": "eq", "value": "  "}, True),
        ({"field": "tags", "operator": "has_any", "value": []}, True),
        ({"field": "order_count", "operator": "between", "value": [2, None]}, True),
        ({"field": "order_count", "operator": "between", "value": [2, 5]}, False),
        ({"field": "city", "operator": "is_empty", "value": None}, False),
        ({"field": "marketing_consent", "operator": "is_true"}, False),
        # Wrong is not unfinished: the validator names what is wrong.
        ({"field": "total_spend", "operator": "gt", "value": -5}, False),
        ({"field": "total_spend", "operator": "gt", "value": "abc"}, False),
        ({"match": "all", "conditions": []}, False),
    ],
)
def test_condition_unfinished(condition: dict[str, Any], unfinished: bool) -> None:
    assert condition_unfinished(condition) is unfinished


def test_split_leaves_out_unfinished_rows_and_groups_left_empty() -> None:
    spend = {"field": "total_spend", "operator": "gt", "value": 10}
    rules = {
        "match": "all",
        "conditions": [
            {"field": "city", "operator": "eq", "value": ""},
            spend,
            {"match": "any", "conditions": [{"field": "tags", "operator": "has_any", "value": []}]},
            {"match": "any", "conditions": []},
        ],
    }

    draft = draft_split(rules)

    assert draft.countable == {"match": "all", "conditions": [spend]}
    assert [(item.path, item.name, item.is_group) for item in draft.pending] == [
        ("conditions[0]", "row 1 (City)", False),
        ("conditions[2].conditions[0]", "row 1 (Tags) of the group at row 3", False),
        ("conditions[3]", "the empty group at row 4", True),
    ]
    assert rules["conditions"][0] == {"field": "city", "operator": "eq", "value": ""}  # untouched


def test_errors_in_what_is_counted_name_the_rows_as_edited() -> None:
    rules = {
        "match": "all",
        "conditions": [
            {"field": "city", "operator": "eq", "value": None},
            {
                "match": "any",
                "conditions": [
                    {"field": "tags", "operator": "has_any", "value": []},
                    {"match": "all", "conditions": []},
                    {"field": "total_spend", "operator": "gt", "value": -1},
                ],
            },
        ],
    }
    draft = draft_split(rules)
    with pytest.raises(RuleValidationError) as caught:
        parse_rules(draft.countable)

    assert draft.original_errors(caught.value.errors) == [
        {"path": "conditions[1].conditions[2].value", "message": "must be 0 or more"}
    ]


@pytest.mark.parametrize("data", ["{oops", [], {"match": "all"}, {"conditions": "x"}])
def test_data_that_is_not_a_rule_tree_is_left_for_the_validator(data: object) -> None:
    draft = draft_split(data)
    assert draft.countable == data
    assert draft.pending == []


def test_trees_past_the_depth_limit_are_left_for_the_validator() -> None:
    deep: dict[str, Any] = {"match": "all", "conditions": []}
    for _ in range(40):
        deep = {"match": "all", "conditions": [deep]}
    with pytest.raises(RuleValidationError, match="nested at most"):
        parse_rules(draft_split(deep).countable)


CONDITIONS = st.sampled_from(
    [
        {"field": "total_spend", "operator": "gt", "value": 100},
        {"field": "total_spend", "operator": "gt", "value": None},
        {"field": "city", "operator": "eq", "value": ""},
        {"field": "city", "operator": "is_empty", "value": None},
        {"field": "tags", "operator": "has_any", "value": ["vip"]},
        {"field": "tags", "operator": "has_any", "value": []},
    ]
)
TREES = st.recursive(
    CONDITIONS,
    lambda children: st.fixed_dictionaries(
        {"match": st.sampled_from(["all", "any"]), "conditions": st.lists(children, max_size=3)}
    ),
    max_leaves=8,
)


def _leaves(node: Any) -> int:
    if "conditions" not in node:
        return 1
    return sum(_leaves(child) for child in node["conditions"])


def _depth(node: Any) -> int:
    if "conditions" not in node:
        return 0
    return 1 + max((_depth(child) for child in node["conditions"]), default=0)


@given(st.lists(TREES, max_size=4), st.sampled_from(["all", "any"]))
def test_what_is_counted_is_always_valid_and_finished(children: list[Any], match: str) -> None:
    rules = {"match": match, "conditions": children}
    assume(_depth(rules) <= MAX_RULE_DEPTH)

    draft = draft_split(rules)
    counted = draft.countable

    # Every condition offered is valid once finished, so what is counted always parses, and
    # keeps every finished condition...
    leaves = sum(1 for _ in parse_rules(counted).walk())
    unfinished = sum(1 for item in draft.pending if not item.is_group)
    assert leaves + unfinished == _leaves(rules)
    # ...holds nothing unfinished, and leaving things out again changes nothing.
    assert draft_split(counted).pending == []
    assert draft_split(counted).countable == counted
