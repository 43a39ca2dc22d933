"""Segments routes of the REST API: live preview, saved segments, members and CSV export."""

import logging
from collections.abc import Iterator
from datetime import datetime
from decimal import Decimal
from itertools import chain
from typing import Any

from django.http import HttpRequest, StreamingHttpResponse
from django.utils.text import slugify
from ninja import Query, Router, Schema, Status

from minicrm.accounts.models import Role
from minicrm.accounts.permissions import require_role
from minicrm.accounts.services import client_ip
from minicrm.core.csv_stream import csv_line, csv_lines
from minicrm.core.pagination import PageParams, paginate
from minicrm.core.params import Id
from minicrm.core.replica import replica_reads
from minicrm.core.statement_timeout import statement_timeout, web_timeout_seconds

from .compiler import today_in_zone
from .models import Segment
from .rules import RuleValidationError, parse_rules
from .selectors import (
    EXPORT_COLUMNS,
    preview_snapshot_or_start_build,
    rules_describe,
    segment_export_rows,
    segment_funnel,
    segment_get,
    segment_list,
    segment_members,
    segment_preview,
    segment_rules,
)
from .services import segment_create, segment_delete, segment_update

logger = logging.getLogger(__name__)
router = Router(tags=["segments"])


class RulesIn(Schema):
    rules: dict[str, Any]


class RuleErrorOut(Schema):
    loc: list[str | int]
    path: str
    msg: str
    type: str = "rules"


class RulesErrorOut(Schema):
    detail: list[RuleErrorOut]
    message: str


class TooSlowOut(Schema):
    detail: str


class SampleCustomerOut(Schema):
    id: int
    name: str
    email: str
    city: str
    total_spend: Decimal
    order_count: int
    last_order_at: datetime | None


class FunnelStepOut(Schema):
    label: str
    count: int


class PreviewOut(Schema):
    count: int
    total_customers: int
    sample: list[SampleCustomerOut]
    funnel: list[FunnelStepOut] | None
    summary: str


class SegmentIn(Schema):
    name: str
    description: str = ""
    rules: dict[str, Any]


class SegmentPatch(Schema):
    name: str | None = None
    description: str | None = None
    rules: dict[str, Any] | None = None


class SegmentOut(Schema):
    id: int
    name: str
    description: str
    rules: dict[str, Any]
    summary: str
    created_by: str | None
    created_at: datetime
    updated_at: datetime
    last_count: int | None
    last_counted_at: datetime | None

    @staticmethod
    def resolve_summary(segment: Segment) -> str:
        return rules_describe(segment_rules(segment))

    @staticmethod
    def resolve_created_by(segment: Segment) -> str | None:
        return segment.created_by.email if segment.created_by else None


class SegmentListOut(Schema):
    items: list[SegmentOut]
    count: int


class MemberOut(Schema):
    id: int
    external_id: str
    email: str
    first_name: str
    last_name: str
    city: str
    country: str
    total_spend: Decimal
    order_count: int
    first_order_at: datetime | None
    last_order_at: datetime | None
    signed_up_at: datetime | None


class MemberListOut(Schema):
    items: list[MemberOut]
    count: int


class PreviewParams(Schema):
    funnel: bool = True


def rules_error_body(error: RuleValidationError) -> dict[str, Any]:
    """The 422 body (`RulesErrorOut`) for rules that do not parse: like ninja's (`detail` items
    with `loc`/`msg`), and naming each path. The API's one handler for RuleValidationError
    answers it (config.api), so routes parse rules and let the error go."""
    detail = [
        {
            "loc": ["body", "rules", *item["loc"]],
            "path": item["path"],
            "msg": item["message"],
            "type": "rules",
        }
        for item in error.errors
    ]
    return {"detail": detail, "message": f"Invalid rules: {error}"}


@router.post(
    "/segments/preview",
    response={200: PreviewOut, 422: RulesErrorOut, 503: TooSlowOut},
    summary="Count and sample the customers that rules select (nothing is saved)",
)
def preview(request: HttpRequest, payload: RulesIn, params: Query[PreviewParams]) -> Any:
    group = parse_rules(payload.rules)
    with statement_timeout(web_timeout_seconds()):
        # One refresh of the columnar copy serves the count, the sample and the funnel.
        snapshot = preview_snapshot_or_start_build()
        result = segment_preview(rules=group, snapshot=snapshot)
        result["funnel"] = segment_funnel(rules=group, snapshot=snapshot) if params.funnel else None
    result["summary"] = rules_describe(group)
    return result


