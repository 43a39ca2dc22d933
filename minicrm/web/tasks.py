"""Background work for the dashboard: compute a range's numbers while the page shows older ones."""

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
