from collections import Counter
from decimal import Decimal
from io import StringIO
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from django.db.models import Count, F, Q

from minicrm.customers.models import Customer, CustomerTag, Order
from minicrm.customers.services import customer_stats_rebuild

pytestmark = pytest.mark.django_db


def run(*args: str) -> str:
    out = StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def content() -> list[tuple[Any, ...]]:
    """Everything seed_demo writes except the moment it ran."""
    customers = Customer.objects.order_by("external_id").values_list(
        "external_id", "email", "first_name", "city", "country", "attributes", "signed_up_at",
        "total_spend", "order_count", "first_order_at", "last_order_at",
    )  # fmt: skip
    orders = Order.objects.order_by("external_id").values_list(
        "external_id", "customer__external_id", "amount", "status", "ordered_at"
    )
    tags = CustomerTag.objects.order_by("customer__external_id", "name").values_list(
        "customer__external_id", "name"
    )
    return [*customers, *orders, *tags]


def test_seed_demo_writes_the_requested_numbers_with_exact_stats() -> None:
    output = run("seed_demo", "--customers", "300", "--orders", "2400")

    assert Customer.objects.count() == 300
    assert Order.objects.count() == 2400
    assert output.startswith("Added 300 customers, 2,400 orders and ")
    assert customer_stats_rebuild() == 0


def test_seed_demo_data_looks_like_a_real_shop() -> None:
    run("seed_demo", "--customers", "1000", "--orders", "8000", "--seed", "7")

    never = Customer.objects.filter(order_count=0).count()
    assert 100 <= never <= 250  # about 15% never ordered (plus a few with only cancellations)
    statuses = Counter(Order.objects.values_list("status", flat=True))
    assert statuses["cancelled"] > 0
    assert statuses["refunded"] > 0
    assert statuses["completed"] > 0.85 * 8000
    assert Customer.objects.exclude(country="India").exists()
    assert set(CustomerTag.objects.values_list("name", flat=True)) >= {"vip", "newsletter"}
    amounts = sorted(Order.objects.values_list("amount", flat=True))
    median = amounts[len(amounts) // 2]
    assert amounts[-1] > 5 * median  # a long tail of big orders
    by_month = Counter(at.month for at in Order.objects.values_list("ordered_at", flat=True))
    festive = (by_month[10] + by_month[11]) / 2
    assert festive > 1.2 * (by_month[2] + by_month[6]) / 2


def test_the_same_seed_gives_the_same_data() -> None:
    run("seed_demo", "--customers", "50", "--orders", "300", "--seed", "3")
    first = content()
    Order.objects.all().delete()
    Customer.objects.all().delete()

    run("seed_demo", "--customers", "50", "--orders", "300", "--seed", "3")

    second = content()
    assert second == first


def test_seed_demo_adds_after_existing_customers_and_keeps_ids_usable() -> None:
    run("seed_demo", "--customers", "20", "--orders", "40")
    run("seed_demo", "--customers", "20", "--orders", "40", "--seed", "9")

    assert Customer.objects.count() == 40
    created = Customer.objects.create(external_id="after-seeding")
    assert created.pk > 40


def test_if_empty_does_nothing_when_customers_exist() -> None:
    run("seed_demo", "--customers", "10", "--orders", "20")

    output = run("seed_demo", "--if-empty")

    assert output == "Customers already exist; no demo data added (--if-empty).\n"
    assert Customer.objects.count() == 10


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--customers", "-1"], r"--customers must be 0 or more\."),
        (["--orders", "-5"], r"--orders must be 0 or more\."),
        (["--customers", "0", "--orders", "5"], "--orders needs at least one customer"),
    ],
)
def test_seed_demo_refuses_bad_numbers(args: list[str], message: str) -> None:
    with pytest.raises(CommandError, match=message):
        run("seed_demo", *args)

    assert Customer.objects.count() == 0


def test_rebuild_reports_and_fixes_stale_stats() -> None:
    run("seed_demo", "--customers", "40", "--orders", "200")
    buyers = Customer.objects.filter(order_count__gt=0).order_by("id")[:3]
    Customer.objects.filter(pk__in=[c.pk for c in buyers]).update(
        total_spend=Decimal("1.00"), order_count=99
    )

    output = run("rebuild_customer_stats", "--batch-size", "7")

    assert output.startswith("Checked 40 customers in ")
    assert output.endswith(": 3 had stale stats and were corrected.\n")
    wrong = Customer.objects.annotate(
        completed=Count("orders", filter=Q(orders__status="completed"))
    ).exclude(order_count=F("completed"))
    assert not wrong.exists()
    assert customer_stats_rebuild() == 0


def test_rebuild_refuses_a_batch_size_below_one() -> None:
    with pytest.raises(CommandError, match=r"--batch-size must be at least 1\."):
        run("rebuild_customer_stats", "--batch-size", "0")
