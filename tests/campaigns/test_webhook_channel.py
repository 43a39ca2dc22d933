"""The webhook channel against a fake vendor (a real HTTP server on 127.0.0.1): signed batches,
accepted and rejected ids, retries with the same delivery ids, permanent failures with reasons."""

import socket
from datetime import timedelta

import pytest
from django.utils import timezone

from minicrm.campaigns.counters import counters_from_rows, counters_of
from minicrm.campaigns.delivery import campaign_deliver
from minicrm.campaigns.models import Campaign, Delivery
from minicrm.campaigns.services import campaign_launch, campaign_send
from tests.factories import CustomerFactory

from .conftest import campaign_draft

pytestmark = pytest.mark.django_db(transaction=False)


@pytest.fixture(autouse=True)
def quick_retries(settings):
    settings.MINICRM_DELIVERY_RETRY_BASE_SECONDS = 0
    settings.MINICRM_DELIVERY_MAX_ATTEMPTS = 5


def launched_webhook(segment, customers=4):
    CustomerFactory.create_batch(customers)
    campaign = campaign_draft(segment, channel="webhook")
    campaign_send(campaign_id=campaign.pk)
    campaign_launch(campaign_id=campaign.pk)
    return campaign


def deliver_with_retries(campaign_id, django_capture_on_commit_callbacks):
    """The delivery task and the retries it queues (the immediate backend runs them at once)."""
    with django_capture_on_commit_callbacks(execute=True):
        return campaign_deliver(campaign_id=campaign_id)


def rows(campaign):
    return list(Delivery.objects.filter(campaign=campaign).order_by("pk"))


def assert_counters_match(campaign):
    stored = Campaign.objects.get(pk=campaign.pk)
    assert counters_of(stored) == counters_from_rows(campaign.pk)


def test_batches_are_signed_and_accepted_ids_keep_the_vendors_id(everyone, fake_vendor):
    campaign = launched_webhook(everyone)
    ids = [row.pk for row in rows(campaign)]
    fake_vendor.reject = {ids[1]: "Mailbox does not exist"}
    fake_vendor.leave_out = {ids[2]}

    assert campaign_deliver(campaign_id=campaign.pk) == "sent"

    assert fake_vendor.bad_signatures == 0
    assert fake_vendor.batches == [ids]
    sent = fake_vendor.messages[ids[0]]
    row = Delivery.objects.get(pk=ids[0])
    assert sent == {
        "delivery_id": ids[0],
        "channel": "webhook",
        "to": row.customer.email,
        "subject": f"Hello {row.customer.first_name}",
        "body": row.body,
    }
    found = rows(campaign)
    assert [(r.status, r.vendor_id) for r in found] == [
        ("sent", f"v-{ids[0]}"),
        ("failed", None),
        ("failed", None),
        ("sent", f"v-{ids[3]}"),
    ]
    assert found[1].error == "Mailbox does not exist"
    assert found[2].error == "The vendor did not answer for this delivery."
    assert_counters_match(campaign)


def test_5xx_429_and_a_timeout_are_retried_with_the_same_delivery_ids(
    everyone, fake_vendor, settings, django_capture_on_commit_callbacks
):
    settings.MINICRM_DELIVERY_BATCH_SIZE = 3
    fake_vendor.script = [500, 429, "timeout"]
    fake_vendor.hold_seconds = 1.0  # twice the channel's timeout
    campaign = launched_webhook(everyone, customers=5)
    ids = [row.pk for row in rows(campaign)]

    deliver_with_retries(campaign.pk, django_capture_on_commit_callbacks)

    # Three failed tries of the first batch, the same ids each time, then both batches.
    assert fake_vendor.batches == [ids[:3]] * 4 + [ids[3:]]
    found = rows(campaign)
    assert {r.status for r in found} == {"sent"}
    assert [r.attempts for r in found] == [4, 4, 4, 1, 1]
    assert {r.error for r in found} == {""}
    campaign.refresh_from_db()
    assert (campaign.status, campaign.sent) == ("sent", 5)
    assert_counters_match(campaign)


