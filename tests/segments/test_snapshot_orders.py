"""The snapshot's recent completed orders: loaded with the customers, kept exact by refresh."""

from datetime import datetime, timedelta
from typing import Any
from unittest import mock

import pytest
from django.utils import timezone

from minicrm.customers.models import Customer, Order
from minicrm.customers.services import orders_bulk_delete, orders_bulk_upsert
from minicrm.segments import snapshot as snapshot_module
from minicrm.segments.snapshot import CustomerSnapshot, cents, micros
from tests.factories import CustomerFactory, OrderFactory

Held = list[tuple[int, int, int, int]]


def held(snapshot: CustomerSnapshot) -> Held:
    rows = snapshot.fetch("SELECT id, customer_id, ordered_at, cents FROM recent_orders", [])
    return sorted(rows)


def expected(snapshot: CustomerSnapshot) -> Held:
    """What the table must hold: every completed order from `orders_since`, as the database
    has it now."""
    assert snapshot.orders_since is not None
    orders = Order.objects.filter(status="completed", ordered_at__gte=snapshot.orders_since)
    return sorted(
        (pk, customer_id, micros(ordered_at) or 0, cents(amount))
        for pk, customer_id, ordered_at, amount in orders.values_list(
            "id", "customer_id", "ordered_at", "amount"
        )
    )


def ago(days: int) -> str:
    return (timezone.now() - timedelta(days=days)).isoformat()


def order(key: str, customer: str, amount: str, days_ago: int, **extra: Any) -> dict[str, Any]:
    return {
        "external_id": key,
        "customer_external_id": customer,
        "amount": amount,
        "ordered_at": ago(days_ago),
        **extra,
    }


def upsert(*rows: dict[str, Any]) -> None:
    result = orders_bulk_upsert(rows=list(rows))
    assert not result.errors, result.errors


@pytest.fixture
def loaded(db: None) -> CustomerSnapshot:
    """Three customers; recent, old, cancelled and refunded orders."""
    for key in ["a", "b", "c"]:
        CustomerFactory(external_id=key)
    upsert(
        order("a1", "a", "100.10", 3),
        order("a2", "a", "200.00", 150),
        order("a3", "a", "999.99", 400),  # older than the table holds
        order("b1", "b", "50.05", 10),
        order("b2", "b", "70.00", 20, status="cancelled"),
        order("b3", "b", "80.00", 30, status="refunded"),
        order("c1", "c", "12.34", 179),
    )
    snapshot = CustomerSnapshot()
    snapshot.load()
    return snapshot


def test_the_load_holds_the_recent_completed_orders_only(loaded: CustomerSnapshot) -> None:
    assert loaded.orders_since is not None
    assert loaded.orders_since <= timezone.now() - timedelta(days=snapshot_module.RECENT_ORDER_DAYS)
    rows = held(loaded)
    assert rows == expected(loaded)
    keys = dict(Order.objects.values_list("pk", "external_id"))
    assert sorted(keys[row[0]] for row in rows) == ["a1", "a2", "b1", "c1"]
    a1 = Order.objects.get(external_id="a1")
    assert (a1.pk, a1.customer_id, 10010) in [(row[0], row[1], row[3]) for row in rows]


def test_the_recent_window_covers_the_trend_windows_with_a_margin(
    loaded: CustomerSnapshot,
) -> None:
    assert loaded.holds_orders_since(timezone.now() - timedelta(days=180))
    assert not loaded.holds_orders_since(timezone.now() - timedelta(days=400))


def test_refresh_adds_new_orders(loaded: CustomerSnapshot) -> None:
    upsert(order("a4", "a", "5.00", 1), order("c2", "c", "6.00", 0), order("c3", "c", "7", 300))
    loaded.refresh()
    assert held(loaded) == expected(loaded)
    assert len(held(loaded)) == 6


def test_refresh_follows_status_changes(loaded: CustomerSnapshot) -> None:
    upsert(
        order("a1", "a", "100.10", 3, status="cancelled"),
        order("b2", "b", "70.00", 20, status="completed"),
        order("b3", "b", "80.00", 30, status="completed"),
    )
    loaded.refresh()
    assert held(loaded) == expected(loaded)
    keys = dict(Order.objects.values_list("pk", "external_id"))
    assert sorted(keys[row[0]] for row in held(loaded)) == ["a2", "b1", "b2", "b3", "c1"]


