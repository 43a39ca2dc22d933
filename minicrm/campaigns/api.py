"""Campaigns routes of the REST API: drafts, preview, send or schedule, cancel, the delivery log,
results and the AI performance summary. Viewers read; marketers and admins write."""

from datetime import datetime, timedelta
from typing import Any

from django.http import HttpRequest
from django.utils import timezone
from ninja import Body, Query, Router, Status

from minicrm.accounts.models import Role
from minicrm.accounts.permissions import require_role
from minicrm.accounts.services import client_ip
from minicrm.core.errors import InvalidInputError
from minicrm.core.pagination import PageParams, paginate
from minicrm.core.params import Id
from minicrm.core.statement_timeout import statement_timeout, web_timeout_seconds

from .preview import campaign_preview
from .schemas import (
    CampaignIn,
    CampaignListFilter,
    CampaignListOut,
    CampaignOut,
    CampaignPatch,
    CampaignPreviewOut,
    CampaignSendIn,
    DeliveryListFilter,
    DeliveryListOut,
)
from .selectors import campaign_deliveries, campaign_get, campaign_list
from .services import campaign_cancel, campaign_create, campaign_send, campaign_update
from .summary import summary_request

router = Router(tags=["campaigns"])

# A campaign is scheduled at most this far ahead: later is more likely a typo than a plan, and
# the bound keeps the instant far from the calendar's end in every timezone.
MAX_SCHEDULE_AHEAD = timedelta(days=366)


def _schedule_checked(scheduled_at: datetime | None) -> datetime | None:
    if scheduled_at is None:
        return None
    try:
        too_late = scheduled_at > timezone.now() + MAX_SCHEDULE_AHEAD
    except OverflowError:  # year 1 or 9999 with an offset: not an instant in UTC
        too_late = True
    if too_late or scheduled_at.year < 2000:
        raise InvalidInputError(
            f"Schedule the campaign within {MAX_SCHEDULE_AHEAD.days} days from now.",
            field="scheduled_at",
        )
    return scheduled_at


@router.get(
    "/campaigns",
    response=CampaignListOut,
    summary="Campaigns, newest first (filter by status or segment)",
)
def list_campaigns(
    request: HttpRequest, filters: Query[CampaignListFilter], page: Query[PageParams]
) -> Any:
    status = filters.status.value if filters.status else None
    return paginate(campaign_list(status=status, segment_id=filters.segment_id), page)


@router.post("/campaigns", response={201: CampaignOut}, summary="Create a draft (marketer)")
def create_campaign(request: HttpRequest, payload: CampaignIn) -> Any:
    user = require_role(request.auth, Role.MARKETER)  # type: ignore[attr-defined]
    campaign = campaign_create(created_by=user, **payload.model_dump())
    return Status(201, campaign_get(campaign_id=campaign.pk))


@router.get(
    "/campaigns/{int:campaign_id}",
    response=CampaignOut,
    summary="One campaign with its counters, results (once launched) and AI summary",
)
def get_campaign(request: HttpRequest, campaign_id: Id) -> Any:
    return campaign_get(campaign_id=campaign_id)


@router.patch(
    "/campaigns/{int:campaign_id}",
    response=CampaignOut,
    summary="Change a draft (marketer); a campaign sent or scheduled is a 409",
)
def update_campaign(request: HttpRequest, campaign_id: Id, payload: CampaignPatch) -> Any:
    require_role(request.auth, Role.MARKETER)  # type: ignore[attr-defined]
    campaign_update(campaign_id=campaign_id, **payload.model_dump(exclude_unset=True))
    return campaign_get(campaign_id=campaign_id)


@router.post(
    "/campaigns/{int:campaign_id}/preview",
    response=CampaignPreviewOut,
    summary="The audience, who is excluded and why, and the message for sample customers",
)
def preview_campaign(request: HttpRequest, campaign_id: Id) -> Any:
    # A read (nothing is saved): viewers may preview too, as they may preview segments.
    campaign = campaign_get(campaign_id=campaign_id)
    with statement_timeout(web_timeout_seconds()):
        return campaign_preview(campaign)


@router.post(
    "/campaigns/{int:campaign_id}/send",
    response={202: CampaignOut},
    summary="Send now, or schedule with scheduled_at (marketer); a second send is a 409",
)
def send_campaign(
    request: HttpRequest, campaign_id: Id, payload: Body[CampaignSendIn | None] = None
) -> Any:
    user = require_role(request.auth, Role.MARKETER)  # type: ignore[attr-defined]
    scheduled_at = _schedule_checked(payload.scheduled_at if payload else None)
    campaign_send(
        campaign_id=campaign_id,
        scheduled_at=scheduled_at,
        actor=user,
        ip_address=client_ip(request),
    )
    return Status(202, campaign_get(campaign_id=campaign_id))


@router.post(
    "/campaigns/{int:campaign_id}/cancel",
    response=CampaignOut,
    summary="Stop what is still waiting (marketer); what was sent stays sent",
)
def cancel_campaign(request: HttpRequest, campaign_id: Id) -> Any:
    user = require_role(request.auth, Role.MARKETER)  # type: ignore[attr-defined]
    campaign_cancel(campaign_id=campaign_id, actor=user, ip_address=client_ip(request))
    return campaign_get(campaign_id=campaign_id)


@router.get(
    "/campaigns/{int:campaign_id}/deliveries",
    response=DeliveryListOut,
    summary="The campaign's delivery log in the order written (filter by status)",
)
def list_deliveries(
    request: HttpRequest,
    campaign_id: Id,
    filters: Query[DeliveryListFilter],
    page: Query[PageParams],
) -> Any:
    campaign = campaign_get(campaign_id=campaign_id)
    status = filters.status.value if filters.status else None
    return paginate(campaign_deliveries(campaign_id=campaign.pk, status=status), page)


@router.post(
    "/campaigns/{int:campaign_id}/summary",
    response={202: CampaignOut},
    summary="Queue a new AI performance summary (marketer; once the campaign has launched)",
)
def summarise_campaign(request: HttpRequest, campaign_id: Id) -> Any:
    require_role(request.auth, Role.MARKETER)  # type: ignore[attr-defined]
    summary_request(campaign_id=campaign_id)
    return Status(202, campaign_get(campaign_id=campaign_id))
