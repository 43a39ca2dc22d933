"""Bulk ingestion keeps every stored value inside its column and storable on every database.

Customer stats never outgrow their columns (a row that would is a row error, the others are
stored), and text the databases refuse (NUL, lone surrogates) is a row error naming the field, in
the service, the REST API and CSV imports alike.
"""

import json
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest
from django.db.models import DecimalField, PositiveIntegerField
from django.test import Client

from minicrm.core.limits import MAX_CUSTOMER_ORDERS, MAX_CUSTOMER_SPEND, MAX_ORDER_AMOUNT
from minicrm.customers.models import Customer, Order
from minicrm.customers.services import (
    RowError,
    customer_stats_rebuild,
    customers_bulk_upsert,
    orders_bulk_upsert,
)
from minicrm.imports.models import Import
from tests.customers.rows import order_row, snapshot

pytestmark = pytest.mark.django_db

NUL = "Must not contain the NUL character (\\u0000)."
SURROGATE = "Must not contain a lone surrogate (\\ud800-\\udfff); send valid Unicode text."


def spend(key: str) -> tuple[Decimal, int]:
    customer = Customer.objects.get(external_id=key)
    return customer.total_spend, customer.order_count


def overflow_message(key: str, total: str) -> str:
    return (
        f"This order would take the total spend of customer {key!r} to {total}, past the most a "
        "customer's total can hold (999,999,999,999.99)."
    )


@pytest.fixture
def customers() -> None:
    customers_bulk_upsert(rows=[{"external_id": "C-1"}, {"external_id": "C-2"}])


# --- limits and columns -----------------------------------------------------------------------


def test_the_money_limits_are_the_largest_values_of_their_columns() -> None:
    def largest(field: Any) -> Decimal:
        assert isinstance(field, DecimalField)
        return Decimal(10 ** (field.max_digits - field.decimal_places)) - Decimal(1).scaleb(
            -field.decimal_places
        )

    assert largest(Order._meta.get_field("amount")) == MAX_ORDER_AMOUNT
    assert largest(Customer._meta.get_field("total_spend")) == MAX_CUSTOMER_SPEND
    assert isinstance(Customer._meta.get_field("order_count"), PositiveIntegerField)
    assert MAX_CUSTOMER_ORDERS == 2**31 - 1  # PostgreSQL's integer; SQLite and MariaDB hold more


# --- stats never outgrow their columns -------------------------------------------------------


@pytest.mark.usefixtures("customers")
def test_an_order_that_would_overflow_total_spend_is_a_row_error_and_the_rest_is_stored() -> None:
    rows = [order_row(f"O-{n}", "C-1", MAX_ORDER_AMOUNT) for n in range(101)]
    rows.append(order_row("O-other", "C-2", "5.00"))

    result = orders_bulk_upsert(rows=rows)

    assert (result.created, result.updated, result.unchanged) == (101, 0, 0)
    assert result.errors == [
        RowError(100, "amount", overflow_message("C-1", "1,009,999,999,998.99")),
    ]
    assert spend("C-1") == (Decimal("999999999999.00"), 100)
    assert spend("C-2") == (Decimal("5.00"), 1)
    assert not Order.objects.filter(external_id="O-100").exists()

    # The last cents fit exactly; one more cent does not, even in a later batch.
    result = orders_bulk_upsert(
        rows=[order_row("O-fill", "C-1", "0.99"), order_row("O-x", "C-1", "0.01")]
    )

    assert result.created == 1
    assert result.errors == [RowError(1, "amount", overflow_message("C-1", "1,000,000,000,000.00"))]
    assert spend("C-1") == (MAX_CUSTOMER_SPEND, 101)
    assert Customer.objects.get(external_id="C-1").avg_order_value == Decimal("9900990099.01")
    assert customer_stats_rebuild() == 0  # the stored stats are the recount


