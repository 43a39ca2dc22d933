from datetime import date
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from minicrm.core.errors import ApplicationError, NotFoundError
from minicrm.customers.models import Customer, CustomerTag, ExchangeRate, Order
from minicrm.customers.services import (
    BulkResult,
    RowError,
    customer_stats_rebuild,
    customer_stats_recompute,
    customers_bulk_upsert,
    order_delete,
    orders_bulk_delete,
    orders_bulk_upsert,
)
from tests.customers.rows import at, order_row, snapshot, stats
from tests.factories import CustomerFactory, OrderFactory

pytestmark = pytest.mark.django_db


# --- customers --------------------------------------------------------------------------------


def test_customers_are_created_with_tags_and_defaults() -> None:
    result = customers_bulk_upsert(
        rows=[
            {"external_id": "C-1", "email": "Asha@Example.com", "tags": ["VIP", "newsletter"]},
            {"external_id": "C-2", "first_name": "Ravi"},
        ]
    )

    assert result == BulkResult(created=2, updated=0, unchanged=0, errors=[])
    asha = Customer.objects.get(external_id="C-1")
    assert asha.email == "asha@example.com"
    assert asha.marketing_consent is True
    assert (asha.total_spend, asha.order_count) == (Decimal("0.00"), 0)
    assert sorted(asha.tag_rows.values_list("name", flat=True)) == ["newsletter", "vip"]
    assert Customer.objects.get(external_id="C-2").tag_rows.count() == 0


def test_resending_the_same_customers_changes_nothing_at_all() -> None:
    rows = [
        {
            "external_id": "C-1",
            "email": "asha@example.com",
            "tags": "vip|newsletter",
            "attributes": {"plan": "gold"},
            "signed_up_at": "2024-03-15",
            "marketing_consent": False,
        },
        {"external_id": "C-2", "city": "Pune"},
    ]
    customers_bulk_upsert(rows=rows)
    before = snapshot()

    result = customers_bulk_upsert(rows=rows)

    assert result == BulkResult(created=0, updated=0, unchanged=2, errors=[])
    assert snapshot() == before


def test_an_update_writes_only_the_given_fields_and_replaces_tags() -> None:
    customers_bulk_upsert(
        rows=[
            {"external_id": "C-1", "email": "a@example.com", "city": "Pune", "tags": ["vip", "b2b"]}
        ]
    )

    result = customers_bulk_upsert(
        rows=[{"external_id": "C-1", "city": "Mumbai", "tags": ["vip", "newsletter"]}]
    )

    assert result == BulkResult(created=0, updated=1, unchanged=0, errors=[])
    customer = Customer.objects.get(external_id="C-1")
    assert (customer.email, customer.city) == ("a@example.com", "Mumbai")
    assert sorted(customer.tag_rows.values_list("name", flat=True)) == ["newsletter", "vip"]


def test_a_tag_change_alone_counts_as_an_update_and_moves_updated_at() -> None:
    customers_bulk_upsert(rows=[{"external_id": "C-1", "tags": ["vip"]}])
    updated_at = Customer.objects.get().updated_at

    result = customers_bulk_upsert(rows=[{"external_id": "C-1", "tags": []}])

    assert result.updated == 1
    assert CustomerTag.objects.count() == 0
    assert Customer.objects.get().updated_at > updated_at


def test_empty_consent_keeps_the_stored_choice() -> None:
    customers_bulk_upsert(rows=[{"external_id": "C-1", "marketing_consent": False}])

    result = customers_bulk_upsert(rows=[{"external_id": "C-1", "marketing_consent": ""}])

    assert result.unchanged == 1
    assert Customer.objects.get().marketing_consent is False


def test_invalid_customer_rows_are_reported_and_the_rest_stored() -> None:
    result = customers_bulk_upsert(
        rows=[
            {"external_id": "C-1"},
            {"external_id": "C-2", "email": "nope"},
            {"email": "c@example.com"},
            {"external_id": "C-1", "city": "Pune"},
        ]
    )

    assert result == BulkResult(
        created=1,
        updated=0,
        unchanged=0,
        errors=[
            RowError(1, "email", "'nope' is not a valid email address."),
            RowError(2, "external_id", "This field is required."),
            RowError(3, "external_id", "'C-1' already appears in row 0 of this batch."),
        ],
    )
    assert list(Customer.objects.values_list("external_id", "city")) == [("C-1", "")]


