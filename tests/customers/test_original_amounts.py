"""An order in another currency is shown in the shop currency with what it was sent as beside
it: on the customer page and in the API (issue 16)."""

import re
from datetime import date
from decimal import Decimal

import pytest
from django.test import Client
from django.urls import reverse

from minicrm.customers.models import Customer, ExchangeRate
from minicrm.customers.services import orders_bulk_upsert
from tests.factories import CustomerFactory


@pytest.fixture
def customer(db: None) -> Customer:
    customer = CustomerFactory(external_id="C-1")
    # 92.00 EUR at 90.3522 is 8,312.4024 INR: 8,312.40 rounded to the paisa.
    ExchangeRate.objects.create(currency="EUR", day=date(2025, 3, 4), rate=Decimal("90.3522"))
    result = orders_bulk_upsert(
        rows=[
            {
                "external_id": "O-EUR",
                "customer_external_id": "C-1",
                "amount": "92.00",
                "currency": "EUR",
                "ordered_at": "2025-03-04T10:00:00+00:00",
            },
            {
                "external_id": "O-INR",
                "customer_external_id": "C-1",
                "amount": "1499.00",
                "ordered_at": "2025-03-05T10:00:00+00:00",
            },
        ]
    )
    assert result.errors == []
    return customer


def _text(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


def test_the_customer_page_shows_the_original_beside_the_converted_amount(
    viewer_client: Client, customer: Customer
) -> None:
    html = viewer_client.get(reverse("customers:detail", args=[customer.pk])).content.decode()

    text = _text(html)
    assert "₹8,312.40 (€92.00)" in text
    # In the shop currency there is nothing beside the amount.
    assert "₹1,499.00 " in text
    assert html.count('data-testid="order-original"') == 1
    # The stats add the converted amounts: 8,312.40 + 1,499.00.
    assert "₹9,811" in text


def test_the_api_gives_both_amounts_and_the_order_currency(
    viewer_client: Client, customer: Customer
) -> None:
    items = viewer_client.get("/api/v1/orders", {"ordering": "ordered_at"}).json()["items"]
    shown = {
        item["external_id"]: (item["amount"], item["original_amount"], item["currency"])
        for item in items
    }
    assert shown == {
        "O-EUR": ("8312.40", "92.00", "EUR"),
        "O-INR": ("1499.00", "1499.00", "INR"),
    }

    detail = viewer_client.get(f"/api/v1/customers/{customer.pk}").json()
    assert detail["total_spend"] == "9811.40"
    recent = {order["external_id"]: order for order in detail["recent_orders"]}
    assert (recent["O-EUR"]["amount"], recent["O-EUR"]["original_amount"]) == ("8312.40", "92.00")
    assert recent["O-EUR"]["currency"] == "EUR"


def test_the_api_schema_says_which_currency_each_amount_is_in(viewer_client: Client) -> None:
    schemas = viewer_client.get("/api/v1/openapi.json").json()["components"]["schemas"]
    order = schemas["OrderOut"]["properties"]
    assert "shop currency" in order["amount"]["description"]
    assert "currency" in order["original_amount"]["description"]
    assert set(schemas["OrderOut"]["required"]) >= {"amount", "original_amount", "currency"}
