"""The AI performance summary: aggregates only reach the provider (offline narrator or Gemini on
a fake server on 127.0.0.1), the outcome is stored on the campaign, transient failures retry."""

import json
from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.test import override_settings
from django.utils import timezone
from django_tasks import default_task_backend

from minicrm.campaigns import summary
from minicrm.campaigns.models import Campaign, Delivery
from minicrm.campaigns.results import WINDOW
from minicrm.campaigns.services import campaign_send
from minicrm.campaigns.summary import (
    SUMMARY_STALE_AFTER,
    WINDOW_CLOSE_MARGIN,
    summaries_recover,
    summary_after_send,
    summary_generate,
    summary_request,
)
from minicrm.campaigns.summary_tasks import campaign_summary_due_task, campaign_summary_task
from minicrm.core.errors import ConflictError
from tests.factories import CustomerFactory, OrderFactory
from tests.insights.fake_gemini import FakeGemini, answer, error, fake_gemini_serving
from tests.insights.identities import DISTINCTIVE, identifying

from .conftest import campaign_draft

pytestmark = pytest.mark.django_db(transaction=False)

CONTENT = {
    "headline": "Recipients spent more than the holdout.",
    "findings": ["Most messages went out.", "A few recipients bought."],
    "recommendations": ["Send it to a similar segment."],
}


@pytest.fixture
def fake_gemini(settings: Any) -> Iterator[FakeGemini]:
    with fake_gemini_serving(
        settings,
        # Generous: the fake answers at once, and a loaded test machine must not time out.
        GEMINI_TIMEOUT_SECONDS=10,
        # One HTTP attempt per task attempt, so the requests count the task's retries.
        GEMINI_RETRY_ATTEMPTS=1,
        INSIGHT_MAX_ATTEMPTS=3,
    ) as server:
        yield server


def sent_campaign(segment: Any, capture: Any, **values: Any) -> Campaign:
    """A campaign sent through the tasks (log channel), every recipient delivered now.

    The end of sending writes a first summary by itself; the offline narrator writes it here, so
    a test's fake Gemini sees only the requests the test makes."""
    campaign = campaign_draft(segment, **values)
    with override_settings(AI_PROVIDER="offline"), capture(execute=True):
        campaign_send(campaign_id=campaign.pk)
    return Campaign.objects.get(pk=campaign.pk)


def test_the_end_of_sending_writes_a_summary_without_being_asked(
    everyone, settings, django_capture_on_commit_callbacks
):
    settings.AI_PROVIDER = "offline"
    CustomerFactory.create_batch(3)
    campaign = campaign_draft(everyone)

    with django_capture_on_commit_callbacks(execute=True):
        campaign_send(campaign_id=campaign.pk)

    campaign.refresh_from_db()
    assert (campaign.status, campaign.sent) == ("sent", 3)
    assert (campaign.summary_status, campaign.summary_provider) == ("succeeded", "offline")
    assert campaign.summary["figures"]["deliveries"]["sent"] == 3


def summarised(campaign: Campaign, capture: Any) -> Campaign:
    with capture(execute=True):
        summary_request(campaign_id=campaign.pk)
    return Campaign.objects.get(pk=campaign.pk)


