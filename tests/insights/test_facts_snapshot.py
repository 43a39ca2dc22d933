"""Facts from the columnar snapshot equal the facts from SQL, figure for figure."""

import json
import os
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from unittest import mock
from zoneinfo import ZoneInfo

import pytest
from django.core.cache import cache
from django.db import connection, transaction
from django.test import override_settings
from django.test.utils import CaptureQueriesContext
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from minicrm.customers.models import Customer, Order
from minicrm.customers.services import customer_stats_recompute
from minicrm.insights import facts as facts_module
from minicrm.insights.facts import (
    facts_snapshot_or_start_build,
    members_facts,
    rules_facts,
    snapshot_facts,
)
from minicrm.insights.models import Insight
from minicrm.insights.services import insight_request
from minicrm.segments import snapshot as snapshot_module
from minicrm.segments.compiler import customers_matching, today_in_zone
from minicrm.segments.rules import parse_rules
from minicrm.segments.snapshot import CustomerSnapshot
from tests.factories import CustomerFactory
from tests.segments.snapshot_machine import snapshot_machine
from tests.segments.strategies import groups

from .conftest import HIGH_SPENDERS, LAPSED, NEW_CUSTOMERS, TODAY, add_order, segment_create

# The tests' TODAY is in the past: hold every order, so the snapshot covers its trend windows.
ALL_ORDERS = 100 * 365


def one(field: str, operator: str, value: Any = None) -> dict[str, Any]:
    condition = {"field": field, "operator": operator}
    if value is not None:
        condition["value"] = value
    return {"match": "all", "conditions": [condition]}


RULES: dict[str, dict[str, Any]] = {
    "everyone": {"match": "all", "conditions": []},
    "high spenders": HIGH_SPENDERS,
    "lapsed": LAPSED,
    "new": NEW_CUSTOMERS,
    "never ordered": one("order_count", "eq", 0),
    "empty": one("city", "eq", "Goa"),
    "one city": one("city", "eq", "mumbai"),
    "no city": one("city", "is_empty"),
    "any of two": {
        "match": "any",
        "conditions": [
            {"field": "order_count", "operator": "gte", "value": 6},
            {"field": "country", "operator": "ne", "value": "India"},
        ],
    },
}


def sql_facts(rules: dict[str, Any], today: date) -> dict[str, Any]:
    cache.clear()  # the SQL base is cached; compute it afresh
    group = parse_rules(rules)
    return members_facts(members=customers_matching(group, today=today), today=today)


def loaded_snapshot(**options: Any) -> CustomerSnapshot:
    snapshot = CustomerSnapshot(recent_order_days=options.pop("recent_order_days", ALL_ORDERS))
    snapshot.load()
    return snapshot


@pytest.mark.parametrize("name", list(RULES))
def test_snapshot_facts_equal_sql_facts_on_the_known_base(
    known_base: dict[str, Customer], name: str
) -> None:
    snapshot = loaded_snapshot()

    facts = rules_facts(rules=parse_rules(RULES[name]), today=TODAY, snapshot=snapshot)

    assert facts == sql_facts(RULES[name], TODAY)


@pytest.mark.parametrize("name", ["high spenders", "lapsed", "new", "never ordered", "empty"])
def test_snapshot_facts_equal_sql_facts_on_contrasting_groups(
    contrasting_base: dict[str, list[Customer]], name: str
) -> None:
    snapshot = loaded_snapshot()

    facts = rules_facts(rules=parse_rules(RULES[name]), today=TODAY, snapshot=snapshot)

    assert facts == sql_facts(RULES[name], TODAY)


def test_the_snapshot_path_asks_the_database_nothing(known_base: dict[str, Customer]) -> None:
    snapshot = loaded_snapshot()

    with CaptureQueriesContext(connection) as queries:
        facts = snapshot_facts(snapshot=snapshot, rules=parse_rules(HIGH_SPENDERS), today=TODAY)

    assert len(queries) == 0
    assert facts["segment"]["customers"] == 3
    assert facts["segment"]["trend"]["current"] == {"orders": 8, "revenue": 12500.0}


