"""Segment reads: preview, funnel, members, export rows, size history and plain words."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext, override_settings

from minicrm.accounts.models import User
from minicrm.customers.models import CustomerTag
from minicrm.segments.compiler import today_in_zone
from minicrm.segments.models import SegmentSize
from minicrm.segments.rules import parse_rules
from minicrm.segments.selectors import (
    rules_describe,
    segment_export_rows,
    segment_funnel,
    segment_members,
    segment_preview,
    segment_size_history,
)
from minicrm.segments.services import rules_hash, segment_create
from tests.factories import CustomerFactory

RULES = {
    "match": "all",
    "conditions": [
        {"field": "total_spend", "operator": "gt", "value": 100},
        {"field": "city", "operator": "eq", "value": "pune"},
        {"match": "any", "conditions": [{"field": "order_count", "operator": "gte", "value": 3}]},
    ],
}


@pytest.fixture
def crowd(db: None) -> list[Any]:
    moment = datetime(2025, 1, 2, tzinfo=UTC)
    spec = [
        ("a", "Pune", "500.00", 3),
        ("b", "Pune", "150.00", 1),
        ("c", "Delhi", "900.00", 5),
        ("d", "Pune", "50.00", 4),
        ("e", "pune", "1000.00", 3),
    ]
    return [
        CustomerFactory(
            external_id=key,
            first_name=key.upper(),
            last_name="Doe",
            email=f"{key}@example.com",
            city=city,
            total_spend=Decimal(total),
            order_count=count,
            last_order_at=moment,
            first_order_at=moment,
        )
        for key, city, total, count in spec
    ]


def test_preview_counts_samples_biggest_spenders_first(crowd: list[Any]) -> None:
    result = segment_preview(rules=parse_rules(RULES))
    assert result["count"] == 2
    assert result["total_customers"] == 5
    assert [row["name"] for row in result["sample"]] == ["E Doe", "A Doe"]
    assert result["sample"][1] == {
        "id": crowd[0].pk,
        "name": "A Doe",
        "email": "a@example.com",
        "city": "Pune",
        "total_spend": Decimal("500.00"),
        "order_count": 3,
        "last_order_at": datetime(2025, 1, 2, tzinfo=UTC),
    }


def test_sample_holds_at_most_ten(db: None) -> None:
    CustomerFactory.create_batch(12)
    result = segment_preview(rules=parse_rules({"match": "all", "conditions": []}))
    assert (result["count"], len(result["sample"])) == (12, 10)


def test_funnel_counts_after_each_top_level_condition_in_one_query(crowd: list[Any]) -> None:
    with CaptureQueriesContext(connection) as queries:
        funnel = segment_funnel(rules=parse_rules(RULES))
    assert len(queries) == 1
    assert funnel == [
        {"label": "Total spend over ₹100", "count": 4},
        {"label": 'City is "pune"', "count": 3},
        {"label": "3 or more orders", "count": 2},
    ]


def test_funnel_of_an_any_group_grows(crowd: list[Any]) -> None:
    rules = parse_rules(
        {
            "match": "any",
            "conditions": [
                {"field": "city", "operator": "eq", "value": "Delhi"},
                {"field": "total_spend", "operator": "lt", "value": 100},
                {"match": "all", "conditions": []},
            ],
        }
    )
    assert [step["count"] for step in segment_funnel(rules=rules)] == [1, 2, 5]
    assert segment_funnel(rules=parse_rules({"match": "all", "conditions": []})) == []


@pytest.mark.django_db
def test_members_and_export_rows_page_through_everyone(crowd: list[Any], marketer: User) -> None:
    CustomerTag.objects.create(customer=crowd[0], name="vip")
    CustomerTag.objects.create(customer=crowd[0], name="b2b")
    segment = segment_create(name="Pune", rules=parse_rules(RULES), created_by=marketer)
    assert list(segment_members(segment=segment).values_list("external_id", flat=True)) == [
        "a",
        "e",
    ]
    rows = list(segment_export_rows(segment=segment, chunk_size=1))
    assert [(row[1], row[-1]) for row in rows] == [("a", "b2b vip"), ("e", "")]
    with pytest.raises(ValueError, match="needs a segment or rules"):
        segment_members()


@pytest.mark.django_db
def test_size_history_keeps_the_latest_point_of_each_day(marketer: User) -> None:
    segment = segment_create(name="S", rules=parse_rules(RULES), created_by=marketer)
    today = today_in_zone()
    old, yesterday = today - timedelta(days=100), today - timedelta(days=1)
    now = datetime.now(UTC)
    for day, size, version, counted in [
        (old, 1, "a", now),
        (yesterday, 5, "a", now - timedelta(hours=2)),
        (yesterday, 7, "b", now),
        (today, 8, "b", now),
    ]:
        SegmentSize.objects.create(
            segment=segment,
            day=day,
            size=size,
            rules_hash=rules_hash({"v": version}),
            counted_at=counted,
        )
    assert segment_size_history(segment_id=segment.pk) == [
        {"date": yesterday, "size": 7},
        {"date": today, "size": 8},
    ]
    assert segment_size_history(segment_id=segment.pk, days=1) == [{"date": today, "size": 8}]


@override_settings(MINICRM_CURRENCY="INR", MINICRM_LOCALE="en_IN")
@pytest.mark.parametrize(
    ("rules", "words"),
    [
        (
            {
                "match": "all",
                "conditions": [
                    {"field": "total_spend", "operator": "gt", "value": 5000},
                    {
                        "match": "any",
                        "conditions": [
                            {"field": "order_count", "operator": "gte", "value": 3},
                            {
                                "field": "last_order_date",
                                "operator": "not_in_last_days",
                                "value": 90,
                            },
                        ],
                    },
                ],
            },
            "Total spend over ₹5,000 and, any of: 3 or more orders, no order in the last 90 days",
        ),
        ({"match": "all", "conditions": []}, "All customers"),
        (
            {
                "match": "any",
                "conditions": [
                    {"field": "avg_order_value", "operator": "between", "value": [10.5, 2000]},
                    {"field": "tags", "operator": "has_none", "value": ["vip", "b2b"]},
                    {"field": "order_count", "operator": "eq", "value": 1},
                ],
            },
            "Average order value between ₹10.50 and ₹2,000 or not tagged vip or b2b "
            "or exactly 1 order",
        ),
        (
            {
                "match": "all",
                "conditions": [
                    {
                        "match": "any",
                        "conditions": [
                            {"field": "signup_date", "operator": "before", "value": "2024-03-01"},
                            {"field": "days_since_last_order", "operator": "gt", "value": 30},
                        ],
                    },
                    {"field": "email", "operator": "is_empty"},
                ],
            },
            "(any of: signed up before 1 Mar 2024, last order more than 30 days ago) "
            "and email is empty",
        ),
        (
            {"match": "all", "conditions": [{"field": "last_order_date", "operator": "is_empty"}]},
            "Never ordered",
        ),
    ],
)
def test_rules_describe_in_plain_words(rules: dict[str, Any], words: str) -> None:
    assert rules_describe(parse_rules(rules)) == words


@override_settings(MINICRM_CURRENCY="USD", MINICRM_LOCALE="en")
def test_money_in_words_follows_the_shop_currency() -> None:
    rules = parse_rules(
        {"match": "all", "conditions": [{"field": "total_spend", "operator": "lte", "value": 9.5}]}
    )
    assert rules_describe(rules) == "Total spend at most $9.50"
    big = parse_rules(
        {
            "match": "all",
            "conditions": [{"field": "total_spend", "operator": "gt", "value": 250000}],
        }
    )
    assert rules_describe(big) == "Total spend over $250,000"
    with override_settings(MINICRM_CURRENCY="INR", MINICRM_LOCALE="en_IN"):
        assert rules_describe(big) == "Total spend over ₹2,50,000"