@pytest.mark.usefixtures("customers")
def test_orders_that_do_not_count_are_stored_past_the_spend_limit() -> None:
    rows = [order_row(f"O-{n}", "C-1", MAX_ORDER_AMOUNT) for n in range(100)]
    rows.append(order_row("O-cancelled", "C-1", MAX_ORDER_AMOUNT, status="cancelled"))

    result = orders_bulk_upsert(rows=rows)

    assert (result.created, result.errors) == (101, [])
    assert spend("C-1") == (Decimal("999999999999.00"), 100)


@pytest.mark.usefixtures("customers")
def test_an_update_that_would_overflow_is_a_row_error_and_a_freed_amount_makes_room() -> None:
    rows = [order_row(f"O-{n}", "C-1", MAX_ORDER_AMOUNT) for n in range(100)]
    orders_bulk_upsert(rows=[*rows, order_row("O-c", "C-1", "10.00", status="cancelled")])
    before = snapshot()

    # Completing the cancelled order would take C-1 past the column: refused, nothing changes.
    result = orders_bulk_upsert(rows=[order_row("O-c", "C-1", "10.00", status="completed")])

    assert result.errors == [RowError(0, "amount", overflow_message("C-1", "1,000,000,000,009.00"))]
    assert (result.created, result.updated, result.unchanged) == (0, 0, 0)
    assert snapshot() == before

    # Rows apply in order: a cancellation earlier in the batch makes room for the completion.
    result = orders_bulk_upsert(
        rows=[
            order_row("O-0", "C-1", MAX_ORDER_AMOUNT, status="cancelled"),
            order_row("O-c", "C-1", "10.00", status="completed"),
            order_row("O-new", "C-1", MAX_ORDER_AMOUNT),
        ]
    )

    assert result.errors == [
        RowError(2, "amount", overflow_message("C-1", "1,000,000,000,009.00")),
    ]
    assert (result.created, result.updated) == (0, 2)
    assert spend("C-1") == (Decimal("990000000009.01"), 100)
    assert customer_stats_rebuild() == 0


@pytest.mark.usefixtures("customers")
def test_moving_an_order_to_a_full_customer_is_a_row_error() -> None:
    orders_bulk_upsert(rows=[order_row(f"O-{n}", "C-1", MAX_ORDER_AMOUNT) for n in range(100)])
    orders_bulk_upsert(rows=[order_row("O-2nd", "C-2", "1.00")])
    before = snapshot()

    result = orders_bulk_upsert(rows=[order_row("O-2nd", "C-1", "1.00")])

    assert result.errors == [RowError(0, "amount", overflow_message("C-1", "1,000,000,000,000.00"))]
    assert snapshot() == before


@pytest.mark.usefixtures("customers")
def test_an_order_past_the_order_count_column_is_a_row_error() -> None:
    Customer.objects.filter(external_id="C-1").update(order_count=MAX_CUSTOMER_ORDERS)

    result = orders_bulk_upsert(
        rows=[order_row("O-1", "C-1", "1.00"), order_row("O-2", "C-1", "1.00", status="refunded")]
    )

    assert result.errors == [
        RowError(
            0,
            "customer_external_id",
            "Customer 'C-1' already has 2,147,483,647 completed orders, the most a customer's "
            "stats can count.",
        )
    ]
    assert result.created == 1
    assert list(Order.objects.values_list("external_id", flat=True)) == ["O-2"]
    assert spend("C-1") == (Decimal("0.00"), MAX_CUSTOMER_ORDERS)


@pytest.mark.usefixtures("customers")
def test_an_amount_past_the_order_column_is_a_row_error() -> None:
    result = orders_bulk_upsert(
        rows=[order_row("O-1", "C-1", "10000000000.00"), order_row("O-2", "C-1", "1.001")]
    )

    assert [(error.index, error.field) for error in result.errors] == [(0, "amount"), (1, "amount")]
    assert not Order.objects.exists()


