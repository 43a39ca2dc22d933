"""The worst rule tree the budget allows (core.limits, "Rule trees") saves and runs on every
supported database: preview count, sample and funnel, members page, export and size, each
selecting exactly what the reference evaluator selects."""

import csv
import io
import json
import random
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from django.test import Client

from minicrm.core.limits import (
    MAX_RULE_CONDITIONS,
    MAX_RULE_DEPTH,
    MAX_RULE_LIST_ITEMS,
    MAX_RULE_TREE_LIST_ITEMS,
    MAX_RULE_TREE_TEXT_CHARS,
)
from minicrm.customers.models import Customer
from minicrm.segments.compiler import today_in_zone
from minicrm.segments.models import SegmentSize
from minicrm.segments.rules import RuleValidationError, parse_rules, rule_tree_list_items
from minicrm.segments.services import segment_size_record

from .reference import Evaluator, Person
from .test_compiler_property import store

CITIES = ["Pune", "pune ", "Mumbai", "New Delhi", "", "a_b"]
COUNTRIES = ["India", "USA", "", "india"]
TAGS = ["vip", "new", "b2b", "churn-risk"]


def padded_list(prefix: str, real: list[str]) -> list[str]:
    """MAX_RULE_LIST_ITEMS values of 19 characters, the real ones first (so some match)."""
    fillers = [f"{prefix}-{index:05d}".ljust(19, "x") for index in range(MAX_RULE_LIST_ITEMS)]
    return real + fillers[len(real) :]


def worst_rules() -> dict[str, Any]:
    """100 conditions with 5,000 list values (over 90,000 characters), nested 5 levels deep."""
    lists = [
        {"field": "city", "operator": "in", "value": padded_list("c", ["PUNE", "mumbai"])},
        {"field": "city", "operator": "not_in", "value": padded_list("d", ["Pune"])},
        {"field": "country", "operator": "in", "value": padded_list("e", ["india"])},
        {"field": "country", "operator": "not_in", "value": padded_list("f", ["USA"])},
        {"field": "email", "operator": "in", "value": padded_list("g", ["c3@example.com"])},
        {"field": "email", "operator": "not_in", "value": padded_list("h", [])},
        {"field": "tags", "operator": "has_any", "value": padded_list("i", ["VIP"])},
        {"field": "tags", "operator": "has_all", "value": padded_list("j", ["vip", "new"])},
        {"field": "tags", "operator": "has_none", "value": padded_list("k", ["b2b"])},
        {"field": "tags", "operator": "has_all", "value": ["vip", "new"]},
    ]
    others: list[dict[str, Any]] = []
    kinds = [
        {"field": "avg_order_value", "operator": "between", "value": [10, 400]},
        {"field": "days_since_last_order", "operator": "ne", "value": 3},
        {"field": "email", "operator": "contains", "value": "example"},
        {"field": "city", "operator": "starts_with", "value": "p"},
        {"field": "last_order_date", "operator": "not_in_last_days", "value": 10},
        {"field": "total_spend", "operator": "gt", "value": 50},
        {"field": "signup_date", "operator": "between", "value": ["2025-01-01", "2025-03-01"]},
        {"field": "order_count", "operator": "ne", "value": 2},
        {"field": "country", "operator": "is_not_empty"},
    ]
    while len(lists) + len(others) < MAX_RULE_CONDITIONS - 1:
        others.append(kinds[len(others) % len(kinds)])

    def nest(conditions: list[dict[str, Any]], depth: int) -> dict[str, Any]:
        # A chain of groups down to the deepest level, alternating all/any.
        group: dict[str, Any] = {"match": "all", "conditions": conditions}
        for level in range(depth - 1):
            group = {"match": "all" if level % 2 else "any", "conditions": [group]}
        return group

    deep = nest(lists[:2] + others[:6], MAX_RULE_DEPTH - 1)
    narrow = [lists[index] for index in (2, 4, 6, 7, 9)]
    broad = [lists[index] for index in (3, 5, 8)]  # these match most customers: kept in "all"s
    top: list[dict[str, Any]] = [deep, *narrow]
    rest = others[6:]
    for number, start in enumerate(range(0, len(rest), 10)):
        extra = [broad[number]] if number < len(broad) else []
        top.append({"match": "all", "conditions": extra + rest[start : start + 10]})
    # The last condition takes the list values left in the budget (a `between` counts two).
    used = sum(len(node["value"]) for node in lists + others if isinstance(node.get("value"), list))
    last = padded_list("y", ["Mumbai"])[: MAX_RULE_TREE_LIST_ITEMS - used]
    top.append({"field": "city", "operator": "in", "value": last})
    return {"match": "any", "conditions": top}


