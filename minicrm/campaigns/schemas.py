"""Request and response shapes of the campaigns API (names unique across the whole API)."""

from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Any

from ninja import Field, Schema
from pydantic import AwareDatetime, BeforeValidator

from minicrm.core.params import Id

from .models import Campaign, Channel, Delivery
from .results import campaign_results
from .services import MAX_HOLDOUT_PERCENT
from .templating import MAX_SUBJECT_CHARS, MAX_TEMPLATE_CHARS


def _iso_text_only(value: object) -> object:
    # Pydantic also reads numbers as Unix times (0 is 1970): the contract is an ISO 8601 string.
    if not isinstance(value, str):
        raise ValueError("must be a date and time written as ISO 8601, with its offset")
    return value


# An instant with its offset (2026-05-01T09:00:00+05:30); a naive time would be ambiguous.
Instant = Annotated[AwareDatetime, BeforeValidator(_iso_text_only)]
Name = Annotated[str, Field(max_length=120)]
Subject = Annotated[str, Field(max_length=MAX_SUBJECT_CHARS)]
Template = Annotated[str, Field(max_length=MAX_TEMPLATE_CHARS)]
HoldoutPercent = Annotated[int, Field(ge=0, le=MAX_HOLDOUT_PERCENT)]


# The models' status choices under names of their own: both are called `Status`, and the OpenAPI
# document holds one schema per name.
CampaignStatusName = StrEnum(  # type: ignore[misc]
    "CampaignStatusName", [(status.name, status.value) for status in Campaign.Status]
)
DeliveryStatusName = StrEnum(  # type: ignore[misc]
    "DeliveryStatusName", [(status.name, status.value) for status in Delivery.Status]
)


class CampaignIn(Schema):
    name: Name
    segment_id: Id
    channel: Channel = Channel.LOG
    subject: Subject = ""
    template: Template
    holdout_percent: HoldoutPercent = 0


class CampaignPatch(Schema):
    """Only the fields sent change."""

    name: Name | None = None
    segment_id: Id | None = None
    channel: Channel | None = None
    subject: Subject | None = None
    template: Template | None = None
    holdout_percent: HoldoutPercent | None = None


class CampaignSendIn(Schema):
    """Send now (no body, or no `scheduled_at`), or at `scheduled_at` when it is in the future."""

    scheduled_at: Instant | None = None


class CampaignListFilter(Schema):
    status: CampaignStatusName | None = None
    segment_id: Id | None = None


class DeliveryListFilter(Schema):
    status: DeliveryStatusName | None = None


class CampaignCountersOut(Schema):
    """Always equal to the delivery rows; the status counters sum to the audience."""

    audience: int
    held_out: int
    pending: int
    sent: int
    delivered: int
    failed: int
    skipped: int
    excluded: dict[str, int]


class CampaignResultsOut(Schema):
    """Revenue of completed orders within `window_days` of each message, against the holdout's
    within `window_days` of the launch; `lift` is relative (0.12 = +12 %)."""

    window_days: int
    recipients: int
    recipient_buyers: int
    recipient_revenue: Decimal
    revenue_per_recipient: Decimal | None
    held_out: int
    holdout_buyers: int
    holdout_revenue: Decimal
    revenue_per_held_out: Decimal | None
    lift: Decimal | None
    incremental_revenue: Decimal | None


class CampaignSummaryOut(Schema):
    """The AI performance summary: `status` is "" (never asked), queued, running, succeeded or
    failed; `content` holds headline, findings, recommendations and the figures it was given."""

    status: str
    provider: str
    error: str
    written_at: datetime | None
    content: dict[str, Any] | None


def _counters(campaign: Campaign) -> dict[str, Any]:
    return {
        "audience": campaign.audience,
        "held_out": campaign.held_out,
        "pending": campaign.pending,
        "sent": campaign.sent,
        "delivered": campaign.delivered,
        "failed": campaign.failed,
        "skipped": campaign.skipped,
        "excluded": campaign.excluded or {},
    }


class CampaignListItemOut(Schema):
    id: int
    name: str
    segment_id: int | None
    segment_name: str
    channel: str
    status: str
    holdout_percent: int
    scheduled_at: datetime | None
    launched_at: datetime | None
    finished_at: datetime | None
    created_at: datetime
    counters: CampaignCountersOut
    progress_percent: int

    @staticmethod
    def resolve_counters(campaign: Campaign) -> dict[str, Any]:
        return _counters(campaign)


class CampaignListOut(Schema):
    items: list[CampaignListItemOut]
    count: int


class CampaignOut(Schema):
    id: int
    name: str
    segment_id: int | None
    segment_name: str
    channel: str
    subject: str
    template: str
    holdout_percent: int
    status: str
    error: str
    scheduled_at: datetime | None
    launched_at: datetime | None
    snapshot_at: datetime | None
    finished_at: datetime | None
    created_by: str | None
    created_at: datetime
    updated_at: datetime
    counters: CampaignCountersOut
    progress_percent: int
    results: CampaignResultsOut | None
    summary: CampaignSummaryOut

    @staticmethod
    def resolve_created_by(campaign: Campaign) -> str | None:
        return campaign.created_by.email if campaign.created_by else None

    @staticmethod
    def resolve_counters(campaign: Campaign) -> dict[str, Any]:
        return _counters(campaign)

    @staticmethod
    def resolve_results(campaign: Campaign) -> dict[str, Any] | None:
        # Three aggregate queries; only a launched campaign has anything to measure.
        return campaign_results(campaign) if campaign.snapshot_at else None

    @staticmethod
    def resolve_summary(campaign: Campaign) -> dict[str, Any]:
        return {
            "status": campaign.summary_status,
            "provider": campaign.summary_provider,
            "error": campaign.summary_error,
            "written_at": campaign.summary_at,
            "content": campaign.summary,
        }


class CampaignSampleOut(Schema):
    customer_id: int
    to: str
    subject: str
    body: str


class CampaignPreviewOut(Schema):
    audience: int
    excluded: dict[str, int]
    samples: list[CampaignSampleOut]


class DeliveryOut(Schema):
    id: int
    customer_id: int
    status: str
    to: str
    subject: str
    body: str
    vendor_id: str | None
    attempts: int
    error: str
    created_at: datetime
    sent_at: datetime | None
    receipt_at: datetime | None


class DeliveryListOut(Schema):
    items: list[DeliveryOut]
    count: int
