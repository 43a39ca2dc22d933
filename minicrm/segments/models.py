"""Saved segments (named rules) and the history of their sizes."""

from django.conf import settings
from django.db import models
from django.db.models.functions import Lower

from minicrm.core.models import TimeStampedModel

from .rules import EMPTY_RULES


def empty_rules() -> dict[str, object]:
    return {"match": EMPTY_RULES["match"], "conditions": []}


NAME_MAX_LENGTH = 120
# The constraint a save that takes a name in use (ignoring case) breaks: its error names it.
NAME_UNIQUE_CONSTRAINT = "segment_name_unique_ignoring_case"


class Segment(TimeStampedModel):
    name = models.CharField(max_length=NAME_MAX_LENGTH)
    # The name in lower case, kept by the database: names are unique ignoring case through a
    # constraint on it, so two concurrent saves of "VIP" and "vip" cannot both succeed.
    # A stored column rather than UniqueConstraint(Lower("name")): MariaDB has no expression
    # indexes (Django would skip that constraint there without a word).
    name_key = models.GeneratedField(
        expression=Lower("name"),
        output_field=models.CharField(max_length=NAME_MAX_LENGTH),
        db_persist=True,
    )
    description = models.TextField(blank=True)
    # Canonical JSON of a RuleGroup (rules.RuleGroup.to_dict()); written only by the services.
    rules = models.JSONField(default=empty_rules)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="segments",
    )
    last_count = models.PositiveIntegerField(null=True, blank=True)
    last_counted_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["name"]
        constraints = [models.UniqueConstraint(fields=["name_key"], name=NAME_UNIQUE_CONSTRAINT)]

    def __str__(self) -> str:
        return self.name


class SegmentSize(models.Model):
    """A segment's size on one day for one version of its rules (re-counting updates the row)."""

    segment = models.ForeignKey(Segment, on_delete=models.CASCADE, related_name="sizes")
    day = models.DateField()
    # A hash of the canonical rules, so a rules change on the same day starts a new point.
    rules_hash = models.CharField(max_length=64)
    counted_at = models.DateTimeField()
    size = models.PositiveIntegerField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["segment", "day", "rules_hash"], name="segment_size_unique_per_day"
            ),
        ]
        indexes = [models.Index(fields=["segment", "counted_at"], name="segment_size_counted_idx")]

    def __str__(self) -> str:
        return f"{self.segment_id} on {self.day}: {self.size}"


class SegmentSizeSchedule(models.Model):
    """The one daily size-recording chain: the day its next run is for.

    Each run moves `next_run_on` forward with a compare-and-set, so a second chain started by
    mistake finds the day taken and stops instead of doubling the work.
    """

    next_run_on = models.DateField()
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"next daily segment sizes on {self.next_run_on}"
