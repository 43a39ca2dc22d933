"""Campaign pieces other pages show: status badges, and the recent campaigns on the dashboard.

The dashboard (minicrm.web) loads this library instead of importing campaigns, which it may not.
"""

from typing import Any

from django import template

from minicrm.campaigns.models import Campaign, Channel, Delivery

register = template.Library()

RECENT_CAMPAIGNS = 5

CAMPAIGN_BADGES: dict[str, str] = {
    Campaign.Status.DRAFT: "",
    Campaign.Status.SCHEDULED: "info",
    Campaign.Status.SENDING: "accent",
    Campaign.Status.SENT: "success",
    Campaign.Status.CANCELLED: "warning",
    Campaign.Status.FAILED: "danger",
}
CHANNEL_LABELS: dict[str, str] = {
    Channel.LOG: "Log",
    Channel.EMAIL: "Email",
    Channel.WEBHOOK: "Webhook",
}
DELIVERY_BADGES: dict[str, str] = {
    Delivery.Status.PENDING: "",
    Delivery.Status.SENT: "info",
    Delivery.Status.DELIVERED: "success",
    Delivery.Status.FAILED: "danger",
    Delivery.Status.SKIPPED: "warning",
    Delivery.Status.HELD_OUT: "",
}


@register.filter
def campaign_badge(status: str) -> str:
    """The badge colour of a campaign status."""
    return CAMPAIGN_BADGES.get(status, "")


@register.filter
def channel_label(channel: str) -> str:
    """The channel in one word, for tables (the choice labels say more)."""
    return CHANNEL_LABELS.get(channel, channel)


@register.filter
def delivery_badge(status: str) -> str:
    return DELIVERY_BADGES.get(status, "")


@register.inclusion_tag("campaigns/_recent.html")
def recent_campaigns(
    limit: int = RECENT_CAMPAIGNS, campaigns: list[Campaign] | None = None
) -> dict[str, Any]:
    """The newest campaigns with their delivery counters (the dashboard's card).

    `campaigns` given (the dashboard's, read for its date range and cached with it, each with
    `attributed_revenue`) are shown as they are, with an attributed-revenue column.
    """
    if campaigns is not None:
        return {"campaigns": campaigns, "with_revenue": True}
    newest = Campaign.objects.defer("template", "rules", "summary", "error", "summary_error")
    return {"campaigns": list(newest[:limit]), "with_revenue": False}
