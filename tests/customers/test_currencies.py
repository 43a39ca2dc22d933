"""Orders in three currencies (shop INR, USD, EUR) and a rates table: every money figure is the
hand-computed sum of converted amounts; an order with no rate is a row error, never a raw sum."""

import json
from collections.abc import Callable
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from django.test import Client, override_settings

from minicrm.customers.currency import amount_at_rate, amount_convert, rate_for, rates_for
from minicrm.customers.models import Customer, ExchangeRate, Order
from minicrm.customers.services import customers_bulk_upsert, orders_bulk_upsert
from minicrm.imports.models import Import
from minicrm.insights.facts import rules_facts
from minicrm.segments.rules import parse_rules
from minicrm.segments.selectors import segment_preview
from minicrm.segments.snapshot import CustomerSnapshot
from minicrm.web.date_range import date_range_preset
from minicrm.web.selectors import dashboard_compute

pytestmark = pytest.mark.django_db

# EUR has no rate on the 4th: the 1st's applies (3 days old, within the 7-day default).
RATES = [
    ("USD", date(2026, 3, 2), Decimal("83.5")),
    ("EUR", date(2026, 3, 1), Decimal("90.125")),
]
ORDERS = [
    # key, customer, amount as sent, currency, day, status
    ("O-1", "C-1", "1000.00", "", 2, "completed"),  # no currency: the shop's
    ("O-2", "C-1", "10.00", "USD", 2, "completed"),  # 835.00
    ("O-3", "C-2", "20.00", "EUR", 4, "completed"),  # 1802.50
    ("O-4", "C-2", "0.99", "usd", 5, "completed"),  # 82.665 -> 82.67 (half-up)
    ("O-5", "C-3", "500.00", "INR", 6, "completed"),
    ("O-6", "C-3", "100.00", "EUR", 6, "cancelled"),  # 9012.50, not counted
]
# By hand: C-1 1000 + 835 = 1835.00; C-2 1802.50 + 82.67 = 1885.17; C-3 500.00.
SPEND = {"C-1": Decimal("1835.00"), "C-2": Decimal("1885.17"), "C-3": Decimal("500.00")}
REVENUE = Decimal("4220.17")


def order_row(key: str, customer: str, amount: str, currency: str, day: int, status: str) -> dict:
    row: dict[str, Any] = {
        "external_id": key,
        "customer_external_id": customer,
        "amount": amount,
        "ordered_at": f"2026-03-{day:02d}T10:00:00Z",
        "status": status,
    }
    if currency:
        row["currency"] = currency
    return row


@pytest.fixture
def shop() -> None:
    ExchangeRate.objects.bulk_create(
        ExchangeRate(currency=currency, day=day, rate=rate) for currency, day, rate in RATES
    )
    customers_bulk_upsert(
        rows=[{"external_id": key, "city": "Pune"} for key in ("C-1", "C-2", "C-3")]
    )
    result = orders_bulk_upsert(rows=[order_row(*spec) for spec in ORDERS])
    assert result.errors == []
    assert result.created == len(ORDERS)


def test_rate_lookup_takes_the_day_or_the_latest_within_the_max_age(shop: None) -> None:
    assert rate_for("EUR", date(2026, 3, 1)) == Decimal("90.125")
    assert rate_for("EUR", date(2026, 3, 8)) == Decimal("90.125")
    assert rate_for("EUR", date(2026, 3, 9)) is None
    assert rate_for("EUR", date(2026, 2, 28)) is None
    assert rate_for("INR", date(1999, 1, 1)) == 1
    with override_settings(MINICRM_RATE_MAX_AGE_DAYS=0):
        assert rate_for("EUR", date(2026, 3, 2)) is None
    assert amount_convert(amount=Decimal("2"), currency="USD", day=date(2026, 3, 3)) == Decimal(
        "167.00"
    )
    assert amount_convert(amount=Decimal("2"), currency="GBP", day=date(2026, 3, 3)) is None