def test_a_batch_over_ten_thousand_rows_is_refused_and_nothing_is_stored() -> None:
    with pytest.raises(ApplicationError) as raised:
        customers_bulk_upsert(rows=[{"external_id": f"C-{n}"} for n in range(10_001)])

    assert raised.value.field == "rows"
    assert Customer.objects.count() == 0


def test_customer_upserts_take_the_same_number_of_queries_for_any_batch_size() -> None:
    def queries(count: int, offset: int) -> int:
        rows = [{"external_id": f"C-{offset + n}", "tags": ["vip"]} for n in range(count)]
        with CaptureQueriesContext(connection) as captured:
            customers_bulk_upsert(rows=rows)
        return len(captured)

    assert queries(3, 0) == queries(300, 100)


# --- orders -----------------------------------------------------------------------------------


@pytest.fixture
def customers() -> None:
    customers_bulk_upsert(rows=[{"external_id": "C-1"}, {"external_id": "C-2"}])


@pytest.mark.usefixtures("customers")
def test_orders_are_created_and_only_completed_ones_count_in_stats() -> None:
    result = orders_bulk_upsert(
        rows=[
            order_row("O-1", "C-1", "100.50", 3),
            order_row("O-2", "C-1", "200.00", 9),
            order_row("O-3", "C-1", "999.99", 1, status="cancelled"),
            order_row("O-4", "C-1", "50", 20, status="refunded"),
        ]
    )

    assert result == BulkResult(created=4, updated=0, unchanged=0, errors=[])
    assert stats("C-1") == (Decimal("300.50"), 2, at(3), at(9))
    assert stats("C-2") == (Decimal("0.00"), 0, None, None)
    stored = Order.objects.get(external_id="O-1")
    assert (stored.currency, stored.status, stored.amount) == (
        "INR",
        "completed",
        Decimal("100.50"),
    )


@pytest.mark.usefixtures("customers")
def test_new_orders_add_to_existing_stats() -> None:
    orders_bulk_upsert(rows=[order_row("O-1", "C-1", "100", 10)])

    orders_bulk_upsert(rows=[order_row("O-2", "C-1", "50", 5), order_row("O-3", "C-1", "25", 7)])

    assert stats("C-1") == (Decimal("175.00"), 3, at(5), at(10))


@pytest.mark.usefixtures("customers")
def test_an_unknown_customer_is_an_error_on_customer_external_id_and_the_rest_is_stored() -> None:
    result = orders_bulk_upsert(
        rows=[order_row("O-1", "C-404", "10", 1), order_row("O-2", "C-1", "10", 2)]
    )

    assert result == BulkResult(
        created=1,
        updated=0,
        unchanged=0,
        errors=[RowError(0, "customer_external_id", "No customer has external_id 'C-404'.")],
    )
    assert list(Order.objects.values_list("external_id", flat=True)) == ["O-2"]
    assert stats("C-1") == (Decimal("10.00"), 1, at(2), at(2))


@pytest.mark.usefixtures("customers")
def test_resending_the_same_orders_changes_nothing_at_all() -> None:
    ExchangeRate.objects.create(currency="USD", day=date(2025, 1, 2), rate=Decimal("83.5"))
    rows = [
        order_row("O-1", "C-1", "10", 1),
        order_row("O-2", "C-2", "20.5", 2, status="refunded", currency="usd"),
    ]
    orders_bulk_upsert(rows=rows)
    before = snapshot()

    result = orders_bulk_upsert(rows=rows)

    assert result == BulkResult(created=0, updated=0, unchanged=2, errors=[])
    assert snapshot() == before


@pytest.mark.usefixtures("customers")
def test_a_resend_with_the_same_instant_in_another_offset_is_unchanged() -> None:
    orders_bulk_upsert(rows=[order_row("O-1", "C-1", "10.00", 1)])

    result = orders_bulk_upsert(
        rows=[{**order_row("O-1", "C-1", "10", 1), "ordered_at": "2025-01-01T15:30:00+05:30"}]
    )

    assert result.unchanged == 1


@pytest.mark.usefixtures("customers")
def test_a_status_change_recomputes_the_customers_stats() -> None:
    orders_bulk_upsert(rows=[order_row("O-1", "C-1", "10", 1), order_row("O-2", "C-1", "30", 5)])

    result = orders_bulk_upsert(rows=[order_row("O-2", "C-1", "30", 5, status="refunded")])

    assert result == BulkResult(created=0, updated=1, unchanged=0, errors=[])
    assert stats("C-1") == (Decimal("10.00"), 1, at(1), at(1))


