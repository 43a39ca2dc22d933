"""Background writing of campaign performance summaries, retried later on transient provider
failures with the insights' policy (INSIGHT_RETRY): both go to the same providers."""

import logging

from django_tasks import task

from minicrm.core.errors import ApplicationError
from minicrm.core.tasks import retry_later
from minicrm.insights.tasks import INSIGHT_RETRY

logger = logging.getLogger(__name__)


@task()
def campaign_summary_task(campaign_id: int, attempt: int = 1) -> str | None:
    """Write the queued summary of one campaign. Returns its summary status."""
    # Imported here to break the cycle: the summary module enqueues this task.
    from .summary import SummaryStatus, summary_fail, summary_generate

    try:
        campaign = summary_generate(
            campaign_id=campaign_id, may_retry=INSIGHT_RETRY.may_retry(attempt)
        )
    except Exception as error:
        # The worker must never die on one summary: record why, and stop this one.
        logger.exception("Campaign %s: the summary stopped unexpectedly", campaign_id)
        summary_fail(campaign_id=campaign_id, reason=f"The summary stopped unexpectedly: {error}")
        return SummaryStatus.FAILED
    if campaign is None:
        return None
    if campaign.summary_status == SummaryStatus.QUEUED:
        retry_later(campaign_summary_task, campaign_id, attempt=attempt, policy=INSIGHT_RETRY)
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
