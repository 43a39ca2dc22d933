"""An order in another currency is shown in the shop currency with what it was sent as beside
it: on the customer page, in the API and in the orders export (issue 16)."""

import csv
import io
import re
from datetime import date
from decimal import Decimal

import pytest
from django.test import Client
from django.urls import reverse

from minicrm.core.csv_stream import csv_lines
from minicrm.customers.exports import ORDER_EXPORT_COLUMNS, order_export_rows
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
    customer = schemas["CustomerOut"]["properties"]
    assert "shop currency" in customer["total_spend"]["description"]
    assert "shop currency" in customer["avg_order_value"]["description"]


def test_the_orders_export_gives_both_amounts_and_both_currencies(
    viewer_client: Client, customer: Customer
) -> None:
    response = viewer_client.get("/api/v1/orders/export")

    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"].startswith('attachment; filename="orders-')
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert rows[0] == [
        "external_id",
        "customer_external_id",
        "status",
        "ordered_at",
        "amount",
        "shop_currency",
        "original_amount",
        "currency",
    ]
    assert [row[:3] + row[4:] for row in rows[1:]] == [
        ["O-EUR", "C-1", "completed", "8312.40", "INR", "92.00", "EUR"],
        ["O-INR", "C-1", "completed", "1499.00", "INR", "1499.00", "INR"],
    ]
    assert rows[1][3].startswith("2025-03-04T10:00:00")


def test_the_orders_export_filters_pages_and_guards_formulas(
    viewer_client: Client, customer: Customer
) -> None:
    Customer.objects.filter(pk=customer.pk).update(external_id="=HYPERLINK(1)")

    rows = list(order_export_rows(status="completed", ordered_from=date(2025, 3, 5), chunk_size=1))
    assert [row[0] for row in rows] == ["O-INR"]
    every = list(order_export_rows(chunk_size=1))
    assert [row[0] for row in every] == ["O-EUR", "O-INR"]
    lines = list(csv_lines(ORDER_EXPORT_COLUMNS, every))
    assert lines[1].split(",")[1] == "'=HYPERLINK(1)"


def test_a_bad_filter_of_the_orders_export_is_a_4xx_naming_it(viewer_client: Client) -> None:
    response = viewer_client.get("/api/v1/orders/export", {"status": "lost"})

    assert response.status_code == 422
    assert "status" in response.content.decode()