def test_the_offline_summary_is_written_from_the_campaign_s_figures(
    everyone, settings, django_capture_on_commit_callbacks
):
    settings.AI_PROVIDER = "offline"
    CustomerFactory.create_batch(39)
    CustomerFactory(marketing_consent=False)
    campaign = sent_campaign(everyone, django_capture_on_commit_callbacks, holdout_percent=10)
    buyer = Delivery.objects.filter(campaign=campaign, status="sent").first()
    OrderFactory(customer_id=buyer.customer_id, amount=Decimal("250.50"), ordered_at=buyer.sent_at)

    campaign = summarised(campaign, django_capture_on_commit_callbacks)

    assert (campaign.summary_status, campaign.summary_provider) == ("succeeded", "offline")
    assert campaign.summary_error == ""
    assert campaign.summary_at is not None
    figures = campaign.summary["figures"]
    assert figures["audience"] == 39
    assert figures["excluded"] == {"unsubscribed": 0, "no_consent": 1}
    assert figures["deliveries"] == {
        "held_out": 3,
        "pending": 0,
        "sent": 36,
        "delivered": 0,
        "failed": 0,
        "skipped": 0,
    }
    assert figures["window_closed"] is False
    assert figures["revenue"]["recipient_revenue"] == 250.5
    assert figures["revenue"]["recipient_buyers"] == 1
    assert figures["revenue"]["recipient_buyer_rate"] == round(1 / 36, 4)
    assert figures["revenue"]["holdout_revenue"] == 0.0
    assert figures["revenue"]["lift"] is None
    assert figures["revenue"]["incremental_revenue"] == 250.5
    # The narrator writes from those figures (a holdout of 3 is too small to claim a lift);
    # money rounds half-up, as the amounts do (₹250.50 is ₹251).
    assert campaign.summary["headline"] == (
        "1 of 36 recipients bought within 14 days, spending ₹251"
    )
    assert campaign.summary["findings"] == [
        "39 customers were in the audience; 36 received the message, 0 failed and 0 were"
        " skipped (unsubscribed or cancelled before their batch).",
        "2.8% of recipients bought within 14 days, for ₹251 (₹6.96 per recipient).",
        "The 3 held-out customers spent ₹0 (₹0.00 each; 0% bought).",
        "The 14-day window is still open: revenue may still grow.",
    ]
    assert campaign.summary["recommendations"][0].startswith("Hold out more customers")


def test_gemini_gets_aggregates_only_and_its_summary_is_stored(
    everyone, fake_gemini, django_capture_on_commit_callbacks
):
    people = [CustomerFactory(**values) for values in DISTINCTIVE]
    campaign = sent_campaign(
        everyone,
        django_capture_on_commit_callbacks,
        name="Zebediah's private offer",
        template="Hi {{ first_name }}, Quackenbush family offer",
    )
    for person in people:
        sent_at = Delivery.objects.get(campaign=campaign, customer=person).sent_at
        OrderFactory(customer=person, amount=Decimal("99.99"), ordered_at=sent_at)
    fake_gemini.queue(answer(CONTENT))

    campaign = summarised(campaign, django_capture_on_commit_callbacks)

    assert (campaign.summary_status, campaign.summary_provider) == ("succeeded", "gemini")
    assert {key: campaign.summary[key] for key in CONTENT} == CONTENT
    [request] = fake_gemini.requests
    assert request.path.endswith("gemini-test:generateContent")
    figures = json.loads(request.prompt.removeprefix("FIGURES:\n"))
    assert figures == campaign.summary["figures"]
    assert figures["revenue"]["recipient_revenue"] == 199.98
    private = [*identifying(), "Zebediah's private offer", "Quackenbush family offer"]
    sent = (request.raw + json.dumps(request.body, ensure_ascii=False)).lower()
    assert [value for value in private if value.lower() in sent] == []


def test_a_transient_failure_is_retried_by_the_task_and_then_succeeds(
    everyone, fake_gemini, django_capture_on_commit_callbacks
):
    CustomerFactory.create_batch(2)
    campaign = sent_campaign(everyone, django_capture_on_commit_callbacks)
    fake_gemini.queue(error(503, "UNAVAILABLE", "overloaded"), answer(CONTENT))

    campaign = summarised(campaign, django_capture_on_commit_callbacks)

    assert len(fake_gemini.requests) == 2
    assert campaign.summary_status == "succeeded"
    assert campaign.summary_error == ""
    assert campaign.summary["headline"] == CONTENT["headline"]


def test_transient_failures_stop_after_the_attempts_and_say_why(
    everyone, fake_gemini, django_capture_on_commit_callbacks
):
    CustomerFactory()
    campaign = sent_campaign(everyone, django_capture_on_commit_callbacks)
    fake_gemini.default = error(429, "RESOURCE_EXHAUSTED", "quota")

    campaign = summarised(campaign, django_capture_on_commit_callbacks)

    assert len(fake_gemini.requests) == 3  # INSIGHT_MAX_ATTEMPTS
    assert campaign.summary_status == "failed"
    assert "Gemini is unavailable (429" in campaign.summary_error
    # The summary written at the end of sending stays: a failed new one does not erase it.
    assert (campaign.summary_provider, campaign.summary["figures"]["status"]) == ("offline", "sent")


