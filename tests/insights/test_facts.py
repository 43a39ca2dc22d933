"""Facts: every figure exact on a small known base, aggregates only, never a customer's identity."""

import json

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from minicrm.customers.models import Customer
from minicrm.customers.services import customer_stats_recompute
from minicrm.insights import facts as facts_module
from minicrm.insights.facts import members_facts, rules_facts
from minicrm.segments.rules import parse_rules

from .conftest import HIGH_SPENDERS, TODAY, add_order


def data_queries(queries: CaptureQueriesContext) -> list[str]:
    """The queries that read data: without the statement timeout's own (on PostgreSQL, a
    savepoint and setting the timeout and putting it back)."""
    housekeeping = ("SAVEPOINT", "statement_timeout")
    return [
        query["sql"]
        for query in queries.captured_queries
        if not any(word in query["sql"] for word in housekeeping)
    ]


ORDER_COUNTS = (
    ("0", "0 orders"),
    ("1", "1 order"),
    ("2", "2 orders"),
    ("3-5", "3-5 orders"),
    ("6-10", "6-10 orders"),
    ("11+", "11+ orders"),
)
RECENCY = (
    ("0-30", "0-30 days"),
    ("31-90", "31-90 days"),
    ("91-180", "91-180 days"),
    ("181-365", "181-365 days"),
    ("365+", "365+ days"),
    ("never", "Never ordered"),
)


def buckets(
    kinds: tuple[tuple[str, str], ...], *counts: tuple[int, float]
) -> list[dict[str, object]]:
    """Each bucket of `kinds` (key, label) with its (customers, share), in order."""
    return [
        {"bucket": key, "label": label, "customers": customers, "share": share}
        for (key, label), (customers, share) in zip(kinds, counts, strict=True)
    ]


BASE = {
    "customers": 6,
    "revenue": 16500.0,
    "orders": 13,
    "avg_spend": 2750.0,
    "median_spend": 950.0,  # (400 + 1500) / 2 of 0, 100, 400, 1500, 5000, 9500
    "avg_order_value": 1269.23,  # 16500 / 13
    "orders_per_customer": 2.17,
    "repeat_rate": 0.5,
    "active_customers": 3,
    "active_share": 0.5,
    "lapsed_customers": 1,  # D, last order 2023
    "lapsed_share": 0.1667,
    "new_customers": 1,  # E, signed up 29 days ago
    "new_share": 0.1667,
    "order_count_distribution": buckets(
        ORDER_COUNTS, (1, 0.1667), (2, 0.3333), (1, 0.1667), (1, 0.1667), (1, 0.1667), (0, 0.0)
    ),
    "recency": buckets(
        RECENCY, (1, 0.1667), (2, 0.3333), (1, 0.1667), (0, 0.0), (1, 0.1667), (1, 0.1667)
    ),
    "top_cities": [
        {"name": "Mumbai", "customers": 2, "share": 0.3333},
        {"name": "Chennai", "customers": 1, "share": 0.1667},
        {"name": "Delhi", "customers": 1, "share": 0.1667},
        {"name": "Pune", "customers": 1, "share": 0.1667},
    ],
    "top_countries": [{"name": "India", "customers": 5, "share": 0.8333}],
    "trend": {
        "window_days": 90,
        # 04-02 .. 06-30: A 3000, B 8000, F 6 x 250; 01-02 .. 04-01: A 2000, B 1000, C 400.
        "current": {"orders": 8, "revenue": 12500.0},
        "previous": {"orders": 3, "revenue": 3400.0},
        "orders_change": 1.6667,
        "revenue_change": 2.6765,
    },
}

SEGMENT = {
    "customers": 3,
    "share_of_customers": 0.5,
    "revenue": 16000.0,
    "share_of_revenue": 0.9697,
    "orders": 11,
    "avg_spend": 5333.33,
    "median_spend": 5000.0,
    "avg_order_value": 1454.55,
    "orders_per_customer": 3.67,
    "repeat_rate": 1.0,
    "active_customers": 3,
    "active_share": 1.0,
    "lapsed_customers": 0,
    "lapsed_share": 0.0,
    "new_customers": 0,
    "new_share": 0.0,
    "order_count_distribution": buckets(
        ORDER_COUNTS, (0, 0.0), (0, 0.0), (1, 0.3333), (1, 0.3333), (1, 0.3333), (0, 0.0)
    ),
    "recency": buckets(RECENCY, (1, 0.3333), (2, 0.6667), (0, 0.0), (0, 0.0), (0, 0.0), (0, 0.0)),
    "top_cities": [
        {"name": "Mumbai", "customers": 2, "share": 0.6667, "base_share": 0.3333, "index": 2.0},
        {"name": "Chennai", "customers": 1, "share": 0.3333, "base_share": 0.1667, "index": 2.0},
    ],
    "top_countries": [
        {"name": "India", "customers": 3, "share": 1.0, "base_share": 0.8333, "index": 1.2}
    ],
    "trend": {
        "window_days": 90,
        "current": {"orders": 8, "revenue": 12500.0},
        "previous": {"orders": 2, "revenue": 3000.0},
        "orders_change": 3.0,
        "revenue_change": 3.1667,
    },
}