@pytest.mark.usefixtures("customers")
def test_an_order_moved_to_another_customer_moves_its_spend() -> None:
    orders_bulk_upsert(rows=[order_row("O-1", "C-1", "10", 1), order_row("O-2", "C-1", "30", 5)])

    orders_bulk_upsert(rows=[order_row("O-2", "C-2", "30", 5)])

    assert stats("C-1") == (Decimal("10.00"), 1, at(1), at(1))
    assert stats("C-2") == (Decimal("30.00"), 1, at(5), at(5))


@pytest.mark.usefixtures("customers")
def test_a_currency_change_converts_the_amount_again_and_the_stats_follow() -> None:
    ExchangeRate.objects.create(currency="EUR", day=date(2025, 1, 1), rate=Decimal("90.125"))
    orders_bulk_upsert(rows=[order_row("O-1", "C-1", "10", 1)])

    result = orders_bulk_upsert(rows=[order_row("O-1", "C-1", "10", 1, currency="EUR")])

    assert result.updated == 1
    stored = Order.objects.get()
    assert (stored.currency, stored.original_amount, stored.amount) == (
        "EUR",
        Decimal("10.00"),
        Decimal("901.25"),
    )
    assert stats("C-1") == (Decimal("901.25"), 1, at(1), at(1))


@pytest.mark.usefixtures("customers")
def test_leaving_status_out_keeps_the_stored_status() -> None:
    orders_bulk_upsert(rows=[order_row("O-1", "C-1", "10", 1, status="cancelled")])

    result = orders_bulk_upsert(rows=[order_row("O-1", "C-1", "10", 1)])

    assert result.unchanged == 1
    assert Order.objects.get().status == "cancelled"


@pytest.mark.usefixtures("customers")
def test_a_duplicate_order_key_in_one_batch_keeps_the_first_row() -> None:
    result = orders_bulk_upsert(
        rows=[order_row("O-1", "C-1", "10", 1), order_row("O-1", "C-1", "99", 2)]
    )

    assert result.errors == [
        RowError(1, "external_id", "'O-1' already appears in row 0 of this batch.")
    ]
    assert stats("C-1") == (Decimal("10.00"), 1, at(1), at(1))


@pytest.mark.usefixtures("customers")
def test_invalid_order_rows_change_nothing() -> None:
    orders_bulk_upsert(rows=[order_row("O-1", "C-1", "10", 1)])
    before = snapshot()

    result = orders_bulk_upsert(
        rows=[order_row("O-1", "C-1", "-10", 1), order_row("O-2", "C-1", "5", 1, status="lost")]
    )

    assert result.created + result.updated + result.unchanged == 0
    assert [(error.index, error.field) for error in result.errors] == [(0, "amount"), (1, "status")]
    assert snapshot() == before


@pytest.mark.usefixtures("customers")
def test_order_upserts_take_the_same_number_of_queries_for_any_batch_size() -> None:
    def queries(count: int, offset: int) -> int:
        rows = [
            order_row(f"O-{offset + n}", f"C-{1 + n % 2}", "10", 1 + n % 28) for n in range(count)
        ]
        with CaptureQueriesContext(connection) as captured:
            orders_bulk_upsert(rows=rows)
        return len(captured)

    assert queries(4, 0) == queries(400, 100)


# --- deletes and rebuilds ---------------------------------------------------------------------


@pytest.mark.usefixtures("customers")
def test_deleting_orders_corrects_stats_and_skips_unknown_keys() -> None:
    orders_bulk_upsert(
        rows=[
            order_row("O-1", "C-1", "10", 1),
            order_row("O-2", "C-1", "30", 5),
            order_row("O-3", "C-2", "7", 3),
        ]
    )

    deleted = orders_bulk_delete(external_ids=["O-2", "O-3", "O-404"])

    assert deleted == 2
    assert stats("C-1") == (Decimal("10.00"), 1, at(1), at(1))
    assert stats("C-2") == (Decimal("0.00"), 0, None, None)


@pytest.mark.usefixtures("customers")
def test_deleting_a_missing_order_is_not_found_and_changes_nothing() -> None:
    orders_bulk_upsert(rows=[order_row("O-1", "C-1", "10", 1)])
    before = snapshot()

    with pytest.raises(NotFoundError):
        order_delete(external_id="O-404")

    assert snapshot() == before


@pytest.mark.usefixtures("customers")
def test_order_delete_removes_one_order() -> None:
    orders_bulk_upsert(rows=[order_row("O-1", "C-1", "10", 1)])

    order_delete(external_id="O-1")

    assert Order.objects.count() == 0
    assert stats("C-1") == (Decimal("0.00"), 0, None, None)


