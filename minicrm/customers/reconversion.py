"""Re-conversion after a rate change: the stored orders it affects, converted again, exactly.

The worker runs one RateReconversion in batches of RECONVERT_BATCH orders, one transaction each:
read the batch's original amounts, convert them with the rates stored now (the same rounding as
ingestion), write the amounts that moved and recompute their customers' stats (which moves the
customers' `updated_at`, so the columnar preview snapshot refreshes). Running it again converts
to the same amounts, so a run cut short is simply run again.
"""

import logging
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from django.db import transaction
from django.db.models import F, QuerySet
from django.utils import timezone

from minicrm.core.errors import ApplicationError, NotFoundError
from minicrm.core.limits import MAX_ORDER_AMOUNT
from minicrm.core.tasks import enqueue_on_commit

from .currency import amount_at_rate, day_start, order_day, rates_for
from .models import Order, RateReconversion
from .services.stats import customer_stats_recompute
from .sql import datetime_adapter, executemany, update_sql

logger = logging.getLogger(__name__)

# Orders per transaction: at 10M orders one statement would hold its locks for minutes.
RECONVERT_BATCH = 10_000
# A running re-conversion whose row has not moved this long lost its worker (a batch of
# RECONVERT_BATCH orders takes seconds; the worker's statement timeout is 120 s).
RECONVERSION_STALL_SECONDS = 600
COMPLETED = Order.Status.COMPLETED.value

Span = tuple[str, date, date]
OrderValues = tuple[int, int, Decimal, Decimal, str, datetime]


def _spans(reconversion: RateReconversion) -> list[Span]:
    return [
        (span["currency"], date.fromisoformat(span["start"]), date.fromisoformat(span["end"]))
        for span in reconversion.ranges
    ]


def _orders_in(currency: str, start: date, end: date) -> QuerySet[Order]:
    return Order.objects.filter(
        currency=currency, ordered_at__gte=day_start(start), ordered_at__lt=day_start(end)
    )


def reconversion_run(*, reconversion_id: int) -> RateReconversion:
    """Re-convert the orders of one RateReconversion; a finished one is left alone."""
    reconversion = RateReconversion.objects.filter(pk=reconversion_id).first()
    if reconversion is None:
        raise NotFoundError(f"No rate re-conversion has id {reconversion_id}.")
    if reconversion.status == RateReconversion.Status.SUCCEEDED:
        return reconversion
    spans = _spans(reconversion)
    total = sum(_orders_in(*span).count() for span in spans)
    RateReconversion.objects.filter(pk=reconversion_id).update(
        status=RateReconversion.Status.RUNNING,
        total=total,
        done=0,
        changed_orders=0,
        changed_customers=0,
        started_at=timezone.now(),
        finished_at=None,
        failure_reason="",
        updated_at=timezone.now(),
    )
    for span in spans:
        _span_reconvert(reconversion_id, span)
    RateReconversion.objects.filter(pk=reconversion_id).update(
        status=RateReconversion.Status.SUCCEEDED,
        finished_at=timezone.now(),
        updated_at=timezone.now(),
    )
    reconversion.refresh_from_db()
    return reconversion


def reconversions_recover() -> int:
    """Queue again every running re-conversion whose row has not moved for
    RECONVERSION_STALL_SECONDS (its worker is gone: a batch writes its progress in seconds).

    The run queued again starts over, which converts to the same amounts. The claim is a
    conditional UPDATE on the `updated_at` seen, so two sweepers never queue one twice.
    """
    now = timezone.now()
    stalled = list(
        RateReconversion.objects.filter(
            status=RateReconversion.Status.RUNNING,
            updated_at__lt=now - timedelta(seconds=RECONVERSION_STALL_SECONDS),
        )
        .order_by("pk")
        .values_list("pk", "updated_at")
    )
    handled = 0
    for reconversion_id, seen in stalled:
        with transaction.atomic():
            claimed = RateReconversion.objects.filter(
                pk=reconversion_id, status=RateReconversion.Status.RUNNING, updated_at=seen
            ).update(status=RateReconversion.Status.QUEUED, updated_at=now)
            if not claimed:
                continue
            logger.warning("Rate re-conversion %s lost its worker; queued again", reconversion_id)
            # Imported here to break the cycle: the task runs this module's service.
            from .tasks import rates_reconvert_task

            enqueue_on_commit(rates_reconvert_task, reconversion_id)
            handled += 1
    return handled


def reconversion_fail(*, reconversion_id: int, reason: str) -> None:
    RateReconversion.objects.filter(pk=reconversion_id).update(
        status=RateReconversion.Status.FAILED,
        failure_reason=reason,
        finished_at=timezone.now(),
        updated_at=timezone.now(),
    )


def _span_reconvert(reconversion_id: int, span: Span) -> None:
    last_id = 0
    while True:
        with transaction.atomic():
            batch: list[OrderValues] = list(
                _orders_in(*span)
                .filter(id__gt=last_id)
                .select_for_update()
                .order_by("id")
                .values_list(
                    "id", "customer_id", "amount", "original_amount", "status", "ordered_at"
                )[:RECONVERT_BATCH]
            )
            if not batch:
                return
            orders, customers = _batch_reconvert(span[0], batch)
            last_id = batch[-1][0]
            RateReconversion.objects.filter(pk=reconversion_id).update(
                done=F("done") + len(batch),
                changed_orders=F("changed_orders") + orders,
                changed_customers=F("changed_customers") + customers,
                # The run's heartbeat: a run whose row stops moving lost its worker.
                updated_at=timezone.now(),
            )


def _batch_reconvert(currency: str, batch: list[OrderValues]) -> tuple[int, int]:
    """Write the batch's amounts that its rates now make different; recompute the stats of the
    customers whose completed orders moved. Returns (orders changed, customers recomputed)."""
    now = timezone.now()
    stamp = datetime_adapter()(now)
    rates = rates_for({(currency, order_day(ordered_at)) for *_rest, ordered_at in batch})
    changes: list[tuple[Any, ...]] = []
    customers: set[int] = set()
    for order_id, customer_id, amount, original, status, ordered_at in batch:
        rate = rates[(currency, order_day(ordered_at))]
        if rate is None:
            # Only if the max age was shortened since the order was stored: it keeps the amount
            # of the rate it was stored with rather than a guess.
            continue
        fresh = amount_at_rate(Decimal(original), rate)
        if fresh == amount:
            continue
        if fresh > MAX_ORDER_AMOUNT:
            # The whole batch rolls back: no order half re-converted, and the run says why.
            raise ApplicationError(
                f"At the new rate order {order_id} ({original} {currency}) would be {fresh:,}, "
                f"past the most an order can hold ({MAX_ORDER_AMOUNT:,}); correct the rate."
            )
        changes.append((fresh, stamp, order_id))
        if status == COMPLETED:
            customers.add(customer_id)
    executemany(update_sql(Order, ["amount", "updated_at"]), changes)
    customer_stats_recompute(customer_ids=customers, now=now, touch=True)
    return len(changes), len(customers)
