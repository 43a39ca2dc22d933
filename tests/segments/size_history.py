"""Segments with a day-by-day size history, as the daily count leaves them (list tests)."""

from datetime import timedelta

from django.utils import timezone

from minicrm.segments.compiler import today_in_zone
from minicrm.segments.models import Segment, SegmentSize


def history(name: str, sizes: list[int], *, description: str = "", counted_ago: int = 1) -> Segment:
    """A segment counted once a day for len(sizes) days up to today, the last size its size."""
    today = today_in_zone()
    now = timezone.now()
    segment = Segment.objects.create(
        name=name,
        description=description,
        last_count=sizes[-1] if sizes else None,
        last_counted_at=now - timedelta(hours=counted_ago) if sizes else None,
    )
    SegmentSize.objects.bulk_create(
        SegmentSize(
            segment=segment,
            day=today - timedelta(days=len(sizes) - 1 - index),
            rules_hash="r1",
            counted_at=now - timedelta(days=len(sizes) - 1 - index),
            size=size,
        )
        for index, size in enumerate(sizes)
    )
    return segment
