"""Background generation of an insight (Django Tasks API), retried later on transient failures."""

import logging
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django_tasks import task

logger = logging.getLogger(__name__)


def max_attempts() -> int:
    return int(settings.INSIGHT_MAX_ATTEMPTS)


def retry_delay(attempt: int) -> timedelta:
    """Exponential backoff between task attempts: base, 2 x base, 4 x base, ..."""
    base = float(settings.INSIGHT_RETRY_BASE_SECONDS)
    return timedelta(seconds=base * 2 ** (attempt - 1))


@task()
def insight_generate_task(insight_id: int, attempt: int = 1) -> str | None:
    """Generate one insight; a finished one is left alone. Returns the insight's status."""
    # Imported here to break the cycle: the services enqueue this task.
    from .services import insight_fail, insight_generate

    try:
        insight = insight_generate(insight_id=insight_id, may_retry=attempt < max_attempts())
    except Exception as error:
        # The worker must never die on one insight: record why, and stop this one.
        logger.exception("Insight %s stopped unexpectedly", insight_id)
        insight_fail(insight_id=insight_id, reason=f"Generation stopped unexpectedly: {error}")
        return "failed"
    if insight is None:
        return None
    if insight.status == insight.Status.QUEUED:
        _enqueue_retry(insight_id, attempt + 1)
    return str(insight.status)


def _enqueue_retry(insight_id: int, attempt: int) -> None:
    delay = retry_delay(attempt - 1)
    logger.info("Insight %s: attempt %s in %s", insight_id, attempt, delay)

    def enqueue() -> None:
        if insight_generate_task.get_backend().supports_defer:
            later = insight_generate_task.using(run_after=timezone.now() + delay)
            later.enqueue(insight_id, attempt)
        else:
            # The immediate backend (tests, MINICRM_TASKS_BACKEND=immediate) cannot wait.
            insight_generate_task.enqueue(insight_id, attempt)

    transaction.on_commit(enqueue)