def test_a_place_outside_the_base_top_five_is_counted_in_the_snapshot(db: None) -> None:
    # Six larger cities push Agra out of the base's top five; the segment is all Agra.
    for index, city in enumerate(["Pune", "Goa", "Kochi", "Surat", "Indore", "Nagpur"]):
        CustomerFactory.create_batch(2 + index, city=city, country="India")
    CustomerFactory(city="Agra", country="India", total_spend=Decimal("99.50"), order_count=1)
    rules = one("city", "eq", "Agra")
    snapshot = loaded_snapshot()

    facts = rules_facts(rules=parse_rules(rules), today=TODAY, snapshot=snapshot)

    assert facts["segment"]["top_cities"] == [
        {"name": "Agra", "customers": 1, "share": 1.0, "base_share": 0.0357, "index": 28.0}
    ]
    assert facts == sql_facts(rules, TODAY)


def test_median_of_an_even_segment_rounds_the_half_cent_as_sql_does(db: None) -> None:
    # 0.01 and 0.02: the mean 0.015 rounds half to even, 0.02; 0.03 and 0.04: 0.035 -> 0.04.
    for total in ["0.01", "0.02", "0.03", "0.04"]:
        CustomerFactory(total_spend=Decimal(total), order_count=1, city="Pune")
    snapshot = loaded_snapshot()
    low = {
        "match": "all",
        "conditions": [{"field": "total_spend", "operator": "lte", "value": 0.02}],
    }
    high = {
        "match": "all",
        "conditions": [{"field": "total_spend", "operator": "gte", "value": 0.03}],
    }

    for rules, median in [(low, 0.02), (high, 0.04)]:
        facts = rules_facts(rules=parse_rules(rules), today=TODAY, snapshot=snapshot)
        assert facts["segment"]["median_spend"] == median
        assert facts == sql_facts(rules, TODAY)
    everyone = parse_rules(RULES["everyone"])
    base = snapshot_facts(snapshot=snapshot, rules=everyone, today=TODAY)["base"]
    assert base["median_spend"] == 0.02  # 0.025 -> 0.02


@pytest.mark.parametrize("zone", ["UTC", "Asia/Kolkata", "America/New_York"])
def test_orders_on_the_trend_window_edges_count_the_same(db: None, zone: str) -> None:
    """Orders one microsecond either side of each window edge, in the configured zone."""
    local = ZoneInfo(zone)

    def start(day: date) -> datetime:
        return datetime.combine(day, time.min, tzinfo=local)

    previous_start = start(TODAY - timedelta(days=179))
    current_start = start(TODAY - timedelta(days=89))
    end = start(TODAY + timedelta(days=1))
    tick = timedelta(microseconds=1)
    with override_settings(TIME_ZONE=zone):
        inside = CustomerFactory(city="Pune", country="India")
        outside = CustomerFactory(city="Goa", country="India")
        moments = {
            "before previous": previous_start - tick,
            "previous start": previous_start,
            "previous end": current_start - tick,
            "current start": current_start,
            "current end": end - tick,
            "tomorrow": end,
        }
        for index, moment in enumerate(moments.values()):
            amount = Decimal(10**index) + Decimal("0.01")
            for customer in (inside, outside):
                Order.objects.create(
                    external_id=f"{customer.pk}-{index}",
                    customer=customer,
                    amount=amount,
                    ordered_at=moment,
                )
                Order.objects.create(
                    external_id=f"{customer.pk}-{index}-x",
                    customer=customer,
                    amount=amount,
                    ordered_at=moment,
                    status=Order.Status.CANCELLED,
                )
        customer_stats_recompute(customer_ids=[inside.pk, outside.pk])
        rules = one("city", "eq", "Pune")
        snapshot = loaded_snapshot()

        facts = rules_facts(rules=parse_rules(rules), today=TODAY, snapshot=snapshot)

        assert facts == sql_facts(rules, TODAY)
    trend = facts["segment"]["trend"]
    # previous: 10.01 + 100.01; current: 1000.01 + 10000.01; the edges outside count nowhere.
    assert trend["previous"] == {"orders": 2, "revenue": 110.02}
    assert trend["current"] == {"orders": 2, "revenue": 11000.02}
    assert facts["base"]["trend"]["current"] == {"orders": 4, "revenue": 22000.04}


