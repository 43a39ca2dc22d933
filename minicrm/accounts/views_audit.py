"""The audit page: admins browse and filter the append-only trail; nothing here writes."""

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from .audit_display import audit_details_text
from .forms_audit import AuditFilterForm
from .models import AuditEvent, Role
from .permissions import role_required
from .selectors import audit_event_list

PAGE_SIZE = 50


@dataclass(frozen=True)
class AuditRow:
    created_at: datetime
    actor: str
    action: str
    target: str
    ip_address: str
    details: str


def _row(event: AuditEvent) -> AuditRow:
    return AuditRow(
        created_at=event.created_at,
        actor=event.actor.email if event.actor else "",
        action=event.get_action_display(),
        target=event.target,
        ip_address=event.ip_address or "",
        details=audit_details_text(event.details),
    )


@role_required(Role.ADMIN)
@require_GET
def audit_page(request: HttpRequest) -> HttpResponse:
    form = AuditFilterForm(request.GET)
    if not form.is_valid():
        # A bad filter (an unknown action, an impossible date) is named, not silently dropped.
        refused: dict[str, Any] = {"form": form, "page": None, "rows": [], "page_query": ""}
        return render(request, "accounts/audit.html", refused, status=400)
    page = Paginator(audit_event_list(**form.selector_filters()), PAGE_SIZE).get_page(
        request.GET.get("page")
    )
    query = request.GET.copy()
    query.pop("page", None)
    context: dict[str, Any] = {
        "form": form,
        "page": page,
        "rows": [_row(event) for event in page.object_list],
        "filtered": any(form.cleaned_data.values()),
        # Pagination links keep the filters: "?{page_query}page=2".
        "page_query": f"{query.urlencode()}&" if query else "",
    }
    return render(request, "accounts/audit.html", context)
