"""Background work for segments: record a segment's size, and the self-renewing daily count."""

import logging
from datetime import date, timedelta

from django_tasks import task

from minicrm.core.tasks import enqueue_on_commit

from .compiler import day_start

logger = logging.getLogger(__name__)

# The daily count runs a few minutes after midnight in the configured time zone.
DAILY_RUN_DELAY = timedelta(minutes=5)


@task()
def segment_size_record_task(segment_id: int) -> int | None:
    """Count one segment and keep the point for today; returns the size (None if deleted)."""
    # Imported here: the services enqueue these tasks, so a top-level import would be a cycle.
    from .services import segment_size_record

    point = segment_size_record(segment_id=segment_id)
    return None if point is None else point.size


@task()
def segment_sizes_daily_task(run_on: str) -> int:
    """Record every segment's size for `run_on` (ISO date), then schedule the next day's run.

    Only the run that moves the schedule forward does the work, so a duplicate chain dies out.
    """
    from .services import segment_sizes_claim, segment_sizes_record_all

    day = date.fromisoformat(run_on)
    if not segment_sizes_claim(run_on=day):
        logger.info("Daily segment sizes for %s already ran; this chain stops.", run_on)
        return 0
    counted = segment_sizes_record_all(today=day)
    next_day = day + timedelta(days=1)
    # A backend that cannot run tasks later (immediate) ends the chain here, with a warning.
    enqueue_on_commit(
        segment_sizes_daily_task,
        next_day.isoformat(),
        run_after=day_start(next_day) + DAILY_RUN_DELAY,
        defer_only=True,
    )
    return counted
