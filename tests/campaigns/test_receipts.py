"""Receipts: each case counted exactly, nothing going back, counters equal to the rows."""

from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from minicrm.campaigns.counters import counters_from_rows, counters_of
from minicrm.campaigns.models import Campaign, Delivery
from minicrm.campaigns.receipts import (
    MAX_GROUPED_UPDATES,
    MAX_RECEIPTS_PER_BATCH,
    Receipt,
    receipts_apply,
)
from minicrm.core.errors import InvalidInputError
from minicrm.segments.rules import parse_rules
from minicrm.segments.services import segment_create
from tests.factories import CustomerFactory

pytestmark = pytest.mark.django_db

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
NONE = {"applied": 0, "duplicate": 0, "unknown": 0, "stale": 0}


def sent_campaign(marketer, size: int, *, name: str = "Spring") -> Campaign:
    """A campaign whose `size` deliveries are all sent, vendor ids `<name>-0`, `<name>-1`, ..."""
    segment = segment_create(
        name=f"{name} segment",
        rules=parse_rules({"match": "all", "conditions": []}),
        created_by=marketer,
    )
    campaign = Campaign.objects.create(
        name=name,
        segment=segment,
        channel="webhook",
        template="Hi",
        status=Campaign.Status.SENDING,
        audience=size,
        sent=size,
    )
    customers = CustomerFactory.create_batch(size)
    Delivery.objects.bulk_create(
        Delivery(
            campaign=campaign,
            customer=customer,
            status=Delivery.Status.SENT,
            vendor_id=f"{name}-{index}",
            sent_at=T0 - timedelta(minutes=1),
        )
        for index, customer in enumerate(customers)
    )
    return campaign


def delivery(vendor_id: str) -> Delivery:
    return Delivery.objects.get(vendor_id=vendor_id)


def counts(**given: int) -> dict[str, int]:
    return NONE | given


def assert_counters_equal_rows(*campaigns: Campaign) -> None:
    for campaign in campaigns:
        campaign.refresh_from_db()
        assert counters_of(campaign) == counters_from_rows(campaign.pk)


def test_a_sent_delivery_becomes_delivered_or_failed_with_its_time_and_reason(marketer):
    campaign = sent_campaign(marketer, 3)

    result = receipts_apply(
        [
            Receipt("Spring-0", "delivered", at=T0),
            Receipt("Spring-1", "failed", reason="Mailbox full", at=T0 + timedelta(seconds=1)),
        ]
    )

    assert result == counts(applied=2)
    first, second, third = (delivery(f"Spring-{i}") for i in range(3))
    assert (first.status, first.receipt_at, first.error) == ("delivered", T0, "")
    assert (second.status, second.receipt_at, second.error) == (
        "failed",
        T0 + timedelta(seconds=1),
        "Mailbox full",
    )
    assert (third.status, third.receipt_at) == ("sent", None)
    campaign.refresh_from_db()
    assert (campaign.sent, campaign.delivered, campaign.failed) == (1, 1, 1)
    assert_counters_equal_rows(campaign)


def test_a_receipt_without_a_time_is_stamped_when_it_arrived(marketer):
    sent_campaign(marketer, 1)
    before = datetime.now(UTC)

    receipts_apply([Receipt("Spring-0", "delivered")])

    assert before <= delivery("Spring-0").receipt_at <= datetime.now(UTC)


def test_a_time_without_a_zone_is_utc(marketer):
    sent_campaign(marketer, 1)

    receipts_apply([Receipt("Spring-0", "delivered", at=datetime(2026, 3, 1, 12, 0))])

    assert delivery("Spring-0").receipt_at == T0


def test_a_repeated_receipt_is_a_duplicate_and_changes_nothing(marketer):
    campaign = sent_campaign(marketer, 2)
    receipts_apply([Receipt("Spring-0", "failed", reason="Blocked", at=T0)])

    again = receipts_apply(
        [
            Receipt("Spring-0", "failed", reason="Other words", at=T0 + timedelta(hours=1)),
            Receipt("Spring-1", "delivered", at=T0),
            Receipt("Spring-1", "delivered", at=T0 + timedelta(seconds=5)),  # inside one batch
        ]
    )

    assert again == counts(applied=1, duplicate=2)
    assert (delivery("Spring-0").error, delivery("Spring-0").receipt_at) == ("Blocked", T0)
    assert delivery("Spring-1").receipt_at == T0  # the first receipt's time is kept
    campaign.refresh_from_db()
    assert (campaign.sent, campaign.delivered, campaign.failed) == (0, 1, 1)
    assert_counters_equal_rows(campaign)


def test_the_later_of_delivered_and_failed_wins_and_an_older_one_is_stale(marketer):
    campaign = sent_campaign(marketer, 2)
    receipts_apply([Receipt("Spring-0", "delivered", at=T0), Receipt("Spring-1", "failed", at=T0)])

    result = receipts_apply(
        [
            # Older than the delivered one: stale, the delivery stays delivered.
            Receipt("Spring-0", "failed", reason="Late news", at=T0 - timedelta(seconds=1)),
            # As old as it: stale too (the first one applied wins a tie).
            Receipt("Spring-0", "failed", reason="Same time", at=T0),
            # A later delivered after a failure: the vendor's retry got through.
            Receipt("Spring-1", "delivered", at=T0 + timedelta(seconds=1)),
        ]
    )

    assert result == counts(applied=1, stale=2)
    assert (delivery("Spring-0").status, delivery("Spring-0").error) == ("delivered", "")
    later = delivery("Spring-1")
    assert (later.status, later.error, later.receipt_at) == (
        "delivered",
        "",
        T0 + timedelta(seconds=1),
    )
    # A bounce after the delivery: later, so it wins and keeps its reason.
    bounced = receipts_apply(
        [Receipt("Spring-0", "failed", reason="Bounced", at=T0 + timedelta(minutes=1))]
    )
    assert bounced == counts(applied=1)
    assert (delivery("Spring-0").status, delivery("Spring-0").error) == ("failed", "Bounced")
    campaign.refresh_from_db()
    assert (campaign.delivered, campaign.failed) == (1, 1)
    assert_counters_equal_rows(campaign)


