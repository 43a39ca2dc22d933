"""Page-number pagination for API lists: `?page=&page_size=` returning `{"items", "count"}`."""

from typing import Any

from django.db.models import QuerySet
from ninja import Field, Schema

from .limits import MAX_PAGE_NUMBER, MAX_PAGE_SIZE


class PageParams(Schema):
    page: int = Field(1, ge=1, le=MAX_PAGE_NUMBER)
    page_size: int = Field(50, ge=1, le=MAX_PAGE_SIZE)


def paginate(
    queryset: QuerySet[Any], params: PageParams, *, count: int | None = None
) -> dict[str, Any]:
    start = (params.page - 1) * params.page_size
    items = list(queryset[start : start + params.page_size])
    return {"items": items, "count": queryset.count() if count is None else count}
