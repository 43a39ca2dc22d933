"""Reads for insights: one insight, a segment's insights newest first, the latest one."""

from django.db.models import QuerySet

from minicrm.core.errors import NotFoundError
from minicrm.segments.selectors import segment_get

from .models import Insight


def insight_get(*, insight_id: int) -> Insight:
    try:
        return Insight.objects.select_related("segment").get(pk=insight_id)
    except Insight.DoesNotExist:
        raise NotFoundError("No such insight.") from None


def insight_list(*, segment_id: int) -> QuerySet[Insight]:
    """The segment's insights, newest first (404 if the segment does not exist)."""
    segment = segment_get(segment_id=segment_id)
    return (
        Insight.objects.filter(segment=segment)
        .select_related("segment")
        .order_by("-created_at", "-id")
    )


def insight_latest(*, segment_id: int) -> Insight | None:
    return insight_list(segment_id=segment_id).first()