def test_refresh_follows_an_order_moved_to_another_customer_or_day(
    loaded: CustomerSnapshot,
) -> None:
    b1 = Order.objects.get(external_id="b1")
    b1_day = b1.ordered_at.isoformat()
    upsert(
        {**order("b1", "c", "50.05", 0), "ordered_at": b1_day},  # same day, other customer
        order("a3", "a", "999.99", 5),  # from outside the window into it
        order("c1", "c", "12.34", 500),  # out of the window
        order("a2", "a", "222.22", 150),  # a new amount
    )
    loaded.refresh()
    assert held(loaded) == expected(loaded)
    moved = [row for row in held(loaded) if row[0] == b1.pk]
    assert moved[0][1] == Customer.objects.get(external_id="c").pk


def test_refresh_drops_deleted_orders(loaded: CustomerSnapshot) -> None:
    orders_bulk_delete(external_ids=["a1", "b1"])
    loaded.refresh()
    assert held(loaded) == expected(loaded)
    assert len(held(loaded)) == 2


def test_refresh_adds_an_order_written_without_touching_its_customer(
    loaded: CustomerSnapshot,
) -> None:
    # Only its id tells the refresh about it (its customer's updated_at stays).
    customer = Customer.objects.get(external_id="b")
    OrderFactory(customer=customer, ordered_at=timezone.now() - timedelta(days=2))
    OrderFactory(customer=customer, ordered_at=timezone.now(), status="cancelled")
    loaded.refresh()
    assert held(loaded) == expected(loaded)
    assert len(held(loaded)) == 5


def test_a_second_refresh_does_not_double_count(loaded: CustomerSnapshot) -> None:
    upsert(order("a4", "a", "5.00", 1))
    customer = Customer.objects.get(external_id="c")
    OrderFactory(customer=customer, ordered_at=timezone.now() - timedelta(days=2))
    loaded.refresh()
    loaded.refresh()  # the watermark overlap reads `a` again, the id path finds nothing new
    assert held(loaded) == expected(loaded)
    assert len(held(loaded)) == 6


def test_deleted_customers_lose_their_orders_at_the_reconcile(
    loaded: CustomerSnapshot, monkeypatch: pytest.MonkeyPatch
) -> None:
    Customer.objects.filter(external_id="a").delete()
    monkeypatch.setattr(snapshot_module, "RECONCILE_EVERY_SECONDS", -1.0)
    loaded.refresh()
    assert held(loaded) == expected(loaded)
    assert len(held(loaded)) == 2


def test_many_new_orders_reload_everything(
    loaded: CustomerSnapshot, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(snapshot_module, "FULL_RELOAD_ABOVE_ORDERS", 1)
    customer = Customer.objects.get(external_id="c")
    OrderFactory.create_batch(2, customer=customer, ordered_at=timezone.now())
    watermark_before = loaded._watermark
    loaded.refresh()
    assert loaded._watermark != watermark_before
    assert held(loaded) == expected(loaded)
    assert len(held(loaded)) == 6


def test_many_changed_customers_reload_the_orders_too(
    loaded: CustomerSnapshot, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(snapshot_module, "FULL_RELOAD_ABOVE", 1)
    upsert(order("a4", "a", "5.00", 1), order("b4", "b", "6.00", 1))
    loaded.refresh()
    assert held(loaded) == expected(loaded)
    assert len(held(loaded)) == 6


def test_an_order_in_the_future_is_held_and_its_moment_kept_exact(
    loaded: CustomerSnapshot,
) -> None:
    moment = datetime.fromisoformat("2199-01-01T00:00:00.000001+00:00")
    upsert({**order("a9", "a", "0.01", 0), "ordered_at": moment.isoformat()})
    loaded.refresh()
    assert held(loaded) == expected(loaded)
    assert (Order.objects.get(external_id="a9").pk, micros(moment)) in [
        (row[0], row[2]) for row in held(loaded)
    ]


def test_a_refresh_skips_customers_it_already_applied(
    loaded: CustomerSnapshot, monkeypatch: pytest.MonkeyPatch
) -> None:
    upsert(order("a4", "a", "5.00", 1))
    loaded.refresh()
    reread = mock.Mock(wraps=loaded._reread_orders)
    monkeypatch.setattr(loaded, "_reread_orders", reread)

    loaded.refresh()  # `a` is in the watermark overlap, unchanged since
    upsert(order("b4", "b", "6.00", 1))
    loaded.refresh()

    a, b = (Customer.objects.get(external_id=key).pk for key in "ab")
    assert reread.call_args_list == [mock.call([b])]
    assert held(loaded) == expected(loaded)
    assert a in {row[1] for row in held(loaded) if row[3] == 500}