def test_recompute_fixes_stale_stats_and_leaves_right_ones_untouched() -> None:
    stale = CustomerFactory()
    OrderFactory(customer=stale, amount=Decimal("12.34"), ordered_at=at(4))
    right = CustomerFactory()
    right_before = Customer.objects.values_list().get(pk=right.pk)

    changed = customer_stats_recompute(customer_ids=[stale.pk, right.pk])

    assert changed == 1
    assert stats(stale.external_id) == (Decimal("12.34"), 1, at(4), at(4))
    assert Customer.objects.values_list().get(pk=right.pk) == right_before


def test_rebuild_walks_every_customer_in_batches() -> None:
    stale = [CustomerFactory() for _ in range(3)]
    for customer in stale:
        OrderFactory(customer=customer, amount=Decimal("5.00"), ordered_at=at(2))
    CustomerFactory()
    progress: list[int] = []

    changed = customer_stats_rebuild(batch_size=2, on_progress=progress.append)

    assert changed == 3
    assert progress == [2, 2]
    assert customer_stats_rebuild(batch_size=2) == 0


# Fifty amounts whose float sum, in this order, is 97509.4600000001: what SQLite's SUM() of a
# decimal column returns when it reads them in order of time.
# fmt: off
FLOAT_TRAP = [
    "394.08", "2576.17", "562.87", "367.35", "2957.07", "2682.21", "2853.01", "1025.7",
    "2537.69", "2092.3", "1808.62", "1315.36", "873.09", "3073.37", "4178.65", "1806.81",
    "649.15", "2926.8", "3697.11", "4694.49", "201.41", "896.3", "3777.71", "50.71", "2083.33",
    "3980.23", "163.22", "500.37", "4767.73", "933.09", "1468.12", "3717.42", "3867.19",
    "744.64", "1526.71", "111.27", "1402.33", "2854.96", "2439.13", "4425.24", "1291.63",
    "3589.88", "414.13", "933.03", "295.18", "526.71", "1636.56", "2372.02", "2705.54", "761.77",
]
# fmt: on


@pytest.mark.usefixtures("customers")
def test_recomputed_spend_is_stored_to_the_cent_even_when_the_database_sums_floats() -> None:
    rows = [
        {**order_row(f"O-{n}", "C-1", amount, 1), "ordered_at": f"2025-01-01T10:{n:02d}:00Z"}
        for n, amount in enumerate(FLOAT_TRAP)
    ]
    orders_bulk_upsert(rows=rows)
    customer = Customer.objects.get(external_id="C-1")

    assert customer_stats_recompute(customer_ids=[customer.pk]) == 0
    orders_bulk_upsert(rows=[{**rows[0], "customer_external_id": "C-2"}])  # a move recomputes
    orders_bulk_upsert(rows=[rows[0]])

    # Compared in SQL, so a stored 97509.4600000001 (which reads back rounded) would not match.
    assert Customer.objects.filter(pk=customer.pk, total_spend=Decimal("97509.46")).exists()
    assert stats("C-1")[:2] == (Decimal("97509.46"), 50)


@pytest.mark.usefixtures("customers")
def test_spend_added_order_by_order_stays_exact_to_the_cent() -> None:
    for n, amount in enumerate(FLOAT_TRAP):
        orders_bulk_upsert(
            rows=[
                {
                    **order_row(f"O-{n}", "C-1", amount, 1),
                    "ordered_at": f"2025-01-01T10:{n:02d}:00Z",
                }
            ]
        )

    assert Customer.objects.filter(external_id="C-1", total_spend=Decimal("97509.46")).exists()
    assert customer_stats_rebuild() == 0


@pytest.mark.usefixtures("customers")
def test_moving_a_middle_order_in_time_touches_the_customer_though_stats_stay() -> None:
    orders_bulk_upsert(rows=[order_row("O-1", "C-1", "10", 1), order_row("O-2", "C-1", "20", 5)])
    orders_bulk_upsert(rows=[order_row("O-3", "C-1", "30", 9)])
    before = Customer.objects.values_list("updated_at", flat=True).get(external_id="C-1")
    stats_before = stats("C-1")

    orders_bulk_upsert(rows=[order_row("O-2", "C-1", "20", 7)])  # first and last stay the same

    assert stats("C-1") == stats_before
    # The snapshot's recent orders and the insight trend windows are refreshed by updated_at.
    assert Customer.objects.values_list("updated_at", flat=True).get(external_id="C-1") > before
