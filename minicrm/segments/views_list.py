"""The segments list page: each segment's size, share of all customers and 30-day trend, with a
search by name and sortable columns that its page links keep."""

from typing import Any
from urllib.parse import urlencode

from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_GET

from minicrm.accounts.models import Role, User
from minicrm.core.charts import sparkline_points
from minicrm.customers.selectors import customer_total

from .models import Segment
from .selectors import (
    SEGMENT_LIST_SORTS,
    TREND_DAYS,
    segment_list_page_rows,
    segment_size_trends,
)

LIST_PAGE_SIZE = 50
DEFAULT_SORT = "name"
SEARCH_MAX_LENGTH = 100
# The sortable columns, their label, and the first click's order: text A to Z, numbers and dates
# high to low (the biggest, the most recently counted, the fastest growing first).
COLUMNS = (
    ("name", "Name", "name"),
    ("size", "Size", "-size"),
    ("change", "30-day trend", "-change"),
    ("counted", "Last counted", "-counted"),
)


def _query(*, search: str, sort: str) -> str:
    """The list's query string for this search and sort, the default sort left out."""
    params = {"q": search, "sort": "" if sort == DEFAULT_SORT else sort}
    return urlencode({key: value for key, value in params.items() if value})


def _url(*, search: str, sort: str) -> str:
    query = _query(search=search, sort=sort)
    path = reverse("segments:list")
    return f"{path}?{query}" if query else path


def _headers(*, search: str, sort: str) -> list[dict[str, Any]]:
    descending = sort.startswith("-")
    headers = []
    for key, label, first in COLUMNS:
        active = sort.lstrip("-") == key
        next_sort = (key if descending else f"-{key}") if active else first
        headers.append(
            {
                "key": key,
                "label": label,
                "active": active,
                "descending": descending,
                "url": _url(search=search, sort=next_sort),
                "aria_sort": ("descending" if descending else "ascending") if active else "none",
            }
        )
    return headers


def _share(size: int | None, total: int) -> dict[str, Any] | None:
    """A segment's share of all customers: the text ("12%", "<1%") and the bar's whole percent."""
    if size is None or total <= 0:
        return None
    percent = min(100.0, 100 * size / total)
    if 0 < percent < 1:
        text = "<1%"
    elif percent < 10 and round(percent) != percent:
        text = f"{percent:.1f}%"
    else:
        text = f"{round(percent)}%"
    return {"text": text, "bar": max(1, round(percent)) if size else 0}


def _row(segment: Segment, sizes: list[int], total: int) -> dict[str, Any]:
    change = sizes[-1] - sizes[0] if len(sizes) > 1 else None
    trend = "none" if change is None else "up" if change > 0 else "down" if change < 0 else "flat"
    return {
        "segment": segment,
        "share": _share(segment.last_count, total),
        "points": sparkline_points(sizes),
        "first_size": sizes[0] if sizes else None,
        "last_size": sizes[-1] if sizes else None,
        "change": change,
        "change_abs": abs(change) if change is not None else None,
        "trend": trend,
    }


@require_GET
def segment_list_page(request: HttpRequest) -> HttpResponse:
    search = request.GET.get("q", "").strip()[:SEARCH_MAX_LENGTH]
    sort = request.GET.get("sort", DEFAULT_SORT)
    if sort not in SEGMENT_LIST_SORTS:
        sort = DEFAULT_SORT
    segments = segment_list_page_rows(search=search, sort=sort)
    page = Paginator(segments, LIST_PAGE_SIZE).get_page(request.GET.get("page"))
    on_page = list(page.object_list)
    trends = segment_size_trends(segment_ids=[segment.pk for segment in on_page])
    total = customer_total() if on_page else 0
    query = _query(search=search, sort=sort)
    context = {
        "rows": [_row(segment, trends[segment.pk], total) for segment in on_page],
        "page": page,
        "page_query": f"{query}&" if query else "",
        "search": search,
        "sort": sort,
        "sort_is_default": sort == DEFAULT_SORT,
        "headers": _headers(search=search, sort=sort),
        "clear_search_url": _url(search="", sort=sort),
        "total_customers": total,
        "trend_days": TREND_DAYS,
        "can_edit": isinstance(request.user, User) and request.user.has_role(Role.MARKETER),
    }
    return render(request, "segments/list.html", context)
