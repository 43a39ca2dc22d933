"""Background work for the dashboard: compute a range's numbers while the page shows older ones
(or says they are coming), and the self-renewing chain that keeps the presets computed."""

from datetime import date

from django_tasks import task

from .date_range import DateRange
from .selectors import dashboard_refresh


@task()
def dashboard_refresh_task(start: str, end: str, preset: int | None) -> int:
    """Recompute and cache the dashboard of [start, end] (ISO dates); returns its customers."""
    date_range = DateRange(
        start=date.fromisoformat(start), end=date.fromisoformat(end), preset=preset
    )
    return dashboard_refresh(date_range=date_range).customers


@task()
def dashboard_warm_task(slot: int) -> int:
    """Compute today's preset ranges, then queue the run of the next slot (web.services);
    returns the presets computed (0: another chain had the slot, this one stops)."""
    # Imported here: the service queues this task, so a top-level import would be a cycle.
    from .services import dashboard_warm_run

    return dashboard_warm_run(slot=slot)