def test_money_rounds_half_up_to_the_cent_exactly() -> None:
    assert amount_at_rate(Decimal("0.99"), Decimal("83.5")) == Decimal("82.67")
    assert amount_at_rate(Decimal("0.01"), Decimal("0.5")) == Decimal("0.01")
    assert amount_at_rate(Decimal("0.01"), Decimal("0.4999999999")) == Decimal("0.00")
    # Either side of half a paisa: 0.49500000015 and 0.4949999989.
    assert amount_at_rate(Decimal("12.34"), Decimal("0.0401134522")) == Decimal("0.50")
    assert amount_at_rate(Decimal("12.34"), Decimal("0.0401134521")) == Decimal("0.49")
    assert amount_at_rate(Decimal("2.00"), Decimal("0.2475")) == Decimal("0.50")


def test_rates_are_read_once_per_currency_for_a_whole_batch(
    shop: None, django_assert_num_queries: Any
) -> None:
    keys = [("USD", date(2026, 3, day)) for day in range(1, 29)] + [("EUR", date(2026, 3, 4))]
    with django_assert_num_queries(2):
        found = rates_for(keys)
    assert found[("USD", date(2026, 3, 1))] is None
    assert found[("USD", date(2026, 3, 9))] == Decimal("83.5")


def test_orders_keep_what_they_were_sent_as_and_store_the_converted_amount(shop: None) -> None:
    stored = {
        key: (str(original), currency, str(amount))
        for key, original, currency, amount in Order.objects.values_list(
            "external_id", "original_amount", "currency", "amount"
        )
    }
    assert stored == {
        "O-1": ("1000.00", "INR", "1000.00"),
        "O-2": ("10.00", "USD", "835.00"),
        "O-3": ("20.00", "EUR", "1802.50"),
        "O-4": ("0.99", "USD", "82.67"),
        "O-5": ("500.00", "INR", "500.00"),
        "O-6": ("100.00", "EUR", "9012.50"),
    }


def test_customer_stats_are_in_the_shop_currency(shop: None) -> None:
    spend = dict(Customer.objects.values_list("external_id", "total_spend"))
    assert spend == SPEND
    assert dict(Customer.objects.values_list("external_id", "order_count")) == {
        "C-1": 2,
        "C-2": 2,
        "C-3": 1,
    }


@pytest.mark.parametrize("through_snapshot", [False, True])
def test_a_money_rule_counts_converted_spend(shop: None, through_snapshot: bool) -> None:
    snapshot = None
    if through_snapshot:
        snapshot = CustomerSnapshot()
        snapshot.load()
    # Unconverted sums (1010, 20.99, 500) would give 1 and 0.
    above_1000 = parse_rules(
        {"match": "all", "conditions": [{"field": "total_spend", "operator": "gt", "value": 1000}]}
    )
    above_1840 = parse_rules(
        {"match": "all", "conditions": [{"field": "total_spend", "operator": "gt", "value": 1840}]}
    )
    today = date(2026, 3, 20)
    assert segment_preview(rules=above_1000, today=today, snapshot=snapshot)["count"] == 2
    assert segment_preview(rules=above_1840, today=today, snapshot=snapshot)["count"] == 1


def test_the_facts_add_converted_money(shop: None) -> None:
    rules = parse_rules(
        {"match": "all", "conditions": [{"field": "total_spend", "operator": "gt", "value": 1000}]}
    )
    facts = rules_facts(rules=rules, today=date(2026, 3, 20))

    assert facts["base"]["revenue"] == float(REVENUE)
    assert facts["segment"]["revenue"] == float(SPEND["C-1"] + SPEND["C-2"])
    assert facts["base"]["trend"]["current"]["revenue"] == float(REVENUE)


def test_the_dashboard_revenue_adds_converted_money(shop: None) -> None:
    march = date_range_preset(days=20, today=date(2026, 3, 20))
    dashboard = dashboard_compute(date_range=march, now=datetime(2026, 3, 20, 12, tzinfo=UTC))

    assert dashboard.revenue == REVENUE
    assert dashboard.average_order_value == (REVENUE / 5).quantize(Decimal("0.01"))


def test_an_order_without_a_rate_is_a_row_error_and_nothing_is_summed(shop: None) -> None:
    before = list(Customer.objects.order_by("id").values_list())

    result = orders_bulk_upsert(
        rows=[
            order_row("O-7", "C-1", "5.00", "GBP", 7, "completed"),
            order_row("O-8", "C-1", "5.00", "EUR", 12, "completed"),  # the 1st's is 11 days old
        ]
    )

    assert result.created == 0
    assert [(error.index, error.field) for error in result.errors] == [
        (0, "currency"),
        (1, "currency"),
    ]
    assert result.errors[1].message.startswith("No EUR rate for 2026-03-12 or the 7 days before")
    assert "import_rates" in result.errors[1].message
    assert list(Customer.objects.order_by("id").values_list()) == before
    assert not Order.objects.filter(external_id__in=["O-7", "O-8"]).exists()


