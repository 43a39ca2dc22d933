"""The AI performance summary of a campaign, written by the insights providers (offline or
Gemini) from the campaign's aggregates only: counters, rates, revenue, lift and exclusion counts.
No name, email, phone, external id or message text ever reaches a provider.

Lifecycle of `summary_status`: "" → queued → running → succeeded | failed; a transient provider
failure puts it back to queued and the task tries again later (the insights' retry policy).
A summary is made on request (`summary_request`, the API and the campaign page) and, once the
delivery engine calls `summary_after_send`, automatically: right after sending, and again when
the attribution window has closed, when the revenue figures are final. A summary whose worker
died is failed by the recovery sweep (`summaries_recover`), so the page never waits forever.
"""

import logging
from datetime import timedelta
from decimal import Decimal
from typing import Any

from django.db import transaction
from django.utils import timezone

from minicrm.core.errors import ConflictError
from minicrm.core.formatting import shop_currency
from minicrm.core.tasks import enqueue_on_commit
from minicrm.insights.providers import ProviderError, ProviderTransientError, get_provider

from .models import Campaign
from .results import WINDOW, campaign_results
from .services import campaign_get_for_update
from .summary_tasks import campaign_summary_due_task, campaign_summary_task

logger = logging.getLogger(__name__)


class SummaryStatus:
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


# The summary written when the window closes waits this much longer, for late order imports.
WINDOW_CLOSE_MARGIN = timedelta(hours=1)
# A summary queued or running this long after its last change lost its worker: the longest
# legitimate wait is one backoff between attempts or one provider call with its retries.
SUMMARY_STALE_AFTER = timedelta(minutes=15)
MAX_ERROR_CHARS = 2000


def _number(value: Decimal | None) -> float | None:
    # JSON for the provider; these are aggregates for prose, exact figures stay in results.
    return None if value is None else float(value)


def _share(part: int, whole: int) -> float:
    return round(part / whole, 4) if whole else 0.0


def summary_figures(campaign: Campaign) -> dict[str, Any]:
    """Everything a provider is told about a campaign: aggregates, nothing about anyone."""
    results = campaign_results(campaign)
    attempted = campaign.sent + campaign.delivered + campaign.failed
    start = campaign.launched_at or campaign.snapshot_at
    return {
        "currency": shop_currency(),
        "channel": campaign.channel,
        "status": campaign.status,
        "holdout_percent": campaign.holdout_percent,
        "window_days": results["window_days"],
        "window_closed": start is not None and timezone.now() >= start + WINDOW,
        "audience": campaign.audience,
        "excluded": {str(reason): int(n) for reason, n in (campaign.excluded or {}).items()},
        "deliveries": {
            "held_out": campaign.held_out,
            "pending": campaign.pending,
            "sent": campaign.sent,
            "delivered": campaign.delivered,
            "failed": campaign.failed,
            "skipped": campaign.skipped,
        },
        "rates": {
            "delivery_rate": _share(campaign.delivered, attempted),
            "failure_rate": _share(campaign.failed, attempted),
            "skip_rate": _share(campaign.skipped, campaign.recipients),
        },
        "revenue": {
            "recipients": results["recipients"],
            "recipient_buyers": results["recipient_buyers"],
            "recipient_buyer_rate": _share(results["recipient_buyers"], results["recipients"]),
            "recipient_revenue": _number(results["recipient_revenue"]),
            "revenue_per_recipient": _number(results["revenue_per_recipient"]),
            "held_out": results["held_out"],
            "holdout_buyers": results["holdout_buyers"],
            "holdout_buyer_rate": _share(results["holdout_buyers"], results["held_out"]),
            "holdout_revenue": _number(results["holdout_revenue"]),
            "revenue_per_held_out": _number(results["revenue_per_held_out"]),
            "lift": _number(results["lift"]),
            "incremental_revenue": _number(results["incremental_revenue"]),
        },
    }


@transaction.atomic
def summary_request(*, campaign_id: int) -> Campaign:
    """Queue a new summary (the worker writes it). A campaign not launched yet is a 409.

    Asking while one is queued or running queues it again: the task claims only a queued
    summary, so duplicates do nothing, and a summary whose worker died can be asked for again."""
    campaign = campaign_get_for_update(campaign_id=campaign_id)
    if campaign.snapshot_at is None:
        raise ConflictError("A summary can be written once the campaign has launched.")
    campaign.summary_status = SummaryStatus.QUEUED
    campaign.summary_error = ""
    campaign.save(update_fields=["summary_status", "summary_error", "updated_at"])
    enqueue_on_commit(campaign_summary_task, campaign_id)
    return campaign


