"""Campaign results: revenue attributed within 14 days of each message, against the holdout's
revenue within 14 days of the launch, summed exactly, in a fixed number of queries."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from minicrm.campaigns.models import Campaign, Delivery
from minicrm.campaigns.results import campaign_results
from minicrm.campaigns.services import campaign_launch, campaign_send
from minicrm.customers.models import Order
from tests.factories import CustomerFactory, OrderFactory

from .conftest import campaign_draft

pytestmark = pytest.mark.django_db(transaction=False)

SENT_AT = datetime(2026, 3, 1, 10, 0, tzinfo=UTC)
LAUNCHED_AT = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
DAYS_14 = timedelta(days=14)
SECOND = timedelta(seconds=1)


def launched(segment: Any, customers: int, holdout_percent: int) -> Campaign:
    """A launched campaign whose recipients were all sent at SENT_AT (the worker's clock is
    replaced by fixed instants so the windows are exact)."""
    CustomerFactory.create_batch(customers)
    campaign = campaign_draft(segment, holdout_percent=holdout_percent)
    campaign_send(campaign_id=campaign.pk)
    campaign_launch(campaign_id=campaign.pk)
    Delivery.objects.filter(campaign=campaign, status=Delivery.Status.PENDING).update(
        status=Delivery.Status.SENT, sent_at=SENT_AT
    )
    Campaign.objects.filter(pk=campaign.pk).update(launched_at=LAUNCHED_AT)
    return Campaign.objects.get(pk=campaign.pk)


def customers_of(campaign: Campaign, status: str) -> list[int]:
    rows = Delivery.objects.filter(campaign=campaign, status=status).order_by("customer_id")
    return list(rows.values_list("customer_id", flat=True))


def order(customer_id: int, amount: str, at: datetime, status: str = "completed") -> None:
    OrderFactory(customer_id=customer_id, amount=Decimal(amount), ordered_at=at, status=status)


def test_revenue_is_attributed_inside_each_window_and_the_lift_is_exact(everyone):
    campaign = launched(everyone, customers=20, holdout_percent=25)
    recipients = customers_of(campaign, Delivery.Status.SENT)
    held = customers_of(campaign, Delivery.Status.HELD_OUT)
    assert (len(recipients), len(held)) == (15, 5)
    r0, r1, r2, r3, r4, failed = recipients[:6]
    # One recipient's message went out a day later: their window starts (and ends) a day later.
    Delivery.objects.filter(campaign=campaign, customer_id=r3).update(
        sent_at=SENT_AT + DAYS_14 / 14
    )
    Delivery.objects.filter(campaign=campaign, customer_id=r4).update(status="delivered")
    Delivery.objects.filter(campaign=campaign, customer_id=failed).update(
        status="failed", sent_at=None
    )
    order(r0, "100.10", SENT_AT)  # the window's first instant counts
    order(r0, "0.20", SENT_AT + DAYS_14)  # and its last
    order(r1, "50.05", SENT_AT - SECOND)  # before the message
    order(r2, "999.99", SENT_AT + DAYS_14 + SECOND)  # after the window
    order(r2, "33.33", SENT_AT + timedelta(days=2), status=Order.Status.CANCELLED)
    order(r3, "10.01", SENT_AT + DAYS_14 + timedelta(hours=12))  # inside their later window
    for hour in range(10):  # ten 0.10s: a float sum is 0.9999999999999999
        order(r4, "0.10", SENT_AT + timedelta(hours=hour))
    order(failed, "400.00", SENT_AT + timedelta(days=1))  # never received the message
    order(held[0], "20.00", LAUNCHED_AT)
    order(held[1], "5.00", LAUNCHED_AT + DAYS_14 + SECOND)
    order(held[2], "10.00", LAUNCHED_AT - SECOND)
    order(held[3], "7.50", LAUNCHED_AT + timedelta(days=3))

    results = campaign_results(campaign)

    # Recipients: 100.10 + 0.20 + 10.01 + 10 x 0.10 = 111.31 from 14 people (one failed).
    # Lift: (111.31 / 14) / (27.50 / 5) - 1 = 556.55 / 385 - 1 = 0.44558...
    # Incremental: 111.31 - 27.50 / 5 x 14 = 34.31.
    assert results == {
        "window_days": 14,
        "recipients": 14,
        "recipient_buyers": 3,
        "recipient_revenue": Decimal("111.31"),
        "revenue_per_recipient": Decimal("7.95"),
        "held_out": 5,
        "holdout_buyers": 2,
        "holdout_revenue": Decimal("27.50"),
        "revenue_per_held_out": Decimal("5.50"),
        "lift": Decimal("0.4456"),
        "incremental_revenue": Decimal("34.31"),
    }
    assert all(
        isinstance(results[key], Decimal)
        for key in ("recipient_revenue", "holdout_revenue", "lift", "incremental_revenue")
    )


def test_without_a_holdout_there_is_no_lift(everyone):
    campaign = launched(everyone, customers=4, holdout_percent=0)
    first = customers_of(campaign, Delivery.Status.SENT)[0]
    order(first, "12.34", SENT_AT + timedelta(days=1))

    results = campaign_results(campaign)

    assert (results["recipients"], results["recipient_revenue"]) == (4, Decimal("12.34"))
    assert results["revenue_per_recipient"] == Decimal("3.08")  # 3.085, rounded half-even
    assert (results["held_out"], results["revenue_per_held_out"]) == (0, None)
    assert (results["lift"], results["incremental_revenue"]) == (None, None)


def test_a_holdout_that_spent_nothing_has_no_lift_but_all_revenue_is_incremental(everyone):
    campaign = launched(everyone, customers=10, holdout_percent=20)
    first = customers_of(campaign, Delivery.Status.SENT)[0]
    order(first, "80.00", SENT_AT + timedelta(days=1))

    results = campaign_results(campaign)

    assert results["revenue_per_held_out"] == Decimal("0.00")
    assert results["lift"] is None
    assert results["incremental_revenue"] == Decimal("80.00")


def test_a_draft_has_empty_results(everyone):
    campaign = campaign_draft(everyone)

    results = campaign_results(campaign)

    assert results["recipients"] == results["held_out"] == 0
    assert results["recipient_revenue"] == Decimal("0.00")
    assert results["revenue_per_recipient"] is None
    assert results["lift"] is None


def test_the_results_take_three_queries_however_many_customers(everyone, django_assert_num_queries):
    campaign = launched(everyone, customers=60, holdout_percent=10)
    for customer_id in customers_of(campaign, Delivery.Status.SENT):
        order(customer_id, "1.01", SENT_AT + timedelta(days=1))

    with django_assert_num_queries(3):
        results = campaign_results(campaign)

    assert (results["recipients"], results["recipient_buyers"]) == (54, 54)
    assert results["recipient_revenue"] == Decimal("54.54")
