"""What a campaign earned: revenue attributed to its recipients against its holdout (the lift).

A recipient's completed orders count when placed within WINDOW_DAYS of their message
([sent_at, sent_at + 14 days]); a held-out customer's, within WINDOW_DAYS of the launch. Revenue
per held-out customer is what a recipient would have spent without the message, so

    lift = revenue per recipient / revenue per held-out customer - 1
    incremental revenue = (revenue per recipient - revenue per held-out customer) x recipients

Each side is one aggregate over a join (no loop over customers). Money is summed as whole cents:
SQLite keeps decimals as binary floats, and a float sum of 100,000 amounts is off by cents.
"""

from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from django.db.models import BigIntegerField, Count, F, Q, QuerySet, Sum, Value
from django.db.models.functions import Cast, Round

from minicrm.customers.models import Order

from .models import Campaign, Delivery

WINDOW_DAYS = 14
WINDOW = timedelta(days=WINDOW_DAYS)
RECEIVED = (Delivery.Status.SENT, Delivery.Status.DELIVERED)
CENT = Decimal("0.01")
# Lift is a share: four places are a hundredth of a percent.
LIFT_PLACES = Decimal("0.0001")


def _revenue(orders: QuerySet[Order]) -> tuple[int, Decimal]:
    """(distinct buyers, exact revenue) of these orders, in one aggregate."""
    cents = Cast(Round(F("amount") * Value(100)), output_field=BigIntegerField())
    totals = orders.aggregate(buyers=Count("customer_id", distinct=True), cents=Sum(cents))
    return totals["buyers"], Decimal(totals["cents"] or 0) / 100


def _recipient_revenue(campaign_id: int) -> tuple[int, Decimal]:
    # One filter() call, so the conditions on the delivery apply to the same joined row: the
    # campaign's one delivery to that customer (unique per campaign and customer).
    orders = Order.objects.filter(
        status=Order.Status.COMPLETED,
        customer__deliveries__campaign_id=campaign_id,
        customer__deliveries__status__in=RECEIVED,
        ordered_at__gte=F("customer__deliveries__sent_at"),
        ordered_at__lte=F("customer__deliveries__sent_at") + WINDOW,
    )
    return _revenue(orders)


def _holdout_revenue(campaign_id: int, start: datetime | None) -> tuple[int, Decimal]:
    if start is None:
        return 0, Decimal("0.00")
    orders = Order.objects.filter(
        status=Order.Status.COMPLETED,
        customer__deliveries__campaign_id=campaign_id,
        customer__deliveries__status=Delivery.Status.HELD_OUT,
        ordered_at__gte=start,
        ordered_at__lte=start + WINDOW,
    )
    return _revenue(orders)


def _per_person(revenue: Decimal, people: int) -> Decimal | None:
    return (revenue / people).quantize(CENT) if people else None


def campaign_results(campaign: Campaign) -> dict[str, Any]:
    """The results contract the campaign page and the API show (see the module docstring).

    Keys: window_days, recipients, recipient_buyers, recipient_revenue, revenue_per_recipient,
    held_out, holdout_buyers, holdout_revenue, revenue_per_held_out, lift, incremental_revenue.
    Per-person figures are None without people; lift and incremental revenue are None without
    both recipients and a holdout (and lift also when the holdout spent nothing)."""
    counts = Delivery.objects.filter(campaign_id=campaign.pk).aggregate(
        recipients=Count("pk", filter=Q(status__in=RECEIVED)),
        held_out=Count("pk", filter=Q(status=Delivery.Status.HELD_OUT)),
    )
    recipients, held_out = counts["recipients"], counts["held_out"]
    recipient_buyers, recipient_revenue = _recipient_revenue(campaign.pk)
    holdout_buyers, holdout_revenue = _holdout_revenue(
        campaign.pk, campaign.launched_at or campaign.snapshot_at
    )
    lift = incremental = None
    if recipients and held_out:
        # From the exact sums, not the rounded per-person figures.
        incremental = (recipient_revenue - holdout_revenue * recipients / held_out).quantize(CENT)
        if holdout_revenue:
            ratio = (recipient_revenue * held_out) / (holdout_revenue * recipients)
            lift = (ratio - 1).quantize(LIFT_PLACES)
    return {
        "window_days": WINDOW_DAYS,
        "recipients": recipients,
        "recipient_buyers": recipient_buyers,
        "recipient_revenue": recipient_revenue.quantize(CENT),
        "revenue_per_recipient": _per_person(recipient_revenue, recipients),
        "held_out": held_out,
        "holdout_buyers": holdout_buyers,
        "holdout_revenue": holdout_revenue.quantize(CENT),
        "revenue_per_held_out": _per_person(holdout_revenue, held_out),
        "lift": lift,
        "incremental_revenue": incremental,
    }
