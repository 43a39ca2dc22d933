"""Background writing of campaign performance summaries, retried later on transient provider
failures with the insights' policy (INSIGHT_MAX_ATTEMPTS, INSIGHT_RETRY_BASE_SECONDS): both go
to the same providers."""

import logging

from django.db import transaction
from django.utils import timezone
from django_tasks import task

from minicrm.core.errors import ApplicationError
from minicrm.insights.tasks import max_attempts, retry_delay

logger = logging.getLogger(__name__)


@task()
def campaign_summary_task(campaign_id: int, attempt: int = 1) -> str | None:
    """Write the queued summary of one campaign. Returns its summary status."""
    # Imported here to break the cycle: the summary module enqueues this task.
    from .summary import SummaryStatus, summary_fail, summary_generate

    try:
        campaign = summary_generate(campaign_id=campaign_id, may_retry=attempt < max_attempts())
    except Exception as error:
        # The worker must never die on one summary: record why, and stop this one.
        logger.exception("Campaign %s: the summary stopped unexpectedly", campaign_id)
        summary_fail(campaign_id=campaign_id, reason=f"The summary stopped unexpectedly: {error}")
        return SummaryStatus.FAILED
    if campaign is None:
        return None
    if campaign.summary_status == SummaryStatus.QUEUED:
        _enqueue_retry(campaign_id, attempt + 1)
    return campaign.summary_status


@task()
def campaign_summary_due_task(campaign_id: int) -> str | None:
    """The final summary, when the attribution window has closed."""
    from .summary import summary_request

    try:
        return summary_request(campaign_id=campaign_id).summary_status
    except ApplicationError as error:  # deleted since, say: nothing to summarise
        logger.info("Campaign %s: no final summary: %s", campaign_id, error.message)
        return None


def _enqueue_retry(campaign_id: int, attempt: int) -> None:
    delay = retry_delay(attempt - 1)
    logger.info("Campaign %s: summary attempt %s in %s", campaign_id, attempt, delay)

    def enqueue() -> None:
        if campaign_summary_task.get_backend().supports_defer:
            later = campaign_summary_task.using(run_after=timezone.now() + delay)
            later.enqueue(campaign_id, attempt)
        else:
            # The immediate backend (tests, MINICRM_TASKS_BACKEND=immediate) cannot wait.
            campaign_summary_task.enqueue(campaign_id, attempt)

    transaction.on_commit(enqueue)
