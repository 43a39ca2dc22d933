"""The email channel against a real SMTP server on 127.0.0.1 (aiosmtpd): personalised messages
with the one-click unsubscribe headers of RFC 8058; 4xx answers are retried, 5xx fail."""

import socket

import pytest

from minicrm.campaigns.counters import counters_from_rows, counters_of
from minicrm.campaigns.delivery import campaign_deliver
from minicrm.campaigns.models import Campaign, Delivery
from minicrm.campaigns.services import campaign_launch, campaign_send
from minicrm.campaigns.unsubscribe import unsubscribe_url
from tests.factories import CustomerFactory

from .conftest import campaign_draft

pytestmark = pytest.mark.django_db(transaction=False)


@pytest.fixture(autouse=True)
def quick_retries(settings):
    settings.MINICRM_DELIVERY_RETRY_BASE_SECONDS = 0
    settings.MINICRM_DELIVERY_MAX_ATTEMPTS = 3
    settings.DEFAULT_FROM_EMAIL = "Shop <news@shop.example>"
    settings.MINICRM_PUBLIC_URL = "https://crm.example"


def launched_email(segment):
    campaign = campaign_draft(
        segment,
        channel="email",
        subject="{{ first_name }}, a gift",
        template="Dear {{ first_name }} of {{ city }},\nLeave: {{ unsubscribe_url }}\n",
    )
    campaign_send(campaign_id=campaign.pk)
    campaign_launch(campaign_id=campaign.pk)
    return campaign


def assert_counters_match(campaign):
    stored = Campaign.objects.get(pk=campaign.pk)
    assert counters_of(stored) == counters_from_rows(campaign.pk)


def test_the_smtp_server_receives_personalised_messages_with_one_click_unsubscribe(
    everyone, smtp_inbox
):
    asha = CustomerFactory(first_name="Asha", city="Pune", email="asha@example.com")
    ravi = CustomerFactory(first_name="Ravi", city="Delhi", email="ravi@example.com")
    campaign = launched_email(everyone)

    assert campaign_deliver(campaign_id=campaign.pk) == "sent"

    assert sorted(smtp_inbox.envelopes) == [["asha@example.com"], ["ravi@example.com"]]
    received = {message["To"]: message for message in smtp_inbox.received}
    for customer in (asha, ravi):
        message = received[customer.email]
        link = unsubscribe_url(customer.pk)
        assert link.startswith("https://crm.example/")
        assert message["From"] == "Shop <news@shop.example>"
        assert message["Subject"] == f"{customer.first_name}, a gift"
        # A long header is folded onto its next line: unfolded, its value is the link.
        assert message["List-Unsubscribe"].strip() == f"<{link}>"
        assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        assert message.get_content_type() == "text/plain"
        body = message.get_content().replace("\r\n", "\n")  # SMTP lines end in CRLF
        assert body == f"Dear {customer.first_name} of {customer.city},\nLeave: {link}\n"
    assert set(Delivery.objects.values_list("status", flat=True)) == {"sent"}
    assert_counters_match(campaign)


def test_a_4xx_answer_is_retried_and_a_5xx_fails_the_delivery_with_the_reason(
    everyone, smtp_inbox, django_capture_on_commit_callbacks
):
    busy = CustomerFactory(email="busy@example.com")
    gone = CustomerFactory(email="gone@example.com")
    fine = CustomerFactory(email="fine@example.com")
    tries = {"busy@example.com": 0}

    def refuse(to: str) -> str | None:
        if to == "gone@example.com":
            return "550 5.1.1 No such mailbox"
        if to == "busy@example.com" and tries[to] < 1:
            tries[to] += 1
            return "451 4.3.0 Try again later"
        return None

    smtp_inbox.refuse = refuse
    campaign = launched_email(everyone)

    with django_capture_on_commit_callbacks(execute=True):
        campaign_deliver(campaign_id=campaign.pk)

    found = {row.customer_id: row for row in Delivery.objects.filter(campaign=campaign)}
    assert (found[busy.pk].status, found[busy.pk].attempts) == ("sent", 2)
    assert (found[fine.pk].status, found[fine.pk].attempts) == ("sent", 1)
    assert found[gone.pk].status == "failed"
    assert found[gone.pk].error == "SMTP 550: 5.1.1 No such mailbox"
    # The message refused for now went out once, on the second try; the others once each.
    assert sorted(to for [to] in smtp_inbox.envelopes) == [
        "busy@example.com",
        "fine@example.com",
    ]
    assert_counters_match(campaign)


def test_an_smtp_server_that_is_down_is_retried_then_failed(
    everyone, settings, django_capture_on_commit_callbacks
):
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_TIMEOUT = "127.0.0.1", port, 2
    CustomerFactory.create_batch(2)
    campaign = launched_email(everyone)

    with django_capture_on_commit_callbacks(execute=True):
        campaign_deliver(campaign_id=campaign.pk)

    rows = list(Delivery.objects.filter(campaign=campaign))
    assert {(row.status, row.attempts) for row in rows} == {("failed", 3)}
    assert all(row.error.startswith("SMTP server unreachable:") for row in rows)
    assert_counters_match(campaign)