def test_every_figure_of_a_segment_and_of_the_base(known_base: dict[str, Customer]) -> None:
    facts = rules_facts(rules=parse_rules(HIGH_SPENDERS), today=TODAY)

    assert facts == {
        "version": 1,
        "as_of": "2025-06-30",
        "currency": "INR",
        "windows": {"active_days": 90, "lapsed_days": 180, "new_days": 90, "trend_days": 90},
        "segment": SEGMENT,
        "base": BASE,
        "index": {
            "avg_spend": 1.94,
            "median_spend": 5.26,
            "avg_order_value": 1.15,
            "orders_per_customer": 1.69,
            "repeat_rate": 2.0,
            "active_share": 2.0,
            "lapsed_share": 0.0,
            "new_share": 0.0,
            "never_ordered_share": 0.0,
        },
    }


def test_rules_matching_everyone_are_the_base_itself(known_base: dict[str, Customer]) -> None:
    with CaptureQueriesContext(connection) as queries:
        facts = rules_facts(rules=parse_rules({"match": "all", "conditions": []}), today=TODAY)

    assert facts["segment"]["customers"] == 6
    assert facts["segment"]["share_of_customers"] == 1.0
    assert facts["segment"]["share_of_revenue"] == 1.0
    assert facts["segment"]["top_cities"][0] == {
        "name": "Mumbai",
        "customers": 2,
        "share": 0.3333,
        "base_share": 0.3333,
        "index": 1.0,
    }
    assert facts["index"] == {
        "avg_spend": 1.0,
        "median_spend": 1.0,
        "avg_order_value": 1.0,
        "orders_per_customer": 1.0,
        "repeat_rate": 1.0,
        "active_share": 1.0,
        "lapsed_share": 1.0,
        "new_share": 1.0,
        "never_ordered_share": 1.0,
    }
    # The data fingerprint (2), then one pass over the base (totals, median, places, trend):
    # the segment is the base, so no second scan.
    assert len(data_queries(queries)) == 6


