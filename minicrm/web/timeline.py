"""One customer's activity: their orders, campaign messages and consent changes, newest first.

Composed here because web may read every app, while customers must not know campaigns. Pages are
keyset pages over (time, kind, id): each source reads only the next `limit + 1` of its own rows
before the cursor from its (customer, time) index, so the hundredth page costs what the first does.
"""

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from django.db.models import Q, QuerySet
from django.db.models.functions import Coalesce

from minicrm.campaigns.models import Delivery
from minicrm.core.errors import ApplicationError
from minicrm.customers.models import Customer, Order

TimelineKind = Literal["order", "message", "consent"]
# Among events at the same moment, the later kind shows first (a message answered by an order
# right after is rare; the order is stable, which is what paging needs).
KIND_RANKS: dict[TimelineKind, int] = {"order": 0, "message": 1, "consent": 2}
TIMELINE_PAGE_SIZE = 20


@dataclass(frozen=True)
class TimelineCursor:
    """Where a page ends: the next page holds the events strictly older than this one."""

    at: datetime
    rank: int
    id: int

    def encode(self) -> str:
        return f"{self.at.isoformat()}|{self.rank}|{self.id}"

    @classmethod
    def decode(cls, raw: str) -> "TimelineCursor":
        try:
            at, rank, pk = raw.split("|")
            cursor = cls(at=datetime.fromisoformat(at), rank=int(rank), id=int(pk))
        except ValueError:
            raise ApplicationError("Not a timeline position.", field="before") from None
        if cursor.at.tzinfo is None or cursor.rank not in KIND_RANKS.values():
            raise ApplicationError("Not a timeline position.", field="before")
        return cursor


@dataclass(frozen=True)
class TimelineEvent:
    kind: TimelineKind
    at: datetime
    id: int
    order: Order | None = None
    delivery: Delivery | None = None

    @property
    def cursor(self) -> TimelineCursor:
        return TimelineCursor(at=self.at, rank=KIND_RANKS[self.kind], id=self.id)


@dataclass(frozen=True)
class TimelinePage:
    events: list[TimelineEvent]
    next_cursor: TimelineCursor | None


def _older(field: str, kind: TimelineKind, before: TimelineCursor | None) -> Q:
    """Rows of one kind that come after `before` in newest-first (time, kind, id) order."""
    if before is None:
        return Q()
    rank = KIND_RANKS[kind]
    older = Q(**{f"{field}__lt": before.at})
    if rank < before.rank:
        return older | Q(**{field: before.at})
    if rank == before.rank:
        return older | Q(**{field: before.at, "id__lt": before.id})
    return older


def _orders(customer_id: int, before: TimelineCursor | None, limit: int) -> list[TimelineEvent]:
    orders = Order.objects.filter(customer_id=customer_id).filter(
        _older("ordered_at", "order", before)
    )
    return [
        TimelineEvent(kind="order", at=order.ordered_at, id=order.pk, order=order)
        for order in orders.order_by("-ordered_at", "-id")[:limit]
    ]


def _deliveries(customer_id: int) -> QuerySet[Delivery]:
    # A message is placed when it went out; one never sent (queued, held out, skipped) when the
    # campaign launched, which is when its row was written.
    return (
        Delivery.objects.filter(customer_id=customer_id)
        .annotate(at=Coalesce("sent_at", "created_at"))
        .select_related("campaign")
        .only(
            "id",
            "status",
            "subject",
            "error",
            "sent_at",
            "created_at",
            "campaign__id",
            "campaign__name",
            "campaign__channel",
        )
    )


def _messages(customer_id: int, before: TimelineCursor | None, limit: int) -> list[TimelineEvent]:
    deliveries = _deliveries(customer_id).filter(_older("at", "message", before))
    return [
        TimelineEvent(kind="message", at=delivery.at, id=delivery.pk, delivery=delivery)  # type: ignore[attr-defined]
        for delivery in deliveries.order_by("-at", "-id")[:limit]
    ]


def _consent(customer: Customer, before: TimelineCursor | None) -> list[TimelineEvent]:
    # The one consent change with a time on record: the unsubscribe link (`unsubscribed_at`).
    # A change of `marketing_consent` by import or API keeps no time, so it has no event.
    if customer.unsubscribed_at is None:
        return []
    event = TimelineEvent(kind="consent", at=customer.unsubscribed_at, id=customer.pk)
    if before is not None and (event.at, KIND_RANKS["consent"], event.id) >= (
        before.at,
        before.rank,
        before.id,
    ):
        return []
    return [event]


def customer_timeline(
    *, customer: Customer, before: TimelineCursor | None = None, limit: int = TIMELINE_PAGE_SIZE
) -> TimelinePage:
    """The customer's events older than `before` (all, from the newest, without one), `limit`
    at most, and the cursor of the next page (None on the last)."""
    events = [
        *_orders(customer.pk, before, limit + 1),
        *_messages(customer.pk, before, limit + 1),
        *_consent(customer, before),
    ]
    events.sort(key=lambda event: (event.at, KIND_RANKS[event.kind], event.id), reverse=True)
    page = events[:limit]
    more = len(events) > limit
    return TimelinePage(events=page, next_cursor=page[-1].cursor if more else None)
