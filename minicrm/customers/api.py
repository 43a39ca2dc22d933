"""Customers routes of the REST API: bulk ingestion of customers and orders, lists, one customer.

Bulk bodies are `{"rows": [...]}` with up to 10,000 rows. Each row is validated on its own, so a
batch stores its valid rows and reports the others as `errors` (200); when no row at all could be
stored the same body comes back with 422 and a `detail`, so a client sending one bad row gets a
4xx naming the field. Money is returned as a decimal string ("1499.00") so it stays exact.
"""

from datetime import datetime
from decimal import Decimal
from typing import Any, Literal

from django.http import HttpRequest, StreamingHttpResponse
from django.utils import timezone
from ninja import Field, Query, Router, Schema, Status

from minicrm.accounts.models import Role
from minicrm.accounts.permissions import require_role
from minicrm.core.csv_stream import csv_lines
from minicrm.core.limits import MAX_BATCH_ROWS
from minicrm.core.pagination import PageParams, paginate
from minicrm.core.params import FilterDate, Id

from .exports import ORDER_EXPORT_COLUMNS, order_export_rows
from .ingestion import BulkResult
from .models import Customer, Order
from .rates import RatesResult
from .selectors import (
    CUSTOMER_ORDERINGS,
    DEFAULT_CUSTOMER_ORDERING,
    DEFAULT_ORDER_ORDERING,
    ORDER_ORDERINGS,
    customer_get,
    customer_list,
    customer_recent_orders,
    customer_tags,
    order_list,
)
from .services.customers import customers_bulk_upsert
from .services.orders import orders_bulk_upsert

router = Router(tags=["customers"])

CUSTOMER_EXAMPLE = {
    "external_id": "C-1001",
    "email": "asha@example.com",
    "first_name": "Asha",
    "last_name": "Rao",
    "phone": "+91 98765 43210",
    "city": "Pune",
    "country": "India",
    "tags": ["vip", "newsletter"],
    "attributes": {"channel": "instagram"},
    "signed_up_at": "2024-03-15",
    "marketing_consent": True,
}
ORDER_EXAMPLE = {
    "external_id": "O-5001",
    "customer_external_id": "C-1001",
    "amount": "1499.00",
    "currency": "INR",
    "status": "completed",
    "ordered_at": "2025-01-31T14:05:00+05:30",
}


class CustomersBulkIn(Schema):
    rows: list[dict[str, Any]] = Field(
        description=(
            f"Up to {MAX_BATCH_ROWS:,} customers, upserted by external_id. Fields: external_id "
            "(required, unless ?key=email), email, first_name, last_name, phone, city, country, "
            "tags (list or "
            '"a|b"), attributes (object), signed_up_at (ISO date or date-time), '
            "marketing_consent. A field left out keeps its stored value."
        ),
        examples=[[CUSTOMER_EXAMPLE]],
    )


class OrdersBulkIn(Schema):
    rows: list[dict[str, Any]] = Field(
        description=(
            f"Up to {MAX_BATCH_ROWS:,} orders, upserted by external_id. Fields: external_id, "
            "customer_external_id (or customer_email with ?key=email), amount (>= 0: a free order "
            "counts, 2 decimals), ordered_at (ISO date or date-time) "
            "are required; currency (ISO 4217, default the shop currency) and status "
            "(completed, cancelled, refunded; default completed) are optional. amount is in the "
            "row's currency: another than the shop's is converted with its rate for the order's "
            "date (or one at most MINICRM_RATE_MAX_AGE_DAYS older), and no such rate is a row "
            "error on currency. Only completed orders count in customer stats."
        ),
        examples=[[ORDER_EXAMPLE]],
    )


class BulkRowErrorOut(Schema):
    index: int = Field(description="0-based position of the row in `rows`")
    field: str
    message: str


class BulkOut(Schema):
    created: int
    updated: int
    unchanged: int
    errors: list[BulkRowErrorOut]


class BulkRejectedOut(BulkOut):
    detail: str


class CustomerFilter(Schema):
    search: str = Field("", description="Prefix of email, first or last name; or an external_id")
    city: str = ""
    country: str = ""
    tag: str = ""
    # Within the total_spend column (14 digits, 2 places), so every database can compare them.
    spend_min: Decimal | None = Field(None, ge=0, max_digits=14, decimal_places=2)
    spend_max: Decimal | None = Field(None, ge=0, max_digits=14, decimal_places=2)
    has_orders: bool | None = None
    ordering: str = Field(
        DEFAULT_CUSTOMER_ORDERING, description="One of: " + ", ".join(CUSTOMER_ORDERINGS)
    )


class CustomerOut(Schema):
    id: int
    external_id: str
    email: str
    first_name: str
    last_name: str
    full_name: str
    phone: str
    city: str
    country: str
    tags: list[str]
    marketing_consent: bool
    signed_up_at: datetime | None
    total_spend: Decimal = Field(
        description="Sum of the completed orders, in the shop currency (MINICRM_CURRENCY)"
    )
    order_count: int
    avg_order_value: Decimal | None = Field(
        description="total_spend / order_count in the shop currency; null without orders"
    )
    first_order_at: datetime | None
    last_order_at: datetime | None
    created_at: datetime
    updated_at: datetime

    @staticmethod
    def resolve_tags(obj: Customer) -> list[str]:
        return customer_tags(obj)


