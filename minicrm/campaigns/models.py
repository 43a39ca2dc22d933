"""Campaigns: one message template sent to a segment's reachable members, one Delivery per person.

The audience is frozen at launch into Delivery rows (unique per campaign and customer); the
counters on the campaign move in the same transaction as the rows they count, so they always
equal a GROUP BY over its deliveries (`minicrm.campaigns.counters`).
"""

from django.conf import settings
from django.db import models
from django.db.models.functions import Now

from minicrm.customers.models import Customer
from minicrm.segments.models import Segment


class Channel(models.TextChoices):
    LOG = "log", "Log only"
    EMAIL = "email", "Email"
    WEBHOOK = "webhook", "Webhook (messaging vendor)"


class Campaign(models.Model):
    class Status(models.TextChoices):
        DRAFT = "draft", "Draft"
        SCHEDULED = "scheduled", "Scheduled"
        SENDING = "sending", "Sending"
        SENT = "sent", "Sent"
        CANCELLED = "cancelled", "Cancelled"
        FAILED = "failed", "Failed"

    name = models.CharField(max_length=120)
    # A deleted segment leaves its campaigns: they keep the name and the rules they launched with.
    segment = models.ForeignKey(
        Segment, on_delete=models.SET_NULL, null=True, blank=True, related_name="campaigns"
    )
    segment_name = models.CharField(max_length=120, blank=True)
    channel = models.CharField(max_length=16, choices=Channel.choices, default=Channel.LOG)
    subject = models.CharField(max_length=200, blank=True)
    template = models.TextField()
    # Share of the audience (0-50 %) held out at random at launch, to measure the true lift.
    holdout_percent = models.PositiveSmallIntegerField(default=0)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.DRAFT)
    # When a scheduled campaign launches (None: when it was sent now).
    scheduled_at = models.DateTimeField(null=True, blank=True)
    # The segment's rules at launch, and the seed of the holdout draw: the launch is reproducible.
    rules = models.JSONField(null=True, blank=True)
    holdout_seed = models.PositiveIntegerField(null=True, blank=True)
    launched_at = models.DateTimeField(null=True, blank=True)
    # Set once the audience is written into Delivery rows (the launch's one set-based insert).
    snapshot_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    error = models.TextField(blank=True)

    # Counters: audience = deliveries written at launch (held out included); excluded = members
    # who could not be reached, by reason. The status counters always sum to the audience.
    audience = models.PositiveIntegerField(default=0)
    excluded = models.JSONField(default=dict, blank=True)
    held_out = models.PositiveIntegerField(default=0)
    pending = models.PositiveIntegerField(default=0)
    sent = models.PositiveIntegerField(default=0)
    delivered = models.PositiveIntegerField(default=0)
    failed = models.PositiveIntegerField(default=0)
    skipped = models.PositiveIntegerField(default=0)

    # The performance summary (minicrm.campaigns.summary): aggregates only go to a provider.
    summary = models.JSONField(null=True, blank=True)
    summary_status = models.CharField(max_length=16, blank=True)  # "", queued, running, ...
    summary_provider = models.CharField(max_length=32, blank=True)
    summary_error = models.TextField(blank=True)
    summary_at = models.DateTimeField(null=True, blank=True)

    # The worker delivering it keeps this lease alive; an expired lease means that worker is gone
    # and the recovery sweep queues the delivery again (minicrm.core.leases).
    lease_token = models.CharField(max_length=32, blank=True)
    lease_expires_at = models.DateTimeField(null=True, blank=True)

    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="campaigns",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["segment", "-created_at"], name="campaign_segment_created_idx"),
            models.Index(fields=["status"], name="campaign_status_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.status})"

    @property
    def is_editable(self) -> bool:
        return self.status == self.Status.DRAFT

    @property
    def is_active(self) -> bool:
        return self.status in {self.Status.SCHEDULED, self.Status.SENDING}

    @property
    def recipients(self) -> int:
        """Everyone in the audience who is meant to get the message (the holdout is not)."""
        return self.audience - self.held_out

    @property
    def progress_percent(self) -> int:
        to_send = self.recipients
        if not to_send:
            return 100 if self.snapshot_at else 0
        return round(100 * (to_send - self.pending) / to_send)


class Delivery(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        SENT = "sent", "Sent"
        DELIVERED = "delivered", "Delivered"
        FAILED = "failed", "Failed"
        # Unsubscribed (or lost consent) between the launch and their batch: never sent.
        SKIPPED = "skipped", "Skipped"
        # In the random holdout: gets nothing, and is the baseline for the lift.
        HELD_OUT = "held_out", "Held out"

    # Database defaults: the launch writes these rows with one INSERT ... SELECT that names only
    # the campaign and the customer (minicrm.campaigns.launch).
    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="deliveries")
    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="deliveries")
    status = models.CharField(
        max_length=16, choices=Status.choices, default=Status.PENDING, db_default=Status.PENDING
    )
    to = models.CharField(max_length=254, default="", db_default="", blank=True)
    subject = models.CharField(max_length=200, default="", db_default="", blank=True)
    body = models.TextField(default="", db_default="", blank=True)
    # NULL until the vendor accepts it: receipts look deliveries up by it, and NULL never matches.
    vendor_id = models.CharField(max_length=100, null=True, blank=True)  # noqa: DJ001
    attempts = models.PositiveIntegerField(default=0, db_default=0)
    # The worker batch it is in flight with (empty while it waits): a batch claimed by a worker
    # that died is sent again with the same delivery ids, and cancelling skips only rows that no
    # batch holds.
    batch_token = models.CharField(max_length=32, default="", db_default="", blank=True)
    batch_expires_at = models.DateTimeField(null=True, blank=True)
    error = models.CharField(max_length=500, default="", db_default="", blank=True)
    created_at = models.DateTimeField(db_default=Now())
    sent_at = models.DateTimeField(null=True, blank=True)
    # When the vendor's receipt said delivered or failed (its "at", else when it arrived).
    receipt_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["campaign", "customer"], name="delivery_unique_per_customer"
            ),
        ]
        indexes = [
            # The worker's next batch, the log filtered by status, and the counters check.
            models.Index(fields=["campaign", "status", "id"], name="delivery_campaign_status_idx"),
            models.Index(fields=["customer", "sent_at"], name="delivery_customer_sent_idx"),
            # Receipts find their deliveries by the vendor's id.
            models.Index(fields=["vendor_id"], name="delivery_vendor_id_idx"),
        ]

    def __str__(self) -> str:
        return f"Delivery {self.pk} of campaign {self.campaign_id} ({self.status})"


class ChannelRate(models.Model):
    """The clock of a channel's global rate limit: when its next message may go out.

    Every worker reserves its batch's window here under the row lock (minicrm.campaigns.ratelimit),
    so the limit holds across any number of processes with nothing but the database.
    """

    channel = models.CharField(max_length=16, primary_key=True, choices=Channel.choices)
    next_free_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"Rate clock of {self.channel}"