@router.get("/segments", response=SegmentListOut, summary="Saved segments, by name")
def list_segments(request: HttpRequest, page: Query[PageParams]) -> Any:
    return paginate(segment_list(), page)


@router.post(
    "/segments",
    response={201: SegmentOut, 422: RulesErrorOut},
    summary="Save a segment (marketer)",
)
def create_segment(request: HttpRequest, payload: SegmentIn) -> Any:
    user = require_role(request.auth, Role.MARKETER)  # type: ignore[attr-defined]
    segment = segment_create(
        name=payload.name,
        description=payload.description,
        rules=parse_rules(payload.rules),
        created_by=user,
        ip_address=client_ip(request),
    )
    return Status(201, segment_get(segment_id=segment.pk))


@router.get("/segments/{int:segment_id}", response=SegmentOut, summary="One segment")
def get_segment(request: HttpRequest, segment_id: Id) -> Any:
    return segment_get(segment_id=segment_id)


@router.patch(
    "/segments/{int:segment_id}",
    response={200: SegmentOut, 422: RulesErrorOut},
    summary="Change a segment's name, description or rules (marketer)",
)
def update_segment(request: HttpRequest, segment_id: Id, payload: SegmentPatch) -> Any:
    user = require_role(request.auth, Role.MARKETER)  # type: ignore[attr-defined]
    segment_update(
        segment_id=segment_id,
        name=payload.name,
        description=payload.description,
        rules=None if payload.rules is None else parse_rules(payload.rules),
        actor=user,
        ip_address=client_ip(request),
    )
    return Status(200, segment_get(segment_id=segment_id))


@router.delete("/segments/{int:segment_id}", response={204: None}, summary="Delete a segment")
def delete_segment(request: HttpRequest, segment_id: Id) -> Any:
    user = require_role(request.auth, Role.MARKETER)  # type: ignore[attr-defined]
    segment_delete(segment_id=segment_id, actor=user, ip_address=client_ip(request))
    return Status(204, None)


@router.get(
    "/segments/{int:segment_id}/customers",
    response={200: MemberListOut, 503: TooSlowOut},
    summary="The segment's customers, by id, one page at a time",
)
def segment_customers(request: HttpRequest, segment_id: Id, page: Query[PageParams]) -> Any:
    segment = segment_get(segment_id=segment_id)
    with replica_reads(), statement_timeout(web_timeout_seconds()):
        return paginate(segment_members(segment=segment), page)


INCOMPLETE_LINE = (
    "EXPORT INCOMPLETE: an error stopped the export after {rows} customers; this file is "
    "missing the rest. Download it again."
)


def export_lines(*, segment: Segment) -> Iterator[str]:
    """The CSV of a segment's members; what can fail before the first byte fails here.

    The first chunk of members is read before this returns, so a query that fails or runs past
    its budget answers an error status instead of a 200 with an empty file. An error later in
    the stream is logged, ends the file with a line saying it is incomplete, and is raised again
    so the server aborts the response (no final chunk): the download is visibly broken.
    """
    rows = iter(segment_export_rows(segment=segment, timeout_seconds=web_timeout_seconds()))
    first = next(rows, None)
    lines = csv_lines((*EXPORT_COLUMNS, "tags"), [] if first is None else chain([first], rows))

    def stream() -> Iterator[str]:
        written = -1  # the header is not a customer
        try:
            for line in lines:
                yield line
                written += 1
        except Exception:
            logger.exception("The export of segment %s stopped after %s rows", segment.pk, written)
            yield csv_line([INCOMPLETE_LINE.format(rows=max(written, 0))])
            raise

    return stream()


@router.get(
    "/segments/{int:segment_id}/export",
    summary="Every member as CSV, streamed (constant memory at any size)",
    response={200: None, 503: TooSlowOut},
)
def export_segment(request: HttpRequest, segment_id: Id) -> StreamingHttpResponse:
    segment = segment_get(segment_id=segment_id)
    stamp = today_in_zone().isoformat()
    filename = f"segment-{slugify(segment.name) or segment.pk}-{stamp}.csv"
    response = StreamingHttpResponse(
        export_lines(segment=segment), content_type="text/csv; charset=utf-8"
    )
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response
