"""Customers and their orders, with each customer's order stats kept on the customer row."""

from collections.abc import Iterable
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db import models
from django.db.models import Q

from minicrm.core.models import TimeStampedModel


class Customer(TimeStampedModel):
    external_id = models.CharField(max_length=64, unique=True, help_text="The caller's own key.")
    email = models.EmailField(blank=True, db_index=True)
    first_name = models.CharField(max_length=100, blank=True)
    last_name = models.CharField(max_length=100, blank=True)
    phone = models.CharField(max_length=32, blank=True)
    city = models.CharField(max_length=100, blank=True, db_index=True)
    country = models.CharField(max_length=100, blank=True, db_index=True)
    attributes = models.JSONField(default=dict, blank=True)
    marketing_consent = models.BooleanField(default=True)
    # Set by the unsubscribe link in a campaign message: no campaign reaches them again.
    unsubscribed_at = models.DateTimeField(null=True, blank=True)
    signed_up_at = models.DateTimeField(null=True, blank=True, db_index=True)

    # Stats over completed orders, written in the same transaction as every order change.
    total_spend = models.DecimalField(max_digits=14, decimal_places=2, default=Decimal("0"))
    order_count = models.PositiveIntegerField(default=0)
    first_order_at = models.DateTimeField(null=True, blank=True, db_index=True)
    last_order_at = models.DateTimeField(null=True, blank=True, db_index=True)

    class Meta:
        indexes = [
            # Leads with total_spend, so it also serves spend-only rules; measured on 1M customers
            # it took "spend and orders" rules from 793 to 63 ms in SQL (bench/README_preview.md).
            models.Index(
                fields=["total_spend", "order_count", "last_order_at"],
                name="customer_stats_cover_idx",
            ),
            models.Index(fields=["order_count"], name="customer_order_count_idx"),
            models.Index(fields=["updated_at"], name="customer_updated_at_idx"),
            models.Index(fields=["last_name", "first_name"], name="customer_name_idx"),
        ]
        # Migration 0003 adds case-insensitive name indexes per database (not model state): a
        # migration that makes SQLite rebuild this table must create them again.

    def __str__(self) -> str:
        return self.full_name or self.email or self.external_id

    @property
    def full_name(self) -> str:
        return f"{self.first_name} {self.last_name}".strip()

    @property
    def avg_order_value(self) -> Decimal | None:
        if not self.order_count:
            return None
        return (self.total_spend / self.order_count).quantize(Decimal("0.01"))


class CustomerTag(models.Model):
    """One tag of one customer, stored lower-case so tag rules compare without case."""

    # The unique (customer, name) index already starts with the customer, so no index of its own.
    customer = models.ForeignKey(
        Customer, on_delete=models.CASCADE, related_name="tag_rows", db_index=False
    )
    name = models.CharField(max_length=50)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["customer", "name"], name="customer_tag_unique"),
        ]
        indexes = [models.Index(fields=["name", "customer"], name="customer_tag_name_idx")]

    def __str__(self) -> str:
        return self.name


def shop_currency() -> str:
    """The default currency of an order: the shop's, read when the order is made."""
    return str(settings.MINICRM_CURRENCY)


class OrderQuerySet(models.QuerySet["Order"]):
    def bulk_create(self, objs: Iterable["Order"], *args: Any, **kwargs: Any) -> list["Order"]:
        # Orders written straight to the table (tests, scripts) without an original amount are
        # in the shop currency, as `Order.save` assumes.
        objs = list(objs)
        for order in objs:
            order.original_amount_default()
        return super().bulk_create(objs, *args, **kwargs)


