"""A CSV import of customers or orders: the stored file and how far its processing has come."""

from django.conf import settings
from django.db import models
from django.utils import timezone

# Every row error is counted, but only the first ones are kept: enough to fix a file, while a
# million-row file of bad rows cannot bloat the row that the progress poller reads every second.
MAX_STORED_ERRORS = 1000


class Import(models.Model):
    class Kind(models.TextChoices):
        CUSTOMERS = "customers", "Customers"
        ORDERS = "orders", "Orders"

    class Status(models.TextChoices):
        # Uploaded on the import page; waits for the person to confirm the column mapping.
        MAPPING = "mapping", "Needs its columns mapped"
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"

    kind = models.CharField(max_length=16, choices=Kind.choices)
    file = models.FileField(upload_to="imports/%Y/%m/", max_length=255)
    original_filename = models.CharField(max_length=255)
    status = models.CharField(
        max_length=16, choices=Status.choices, default=Status.QUEUED, db_index=True
    )
    total_rows = models.PositiveIntegerField(null=True, blank=True)
    processed_rows = models.PositiveIntegerField(default=0)
    created = models.PositiveIntegerField(default=0)
    updated = models.PositiveIntegerField(default=0)
    unchanged = models.PositiveIntegerField(default=0)
    # Line-item rows folded into the order on the row before them (a shop's orders export).
    grouped_rows = models.PositiveIntegerField(default=0)
    error_count = models.PositiveIntegerField(default=0)
    errors = models.JSONField(default=list, blank=True)
    notes = models.JSONField(default=list, blank=True)
    failure_reason = models.TextField(blank=True)
    # Which file column feeds which field (minicrm.imports.mapping); empty: our own column names.
    mapping = models.JSONField(default=dict, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="imports",
    )
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)
    # The run working on it writes only while the import carries its token, and keeps the lease
    # from expiring while it lives (minicrm.core.leases); an expired lease means the worker is
    # gone, and the recovery sweep queues the import again after its last committed chunk.
    lease_token = models.CharField(max_length=32, blank=True)
    lease_expires_at = models.DateTimeField(null=True, blank=True, db_index=True)
    # How many times a lost worker's import was queued again (limited: MAX_WORK_RECOVERIES).
    recoveries = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} import {self.original_filename} ({self.status})"

    @property
    def is_active(self) -> bool:
        return self.status in {self.Status.QUEUED, self.Status.RUNNING}

    @property
    def is_recovering(self) -> bool:
        """Running, but its worker was lost: the sweep queues it again (or already has)."""
        if self.status != self.Status.RUNNING:
            return False
        expires = self.lease_expires_at
        return not self.lease_token or expires is None or expires < timezone.now()

    @property
    def percent(self) -> int:
        if self.status == self.Status.SUCCEEDED:
            return 100
        if not self.total_rows:
            return 0
        return min(100, self.processed_rows * 100 // self.total_rows)

    @property
    def stored_rows(self) -> int:
        return self.created + self.updated + self.unchanged

    @property
    def failed_rows(self) -> int:
        # A row may carry several errors, so rows that failed are counted apart from errors.
        return max(0, self.processed_rows - self.stored_rows - self.grouped_rows)

    @property
    def needs_mapping(self) -> bool:
        return self.status == self.Status.MAPPING


class ColumnMapping(models.Model):
    """The mapping last confirmed for files with this header, offered again for the next one."""

    header_hash = models.CharField(max_length=64, unique=True)
    header = models.JSONField(default=list)
    mapping = models.JSONField(default=dict)
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"{self.mapping.get('kind', '?')} mapping for {len(self.header)} columns"