def test_a_snapshot_that_does_not_hold_the_trend_orders_falls_back_to_sql(
    known_base: dict[str, Customer],
) -> None:
    # Loaded today with the usual margin: TODAY's windows (2025) are long before it.
    snapshot = loaded_snapshot(recent_order_days=snapshot_module.RECENT_ORDER_DAYS)

    with mock.patch.object(facts_module, "snapshot_facts") as from_snapshot:
        facts = rules_facts(rules=parse_rules(HIGH_SPENDERS), today=TODAY, snapshot=snapshot)

    from_snapshot.assert_not_called()
    assert facts == sql_facts(HIGH_SPENDERS, TODAY)


def test_rules_facts_uses_the_shared_snapshot_once_it_is_loaded(
    known_base: dict[str, Customer],
    monkeypatch: pytest.MonkeyPatch,
    settings: Any,
    tmp_path: Path,
) -> None:
    snapshot_machine(monkeypatch, settings, tmp_path, publish_after=0.2)
    monkeypatch.setattr(snapshot_module, "RECENT_ORDER_DAYS", ALL_ORDERS)
    rules = parse_rules(HIGH_SPENDERS)
    with mock.patch.object(facts_module, "snapshot_facts", wraps=snapshot_facts) as from_snapshot:
        # The first call starts the build and answers from SQL meanwhile.
        first = rules_facts(rules=rules, today=TODAY)
        assert from_snapshot.call_count == 0
        assert facts_snapshot_or_start_build(wait_seconds=30) is not None
        second = rules_facts(rules=rules, today=TODAY)
        assert from_snapshot.call_count == 1
    assert first == second == sql_facts(HIGH_SPENDERS, TODAY)


# --- Random data, random rules ----------------------------------------------------------------

CITIES = ["", "Pune", "Mumbai", "New Delhi", "Goa", "Agra", "Kochi", "Surat"]
COUNTRIES = ["", "India", "USA", "Nepal"]
CENTS = [1, 2, 3, 50, 99, 100, 101, 250, 1000, 3333, 9999, 500000]
STATUSES = ["completed", "completed", "completed", "cancelled", "refunded"]


@st.composite
def moments(draw: st.DrawFn, zone: str) -> datetime:
    """A local instant around TODAY, often right on one of the facts' day edges."""
    edges = [0, -1, 1, 29, 30, 89, 90, 91, 179, 180, 181, 365, 366, 400]
    days = draw(st.sampled_from(edges) | st.integers(-2, 420))
    clock = draw(
        st.sampled_from([time(0), time(0, 0, 0, 1), time(23, 59, 59, 999999)]) | st.times()
    )
    return datetime.combine(TODAY - timedelta(days=days), clock, tzinfo=ZoneInfo(zone))


@st.composite
def populations(draw: st.DrawFn, zone: str) -> list[dict[str, Any]]:
    people = []
    for _index in range(draw(st.integers(0, 14))):
        people.append(
            {
                "city": draw(st.sampled_from(CITIES)),
                "country": draw(st.sampled_from(COUNTRIES)),
                "signed_up_at": draw(st.none() | moments(zone)),
                "orders": draw(
                    st.lists(
                        st.tuples(st.sampled_from(CENTS), moments(zone), st.sampled_from(STATUSES)),
                        max_size=13,
                    )
                ),
            }
        )
    return people


def store(people: list[dict[str, Any]]) -> None:
    ids = []
    for index, person in enumerate(people):
        customer = CustomerFactory(
            external_id=f"p{index}",
            city=person["city"],
            country=person["country"],
            signed_up_at=person["signed_up_at"],
        )
        ids.append(customer.pk)
        Order.objects.bulk_create(
            Order(
                external_id=f"p{index}-{number}",
                customer=customer,
                amount=Decimal(cents) / 100,
                status=status,
                ordered_at=moment,
            )
            for number, (cents, moment, status) in enumerate(person["orders"])
        )
    customer_stats_recompute(customer_ids=ids)


@pytest.mark.django_db
@pytest.mark.parametrize("zone", ["UTC", "Asia/Kolkata", "America/New_York"])
def test_snapshot_facts_equal_sql_facts_on_random_data_and_rules(zone: str) -> None:
    @settings(
        max_examples=int(os.environ.get("MINICRM_PROPERTY_EXAMPLES", "12")),
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
        database=None,
    )
    @given(data=st.data())
    def check(data: st.DataObject) -> None:
        people = data.draw(populations(zone), label="customers")
        rule_batch = data.draw(st.lists(groups(), min_size=3, max_size=3), label="rules")
        with override_settings(TIME_ZONE=zone), transaction.atomic():
            store(people)
            snapshot = loaded_snapshot()
            for rules in [{"match": "all", "conditions": []}, *rule_batch]:
                group = parse_rules(rules)
                facts = snapshot_facts(snapshot=snapshot, rules=group, today=TODAY)
                assert facts == sql_facts(group.to_dict(), TODAY), rules
            transaction.set_rollback(True)

    check()