class Order(TimeStampedModel):
    class Status(models.TextChoices):
        COMPLETED = "completed", "Completed"
        CANCELLED = "cancelled", "Cancelled"
        REFUNDED = "refunded", "Refunded"

    external_id = models.CharField(max_length=64, unique=True)
    # Lookups by customer use the (customer, status, ordered_at) index; a second index on the
    # customer alone would only slow down every insert.
    customer = models.ForeignKey(
        Customer, on_delete=models.CASCADE, related_name="orders", db_index=False
    )
    # In the shop currency (settings.MINICRM_CURRENCY): what stats, rules, facts and the
    # dashboard add up. An order in another currency is converted at ingestion with the rate
    # of its date (minicrm.customers.currency) and keeps what it was sent as below.
    amount = models.DecimalField(max_digits=12, decimal_places=2)
    original_amount = models.DecimalField(max_digits=12, decimal_places=2)
    currency = models.CharField(max_length=3, default=shop_currency)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.COMPLETED)
    ordered_at = models.DateTimeField(db_index=True)

    objects = OrderQuerySet.as_manager()

    class Meta:
        constraints = [
            # Free orders (samples, 100 % discounts, replacements) are orders: they count in
            # order_count and the order dates and add nothing to spend.
            models.CheckConstraint(condition=Q(amount__gte=0), name="order_amount_not_negative"),
        ]
        indexes = [
            models.Index(
                fields=["customer", "status", "ordered_at"], name="order_customer_status_idx"
            ),
            # Revenue over a date range (dashboard, insight trends) reads only this index: at
            # 10M orders the uncached dashboard went from 65-92 s to 0.8 s on SQLite.
            models.Index(
                fields=["status", "ordered_at", "amount"], name="order_status_date_amount_idx"
            ),
            # A rate change re-converts the orders of one currency over a few days.
            models.Index(fields=["currency", "ordered_at"], name="order_currency_date_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.external_id} ({self.amount} {self.currency})"

    def save(self, *args: Any, **kwargs: Any) -> None:
        self.original_amount_default()
        super().save(*args, **kwargs)

    def original_amount_default(self) -> None:
        """An order given no original amount was sent in the shop currency: it is its amount."""
        if self.original_amount is None:
            self.original_amount = self.amount


class ExchangeRate(TimeStampedModel):
    """What one unit of `currency` was worth in the shop currency on `day`.

    An order on a day with no rate uses the latest earlier one, at most
    MINICRM_RATE_MAX_AGE_DAYS old (minicrm.customers.currency.rate_for).
    """

    currency = models.CharField(max_length=3)
    day = models.DateField()
    # Units of the shop currency for ONE unit of `currency` (e.g. 89.1234 INR for 1 EUR).
    rate = models.DecimalField(max_digits=20, decimal_places=10)

    class Meta:
        ordering = ["currency", "-day"]
        constraints = [
            models.UniqueConstraint(fields=["currency", "day"], name="exchange_rate_unique"),
            models.CheckConstraint(condition=Q(rate__gt=0), name="exchange_rate_positive"),
        ]

    def __str__(self) -> str:
        return f"1 {self.currency} = {self.rate} on {self.day}"


class RateReconversion(TimeStampedModel):
    """The re-conversion of the orders a change of rates affects, run by the worker.

    `ranges` lists what to re-convert: [{"currency": "EUR", "start": "2026-03-04",
    "end": "2026-03-11"}] (order dates, `end` excluded, in the shop's time zone).
    """

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"

    status = models.CharField(
        max_length=16, choices=Status.choices, default=Status.QUEUED, db_index=True
    )
    ranges = models.JSONField(default=list)
    # Orders in the ranges (counted when the run starts) and how many are re-converted so far.
    total = models.PositiveIntegerField(null=True, blank=True)
    done = models.PositiveIntegerField(default=0)
    # Orders whose amount moved, and the customers whose stats were recomputed for it.
    changed_orders = models.PositiveIntegerField(default=0)
    changed_customers = models.PositiveIntegerField(default=0)
    failure_reason = models.TextField(blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"Rate re-conversion {self.pk} ({self.status})"

    @property
    def percent(self) -> int:
        if self.status == self.Status.SUCCEEDED:
            return 100
        if not self.total:
            return 0
        return min(100, self.done * 100 // self.total)