def summary_after_send(*, campaign_id: int) -> None:
    """The hook for the end of sending: a summary now, and a final one when the attribution
    window closes (when the backend can wait; the immediate backend cannot)."""
    campaign = summary_request(campaign_id=campaign_id)
    start = campaign.launched_at or campaign.snapshot_at
    if start is None:
        return
    due = start + WINDOW + WINDOW_CLOSE_MARGIN
    enqueue_on_commit(campaign_summary_due_task, campaign_id, run_after=due, defer_only=True)


def summary_generate(*, campaign_id: int, may_retry: bool) -> Campaign | None:
    """Write the summary of a queued request; idempotent (anything not queued is left alone).

    Returns the campaign (its summary_status says what happened), or None if it is gone."""
    claimed = Campaign.objects.filter(pk=campaign_id, summary_status=SummaryStatus.QUEUED).update(
        summary_status=SummaryStatus.RUNNING, updated_at=timezone.now()
    )
    campaign = Campaign.objects.filter(pk=campaign_id).first()
    if not claimed or campaign is None:
        return campaign
    try:
        provider = get_provider()
        figures = summary_figures(campaign)
        content = provider.campaign_summary(figures)
    except ProviderTransientError as error:
        if may_retry:
            return _finish(
                campaign,
                status=SummaryStatus.QUEUED,
                error=f"Trying again: {error.message}",
            )
        return _finish(campaign, status=SummaryStatus.FAILED, error=error.message)
    except ProviderError as error:
        return _finish(campaign, status=SummaryStatus.FAILED, error=error.message)
    return _finish(
        campaign,
        status=SummaryStatus.SUCCEEDED,
        summary={**content.model_dump(), "figures": figures},
        provider=provider.name,
    )


def _finish(
    campaign: Campaign,
    *,
    status: str,
    error: str = "",
    summary: dict[str, Any] | None = None,
    provider: str = "",
) -> Campaign:
    """Store the outcome if this run still holds the summary (a request made meanwhile queued
    it again: that newer run's outcome wins)."""
    values: dict[str, Any] = {
        "summary_status": status,
        "summary_error": error[:MAX_ERROR_CHARS],
        "updated_at": timezone.now(),
    }
    if summary is not None:
        values |= {"summary": summary, "summary_provider": provider, "summary_at": timezone.now()}
    stored = Campaign.objects.filter(pk=campaign.pk, summary_status=SummaryStatus.RUNNING).update(
        **values
    )
    if not stored:
        logger.info(
            "Campaign %s: the summary was asked for again; this one is dropped", campaign.pk
        )
    elif status == SummaryStatus.FAILED:
        logger.warning("Campaign %s: the summary failed: %s", campaign.pk, error)
    campaign.refresh_from_db()
    return campaign


def summary_fail(*, campaign_id: int, reason: str) -> None:
    """Record a failure outside the provider (the task boundary calls this)."""
    Campaign.objects.filter(
        pk=campaign_id, summary_status__in=[SummaryStatus.QUEUED, SummaryStatus.RUNNING]
    ).update(summary_status=SummaryStatus.FAILED, summary_error=reason[:MAX_ERROR_CHARS])


def summaries_recover() -> int:
    """Fail every summary left queued or running past SUMMARY_STALE_AFTER; return how many.

    Its worker died (or its task was lost): the page would wait for it forever. Failing it with
    the reason lets the marketer ask again. Named in MINICRM_WORK_RECOVERERS for the sweep."""
    stale = Campaign.objects.filter(
        summary_status__in=[SummaryStatus.QUEUED, SummaryStatus.RUNNING],
        updated_at__lt=timezone.now() - SUMMARY_STALE_AFTER,
    )
    recovered = stale.update(
        summary_status=SummaryStatus.FAILED,
        summary_error="The worker stopped while writing the summary. Ask for it again.",
        updated_at=timezone.now(),
    )
    if recovered:
        logger.warning("%s campaign summaries lost their worker and were failed", recovered)
    return recovered
