"""The recovery sweep's part for campaigns (named in MINICRM_WORK_RECOVERERS).

What a SIGKILL can leave, and what is done about it:
- a worker died delivering: the campaign is `sending` (or `cancelled` with a batch in flight)
  with pending deliveries and a lease that ran out. The delivery is queued again; the new run
  claims the dead worker's batch again with the same delivery ids, then carries on.
- a worker died launching: the launch's one transaction rolled back, so the campaign is
  `sending` (or still `scheduled`, past its time) with no snapshot, and no task will come. The
  launch is queued again (it is idempotent).
- a worker died between the launch's commit and the delivery task: as the first case, once the
  snapshot is a lease old.
Each claim is a conditional UPDATE on the lease seen, which also keeps the next sweeps off the
campaign for a lease, so two sweepers never queue it twice and a slow queue is not flooded.
"""

import logging
from datetime import timedelta

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from minicrm.core.leases import lease_seconds, lease_until
from minicrm.core.tasks import enqueue_on_commit

from .models import Campaign

logger = logging.getLogger(__name__)


def _lost(now_: object, stale_before: object) -> dict[str, Q]:
    expired = Q(lease_expires_at__lt=now_)
    never_leased = Q(lease_expires_at__isnull=True)
    delivering = Q(
        status__in=[Campaign.Status.SENDING, Campaign.Status.CANCELLED],
        snapshot_at__isnull=False,
        pending__gt=0,
    ) & (expired | (never_leased & Q(snapshot_at__lt=stale_before)))
    launching = (expired | never_leased) & (
        Q(status=Campaign.Status.SENDING, snapshot_at__isnull=True, launched_at__lt=stale_before)
        | Q(status=Campaign.Status.SCHEDULED, scheduled_at__lt=stale_before)
    )
    return {"deliver": delivering, "launch": launching}


def campaigns_recover() -> int:
    """Queue again the delivery or launch of every campaign whose worker is gone; how many."""
    from .tasks import campaign_deliver_task, campaign_launch_task  # the tasks import services

    now = timezone.now()
    stale_before = now - timedelta(seconds=lease_seconds())
    handled = 0
    for kind, lost in _lost(now, stale_before).items():
        task = campaign_deliver_task if kind == "deliver" else campaign_launch_task
        # Read first: on SQLite even an UPDATE that matches nothing waits for the write lock.
        seen = list(
            Campaign.objects.filter(lost)
            .order_by("pk")
            .values_list("pk", "lease_token", "lease_expires_at")
        )
        for campaign_id, token, expires in seen:
            with transaction.atomic():
                claimed = (
                    Campaign.objects.filter(pk=campaign_id, lease_token=token)
                    .filter(
                        Q(lease_expires_at=expires)
                        if expires is not None
                        else Q(lease_expires_at__isnull=True)
                    )
                    .update(lease_token="", lease_expires_at=lease_until(now))
                )
                if claimed:
                    enqueue_on_commit(task, campaign_id)
            if claimed:
                logger.warning(
                    "Campaign %s lost its worker; its %s is queued again", campaign_id, kind
                )
                handled += 1
    return handled