def test_the_api_answers_an_overflow_with_a_row_error_and_reads_stay_readable(
    api_client: Client,
) -> None:
    def post(path: str, rows: list[dict[str, Any]]) -> Any:
        body = json.dumps({"rows": rows})
        return api_client.post(f"/api/v1{path}", data=body, content_type="application/json")

    assert post("/customers/bulk", [{"external_id": "C-1"}, {"external_id": "C-2"}]).status_code
    rows = [order_row(f"O-{n}", "C-1", MAX_ORDER_AMOUNT) for n in range(100)]
    rows += [order_row("O-fill", "C-1", "0.99"), order_row("O-over", "C-1", "0.01")]
    rows.append(order_row("O-two", "C-2", "3.50"))

    response = post("/orders/bulk", rows)

    assert response.status_code == 200
    assert response.json() == {
        "created": 102,
        "updated": 0,
        "unchanged": 0,
        "errors": [
            {
                "index": 101,
                "field": "amount",
                "message": overflow_message("C-1", "1,000,000,000,000.00"),
            }
        ],
    }

    # Every row over the limit: nothing stored, a 422 naming the field.
    response = post("/orders/bulk", [order_row("O-over", "C-1", "0.01")])

    assert response.status_code == 422
    assert response.json()["errors"] == [
        {"index": 0, "field": "amount", "message": overflow_message("C-1", "1,000,000,000,000.00")}
    ]

    # The full customer reads back everywhere its stats are shown or sorted on.
    listed = api_client.get("/api/v1/customers?ordering=-total_spend")
    assert listed.status_code == 200
    assert [
        (item["external_id"], item["total_spend"], item["order_count"], item["avg_order_value"])
        for item in listed.json()["items"]
    ] == [("C-1", "999999999999.99", 101, "9900990099.01"), ("C-2", "3.50", 1, "3.50")]
    customer_id = Customer.objects.get(external_id="C-1").pk
    detail = api_client.get(f"/api/v1/customers/{customer_id}")
    assert detail.status_code == 200
    assert detail.json()["total_spend"] == "999999999999.99"
    rules = {
        "match": "all",
        "conditions": [{"field": "avg_order_value", "operator": "gte", "value": 1000}],
    }
    preview = api_client.post(
        "/api/v1/segments/preview?funnel=false",
        data=json.dumps({"rules": rules}),
        content_type="application/json",
    )
    assert preview.status_code == 200
    assert preview.json()["count"] == 1
    assert [item["total_spend"] for item in preview.json()["sample"]] == ["999999999999.99"]


def test_a_csv_import_reports_an_overflowing_order_as_a_row_error(
    csv_import: Callable[..., Import],
) -> None:
    customers_bulk_upsert(rows=[{"external_id": "C-1"}])
    lines = [f"O-{n},C-1,{MAX_ORDER_AMOUNT},2025-01-10" for n in range(101)]
    content = "external_id,customer_external_id,amount,ordered_at\n" + "\n".join(lines) + "\n"

    done = csv_import(content, kind="orders")

    assert (done.status, done.created, done.error_count) == (Import.Status.SUCCEEDED, 100, 1)
    assert done.errors == [
        {
            "row": 102,
            "field": "amount",
            "column": "amount",
            "value": "9999999999.99",
            "message": overflow_message("C-1", "1,009,999,999,998.99"),
        }
    ]
    assert spend("C-1") == (Decimal("999999999999.00"), 100)


# --- text the databases refuse ----------------------------------------------------------------


