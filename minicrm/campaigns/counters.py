"""A campaign's status counters move with its Delivery rows, in the same transaction.

Every change of delivery status goes through `counters_move`, so the counters on the campaign
always equal `counters_from_rows` (a GROUP BY over its deliveries); the tests check that after
crashes, races and receipts.
"""

from collections import Counter
from collections.abc import Mapping

from django.db.models import Count, F

from .models import Campaign, Delivery

# Delivery status -> the campaign counter that counts it.
COUNTER_OF = {
    Delivery.Status.PENDING: "pending",
    Delivery.Status.SENT: "sent",
    Delivery.Status.DELIVERED: "delivered",
    Delivery.Status.FAILED: "failed",
    Delivery.Status.SKIPPED: "skipped",
    Delivery.Status.HELD_OUT: "held_out",
}


def counters_move(campaign_id: int, moves: Mapping[tuple[str, str], int]) -> None:
    """Apply `{(from_status, to_status): how_many}` to the campaign's counters.

    Call inside the transaction that changed those rows."""
    delta: Counter[str] = Counter()
    for (before, after), how_many in moves.items():
        if how_many and before != after:
            delta[COUNTER_OF[Delivery.Status(before)]] -= how_many
            delta[COUNTER_OF[Delivery.Status(after)]] += how_many
    changes = {name: F(name) + change for name, change in delta.items() if change}
    if changes:
        Campaign.objects.filter(pk=campaign_id).update(**changes)


def counters_from_rows(campaign_id: int) -> dict[str, int]:
    """The counters as the Delivery rows say (for checks and repairs, not for pages)."""
    counts = {name: 0 for name in COUNTER_OF.values()}
    rows = (
        Delivery.objects.filter(campaign_id=campaign_id)
        .values("status")
        .annotate(n=Count("pk"))
        .order_by()
    )
    for row in rows:
        counts[COUNTER_OF[Delivery.Status(row["status"])]] = row["n"]
    counts["audience"] = sum(counts.values())
    return counts


def counters_of(campaign: Campaign) -> dict[str, int]:
    """The stored counters, in the shape of `counters_from_rows`."""
    names = [*COUNTER_OF.values(), "audience"]
    return {name: getattr(campaign, name) for name in names}
