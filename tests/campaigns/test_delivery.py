"""The delivery engine on the log channel: batches through the tasks, counters equal to the rows,
reachability checked again at batch time, cancelling in the middle, one worker per campaign."""

from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from minicrm.campaigns import delivery
from minicrm.campaigns.counters import counters_from_rows, counters_of
from minicrm.campaigns.delivery import campaign_deliver
from minicrm.campaigns.models import Campaign, Delivery
from minicrm.campaigns.services import campaign_cancel, campaign_launch, campaign_send
from minicrm.campaigns.unsubscribe import customer_unsubscribe, unsubscribe_url
from minicrm.core.errors import ConflictError
from tests.factories import CustomerFactory

from .conftest import campaign_draft

pytestmark = pytest.mark.django_db(transaction=False)


def counters_match(campaign_id: int) -> bool:
    return counters_of(Campaign.objects.get(pk=campaign_id)) == counters_from_rows(campaign_id)


def launched(segment: Any, **values: Any) -> Campaign:
    """A campaign launched (audience frozen) whose delivery has not started."""
    campaign = campaign_draft(segment, **values)
    campaign_send(campaign_id=campaign.pk)
    campaign_launch(campaign_id=campaign.pk)  # its delivery task is queued on commit: never run
    return Campaign.objects.get(pk=campaign.pk)


def statuses(campaign_id: int) -> dict[int, str]:
    return dict(
        Delivery.objects.filter(campaign_id=campaign_id).values_list("customer_id", "status")
    )


def test_a_log_campaign_is_delivered_in_batches_through_the_tasks(
    everyone, settings, django_capture_on_commit_callbacks
):
    settings.MINICRM_DELIVERY_BATCH_SIZE = 3
    customers = CustomerFactory.create_batch(7)
    nameless = CustomerFactory(first_name="")
    campaign = campaign_draft(everyone)
    with django_capture_on_commit_callbacks(execute=True):
        campaign_send(campaign_id=campaign.pk)  # launch task, then the delivery task

    campaign.refresh_from_db()
    assert (campaign.status, campaign.sent, campaign.pending) == ("sent", 8, 0)
    assert campaign.finished_at is not None
    assert campaign.lease_token == ""
    assert counters_match(campaign.pk)
    for customer in customers:
        row = Delivery.objects.get(campaign=campaign, customer=customer)
        assert row.status == "sent"
        assert (row.to, row.subject) == (customer.email, f"Hello {customer.first_name}")
        assert row.body == f"Hi {customer.first_name}, leave: {unsubscribe_url(customer.pk)}"
        assert row.vendor_id is None
        assert row.sent_at is not None
        assert (row.attempts, row.batch_token) == (1, "")
    assert Delivery.objects.get(customer=nameless).subject == "Hello there"


def test_a_customer_who_unsubscribes_or_withdraws_consent_after_launch_is_skipped(everyone):
    stays, leaves, withdraws = CustomerFactory.create_batch(3)
    campaign = launched(everyone)
    customer_unsubscribe(customer_id=leaves.pk)
    withdraws.marketing_consent = False
    withdraws.save()

    assert campaign_deliver(campaign_id=campaign.pk) == "sent"

    assert statuses(campaign.pk) == {
        stays.pk: "sent",
        leaves.pk: "skipped",
        withdraws.pk: "skipped",
    }
    errors = dict(Delivery.objects.values_list("customer_id", "error"))
    assert errors[leaves.pk] == "Unsubscribed after the launch."
    assert errors[withdraws.pk] == "Withdrew marketing consent after the launch."
    assert Delivery.objects.get(customer=leaves).body == ""  # never rendered, never sent
    campaign.refresh_from_db()
    assert (campaign.sent, campaign.skipped, campaign.status) == (1, 2, "sent")
    assert counters_match(campaign.pk)


def test_cancelling_in_the_middle_keeps_what_was_sent_and_skips_the_rest(
    everyone, settings, monkeypatch
):
    settings.MINICRM_DELIVERY_BATCH_SIZE = 2
    CustomerFactory.create_batch(6)
    campaign = launched(everyone)
    send = delivery._send

    def send_then_cancel(channel: Any, messages: Any) -> Any:
        # The marketer cancels while the first batch is on its way.
        if not Campaign.objects.filter(pk=campaign.pk, status="cancelled").exists():
            campaign_cancel(campaign_id=campaign.pk)
        return send(channel, messages)

    monkeypatch.setattr(delivery, "_send", send_then_cancel)
    assert campaign_deliver(campaign_id=campaign.pk) == "cancelled"

    rows = list(Delivery.objects.filter(campaign=campaign).order_by("pk"))
    assert [row.status for row in rows] == ["sent"] * 2 + ["skipped"] * 4
    assert {row.error for row in rows[2:]} == {"Campaign cancelled."}
    campaign.refresh_from_db()
    assert (campaign.status, campaign.sent, campaign.skipped, campaign.pending) == (
        "cancelled",
        2,
        4,
        0,
    )
    assert counters_match(campaign.pk)
    # A task that comes later finds nothing to do.
    assert campaign_deliver(campaign_id=campaign.pk) == "cancelled"


def test_a_second_task_while_a_live_worker_holds_the_lease_sends_nothing(everyone):
    CustomerFactory.create_batch(2)
    campaign = launched(everyone)
    held_until = timezone.now() + timedelta(minutes=1)
    Campaign.objects.filter(pk=campaign.pk).update(
        lease_token="x" * 32, lease_expires_at=held_until
    )

    assert campaign_deliver(campaign_id=campaign.pk) == "busy"

    assert set(statuses(campaign.pk).values()) == {"pending"}
    assert Delivery.objects.filter(attempts__gt=0).count() == 0


def test_a_campaign_that_is_not_sending_is_left_alone(everyone):
    CustomerFactory.create_batch(2)
    campaign = campaign_draft(everyone)
    assert campaign_deliver(campaign_id=campaign.pk) == "draft"
    assert campaign_deliver(campaign_id=campaign.pk + 1000) == "missing"


def test_a_webhook_campaign_without_vendor_settings_is_refused_at_send(everyone, settings):
    settings.MINICRM_WEBHOOK_URL = ""
    settings.MINICRM_WEBHOOK_SECRET = "s"
    campaign = campaign_draft(everyone, channel="webhook")
    with pytest.raises(ConflictError) as error:
        campaign_send(campaign_id=campaign.pk)
    assert "MINICRM_WEBHOOK_URL" in error.value.message
    assert Campaign.objects.get(pk=campaign.pk).status == "draft"


def test_a_webhook_campaign_whose_vendor_settings_went_missing_fails_with_the_reason(
    everyone, settings
):
    settings.MINICRM_WEBHOOK_URL = "http://127.0.0.1:9/batches"
    settings.MINICRM_WEBHOOK_SECRET = "s"
    CustomerFactory.create_batch(3)
    campaign = launched(everyone, channel="webhook")
    settings.MINICRM_WEBHOOK_SECRET = ""

    assert campaign_deliver(campaign_id=campaign.pk) == "failed"

    campaign.refresh_from_db()
    assert campaign.status == "failed"
    assert "MINICRM_WEBHOOK_SECRET" in campaign.error
    assert (campaign.failed, campaign.pending) == (3, 0)
    assert set(Delivery.objects.values_list("error", flat=True)) == {campaign.error}
    assert counters_match(campaign.pk)
