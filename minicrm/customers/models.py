"""Customers and their orders, with each customer's order stats kept on the customer row."""

from decimal import Decimal

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
    amount = models.DecimalField(max_digits=12, decimal_places=2)
    currency = models.CharField(max_length=3, default="INR")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.COMPLETED)
    ordered_at = models.DateTimeField(db_index=True)

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
        ]

    def __str__(self) -> str:
        return f"{self.external_id} ({self.amount} {self.currency})"
