"""Reads of campaigns and their delivery log, shared by the REST API and the pages."""

from django.db.models import QuerySet

from minicrm.core.errors import NotFoundError

from .models import Campaign, Delivery


def campaign_list(
    *, status: str | None = None, segment_id: int | None = None
) -> QuerySet[Campaign]:
    """Campaigns newest first (the model's ordering), optionally of one status or one segment."""
    campaigns = Campaign.objects.select_related("created_by")
    if status is not None:
        campaigns = campaigns.filter(status=status)
    if segment_id is not None:
        campaigns = campaigns.filter(segment_id=segment_id)
    return campaigns


def campaign_get(*, campaign_id: int) -> Campaign:
    """One campaign; NotFoundError (a 404) when there is no such campaign."""
    campaign = Campaign.objects.select_related("created_by").filter(pk=campaign_id).first()
    if campaign is None:
        raise NotFoundError("No such campaign.")
    return campaign


def campaign_deliveries(*, campaign_id: int, status: str | None = None) -> QuerySet[Delivery]:
    """The campaign's delivery log in id order (the order they were written at launch), read
    through the (campaign, status, id) index; optionally one status only."""
    deliveries = Delivery.objects.filter(campaign_id=campaign_id)
    if status is not None:
        deliveries = deliveries.filter(status=status)
    return deliveries.order_by("id")
