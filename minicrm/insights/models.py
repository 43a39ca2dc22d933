"""AI insights: what a provider wrote about a segment, from the facts of the rules it had then."""

from django.conf import settings
from django.db import models

from minicrm.segments.models import Segment


class Insight(models.Model):
    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"

    segment = models.ForeignKey(Segment, on_delete=models.CASCADE, related_name="insights")
    # The segment's rules when the insight was asked for: the facts are computed from these.
    rules = models.JSONField()
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED)
    provider = models.CharField(max_length=32, blank=True)
    model = models.CharField(max_length=100, blank=True)
    facts = models.JSONField(null=True, blank=True)
    content = models.JSONField(null=True, blank=True)
    error = models.TextField(blank=True)
    attempts = models.PositiveIntegerField(default=0)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="insights",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    duration_ms = models.PositiveIntegerField(null=True, blank=True)
    # The run generating it saves its outcome only while the insight carries its token, and
    # keeps the lease from expiring while it lives (minicrm.core.leases); an expired lease means
    # the worker is gone, and the recovery sweep queues the insight again or fails it.
    lease_token = models.CharField(max_length=32, blank=True)
    lease_expires_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["segment", "-created_at"], name="insight_segment_created_idx"),
        ]

    def __str__(self) -> str:
        return f"Insight {self.pk} for segment {self.segment_id} ({self.status})"

    @property
    def is_pending(self) -> bool:
        return self.status in {self.Status.QUEUED, self.Status.RUNNING}

    @property
    def is_stale(self) -> bool:
        """True once the segment's rules have changed since this insight was asked for."""
        return self.rules != self.segment.rules