def test_customer_text_a_database_refuses_is_a_row_error_naming_the_field() -> None:
    rows = [
        {"external_id": "C-ok", "first_name": "Asha", "attributes": {"plan": "gold"}},
        {"external_id": "C-1", "first_name": "As\x00ha"},
        {"external_id": "C-2", "city": "Pune\ud800"},
        {"external_id": "C-3", "tags": ["vip", "n\x00"]},
        {"external_id": "C-4", "attributes": {"plan": ["gold", "\x00"]}},
        {"external_id": "C-5", "attributes": {"\udc00": 1}},
        {"external_id": "C-6", "email": "a\x00@example.com"},
        {"external_id": "C-7", "phone": 12, "last_name": "\udfff"},
        {"external_id": "C-\x008"},
        {"external_id": "C-\ud8009"},
        {"external_id": "C-10", "no\x00te": "x"},
    ]

    result = customers_bulk_upsert(rows=rows)

    assert result.created == 1
    assert [(error.index, error.field, error.message) for error in result.errors[:8]] == [
        (1, "first_name", NUL),
        (2, "city", SURROGATE),
        (3, "tags", NUL),
        (4, "attributes", NUL),
        (5, "attributes", SURROGATE),
        (6, "email", NUL),
        (7, "last_name", SURROGATE),
        (8, "external_id", NUL),
    ]
    assert [(error.index, error.field) for error in result.errors[8:]] == [
        (9, "external_id"),
        (10, "no\\x00te"),
    ]
    assert list(Customer.objects.values_list("external_id", flat=True)) == ["C-ok"]


@pytest.mark.usefixtures("customers")
def test_order_text_a_database_refuses_is_a_row_error_naming_the_field() -> None:
    rows = [
        order_row("O-\x001", "C-1", "1.00"),
        order_row("O-2", "C-\x001", "1.00"),
        order_row("O-3", "C-1", "1.00", currency="IN\x00"),
        order_row("O-4", "C-1", "1.00", status="completed\x00"),
        order_row("O-5", "C-1", "1.00", ordered_at="2025-01-01\ud800"),
        order_row("O-6", "C-1", "1.00"),
    ]

    result = orders_bulk_upsert(rows=rows)

    assert [(error.index, error.field) for error in result.errors] == [
        (0, "external_id"),
        (1, "customer_external_id"),
        (2, "currency"),
        (3, "status"),
        (4, "ordered_at"),
    ]
    assert result.errors[0].message == NUL
    assert list(Order.objects.values_list("external_id", flat=True)) == ["O-6"]


def test_the_api_answers_refused_text_with_row_errors(api_client: Client) -> None:
    # Written by hand: the escapes are what a client sends in JSON.
    body = (
        '{"rows": [{"external_id": "C-1", "first_name": "A\\u0000"},'
        ' {"external_id": "C-2", "city": "\\ud83d"},'
        ' {"external_id": "C-3", "city": "\\ud83d\\ude00"}]}'
    )

    response = api_client.post("/api/v1/customers/bulk", data=body, content_type="application/json")

    assert response.status_code == 200
    assert response.json() == {
        "created": 1,
        "updated": 0,
        "unchanged": 0,
        "errors": [
            {"index": 0, "field": "first_name", "message": NUL},
            {"index": 1, "field": "city", "message": SURROGATE},
        ],
    }
    assert Customer.objects.get().city == "😀"

    response = api_client.post(
        "/api/v1/orders/bulk",
        data='{"rows": [{"external_id": "O-\\u0000", "customer_external_id": "C-3",'
        ' "amount": "1", "ordered_at": "2025-01-01"}]}',
        content_type="application/json",
    )

    assert response.status_code == 422
    assert response.json()["errors"] == [{"index": 0, "field": "external_id", "message": NUL}]
    assert not Order.objects.exists()


def test_a_csv_cell_with_a_nul_is_a_row_error_and_the_import_succeeds(
    csv_import: Callable[..., Import],
) -> None:
    content = "external_id,first_name,city\nC-1,Asha,Pune\nC-2,Ra\x00vi,Delhi\nC-3,Meena,\x00\n"

    done = csv_import(content, kind="customers")

    assert (done.status, done.created, done.error_count) == (Import.Status.SUCCEEDED, 1, 2)
    assert done.errors == [
        # The value is quoted with the NUL escaped: no database stores it in the import's errors.
        {
            "row": 3,
            "field": "first_name",
            "column": "first_name",
            "value": "Ra\\x00vi",
            "message": NUL,
        },
        {"row": 4, "field": "city", "column": "city", "value": "\\x00", "message": NUL},
    ]
    assert list(Customer.objects.values_list("external_id", "first_name")) == [("C-1", "Asha")]