def test_a_retry_waits_for_its_backoff_and_keeps_the_campaign_off_the_sweep(
    everyone, fake_vendor, settings
):
    settings.MINICRM_DELIVERY_RETRY_BASE_SECONDS = 60
    fake_vendor.then = 503
    campaign = launched_webhook(everyone, customers=2)

    before = timezone.now()
    assert campaign_deliver(campaign_id=campaign.pk) == "retrying"

    campaign.refresh_from_db()
    assert campaign.lease_token == ""
    # Not lost until a lease after the retry's time (60 s backoff for the first retry).
    assert campaign.lease_expires_at >= before + timedelta(seconds=60)
    assert {(r.status, r.attempts) for r in rows(campaign)} == {("pending", 1)}
    assert {r.error for r in rows(campaign)} == {
        'The vendor answered 503: {"detail": "vendor says 503"}'
    }


def test_retries_stop_at_the_limit_and_the_batch_fails_with_the_reason(
    everyone, fake_vendor, settings, django_capture_on_commit_callbacks
):
    settings.MINICRM_DELIVERY_MAX_ATTEMPTS = 3
    fake_vendor.then = 503
    campaign = launched_webhook(everyone, customers=2)

    deliver_with_retries(campaign.pk, django_capture_on_commit_callbacks)

    assert len(fake_vendor.batches) == 3
    found = rows(campaign)
    assert {r.status for r in found} == {"failed"}
    assert {r.error for r in found} == {
        'The vendor answered 503: {"detail": "vendor says 503"} (gave up after 3 attempts)'
    }
    campaign.refresh_from_db()
    assert (campaign.status, campaign.failed, campaign.pending) == ("sent", 2, 0)
    assert_counters_match(campaign)


def test_a_400_fails_the_batch_at_once_with_the_vendors_reason(everyone, fake_vendor):
    fake_vendor.then = 400
    campaign = launched_webhook(everyone, customers=3)

    assert campaign_deliver(campaign_id=campaign.pk) == "sent"

    assert len(fake_vendor.batches) == 1
    assert {(r.status, r.error) for r in rows(campaign)} == {
        ("failed", 'The vendor refused the batch (400): {"detail": "vendor says 400"}')
    }
    assert_counters_match(campaign)


def test_a_vendor_that_refuses_connections_is_retried_then_failed(
    everyone, settings, django_capture_on_commit_callbacks
):
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    settings.MINICRM_WEBHOOK_URL = f"http://127.0.0.1:{port}/batches"
    settings.MINICRM_WEBHOOK_SECRET = "s"
    settings.MINICRM_DELIVERY_MAX_ATTEMPTS = 2
    campaign = launched_webhook(everyone, customers=2)

    deliver_with_retries(campaign.pk, django_capture_on_commit_callbacks)

    found = rows(campaign)
    assert {(r.status, r.attempts) for r in found} == {("failed", 2)}
    assert all(r.error.startswith("Vendor unreachable:") for r in found)
    assert all(r.error.endswith("(gave up after 2 attempts)") for r in found)
    assert_counters_match(campaign)


def test_a_batch_left_by_a_dead_worker_goes_first_with_the_same_ids(
    everyone, fake_vendor, settings
):
    settings.MINICRM_DELIVERY_BATCH_SIZE = 2
    campaign = launched_webhook(everyone, customers=5)
    ids = [row.pk for row in rows(campaign)]
    # A worker claimed ids 3 and 4 (not 1 and 2: say it had a larger batch then), and died.
    long_ago = timezone.now() - timedelta(minutes=5)
    Delivery.objects.filter(pk__in=ids[2:4]).update(
        batch_token="d" * 32, batch_expires_at=long_ago, attempts=1
    )
    Campaign.objects.filter(pk=campaign.pk).update(lease_token="d" * 32, lease_expires_at=long_ago)

    assert campaign_deliver(campaign_id=campaign.pk) == "sent"

    assert fake_vendor.batches == [ids[2:4], ids[0:2], ids[4:]]
    assert [r.attempts for r in rows(campaign)] == [1, 1, 2, 2, 1]
    assert_counters_match(campaign)
