"""Insights routes of the REST API: queue and read insights, text to rules, message ideas."""

from datetime import datetime
from typing import Any

from django.http import HttpRequest
from ninja import Field, Query, Router, Schema, Status

from minicrm.accounts.models import Role
from minicrm.accounts.permissions import require_role
from minicrm.core.pagination import PageParams, paginate
from minicrm.core.params import Id

from .selectors import insight_get, insight_list
from .services import (
    MAX_TEXT_LENGTH,
    audience_parse,
    insight_request,
    messages_suggest,
)

router = Router(tags=["insights"])


class InsightOut(Schema):
    id: int
    segment_id: Id
    status: str
    provider: str
    model: str
    rules: dict[str, Any]
    facts: dict[str, Any] | None
    content: dict[str, Any] | None
    error: str
    attempts: int
    is_stale: bool
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    duration_ms: int | None


class InsightListOut(Schema):
    items: list[InsightOut]
    count: int


class ParseIn(Schema):
    text: str = Field(min_length=1, max_length=MAX_TEXT_LENGTH, pattern=r"\S")


class ParseOut(Schema):
    rules: dict[str, Any]
    explanation: str
    # The words the parser could not turn into a rule (the built-in parser lists them; a model's
    # explanation says it in prose and leaves this empty).
    unparsed: list[str] = []


class SuggestIn(Schema):
    objective: str = Field(min_length=1, max_length=500, pattern=r"\S")


class SuggestOut(Schema):
    messages: list[str]


class ErrorOut(Schema):
    detail: str


@router.post(
    "/segments/{int:segment_id}/insights",
    response={202: InsightOut},
    summary="Queue a new insight for the segment (marketer)",
)
def create_insight(request: HttpRequest, segment_id: Id) -> Status:
    user = require_role(request.auth, Role.MARKETER)  # type: ignore[attr-defined]
    return Status(202, insight_request(segment_id=segment_id, requested_by=user))


@router.get(
    "/segments/{int:segment_id}/insights",
    response=InsightListOut,
    summary="The segment's insights, newest first",
)
def list_insights(request: HttpRequest, segment_id: Id, page: Query[PageParams]) -> Any:
    return paginate(insight_list(segment_id=segment_id), page)


@router.get(
    "/insights/{int:insight_id}", response=InsightOut, summary="One insight with its status"
)
def get_insight(request: HttpRequest, insight_id: Id) -> Any:
    return insight_get(insight_id=insight_id)


@router.post(
    "/segments/parse",
    response={200: ParseOut, 422: ErrorOut, 502: ErrorOut, 503: ErrorOut},
    summary="Turn a plain-language description into rules (marketer; nothing is saved)",
)
def parse_text(request: HttpRequest, payload: ParseIn) -> Any:
    require_role(request.auth, Role.MARKETER)  # type: ignore[attr-defined]
    result = audience_parse(text=payload.text)
    return {"rules": result.rules, "explanation": result.explanation, "unparsed": result.unparsed}


@router.post(
    "/segments/{int:segment_id}/suggest-messages",
    response={200: SuggestOut, 502: ErrorOut, 503: ErrorOut},
    summary="Three campaign message variants for an objective (marketer)",
)
def suggest_messages(request: HttpRequest, segment_id: Id, payload: SuggestIn) -> Any:
    require_role(request.auth, Role.MARKETER)  # type: ignore[attr-defined]
    return {"messages": messages_suggest(segment_id=segment_id, objective=payload.objective)}