def test_an_unknown_currency_code_is_a_row_error() -> None:
    customers_bulk_upsert(rows=[{"external_id": "C-1"}])

    result = orders_bulk_upsert(rows=[order_row("O-1", "C-1", "5.00", "XYZ", 7, "completed")])

    assert [(error.field, error.message) for error in result.errors] == [
        ("currency", "'XYZ' is not an ISO 4217 currency code.")
    ]


def test_resending_a_converted_order_changes_nothing(shop: None) -> None:
    before = list(Order.objects.order_by("id").values_list())

    result = orders_bulk_upsert(rows=[order_row(*spec) for spec in ORDERS])

    assert (result.created, result.updated, result.unchanged) == (0, 0, len(ORDERS))
    assert list(Order.objects.order_by("id").values_list()) == before


@override_settings(MINICRM_CURRENCY="EUR")
def test_an_order_without_a_currency_is_in_the_shop_currency_whatever_it_is() -> None:
    customers_bulk_upsert(rows=[{"external_id": "C-1"}])

    orders_bulk_upsert(rows=[order_row("O-1", "C-1", "5.00", "", 7, "completed")])

    assert Order.objects.values_list("currency", "amount").get() == ("EUR", Decimal("5.00"))


def test_the_api_refuses_an_order_without_a_rate_naming_the_field(
    shop: None, api_client: Client
) -> None:
    response = api_client.post(
        "/api/v1/orders/bulk",
        data=json.dumps({"rows": [order_row("O-9", "C-1", "5.00", "JPY", 7, "completed")]}),
        content_type="application/json",
    )

    assert response.status_code == 422
    body = response.json()
    assert body["errors"] == [
        {
            "index": 0,
            "field": "currency",
            "message": "No JPY rate for 2026-03-07 or the 7 days before; add one with "
            "manage.py import_rates or POST /api/v1/rates.",
        }
    ]


def test_a_csv_import_reports_an_order_without_a_rate_by_line(
    shop: None, csv_import: Callable[..., Import]
) -> None:
    content = (
        "external_id,customer_external_id,amount,currency,ordered_at\n"
        "O-10,C-1,7.00,USD,2026-03-03\n"
        "O-11,C-1,7.00,CHF,2026-03-03\n"
    )
    done = csv_import(content, kind="orders")

    assert done.created == 1
    assert done.error_count == 1
    [error] = done.errors
    assert error["field"] == "currency"
    assert "No CHF rate for 2026-03-03" in error["message"]
    assert Order.objects.get(external_id="O-10").amount == Decimal("584.50")


SHOPIFY_ORDERS = (
    Path(__file__).parents[1] / "imports" / "data" / "shopify_orders_export.csv"
).read_text()


def test_a_shopify_export_in_another_currency_is_converted_or_refused_by_its_currency_column(
    csv_import: Callable[..., Import],
) -> None:
    customers_bulk_upsert(
        rows=[{"email": email} for email in ["asha.rao@example.com", "ravi.k@example.com"]],
        key="email",
    )
    ExchangeRate.objects.create(currency="USD", day=date(2025, 10, 1), rate=Decimal("88.2"))
    lines = SHOPIFY_ORDERS.splitlines()
    # The first order (two line items, 2498.00 in all) in USD; every other one in CHF, no rate.
    first = lines[1].replace(",INR,", ",USD,")
    others = [line.replace(",INR,", ",CHF,") for line in lines[3:]]
    content = "\n".join([lines[0], first, lines[2], *others]) + "\n"

    done = csv_import(content, kind=None, mapping="shopify-orders")

    first_order = Order.objects.get(external_id="#1001")
    assert (first_order.original_amount, first_order.currency, first_order.amount) == (
        Decimal("2498.00"),
        "USD",
        Decimal("220323.60"),
    )
    chf = [error for error in done.errors if "No CHF rate" in error["message"]]
    assert chf
    assert {(error["field"], error["column"]) for error in chf} == {("currency", "Currency")}
    assert Order.objects.filter(currency="CHF").count() == 0
