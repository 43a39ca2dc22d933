from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from minicrm.core.errors import ApplicationError, NotFoundError
from minicrm.customers.models import Customer, CustomerTag
from minicrm.customers.selectors import (
    CUSTOMER_ORDERINGS,
    customer_city_list,
    customer_country_list,
    customer_get,
    customer_list,
    customer_recent_orders,
    customer_tags,
    order_list,
    tag_name_list,
)
from tests.factories import CustomerFactory, OrderFactory

pytestmark = pytest.mark.django_db


def keys(customers: object) -> list[str]:
    return [customer.external_id for customer in customers]  # type: ignore[attr-defined]


@pytest.fixture
def people() -> dict[str, Customer]:
    made = {
        "asha": CustomerFactory(
            external_id="C-1",
            email="asha.rao@example.com",
            first_name="Asha",
            last_name="Rao",
            city="Pune",
            total_spend=Decimal("900.00"),
            order_count=3,
            last_order_at=datetime(2025, 3, 1, tzinfo=UTC),
        ),
        "ashok": CustomerFactory(
            external_id="C-2",
            email="ashok@example.org",
            first_name="Ashok",
            last_name="Kumar",
            city="Delhi",
            total_spend=Decimal("50.00"),
            order_count=1,
            last_order_at=datetime(2025, 1, 1, tzinfo=UTC),
        ),
        "priya": CustomerFactory(
            external_id="C-3",
            email="p.sharma@example.com",
            first_name="Priya",
            last_name="Sharma",
            city="",
            country="Nepal",
        ),
    }
    CustomerTag.objects.create(customer=made["asha"], name="vip")
    CustomerTag.objects.create(customer=made["asha"], name="b2b")
    CustomerTag.objects.create(customer=made["priya"], name="vip")
    return made


@pytest.mark.usefixtures("people")
@pytest.mark.parametrize(
    ("search", "expected"),
    [
        ("ash", ["C-2", "C-1"]),
        ("ASHA", ["C-1"]),
        ("kum", ["C-2"]),
        ("p.sharma@", ["C-3"]),
        ("@example.org", []),
        ("asha r", ["C-1"]),
        ("C-3", ["C-3"]),
        ("rao@", []),
        ("  ", ["C-3", "C-2", "C-1"]),
    ],
)
def test_search_matches_prefixes_of_email_and_names_and_exact_external_ids(
    search: str, expected: list[str]
) -> None:
    assert keys(customer_list(search=search)) == expected


@pytest.mark.usefixtures("people")
def test_filters_combine() -> None:
    assert keys(customer_list(tag="VIP", has_orders=True)) == ["C-1"]
    assert keys(customer_list(city="Delhi")) == ["C-2"]
    assert keys(customer_list(country="Nepal")) == ["C-3"]
    assert keys(customer_list(spend_min=Decimal("50"), spend_max=Decimal("100"))) == ["C-2"]
    assert keys(customer_list(has_orders=False)) == ["C-3"]


@pytest.mark.usefixtures("people")
@pytest.mark.parametrize(
    ("ordering", "expected"),
    [
        ("-total_spend", ["C-1", "C-2", "C-3"]),
        ("name", ["C-2", "C-1", "C-3"]),
        ("-last_order_at", ["C-1", "C-2", "C-3"]),
        ("last_order_at", ["C-2", "C-1", "C-3"]),
        ("city", ["C-3", "C-2", "C-1"]),
        ("created", ["C-1", "C-2", "C-3"]),
    ],
)
def test_orderings_put_never_ordered_customers_last_by_date(
    ordering: str, expected: list[str]
) -> None:
    assert keys(customer_list(ordering=ordering)) == expected


def test_every_ordering_runs() -> None:
    CustomerFactory()

    for ordering in CUSTOMER_ORDERINGS:
        assert len(customer_list(ordering=ordering)) == 1


def test_an_unknown_ordering_is_an_error_naming_ordering() -> None:
    with pytest.raises(ApplicationError) as raised:
        customer_list(ordering="password")

    assert raised.value.field == "ordering"


def test_customer_get_includes_sorted_tags(people: dict[str, Customer]) -> None:
    customer = customer_get(customer_id=people["asha"].pk)

    assert customer_tags(customer) == ["b2b", "vip"]


def test_customer_get_of_a_missing_id_is_not_found() -> None:
    with pytest.raises(NotFoundError):
        customer_get(customer_id=424242)


def test_recent_orders_are_newest_first_and_limited() -> None:
    customer = CustomerFactory()
    for day in (3, 1, 2):
        OrderFactory(
            customer=customer, external_id=f"O-{day}", ordered_at=datetime(2025, 1, day, tzinfo=UTC)
        )
    OrderFactory(external_id="O-other")

    recent = customer_recent_orders(customer_id=customer.pk, limit=2)

    assert [order.external_id for order in recent] == ["O-3", "O-2"]


def test_order_list_filters_by_customer_status_and_inclusive_days() -> None:
    customer = CustomerFactory(external_id="C-9")
    OrderFactory(
        customer=customer, external_id="O-1", ordered_at=datetime(2025, 1, 1, 23, tzinfo=UTC)
    )
    OrderFactory(
        customer=customer,
        external_id="O-2",
        ordered_at=datetime(2025, 1, 2, tzinfo=UTC),
        status="refunded",
    )
    OrderFactory(external_id="O-3", ordered_at=datetime(2025, 1, 5, tzinfo=UTC))

    assert keys(order_list(customer_external_id="C-9")) == ["O-2", "O-1"]
    assert keys(order_list(customer_id=customer.pk, status="refunded")) == ["O-2"]
    assert keys(order_list(ordered_from=date(2025, 1, 1), ordered_to=date(2025, 1, 1))) == ["O-1"]
    assert keys(order_list(ordering="ordered_at")) == ["O-1", "O-2", "O-3"]
    assert order_list(status="refunded").get().customer.external_id == "C-9"


@pytest.mark.parametrize(
    ("arguments", "field"), [({"status": "lost"}, "status"), ({"ordering": "id"}, "ordering")]
)
def test_order_list_refuses_unknown_values_naming_the_field(
    arguments: dict[str, str], field: str
) -> None:
    with pytest.raises(ApplicationError) as raised:
        order_list(**arguments)  # type: ignore[arg-type]

    assert raised.value.field == field


@pytest.mark.usefixtures("people")
def test_choice_lists_are_distinct_and_sorted() -> None:
    assert tag_name_list() == ["b2b", "vip"]
    assert customer_city_list() == ["Delhi", "Pune"]
    assert customer_country_list() == ["India", "Nepal"]
