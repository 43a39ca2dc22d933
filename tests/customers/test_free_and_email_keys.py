"""Free orders are orders, and customers and orders keyed by email (shop exports)."""

from decimal import Decimal
from typing import Any

import pytest
from django.db import IntegrityError, transaction

from minicrm.customers.ingestion import external_id_from_email
from minicrm.customers.models import Customer, Order
from minicrm.customers.services import (
    RowError,
    customer_stats_recompute,
    customers_bulk_upsert,
    orders_bulk_upsert,
)
from tests.customers.rows import at, order_row, stats
from tests.factories import CustomerFactory

pytestmark = pytest.mark.django_db


def test_a_free_order_counts_as_an_order_and_adds_nothing_to_spend() -> None:
    customers_bulk_upsert(rows=[{"external_id": "C-1"}])

    result = orders_bulk_upsert(
        rows=[order_row("O-1", amount="0.00", day=3), order_row("O-2", amount="250.00", day=9)]
    )

    assert (result.created, result.errors) == (2, [])
    assert stats() == (Decimal("250.00"), 2, at(3), at(9))


def test_free_orders_alone_give_a_count_and_dates_with_zero_spend_in_both_stats_paths() -> None:
    customers_bulk_upsert(rows=[{"external_id": "C-1"}])
    orders_bulk_upsert(rows=[order_row("O-1", amount="0", day=5)])
    orders_bulk_upsert(rows=[order_row("O-2", amount="0", day=2)])  # the incremental path
    incremental = stats()

    customer = Customer.objects.get(external_id="C-1")
    Customer.objects.filter(pk=customer.pk).update(total_spend=9, order_count=9)
    customer_stats_recompute(customer_ids=[customer.pk])  # the aggregate path

    assert incremental == stats() == (Decimal("0.00"), 2, at(2), at(5))
    assert Customer.objects.get(pk=customer.pk).avg_order_value == Decimal("0.00")


def test_an_order_changed_to_free_is_recomputed() -> None:
    customers_bulk_upsert(rows=[{"external_id": "C-1"}])
    orders_bulk_upsert(rows=[order_row("O-1", amount="100", day=5)])

    result = orders_bulk_upsert(rows=[order_row("O-1", amount="0", day=5)])

    assert result.updated == 1
    assert stats() == (Decimal("0.00"), 1, at(5), at(5))


def test_a_negative_amount_is_a_row_error_and_the_database_refuses_one_too() -> None:
    customer = CustomerFactory(external_id="C-1")

    result = orders_bulk_upsert(rows=[order_row("O-1", amount="-1", day=5)])

    assert result.errors == [RowError(0, "amount", "amount must be 0 or more, got '-1'.")]
    with pytest.raises(IntegrityError), transaction.atomic():
        Order.objects.create(
            external_id="O-2", customer=customer, amount=Decimal("-1"), ordered_at=at(1)
        )
    assert Order.objects.count() == 0


# --- keyed by email ---------------------------------------------------------------------------


def test_a_customer_keyed_by_email_gets_a_stable_key_and_is_never_duplicated() -> None:
    rows = [{"email": "Asha@Example.com", "first_name": "Asha"}]

    first = customers_bulk_upsert(rows=rows, key="email")
    second = customers_bulk_upsert(rows=rows, key="email")

    customer = Customer.objects.get()
    assert (first.created, second.unchanged) == (1, 1)
    assert customer.external_id == external_id_from_email("asha@example.com")
    assert customer.external_id.startswith("email:")
    assert customer.email == "asha@example.com"


def test_keyed_by_email_an_existing_customer_with_that_email_is_updated() -> None:
    customers_bulk_upsert(rows=[{"external_id": "C-1", "email": "asha@example.com"}])

    result = customers_bulk_upsert(
        rows=[{"email": "ASHA@example.com", "city": "Pune"}], key="email"
    )

    assert (result.created, result.updated) == (0, 1)
    assert list(Customer.objects.values_list("external_id", "city")) == [("C-1", "Pune")]


def test_keyed_by_email_a_repeated_email_is_a_row_error_and_a_shared_email_is_ambiguous() -> None:
    CustomerFactory(external_id="C-1", email="twin@example.com")
    CustomerFactory(external_id="C-2", email="twin@example.com")

    result = customers_bulk_upsert(
        rows=[
            {"email": "new@example.com"},
            {"email": "NEW@example.com"},
            {"email": "twin@example.com", "city": "Goa"},
            {"city": "Goa"},
        ],
        key="email",
    )

    assert result.created == 1
    assert [(error.index, error.field) for error in result.errors] == [
        (1, "email"),
        (2, "email"),
        (3, "email"),
    ]
    assert result.errors[0].message == "'new@example.com' already appears in row 0 of this batch."
    assert "2 customers have the email 'twin@example.com'" in result.errors[1].message
    assert not Customer.objects.filter(city="Goa").exists()


def test_orders_find_their_customer_by_email() -> None:
    customers_bulk_upsert(rows=[{"email": "asha@example.com"}], key="email")
    rows = [
        {
            "external_id": "#1",
            "customer_email": "Asha@example.com",
            "amount": "10",
            "ordered_at": "2025-01-03",
        },
        {
            "external_id": "#2",
            "customer_email": "nobody@example.com",
            "amount": "5",
            "ordered_at": "2025-01-03",
        },
    ]

    result = orders_bulk_upsert(rows=rows, customer_key="email")
    again = orders_bulk_upsert(rows=rows, customer_key="email")

    assert (result.created, again.unchanged) == (1, 1)
    assert result.errors == [
        RowError(
            1,
            "customer_email",
            "No customer has the email 'nobody@example.com'; import customers first.",
        )
    ]
    assert stats(external_id_from_email("asha@example.com"))[:2] == (Decimal("10.00"), 1)


def test_the_bulk_api_takes_the_email_key(api_client: Any) -> None:
    customers = api_client.post(
        "/api/v1/customers/bulk?key=email",
        {"rows": [{"email": "asha@example.com", "city": "Pune"}]},
        content_type="application/json",
    )
    orders = api_client.post(
        "/api/v1/orders/bulk?key=email",
        {
            "rows": [
                {
                    "external_id": "#1",
                    "customer_email": "asha@example.com",
                    "amount": "0",
                    "ordered_at": "2025-01-03",
                }
            ]
        },
        content_type="application/json",
    )
    wrong = api_client.post(
        "/api/v1/customers/bulk?key=phone", {"rows": []}, content_type="application/json"
    )

    assert (customers.status_code, customers.json()["created"]) == (200, 1)
    assert (orders.status_code, orders.json()["created"]) == (200, 1)
    assert wrong.status_code == 422
    assert stats(external_id_from_email("asha@example.com"))[:2] == (Decimal("0.00"), 1)
