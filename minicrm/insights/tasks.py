"""Background generation of an insight (Django Tasks API), retried later on transient failures."""

import logging

from django_tasks import task

from minicrm.core.tasks import RetryPolicy, retry_later

logger = logging.getLogger(__name__)

# Insights and campaign summaries: both wait on the same AI providers.
INSIGHT_RETRY = RetryPolicy(
    max_attempts_setting="INSIGHT_MAX_ATTEMPTS",
    base_seconds_setting="INSIGHT_RETRY_BASE_SECONDS",
)


@task()
def insight_generate_task(insight_id: int, attempt: int = 1) -> str | None:
    """Generate one insight; a finished one is left alone. Returns the insight's status."""
    # Imported here to break the cycle: the services enqueue this task.
    from .services import insight_fail, insight_generate

    try:
        insight = insight_generate(
            insight_id=insight_id, may_retry=INSIGHT_RETRY.may_retry(attempt)
        )
    except Exception as error:
        # The worker must never die on one insight: record why, and stop this one.
        logger.exception("Insight %s stopped unexpectedly", insight_id)
        insight_fail(insight_id=insight_id, reason=f"Generation stopped unexpectedly: {error}")
        return "failed"
    if insight is None:
        return None
    if insight.status == insight.Status.QUEUED:
        # Put back to queued only when the policy allowed another attempt.
        retry_later(insight_generate_task, insight_id, attempt=attempt, policy=INSIGHT_RETRY)
    return str(insight.status)
