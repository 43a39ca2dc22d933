"""Imports routes of the REST API: upload a CSV, follow its progress, download its row errors."""

import json
from datetime import datetime
from typing import Any

from django.http import HttpRequest, HttpResponse
from ninja import File, Form, Query, Router, Schema, Status
from ninja.files import UploadedFile

from minicrm.accounts.models import Role
from minicrm.accounts.permissions import require_role
from minicrm.accounts.services import client_ip
from minicrm.core.errors import ApplicationError
from minicrm.core.pagination import PageParams, paginate
from minicrm.core.params import Id

from .models import Import
from .selectors import import_error_report, import_get, import_list
from .services import import_create

router = Router(tags=["imports"])


class ImportRowErrorOut(Schema):
    row: int
    field: str
    column: str = ""
    value: str = ""
    message: str


class ImportOut(Schema):
    id: int
    kind: str
    status: str
    original_filename: str
    total_rows: int | None
    processed_rows: int
    percent: int
    created: int
    updated: int
    unchanged: int
    grouped_rows: int
    error_count: int
    failed_rows: int
    notes: list[str]
    failure_reason: str
    mapping: dict[str, Any]
    created_by: str | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None

    @staticmethod
    def resolve_created_by(obj: Import) -> str | None:
        return obj.created_by.email if obj.created_by else None


class ImportDetailOut(ImportOut):
    errors: list[ImportRowErrorOut]


class ImportListOut(Schema):
    items: list[ImportOut]
    count: int


@router.post(
    "/imports",
    response={202: ImportDetailOut},
    summary="Upload a CSV of customers or orders; it is processed in the background",
)
def import_upload(
    request: HttpRequest,
    file: File[UploadedFile],
    kind: Form[str | None] = None,
    mapping: Form[str | None] = None,
) -> Status:
    """`mapping` is a preset name (`shopify-orders`, `shopify-customers`) or a JSON mapping
    (`{"kind", "key", "line_items", "columns": {field: column}}`); without it the file uses
    Mini CRM's own column names and `kind` is required."""
    user = require_role(request.auth, Role.MARKETER)  # type: ignore[attr-defined]
    if not kind and not mapping:
        raise ApplicationError("Give kind (customers or orders), or a mapping.", field="kind")
    created = import_create(
        file=file,
        kind=kind or None,
        created_by=user,
        mapping=_mapping_field(mapping),
        ip_address=client_ip(request),
    )
    return Status(202, created)


def _mapping_field(value: str | None) -> dict[str, Any] | str | None:
    if value is None or not value.strip():
        return None
    if not value.lstrip().startswith("{"):
        return value.strip()
    try:
        loaded = json.loads(value)
    except ValueError:
        raise ApplicationError(
            "mapping must be a preset name or a JSON object.", field="mapping"
        ) from None
    if not isinstance(loaded, dict):
        raise ApplicationError("mapping must be a JSON object.", field="mapping")
    return loaded


@router.get("/imports", response=ImportListOut, summary="Imports, newest first")
def imports_list(request: HttpRequest, params: Query[PageParams]) -> dict[str, object]:
    return paginate(import_list(), params)


@router.get(
    "/imports/{import_id}", response=ImportDetailOut, summary="One import: progress and row errors"
)
def import_detail(request: HttpRequest, import_id: Id) -> Import:
    return import_get(import_id=import_id)


@router.get(
    "/imports/{import_id}/errors.csv",
    summary="The row errors of an import as CSV (row, field, message)",
    url_name="import_errors_csv",
    openapi_extra={"responses": {200: {"description": "CSV file", "content": {"text/csv": {}}}}},
)
def import_errors_csv(request: HttpRequest, import_id: Id) -> HttpResponse:
    # Also the import page's download link: the session authenticates a plain GET.
    import_ = import_get(import_id=import_id)
    response = HttpResponse(import_error_report(import_=import_), content_type="text/csv")
    response["Content-Disposition"] = f'attachment; filename="import-{import_.pk}-errors.csv"'
    return response