def population() -> list[Person]:
    rng = random.Random(10)
    zone = ZoneInfo("UTC")
    today = today_in_zone()
    people = []
    for index in range(60):
        person = Person(
            key=f"c{index}",
            city=rng.choice(CITIES),
            country=rng.choice(COUNTRIES),
            email=f"c{index}@example.com" if index % 3 else "",
            tags=set(rng.sample(TAGS, rng.randint(0, 3))),
            signed_up_at=datetime(2025, 1, 1, tzinfo=zone) + timedelta(days=rng.randint(0, 90)),
        )
        if index % 4:
            person.order_count = rng.randint(1, 5)
            person.total_spend = Decimal(rng.randint(100, 200_000)) / 100
            last = datetime.combine(today, datetime.min.time(), tzinfo=zone) - timedelta(
                days=rng.randint(0, 30), hours=rng.randint(0, 23)
            )
            person.first_order_at, person.last_order_at = last - timedelta(days=40), last
        people.append(person)
    return people


def test_the_worst_tree_is_exactly_at_the_budget() -> None:
    rules = worst_rules()
    group = parse_rules(rules)
    assert len(list(group.walk())) == MAX_RULE_CONDITIONS
    assert rule_tree_list_items(group) == MAX_RULE_TREE_LIST_ITEMS
    text = sum(
        len(item)
        for condition in group.walk()
        for item in (condition.value if isinstance(condition.value, tuple) else ())
        if isinstance(item, str)
    )
    assert 0.9 * MAX_RULE_TREE_TEXT_CHARS <= text <= MAX_RULE_TREE_TEXT_CHARS


@pytest.mark.django_db
def test_the_worst_tree_runs_everywhere_it_can_be_saved(api_client: Client) -> None:
    people = population()
    store(people)
    rules = worst_rules()
    response = api_client.post(
        "/api/v1/segments",
        json.dumps({"name": "Worst", "rules": rules}),
        content_type="application/json",
    )
    assert response.status_code == 201, response.content[:500]
    segment_id = response.json()["id"]
    canonical = response.json()["rules"]
    evaluator = Evaluator(today=today_in_zone(), time_zone="UTC")
    expected = evaluator.select(canonical, people)
    ids = dict(Customer.objects.values_list("external_id", "pk"))
    expected_ids = sorted(ids[key] for key in expected)
    assert 0 < len(expected) < len(people)

    preview = api_client.post(
        "/api/v1/segments/preview",
        json.dumps({"rules": rules}),
        content_type="application/json",
    )
    assert preview.status_code == 200
    body = preview.json()
    assert body["count"] == len(expected)
    spend = {person.key: person.total_spend for person in people}
    by_spend = sorted(expected, key=lambda key: (-spend[key], -ids[key]))[:10]
    assert [row["id"] for row in body["sample"]] == [ids[key] for key in by_spend]
    steps = []
    for index in range(len(canonical["conditions"])):
        prefix = {"match": "any", "conditions": canonical["conditions"][: index + 1]}
        steps.append(len(evaluator.select(prefix, people)))
    assert [step["count"] for step in body["funnel"]] == steps

    members = api_client.get(f"/api/v1/segments/{segment_id}/customers?page=1&page_size=500")
    assert members.status_code == 200
    assert [item["id"] for item in members.json()["items"]] == expected_ids
    assert members.json()["count"] == len(expected)

    export = api_client.get(f"/api/v1/segments/{segment_id}/export")
    assert export.status_code == 200
    lines = list(csv.reader(io.StringIO(b"".join(export.streaming_content).decode())))
    assert [int(line[0]) for line in lines[1:]] == expected_ids

    point = segment_size_record(segment_id=segment_id)
    assert point is not None
    assert point.size == len(expected)
    assert SegmentSize.objects.filter(segment_id=segment_id).count() == 1


def test_one_value_more_than_the_budget_is_refused_naming_it() -> None:
    rules = worst_rules()
    rules["conditions"][-2]["conditions"][0] = {
        "field": "city",
        "operator": "in",
        "value": padded_list("z", []),
    }
    with pytest.raises(RuleValidationError) as caught:
        parse_rules(rules)
    assert caught.value.errors[0]["path"].endswith(".value")
    assert "rule-tree budget" in caught.value.errors[0]["message"]
