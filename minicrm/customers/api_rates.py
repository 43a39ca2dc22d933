"""Exchange-rate routes of the REST API: rates in bulk, the rates list and their re-conversions.

`POST /rates` stores up to 10,000 rates by (currency, date) and reports bad rows as `errors`,
like the bulk ingestion routes (422 with a `detail` when no row could be stored); a change queues
the re-conversion of the orders it affects, returned as `reconversion_id`.
"""

from datetime import date, datetime
from decimal import Decimal
from typing import Any

from django.http import HttpRequest
from ninja import Field, Query, Router, Schema, Status

from minicrm.accounts.models import Role
from minicrm.accounts.permissions import require_role
from minicrm.core.limits import MAX_BATCH_ROWS
from minicrm.core.pagination import PageParams, paginate
from minicrm.core.params import Id

from .api import BulkRowErrorOut, bulk_response
from .models import ExchangeRate
from .rate_selectors import rate_list, reconversion_get, reconversion_list
from .rates import rates_upsert

router = Router(tags=["rates"])


class RatesIn(Schema):
    rows: list[dict[str, Any]] = Field(
        description=(
            f"Up to {MAX_BATCH_ROWS:,} rates, upserted by (currency, date). Fields: date "
            "(YYYY-MM-DD), currency (ISO 4217, not the shop currency), rate (> 0: units of the "
            "shop currency for one unit of `currency`, up to 10 decimals)."
        ),
        examples=[[{"date": "2026-03-04", "currency": "EUR", "rate": "90.1234"}]],
    )


class RatesOut(Schema):
    created: int
    updated: int
    unchanged: int
    errors: list[BulkRowErrorOut]
    reconversion_id: int | None = Field(
        description="The re-conversion of the orders the changed rates affect, if any"
    )


class RatesRejectedOut(RatesOut):
    detail: str


class RateFilter(Schema):
    currency: str = ""
    day_from: date | None = Field(None, description="First day, inclusive (YYYY-MM-DD)")
    day_to: date | None = Field(None, description="Last day, inclusive (YYYY-MM-DD)")


class RateOut(Schema):
    date: str = Field(description="YYYY-MM-DD")
    currency: str
    rate: Decimal = Field(description="Units of the shop currency for one unit of `currency`")
    updated_at: datetime

    @staticmethod
    def resolve_date(rate: ExchangeRate) -> str:
        return rate.day.isoformat()


class RatePageOut(Schema):
    items: list[RateOut]
    count: int


class ReconversionOut(Schema):
    id: int
    status: str
    ranges: list[dict[str, str]]
    total: int | None
    done: int
    percent: int
    changed_orders: int
    changed_customers: int
    failure_reason: str
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None


class ReconversionPageOut(Schema):
    items: list[ReconversionOut]
    count: int


@router.post(
    "/rates",
    response={200: RatesOut, 422: RatesRejectedOut},
    summary="Create or update up to 10,000 exchange rates; affected orders are re-converted",
)
def rates_bulk(request: HttpRequest, payload: RatesIn) -> Status[dict[str, Any]]:
    user = require_role(request.auth, Role.MARKETER)  # type: ignore[attr-defined]
    result = rates_upsert(rows=payload.rows, actor=user, source="api")
    return bulk_response(result, noun="rate", reconversion_id=result.reconversion_id)


@router.get("/rates", response=RatePageOut, summary="Exchange rates, newest day first")
def rates_list(
    request: HttpRequest, filters: Query[RateFilter], page: Query[PageParams]
) -> dict[str, Any]:
    require_role(request.auth, Role.VIEWER)  # type: ignore[attr-defined]
    return paginate(rate_list(**filters.model_dump()), page)


@router.get(
    "/rates/reconversions",
    response=ReconversionPageOut,
    summary="Re-conversions of orders after rate changes, newest first, with their progress",
)
def reconversions_list(request: HttpRequest, page: Query[PageParams]) -> dict[str, Any]:
    require_role(request.auth, Role.VIEWER)  # type: ignore[attr-defined]
    return paginate(reconversion_list(), page)


@router.get(
    "/rates/reconversions/{reconversion_id}",
    response=ReconversionOut,
    summary="One re-conversion and its progress",
)
def reconversions_detail(request: HttpRequest, reconversion_id: Id) -> Any:
    require_role(request.auth, Role.VIEWER)  # type: ignore[attr-defined]
    return reconversion_get(reconversion_id=reconversion_id)
