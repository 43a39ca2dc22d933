"""Writes of the shell: the chain of tasks that keeps the dashboard's preset ranges computed.

Every WARM_SECONDS a task computes the three presets of the day (the ranges most visits ask
for), so at a million customers their figures are always at most a few minutes old and a visit
never waits for them. The chain renews itself: each run queues the next for the start of the
next slot (slot = seconds since the epoch // WARM_SECONDS). Each slot is claimed once in the
cache, so a second chain (a restart, two deploys) meets the first on a slot and stops there.
"""

import logging
from datetime import UTC, date, datetime

from django.core.cache import cache
from django.utils import timezone

from minicrm.core.tasks import enqueue_on_commit

from .date_range import PRESETS, date_range_preset
from .selectors import (
    CACHE_SECONDS,
    Dashboard,
    dashboard_refresh,
    dashboard_refresh_claim,
)
from .tasks import dashboard_warm_task

logger = logging.getLogger(__name__)

# As often as a page calls its figures old, so a preset is recomputed before a visit asks.
WARM_SECONDS = CACHE_SECONDS
WARM_KEY = "web:dashboard:warm"


def warm_slot(moment: datetime | None = None) -> int:
    return int((moment or timezone.now()).timestamp()) // WARM_SECONDS


def warm_slot_start(slot: int) -> datetime:
    return datetime.fromtimestamp(slot * WARM_SECONDS, tz=UTC)


def dashboard_presets_refresh(*, today: date | None = None, force: bool = False) -> list[Dashboard]:
    """Compute today's presets and keep them; without `force`, a preset another worker is
    computing is left to it."""
    today = today or timezone.localdate()
    computed = []
    for days in PRESETS:
        date_range = date_range_preset(days=days, today=today)
        if force or dashboard_refresh_claim(date_range=date_range):
            computed.append(dashboard_refresh(date_range=date_range))
    return computed


def _schedule(slot: int) -> None:
    # Alive while its next run is due: a key that outlives the slot by two more.
    cache.set(f"{WARM_KEY}:next", slot, 3 * WARM_SECONDS)
    # A backend that cannot run tasks later (immediate: tests) ends the chain here.
    enqueue_on_commit(dashboard_warm_task, slot, run_after=warm_slot_start(slot), defer_only=True)


def dashboard_warm_run(*, slot: int) -> int:
    """The chain's run for `slot`: compute the presets, queue the next run; the presets computed
    (0 when another chain had the slot: this one stops)."""
    if not cache.add(f"{WARM_KEY}:slot:{slot}", True, 3 * WARM_SECONDS):
        logger.info("Dashboard presets for slot %s already computed; this chain stops.", slot)
        return 0
    try:
        computed = dashboard_presets_refresh()
    finally:
        # A run that started late (a worker that was down) catches up instead of replaying.
        _schedule(max(slot, warm_slot()) + 1)
    return len(computed)


def dashboard_warm_ensure(*, force: bool = False) -> int | None:
    """Start the chain from the next slot unless one is due; returns that slot (None if a chain
    is already due). A chain whose next run is two slots late is taken as dead."""
    slot = warm_slot()
    due = cache.get(f"{WARM_KEY}:next")
    if isinstance(due, int) and due >= slot and not force:
        return None
    _schedule(slot + 1)
    return slot + 1
