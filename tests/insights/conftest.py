"""Fixtures for the insight tests: a small customer base whose every figure is known."""

from collections.abc import Iterator
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pytest
from django.core.cache import cache

from minicrm.customers.models import Customer, Order
from minicrm.customers.services import customer_stats_recompute
from minicrm.segments.models import Segment
from minicrm.segments.rules import parse_rules
from tests.factories import CustomerFactory

from .fake_gemini import FakeGemini, fake_gemini_serving

TODAY = date(2025, 6, 30)
HIGH_SPENDERS: dict[str, Any] = {
    "match": "all",
    "conditions": [{"field": "total_spend", "operator": "gte", "value": 1000}],
}


@pytest.fixture(autouse=True)
def _fresh_cache() -> Iterator[None]:
    """The base figures are cached; every test starts (and ends) without them."""
    cache.clear()
    yield
    cache.clear()


def at(day: str) -> datetime:
    return datetime.fromisoformat(day).replace(hour=12, tzinfo=UTC)


def add_order(customer: Customer, amount: str, day: str, status: str = "completed") -> Order:
    return Order.objects.create(
        external_id=f"{customer.external_id}-{Order.objects.count() + 1}",
        customer=customer,
        amount=Decimal(amount),
        status=status,
        ordered_at=at(day),
    )


def segment_create(name: str, rules: dict[str, Any]) -> Segment:
    return Segment.objects.create(name=name, rules=parse_rules(rules).to_dict())


@pytest.fixture
def known_base(db: None) -> dict[str, Customer]:
    """Six customers, TODAY = 2025-06-30 (UTC).

    A Mumbai: 3000 on 06-20, 2000 on 02-01             -> 5000, 2 orders, last 10 days ago
    B Mumbai: 8000 on 05-15, 1000 on 03-01, 500 on 2024-12-01, cancelled 700 on 06-01
                                                       -> 9500, 3 orders, last 46 days ago
    C Delhi: 400 on 03-15                              -> 400, 1 order, last 107 days ago
    D Pune: 100 on 2023-01-01                          -> 100, 1 order, last 911 days ago
    E (no city, no country): no orders, signed up 06-01 -> 0 (everyone else: 2022)
    F Chennai: 6 x 250 on 04-10 .. 04-15               -> 1500, 6 orders, last 76 days ago
    """
    early = at("2022-01-01")
    people = {
        "A": CustomerFactory(city="Mumbai", country="India", signed_up_at=early),
        "B": CustomerFactory(city="Mumbai", country="India", signed_up_at=early),
        "C": CustomerFactory(city="Delhi", country="India", signed_up_at=early),
        "D": CustomerFactory(city="Pune", country="India", signed_up_at=early),
        "E": CustomerFactory(city="", country="", signed_up_at=at("2025-06-01")),
        "F": CustomerFactory(city="Chennai", country="India", signed_up_at=early),
    }
    add_order(people["A"], "3000", "2025-06-20")
    add_order(people["A"], "2000", "2025-02-01")
    add_order(people["B"], "8000", "2025-05-15")
    add_order(people["B"], "1000", "2025-03-01")
    add_order(people["B"], "500", "2024-12-01")
    add_order(people["B"], "700", "2025-06-01", status="cancelled")
    add_order(people["C"], "400", "2025-03-15")
    add_order(people["D"], "100", "2023-01-01")
    for day in range(10, 16):
        add_order(people["F"], "250", f"2025-04-{day}")
    customer_stats_recompute(customer_ids=[customer.pk for customer in people.values()])
    for customer in people.values():
        customer.refresh_from_db()
    return people


LAPSED: dict[str, Any] = {
    "match": "all",
    "conditions": [{"field": "last_order_date", "operator": "not_in_last_days", "value": 180}],
}
NEW_CUSTOMERS: dict[str, Any] = {
    "match": "all",
    "conditions": [{"field": "signup_date", "operator": "in_last_days", "value": 30}],
}


@pytest.fixture
def contrasting_base(db: None) -> dict[str, list[Customer]]:
    """25 customers in four groups, TODAY = 2025-06-30.

    vip (4, Bengaluru): signed up 2023, 4 orders of 5000 in the last 60 days each.
    lapsed (10, Delhi): signed up 2023, 600 + 400 ordered 200 and 400 days ago.
    new (6, Mumbai): signed up in June 2025, one order of 800 in June.
    never (5, Pune): signed up 2024, no orders.
    """
    groups: dict[str, list[Customer]] = {
        "vip": [CustomerFactory(city="Bengaluru", signed_up_at=at("2023-02-01")) for _ in range(4)],
        "lapsed": [CustomerFactory(city="Delhi", signed_up_at=at("2023-03-01")) for _ in range(10)],
        "new": [
            CustomerFactory(city="Mumbai", signed_up_at=at(f"2025-06-{10 + i}")) for i in range(6)
        ],
        "never": [CustomerFactory(city="Pune", signed_up_at=at("2024-05-01")) for _ in range(5)],
    }
    for customer in groups["vip"]:
        for day in ["2025-05-05", "2025-05-20", "2025-06-10", "2025-06-25"]:
            add_order(customer, "5000", day)
    for customer in groups["lapsed"]:
        add_order(customer, "600", "2024-06-01")
        add_order(customer, "400", "2024-12-12")
    for index, customer in enumerate(groups["new"]):
        add_order(customer, "800", f"2025-06-{12 + index}")
    customer_stats_recompute(
        customer_ids=[customer.pk for members in groups.values() for customer in members]
    )
    return groups


@pytest.fixture
def fake_gemini(settings: Any) -> Iterator[FakeGemini]:
    """A fake Gemini server, with the settings that point the real SDK at it."""
    with fake_gemini_serving(
        settings, GEMINI_TIMEOUT_SECONDS=0.5, GEMINI_RETRY_ATTEMPTS=3
    ) as server:
        yield server