def test_out_of_order_inside_one_batch_ends_on_the_latest(marketer):
    campaign = sent_campaign(marketer, 2)

    result = receipts_apply(
        [
            Receipt("Spring-0", "delivered", at=T0 + timedelta(seconds=2)),
            Receipt("Spring-0", "failed", at=T0 + timedelta(seconds=1)),  # older: stale
            Receipt("Spring-1", "failed", at=T0 + timedelta(seconds=1)),
            Receipt("Spring-1", "delivered", at=T0 + timedelta(seconds=2)),  # later: applied
            Receipt("Spring-1", "failed", reason="Bounced", at=T0 + timedelta(seconds=3)),
        ]
    )

    assert result == counts(applied=4, stale=1)
    assert delivery("Spring-0").status == "delivered"
    last = delivery("Spring-1")
    assert (last.status, last.error, last.receipt_at) == (
        "failed",
        "Bounced",
        T0 + timedelta(seconds=3),
    )
    campaign.refresh_from_db()
    assert (campaign.sent, campaign.delivered, campaign.failed) == (0, 1, 1)
    assert_counters_equal_rows(campaign)


def test_unknown_empty_and_overlong_vendor_ids_are_unknown_and_change_nothing(marketer):
    campaign = sent_campaign(marketer, 1)

    result = receipts_apply(
        [
            Receipt("nobody-knows", "delivered"),
            Receipt("", "delivered"),
            Receipt("x" * 101, "failed"),
        ]
    )

    assert result == counts(unknown=3)
    assert delivery("Spring-0").status == "sent"
    assert_counters_equal_rows(campaign)


def test_a_delivery_not_waiting_for_a_receipt_is_unknown(marketer):
    campaign = sent_campaign(marketer, 3)
    # Vendor ids on rows that were never sent (a state the worker never writes, but receipts
    # must not resurrect them): pending, skipped, held out.
    for index, status in enumerate(["pending", "skipped", "held_out"]):
        Delivery.objects.filter(vendor_id=f"Spring-{index}").update(status=status)
    Campaign.objects.filter(pk=campaign.pk).update(sent=0, pending=1, skipped=1, held_out=1)

    result = receipts_apply([Receipt(f"Spring-{i}", "delivered") for i in range(3)])

    assert result == counts(unknown=3)
    statuses = sorted(Delivery.objects.values_list("status", flat=True))
    assert statuses == ["held_out", "pending", "skipped"]
    assert_counters_equal_rows(campaign)


def test_an_empty_batch_applies_nothing():
    assert receipts_apply([]) == NONE


def test_a_batch_over_the_limit_is_refused_naming_the_field():
    too_many = [Receipt("x", "delivered")] * (MAX_RECEIPTS_PER_BATCH + 1)

    with pytest.raises(InvalidInputError) as error:
        receipts_apply(too_many)

    assert error.value.field == "receipts"


def test_counters_move_for_each_campaign_of_the_batch(marketer):
    spring = sent_campaign(marketer, 3, name="Spring")
    autumn = sent_campaign(marketer, 2, name="Autumn")

    result = receipts_apply(
        [
            Receipt("Spring-0", "delivered"),
            Receipt("Autumn-0", "failed", reason="Blocked"),
            Receipt("Spring-1", "failed"),
            Receipt("Autumn-1", "delivered"),
        ]
    )

    assert result == counts(applied=4)
    spring.refresh_from_db()
    autumn.refresh_from_db()
    assert (spring.sent, spring.delivered, spring.failed) == (1, 1, 1)
    assert (autumn.sent, autumn.delivered, autumn.failed) == (0, 1, 1)
    assert_counters_equal_rows(spring, autumn)


def test_a_batch_is_a_fixed_number_of_statements_whatever_its_size(marketer):
    sent_campaign(marketer, 200)
    receipts = [
        Receipt(f"Spring-{i}", "failed" if i % 10 == 0 else "delivered", reason="Blocked", at=T0)
        for i in range(200)
    ]

    with CaptureQueriesContext(connection) as queries:
        result = receipts_apply(receipts)

    assert result == counts(applied=200)
    statements = [q["sql"] for q in queries.captured_queries]
    work = [sql for sql in statements if sql.startswith(("SELECT", "UPDATE"))]
    # One locking SELECT, one UPDATE per outcome (delivered, failed), one counters UPDATE.
    assert len(work) == 4, statements
    assert Delivery.objects.filter(status="failed", error="Blocked").count() == 20


def test_many_distinct_times_are_written_row_by_row_and_exactly(marketer):
    size = MAX_GROUPED_UPDATES + 10
    campaign = sent_campaign(marketer, size)
    receipts = [
        Receipt(f"Spring-{i}", "delivered", at=T0 + timedelta(seconds=i)) for i in range(size)
    ]

    assert receipts_apply(receipts) == counts(applied=size)

    stored = dict(Delivery.objects.values_list("vendor_id", "receipt_at"))
    assert stored == {f"Spring-{i}": T0 + timedelta(seconds=i) for i in range(size)}
    assert_counters_equal_rows(campaign)


def test_a_long_reason_is_cut_to_the_column(marketer):
    sent_campaign(marketer, 1)

    receipts_apply([Receipt("Spring-0", "failed", reason="é" * 900)])

    assert delivery("Spring-0").error == "é" * 500