def test_a_late_utc_order_falls_on_the_next_local_day(known_base: dict[str, Customer]) -> None:
    """The snapshot's instants are UTC microseconds whatever the zone; facts read them in it."""
    moment = datetime(2025, 6, 29, 20, 0, tzinfo=UTC)  # 06-30 01:30 in Kolkata
    add_order(known_base["E"], "10", "2025-06-29")
    Order.objects.filter(customer=known_base["E"]).update(ordered_at=moment)
    customer_stats_recompute(customer_ids=[known_base["E"].pk])
    with override_settings(TIME_ZONE="Asia/Kolkata"):
        snapshot = loaded_snapshot()
        facts = rules_facts(rules=parse_rules(RULES["no city"]), today=TODAY, snapshot=snapshot)
        assert facts == sql_facts(RULES["no city"], TODAY)


def test_the_worker_waits_for_a_load_under_way_and_uses_the_snapshot(
    known_base: dict[str, Customer],
    monkeypatch: pytest.MonkeyPatch,
    django_capture_on_commit_callbacks: Any,
    settings: Any,
    tmp_path: Path,
) -> None:
    settings.AI_PROVIDER = "offline"
    settings.INSIGHT_SNAPSHOT_WAIT_SECONDS = 30
    snapshot_machine(monkeypatch, settings, tmp_path, publish_after=0.3)
    segment = segment_create("High spenders", HIGH_SPENDERS)
    with (
        mock.patch.object(facts_module, "snapshot_facts", wraps=snapshot_facts) as from_snapshot,
        django_capture_on_commit_callbacks(execute=True),
    ):
        insight = insight_request(segment_id=segment.pk, requested_by=None)

    insight = Insight.objects.get(pk=insight.pk)
    assert insight.status == Insight.Status.SUCCEEDED
    assert from_snapshot.call_count == 1
    assert insight.facts == json.loads(json.dumps(sql_facts(HIGH_SPENDERS, today_in_zone())))


def test_requests_do_not_wait_for_the_build(
    known_base: dict[str, Customer], monkeypatch: pytest.MonkeyPatch, settings: Any, tmp_path: Path
) -> None:
    timers = snapshot_machine(monkeypatch, settings, tmp_path, publish_after=60)

    assert facts_snapshot_or_start_build() is None  # starts the build, answers at once
    assert facts_snapshot_or_start_build(wait_seconds=0.2) is None  # still building
    assert len(timers) == 1
    assert timers[0].is_alive()
    timers[0].cancel()


def test_the_snapshot_stays_off_unless_enabled(
    known_base: dict[str, Customer], monkeypatch: pytest.MonkeyPatch, settings: Any, tmp_path: Path
) -> None:
    snapshot_machine(monkeypatch, settings, tmp_path)
    settings.MINICRM_PREVIEW_SNAPSHOT = False

    assert facts_snapshot_or_start_build(wait_seconds=1) is None
    assert snapshot_module._shared is None
    assert list(tmp_path.iterdir()) == []


def test_places_spelled_in_two_cases_are_two_places_on_every_database(db: None) -> None:
    CustomerFactory.create_batch(3, city="Pune", country="India")
    CustomerFactory.create_batch(2, city="pune", country="india")
    CustomerFactory(city="Delhi", country="India")
    rules = one("city", "eq", "PUNE")  # rules compare without case: all five match

    facts = sql_facts(rules, TODAY)

    cities = [(place["name"], place["customers"]) for place in facts["segment"]["top_cities"]]
    assert cities == [("Pune", 3), ("pune", 2)]
    assert [(place["name"], place["customers"]) for place in facts["base"]["top_countries"]] == [
        ("India", 4),
        ("india", 2),
    ]
    assert [place["index"] for place in facts["segment"]["top_cities"]] == [1.2, 1.2]
    snapshot = loaded_snapshot()
    assert rules_facts(rules=parse_rules(rules), today=TODAY, snapshot=snapshot) == facts