def test_places_are_the_same_when_there_are_too_many_city_country_pairs(
    known_base: dict[str, Customer], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(facts_module, "MAX_PLACE_PAIRS", 2)

    facts = rules_facts(rules=parse_rules(HIGH_SPENDERS), today=TODAY)

    assert facts["base"]["top_cities"] == BASE["top_cities"]
    assert facts["base"]["top_countries"] == BASE["top_countries"]
    assert facts["segment"]["top_cities"] == SEGMENT["top_cities"]


def test_the_base_comes_from_the_cache_until_the_data_changes(
    known_base: dict[str, Customer],
) -> None:
    everyone = parse_rules({"match": "all", "conditions": []})
    first = rules_facts(rules=everyone, today=TODAY)

    with CaptureQueriesContext(connection) as queries:
        again = rules_facts(rules=everyone, today=TODAY)
    add_order(known_base["E"], "600", "2025-06-29")
    customer_stats_recompute(customer_ids=[known_base["E"].pk])
    changed = rules_facts(rules=everyone, today=TODAY)

    assert len(data_queries(queries)) == 2  # only the fingerprint
    assert again == first
    assert changed["base"]["revenue"] == first["base"]["revenue"] + 600
    assert changed["base"]["trend"]["current"]["orders"] == 9


def test_an_empty_segment_has_zeros_and_no_averages(known_base: dict[str, Customer]) -> None:
    rules = {"match": "all", "conditions": [{"field": "city", "operator": "eq", "value": "Goa"}]}

    facts = rules_facts(rules=parse_rules(rules), today=TODAY)

    segment = facts["segment"]
    assert segment["customers"] == 0
    assert segment["revenue"] == 0.0
    assert segment["avg_spend"] is None
    assert segment["median_spend"] is None
    assert segment["avg_order_value"] is None
    assert segment["top_cities"] == []
    assert segment["trend"]["orders_change"] is None
    assert facts["index"]["avg_spend"] is None
    assert facts["base"] == BASE


def test_an_empty_base_has_no_division_by_zero(db: None) -> None:
    facts = members_facts(members=Customer.objects.all(), today=TODAY)

    assert facts["base"]["customers"] == 0
    assert facts["base"]["revenue"] == 0.0
    assert facts["segment"]["share_of_customers"] == 0.0
    assert facts["index"]["avg_spend"] is None


def test_median_of_an_odd_and_an_even_segment(known_base: dict[str, Customer]) -> None:
    odd = {"match": "all", "conditions": [{"field": "order_count", "operator": "gte", "value": 1}]}
    even = {"match": "all", "conditions": [{"field": "city", "operator": "eq", "value": "Mumbai"}]}

    # 100, 400, 1500, 5000, 9500 and 5000, 9500.
    assert rules_facts(rules=parse_rules(odd), today=TODAY)["segment"]["median_spend"] == 1500.0
    assert rules_facts(rules=parse_rules(even), today=TODAY)["segment"]["median_spend"] == 7250.0


# Fixed identities for the known base. The names are short and common on purpose: each is a
# substring of words the facts hold ("Ian" of "median", "Chan" of "orders_change", "Tom" of
# "customers", "Chen" of "Chennai", "Day" of "days"), so only a whole-value check is sound.
IDENTITIES = {
    "A": ("Ian", "Chan", "ian.chan@zq-mail.test", "+91 98111 00417", "EXT-ZQ-000417"),
    "B": ("Tom", "Day", "tom.day@zq-mail.test", "+91 98111 00418", "EXT-ZQ-000418"),
    "C": ("Ann", "Chen", "ann.chen@zq-mail.test", "+91 98111 00419", "EXT-ZQ-000419"),
    "D": ("Mumbai", "Pune", "mumbai.pune@zq-mail.test", "+91 98111 00420", "EXT-ZQ-000420"),
    "E": ("Al", "Shareef", "al.shareef@zq-mail.test", "+91 98111 00421", "EXT-ZQ-000421"),
    "F": ("Max", "Median", "max.median@zq-mail.test", "+91 98111 00422", "EXT-ZQ-000422"),
}


def _strings(value: object) -> list[str]:
    """Every key and string value in a JSON document, at any depth."""
    if isinstance(value, dict):
        return [text for key, item in value.items() for text in [str(key), *_strings(item)]]
    if isinstance(value, list):
        return [text for item in value for text in _strings(item)]
    return [value] if isinstance(value, str) else []


def test_facts_never_hold_a_name_email_phone_or_external_id(
    known_base: dict[str, Customer],
) -> None:
    for letter, (first, last, email, phone, external_id) in IDENTITIES.items():
        Customer.objects.filter(pk=known_base[letter].pk).update(
            first_name=first, last_name=last, email=email, phone=phone, external_id=external_id
        )

    facts = rules_facts(rules=parse_rules(HIGH_SPENDERS), today=TODAY)

    # A name could only appear as a value (or a key) of its own: compare whole strings. D's
    # "names" are also cities, so the check must tell a city from a person: cities are facts.
    values = {text.casefold() for text in _strings(facts)}
    names = {name.casefold() for person in IDENTITIES.values() for name in person[:2]}
    assert values & names == {"mumbai", "pune"}
    # Emails, phones (in any spacing) and external ids are long and unique: no substring at all.
    text = json.dumps(facts, ensure_ascii=False).casefold()
    tokens = [token for person in IDENTITIES.values() for token in person[2:]]
    tokens += [person[3].replace(" ", "") for person in IDENTITIES.values()]
    tokens += [person[2].split("@")[0] for person in IDENTITIES.values()]
    assert [token for token in tokens if token.casefold() in text] == []


@pytest.mark.parametrize("timezone_name", ["Asia/Kolkata", "America/New_York"])
def test_recency_follows_the_configured_time_zone(
    known_base: dict[str, Customer], settings: object, timezone_name: str
) -> None:
    settings.TIME_ZONE = timezone_name  # type: ignore[attr-defined]

    facts = rules_facts(rules=parse_rules(HIGH_SPENDERS), today=TODAY)

    # Orders were at noon UTC, the same calendar day in both zones.
    assert facts["segment"]["recency"][0]["customers"] == 1
    assert facts["segment"]["recency"][1]["customers"] == 2