def test_a_refusal_fails_at_once_and_keeps_the_previous_summary(
    everyone, fake_gemini, django_capture_on_commit_callbacks
):
    CustomerFactory()
    campaign = sent_campaign(everyone, django_capture_on_commit_callbacks)
    fake_gemini.queue(answer(CONTENT), error(400, "INVALID_ARGUMENT", "bad request"))
    first = summarised(campaign, django_capture_on_commit_callbacks)

    second = summarised(campaign, django_capture_on_commit_callbacks)

    assert len(fake_gemini.requests) == 2
    assert second.summary_status == "failed"
    assert "Gemini refused the request (400" in second.summary_error
    assert second.summary == first.summary
    assert second.summary_at == first.summary_at


def test_only_a_queued_summary_is_generated(everyone, settings, django_capture_on_commit_callbacks):
    settings.AI_PROVIDER = "offline"
    CustomerFactory()
    campaign = summarised(
        sent_campaign(everyone, django_capture_on_commit_callbacks),
        django_capture_on_commit_callbacks,
    )

    again = summary_generate(campaign_id=campaign.pk, may_retry=True)
    task_result = campaign_summary_task.call(campaign.pk)

    assert again is not None
    assert (again.summary_status, again.summary_at) == ("succeeded", campaign.summary_at)
    assert task_result == "succeeded"
    assert Campaign.objects.get(pk=campaign.pk).summary_at == campaign.summary_at
    assert campaign_summary_task.call(987654) is None


def test_a_summary_needs_a_launched_campaign(everyone):
    campaign = campaign_draft(everyone)

    with pytest.raises(ConflictError):
        summary_request(campaign_id=campaign.pk)

    assert Campaign.objects.get(pk=campaign.pk).summary_status == ""


def test_after_sending_a_summary_is_queued_now_and_another_when_the_window_closes(
    everyone, django_capture_on_commit_callbacks
):
    CustomerFactory()
    campaign = sent_campaign(everyone, django_capture_on_commit_callbacks)

    with override_settings(
        TASKS={"default": {"BACKEND": "django_tasks.backends.dummy.DummyBackend"}}
    ):
        with django_capture_on_commit_callbacks(execute=True):
            summary_after_send(campaign_id=campaign.pk)
        queued = list(default_task_backend.results)  # type: ignore[attr-defined]

    now, later = queued
    assert (now.task.func, now.args) == (campaign_summary_task.func, [campaign.pk])
    assert now.task.run_after is None
    assert (later.task.func, later.args) == (campaign_summary_due_task.func, [campaign.pk])
    assert later.task.run_after == campaign.launched_at + WINDOW + WINDOW_CLOSE_MARGIN
    assert timedelta(days=14) == WINDOW
    assert Campaign.objects.get(pk=campaign.pk).summary_status == "queued"


def test_an_unexpected_error_fails_the_summary_with_the_reason(
    everyone, settings, monkeypatch, django_capture_on_commit_callbacks
):
    settings.AI_PROVIDER = "offline"
    CustomerFactory()
    campaign = sent_campaign(everyone, django_capture_on_commit_callbacks)

    def broken(campaign: Campaign) -> dict[str, Any]:
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(summary, "summary_figures", broken)
    campaign = summarised(campaign, django_capture_on_commit_callbacks)

    assert campaign.summary_status == "failed"
    assert campaign.summary_error == "The summary stopped unexpectedly: disk on fire"
    # The summary written at the end of sending stays: a failed new one does not erase it.
    assert campaign.summary["figures"]["status"] == "sent"


def test_the_sweep_fails_summaries_whose_worker_is_gone_and_leaves_live_ones(everyone):
    lost, live, done = (campaign_draft(everyone, name=name) for name in ("Lost", "Live", "Done"))
    long_ago = timezone.now() - SUMMARY_STALE_AFTER - timedelta(seconds=1)
    Campaign.objects.filter(pk=lost.pk).update(summary_status="running", updated_at=long_ago)
    Campaign.objects.filter(pk=live.pk).update(summary_status="queued", updated_at=timezone.now())
    Campaign.objects.filter(pk=done.pk).update(summary_status="succeeded", updated_at=long_ago)

    assert summaries_recover() == 1
    assert summaries_recover() == 0

    statuses = dict(Campaign.objects.values_list("name", "summary_status"))
    assert statuses == {"Lost": "failed", "Live": "queued", "Done": "succeeded"}
    assert Campaign.objects.get(pk=lost.pk).summary_error.startswith("The worker stopped")