class CustomerOrderOut(Schema):
    id: int
    external_id: str
    amount: Decimal = Field(
        description="In the shop currency (MINICRM_CURRENCY): what stats and rules add up"
    )
    original_amount: Decimal = Field(
        description="As the order was sent, in `currency`; equal to `amount` in the shop currency"
    )
    currency: str = Field(description="The order's own currency (ISO 4217), of original_amount")
    status: str
    ordered_at: datetime


class CustomerDetailOut(CustomerOut):
    attributes: dict[str, Any]
    recent_orders: list[CustomerOrderOut]

    @staticmethod
    def resolve_recent_orders(obj: Customer) -> list[Order]:
        return customer_recent_orders(customer_id=obj.pk)


class CustomerPageOut(Schema):
    items: list[CustomerOut]
    count: int


class OrderExportFilter(Schema):
    customer_id: Id | None = None
    customer_external_id: str = ""
    status: Order.Status | None = None
    ordered_from: FilterDate | None = Field(None, description="First day, inclusive (YYYY-MM-DD)")
    ordered_to: FilterDate | None = Field(None, description="Last day, inclusive (YYYY-MM-DD)")


class OrderFilter(OrderExportFilter):
    ordering: str = Field(
        DEFAULT_ORDER_ORDERING, description="One of: " + ", ".join(ORDER_ORDERINGS)
    )


class OrderOut(CustomerOrderOut):
    customer_id: int
    customer_external_id: str
    created_at: datetime
    updated_at: datetime

    @staticmethod
    def resolve_customer_external_id(order: Order) -> str:
        return order.customer.external_id


class OrderPageOut(Schema):
    items: list[OrderOut]
    count: int


def bulk_response(
    result: BulkResult | RatesResult, *, noun: str = "row", **extra: Any
) -> Status[dict[str, Any]]:
    """The answer of every bulk upsert: the counts and row errors (200), or a 422 with a
    `detail` when no row could be stored. `extra` adds keys of the endpoint's own."""
    body: dict[str, Any] = {
        "created": result.created,
        "updated": result.updated,
        "unchanged": result.unchanged,
        "errors": result.errors,
        **extra,
    }
    if result.errors and not (result.created or result.updated or result.unchanged):
        rows = len({error.index for error in result.errors})
        body["detail"] = f"No {noun} was stored: {rows:,} row(s) have errors (see errors)."
        return Status(422, body)
    return Status(200, body)


@router.post(
    "/customers/bulk",
    response={200: BulkOut, 422: BulkRejectedOut},
    summary="Create or update up to 10,000 customers by external_id",
)
def customers_bulk(
    request: HttpRequest,
    payload: CustomersBulkIn,
    key: Literal["external_id", "email"] = "external_id",
) -> Status[dict[str, Any]]:
    """`?key=email` matches customers by email: a row needs no external_id (a new customer gets
    one derived from the email), and an existing customer with that email is updated."""
    require_role(request.auth, Role.MARKETER)  # type: ignore[attr-defined]
    return bulk_response(customers_bulk_upsert(rows=payload.rows, key=key))


@router.post(
    "/orders/bulk",
    response={200: BulkOut, 422: BulkRejectedOut},
    summary="Create or update up to 10,000 orders by external_id; customer stats follow",
)
def orders_bulk(
    request: HttpRequest,
    payload: OrdersBulkIn,
    key: Literal["external_id", "email"] = "external_id",
) -> Status[dict[str, Any]]:
    """`?key=email`: each row names its customer by `customer_email` instead of
    `customer_external_id`."""
    require_role(request.auth, Role.MARKETER)  # type: ignore[attr-defined]
    return bulk_response(orders_bulk_upsert(rows=payload.rows, customer_key=key))


@router.get("/customers", response=CustomerPageOut, summary="Customers, searched and filtered")
def customers_list(
    request: HttpRequest, filters: Query[CustomerFilter], page: Query[PageParams]
) -> dict[str, Any]:
    require_role(request.auth, Role.VIEWER)  # type: ignore[attr-defined]
    return paginate(customer_list(**filters.model_dump()), page)


@router.get(
    "/customers/{customer_id}",
    response=CustomerDetailOut,
    summary="One customer with stats, tags and recent orders",
)
def customers_detail(request: HttpRequest, customer_id: Id) -> Customer:
    require_role(request.auth, Role.VIEWER)  # type: ignore[attr-defined]
    return customer_get(customer_id=customer_id)


@router.get(
    "/orders/export",
    summary="Orders as CSV, streamed: amount in the shop currency, original_amount and currency "
    "as sent",
    response={200: None},
)
def orders_export(request: HttpRequest, filters: Query[OrderExportFilter]) -> StreamingHttpResponse:
    require_role(request.auth, Role.VIEWER)  # type: ignore[attr-defined]
    values = filters.model_dump()
    values["status"] = values["status"] or ""
    rows = order_export_rows(**values)
    response = StreamingHttpResponse(
        csv_lines(ORDER_EXPORT_COLUMNS, rows), content_type="text/csv; charset=utf-8"
    )
    stamp = timezone.localdate().isoformat()
    response["Content-Disposition"] = f'attachment; filename="orders-{stamp}.csv"'
    return response


@router.get("/orders", response=OrderPageOut, summary="Orders, filtered")
def orders_list(
    request: HttpRequest, filters: Query[OrderFilter], page: Query[PageParams]
) -> dict[str, Any]:
    require_role(request.auth, Role.VIEWER)  # type: ignore[attr-defined]
    values = filters.model_dump()
    values["status"] = values["status"] or ""
    return paginate(order_list(**values), page)
