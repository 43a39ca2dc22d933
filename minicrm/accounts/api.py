"""Account routes of the REST API: who am I, and the audit trail (read only, admins)."""

from datetime import datetime
from typing import Any

from django.http import HttpRequest
from ninja import Field, Query, Router, Schema

from minicrm.core.pagination import PageParams, paginate
from minicrm.core.params import FilterDate, Id

from .models import AuditEvent, Role
from .permissions import require_role
from .selectors import audit_event_list

router = Router(tags=["accounts"])


class MeOut(Schema):
    id: int
    email: str
    full_name: str
    role: str


class AuditEventFilter(Schema):
    action: AuditEvent.Action | None = None
    actor_id: Id | None = None
    target: str = Field("", max_length=200)
    date_from: FilterDate | None = None
    date_to: FilterDate | None = None


class AuditEventOut(Schema):
    id: int
    created_at: datetime
    action: str
    action_label: str
    actor_id: int | None
    actor_email: str | None
    target: str
    ip_address: str | None
    details: dict[str, Any]

    @staticmethod
    def resolve_action_label(event: AuditEvent) -> str:
        return str(event.get_action_display())

    @staticmethod
    def resolve_actor_email(event: AuditEvent) -> str | None:
        return event.actor.email if event.actor else None


class AuditEventListOut(Schema):
    items: list[AuditEventOut]
    count: int


@router.get("/me", response=MeOut, summary="The signed-in user or the owner of the API token")
def me(request: HttpRequest) -> object:
    return request.auth  # type: ignore[attr-defined]


@router.get(
    "/audit-events",
    response=AuditEventListOut,
    summary="The audit trail, newest first, filtered (admin); dates are days in the app's zone",
)
def list_audit_events(
    request: HttpRequest, filters: Query[AuditEventFilter], page: Query[PageParams]
) -> Any:
    require_role(request.auth, Role.ADMIN)  # type: ignore[attr-defined]
    events = audit_event_list(
        action=filters.action.value if filters.action else "",
        actor_id=filters.actor_id,
        target=filters.target,
        date_from=filters.date_from,
        date_to=filters.date_to,
    )
    return paginate(events, page)
